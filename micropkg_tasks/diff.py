"""The ``diff`` operation: what changed locally in pulled files since they were pulled.

A unified diff per file (``--- a/<path>``, ``+++ b/<path>``; ``+++ /dev/null`` for a file
deleted locally) against the pulled version (:mod:`.pulled`: from the cache, else the source
fetched again). Binary files get git's one line; a file whose pulled version is unknown is
listed with the reason.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from .fsutil import sha256_bytes
from .lockfile import LockEntry, read_project_lock
from .merge import is_binary
from .project import Project
from .pulled import PulledVersion, read_pulled

__all__ = ["DiffResult", "FileDiff", "diff", "unified_diff"]

_NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass(frozen=True)
class FileDiff:
    """One pulled file that differs from its pulled version."""

    module: str
    path: str
    patch: str
    """The unified diff ('' when the pulled version is unknown)."""
    unknown: str | None = None
    """Why the pulled version is unknown (then there is no patch)."""


@dataclass(frozen=True)
class DiffResult:
    """Every pulled file changed or deleted locally, in module then path order."""

    files: tuple[FileDiff, ...]

    @property
    def different(self) -> bool:
        """Whether anything differs from what was pulled."""
        return bool(self.files)


def unified_diff(path: str, old: bytes, new: bytes | None) -> str:
    """The unified diff from ``old`` to ``new`` (``None``: deleted) of the file ``path``."""
    to_file = f"b/{path}" if new is not None else "/dev/null"
    if is_binary(old) or (new is not None and is_binary(new)):
        return f"Binary files a/{path} and {to_file} differ\n"
    old_lines = old.decode("utf-8").splitlines(keepends=True)
    new_lines = new.decode("utf-8").splitlines(keepends=True) if new is not None else []
    out = []
    for line in difflib.unified_diff(old_lines, new_lines, f"a/{path}", to_file):
        out.append(line if line.endswith("\n") else f"{line}\n{_NO_NEWLINE}")
    return "".join(out)


def _changed(project: Project, entry: LockEntry) -> list[tuple[str, bytes | None]]:
    """``(path, local content or None when deleted)`` of each file that differs."""
    changed = []
    for rel, digest in sorted(entry.files.items()):
        try:
            local: bytes | None = (project.root / rel).read_bytes()
        except FileNotFoundError:
            local = None
        except IsADirectoryError:
            local = None
        if local is None or sha256_bytes(local) != digest:
            changed.append((rel, local))
    return changed


def diff(project: Project, modules: Sequence[str] | None = None) -> DiffResult:
    """The local changes of the pulled micro-packages ``modules`` (default: all)."""
    lock = read_project_lock(project)
    files: list[FileDiff] = []
    for module in sorted(lock.entries) if modules is None else modules:
        entry = lock.entries[module]
        changed = _changed(project, entry)
        if not changed:
            continue
        pulled: PulledVersion = read_pulled(project, entry)
        for rel, local in changed:
            old = pulled.get(rel)
            if old is None:
                files.append(FileDiff(module, rel, "", pulled.why_unknown(rel)))
            else:
                files.append(FileDiff(module, rel, unified_diff(rel, old, local)))
    return DiffResult(tuple(files))
