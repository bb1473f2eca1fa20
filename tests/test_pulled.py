"""The pulled version of a lock entry's files, from the cache or fetched again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from projects import add_pipeline, make_project, write

from micropkg_tasks.cache import cached, store
from micropkg_tasks.fsutil import sha256_file
from micropkg_tasks.lockfile import LOCK_NAME, LockEntry, read_lock
from micropkg_tasks.project import load_project
from micropkg_tasks.pulled import read_pulled, refetch_source


@pytest.fixture
def pulled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> tuple[Path, Path]:
    """A consumer project that pulled ``ds`` 0.1 as ``pipelines.beta``: (consumer, tarball)."""
    source = make_project(tmp_path / "source")
    code = add_pipeline(source, "ds", requirements="pandas>=1.0\n")
    write(code / "tools.py", "from demo_proj.pipelines.ds.nodes import helper\n")
    monkeypatch.chdir(source)
    assert cli("package", "pipelines.ds").code == 0
    tarball = source / "dist" / "ds-0.1.tar.gz"
    consumer = make_project(tmp_path / "consumer", package="consumer_pkg")
    monkeypatch.chdir(consumer)
    result = cli("pull", str(tarball), "--alias", "beta", "-d", "pipelines")
    assert result.code == 0, result.err
    # The pull cached its sdist; these tests start without it.
    shutil.rmtree(consumer / ".micropkg" / "cache")
    return consumer, tarball


def _entry(consumer: Path) -> LockEntry:
    return read_lock(consumer / LOCK_NAME).entries["pipelines.beta"]


def test_every_file_as_the_pull_wrote_it(pulled: tuple[Path, Path]) -> None:
    consumer, tarball = pulled
    project = load_project(consumer)
    entry = _entry(consumer)
    store(project.state_dir, tarball, entry.sha256)
    # Edit every file locally: the pulled version must not come from the disk.
    on_disk = {rel: (consumer / rel).read_bytes() for rel in entry.files}
    for rel in entry.files:
        (consumer / rel).write_bytes(b"edited\n")
    version = read_pulled(project, entry, refetch=False)
    assert version.unavailable is None
    assert dict(version.files) == on_disk
    assert (
        b"consumer_pkg.pipelines.beta.nodes"
        in version.files["src/consumer_pkg/pipelines/beta/tools.py"]
    )


def test_missing_from_the_cache_the_source_is_fetched_again_and_cached(
    pulled: tuple[Path, Path],
) -> None:
    consumer, _ = pulled
    project = load_project(consumer)
    entry = _entry(consumer)
    assert cached(project.state_dir, entry.sha256) is None
    assert read_pulled(project, entry, refetch=False).unavailable == (
        "the pulled sdist is not in the cache"
    )
    version = read_pulled(project, entry)
    assert version.unavailable is None and set(version.files) == set(entry.files)
    assert cached(project.state_dir, entry.sha256) is not None


def test_source_gone_says_why(pulled: tuple[Path, Path]) -> None:
    consumer, tarball = pulled
    tarball.unlink()
    version = read_pulled(load_project(consumer), _entry(consumer))
    assert version.files == {}
    assert version.unavailable is not None
    assert version.unavailable.startswith(
        "the pulled sdist is unavailable: it is not in the cache and fetching "
    )
    assert "again failed" in version.unavailable


def test_source_overwritten_with_another_sdist(pulled: tuple[Path, Path]) -> None:
    consumer, tarball = pulled
    other = tarball.with_name("copy.tar.gz")
    shutil.copyfile(tarball, other)
    tarball.write_bytes(tarball.read_bytes() + b"\0")  # another sdist under the same name
    assert sha256_file(tarball) != _entry(consumer).sha256
    version = read_pulled(load_project(consumer), _entry(consumer))
    assert version.unavailable is not None and "now holds another sdist" in version.unavailable


def test_a_file_laid_out_differently_today_has_no_base(pulled: tuple[Path, Path]) -> None:
    consumer, tarball = pulled
    project = load_project(consumer)
    entry = _entry(consumer)
    store(project.state_dir, tarball, entry.sha256)
    rel = "src/consumer_pkg/pipelines/beta/tools.py"
    files = {**entry.files, rel: "0" * 64}  # as if an older rewriter had written other bytes
    version = read_pulled(project, LockEntry(**{**entry.__dict__, "files": files}))
    assert version.get(rel) is None
    assert version.why_unknown(rel).startswith("1 file(s) of the pulled sdist are laid out")
    assert len(version.files) == len(files) - 1


def test_refetch_of_an_unpinned_index_requirement_pins_the_version(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path / "p"))
    entry = LockEntry("ds", "data-science[x]>=0.1", "0" * 64, "0.3", "data_science")
    assert refetch_source(entry, project) == "data-science[x]==0.3"
    local = LockEntry("ds", "dist/ds-0.1.tar.gz", "0" * 64, "0.1", "ds")
    assert refetch_source(local, project) == "dist/ds-0.1.tar.gz"
