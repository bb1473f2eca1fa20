"""Deterministic sdist writer (contract §3).

The ``.tar.gz`` is built directly with :mod:`tarfile`: no build backend, no network,
byte-identical output for identical input. ``PKG-INFO``, ``pyproject.toml`` and ``MANIFEST.in``
are rendered from the shipped jinja2 templates.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._compat import toml_string
from .errors import PackageError
from .faults import fault
from .fsutil import atomic_writer, durable
from .limits import Limits, bomb_message, members_message, size_message
from .names import sdist_basename, shown, unsafe_character

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "DEFAULT_MTIME",
    "GENERATED_FILES",
    "SdistSpec",
    "render_members",
    "sdist_top",
    "templates_digest",
    "write_sdist",
]

TEMPLATES_PACKAGE = "micropkg_tasks.templates"
# Output file name -> template name; these are written at the top of the sdist.
GENERATED_FILES: Mapping[str, str] = {
    "MANIFEST.in": "MANIFEST.in.j2",
    "PKG-INFO": "PKG-INFO.j2",
    "pyproject.toml": "pyproject.toml.j2",
}
# 1980-01-01: the earliest timestamp a zip (wheel) can hold, so tools never choke on it.
DEFAULT_MTIME = 315532800
#: Suffix of a tarball being written (``.<name>.<hex>.tmp`` beside the target).
TEMP_SUFFIX = ".tmp"

FILE_MODE = 0o644
DIR_MODE = 0o755
#: gzip level 6, what ``gzip`` and ``tar czf`` use by default: about twice as fast as 9 on large
#: members for a few percent of size. The bytes depend on zlib (not on Python): the same
#: inputs give the same tarball on Python 3.10-3.13 with the same zlib.
GZIP_LEVEL = 6
_COPY_CHUNK = 1 << 20
_GZIP_INPUT = 1 << 16
# PEP 508 distribution names (ASCII only); the package folder name doubles as one.
_PROJECT_NAME_RE = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)


@dataclass(frozen=True)
class SdistSpec:
    """What goes into one micro-package sdist.

    ``files`` maps member paths relative to the sdist top folder (``<name>/...``,
    ``<name>/config/...``, ``tests/...``) to their contents, or to the file to copy them from
    (streamed in chunks: a large data file is never held in memory).
    """

    name: str
    version: str
    requirements: tuple[str, ...]
    files: Mapping[str, bytes | Path]


def sdist_top(name: str, version: str) -> str:
    """The sdist's file stem and top folder: PEP 625 ``{normalized_name}-{canonical_version}``."""
    return sdist_basename(name, version)


def _template_sources() -> dict[str, str]:
    """The text of every ``*.j2`` template, by file name."""
    folder = resources.files(TEMPLATES_PACKAGE)
    return {
        item.name: item.read_text(encoding="utf-8")
        for item in folder.iterdir()
        if item.name.endswith(".j2") and item.is_file()
    }


def templates_digest() -> str:
    """sha256 over the names and contents of the templates (feeds doit's ``config_changed``)."""
    digest = hashlib.sha256()
    for name, text in sorted(_template_sources().items()):
        encoded = text.encode("utf-8")
        digest.update(f"{name}\0{len(encoded)}\0".encode())
        digest.update(encoded)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """The jinja2 environment over the shipped templates (built once per process)."""
    import jinja2

    sources = _template_sources()

    def load(name: str) -> str | None:
        return sources.get(name)

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["toml_str"] = toml_string
    return env


def _check_spec(spec: SdistSpec) -> None:
    """Reject a spec that would give a broken or unpullable sdist."""
    if not _PROJECT_NAME_RE.fullmatch(spec.name) or not spec.name.isidentifier():
        raise PackageError(
            f"'{spec.name}' cannot name a micro-package sdist: use ASCII letters, digits and "
            "underscores, starting and ending with a letter or digit."
        )
    if spec.name == "tests":
        raise PackageError("'tests' cannot name a micro-package: it is reserved for its tests.")
    for requirement in spec.requirements:
        if not requirement.strip() or unsafe_character(requirement, allow="\t") is not None:
            raise PackageError(
                f"Invalid requirement '{shown(requirement)}' for '{spec.name}': "
                "expected one PEP 508 requirement on a single line."
            )
    for member in spec.files:
        parts = member.split("/")
        if (
            "\\" in member
            or any(part in ("", ".", "..") for part in parts)
            or parts[0] not in (spec.name, "tests")
            or len(parts) < 2
        ):
            raise PackageError(
                f"Invalid sdist member '{member}' for '{spec.name}': expected a relative path "
                f"under '{spec.name}/' or 'tests/'."
            )
    if f"{spec.name}/__init__.py" not in spec.files:
        raise PackageError(
            f"Micro-package '{spec.name}' has no '__init__.py': it could not be pulled."
        )


