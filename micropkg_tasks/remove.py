"""The ``remove`` operation: take a pulled micro-package out of the project, all-or-nothing.

Removed: every file its pull wrote (a file edited locally is a conflict unless ``force``; a
file another pulled micro-package also wrote stays), the ``__init__.py`` files its pulls made
for folders that are now otherwise empty, folders left empty, its block in ``requirements.in``
(the file itself stays), its lock entry (the lock goes when it was the last one), its entry in
the pull manifest, and its sdist from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ConflictError
from .fsutil import sha256_bytes
from .layout import keep_packages
from .lockfile import LOCK_NAME, Lock, read_project_lock, render_lock
from .project import Project

__all__ = ["RemovePlan", "apply_remove", "plan_remove"]


@dataclass(frozen=True)
class RemovePlan:
    """Every change removing ``module`` makes, computed before anything is written."""

    module: str
    version: str | None
    removals: tuple[Path, ...]
    writes: dict[Path, bytes]
    """``requirements.in``, ``micropkg.lock``, ``pyproject.toml`` as they become."""
    lock_removed: bool
    """``micropkg.lock`` goes (this was its last entry)."""
    actions: tuple[tuple[str, str], ...]
    """``(action, path and note)``, for ``--dry-run``."""
    conflicts: tuple[str, ...]
    sha256: str
    still_used: bool
    """Another lock entry pulled the same sdist (it stays in the cache)."""


def plan_remove(project: Project, module: str, *, force: bool = False) -> RemovePlan:
    """Plan the removal of the pulled micro-package ``module`` (nothing is written)."""
    from .manifest_edit import remove_pull_entry
    from .requirements import merge_requirements

    lock = read_project_lock(project)
    entry = lock.entries[module]
    others = {rel: m for m, e in lock.entries.items() if m != module for rel in e.files}
    actions: list[tuple[str, str]] = []
    conflicts: list[str] = []
    going: set[Path] = set()
    for rel, digest in sorted(entry.files.items()):
        path = project.root / rel
        if rel in others:
            actions.append(("keep", f"{rel} (pulled by '{others[rel]}' too)"))
            continue
        try:
            current = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        if sha256_bytes(current) != digest and not force:
            conflicts.append(f"{rel} (edited locally)")
            continue
        going.add(path)
    # An __init__.py stays where its folder keeps other files (a package of the project).
    kept = going - set(keep_packages(sorted(going), ()))
    going -= kept
    actions += [("keep", f"{project.rel(p)} (its folder holds other files)") for p in sorted(kept)]
    actions += [("remove", project.rel(p)) for p in sorted(going)]

    writes: dict[Path, bytes] = {}
    if entry.requirements:
        # Lines another pulled micro-package still needs stay.
        needed = [r for m, e in lock.entries.items() if m != module for r in e.needs]
        merged = merge_requirements(
            project.requirements_in,
            project.requirements_txt,
            entry.package,
            (),
            entry.requirements,
            still_needed=needed,
        )
        if merged.text is not None and project.requirements_in.is_file():
            writes[project.requirements_in] = merged.text.encode("utf-8")
            actions.append(("update", f"{project.rel(project.requirements_in)} (its block)"))
    remaining = {m: e for m, e in lock.entries.items() if m != module}
    lock_path = project.root / LOCK_NAME
    lock_removed = not remaining
    if remaining:
        writes[lock_path] = render_lock(Lock(remaining)).encode("utf-8")
        actions.append(("update", f"{LOCK_NAME} (its entry)"))
    else:
        actions.append(("remove", LOCK_NAME))
    pyproject = project.root / "pyproject.toml"
    edited = remove_pull_entry(pyproject.read_text(encoding="utf-8"), entry.source)
    if edited is not None:
        writes[pyproject] = edited.encode("utf-8")
        actions.append(("update", f"pyproject.toml (pull manifest entry '{entry.source}')"))
    removals = sorted(going) + ([lock_path] if lock_removed else [])
    return RemovePlan(
        module=module,
        version=entry.version,
        removals=tuple(removals),
        writes=writes,
        lock_removed=lock_removed,
        actions=tuple(actions),
        conflicts=tuple(conflicts),
        sha256=entry.sha256,
        still_used=any(e.sha256 == entry.sha256 for e in remaining.values()),
    )


def apply_remove(project: Project, plan: RemovePlan) -> None:
    """Carry out ``plan`` all-or-nothing; conflicts refuse before anything is written."""
    from .cache import drop
    from .pull import commit

    if plan.conflicts:
        listing = "\n".join(f"  {c}" for c in plan.conflicts)
        raise ConflictError(
            f"{len(plan.conflicts)} file(s) of '{plan.module}' were changed locally; nothing was "
            f"removed (use --force to remove them too, 'micropkg diff' to see the changes):\n"
            f"{listing}",
            list(plan.conflicts),
        )
    commit(project, plan.writes, plan.removals, what=f"removal of '{plan.module}'")
    if not plan.still_used:
        drop(project.state_dir, plan.sha256)
