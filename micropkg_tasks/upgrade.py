"""The ``upgrade`` operation: pull the newest version of pulled micro-packages.

The newest release comes from :mod:`.outdated`; the pull is an ordinary pull of that source
with the entry's recorded options (so local edits are 3-way merged). When the lock's source is
a key of the pull manifest, the key is rewritten to the new source (tomlkit: comments and order
kept; a ``sha256`` pin follows the new tarball) in the same all-or-nothing step as the pull.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .lockfile import LockEntry, read_project_lock
from .manifest import PullEntry
from .outdated import OutdatedRow, newest_release
from .project import Project
from .pull import PullPlan, PullResult, fetch_and_plan, pull
from .versions import VersionFinder

__all__ = ["UpgradeResult", "find_upgrades", "upgrade_entry"]


@dataclass(frozen=True)
class UpgradeResult:
    """One micro-package upgraded (``result``), previewed (``plan``) or already newest."""

    row: OutdatedRow
    result: PullResult | None = None
    plan: PullPlan | None = None
    manifest_updated: bool = False


def find_upgrades(project: Project, modules: list[str], *, pre: bool) -> list[OutdatedRow]:
    """The newest release of each of ``modules`` (sources listed once each)."""
    lock = read_project_lock(project)
    finder = VersionFinder(project.root, pre=pre)
    return [newest_release(project, lock.entries[m], finder) for m in modules]


def _pull_entry(entry: LockEntry, source: str) -> PullEntry:
    return PullEntry(
        source,
        alias=entry.options.get("alias"),
        destination=entry.options.get("destination"),
        env=entry.options.get("env", "base"),
        fs_args=entry.options.get("fs_args"),
    )


def _manifest_edit(project: Project, old: str, new: str, plan: PullPlan) -> bytes | None:
    """``pyproject.toml`` with the pull manifest key ``old`` renamed to ``new``, or ``None``."""
    from .manifest_edit import rename_pull_entry

    pyproject = project.root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pinned = _pinned(text, old)
    changes = {"sha256": plan.sha256} if pinned else None
    edited = rename_pull_entry(text, old, new, changes=changes)
    return None if edited is None or edited == text else edited.encode("utf-8")


def _pinned(text: str, key: str) -> bool:
    """Whether the manifest entry ``key`` pins a sha256."""
    from ._compat import tomllib

    data = tomllib.loads(text)
    tool = data.get("tool", {})
    for table in (tool.get("kedro", {}).get("micropkg", {}), tool.get("micropkg", {})):
        entry = table.get("pull", {}).get(key) if isinstance(table, dict) else None
        if isinstance(entry, dict) and "sha256" in entry:
            return True
    return False


def upgrade_entry(
    project: Project,
    row: OutdatedRow,
    *,
    force: bool = False,
    markers: bool = False,
    dry_run: bool = False,
) -> UpgradeResult:
    """Pull ``row.newest`` over ``row.module`` (nothing when it is not newer)."""
    newest = row.newest
    if not row.outdated or newest is None:
        return UpgradeResult(row)
    lock = read_project_lock(project)
    entry = _pull_entry(lock.entries[row.module], newest.source)
    if dry_run:
        plan, _ = fetch_and_plan(project, entry, base=project.root, force=force, markers=markers)
        return UpgradeResult(row, plan=plan)
    edited: list[bytes] = []

    def manifest(plan: PullPlan) -> dict[Path, bytes]:
        text = _manifest_edit(project, row.source, newest.source, plan)
        if text is None:
            return {}
        edited.append(text)
        return {project.root / "pyproject.toml": text}

    result = pull(project, entry, base=project.root, force=force, markers=markers, also=manifest)
    return UpgradeResult(row, result=result, manifest_updated=bool(edited))
