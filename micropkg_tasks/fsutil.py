"""File helpers shared by every block: atomic writes and sha256 digests."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows (see hold() and remove_if_unheld())
    fcntl = None

__all__ = [
    "TEMP_SUFFIX",
    "Scratch",
    "atomic_write",
    "atomic_writer",
    "folder_lock",
    "hold",
    "read_if_exists",
    "remove_if_unheld",
    "sha256_bytes",
    "sha256_file",
    "sha256_of",
]

#: Suffix of our temporary files (``.<name>.<hex>.micropkg-tmp``): recognisable, so packaging
#: skips them and a later run can clean up exactly what an interrupted run of ours left.
TEMP_SUFFIX = ".micropkg-tmp"

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def hold(fd: int) -> None:
    """Mark the open file ``fd`` as being written by a live process (an exclusive ``flock``,
    released when the process closes it or dies). Windows needs none: it refuses to delete a
    file that is open."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def remove_if_unheld(path: Path) -> bool:
    """Delete ``path`` unless a live process holds it (:func:`hold`); True when deleted."""
    if fcntl is None:  # pragma: no cover - Windows
        try:
            path.unlink()
        except OSError:
            return False
        return True
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Its writer may have renamed it into place and let it go since it was opened here.
        if not os.path.samestat(os.fstat(fd), os.lstat(path)):
            return False
        path.unlink(missing_ok=True)
    except OSError:
        return False  # being written right now, or gone
    finally:
        os.close(fd)
    return True


@contextlib.contextmanager
def folder_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive (or ``shared``) ``flock`` on ``folder`` itself for the ``with`` block:
    it serialises processes and threads without creating a file. Without ``flock`` (Windows)
    it holds nothing."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


#: ``MICROPKG_FSYNC=1``: flush every file we write to disk before it is renamed into place.
FSYNC_ENV = "MICROPKG_FSYNC"


def read_if_exists(path: Path) -> bytes | None:
    """The bytes of ``path``; ``None`` when it does not exist (one system call where a stat
    then a read were two)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def durable() -> bool:
    """Whether ``MICROPKG_FSYNC`` asks for fsyncs (off by default, like git's working tree)."""
    return os.environ.get(FSYNC_ENV, "") not in ("", "0")


def sha256_of(data: bytes | Path) -> str:
    """Hex sha256 of bytes, or of a file's bytes (a large file is never read whole)."""
    return sha256_file(data) if isinstance(data, Path) else sha256_bytes(data)


def _create_temp(path: Path, suffix: str) -> tuple[int, Path]:
    """A new hidden file beside ``path`` (same file system, so the final rename is atomic)."""
    # O_EXCL: never reuse an existing file; 0o666: the usual umask-governed mode (mkstemp's
    # 0o600 would leak into the renamed file).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, suffix: str = TEMP_SUFFIX, fsync: bool = False, shared_folder: bool = False
) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file beside it, renamed over ``path`` when complete.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is left as it
    was. An existing ``path`` keeps its permission bits. ``fsync`` flushes the data to disk
    before the rename. The folder must exist.

    The temporary file is held (:func:`hold`) from the start, so a cleaner removes only a
    killed writer's. ``shared_folder``: other processes of ours write and clean the same
    folder at the same time (``dist/``); the file is created and held under a shared
    :func:`folder_lock`, which a cleaner takes exclusively, so it never sees the file in the
    instant between its creation and its hold.
    """
    guard = folder_lock(path.parent, shared=True) if shared_folder else contextlib.nullcontext()
    with guard:
        fd, temp = _create_temp(path, suffix)
        try:
            hold(fd)  # until the rename: a later run removes only a killed run's temp file
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            if fsync:
                os.fsync(stream.fileno())
            with contextlib.suppress(FileNotFoundError):
                os.chmod(temp, stat.S_IMODE(os.stat(path).st_mode))
            os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write(
    path: Path, data: bytes | str, *, suffix: str = TEMP_SUFFIX, fsync: bool = False
) -> None:
    """Replace ``path``'s content with ``data`` (``str`` is written as UTF-8) atomically.

    See :func:`atomic_writer`.
    """
    with atomic_writer(path, suffix=suffix, fsync=fsync) as stream:
        stream.write(data.encode("utf-8") if isinstance(data, str) else data)


class Scratch:
    """A private temporary folder made on first use (calling the object gives it) and deleted,
    with everything in it, when the ``with`` block ends.

    A pull of a local sdist whose files are all held in memory never makes one: creating and
    deleting a folder costs more than reading a small sdist on some file systems.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._path: Path | None = None

    def __call__(self) -> Path:
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix=self._prefix))
        return self._path

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *_: object) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
