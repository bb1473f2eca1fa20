"""What the lifecycle commands share: the project, its lock held for the command."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import ManifestError
from ..lockfile import Lock, read_project_lock
from ..project import Project, load_project
from ..selection import select_modules

__all__ = ["locked_project", "modules_of", "pulled_lock"]


@contextlib.contextmanager
def locked_project() -> Iterator[Project]:
    """The project around the current folder, with the project lock held."""
    from ._base import locked

    project = load_project(Path.cwd())
    with locked(project) as recovered:
        if recovered:
            print(recovered)
        yield project


def pulled_lock(project: Project) -> Lock:
    """``micropkg.lock`` (an error when nothing was pulled yet)."""
    lock = read_project_lock(project)
    if not lock.entries:
        raise ManifestError("No micro-package pulled yet (no micropkg.lock).")
    return lock


def modules_of(lock: Lock, names: list[str] | None, *, all_flag: bool = False) -> list[str]:
    """The module paths ``names`` name; every entry when none is named (or ``all_flag``)."""
    if names and all_flag:
        raise ManifestError("Give either MODULE names or '--all', not both.")
    if not names:
        return sorted(lock.entries)
    return select_modules(lock, names)
