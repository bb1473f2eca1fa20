"""Safe sdist reader: check every member of an untrusted archive and read it (contract §4).

One pass over the gzip stream (a small archive's is decompressed in one call): each member
header is checked before its data is read (paths, types, duplicates, sizes), the decompressed
stream is bounded so a bomb costs at most the limit, and Kedro's layout checks run on the
member list. Nothing is extracted by member name: files are held in memory, except those over
``limits.LARGE_FILE``, streamed to temporary files of our own naming in a work folder. Metadata
is then read by :mod:`micropkg_tasks.sdist_metadata`, never by running a build backend.
"""

from __future__ import annotations

import gzip
import io
import keyword
import math
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import limits
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

__all__ = ["SdistContents", "SdistFile", "read_sdist"]


#: Member times beyond this many seconds from 1970 (about 34,800 years) are refused.
_MAX_MTIME = 2**40

#: An archive of up to ``WHOLE_ARCHIVE`` bytes whose stream is at most ``WHOLE_STREAM`` bytes is
#: decompressed in one call instead of through ``GzipFile`` and the bounded reader, whose
#: Python-level seeks and reads were a quarter of reading a small sdist.
WHOLE_ARCHIVE = 1024**2
WHOLE_STREAM = 8 * 1024**2


@dataclass(frozen=True)
class SdistFile:
    """A regular file of a read sdist."""

    data: bytes | Path
    """Its bytes, or (a file over ``limits.LARGE_FILE``) the temporary file holding them."""
    executable: bool = False
    """The member had the owner's executable bit (what tarfile's ``data`` filter keeps)."""

    def read(self) -> bytes:
        """The file's bytes (a large file is read whole)."""
        return self.data.read_bytes() if isinstance(self.data, Path) else self.data


@dataclass(frozen=True)
class SdistContents:
    """A read sdist: its top folder's name, its single package, its metadata and its files."""

    top: str
    package: str
    version: str | None
    requirements: tuple[str, ...]
    files: Mapping[str, SdistFile] = field(default_factory=dict, compare=False, repr=False)
    """Every regular file, by its path below the top folder (``pkg/nodes.py``, ``PKG-INFO``)."""
    folders: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """Every folder below the top folder, given as a member or implied by a member's path."""

    def under(self, folder: str) -> list[tuple[str, SdistFile]]:
        """The files below ``folder`` (``pkg``, ``tests``) as (path relative to it, file),
        sorted by that path."""
        prefix = f"{folder}/"
        return sorted(
            (rel[len(prefix) :], item) for rel, item in self.files.items() if rel.startswith(prefix)
        )


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


class _MemberCheck:
    """The checks on each member header, in archive order; raise on the first hostile or
    oversized one."""

    def __init__(self, archive: Path, *, max_bytes: int, max_members: int) -> None:
        self.archive = archive
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.members: list[tarfile.TarInfo] = []
        self.seen: dict[str, bool] = {}  # normalised path of each member -> is a folder
        self.parents: set[str] = set()  # folders implied by the members' paths
        self.total = 0

    def __call__(self, member: tarfile.TarInfo) -> str:
        """Check ``member``; return its normalised path (``top/pkg/x.py``)."""
        if len(self.members) >= self.max_members:
            raise _refuse(self.archive, members_message(self.max_members))
        if member.name.startswith(("/", "\\")) or _has_drive(member.name):
            raise self.refuse(member, "has an absolute path.")
        bad = unsafe_character(member.name)
        if bad is not None:
            raise self.refuse(
                member,
                f"has an unsafe name (it contains {describe_character(bad)}).",
            )
        if "\\" in member.name:
            raise self.refuse(member, "has an unsafe name.")
        parts = _parts(member.name)
        if ".." in parts:
            raise self.refuse(member, "escapes the target folder.")
        if not parts:
            raise self.refuse(member, "resolves to the target folder itself.")
        kind = _member_kind(member)
        if kind is not None:
            raise self.refuse(member, f"{kind}.")
        # A PAX mtime is a float: 1e400 (inf), nan or -1e300 made extraction's utime() crash.
        if not (math.isfinite(member.mtime) and abs(member.mtime) < _MAX_MTIME):
            raise self.refuse(member, f"has an invalid modification time ({member.mtime!r}).")
        key = "/".join(parts)
        if key in self.seen:
            raise self.refuse(member, "appears more than once.")
        ancestors = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        clash = next((a for a in ancestors if self.seen.get(a) is False), None)
        if clash is not None or (not member.isdir() and key in self.parents):
            if clash is None:
                raise self.refuse(member, "is a file but other members are inside it.")
            raise self.refuse(member, f"would be written inside the file '{clash}'.")
        self.seen[key] = member.isdir()
        self.parents.update(ancestors)
        self.total += member.size if member.isreg() else 0
        if self.total > self.max_bytes:
            raise _refuse(self.archive, size_message(self.max_bytes, shown(member.name)))
        self.members.append(member)
        return key

    def refuse(self, member: tarfile.TarInfo, why: str) -> PullError:
        # The name is escaped only for the message: it may hold line breaks or stray bytes.
        return _refuse(self.archive, f"member '{shown(member.name)}' {why}")


