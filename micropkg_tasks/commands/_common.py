"""What the lifecycle commands (diff, outdated, upgrade, remove) share."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ManifestError
from ..lockfile import Lock, read_project_lock
from ..project import Project
from ..selection import select_modules

__all__ = ["modules_of", "pulled_lock"]


def pulled_lock(project: Project) -> Lock:
    """``micropkg.lock`` (an error when nothing was pulled yet)."""
    lock = read_project_lock(project)
    if not lock.entries:
        raise ManifestError("No micro-package pulled yet (no micropkg.lock).")
    return lock


def modules_of(lock: Lock, names: Sequence[str] | None, *, all_flag: bool = False) -> list[str]:
    """The module paths ``names`` name; every entry when none is named (or ``all_flag``)."""
    if names and all_flag:
        raise ManifestError("Give either MODULE names or '--all', not both.")
    if not names:
        return sorted(lock.entries)
    return select_modules(lock, names)
