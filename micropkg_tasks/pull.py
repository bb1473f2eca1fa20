"""The pull operation: fetch → safe-read → plan → check conflicts → apply atomically → lock."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .collect import walk_files
from .errors import ConflictError, ManifestError, MicropkgError, PullError
from .fsutil import sha256_bytes
from .lockfile import LOCK_NAME, Lock, LockEntry, LockFile, read_project_lock, render_lock
from .manifest import PullEntry
from .names import config_file_name, normalize_destination, validate_alias
from .project import Project
from .sources import public_url

if TYPE_CHECKING:
    from .sources import Fetched

__all__ = [
    "PullPlan",
    "PullResult",
    "StatusRow",
    "apply_plan",
    "commit",
    "fetch_and_plan",
    "plan_pull",
    "pull",
    "status",
]


@dataclass(frozen=True)
class PullPlan:
    """Every change a pull makes to the project, computed before anything is written."""

    entry: PullEntry
    module: str
    package: str
    version: str | None
    sha256: str
    writes: dict[Path, bytes]
    """Files to create or update (absolute path → new content)."""
    removals: tuple[Path, ...]
    """Files of the previous pull that the new version dropped."""
    unchanged: int
    conflicts: tuple[str, ...]
    lock_entry: LockEntry
    requirements_added: tuple[str, ...]
    requirements_file: Path | None
    warnings: tuple[str, ...] = ()
    actions: tuple[tuple[str, str], ...] = ()
    """``(action, path and note)`` per file, for ``--dry-run``: create, update, merge, keep,
    remove, conflict."""
    marked: tuple[str, ...] = ()
    """Files written with conflict markers (``--merge=markers``)."""
    remote_key: str | None = None
    """The remote object's ETag/ukey, read when it was downloaded (None: local or index)."""


@dataclass(frozen=True)
class PullResult:
    """What a pull changed."""

    plan: PullPlan
    written: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class StatusRow:
    """One pulled micro-package and its locally modified or missing files."""

    module: str
    source: str
    version: str | None
    modified: tuple[str, ...] = field(default_factory=tuple)
    missing: tuple[str, ...] = field(default_factory=tuple)
    conflicted: tuple[str, ...] = field(default_factory=tuple)
    """Files a pull wrote with conflict markers that still hold one."""

    @property
    def state(self) -> str:
        """``conflict``, ``modified`` or ``clean``."""
        if self.conflicted:
            return "conflict"
        return "modified" if self.modified or self.missing else "clean"


def _target_name(entry: PullEntry, package: str) -> str:
    if entry.alias:
        return validate_alias(entry.alias)  # it becomes a folder name, whoever built the entry
    try:
        return validate_alias(package)
    except ManifestError as exc:
        raise PullError(f"Cannot pull the sdist's package as is: {exc} Use --alias.") from None


def _inits_for_new_folders(folder: Path, stop: Path) -> list[Path]:
    """``__init__.py`` for ``folder`` and each parent below ``stop`` that does not exist yet."""
    inits = []
    while folder != stop and stop in folder.parents and not folder.exists():
        inits.append(folder / "__init__.py")
        folder = folder.parent
    return inits


