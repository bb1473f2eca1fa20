"""Where a pulled sdist's files land in the project, with imports rewritten (the layout
pull, upgrade and the pulled-version cache share), and the one rule for ``__init__.py``
files of folders a pull created."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .ahead import Rewrite, Rewriter, run_rewrite
from .collect import is_skipped
from .errors import ManifestError, PullError
from .journal import relative_paths
from .lockfile import Lock
from .manifest import PullEntry
from .names import config_file_name, normalize_destination, validate_alias
from .project import Project

if TYPE_CHECKING:
    from .sdist_reader import SdistContents, SdistFile

__all__ = ["Content", "Layout", "keep_packages", "lay_out", "target_name"]


def target_name(entry: PullEntry, package: str) -> str:
    """The folder name the micro-package gets: the alias, else the sdist's package name."""
    if entry.alias:
        return validate_alias(entry.alias)  # it becomes a folder name, whoever built the entry
    try:
        return validate_alias(package)
    except ManifestError as exc:
        raise PullError(f"Cannot pull the sdist's package as is: {exc} Use --alias.") from None


def _intermediate_inits(
    project: Project, folder: Path, stop: Path, owned: Collection[str]
) -> list[Path]:
    """``__init__.py`` of ``folder`` and each parent below ``stop`` that this pull creates:
    the folder does not exist yet, or an earlier pull of the same entry created it (so a
    re-pull keeps what the first pull made)."""
    inits = []
    while folder != stop and stop in folder.parents:
        init = folder / "__init__.py"
        if not folder.exists() or project.rel(init) in owned:
            inits.append(init)
        folder = folder.parent
    return inits


Content = bytes | Path
"""A file's new content, or (a large file, see ``limits.LARGE_FILE``) the file holding it."""


@dataclass(frozen=True)
class Layout:
    """The files a pull writes (absolute path → content) and what it found on the way."""

    module: str
    writes: dict[Path, Content]
    executable: frozenset[Path]
    warnings: list[str]


def lay_out(
    project: Project,
    entry: PullEntry,
    contents: SdistContents,
    lock: Lock,
    *,
    rewrite: Rewriter = run_rewrite,
) -> Layout:
    """Map the read sdist onto project paths, with imports rewritten (through ``rewrite``)."""
    from .rewrite import submodule_names

    package = contents.package
    name = target_name(entry, package)
    dest = normalize_destination(entry.destination)
    module = ".".join((*dest, name))
    new_import = f"{project.package_name}.{module}"
    code_root = project.package_dir.joinpath(*dest, name)
    tests_root = project.tests_dir.joinpath(*dest, name)
    conf_root = project.conf_root / entry.env
    previous = lock.entries.get(module)
    owned = previous.files if previous else {}
    rel_of = relative_paths(project.root, project.rel)

    writes: dict[Path, Content] = {}
    executable: set[Path] = set()
    warnings: list[str] = []
    config_code: list[str] = []
    files = [(rel, item) for rel, item in contents.under(package) if not is_skipped(rel)]
    # The modules that land as code (``config/`` goes to conf/, but its Python files are code):
    # a one-word package name in a string is rewritten only when a real module follows it
    # ("report.nodes", not "report.html").
    submodules = submodule_names(
        rel for rel, _ in files if not rel.startswith("config/") or rel.endswith(".py")
    )

    def add(target: Path, item: SdistFile, rel: str, code: bool) -> None:
        if item.executable:
            executable.add(target)
        if not (code and rel.endswith(".py")):
            writes[target] = item.data  # a large file stays a file: streamed when staged
            return
        call = Rewrite(package, new_import, rel_of(target), submodules=submodules)
        result = rewrite(call, item.read())
        writes[target] = result.text
        warnings.extend(result.warnings)

    for rel, item in files:
        if rel.startswith("config/") and not rel.endswith(".py"):
            config_rel = config_file_name(rel[len("config/") :], package, entry.alias)
            add(conf_root / config_rel, item, rel, code=False)
        else:
            if rel.startswith("config/"):
                config_code.append(rel)
            add(code_root / rel, item, rel, code=True)
    if config_code:
        warnings.append(
            f"'{package}/config/' holds Python files; they were installed as code in "
            f"{project.rel(code_root / 'config')}/, never into {project.rel(conf_root)}/ "
            f"(where the other files of config/ go): {', '.join(config_code)}"
        )
    if "tests" in contents.folders:
        for rel, item in contents.under("tests"):
            if not is_skipped(rel):
                add(tests_root / rel, item, rel, code=True)
        for init in _intermediate_inits(
            project, tests_root.parent, project.tests_dir.parent, owned
        ):
            writes.setdefault(init, b"")
    for init in _intermediate_inits(project, code_root.parent, project.package_dir, owned):
        writes.setdefault(init, b"")
    return Layout(module, writes, frozenset(executable), warnings)


def _has_other_files(folder: Path, removing: Collection[Path], init: Path) -> bool:
    """Whether ``folder`` keeps a file (besides ``init`` and ``removing``) after the pull."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            path = Path(dirpath, name)
            if path != init and path not in removing:
                return True
    return False


def keep_packages(candidates: list[Path], writes: Collection[Path]) -> list[Path]:
    """Drop from ``candidates`` each ``__init__.py`` whose folder keeps anything else."""
    inits = [p for p in candidates if p.name == "__init__.py"]
    if not inits:
        return candidates
    removing = set(candidates)
    written = {folder for target in writes for folder in target.parents}
    for init in sorted(inits, key=lambda p: len(p.parts), reverse=True):
        if init.parent in written or _has_other_files(init.parent, removing, init):
            removing.discard(init)
    return [p for p in candidates if p in removing]
