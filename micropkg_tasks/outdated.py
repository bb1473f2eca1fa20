"""The ``outdated`` operation: for each pulled micro-package, the newest version its source
offers (see :mod:`.versions`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MicropkgError
from .lockfile import LockEntry, read_project_lock
from .project import Project
from .versions import Release, VersionFinder

__all__ = ["OutdatedRow", "newest_release", "outdated"]


@dataclass(frozen=True)
class OutdatedRow:
    """One lock entry: the version pulled and the newest its source offers."""

    module: str
    source: str
    version: str | None
    newest: Release | None
    """``None`` when the source offers no version (or could not be listed: ``error``)."""
    error: str | None = None

    @property
    def outdated(self) -> bool:
        """Whether the source offers a version newer than the one pulled."""
        from packaging.version import InvalidVersion, Version

        if self.newest is None or self.version is None:
            return False
        try:
            return self.newest.key > Version(self.version)
        except InvalidVersion:
            return False


def _fs_args(project: Project, entry: LockEntry) -> tuple[dict[str, Any] | None, str]:
    from .sources import load_fs_args

    name = entry.options.get("fs_args")
    if not name:
        return None, ""
    path = Path(name)
    return load_fs_args(path if path.is_absolute() else project.root / path), name


def newest_release(project: Project, entry: LockEntry, finder: VersionFinder) -> OutdatedRow:
    """The newest release of ``entry``'s source (errors are reported in the row)."""
    try:
        fs_args, key = _fs_args(project, entry)
        releases = finder.releases(entry.source, fs_args, key)
    except MicropkgError as exc:
        return OutdatedRow(entry.module, entry.source, entry.version, None, str(exc))
    from .sources import source_kind

    newest = releases[-1] if releases else None
    error = None
    if newest is None and source_kind(entry.source, project.root) == "index":
        error = f"the index has no release of {entry.source}"
        if not finder.pre:
            error += " (pre-releases need --pre)"
    elif newest is None:
        error = f"{entry.source} names no version (expected <name>-<version>.tar.gz)"
    return OutdatedRow(entry.module, entry.source, entry.version, newest, error)


def outdated(
    project: Project, *, pre: bool = False, modules: Sequence[str] | None = None
) -> list[OutdatedRow]:
    """One row per lock entry (or per entry of ``modules``), in module order."""
    lock = read_project_lock(project)
    finder = VersionFinder(project.root, pre=pre)
    wanted = sorted(lock.entries) if modules is None else list(modules)
    return [newest_release(project, lock.entries[m], finder) for m in wanted]
