"""The pull operation: fetch → safe-read → plan → check conflicts → apply atomically → lock."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import journal, limits
from .ahead import Rewriter, run_rewrite
from .errors import ConflictError, MicropkgError, PullError
from .fsutil import Scratch, folder_lock, read_if_exists, sha256_bytes, sha256_file, sha256_of
from .layout import Content, keep_packages, lay_out
from .lockfile import (
    LOCK_NAME,
    Lock,
    LockEntry,
    LockFile,
    pending_line,
    read_project_lock,
    render_lock_bytes,
)
from .manifest import PullEntry
from .project import Project
from .sources import public_url

if TYPE_CHECKING:
    from .sdist_reader import SdistContents
    from .sources import Fetched

__all__ = [
    "PreparedSdist",
    "PullPlan",
    "PullResult",
    "SdistBatch",
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
    writes: dict[Path, Content]
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
    executable: frozenset[Path] = frozenset()
    """Targets whose sdist member had the executable bit (it is kept)."""


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


def _same_file(a: Path, b: Path) -> bool:
    """Whether two files have the same bytes (compared in 1 MiB chunks)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            block = fa.read(1 << 20)
            if block != fb.read(1 << 20):
                return False
            if not block:
                return True


def _large_decision(
    target: Path, new: Path, recorded: str | None, force: bool, others: dict[str, str]
) -> tuple[str, str]:
    """What to do with a large file (the rules of :mod:`.merging`, without a 3-way merge):
    ``unchanged``, ``create``, ``update``, ``keep`` or ``conflict``, and a note."""
    exists = target.is_file()
    if exists and _same_file(target, new):
        return "unchanged", ""
    if force or (not exists and recorded is None):
        return ("update" if exists else "create"), ""
    local = sha256_file(target) if exists else None
    sharers = sorted(m for m, d in others.items() if d == local)
    if sharers:
        return "conflict", f"pulled by '{sharers[0]}' too, which needs it as it is"
    if recorded is None:
        if others:
            return "conflict", f"written by the pull of '{min(others)}'"
        return "conflict", "not written by an earlier pull"
    if local == recorded:
        return "update", ""
    if sha256_file(new) == recorded:
        return "keep", "local deletion kept" if local is None else "local edit kept"
    what = "deleted locally" if local is None else "edited locally"
    return "conflict", f"{what}; a file over {limits.LARGE_FILE // 1024**2} MiB is not merged"


def _other_owners(lock: Lock, module: str, rels: Iterable[str]) -> dict[str, dict[str, str]]:
    """For each of ``rels`` that other pulled entries wrote: {module: recorded sha256}."""
    owners: dict[str, dict[str, str]] = {}
    for rel in rels:
        found = lock.file_owners.get(rel)
        if found and (len(found) > 1 or module not in found):
            owners[rel] = {m: d for m, d in found.items() if m != module}
    return owners


def _read(project: Project, path: Path) -> bytes | None:
    """The bytes of ``path``; ``None`` when it does not exist."""
    try:
        return read_if_exists(path)
    except OSError as exc:
        raise PullError(f"Cannot read '{project.rel(path)}': {exc.strerror or exc}") from exc


def plan_pull(
    project: Project,
    entry: PullEntry,
    archive: Path,
    sha256: str,
    workdir: Path | Callable[[], Path],
    *,
    lock: Lock,
    force: bool = False,
    markers: bool = False,
) -> PullPlan:
    """Plan the pull of a local sdist ``archive`` into ``project`` (nothing is written).

    Files edited locally are 3-way merged with the new version (:mod:`.merging`); with
    ``markers``, overlapping changes are written with conflict markers instead of refusing.
    Large files of the sdist are kept in ``workdir`` (a folder, or a function giving one).
    """
    contents = _extract(project, entry, archive, sha256, workdir)
    return _plan(project, entry, contents, sha256, lock=lock, force=force, markers=markers)