def _lay_out(
    project: Project,
    entry: PullEntry,
    root: Path,
    package: str,
) -> tuple[str, dict[Path, bytes], list[str]]:
    """Map the extracted sdist onto project paths, with imports rewritten."""
    from .rewrite import rewrite_source, submodule_names

    name = _target_name(entry, package)
    dest = normalize_destination(entry.destination)
    module = ".".join((*dest, name))
    new_import = f"{project.package_name}.{module}"
    code_root = project.package_dir.joinpath(*dest, name)
    tests_root = project.tests_dir.joinpath(*dest, name)
    conf_root = project.conf_root / entry.env

    writes: dict[Path, bytes] = {}
    warnings: list[str] = []
    files = walk_files(root / package)
    # The modules that land as code (``config/`` goes to conf/): a one-word package name in a
    # string is rewritten only when a real module follows it ("report.nodes", not "report.html").
    submodules = submodule_names(rel for _, rel in files if not rel.startswith("config/"))

    def add(target: Path, source: Path, rel: str, rewrite: bool) -> None:
        data = source.read_bytes()
        if rewrite and rel.endswith(".py"):
            result = rewrite_source(
                data,
                package,
                new_import,
                filename=project.rel(target),
                submodules=submodules,
            )
            data = result.text
            warnings.extend(result.warnings)
        writes[target] = data

    for path, rel in files:
        if rel.startswith("config/"):
            config_rel = config_file_name(rel[len("config/") :], package, entry.alias)
            writes[conf_root / config_rel] = path.read_bytes()
        else:
            add(code_root / rel, path, rel, rewrite=True)
    tests = root / "tests"
    if tests.is_dir():
        for path, rel in walk_files(tests):
            add(tests_root / rel, path, rel, rewrite=True)
        for init in _inits_for_new_folders(tests_root.parent, project.tests_dir.parent):
            writes.setdefault(init, b"")
    for init in _inits_for_new_folders(code_root.parent, project.package_dir):
        writes.setdefault(init, b"")
    return module, writes, warnings


