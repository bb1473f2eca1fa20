"""Kedro project discovery and layout (0.18, 0.19 and 1.x), read statically."""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ._compat import tomllib
from .errors import ProjectError

__all__ = [
    "Project",
    "find_project",
    "installed_kedro_version",
    "kedro_major",
    "load_project",
    "read_pyproject",
]

_VERSION_RE = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?")


# The last file parsed, by path and bytes: a command reads pyproject.toml more than once (the
# start-up warning, the project, the doit configuration), and parsing a manifest of 1,000
# entries costs tens of milliseconds each time.
_last_parsed: tuple[Path, bytes, dict[str, Any]] | None = None


def read_pyproject(path: Path) -> dict[str, Any]:
    """Parse a ``pyproject.toml``; a syntax error becomes a one-line ``ProjectError``.

    The same bytes at the same path are parsed once: callers share the result and must not
    change it.
    """
    global _last_parsed
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProjectError(f"Cannot read '{path}': {exc.strerror}") from exc
    cached = _last_parsed
    if cached is not None and cached[0] == path and cached[1] == data:
        return cached[2]
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProjectError(f"Failed to parse '{path}': not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"Failed to parse '{path}': {exc}") from exc
    _last_parsed = (path, data, parsed)
    return parsed


@dataclass(frozen=True)
class Project:
    """A Kedro project: where its package, config, tests and requirements live."""

    root: Path
    package_name: str
    source_dir: Path
    conf_root: Path
    tests_dir: Path
    requirements_txt: Path
    pyproject: dict[str, Any] = field(repr=False, compare=False)

    @property
    def package_dir(self) -> Path:
        """``<source_dir>/<package_name>``."""
        return self.source_dir / self.package_name

    @property
    def requirements_in(self) -> Path:
        """``requirements.in`` beside the project's ``requirements.txt``."""
        return self.requirements_txt.with_name("requirements.in")

    @cached_property
    def _root_prefix(self) -> str:
        return str(self.root).rstrip("/") + "/"

    @property
    def state_dir(self) -> Path:
        """``.micropkg/``: doit state, caches and locks (meant to be gitignored)."""
        return self.root / ".micropkg"

    def rel(self, path: Path) -> str:
        """``path`` relative to the project root, posix, when inside it; else absolute."""
        # A string prefix is what ``relative_to`` decides for a POSIX path below the root,
        # at a tenth of its cost (called for every file of every micro-package).
        text, prefix = str(path), self._root_prefix
        if os.sep == "/" and text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix) :]
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def _parse_version(text: object) -> tuple[int, int, int] | None:
    match = _VERSION_RE.match(str(text)) if text else None
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def kedro_major(text: object) -> int | None:
    """The major version of a Kedro version string (``"1.0.0"`` → 1), or None."""
    version = _parse_version(text)
    return version[0] if version is not None else None


def installed_kedro_version() -> str | None:
    """The version of the ``kedro`` distribution installed beside us, from its metadata (Kedro
    is never imported), or None when there is none."""
    import importlib.util

    # Asked by every command of a project with [tool.kedro.micropkg]; importing
    # importlib.metadata and scanning the installed distributions costs ~30-45 ms, and where
    # Kedro is not importable (micropkg run from its own venv, pipx) there is no version.
    if importlib.util.find_spec("kedro") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kedro")
    except (PackageNotFoundError, OSError, ValueError):
        return None


def _conf_source(settings: Path) -> str:
    """``CONF_SOURCE`` when ``settings.py`` assigns it a plain string literal, else ``conf``."""
    try:
        tree = ast.parse(settings.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return "conf"
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "CONF_SOURCE" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    return "conf"


def find_project(start: Path) -> Path:
    """Walk up from ``start`` to the folder whose ``pyproject.toml`` has ``[tool.kedro]``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        try:
            data = candidate.read_bytes()
        except OSError:
            continue
        if b"[tool.kedro" in data:  # a file that is not UTF-8 is this project's, and its error
            return folder
    raise ProjectError(
        f"Not inside a Kedro project: no pyproject.toml with [tool.kedro] found in '{start}' "
        "or its parents."
    )


def load_project(start: Path) -> Project:
    """Find and read the Kedro project containing ``start`` (never imports user code)."""
    root = find_project(start)
    pyproject = read_pyproject(root / "pyproject.toml")
    kedro = pyproject.get("tool", {}).get("kedro")
    if not isinstance(kedro, dict):
        raise ProjectError(f"'{root / 'pyproject.toml'}' has no [tool.kedro] table.")
    package_name = kedro.get("package_name")
    if not isinstance(package_name, str) or not package_name.isidentifier():
        raise ProjectError(
            f"[tool.kedro] package_name in '{root / 'pyproject.toml'}' must be a Python package "
            f"name, got {package_name!r}."
        )
    source_dir = (root / str(kedro.get("source_dir", "src"))).resolve()
    version = _parse_version(kedro.get("kedro_init_version") or kedro.get("project_version"))
    old_layout = version is not None and version < (0, 19, 4)

    conf_root = root / _conf_source(source_dir / package_name / "settings.py")

    if (root / "tests").is_dir():
        tests_dir = root / "tests"
    elif (source_dir / "tests").is_dir() or old_layout:
        tests_dir = source_dir / "tests"
    else:
        tests_dir = root / "tests"

    if (root / "requirements.txt").is_file():
        requirements = root / "requirements.txt"
    elif (source_dir / "requirements.txt").is_file() or (version is not None and version < (0, 19)):
        requirements = source_dir / "requirements.txt"
    else:
        requirements = root / "requirements.txt"

    return Project(
        root=root,
        package_name=package_name,
        source_dir=source_dir,
        conf_root=conf_root,
        tests_dir=tests_dir,
        requirements_txt=requirements,
        pyproject=pyproject,
    )