def _extract(
    project: Project,
    entry: PullEntry,
    archive: Path,
    sha256: str,
    workdir: Path | Callable[[], Path],
    prepared: Callable[[], object] | None = None,
) -> SdistContents:
    """Check the sdist's sha256 against the entry's pin, and read it safely (or take what
    ``prepared`` gives: a :class:`PreparedSdist` read from bytes with that very sha256)."""
    from .limits import project_limits
    from .sdist_reader import read_sdist

    if entry.sha256 and entry.sha256.lower() != sha256:
        raise PullError(
            f"sha256 mismatch for '{public_url(entry.source)}': expected {entry.sha256.lower()}, "
            f"got {sha256}."
        )
    ready = prepared() if prepared else None
    if isinstance(ready, PreparedSdist) and ready.sha256 == sha256:
        return ready.contents
    caps = project_limits(project.pyproject)
    return read_sdist(archive, workdir, max_bytes=caps.max_size, max_members=caps.max_members)


def _plan(
    project: Project,
    entry: PullEntry,
    contents: SdistContents,
    sha256: str,
    *,
    lock: Lock,
    force: bool,
    markers: bool,
    rewrite: Rewriter = run_rewrite,
) -> PullPlan:
    """:func:`plan_pull` of an extracted sdist (imports rewritten through ``rewrite``)."""
    from .merge import has_conflict_markers
    from .merging import FileMerger, merge_requirements_3way
    from .pulled import read_pulled
    from .requirements import canonical

    layout = lay_out(project, entry, contents, lock, rewrite=rewrite)
    module, writes, warnings = layout.module, layout.writes, layout.warnings
    # A file where a folder must go: an error. In a folder still to be created nothing exists
    # yet: its targets are not looked for (most of a fresh pull).
    missing = {str(folder) for folder in journal.folders_to_create(project.root, writes)}
    rel_of = journal.relative_paths(project.root, project.rel)
    rels = {target: rel_of(target) for target in writes}

    previous = lock.entries.get(module)
    previous_files = previous.files if previous else {}
    others = _other_owners(lock, module, [*rels.values(), *previous_files])
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
    final_writes: dict[Path, Content] = {}
    actions: list[tuple[str, str]] = []
    marked: list[str] = []
    unchanged = 0
    for target, data in sorted(writes.items()):
        rel = rels[target]
        recorded = previous_files.get(rel)
        unborn = os.path.dirname(target) in missing
        if isinstance(data, Path):
            if not unborn and target.is_dir():
                conflicts.append(f"{rel} (a folder is in the way)")
                continue
            action, note = _large_decision(target, data, recorded, force, others.get(rel, {}))
            if action == "unchanged":
                unchanged += 1
            elif action == "conflict":
                conflicts.append(f"{rel} ({note})")
            elif action == "keep":
                actions.append(("keep", f"{rel} ({note})"))
            else:
                final_writes[target] = data
                actions.append((action, rel))
            continue
        try:
            current = None if unborn else read_if_exists(target)
        except OSError as exc:  # a folder (opening one fails on Windows), or unreadable
            if target.is_dir():
                conflicts.append(f"{rel} (a folder is in the way)")
                continue
            raise PullError(f"Cannot read '{rel}': {exc.strerror or exc}") from exc
        # Another pulled micro-package that has this very content still needs it as it is.
        digest = sha256_bytes(current) if current is not None and rel in others else None
        sharers = sorted(m for m, d in others.get(rel, {}).items() if d == digest)
        if current == data:
            unchanged += 1
        elif force or (current is None and recorded is None):
            final_writes[target] = data
            actions.append(("create" if current is None else "update", rel))
        elif sharers:
            conflicts.append(f"{rel} (pulled by '{sharers[0]}' too, which needs it as it is)")
        elif (recorded is None or merger is None) and rel in others:
            conflicts.append(f"{rel} (written by the pull of '{min(others[rel])}')")
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

    new_rels = set(rels.values())
    candidates: list[Path] = []
    for rel, digest in sorted(previous_files.items()):
        if rel in new_rels:
            continue
        if rel in others:  # another pulled micro-package's file too: it stays
            actions.append(("keep", f"{rel} (pulled by '{min(others[rel])}' too)"))
            continue
        path = project.root / rel
        if path.is_dir():
            continue
        try:
            now = sha256_file(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise PullError(f"Cannot read '{rel}': {exc.strerror or exc}") from exc
        if force or now == digest:
            candidates.append(path)
        else:
            conflicts.append(f"{rel} (edited locally; the new version drops it)")
    # A folder's __init__.py stays while the folder holds anything else (it is a package).
    removals = keep_packages(candidates, writes)
    actions += [("remove", project.rel(path)) for path in removals]
    actions += [
        ("keep", f"{project.rel(path)} (its folder holds other files)")
        for path in candidates
        if path not in removals
    ]

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
        # Lines another pulled micro-package still needs stay (in this block) when dropped.
        still_needed=[
            req for other, item in lock.entries.items() if other != module for req in item.needs
        ]
        if previous and previous.requirements
        else (),
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
        requirements=tuple(sorted({*merge.added, *merge.result.kept})),
        files={rels[t]: sha256_of(d) for t, d in writes.items()},
        conflicts=tuple(sorted(marked)),
        requires=tuple(sorted({canonical(r) for r in contents.requirements})),
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
        executable=layout.executable & final_writes.keys(),
    )


