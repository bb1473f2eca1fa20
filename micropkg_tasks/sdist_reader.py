"""Safe sdist reader: check every member of an untrusted archive, then extract (contract §4).

Every member header is checked before anything is written (paths, types, duplicates, sizes),
the gzip stream is bounded so a bomb costs at most the limit, Kedro's layout checks run on the
member list, and extraction uses tarfile's ``data`` filter. Metadata is then read from the
extracted files by :mod:`micropkg_tasks.sdist_metadata`, never by running a build backend.
"""

from __future__ import annotations

import copy
import gzip
import io
import keyword
import math
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import PullError
from .limits import (
    DEFAULT_MAX_SIZE,
    MAX_MEMBERS,
    Limits,
    bomb_message,
    members_message,
    size_message,
)
from .names import describe_character, shown, unsafe_character
from .sdist_metadata import read_metadata

__all__ = ["SdistContents", "extract_sdist"]

_DIR_MODE = 0o755


#: Member times beyond this many seconds from 1970 (about 34,800 years) are refused.
_MAX_MTIME = 2**40


@dataclass(frozen=True)
class SdistContents:
    """An extracted sdist: its top folder, its single package and its metadata."""

    root: Path
    package: str
    version: str | None
    requirements: tuple[str, ...]


class _TooLarge(Exception):
    """The decompressed stream grew past its limit (raised inside tarfile's reads)."""


class _BoundedReader(io.RawIOBase):
    """A seekable read-only view of a decompressed stream that refuses to go past ``limit``.

    A gzip bomb (or a huge pax header) then costs at most ``limit`` bytes of decompression.
    """

    def __init__(self, inner: gzip.GzipFile, limit: int) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise io.UnsupportedOperation("seek from the end of a gzip stream")
        target = offset if whence == io.SEEK_SET else self._inner.tell() + offset
        if target > self._limit:
            raise _TooLarge
        return self._inner.seek(target)

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._limit - self._inner.tell()
        if size is None or size < 0 or size > remaining:
            size = remaining + 1
        data = self._inner.read(size)
        if self._inner.tell() > self._limit:
            raise _TooLarge
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _refuse(archive: Path, detail: str) -> PullError:
    return PullError(f"Refusing to extract '{archive.name}': {detail}")


def _member_kind(member: tarfile.TarInfo) -> str | None:
    """Why ``member``'s type is refused, or None for plain files and folders."""
    if member.issym():
        return "is a symbolic link"
    if member.islnk():
        return "is a hard link"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if member.type == tarfile.GNUTYPE_SPARSE or getattr(member, "sparse", None) is not None:
        return "is a sparse file"
    if not (member.isreg() or member.isdir()):
        return f"has an unsupported type {member.type!r}"
    return None


def _check_members(
    archive: Path,
    tar: tarfile.TarFile,
    dest: Path,
    *,
    max_bytes: int,
    max_members: int,
) -> list[tarfile.TarInfo]:
    """Read and check every member header; raise on the first hostile or oversized one."""
    root = dest.resolve()
    # A folder that does not exist yet holds no symbolic link: the lexical checks below (no
    # absolute path, no '..') are then the whole check, and resolving each member (an lstat
    # per path component) is skipped.
    fresh = not dest.exists()
    members: list[tarfile.TarInfo] = []
    seen: dict[str, bool] = {}  # normalised path of each member -> is a folder
    parents: set[str] = set()  # folders implied by the members' paths
    total = 0
    for member in tar:
        name = shown(member.name)  # for messages: a name may hold line breaks or stray bytes
        if len(members) >= max_members:
            raise _refuse(archive, members_message(max_members))
        if member.name.startswith(("/", "\\")) or _has_drive(member.name):
            raise _refuse(archive, f"member '{name}' has an absolute path.")
        bad = unsafe_character(member.name)
        if bad is not None:
            raise _refuse(
                archive,
                f"member '{name}' has an unsafe name (it contains {describe_character(bad)}).",
            )
        if "\\" in member.name:
            raise _refuse(archive, f"member '{name}' has an unsafe name.")
        parts = PurePosixPath(member.name).parts
        if ".." in parts:
            raise _refuse(archive, f"member '{name}' escapes the target folder.")
        if not parts:
            raise _refuse(archive, f"member '{name}' resolves to the target folder itself.")
        kind = _member_kind(member)
        if kind is not None:
            raise _refuse(archive, f"member '{name}' {kind}.")
        # A PAX mtime is a float: 1e400 (inf), nan or -1e300 made extraction's utime() crash.
        if not (math.isfinite(member.mtime) and abs(member.mtime) < _MAX_MTIME):
            raise _refuse(
                archive, f"member '{name}' has an invalid modification time ({member.mtime!r})."
            )
        try:
            inside = fresh or root in (root / Path(*parts)).resolve().parents
        except (OSError, RuntimeError):  # a symlink loop in a pre-existing dest
            inside = False
        if not inside:
            raise _refuse(archive, f"member '{name}' escapes the target folder.")
        key = "/".join(parts)
        if key in seen:
            raise _refuse(archive, f"member '{name}' appears more than once.")
        ancestors = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        clash = next((a for a in ancestors if seen.get(a) is False), None)
        if clash is not None or (not member.isdir() and key in parents):
            if clash is None:
                raise _refuse(
                    archive, f"member '{name}' is a file but other members are inside it."
                )
            raise _refuse(archive, f"member '{name}' would be written inside the file '{clash}'.")
        seen[key] = member.isdir()
        parents.update(ancestors)
        total += member.size if member.isreg() else 0
        if total > max_bytes:
            raise _refuse(archive, size_message(max_bytes, name))
        members.append(member)
    return members