def plan_pull(
    project: Project,
    entry: PullEntry,
    archive: Path,
    sha256: str,
    workdir: Path,
    *,
    lock: Lock,
    force: bool = False,
    markers: bool = False,
) -> PullPlan:
    """Plan the pull of a local sdist ``archive`` into ``project`` (nothing is written).

    Files edited locally are 3-way merged with the new version (:mod:`.merging`); with
    ``markers``, overlapping changes are written with conflict markers instead of refusing.
    """
    from .limits import project_limits
    from .merge import has_conflict_markers
    from .merging import FileMerger, merge_requirements_3way
    from .pulled import read_pulled
    from .sdist_reader import extract_sdist

    if entry.sha256 and entry.sha256.lower() != sha256:
        raise PullError(
            f"sha256 mismatch for '{public_url(entry.source)}': expected {entry.sha256.lower()}, "
            f"got {sha256}."
        )
    limits = project_limits(project.pyproject)
    contents = extract_sdist(
        archive, workdir / "sdist", max_bytes=limits.max_size, max_members=limits.max_members
    )
    module, writes, warnings = _lay_out(project, entry, contents.root, contents.package)

    previous = lock.entries.get(module)
    previous_files = previous.files if previous else {}
    unresolved = set(previous.conflicts) if previous else set()
    merger = (
        FileMerger(
            lambda: read_pulled(project, previous),
            old_version=previous.version,
            new_version=contents.version,
            markers=markers,
        )
        if previous is not None
        else None
    )
    conflicts: list[str] = []
    final_writes: dict[Path, bytes] = {}
    actions: list[tuple[str, str]] = []
    marked: list[str] = []
    unchanged = 0
    for target, data in sorted(writes.items()):
        rel = project.rel(target)
        if target.is_dir():
            conflicts.append(f"{rel} (a folder is in the way)")
            continue
        try:
            current: bytes | None = target.read_bytes()
        except FileNotFoundError:
            current = None
        recorded = previous_files.get(rel)
        if current == data:
            unchanged += 1
        elif force or (current is None and recorded is None):
            final_writes[target] = data
            actions.append(("create" if current is None else "update", rel))
        elif recorded is None or merger is None:
            conflicts.append(f"{rel} (not written by an earlier pull)")
        elif rel in unresolved and current is not None and has_conflict_markers(current):
            conflicts.append(f"{rel} (unresolved conflict markers from the last pull)")
        else:
            decision = merger.decide(rel, recorded, current, data)
            if decision.action == "unchanged":
                unchanged += 1
            elif decision.action == "keep":
                what = "local deletion" if current is None else "local edit"
                actions.append(("keep", f"{rel} ({what} kept)"))
            elif decision.action == "conflict" and not decision.marked:
                conflicts.append(f"{rel} ({decision.note})")
            else:
                assert decision.data is not None
                final_writes[target] = decision.data
                if decision.marked:
                    marked.append(rel)
                    actions.append(("conflict", f"{rel} ({decision.note}; markers written)"))
                else:
                    actions.append((decision.action, rel))

    new_rels = {project.rel(t) for t in writes}
    removals: list[Path] = []
    for rel, digest in sorted(previous_files.items()):
        if rel in new_rels:
            continue
        path = project.root / rel
        try:
            current = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
        if force or sha256_bytes(current) == digest:
            removals.append(path)
            actions.append(("remove", rel))
        else:
            conflicts.append(f"{rel} (edited locally; the new version drops it)")

    merge = merge_requirements_3way(
        project.requirements_in,
        project.requirements_txt,
        contents.package,
        contents.requirements,
        previous.requirements if previous else (),
        old_version=previous.version if previous else None,
        new_version=contents.version,
        markers=markers,
        force=force,
    )
    requirements_rel = project.rel(project.requirements_in)
    if merge.conflicts and not merge.marked:
        hunks = f"{merge.conflicts} conflicting hunk{'s' if merge.conflicts > 1 else ''}"
        conflicts.append(
            f"{requirements_rel} (block of micro-package `{contents.package}`: {hunks})"
        )
    requirements_file = None
    if merge.text is not None:
        final_writes[project.requirements_in] = merge.text.encode("utf-8")
        requirements_file = project.requirements_in
        if merge.marked:
            marked.append(requirements_rel)
            actions.append(
                (
                    "conflict",
                    f"{requirements_rel} (block of micro-package "
                    f"`{contents.package}`; markers written)",
                )
            )
        elif merge.edited:
            actions.append(
                ("merge", f"{requirements_rel} (block of micro-package `{contents.package}`)")
            )
        else:
            exists = project.requirements_in.exists()
            actions.append(("update" if exists else "create", requirements_rel))
    warnings.extend(_requirement_conflicts(project, lock, module, contents.requirements))

    options = {k: v for k, v in entry.options().items() if v and k not in ("source", "sha256")}
    lock_entry = LockEntry(
        module=module,
        source=public_url(entry.source),  # users commit the lock: no credentials in it
        sha256=sha256,
        version=contents.version,
        package=contents.package,
        options={k: str(v) for k, v in options.items()},
        requirements=merge.added,
        files={project.rel(t): sha256_bytes(d) for t, d in writes.items()},
        conflicts=tuple(sorted(marked)),
    )
    return PullPlan(
        entry=entry,
        module=module,
        package=contents.package,
        version=contents.version,
        sha256=sha256,
        writes=final_writes,
        removals=tuple(removals),
        unchanged=unchanged,
        conflicts=tuple(conflicts),
        lock_entry=lock_entry,
        requirements_added=tuple(
            r for r in merge.added if previous is None or r not in previous.requirements
        )
        if merge.text is not None
        else (),
        requirements_file=requirements_file,
        warnings=tuple(warnings),
        actions=tuple(sorted(actions, key=lambda a: a[1])),
        marked=tuple(sorted(marked)),
    )


def _requirement_conflicts(
    project: Project, lock: Lock, module: str, incoming: tuple[str, ...]
) -> list[str]:
    """Warnings for incoming requirements that no version of a line already in
    ``requirements.in`` (outside this micro-package's own block) satisfies."""
    from .requirement_conflicts import find_conflicts

    if not incoming:
        return []
    source = project.requirements_in
    if not source.is_file():
        source = project.requirements_txt
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    previous = lock.entries.get(module)
    own = {r.strip() for r in previous.requirements} if previous else set()
    owners: dict[str, list[str]] = {}
    for other, item in sorted(lock.entries.items()):
        if other != module:
            for line in item.requirements:
                owners.setdefault(line.strip(), []).append(other)
    lines = [line for line in text.splitlines() if line.strip() not in own]
    found = find_conflicts(lines, incoming, module, owners)
    return [conflict.message(project.rel(project.requirements_in)) for conflict in found]


def _replace(src: Path, dst: Path) -> None:
    # One place for every rename of the commit phase (tests inject failures here).
    os.replace(src, dst)


