"""Which files belong to a micro-package: code, parameter files and tests."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import PackageError
from .journal import is_our_temp
from .project import Project

__all__ = [
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "Collected",
    "ConfigIndex",
    "collect",
    "is_parameter_file",
    "is_skipped",
    "read_version",
    "walk_files",
]

EXCLUDED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints"})
EXCLUDED_FILES = frozenset({".DS_Store"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Collected:
    """The input files of one micro-package, as (absolute path, relative posix path) pairs.

    Code paths are relative to the micro-package folder, config paths to ``conf/<env>``,
    test paths to the micro-package's tests folder.
    """

    code_dir: Path
    tests_dir: Path
    conf_dir: Path
    code: tuple[tuple[Path, str], ...]
    config: tuple[tuple[Path, str], ...]
    tests: tuple[tuple[Path, str], ...]

    def all_paths(self) -> list[Path]:
        """Every input file (for doit's ``file_dep``)."""
        return [p for group in (self.code, self.config, self.tests) for p, _ in group]


def walk_files(folder: Path) -> list[tuple[Path, str]]:
    """Every regular file below ``folder`` except caches and our own staged/backup files
    (``.<name>.micropkg-tmp``/``-bak``), sorted by relative posix path.

    What ``os.walk`` and ``os.path.isfile`` would find (symlinked folders are not entered, a
    symlink to a file counts), from ``scandir``'s entry types: no ``stat`` per file."""
    found: list[tuple[Path, str]] = []
    stack = [(str(folder), "")]
    while stack:
        dirpath, prefix = stack.pop()
        try:
            with os.scandir(dirpath) as scan:
                entries = list(scan)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir():
                    if name not in EXCLUDED_DIRS and not entry.is_symlink():
                        stack.append((entry.path, f"{prefix}{name}/"))
                    continue
                is_file = entry.is_file()
            except OSError:
                continue
            if is_file and not _skipped_name(name):
                found.append((Path(entry.path), prefix + name))
    found.sort(key=lambda item: item[1])
    return found


def _skipped_name(name: str) -> bool:
    return name in EXCLUDED_FILES or name.endswith(EXCLUDED_SUFFIXES) or is_our_temp(name)


def is_skipped(rel: str) -> bool:
    """Whether :func:`walk_files` skips the file at ``rel`` (a relative posix path)."""
    *folders, name = rel.split("/")
    return _skipped_name(name) or any(folder in EXCLUDED_DIRS for folder in folders)


def is_parameter_file(rel: str, name: str) -> bool:
    """Whether ``conf/<env>/<rel>`` is a parameter file of micro-package ``name``.

    Kedro's four globs (``**/parameters_<name>.yml``, ``**/<name>/**/*``,
    ``parameters*/**/<name>.yml``, ``parameters*/**/<name>/**/*``), narrowed to what its
    MANIFEST.in then shipped: the file name or the first folder starts with ``parameters``.
    """
    parts = rel.split("/")
    basename, dirs = parts[-1], parts[:-1]
    if not (basename.startswith("parameters") or (dirs and dirs[0].startswith("parameters"))):
        return False
    if basename == f"parameters_{name}.yml" or name in dirs:
        return True
    return bool(dirs) and dirs[0].startswith("parameters") and basename == f"{name}.yml"


class ConfigIndex:
    """The parameter files of one ``conf/<env>`` folder by micro-package name (one walk)."""

    def __init__(self, conf_dir: Path) -> None:
        self.conf_dir = conf_dir
        self._by_name: dict[str, list[tuple[Path, str]]] = {}
        if conf_dir.is_dir():
            for path, rel in walk_files(conf_dir):
                for name in _candidate_names(rel):
                    if is_parameter_file(rel, name):
                        self._by_name.setdefault(name, []).append((path, rel))

    def files_for(self, name: str) -> tuple[tuple[Path, str], ...]:
        """Parameter files of micro-package ``name``, sorted by relative path."""
        return tuple(self._by_name.get(name, ()))


def _candidate_names(rel: str) -> set[str]:
    """Names a conf file could be a parameter file of (then checked by the real rule)."""
    *dirs, base = rel.split("/")
    names = set(dirs)
    if base.endswith(".yml"):
        stem = base[: -len(".yml")]
        names.add(stem.removeprefix("parameters_"))
        names.add(stem)
    return names


def collect(
    project: Project,
    module_path: str,
    env: str = "base",
    config_index: ConfigIndex | None = None,
) -> Collected:
    """Collect the files of micro-package ``module_path`` (e.g. ``pipelines.data_science``).

    Pass a ``config_index`` of ``conf/<env>`` to share one walk between micro-packages.
    """
    parts = module_path.split(".")
    code_dir = project.package_dir.joinpath(*parts)
    if not code_dir.is_dir():
        as_module = code_dir.with_suffix(".py")
        if as_module.is_file() or code_dir.is_file():
            found = as_module if as_module.is_file() else code_dir
            raise PackageError(
                f"'{module_path}' is a module file ({found}), not a package directory: "
                "only directories can be micro-packages."
            )
        raise PackageError(f"Directory '{code_dir}' doesn't exist.")
    code = walk_files(code_dir)
    if not code:
        raise PackageError(f"'{code_dir}' is an empty directory.")

    tests_dir = project.tests_dir.joinpath(*parts)
    tests = walk_files(tests_dir) if tests_dir.is_dir() else []

    conf_dir = project.conf_root / env
    if config_index is None or config_index.conf_dir != conf_dir:
        config_index = ConfigIndex(conf_dir)
    config = config_index.files_for(parts[-1])
    return Collected(code_dir, tests_dir, conf_dir, tuple(code), config, tuple(tests))


def _static_version(init_file: Path) -> str | None:
    """``__version__`` assigned as a string literal at the top level of ``init_file``."""
    try:
        source = init_file.read_bytes()
    except OSError:
        return None
    if b"__version__" not in source:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        is_version = any(isinstance(t, ast.Name) and t.id == "__version__" for t in targets)
        if is_version and isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
    return None


def read_version(project: Project, module_path: str) -> str:
    """The micro-package's ``__version__``, else the project package's, else ``0.1``."""
    code_init = project.package_dir.joinpath(*module_path.split("."), "__init__.py")
    return (
        _static_version(code_init) or _static_version(project.package_dir / "__init__.py") or "0.1"
    )