class _LineOwners(Mapping[str, list[str]]):
    """Requirement line (stripped) → the other pulled micro-packages that brought it, in
    module order; looked up only for a line in conflict (building it all on every pull was
    a walk over every entry of the lock)."""

    def __init__(self, lock: Lock, module: str) -> None:
        self.lock = lock
        self.module = module

    @functools.cached_property
    def _all(self) -> dict[str, list[str]]:
        owners: dict[str, list[str]] = {}
        for other, item in sorted(self.lock.entries.items()):
            if other != self.module:
                for line in item.requirements:
                    owners.setdefault(line.strip(), []).append(other)
        return owners

    def __getitem__(self, line: str) -> list[str]:
        return self._all[line]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)


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
    lines = [line for line in text.splitlines() if line.strip() not in own]
    found = find_conflicts(lines, incoming, module, _LineOwners(lock, module))
    return [conflict.message(project.rel(project.requirements_in)) for conflict in found]


def apply_plan(
    project: Project,
    plan: PullPlan,
    lock: Lock,
    *,
    also: dict[Path, bytes] | None = None,
    lock_file: LockFile | None = None,
) -> PullResult:
    """Write ``plan`` and the updated lock as one transaction (see :func:`commit`).

    ``also``: more files written in the same transaction (``pyproject.toml`` when an upgrade
    rewrites its manifest entry). With a ``deferred`` ``lock_file`` (a ``pull --all`` run),
    the transaction appends the entry to the pending log instead of rewriting the lock, and
    the lock file is told.
    """
    if plan.conflicts:
        listing = "\n".join(f"  {c}" for c in plan.conflicts)
        raise ConflictError(
            f"{len(plan.conflicts)} file(s) changed locally cannot be updated; nothing was "
            "written (use --merge=markers to write conflict markers, or --force to "
            f"overwrite):\n{listing}",
            list(plan.conflicts),
        )
    writes = {**plan.writes, **(also or {})}
    changed = lock.entries.get(plan.module) != plan.lock_entry
    deferred = lock_file is not None and lock_file.deferred
    append = pending_line(plan.lock_entry) if deferred and changed else None
    if not deferred:
        lock_path = project.root / LOCK_NAME
        new_lock = render_lock_bytes(lock.with_entry(plan.lock_entry))
        # A changed entry always means a new lock; only an unchanged one needs the
        # (whole-file) comparison, which keeps a re-pull from touching the lock.
        if changed or _read(project, lock_path) != new_lock:
            writes[lock_path] = new_lock
    commit(
        project,
        writes,
        plan.removals,
        executable=plan.executable,
        what=f"pull of '{plan.module}'",
        append=append,
    )
    if lock_file is not None:
        lock_file.written(lock, plan.lock_entry, append)
    rel_of = journal.relative_paths(project.root, project.rel)
    return PullResult(
        plan,
        tuple(map(rel_of, sorted(plan.writes))),
        tuple(map(rel_of, plan.removals)),
    )


