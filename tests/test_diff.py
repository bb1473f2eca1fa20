"""``diff``: local changes of pulled files against their pulled version."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycle import Releases
from projects import make_project

from micropkg_tasks.cache import store
from micropkg_tasks.diff import diff, unified_diff
from micropkg_tasks.fsutil import sha256_file
from micropkg_tasks.project import load_project


def test_unified_diff_format() -> None:
    assert unified_diff("x.py", b"a\nb\n", b"a\nc\n") == (
        "--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    )
    assert unified_diff("x.py", b"a\n", None) == "--- a/x.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n"
    assert unified_diff("x.py", b"a", b"b") == (
        "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n"
        "+b\n\\ No newline at end of file\n"
    )
    assert unified_diff("d.bin", b"\0", b"\1") == "Binary files a/d.bin and b/d.bin differ\n"


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> tuple[Path, Path]:
    tarball = Releases.create(tmp_path, cli).release("0.1")
    root = make_project(tmp_path / "consumer", package="consumer_pkg")
    monkeypatch.chdir(root)
    assert cli("pull", str(tarball), "-d", "pipelines").code == 0
    store(load_project(root).state_dir, tarball, sha256_file(tarball))
    return root, tarball


def test_changed_and_deleted_files(consumer: tuple[Path, Path]) -> None:
    root, _ = consumer
    project = load_project(root)
    assert not diff(project).different
    nodes = root / "src/consumer_pkg/pipelines/ds/nodes.py"
    nodes.write_text(nodes.read_text().replace("x * rate", "x * rate * 2"))
    (root / "conf/base/parameters_ds.yml").unlink()
    result = diff(project)
    assert result.different
    assert [(f.module, f.path) for f in result.files] == [
        ("pipelines.ds", "conf/base/parameters_ds.yml"),
        ("pipelines.ds", "src/consumer_pkg/pipelines/ds/nodes.py"),
    ]
    assert result.files[0].patch.startswith(
        "--- a/conf/base/parameters_ds.yml\n+++ /dev/null\n@@ -1,4 +0,0 @@\n-ds:\n"
    )
    assert "-    return x * rate\n+    return x * rate * 2\n" in result.files[1].patch


def test_without_cache_or_source_the_reason_is_given(consumer: tuple[Path, Path]) -> None:
    root, tarball = consumer
    project = load_project(root)
    for cached in (project.state_dir / "cache").iterdir():
        cached.unlink()
    tarball.unlink()
    (root / "src/consumer_pkg/pipelines/ds/nodes.py").write_text("changed\n")
    (only,) = diff(project).files
    assert only.patch == ""
    assert only.unknown is not None and "fetching" in only.unknown
