"""One size setting for package and pull (issue 7 item 7), and gzip bombs whatever the cap."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from projects import add_pipeline, tree_snapshot

import micropkg_tasks.limits as limits
from micropkg_tasks.errors import ManifestError

Cli = Callable[..., Any]
SETTING = "the limit is set by MICROPKG_MAX_SIZE or 'max-size' under [tool.micropkg]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000", 1000),
        (1000, 1000),
        ("10kB", 10_000),
        ("10 KB", 10_000),
        ("2MB", 2_000_000),
        ("1GB", 1_000_000_000),
        ("2KiB", 2048),
        ("3mib", 3 * 1024**2),
        ("1GiB", 1024**3),
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert limits.parse_size(text, "test") == expected


@pytest.mark.parametrize("text", ["", "0", "-5", "1.5GB", "10TB", "ten", True, 0, [1]])
def test_parse_size_refuses(text: object) -> None:
    with pytest.raises(ManifestError, match="Invalid size"):
        limits.parse_size(text, "test")


def data_pipeline(root: Path, size: int, name: str = "data_proc") -> Path:
    """A pipeline with a ``data/blob.bin`` of ``size`` incompressible bytes."""
    code = add_pipeline(root, name)
    (code / "data").mkdir()
    (code / "data" / "blob.bin").write_bytes(os.urandom(size))
    return code


def test_package_refuses_what_pull_would_refuse_with_the_same_words(
    project: Path,
    project_factory: Callable[..., Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_pipeline(project, 30_000)
    monkeypatch.setenv("MICROPKG_MAX_SIZE", "20kB")
    before = tree_snapshot(project)
    refused = cli("package", "pipelines.data_proc")
    assert refused.code == 1
    detail = (
        "its contents exceed 20000 bytes uncompressed "
        "(at member 'data_proc-0.1/data_proc/data/blob.bin'); " + SETTING
    )
    assert (
        refused.err
        == f"Error: Cannot package 'data_proc-0.1.tar.gz': {detail} (default 200 MiB).\n"
    )
    assert tree_snapshot(project) == before
    assert not (project / "dist").exists()

    # Raised in pyproject (the environment wins when set): the same tarball packages...
    monkeypatch.delenv("MICROPKG_MAX_SIZE")
    with (project / "pyproject.toml").open("a") as fh:
        fh.write('\n[tool.micropkg]\nmax-size = "1MiB"\n')
    assert cli("package", "pipelines.data_proc").code == 0, "max-size in [tool.micropkg]"
    tarball = project / "dist/data_proc-0.1.tar.gz"
    assert tarball.is_file()

    # ...and a pull under the smaller cap refuses it, naming the same setting.
    consumer = project_factory("consumer")
    monkeypatch.chdir(consumer)
    monkeypatch.setenv("MICROPKG_MAX_SIZE", "20kB")
    before = tree_snapshot(consumer)
    pulled = cli("pull", str(tarball))
    assert pulled.code == 1
    assert pulled.err == (
        f"Error: Refusing to extract 'data_proc-0.1.tar.gz': {detail} (default 200 MiB).\n"
    )
    assert tree_snapshot(consumer) == before
    monkeypatch.setenv("MICROPKG_MAX_SIZE", "50KiB")
    assert cli("pull", str(tarball)).code == 0


def test_manifest_table_and_max_size_together(project: Path, cli: Cli) -> None:
    # [tool.micropkg] with only settings does not clash with [tool.kedro.micropkg] manifests.
    data_pipeline(project, 10)
    with (project / "pyproject.toml").open("a") as fh:
        fh.write(
            "\n[tool.micropkg]\nmax-size = 100\n\n[tool.kedro.micropkg.package]\n"
            '"pipelines.data_proc" = {}\n'
        )
    result = cli("package", "--all")
    assert result.code == 1
    assert "its contents exceed 100 bytes uncompressed" in result.err
    assert not (project / "dist").exists()


@pytest.mark.parametrize("where", ["env", "pyproject"])
def test_bad_setting_is_one_error_line_and_writes_nothing(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    data_pipeline(project, 10)
    if where == "env":
        monkeypatch.setenv("MICROPKG_MAX_SIZE", "lots")
        name = "MICROPKG_MAX_SIZE"
    else:
        with (project / "pyproject.toml").open("a") as fh:
            fh.write('\n[tool.micropkg]\nmax-size = "2 TB"\n')
        name = "[tool.micropkg] max-size"
    before = tree_snapshot(project)
    result = cli("package", "pipelines.data_proc")
    assert result.code == 1
    assert result.err.startswith("Error: Invalid size ") and f" in {name}: " in result.err
    assert result.err.count("\n") == 1
    assert tree_snapshot(project) == before


def test_gzip_bomb_is_refused_whatever_the_cap(
    project: Path,
    project_factory: Callable[..., Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The ratio check starts at BOMB_FLOOR (200 MiB); lowered here so the test stays small.
    monkeypatch.setattr(limits, "BOMB_FLOOR", 100_000)
    code = add_pipeline(project, "data_proc")
    (code / "data").mkdir()
    (code / "data" / "zeros.bin").write_bytes(b"\0" * 2_000_000)  # ~1000:1 at any level
    monkeypatch.setenv("MICROPKG_MAX_SIZE", "1GB")
    refused = cli("package", "pipelines.data_proc")
    assert refused.code == 1
    assert "times its compressed size" in refused.err and "gzip bomb" in refused.err
    assert not list((project / "dist").glob("*")) if (project / "dist").exists() else True

    # Built anyway (ratio check off while packaging), the pull refuses it whatever the cap.
    monkeypatch.setattr(limits, "BOMB_FLOOR", 10**12)
    assert cli("package", "pipelines.data_proc").code == 0
    monkeypatch.setattr(limits, "BOMB_FLOOR", 100_000)
    consumer = project_factory("consumer")
    monkeypatch.chdir(consumer)
    before = tree_snapshot(consumer)
    pulled = cli("pull", str(project / "dist/data_proc-0.1.tar.gz"))
    assert pulled.code == 1
    assert pulled.err.startswith("Error: Refusing to extract 'data_proc-0.1.tar.gz': it ")
    assert "gzip bomb" in pulled.err
    assert tree_snapshot(consumer) == before


# ------------------------------------------------------------------ large files stream (pull)


@pytest.fixture
def small_large_file(monkeypatch: pytest.MonkeyPatch) -> int:
    """Files over 4 kB count as large (8 MiB really): the streaming path, with small files."""
    monkeypatch.setattr(limits, "LARGE_FILE", 4000)
    return 4000


def package_with_blob(cli: Cli, root: Path, blob: bytes, monkeypatch: pytest.MonkeyPatch) -> Path:
    code = root / "src/demo_proj/pipelines/data_proc"
    if not code.exists():
        add_pipeline(root, "data_proc")
        (code / "data").mkdir()
    (code / "data" / "blob.bin").write_bytes(blob)
    previous = Path.cwd()
    monkeypatch.chdir(root)
    try:
        assert cli("package", "pipelines.data_proc").code == 0
    finally:
        monkeypatch.chdir(previous)
    return root / "dist/data_proc-0.1.tar.gz"


def test_large_files_are_streamed_compared_and_hashed_in_chunks(
    project: Path,
    project_factory: Callable[..., Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    small_large_file: int,
) -> None:
    from micropkg_tasks.lockfile import read_lock
    from micropkg_tasks.manifest import pull_entry
    from micropkg_tasks.project import load_project
    from micropkg_tasks.pull import fetch_and_plan

    blob = os.urandom(3 * small_large_file)
    tarball = package_with_blob(cli, project, blob, monkeypatch)
    consumer = project_factory("consumer")
    monkeypatch.chdir(consumer)
    pulled = consumer / "src/demo_proj/data_proc/data/blob.bin"

    # The plan carries the extracted file, not its bytes.
    plan, _ = fetch_and_plan(
        load_project(consumer), pull_entry(str(tarball)), base=consumer, force=False
    )
    assert isinstance(plan.writes[pulled], Path)
    assert not isinstance(plan.writes[pulled.parent.parent / "nodes.py"], Path)

    assert cli("pull", str(tarball)).code == 0
    assert pulled.read_bytes() == blob
    import hashlib

    lock = read_lock(consumer / "micropkg.lock")
    digest = lock.entries["data_proc"].files["src/demo_proj/data_proc/data/blob.bin"]
    assert digest == hashlib.sha256(blob).hexdigest()
    assert cli("status").out.splitlines()[0].endswith("[clean]")

    # Pulled again: unchanged (nothing written).
    before = tree_snapshot(consumer)
    again = cli("pull", str(tarball))
    assert again.code == 0, again.err
    assert tree_snapshot(consumer) == before

    # A new version while the file is unchanged locally: updated.
    newer = os.urandom(3 * small_large_file)
    tarball = package_with_blob(cli, project, newer, monkeypatch)
    assert cli("pull", str(tarball)).code == 0
    assert pulled.read_bytes() == newer

    # Edited locally and changed upstream: a conflict (never merged), nothing written.
    pulled.write_bytes(b"local " + newer)
    tarball = package_with_blob(cli, project, os.urandom(3 * small_large_file), monkeypatch)
    before = tree_snapshot(consumer)
    refused = cli("pull", str(tarball))
    assert refused.code == 1
    assert "src/demo_proj/data_proc/data/blob.bin (edited locally; a file over" in refused.err
    assert tree_snapshot(consumer) == before
    forced = cli("pull", str(tarball), "--force")
    assert forced.code == 0, forced.err
    assert pulled.read_bytes() != b"local " + newer