def commit(
    project: Project,
    writes: Mapping[Path, Content],
    removals: tuple[Path, ...],
    *,
    executable: Collection[Path] = frozenset(),
    what: str = "pull",
    append: bytes | None = None,
) -> None:
    """Write ``writes`` and delete ``removals`` as one crash-safe transaction (folders left
    empty by the removals are pruned): on any error the project is left exactly as it was, and
    after a crash the next command finishes or rolls it back (:mod:`.journal`). ``what`` names
    it in that command's message (``pull of 'pipelines.ds'``); ``append``: see
    :func:`.journal.apply`."""
    if not writes and not removals and append is None:
        return
    try:
        journal.apply(
            project.root,
            project.state_dir,
            [journal.Write(t, d, executable=t in executable) for t, d in sorted(writes.items())],
            removals,
            what=what,
            prune=_prune_candidates(project, removals),
            append=append,
        )
    except OSError as exc:
        raise PullError(
            f"Cannot write the pulled files ({_describe(project, exc)}); the project was left "
            "unchanged."
        ) from exc


def _prune_candidates(project: Project, removed: tuple[Path, ...]) -> list[Path]:
    """Folders of removed files, deepest first, to remove if the pull leaves them empty.

    Never the project's own roots, nor a config environment folder (``conf/local``).
    """
    keep = {
        project.root,
        project.source_dir,
        project.package_dir,
        project.tests_dir,
        project.conf_root,
    }
    folders: set[Path] = set()
    for path in removed:
        folder = path.parent
        while (
            folder not in keep
            and folder.parent != project.conf_root
            and project.root in folder.parents
        ):
            folders.add(folder)
            folder = folder.parent
    return sorted(folders, key=lambda p: (-len(p.parts), p))


def _describe(project: Project, exc: OSError) -> str:
    detail = exc.strerror or str(exc)
    if isinstance(exc.filename, str):
        return f"{detail}: {project.rel(Path(exc.filename))}"
    return detail


_THREADS = threading.Lock()


@contextlib.contextmanager
def _one_pull_at_a_time(project: Project) -> Iterator[None]:
    """Serialise plan-and-apply between the threads and processes of one run (``-n 2``).

    The parent process holds the project lock; between its workers this is an ``flock`` on the
    project root folder itself, which exists already (a failed pull creates nothing).
    """
    with _THREADS, folder_lock(project.root):
        yield