def render_members(spec: SdistSpec) -> dict[str, bytes | Path]:
    """``spec.files`` plus ``PKG-INFO``, ``pyproject.toml`` and ``MANIFEST.in`` from templates.

    Keys are paths relative to the sdist top folder.
    """
    from packaging.version import Version

    _check_spec(spec)
    sdist_top(spec.name, spec.version)  # validates the version (PEP 440)
    env = _environment()
    context: dict[str, Any] = {
        "name": spec.name,
        "version": str(Version(spec.version)),
        "summary": f"Micro-package `{spec.name}`",
        "requirements": [req.strip() for req in spec.requirements],
        "has_tests": any(member.startswith("tests/") for member in spec.files),
    }
    members: dict[str, bytes | Path] = dict(spec.files)
    for filename, template in GENERATED_FILES.items():
        members[filename] = env.get_template(template).render(context).encode("utf-8")
    return members


def _source_date_epoch() -> int:
    """The timestamp of every member: ``SOURCE_DATE_EPOCH`` if set, else 1980-01-01."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return DEFAULT_MTIME
    try:
        value = int(raw)
    except ValueError:
        raise PackageError(
            f"SOURCE_DATE_EPOCH must be an integer number of seconds, got '{raw}'."
        ) from None
    if value < 0:
        raise PackageError(f"SOURCE_DATE_EPOCH must not be negative, got '{raw}'.")
    return value


def _tar_info(arcname: str, *, size: int, is_dir: bool, mtime: int) -> tarfile.TarInfo:
    """A member header with everything that could vary between machines fixed."""
    info = tarfile.TarInfo(arcname)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = DIR_MODE if is_dir else FILE_MODE
    info.size = size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# A ustar header after its type flag: no link name, the POSIX magic, no user, group or device
# numbers, no prefix, the padding to 512 bytes.
_USTAR_TAIL = b"\0" * 100 + tarfile.POSIX_MAGIC + b"\0" * (32 + 32 + 8 + 8 + 155 + 12)
_LIMIT = 8**11  # the largest size or time a ustar header holds, plus one


def _header(arcname: str, *, size: int, is_dir: bool, mtime: int) -> bytes:
    """The header block(s) ``TarFile.addfile`` writes for :func:`_tar_info`'s member in PAX
    format. Made here for an ASCII name of up to 100 characters, which tarfile writes as one
    ustar block (every member of most micro-packages: tarfile's pure-Python headers were a
    fifth of packaging's main process); by tarfile for any other."""
    name = f"{arcname}/" if is_dir else arcname
    if not (len(name) <= 100 and name.isascii() and 0 <= size < _LIMIT and 0 <= mtime < _LIMIT):
        info = _tar_info(arcname, size=size, is_dir=is_dir, mtime=mtime)
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    block = b"".join(
        (
            name.encode("ascii").ljust(100, b"\0"),
            b"%07o\0" % (DIR_MODE if is_dir else FILE_MODE),
            b"0000000\0" * 2,  # uid, gid
            b"%011o\0%011o\0" % (size, mtime),
            b" " * 8,  # the checksum's field counts as spaces in the checksum
            tarfile.DIRTYPE if is_dir else tarfile.REGTYPE,
            _USTAR_TAIL,
        )
    )
    return b"%s%06o\0%s" % (block[:148], sum(block), block[155:])


_Entry = tuple[str, "bytes | Path | None", int]


def _entries(top: str, members: Mapping[str, bytes | Path]) -> list[_Entry]:
    """Every directory (``None``) and file of the archive with its size, parents first, sorted."""
    entries: dict[tuple[str, ...], bytes | Path | None] = {(top,): None}
    for member, content in members.items():
        parts = (top, *member.split("/"))
        for depth in range(2, len(parts)):
            entries.setdefault(parts[:depth], None)
        entries[parts] = content if isinstance(content, Path) else bytes(content)
    result: list[_Entry] = []
    for parts, data in sorted(entries.items()):
        size = 0 if data is None else len(data) if isinstance(data, bytes) else _size(data)
        result.append(("/".join(parts), data, size))
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise PackageError(f"Cannot read '{path}': {exc.strerror or exc}") from exc


def _check_limits(name: str, entries: list[_Entry], limits: Limits) -> None:
    """Refuse what a pull would refuse (same order, same sums, same words)."""
    if len(entries) > limits.max_members:
        raise PackageError(f"Cannot package '{name}': {members_message(limits.max_members)}")
    total = 0
    for arcname, data, size in entries:
        total += size if data is not None else 0
        if total > limits.max_size:
            raise PackageError(f"Cannot package '{name}': {size_message(limits.max_size, arcname)}")


def _copy_file(out: IO[bytes], path: Path, size: int) -> None:
    """Stream ``size`` bytes of ``path`` to ``out`` in chunks (a large file is never held)."""
    with path.open("rb") as stream:
        if os.fstat(stream.fileno()).st_size != size:
            raise PackageError(f"'{path}' changed while it was being packaged; run again.")
        left = size
        while left:
            chunk = stream.read(min(left, _COPY_CHUNK))
            if not chunk:
                raise OSError("unexpected end of data")  # (tarfile's words)
            out.write(chunk)
            left -= len(chunk)


def _write_tar_gz(raw: IO[bytes], top: str, entries: list[_Entry]) -> int:
    """Write the archive to ``raw``; return the length of the (uncompressed) tar stream.

    The bytes are those of ``tarfile`` in PAX format adding each entry with ``addfile``, then
    closing: each header, the member's data padded to 512 bytes, two zero blocks, zeros to a
    multiple of 10,240 bytes.
    """
    mtime = _source_date_epoch()
    # filename="" and mtime=0 keep the gzip header free of the temp name and the clock.
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL)
    with gz:
        # Gathered here, gzip is called once per 64 KiB instead of three times per member.
        # Deflate's output does not depend on how its input is split: the bytes are the same.
        out = io.BufferedWriter(gz, buffer_size=_GZIP_INPUT)
        offset = 0
        try:
            for arcname, data, size in entries:
                header = _header(arcname, size=size, is_dir=data is None, mtime=mtime)
                out.write(header)
                if isinstance(data, Path):
                    _copy_file(out, data, size)
                elif data:
                    out.write(data)
                blocks = -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                out.write(b"\0" * (blocks - size))
                offset += len(header) + blocks
            offset += 2 * tarfile.BLOCKSIZE  # the end of the archive, then whole records
            out.write(b"\0" * (2 * tarfile.BLOCKSIZE + -offset % tarfile.RECORDSIZE))
        finally:
            out.detach()  # flushed into gzip, which stays open to be finished
        return gz.tell()