def _has_drive(name: str) -> bool:
    return len(name) >= 2 and name[1] == ":" and name[0].isalpha()


def _check_layout(dest: Path, members: list[tarfile.TarInfo]) -> tuple[str, str]:
    """Kedro's checks on the member list: one top folder, one package besides ``tests``."""
    folders: set[str] = set()
    init_files: set[str] = set()
    subfolders: set[tuple[str, str]] = set()
    for member in members:
        parts = PurePosixPath(member.name).parts
        if len(parts) > 1 or member.isdir():
            folders.add(parts[0])
        if len(parts) > 2 or (len(parts) == 2 and member.isdir()):
            subfolders.add((parts[0], parts[1]))
        if len(parts) == 3 and parts[2] == "__init__.py" and member.isreg():
            init_files.add(parts[1])
    if len(folders) != 1:
        contents = [dest / name for name in sorted(folders)]
        raise PullError(
            f"Invalid sdist was extracted: exactly one directory was expected, got {contents}"
        )
    (top,) = folders
    packages = sorted(
        sub for first, sub in subfolders if first == top and sub != "tests" and sub in init_files
    )
    if len(packages) != 1:
        raise PullError(
            f"Invalid package contents: exactly one package was expected, got {packages}"
        )
    package = packages[0]
    # The folder name becomes a module path, folder names in the project and a comment line in
    # requirements.in: it must be an identifier (with or without --alias).
    if not package.isidentifier() or keyword.iskeyword(package):
        raise PullError(
            f"Invalid package contents: the package folder '{shown(package)}' is not a valid "
            "Python package name."
        )
    return top, package


def _open_error(archive: Path, exc: BaseException) -> PullError:
    detail = str(exc) or type(exc).__name__
    return PullError(f"'{archive.name}' is not a valid .tar.gz sdist: {detail}")


def _sanitised(members: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    """Copies with plain permissions, for Pythons without extraction filters."""
    safe = []
    for member in members:
        clone = copy.copy(member)
        clone.mode = _DIR_MODE if member.isdir() else (member.mode & 0o755) | 0o600
        clone.uid = clone.gid = os.getuid() if hasattr(os, "getuid") else 0
        clone.uname = clone.gname = ""
        safe.append(clone)
    return safe


def _extract(tar: tarfile.TarFile, dest: Path, members: list[tarfile.TarInfo]) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter="data")
    else:  # pragma: no cover - Python < 3.10.12 / 3.11.4
        tar.extractall(dest, members=_sanitised(members), numeric_owner=True)


def extract_sdist(
    archive: Path,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_SIZE,
    max_members: int = MAX_MEMBERS,
) -> SdistContents:
    """Safely extract the sdist ``archive`` into ``dest`` and read its layout and metadata.

    Every member is checked before anything is written: absolute or ``..`` paths, a member that
    is the target folder itself, links, devices, FIFOs, duplicates, more than ``max_members``
    members or more than ``max_bytes`` bytes uncompressed raise :class:`PullError` naming the
    member. Past ``limits.BOMB_FLOOR`` bytes, a stream that decompresses to more than
    ``limits.BOMB_RATIO`` times the archive's size is refused whatever ``max_bytes`` is. Kedro's
    layout checks (one top folder; one package besides ``tests``) also run before extraction,
    so a refused archive leaves ``dest`` untouched.
    """
    try:
        raw = archive.open("rb")
    except OSError as exc:
        raise PullError(f"Cannot read sdist '{archive}': {exc.strerror or exc}") from exc
    limit, by_ratio = Limits(max_bytes, max_members).stream_limit(os.fstat(raw.fileno()).st_size)
    with raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        stream = io.BufferedReader(_BoundedReader(gz, limit), buffer_size=64 * 1024)
        try:
            with tarfile.open(fileobj=stream, mode="r:") as tar:
                members = _check_members(
                    archive, tar, dest, max_bytes=max_bytes, max_members=max_members
                )
                # Reading to the end verifies the gzip CRC before anything is written.
                while stream.read(1024 * 1024):
                    pass
                top, package = _check_layout(dest, members)
                _extract_all(archive, tar, dest, members)
        except _TooLarge:
            detail = bomb_message() if by_ratio else size_message(max_bytes)
            raise _refuse(archive, detail) from None
        except PullError:
            raise
        # ValueError/OverflowError: whatever else a malformed header makes tarfile raise.
        except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, OverflowError) as exc:
            raise _open_error(archive, exc) from exc
    root = dest / top
    version, requirements = read_metadata(root)
    return SdistContents(root=root, package=package, version=version, requirements=requirements)


def _extract_all(
    archive: Path, tar: tarfile.TarFile, dest: Path, members: list[tarfile.TarInfo]
) -> None:
    """Extract the checked members; on failure remove whatever this call created."""
    existed = dest.exists()
    before = set(os.listdir(dest)) if existed else set()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _extract(tar, dest, members)
    except BaseException as exc:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            for name in set(os.listdir(dest)) - before:
                path = dest / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
            raise PullError(f"Cannot extract '{archive.name}' into '{dest}': {exc}") from exc
        raise