def _parts(name: str) -> list[str]:
    """``PurePosixPath(name).parts`` of a relative member name (without building a path):
    empty and ``.`` components dropped."""
    return [part for part in name.split("/") if part and part != "."]


def _has_drive(name: str) -> bool:
    return len(name) >= 2 and name[1] == ":" and name[0].isalpha()


def _check_layout(members: list[tarfile.TarInfo]) -> tuple[str, str]:
    """Kedro's checks on the member list: one top folder, one package besides ``tests``."""
    folders: set[str] = set()
    init_files: set[str] = set()
    subfolders: set[tuple[str, str]] = set()
    for member in members:
        parts = _parts(member.name)
        if len(parts) > 1 or member.isdir():
            folders.add(parts[0])
        if len(parts) > 2 or (len(parts) == 2 and member.isdir()):
            subfolders.add((parts[0], parts[1]))
        if len(parts) == 3 and parts[2] == "__init__.py" and member.isreg():
            init_files.add(parts[1])
    if len(folders) != 1:
        contents = [Path(name) for name in sorted(folders)]  # Kedro's message lists paths
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


class _Spill:
    """Large members, streamed to ``<workdir>/member-<n>`` (the folder made on first use)."""

    def __init__(self, archive: Path, workdir: Path | Callable[[], Path]) -> None:
        self.archive = archive
        self._workdir = workdir
        self.workdir: Path | None = workdir if isinstance(workdir, Path) else None
        self.made_workdir = False
        self.paths: list[Path] = []

    def write(self, source: IO[bytes]) -> Path:
        """Copy ``source`` (a member's data) into a new file; return its path."""
        try:
            if self.workdir is None:
                assert not isinstance(self._workdir, Path)
                self.workdir = self._workdir()
            if not self.paths and not self.workdir.is_dir():
                self.workdir.mkdir(parents=True)
                self.made_workdir = True
            path = self.workdir / f"member-{len(self.paths)}"
            # O_EXCL: a name of ours, never anything that was already there (nor a link).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise self._error(exc) from exc
        self.paths.append(path)
        try:
            while block := source.read(1 << 20):  # a read error is the archive's
                try:
                    view = memoryview(block)
                    while view:
                        view = view[os.write(fd, view) :]
                except OSError as exc:
                    raise self._error(exc) from exc
        finally:
            os.close(fd)
        return path

    def _error(self, exc: OSError) -> PullError:
        where = f" into '{self.workdir}'" if self.workdir else ""
        return PullError(f"Cannot extract '{self.archive.name}'{where}: {exc}")

    def remove(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
        if self.made_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _inflate_whole(raw: IO[bytes], size: int, limit: int) -> bytes | None:
    """The whole decompressed stream of a small single-member gzip archive, when it is
    complete, valid and within ``limit``; else None, with ``raw`` back at its start: the
    streaming path then reads it, and reports whatever is wrong with it as it always did."""
    if size > WHOLE_ARCHIVE:
        return None
    start = raw.tell()
    data = raw.read(WHOLE_ARCHIVE + 1)
    inflater = zlib.decompressobj(wbits=31)  # gzip: its header, CRC and length are checked
    try:
        stream = inflater.decompress(data, min(limit, WHOLE_STREAM) + 1)
    except zlib.error:
        stream = None
    # Trailing bytes (another gzip member, padding) are GzipFile's to judge.
    if stream is None or not inflater.eof or inflater.unused_data or len(stream) > limit:
        raw.seek(start)
        return None
    return stream


def read_sdist(
    archive: Path,
    workdir: Path | Callable[[], Path],
    *,
    max_bytes: int = DEFAULT_MAX_SIZE,
    max_members: int = MAX_MEMBERS,
    archive_data: bytes | None = None,
) -> SdistContents:
    """Safely read the sdist ``archive``: its layout, metadata and files.

    ``archive_data``: the archive's bytes, already read (``archive`` then only names it).

    Every member header is checked before its data is read: absolute or ``..`` paths, a member
    that is the top folder itself, links, devices, FIFOs, duplicates, more than ``max_members``
    members or more than ``max_bytes`` bytes uncompressed raise :class:`PullError` naming the
    member. Past ``limits.BOMB_FLOOR`` bytes, a stream that decompresses to more than
    ``limits.BOMB_RATIO`` times the archive's size is refused whatever ``max_bytes`` is. The
    whole stream is read (its CRC checked) and Kedro's layout checks (one top folder; one
    package besides ``tests``) run before anything is returned.

    Files over ``limits.LARGE_FILE`` are streamed to temporary files in ``workdir`` (a folder,
    or a function giving one, called only then; the folder is created when needed and the
    caller removes it), the others held in memory. On any error, whatever this call wrote is
    removed.
    """
    raw: IO[bytes]
    if archive_data is not None:
        raw, size = io.BytesIO(archive_data), len(archive_data)
    else:
        try:
            raw = archive.open("rb")
        except OSError as exc:
            raise PullError(f"Cannot read sdist '{archive}': {exc.strerror or exc}") from exc
        size = os.fstat(raw.fileno()).st_size
    limit, by_ratio = Limits(max_bytes, max_members).stream_limit(size)
    large = limits.LARGE_FILE
    spill = _Spill(archive, workdir)
    files: dict[str, SdistFile] = {}
    try:
        with raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:  # (reads nothing yet)
            try:
                whole = _inflate_whole(raw, size, limit)
                stream: IO[bytes] = (
                    io.BufferedReader(_BoundedReader(gz, limit), buffer_size=64 * 1024)
                    if whole is None
                    else io.BytesIO(whole)
                )
                with tarfile.open(fileobj=stream, mode="r:") as tar:
                    check = _MemberCheck(archive, max_bytes=max_bytes, max_members=max_members)
                    for member in tar:
                        key = check(member)
                        if not member.isreg():
                            continue
                        source = tar.extractfile(member)
                        assert source is not None  # a regular file
                        with source:
                            data = spill.write(source) if member.size > large else source.read()
                        files[key] = SdistFile(data, bool(member.mode & 0o100))
                    # Reading to the end verifies the gzip CRC.
                    while stream.read(1024 * 1024):
                        pass
                    top, package = _check_layout(check.members)
            except _TooLarge:
                detail = bomb_message() if by_ratio else size_message(max_bytes)
                raise _refuse(archive, detail) from None
            except PullError:
                raise
            # ValueError/OverflowError: whatever else a malformed header makes tarfile raise.
            except (
                tarfile.TarError,
                EOFError,
                zlib.error,
                OSError,
                ValueError,
                OverflowError,
            ) as exc:
                raise _open_error(archive, exc) from exc
        prefix = f"{top}/"
        below = {rel[len(prefix) :]: f for rel, f in files.items() if rel.startswith(prefix)}
        version, requirements = read_metadata(_text_reader(below), below)
    except BaseException:
        spill.remove()
        raise
    folders = {*check.parents, *(key for key, is_dir in check.seen.items() if is_dir)}
    return SdistContents(
        top=top,
        package=package,
        version=version,
        requirements=requirements,
        files=below,
        folders=frozenset(f[len(prefix) :] for f in folders if f.startswith(prefix)),
    )


def _text_reader(files: Mapping[str, SdistFile]) -> Callable[[str], str | None]:
    def read_text(rel: str) -> str | None:
        item = files.get(rel)
        if item is None:
            return None
        try:
            return item.read().decode("utf-8", errors="replace")
        except OSError:
            return None

    return read_text