def write_sdist(path: Path, spec: SdistSpec, *, limits: Limits | None = None) -> None:
    """Write the sdist of ``spec`` to ``path``, reproducibly and atomically.

    The archive is written to a hidden temp file in ``path``'s folder and renamed over ``path``
    only when complete; on any failure the temp file is removed and ``path`` is left as it was.
    Files given as paths are streamed in chunks. An sdist that ``pull`` would refuse under
    ``limits`` (too large, too many members, a compression ratio that looks like a gzip bomb)
    is refused with the same words, and nothing is written.
    """
    limits = limits or Limits()
    _source_date_epoch()  # a bad SOURCE_DATE_EPOCH is an error before any folder is created
    members = render_members(spec)
    top = sdist_top(spec.name, spec.version)
    entries = _entries(top, members)
    _check_limits(path.name, entries, limits)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path, suffix=TEMP_SUFFIX, fsync=durable(), shared_folder=True) as raw:
            stream_length = _write_tar_gz(raw, top, entries)
            limit, by_ratio = limits.stream_limit(raw.tell())
            if stream_length > limit:
                detail = bomb_message() if by_ratio else size_message(limits.max_size)
                raise PackageError(f"Cannot package '{path.name}': {detail}")
            fault("sdist")
    except OSError as exc:
        raise PackageError(f"Cannot write sdist '{path}': {exc.strerror or exc}") from exc
