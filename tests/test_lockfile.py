"""micropkg.lock: written by hand, read with tomllib; the round trip is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from micropkg_tasks.errors import PullError
from micropkg_tasks.lockfile import Lock, LockEntry, read_lock, render_lock


def test_render_and_read_round_trip(tmp_path: Path) -> None:
    entry = LockEntry(
        module="pipelines.beta",
        source='s3://bucket/odd "name"\\x.tar.gz',
        sha256="a" * 64,
        version="0.2",
        package="data_proc",
        options={"alias": "beta", "destination": "pipelines", "env": "base"},
        requirements=("pandas>=1.0", 'requests; python_version > "3.8"'),
        files={"src/p/pipelines/beta/nodes.py": "b" * 64, "conf/base/é ü.yml": "c" * 64},
    )
    bare = LockEntry("utils", "dist/utils-0.1.tar.gz", "d" * 64, None, "utils")
    lock = Lock({entry.module: entry, bare.module: bare})
    path = tmp_path / "micropkg.lock"
    text = render_lock(lock)
    path.write_text(text, encoding="utf-8")
    assert read_lock(path) == lock
    assert render_lock(read_lock(path)) == text
    assert text.index('[micropkg."pipelines.beta"]') < text.index('[micropkg."utils"]')


def test_missing_lock_is_empty_and_broken_lock_is_an_error(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "micropkg.lock") == Lock()
    (tmp_path / "micropkg.lock").write_text("[micropkg\n")
    with pytest.raises(PullError, match="Cannot read"):
        read_lock(tmp_path / "micropkg.lock")


def test_render_reuses_unchanged_blocks_and_renders_replaced_entries(tmp_path: Path) -> None:
    one = LockEntry("a", "dist/a-0.1.tar.gz", "1" * 64, "0.1", "a", files={"src/p/a.py": "2" * 64})
    two = LockEntry("b", "dist/b-0.1.tar.gz", "3" * 64, "0.1", "b")
    lock = Lock({"a": one}).with_entry(two)
    assert render_lock(lock) == render_lock(Lock({"b": two, "a": one}))
    newer = LockEntry("a", "dist/a-0.2.tar.gz", "4" * 64, "0.2", "a")
    text = render_lock(lock.with_entry(newer))
    path = tmp_path / "micropkg.lock"
    path.write_text(text, encoding="utf-8")
    assert read_lock(path) == Lock({"a": newer, "b": two})
    assert "a-0.1" not in text
