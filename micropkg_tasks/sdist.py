"""Deterministic sdist writer and safe sdist reader (contract §3 and §4).

The writer builds the ``.tar.gz`` directly with :mod:`tarfile`: no build backend, no network,
byte-identical output for identical input. The reader checks every member of an untrusted
archive before extracting anything, extracts with the ``data`` filter, and reads the metadata
from ``PKG-INFO`` (never by running a build backend).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import os
import re
import secrets
import shutil
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ._toml import toml_string
from .errors import PackageError, PullError
from .names import sdist_basename

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "DEFAULT_MTIME",
    "GENERATED_FILES",
    "SdistContents",
    "SdistSpec",
    "extract_sdist",
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

_FILE_MODE = 0o644
_DIR_MODE = 0o755
# PEP 508 distribution names (ASCII only); the package folder name doubles as one.
_PROJECT_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SdistSpec:
    """What goes into one micro-package sdist.

    ``files`` maps member paths relative to the sdist top folder (``<name>/...``,
    ``<name>/config/...``, ``tests/...``) to their contents.
    """

    name: str
    version: str
    requirements: tuple[str, ...]
    files: Mapping[str, bytes]


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
    if not _PROJECT_NAME_RE.match(spec.name) or not spec.name.isidentifier():
        raise PackageError(
            f"'{spec.name}' cannot name a micro-package sdist: use ASCII letters, digits and "
            "underscores, starting and ending with a letter or digit."
        )
    if spec.name == "tests":
        raise PackageError("'tests' cannot name a micro-package: it is reserved for its tests.")
    for requirement in spec.requirements:
        if not requirement.strip() or _CONTROL_RE.search(requirement):
            raise PackageError(
                f"Invalid requirement {requirement!r} for '{spec.name}': "
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


def render_members(spec: SdistSpec) -> dict[str, bytes]:
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
    members = dict(spec.files)
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
    info.mode = _DIR_MODE if is_dir else _FILE_MODE
    info.size = size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _entries(top: str, members: Mapping[str, bytes]) -> list[tuple[str, bytes | None]]:
    """Every directory (``None``) and file of the archive, parents first, sorted."""
    entries: dict[tuple[str, ...], bytes | None] = {(top,): None}
    for member, data in members.items():
        parts = (top, *member.split("/"))
        for depth in range(2, len(parts)):
            entries.setdefault(parts[:depth], None)
        entries[parts] = bytes(data)
    return [("/".join(parts), data) for parts, data in sorted(entries.items())]


def _write_tar_gz(raw: io.BufferedWriter, top: str, members: Mapping[str, bytes]) -> None:
    mtime = _source_date_epoch()
    # filename="" and mtime=0 keep the gzip header free of the temp name and the clock.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for arcname, data in _entries(top, members):
            if data is None:
                tar.addfile(_tar_info(arcname, size=0, is_dir=True, mtime=mtime))
            else:
                info = _tar_info(arcname, size=len(data), is_dir=False, mtime=mtime)
                tar.addfile(info, io.BytesIO(data))


def write_sdist(path: Path, spec: SdistSpec) -> None:
    """Write the sdist of ``spec`` to ``path``, reproducibly and atomically.

    The archive is written to a hidden temp file in ``path``'s folder and renamed over ``path``
    only when complete; on any failure the temp file is removed and ``path`` is left as it was.
    """
    members = render_members(spec)
    top = sdist_top(spec.name, spec.version)
    try:
        fd, temp = _create_temp(path)
    except OSError as exc:
        raise PackageError(f"Cannot write sdist '{path}': {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as raw:
            _write_tar_gz(raw, top, members)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PackageError(f"Cannot write sdist '{path}': {exc.strerror or exc}") from exc
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, hidden file beside ``path`` (same file system, so the final rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never reuse an existing file; 0o666: the usual umask-governed mode.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


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
    members: list[tarfile.TarInfo] = []
    seen: dict[str, bool] = {}  # normalised path of each member -> is a folder
    parents: set[str] = set()  # folders implied by the members' paths
    total = 0
    for member in tar:
        name = member.name
        if len(members) >= max_members:
            raise _refuse(archive, f"it has more than {max_members} members.")
        if name.startswith(("/", "\\")) or _has_drive(name):
            raise _refuse(archive, f"member '{name}' has an absolute path.")
        if "\\" in name or "\0" in name:
            raise _refuse(archive, f"member '{name}' has an unsafe name.")
        parts = PurePosixPath(name).parts
        if ".." in parts:
            raise _refuse(archive, f"member '{name}' escapes the target folder.")
        if not parts:
            raise _refuse(archive, f"member '{name}' resolves to the target folder itself.")
        kind = _member_kind(member)
        if kind is not None:
            raise _refuse(archive, f"member '{name}' {kind}.")
        try:
            inside = root in (root / Path(*parts)).resolve().parents
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
            raise _refuse(
                archive,
                f"its contents exceed {max_bytes} bytes uncompressed (at member '{name}').",
            )
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
    return top, packages[0]


def _open_error(archive: Path, exc: BaseException) -> PullError:
    detail = str(exc) or type(exc).__name__
    return PullError(f"'{archive.name}' is not a valid .tar.gz sdist: {detail}")


def _stream_limit(max_bytes: int, max_members: int) -> int:
    # Member data plus, per member, a header block and room for pax/long-name headers.
    return max_bytes + (max_members + 8) * 4 * tarfile.BLOCKSIZE + tarfile.RECORDSIZE


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
    max_bytes: int = 200 * 1024**2,
    max_members: int = 20000,
) -> SdistContents:
    """Safely extract the sdist ``archive`` into ``dest`` and read its layout and metadata.

    Every member is checked before anything is written: absolute or ``..`` paths, a member that
    is the target folder itself, links, devices, FIFOs, duplicates, more than ``max_members``
    members or more than ``max_bytes`` bytes uncompressed raise :class:`PullError` naming the
    member. Kedro's layout checks (one top folder; one package besides ``tests``) also run
    before extraction, so a refused archive leaves ``dest`` untouched.
    """
    try:
        raw = archive.open("rb")
    except OSError as exc:
        raise PullError(f"Cannot read sdist '{archive}': {exc.strerror or exc}") from exc
    limit = _stream_limit(max_bytes, max_members)
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
            raise _refuse(archive, f"its contents exceed {max_bytes} bytes uncompressed.") from None
        except PullError:
            raise
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _open_error(archive, exc) from exc
    root = dest / top
    version, requirements = _read_metadata(root)
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


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _clean(values: list[str]) -> tuple[str, ...]:
    return tuple(value.strip() for value in values if value.strip())


def _requires_txt(text: str) -> tuple[str, ...]:
    """setuptools' ``requires.txt``: ``[:marker]`` sections become ``req; marker``.

    Extras sections (``[extra]``, ``[extra:marker]``) are skipped: a pull installs no extras.
    """
    out: list[str] = []
    marker: str | None = None
    skip = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, section_marker = line[1:-1].partition(":")
            skip = bool(extra.strip())
            marker = section_marker.strip() or None
            continue
        if skip:
            continue
        if marker is None:
            out.append(line)
        elif ";" in line:
            requirement, _, own = line.partition(";")
            out.append(f"{requirement.strip()}; ({own.strip()}) and ({marker})")
        else:
            out.append(f"{line}; {marker}")
    return tuple(out)


def _pyproject_project(root: Path) -> dict[str, Any]:
    text = _read_text(root / "pyproject.toml")
    if text is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomlkit

        try:
            data: dict[str, Any] = tomlkit.parse(text).unwrap()
        except Exception:
            return {}
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return {}
    project = data.get("project")
    return project if isinstance(project, dict) else {}


def _static_dependencies(project: Mapping[str, Any]) -> tuple[str, ...] | None:
    dynamic = project.get("dynamic", [])
    deps = project.get("dependencies")
    if (isinstance(dynamic, list) and "dependencies" in dynamic) or not isinstance(deps, list):
        return None
    return _clean([dep for dep in deps if isinstance(dep, str)])


def _read_metadata(root: Path) -> tuple[str | None, tuple[str, ...]]:
    """The version and requirements of the sdist at ``root``, read without running anything.

    Requirements come from ``PKG-INFO``'s ``Requires-Dist`` unless it has none or declares them
    ``Dynamic``; then from ``*.egg-info/requires.txt``; then from the static
    ``[project].dependencies`` of ``pyproject.toml``.
    """
    from email.parser import HeaderParser

    version: str | None = None
    requires_dist: tuple[str, ...] = ()
    dynamic: set[str] = set()
    pkg_info = _read_text(root / "PKG-INFO")
    if pkg_info is not None:
        headers = HeaderParser().parsestr(pkg_info)
        version = (headers.get("Version") or "").strip() or None
        requires_dist = _clean([str(value) for value in headers.get_all("Requires-Dist") or []])
        dynamic = {str(value).strip().lower() for value in headers.get_all("Dynamic") or []}
    if requires_dist and "requires-dist" not in dynamic:
        requirements: tuple[str, ...] | None = requires_dist
    else:
        requirements = None
        for requires in sorted(root.glob("*.egg-info/requires.txt")):
            text = _read_text(requires)
            if text is not None:
                requirements = _requires_txt(text)
                break
    project: dict[str, Any] | None = None
    if requirements is None:
        project = _pyproject_project(root)
        requirements = _static_dependencies(project)
    if version is None:
        project = _pyproject_project(root) if project is None else project
        dynamic_fields = project.get("dynamic", [])
        raw_version = project.get("version")
        if isinstance(raw_version, str) and "version" not in dynamic_fields:
            version = raw_version.strip() or None
    return version, requirements if requirements is not None else requires_dist
