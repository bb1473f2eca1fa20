"""micropkg_tasks.fsutil: the one atomic write and the one sha256 helper."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from micropkg_tasks.fsutil import (
    TEMP_SUFFIX,
    atomic_write,
    atomic_writer,
    sha256_bytes,
    sha256_file,
)


def test_sha256_helpers_agree_with_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one read block
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_bytes(data) == expected
    assert sha256_file(path) == expected


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "requirements.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    atomic_write(target, "new\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.txt"
    old_umask = os.umask(0o022)
    try:
        atomic_write(fresh, "x")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # not mkstemp's 0o600


def test_atomic_writer_failure_leaves_the_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_writer(target) as stream:
        stream.write(b"half")
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(TEMP_SUFFIX)]
        raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_temp_names_are_recognisable(tmp_path: Path) -> None:
    target = tmp_path / "dist.tar.gz"
    with atomic_writer(target, suffix=".tmp") as stream:
        (temp,) = [p for p in tmp_path.iterdir() if p.name != "dist.tar.gz"]
        assert temp.name.startswith(".dist.tar.gz.") and temp.name.endswith(".tmp")
        stream.write(b"x")
    assert target.read_bytes() == b"x"


@pytest.mark.skipif(os.name == "nt", reason="flock: Windows refuses to delete an open file")
def test_a_cleaner_never_removes_a_tarball_being_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two ``package -n 2`` workers: one creates its temporary tarball while the other cleans
    # dist/ of what killed runs left. Between the creation and the hold, the cleaner waits.
    import threading
    import time

    import micropkg_tasks.fsutil as fsutil
    from micropkg_tasks.journal import remove_partial_tarballs

    target = tmp_path / "a-0.1.tar.gz"
    real_hold = fsutil.hold
    removed: list[list[Path]] = []

    def slow_hold(fd: int) -> None:
        names = os.listdir(tmp_path)  # the cleaner's listing already shows the new file
        cleaner = threading.Thread(
            target=lambda: removed.append(remove_partial_tarballs(tmp_path, names))
        )
        cleaner.start()
        time.sleep(0.3)  # the cleaner would delete the unheld file now
        real_hold(fd)
        threads.append(cleaner)

    threads: list[threading.Thread] = []
    monkeypatch.setattr(fsutil, "hold", slow_hold)
    with fsutil.atomic_writer(target, suffix=".tmp", shared_folder=True) as stream:  # sdist.py
        stream.write(b"data")
    threads[0].join()
    assert target.read_bytes() == b"data"
    assert removed == [[]]
    assert os.listdir(tmp_path) == [target.name]


def test_a_temp_file_renamed_into_place_while_a_cleaner_looks_is_not_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cleaner opened the temporary file while its writer held it; before the cleaner's
    # lock, the writer renamed it into place and closed it. Nothing is removed, or counted.
    import micropkg_tasks.fsutil as fsutil

    fcntl = pytest.importorskip("fcntl")  # (Windows refuses to delete an open file instead)
    temp = tmp_path / ".a-0.1.tar.gz.0123abcd.tmp"
    temp.write_bytes(b"data")
    target = tmp_path / "a-0.1.tar.gz"
    real_flock = fcntl.flock

    def writer_finishes_first(fd: int, operation: int) -> None:
        os.replace(temp, target)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", writer_finishes_first)
    assert fsutil.remove_if_unheld(temp) is False
    assert os.listdir(tmp_path) == [target.name]
    assert target.read_bytes() == b"data"


def test_a_temp_file_that_cannot_be_held_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import micropkg_tasks.fsutil as fsutil

    def broken_hold(fd: int) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fsutil, "hold", broken_hold)
    with (
        pytest.raises(OSError, match="No locks available"),
        fsutil.atomic_writer(tmp_path / "a.txt") as stream,
    ):
        stream.write(b"never")
    assert os.listdir(tmp_path) == []