def apply_plan(
    project: Project, plan: PullPlan, lock: Lock, *, also: dict[Path, bytes] | None = None
) -> PullResult:
    """Write ``plan`` and the updated lock all-or-nothing: on any error the project is untouched.

    ``also``: more files written in the same all-or-nothing step (``pyproject.toml`` when an
    upgrade rewrites its manifest entry).
    """
    if plan.conflicts:
        listing = "\n".join(f"  {c}" for c in plan.conflicts)
        raise ConflictError(
            f"{len(plan.conflicts)} file(s) changed locally cannot be updated; nothing was "
            "written (use --merge=markers to write conflict markers, or --force to "
            f"overwrite):\n{listing}",
            list(plan.conflicts),
        )
    lock_path = project.root / LOCK_NAME
    new_lock = render_lock(lock.with_entry(plan.lock_entry)).encode("utf-8")
    writes = {**plan.writes, **(also or {})}
    # A changed entry always means a new lock; only an unchanged one needs the (whole-file)
    # comparison, which keeps a re-pull from touching the lock.
    if lock.entries.get(plan.module) != plan.lock_entry:
        writes[lock_path] = new_lock
    else:
        try:
            if lock_path.read_bytes() != new_lock:
                writes[lock_path] = new_lock
        except FileNotFoundError:
            writes[lock_path] = new_lock

    commit(project, writes, plan.removals)
    return PullResult(
        plan,
        tuple(project.rel(t) for t in sorted(plan.writes)),
        tuple(project.rel(p) for p in plan.removals),
    )


def commit(project: Project, writes: dict[Path, bytes], removals: tuple[Path, ...]) -> None:
    """Write ``writes`` and delete ``removals`` all-or-nothing (folders left empty by the
    removals are pruned): on any error the project is left exactly as it was."""
    created_dirs: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    backups: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        # Stage: every new content lands in a temporary file beside its target.
        for target, data in sorted(writes.items()):
            missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
            for folder in reversed(missing):
                folder.mkdir()
                created_dirs.append(folder)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".micropkg-tmp", dir=target.parent
            )
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            staged.append((Path(tmp_name), target))
        # Commit: move old files aside, then move the staged files in.
        for path in (*(t for _, t in staged), *removals):
            if path.exists():
                backup = path.with_name(f".{path.name}.micropkg-bak")
                _replace(path, backup)
                backups.append((backup, path))
        for tmp, target in staged:
            _replace(tmp, target)
            placed.append(target)
    except BaseException as exc:
        for target in placed:
            target.unlink(missing_ok=True)
        for backup, original in reversed(backups):
            os.replace(backup, original)
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError):
            raise PullError(
                f"Cannot write the pulled files ({exc.strerror or exc}); the project was left "
                "unchanged."
            ) from exc
        raise
    for backup, _ in backups:
        backup.unlink(missing_ok=True)
    _prune_empty_dirs(project, removals)


def _prune_empty_dirs(project: Project, removed: tuple[Path, ...]) -> None:
    """Remove folders left empty by removed files (never the project's own roots)."""
    keep = {project.root, project.package_dir, project.tests_dir, project.conf_root}
    for path in removed:
        folder = path.parent
        while folder not in keep and project.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


def _fetch(entry: PullEntry, base: Path, workdir: Path, timeout: float | None) -> Fetched:
    from .sources import DEFAULT_TIMEOUT, fetch, load_fs_args

    fs_args = None
    if entry.fs_args:
        fs_args_path = Path(entry.fs_args)
        fs_args = load_fs_args(fs_args_path if fs_args_path.is_absolute() else base / fs_args_path)
    return fetch(
        entry.source,
        workdir / "download",
        base=base,
        fs_args=fs_args,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
    )


