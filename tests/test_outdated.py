"""``outdated``: the newest version each pulled micro-package's source offers."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycle import Releases
from projects import make_project
from servers import IndexServer, S3Server

from micropkg_tasks.errors import ManifestError
from micropkg_tasks.lockfile import LOCK_NAME, read_lock
from micropkg_tasks.outdated import outdated
from micropkg_tasks.project import load_project
from micropkg_tasks.selection import select_modules


@pytest.fixture
def releases(tmp_path: Path, cli) -> Releases:
    return Releases.create(tmp_path, cli)


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "consumer", package="consumer_pkg")
    monkeypatch.chdir(root)
    return root


def test_local_folder(releases: Releases, consumer: Path, cli) -> None:
    first = releases.release("0.1")
    assert cli("pull", str(first), "-d", "pipelines").code == 0
    assert cli("pull", str(first), "--alias", "copy").code == 0
    releases.release("0.2")
    releases.release("0.10")
    releases.release("1.0rc1")
    rows = outdated(load_project(consumer))
    assert [(r.module, r.version, r.newest and r.newest.version, r.outdated) for r in rows] == [
        ("copy", "0.1", "0.10", True),
        ("pipelines.ds", "0.1", "0.10", True),
    ]
    assert rows[0].newest is not None
    assert rows[0].newest.source == rows[0].source.replace("ds-0.1.tar.gz", "ds-0.10.tar.gz")
    pre = outdated(load_project(consumer), pre=True)
    assert [r.newest and r.newest.version for r in pre] == ["1.0rc1", "1.0rc1"]


def test_up_to_date_and_unlistable_sources(releases: Releases, consumer: Path, cli) -> None:
    first = releases.release("0.1")
    assert cli("pull", str(first)).code == 0
    row = outdated(load_project(consumer))[0]
    assert (row.newest and row.newest.version, row.outdated, row.error) == ("0.1", False, None)
    first.unlink()
    first.parent.rmdir()
    row = outdated(load_project(consumer))[0]
    assert row.newest is None and not row.outdated
    assert row.error is not None and "not found" in row.error


def test_s3_source(releases: Releases, consumer: Path, cli, s3: S3Server, s3_bucket: str) -> None:
    for version in ("0.1", "0.2"):
        tarball = releases.release(version)
        s3.put(s3_bucket, f"shared/{tarball.name}", tarball.read_bytes())
    assert cli("pull", f"s3://{s3_bucket}/shared/ds-0.1.tar.gz").code == 0
    row = outdated(load_project(consumer))[0]
    assert row.outdated and row.newest is not None
    assert row.newest.source == f"s3://{s3_bucket}/shared/ds-0.2.tar.gz"


def test_index_requirement(
    releases: Releases, consumer: Path, cli, index_server: IndexServer
) -> None:
    for version in ("0.1", "0.2", "0.3a1"):
        index_server.publish(releases.release(version))
    assert cli("pull", "ds==0.1").code == 0
    row = outdated(load_project(consumer))[0]
    assert (row.module, row.outdated) == ("ds", True)
    assert row.newest is not None and row.newest.source == "ds==0.2"


def test_module_names(releases: Releases, consumer: Path, cli) -> None:
    first = releases.release("0.1")
    assert cli("pull", str(first), "-d", "pipelines").code == 0
    assert cli("pull", str(first), "-d", "pipelines.other").code == 0
    assert cli("pull", str(first), "--alias", "beta", "-d", "pipelines").code == 0
    lock = read_lock(consumer / LOCK_NAME)
    assert select_modules(lock, ["beta", "pipelines.ds", "pipelines/beta"]) == [
        "pipelines.beta",
        "pipelines.ds",
    ]
    with pytest.raises(ManifestError, match=r"'ds' is ambiguous: it could be pipelines\.ds or"):
        select_modules(lock, ["ds"])
    with pytest.raises(ManifestError, match="No pulled micro-package 'gamma'"):
        select_modules(lock, ["gamma"])
