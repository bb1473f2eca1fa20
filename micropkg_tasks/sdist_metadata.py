"""Metadata of a read sdist (version, requirements), read without running anything."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._compat import tomllib
from .errors import PullError
from .names import describe_character, shown, unsafe_character

__all__ = ["read_metadata"]

# PEP 508 distribution names (core metadata ``Name``); always ``fullmatch``.
_NAME_RE = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)


#: The text of a file of the sdist, by its path below the top folder (``PKG-INFO``), decoded
#: as UTF-8 with replacement characters; ``None`` when there is no such file.
ReadText = Callable[[str], "str | None"]


def _clean(values: list[str], where: str) -> tuple[str, ...]:
    """The stripped, non-empty ``values``; a line break or control character is refused.

    Our own check (``packaging`` 23-25 accept a URL running on past U+2028 or a form feed):
    pip splits requirements files with ``str.splitlines()``, so such a value written into
    ``requirements.in`` would smuggle in an option line.
    """
    for value in values:
        bad = unsafe_character(value, allow="\t")
        if bad is not None:
            raise PullError(
                f"Invalid requirement '{shown(value.strip())}' in the sdist's {where}: it "
                f"contains {describe_character(bad)}; a requirement must be one line."
            )
    return tuple(value.strip() for value in values if value.strip())


def _checked_name(raw: str) -> None:
    """Refuse a ``PKG-INFO`` ``Name`` that is not a PEP 508 distribution name."""
    if not _NAME_RE.fullmatch(raw.strip()) or unsafe_character(raw) is not None:
        raise PullError(
            f"Invalid name '{shown(raw.strip())}' in the sdist's PKG-INFO: not a valid "
            "distribution name."
        )


def _checked_version(raw: str, where: str) -> str | None:
    """``raw`` stripped, when it is a PEP 440 version on one line (``None`` when empty)."""
    from packaging.version import InvalidVersion, Version

    text = raw.strip()
    if not text:
        return None
    try:
        if unsafe_character(raw) is not None:
            raise InvalidVersion(text)
        Version(text)
    except InvalidVersion:
        raise PullError(
            f"Invalid version '{shown(text)}' in the sdist's {where}: not a PEP 440 version."
        ) from None
    return text


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
    return _clean(out, "requires.txt")


def _pyproject_project(read_text: ReadText) -> dict[str, Any]:
    text = read_text("pyproject.toml")
    if text is None:
        return {}
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
    return _clean([dep for dep in deps if isinstance(dep, str)], "pyproject.toml dependencies")


def read_metadata(read_text: ReadText, files: Iterable[str]) -> tuple[str | None, tuple[str, ...]]:
    """The version and requirements of an sdist, read without running anything.

    ``read_text`` gives a file's text by its path below the sdist's top folder; ``files``
    lists every file's path there.

    Requirements come from ``PKG-INFO``'s ``Requires-Dist`` unless it has none or declares them
    ``Dynamic``; then from ``*.egg-info/requires.txt``; then from the static
    ``[project].dependencies`` of ``pyproject.toml``.
    """
    from email.parser import HeaderParser

    version: str | None = None
    requires_dist: tuple[str, ...] = ()
    dynamic: set[str] = set()
    pkg_info = read_text("PKG-INFO")
    if pkg_info is not None:
        headers = HeaderParser().parsestr(pkg_info)
        name = headers.get("Name")
        if name is not None:
            _checked_name(str(name))
        version = _checked_version(str(headers.get("Version") or ""), "PKG-INFO")
        requires_dist = _clean(
            [str(value) for value in headers.get_all("Requires-Dist") or []],
            "PKG-INFO (Requires-Dist)",
        )
        dynamic = {str(value).strip().lower() for value in headers.get_all("Dynamic") or []}
    if requires_dist and "requires-dist" not in dynamic:
        requirements: tuple[str, ...] | None = requires_dist
    else:
        requirements = None
        # The first ``*.egg-info/requires.txt`` in path order (folder names compared whole).
        found = (rel.split("/") for rel in files)
        for parts in sorted(p for p in found if len(p) == 2 and _is_requires_txt(p)):
            text = read_text("/".join(parts))
            if text is not None:
                requirements = _requires_txt(text)
                break
    project: dict[str, Any] | None = None
    if requirements is None:
        project = _pyproject_project(read_text)
        requirements = _static_dependencies(project)
    if version is None:
        project = _pyproject_project(read_text) if project is None else project
        dynamic_fields = project.get("dynamic", [])
        raw_version = project.get("version")
        if isinstance(raw_version, str) and "version" not in dynamic_fields:
            version = _checked_version(raw_version, "pyproject.toml")
    return version, requirements if requirements is not None else requires_dist


def _is_requires_txt(parts: list[str]) -> bool:
    return parts[0].endswith(".egg-info") and parts[1] == "requires.txt"