def _fetch(entry: PullEntry, base: Path, scratch: Scratch, timeout: float | None) -> Fetched:
    from .sources import DEFAULT_TIMEOUT, fetch, load_fs_args

    fs_args = None
    if entry.fs_args:
        fs_args_path = Path(entry.fs_args)
        fs_args = load_fs_args(fs_args_path if fs_args_path.is_absolute() else base / fs_args_path)
    return fetch(
        entry.source,
        lambda: scratch() / "download",  # a local sdist is read in place: no folder is made
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
    with Scratch("micropkg-pull-") as scratch:
        fetched = _fetch(entry, base, scratch, timeout)
        plan = plan_pull(
            project,
            entry,
            fetched.path,
            fetched.sha256,
            lambda: scratch() / "sdist",
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
    rewrite: Rewriter = run_rewrite,
    prepared: Callable[[], object] | None = None,
) -> PullResult:
    """Fetch ``entry.source`` and pull it into ``project`` (one crash-safe transaction), 3-way
    merging local edits; the pulled sdist is kept in the cache (the base of the next upgrade).

    ``also`` gives, from the plan, more files to write in the same transaction. Pass
    the run's ``lock_file`` when pulling several entries: the lock is then parsed once, and
    each pull records its entry in the lock as it is when the pull commits. ``rewrite``
    rewrites the imports (a run's :class:`~micropkg_tasks.ahead.Lookahead` gives one), and
    ``prepared`` may give the sdist already read (:class:`PreparedSdist`, used only when its
    sha256 is the fetched sdist's).
    """
    lock_file = lock_file or LockFile(project)
    with Scratch("micropkg-pull-") as scratch:
        fetched = _fetch(entry, base, scratch, timeout)
        contents = _extract(
            project, entry, fetched.path, fetched.sha256, lambda: scratch() / "sdist", prepared
        )
        # Fetching and extracting run in parallel (-n 2); planning and writing one pull at a
        # time, each against the project as the previous pull left it (requirements.in too).
        with lock_file.mutex, _one_pull_at_a_time(project):
            lock = lock_file.current()
            plan = _plan(
                project,
                entry,
                contents,
                fetched.sha256,
                lock=lock,
                force=force,
                markers=markers,
                rewrite=rewrite,
            )
            plan = dataclasses.replace(plan, remote_key=fetched.ukey)
            result = apply_plan(
                project, plan, lock, also=also(plan) if also else None, lock_file=lock_file
            )
            _keep_in_cache(project, fetched.path, fetched.sha256, lock, plan)
    return result


def _no_large_files() -> Path:
    raise PullError("a large file: read by the main process")


#: The largest sdist whose read contents the worker hands over, and the most those contents
#: may hold (other sdists are read again by the main process: what it holds stays small).
PREPARED_MAX = 1024**2
PREPARED_MAX_CONTENTS = 8 * 1024**2


@dataclass(frozen=True)
class PreparedSdist:
    """An sdist the worker read ahead: its contents, and the sha256 of the bytes it read."""

    sha256: str
    contents: SdistContents


@dataclass(frozen=True)
class SdistBatch:
    """The rewrites of pulling the local sdist ``archive`` (done ahead by :mod:`.ahead`'s
    worker; an sdist with a large file is left to the main process). Make it with
    :meth:`of`: what it carries is pickled for each sdist."""

    project: Project
    """The project without its ``pyproject.toml`` (which holds the manifests: N entries)."""
    entry: PullEntry
    archive: Path
    caps: limits.Limits

    @classmethod
    def of(cls, project: Project, entry: PullEntry, archive: Path) -> SdistBatch:
        """The batch of pulling ``archive`` for ``entry`` into ``project``."""
        caps = limits.project_limits(project.pyproject)
        return cls(dataclasses.replace(project, pyproject={}), entry, archive, caps)

    def rewrite(self, rewriter: Rewriter) -> PreparedSdist | None:
        """Lay the sdist out as a pull would, rewriting through ``rewriter``; what was read
        (when the sdist is at most ``PREPARED_MAX`` bytes holding at most
        ``PREPARED_MAX_CONTENTS``: the main process then need not read it again)."""
        from .sdist_reader import read_sdist

        data: bytes | None = None
        with self.archive.open("rb") as stream:
            if os.fstat(stream.fileno()).st_size <= PREPARED_MAX:  # (a larger one: read once)
                data = stream.read(PREPARED_MAX + 1)
                if len(data) > PREPARED_MAX:  # it grew meanwhile
                    data = None
        contents = read_sdist(
            self.archive,
            _no_large_files,
            max_bytes=self.caps.max_size,
            max_members=self.caps.max_members,
            archive_data=data,
        )
        # The lock only decides which __init__.py files a pull adds, not how files read.
        lay_out(self.project, self.entry, contents, Lock(), rewrite=rewriter)
        held = sum(len(item.read()) for item in contents.files.values())  # (all in memory)
        if data is None or held > PREPARED_MAX_CONTENTS:
            return None
        return PreparedSdist(sha256_bytes(data), contents)


def _keep_in_cache(
    project: Project, archive: Path, sha256: str, lock: Lock, plan: PullPlan
) -> None:
    """Cache the pulled sdist, and drop the one this entry pulled before if no other lock entry
    uses it. The pull has succeeded: a cache that cannot be written only means a later fetch.

    Only what this pull changed is looked at (not the whole cache folder, which would make
    ``pull --all`` quadratic); ``micropkg remove`` drops its entry's sdist the same way.
    """
    from .cache import drop, store

    with contextlib.suppress(OSError, MicropkgError):
        store(project.state_dir, archive, sha256)
    previous = lock.entries.get(plan.module)
    if previous is None or previous.sha256 == sha256:
        return
    if not any(e.sha256 == previous.sha256 for m, e in lock.entries.items() if m != plan.module):
        drop(project.state_dir, previous.sha256)


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
                if sha256_file(project.root / rel) != digest:
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
