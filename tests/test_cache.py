"""The content-addressed cache of pulled sdists (``.micropkg/cache/<sha256>.tar.gz``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from micropkg_tasks.cache import cached, drop, store


def _archive(folder: Path, data: bytes) -> tuple[Path, str]:
    path = folder / "x-0.1.tar.gz"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_store_then_find(tmp_path: Path) -> None:
    state = tmp_path / ".micropkg"
    archive, digest = _archive(tmp_path, b"tarball bytes")
    path = store(state, archive, digest)
    assert path == state / "cache" / f"{digest}.tar.gz"
    assert path.read_bytes() == b"tarball bytes"
    assert (state / ".gitignore").read_text() == "# micropkg-tasks state\n*\n"
    assert cached(state, digest) == path
    # The source may be overwritten in place: the cached copy is a copy, not a link.
    archive.write_bytes(b"other bytes")
    assert path.read_bytes() == b"tarball bytes"
    assert [p.name for p in (state / "cache").iterdir()] == [path.name]


def test_a_corrupt_cached_file_is_dropped(tmp_path: Path) -> None:
    state = tmp_path / ".micropkg"
    archive, digest = _archive(tmp_path, b"good")
    path = store(state, archive, digest)
    assert path is not None
    path.write_bytes(b"bad!")
    assert cached(state, digest) is None
    assert not path.exists()
    # Storing again repairs it.
    assert store(state, archive, digest) == path and path.read_bytes() == b"good"


def test_a_source_that_changed_is_not_stored(tmp_path: Path) -> None:
    state = tmp_path / ".micropkg"
    archive, _ = _archive(tmp_path, b"now")
    assert store(state, archive, hashlib.sha256(b"before").hexdigest()) is None
    assert list((state / "cache").iterdir()) == []


def test_lookups_never_touch_paths_outside_the_cache(tmp_path: Path) -> None:
    assert cached(tmp_path, "../../etc/passwd") is None
    with pytest.raises(ValueError):
        store(tmp_path, tmp_path, "../x")


def test_drop_removes_one_cached_sdist(tmp_path: Path) -> None:
    state = tmp_path / ".micropkg"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kept_archive, kept = _archive(tmp_path / "a", b"a")
    gone_archive, gone = _archive(tmp_path / "b", b"b")
    store(state, kept_archive, kept)
    store(state, gone_archive, gone)
    (state / "cache" / "notes.txt").write_text("not ours")
    drop(state, gone)
    drop(state, gone)  # already gone: nothing to do
    drop(state, "../notes.txt")  # not a sha256: nothing
    assert sorted(p.name for p in (state / "cache").iterdir()) == [f"{kept}.tar.gz", "notes.txt"]