def fetch_and_plan(
    project: Project,
    entry: PullEntry,
    *,
    base: Path,
    force: bool = False,
    markers: bool = False,
    lock_file: LockFile | None = None,
    timeout: float | None = None,
) -> tuple[PullPlan, Lock]:
    """Fetch ``entry.source`` and plan its pull (nothing in the project is written).

    ``lock_file``: the run's view of ``micropkg.lock`` (parsed once per run, not per entry).
    ``timeout``: seconds a remote source may stay silent (default ``DEFAULT_TIMEOUT``).
    """
    lock = (lock_file or LockFile(project)).current()
    with tempfile.TemporaryDirectory(prefix="micropkg-pull-") as tmp:
        workdir = Path(tmp)
        fetched = _fetch(entry, base, workdir, timeout)
        plan = plan_pull(
            project,
            entry,
            fetched.path,
            fetched.sha256,
            workdir,
            lock=lock,
            force=force,
            markers=markers,
        )
    # The key read before the download, not after the run: a change in between is seen next time.
    return dataclasses.replace(plan, remote_key=fetched.ukey), lock


def pull(
    project: Project,
    entry: PullEntry,
    *,
    base: Path,
    force: bool = False,
    markers: bool = False,
    also: Callable[[PullPlan], dict[Path, bytes]] | None = None,
    lock_file: LockFile | None = None,
    timeout: float | None = None,
) -> PullResult:
    """Fetch ``entry.source`` and pull it into ``project`` (atomically), 3-way merging local
    edits; the pulled sdist is kept in the cache (the base of the next upgrade).

    ``also`` gives, from the plan, more files to write in the same all-or-nothing step. Pass
    the run's ``lock_file`` when pulling several entries: the lock is then parsed once, and
    each pull records its entry in the lock as it is when the pull commits.
    """
    lock_file = lock_file or LockFile(project)
    with tempfile.TemporaryDirectory(prefix="micropkg-pull-") as tmp:
        workdir = Path(tmp)
        fetched = _fetch(entry, base, workdir, timeout)
        plan = plan_pull(
            project,
            entry,
            fetched.path,
            fetched.sha256,
            workdir,
            lock=lock_file.current(),
            force=force,
            markers=markers,
        )
        plan = dataclasses.replace(plan, remote_key=fetched.ukey)
        with lock_file.mutex:
            lock = lock_file.current()
            result = apply_plan(project, plan, lock, also=also(plan) if also else None)
            lock_file.written(lock.with_entry(plan.lock_entry))
            _keep_in_cache(project, fetched.path, fetched.sha256, lock, plan)
    return result


def _keep_in_cache(
    project: Project, archive: Path, sha256: str, lock: Lock, plan: PullPlan
) -> None:
    """Cache the pulled sdist, and drop cached ones no lock entry uses any more. The pull has
    succeeded: a cache that cannot be written only means a later fetch."""
    from .cache import prune, store

    keep = {e.sha256 for m, e in lock.entries.items() if m != plan.module} | {sha256}
    with contextlib.suppress(OSError, MicropkgError):
        store(project.state_dir, archive, sha256)
        prune(project.state_dir, keep)


def status(project: Project) -> list[StatusRow]:
    """Each pulled micro-package with the files changed or deleted since it was pulled, and
    those still holding the conflict markers of ``--merge=markers``."""
    from .merge import has_conflict_markers

    lock = read_project_lock(project)
    rows = []
    for module in sorted(lock.entries):
        entry = lock.entries[module]
        modified, missing = [], []
        for rel, digest in sorted(entry.files.items()):
            try:
                if sha256_bytes((project.root / rel).read_bytes()) != digest:
                    modified.append(rel)
            except (FileNotFoundError, NotADirectoryError):  # gone, or a parent became a file
                missing.append(rel)
            except IsADirectoryError:  # a folder now stands where the pulled file was
                modified.append(rel)
            except OSError as exc:
                raise PullError(f"Cannot read '{rel}': {exc.strerror or exc}") from exc
        conflicted = []
        for rel in entry.conflicts:
            with contextlib.suppress(OSError):
                if has_conflict_markers((project.root / rel).read_bytes()):
                    conflicted.append(rel)
        rows.append(
            StatusRow(
                module,
                entry.source,
                entry.version,
                tuple(modified),
                tuple(missing),
                tuple(conflicted),
            )
        )
    return rows
