"""The project's state folder (``.micropkg/``) and the project lock (one run at a time).

``.micropkg/`` holds doit's database, caches and the lock file; it carries its own
``.gitignore`` of ``*`` so git never shows it. Creating it is safe when several first runs
start at once. The lock is :mod:`filelock`'s (``flock`` on POSIX, ``LockFileEx`` on Windows):
a second run in the same project stops at once with one ``Error:`` line instead of waiting or
corrupting the state. Within one process the lock is re-entrant.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ProjectError
from .fsutil import atomic_write
from .project import Project

if TYPE_CHECKING:
    from filelock import BaseFileLock

__all__ = [
    "DEP_FILE",
    "LOCK_FILE",
    "STATE_DIR",
    "acquire",
    "ensure_state_dir",
    "project_lock",
    "release",
]

STATE_DIR = ".micropkg"
#: doit's database, relative to the project root (doit's ``dep_file``).
DEP_FILE = f"{STATE_DIR}/doit.sqlite"
LOCK_FILE = "lock"
GITIGNORE = "# micropkg-tasks state\n*\n"


def ensure_state_dir(root: Path) -> bool:
    """Create ``<root>/.micropkg/`` with its ``.gitignore`` if missing; True if this call made it.

    Race-free: concurrent first runs all succeed (``mkdir`` tolerates a folder another process
    just made, and the ``.gitignore`` is written atomically with the same content).
    """
    path = root / STATE_DIR
    try:
        created = not path.is_dir()
        if created:
            try:
                path.mkdir()
            except FileExistsError:
                if not path.is_dir():
                    raise
                created = False
        ignore = path / ".gitignore"
        if not ignore.is_file():
            atomic_write(ignore, GITIGNORE)
    except FileExistsError:
        raise ProjectError(f"'{path}' exists but is not a folder; move it away.") from None
    except OSError as exc:
        raise ProjectError(f"Cannot create the state folder '{path}': {exc.strerror}") from exc
    return created


@dataclass
class _Held:
    lock: BaseFileLock
    depth: int
    created: bool
    """This process made the state folder when it took the lock."""


_HELD: dict[Path, _Held] = {}


def _busy(project: Project) -> ProjectError:
    return ProjectError(
        f"Another micropkg/doit run is in progress in '{project.root}'; wait for it to finish."
    )


def _take(project: Project, created: bool) -> BaseFileLock | None:
    """The OS lock on ``.micropkg/lock``, or None when its file vanished meanwhile."""
    with warnings.catch_warnings():
        # Where there is no flock, filelock falls back to a marker file and warns; the lock
        # still works, so the warning is noise for our users.
        warnings.simplefilter("ignore")
        import filelock

    path = project.root / STATE_DIR / LOCK_FILE
    lock = filelock.FileLock(str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lock.acquire(timeout=0)
    except filelock.Timeout:
        raise _busy(project) from None
    except OSError as exc:
        if not created and not path.parent.is_dir():
            return None  # a failed first run removed the folder it had made
        raise ProjectError(f"Cannot lock '{path}': {exc.strerror or exc}") from exc
    if not path.exists():
        # A failed first run removed its state folder after we opened the lock file: that
        # lock guards nothing any more (flock locks the open file, not the name).
        lock.release()
        return None
    return lock


def acquire(project: Project, *, create: bool = True) -> bool:
    """Take the project lock for this process, without waiting; True when this call took it.

    With ``create=False`` (read-only commands) a project without a state folder is not locked
    and nothing is created: no run of ours can be in progress or interrupted there. Raises
    :class:`ProjectError` when another process holds the lock. (Recovery from a crash is the
    caller's next step: :func:`micropkg_tasks.journal.recovered_lock`.)
    """
    held = _HELD.get(project.root)
    if held is not None:
        held.depth += 1
        return False
    for _ in range(3):
        if create:
            created = ensure_state_dir(project.root)
        elif (project.root / STATE_DIR).is_dir():
            created = False
        else:
            return False
        lock = _take(project, created)
        if lock is not None:
            _HELD[project.root] = _Held(lock, 1, created)
            return True
    raise _busy(project)


def release(project: Project, *, failed: bool = False) -> None:
    """Undo one :func:`acquire` (the outermost releases the lock; no-op when none is held).

    ``failed``: the command failed. If it also made the state folder and nothing but the lock
    is in it, the folder is removed, so a command that fails leaves no trace.
    """
    held = _HELD.get(project.root)
    if held is None:
        return
    held.depth -= 1
    if held.depth > 0:
        return
    del _HELD[project.root]
    folder = project.root / STATE_DIR
    discard = failed and held.created and _only_ours(folder)
    if discard:
        # Unlinked while still held: a process that opened it meanwhile sees it vanish.
        with contextlib.suppress(OSError):
            (folder / LOCK_FILE).unlink()
    held.lock.release()
    if discard:
        with contextlib.suppress(OSError):
            (folder / ".gitignore").unlink()
            (folder / LOCK_FILE).unlink(missing_ok=True)  # Windows: only once released
            folder.rmdir()


def _only_ours(folder: Path) -> bool:
    try:
        return set(os.listdir(folder)) <= {".gitignore", LOCK_FILE}
    except OSError:
        return False


@contextlib.contextmanager
def project_lock(project: Project, *, create: bool = True) -> Iterator[bool]:
    """Hold the project lock for the ``with`` block (see :func:`acquire`, whose value it
    yields). When the block raises, a state folder this call made is removed again."""
    taken = acquire(project, create=create)
    try:
        yield taken
    except BaseException:
        release(project, failed=True)
        raise
    release(project)
