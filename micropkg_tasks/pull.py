"""The pull operation: fetch → safe-read → plan → check conflicts → apply atomically → lock."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .collect import walk_files
from .errors import ConflictError, ManifestError, PullError
from .fsutil import sha256_bytes
from .lockfile import LOCK_NAME, Lock, LockEntry, LockFile, read_project_lock, render_lock
from .manifest import PullEntry
from .names import config_file_name, normalize_destination, validate_alias
from .project import Project

__all__ = [
    "PullPlan",
    "PullResult",
    "StatusRow",
    "apply_plan",
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


def _target_name(entry: PullEntry, package: str) -> str:
    if entry.alias:
        return entry.alias
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
) -> PullPlan:
    """Plan the pull of a local sdist ``archive`` into ``project`` (nothing is written)."""
    from .limits import project_limits
    from .requirements import merge_requirements
    from .sdist_reader import extract_sdist

    if entry.sha256 and entry.sha256.lower() != sha256:
        raise PullError(
            f"sha256 mismatch for '{entry.source}': expected {entry.sha256.lower()}, got {sha256}."
        )
    limits = project_limits(project.pyproject)
    contents = extract_sdist(
        archive, workdir / "sdist", max_bytes=limits.max_size, max_members=limits.max_members
    )
    module, writes, warnings = _lay_out(project, entry, contents.root, contents.package)

    previous = lock.entries.get(module)
    previous_files = previous.files if previous else {}
    conflicts: list[str] = []
    final_writes: dict[Path, bytes] = {}
    unchanged = 0
    for target, data in sorted(writes.items()):
        rel = project.rel(target)
        if target.is_dir():
            conflicts.append(f"{rel} (a folder is in the way)")
            continue
        try:
            current = target.read_bytes()
        except FileNotFoundError:
            final_writes[target] = data
            continue
        if current == data:
            unchanged += 1
            continue
        if force or previous_files.get(rel) == sha256_bytes(current):
            final_writes[target] = data
        else:
            owner = "" if rel in previous_files else " (not written by an earlier pull)"
            conflicts.append(f"{rel}{owner}")

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
        else:
            conflicts.append(f"{rel} (edited locally; the new version drops it)")

    merge = merge_requirements(
        project.requirements_in,
        project.requirements_txt,
        contents.package,
        contents.requirements,
        previous.requirements if previous else (),
    )
    requirements_file = None
    if merge.text is not None:
        final_writes[project.requirements_in] = merge.text.encode("utf-8")
        requirements_file = project.requirements_in

    options = {k: v for k, v in entry.options().items() if v and k not in ("source", "sha256")}
    lock_entry = LockEntry(
        module=module,
        source=entry.source,
        sha256=sha256,
        version=contents.version,
        package=contents.package,
        options={k: str(v) for k, v in options.items()},
        requirements=merge.added,
        files={project.rel(t): sha256_bytes(d) for t, d in writes.items()},
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
    )


def _replace(src: Path, dst: Path) -> None:
    # One place for every rename of the commit phase (tests inject failures here).
    os.replace(src, dst)


def apply_plan(project: Project, plan: PullPlan, lock: Lock) -> PullResult:
    """Write ``plan`` and the updated lock all-or-nothing: on any error the project is untouched."""
    if plan.conflicts:
        listing = "\n".join(f"  {c}" for c in plan.conflicts)
        raise ConflictError(
            f"{len(plan.conflicts)} file(s) would be overwritten or removed but were changed "
            f"locally; nothing was written (use --force to overwrite):\n{listing}",
            list(plan.conflicts),
        )
    lock_path = project.root / LOCK_NAME
    new_lock = render_lock(lock.with_entry(plan.lock_entry)).encode("utf-8")
    writes = dict(plan.writes)
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
        for path in (*(t for _, t in staged), *plan.removals):
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
    _prune_empty_dirs(project, plan.removals)
    return PullResult(
        plan,
        tuple(project.rel(t) for t in sorted(plan.writes)),
        tuple(project.rel(p) for p in plan.removals),
    )


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


def fetch_and_plan(
    project: Project,
    entry: PullEntry,
    *,
    base: Path,
    force: bool = False,
    lock_file: LockFile | None = None,
) -> tuple[PullPlan, Lock]:
    """Fetch ``entry.source`` and plan its pull (nothing in the project is written).

    ``lock_file``: the run's view of ``micropkg.lock`` (parsed once per run, not per entry).
    """
    from .sources import fetch, load_fs_args

    fs_args = None
    if entry.fs_args:
        fs_args_path = Path(entry.fs_args)
        fs_args = load_fs_args(fs_args_path if fs_args_path.is_absolute() else base / fs_args_path)
    lock = (lock_file or LockFile(project)).current()
    with tempfile.TemporaryDirectory(prefix="micropkg-pull-") as tmp:
        workdir = Path(tmp)
        fetched = fetch(entry.source, workdir / "download", base=base, fs_args=fs_args)
        plan = plan_pull(
            project, entry, fetched.path, fetched.sha256, workdir, lock=lock, force=force
        )
    return plan, lock


def pull(
    project: Project,
    entry: PullEntry,
    *,
    base: Path,
    force: bool = False,
    lock_file: LockFile | None = None,
) -> PullResult:
    """Fetch ``entry.source`` and pull it into ``project`` (atomically).

    Pass the run's ``lock_file`` when pulling several entries: the lock is then parsed once,
    and each pull records its entry in the lock as it is when the pull commits.
    """
    lock_file = lock_file or LockFile(project)
    plan, _ = fetch_and_plan(project, entry, base=base, force=force, lock_file=lock_file)
    with lock_file.mutex:
        lock = lock_file.current()
        result = apply_plan(project, plan, lock)
        lock_file.written(lock.with_entry(plan.lock_entry))
    return result


def status(project: Project) -> list[StatusRow]:
    """Each pulled micro-package with the files changed or deleted since it was pulled."""
    lock = read_project_lock(project)
    rows = []
    for module in sorted(lock.entries):
        entry = lock.entries[module]
        modified, missing = [], []
        for rel, digest in sorted(entry.files.items()):
            try:
                if sha256_bytes((project.root / rel).read_bytes()) != digest:
                    modified.append(rel)
            except FileNotFoundError:
                missing.append(rel)
        rows.append(StatusRow(module, entry.source, entry.version, tuple(modified), tuple(missing)))
    return rows
