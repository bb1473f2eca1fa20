"""The package operation: collect → rewrite imports → write a reproducible sdist → publish."""

from __future__ import annotations

import functools
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .ahead import MAX_FILE, Lookahead, Rewrite, Rewriter
from .collect import Collected, ConfigIndex, collect, read_version
from .errors import PackageError
from .journal import remove_partial_tarballs
from .manifest import PackageEntry
from .names import config_file_name, sdist_basename
from .project import Project
from .tarball_log import TarballLog, TarballRecord

__all__ = ["PackagePlan", "PackageResult", "PackageRun", "build_package", "plan_package"]


@dataclass(frozen=True)
class PackagePlan:
    """Everything known about one package job before any work is done (cheap to compute)."""

    entry: PackageEntry
    name: str
    version: str
    collected: Collected
    location: str
    """The destination folder (absolute local path) or fsspec URL."""
    remote: bool
    filename: str
    root: Path
    """The project root (error messages name files relative to it)."""

    @property
    def target(self) -> str:
        """The tarball to produce: a local path or a URL."""
        return f"{self.location.rstrip('/')}/{self.filename}"

    @functools.cached_property
    def requirements(self) -> tuple[str, ...]:
        """The micro-package's ``requirements.txt`` in canonical form, parsed once per run.

        Raises ``RequirementsError`` (not cached: every access raises again).
        """
        from .requirements import parse_package_requirements

        return parse_package_requirements(
            self.collected.code_dir / "requirements.txt", relative_to=self.root
        )


@dataclass(frozen=True)
class PackageResult:
    """What a package job produced."""

    plan: PackagePlan
    sdist: str
    warnings: tuple[str, ...]


def _location(project: Project, destination: str | None) -> tuple[str, bool]:
    from .sources import is_remote

    if destination and is_remote(destination):
        return destination, True
    if not destination:
        return str(project.root / "dist"), False
    path = Path(destination).expanduser()
    return str(path if path.is_absolute() else project.root / path), False


def plan_package(
    project: Project, entry: PackageEntry, config_index: ConfigIndex | None = None
) -> PackagePlan:
    """Collect the inputs of ``entry`` and compute its target (no file is written)."""
    collected = collect(project, entry.module_path, entry.env, config_index)
    version = read_version(project, entry.module_path)
    location, remote = _location(project, entry.destination)
    if not remote and Path(location).is_file():
        raise PackageError(f"Destination '{location}' is a file, not a folder.")
    filename = sdist_basename(entry.name, version) + ".tar.gz"
    return PackagePlan(
        entry, entry.name, version, collected, location, remote, filename, project.root
    )


def _rewrite_call(project: Project, plan: PackagePlan, path: Path, rel: str) -> Rewrite:
    """How the ``.py`` file ``path`` (``rel`` in its group) of ``plan`` is rewritten."""
    return Rewrite(
        f"{project.package_name}.{plan.entry.module_path}",
        plan.name,
        project.rel(path),
        project.package_name,
        rel.count("/"),
    )


@dataclass(frozen=True)
class _FilesBatch:
    """The rewrites of a plan's ``.py`` files, which the worker reads from disk."""

    files: tuple[tuple[Path, Rewrite], ...]

    def rewrite(self, rewriter: Rewriter) -> None:
        """Rewrite each file through ``rewriter`` (the too large and unreadable skipped)."""
        for path, call in self.files:
            try:
                with path.open("rb") as stream:
                    data = stream.read(MAX_FILE + 1)
            except OSError:
                continue
            if len(data) <= MAX_FILE:
                rewriter(call, data)


def _files_batch(project: Project, plan: PackagePlan) -> _FilesBatch:
    groups = (plan.collected.code, plan.collected.tests)
    return _FilesBatch(
        tuple(
            (path, _rewrite_call(project, plan, path, rel))
            for group in groups
            for path, rel in group
            if rel.endswith(".py")
        )
    )


def _rewrite_group(
    files: tuple[tuple[Path, str], ...],
    prefix: str,
    project: Project,
    plan: PackagePlan,
    rewriter: Rewriter,
    members: dict[str, bytes | Path],
    warnings: list[str],
) -> None:
    for path, rel in files:
        if not rel.endswith(".py"):
            members[f"{prefix}{rel}"] = path  # streamed by the writer, never held whole
            continue
        result = rewriter(_rewrite_call(project, plan, path, rel), path.read_bytes())
        warnings.extend(result.warnings)
        members[f"{prefix}{rel}"] = result.text


def build_package(
    project: Project,
    plan: PackagePlan,
    *,
    manifest_entry: bool = False,
    run: PackageRun | None = None,
) -> PackageResult:
    """Write the sdist of ``plan`` (atomically) and publish it when the target is remote.

    Older versions of the same tarball are removed; for a manifest entry, so is the tarball
    it produced last time under another alias or destination. Never removed: a tarball that an
    entry of this ``run`` produces, and any file that is not ``<name>-<PEP 440 version>.tar.gz``.
    """
    from .limits import project_limits
    from .sdist import SdistSpec, write_sdist

    entry, name = plan.entry, plan.name
    micropkg_name = entry.module_path.rsplit(".", 1)[-1]
    requirements = plan.requirements
    run = run or PackageRun.of(project, [plan])
    key = entry.module_path
    lookahead = run.lookahead(project)
    try:
        rewriter = lookahead.start(key)
        members: dict[str, bytes | Path] = {}
        warnings: list[str] = []
        _rewrite_group(plan.collected.code, f"{name}/", project, plan, rewriter, members, warnings)
        members.setdefault(f"{name}/__init__.py", b"")
        _rewrite_group(plan.collected.tests, "tests/", project, plan, rewriter, members, warnings)
    finally:
        lookahead.done(key)
    if any(rel.startswith("config/") for _, rel in plan.collected.code):
        warnings.append(
            f"{project.rel(plan.collected.code_dir / 'config')}: a pull installs "
            "'<package>/config/' into conf/<env>/ (Kedro's layout), not as code"
        )
    for path, rel in plan.collected.config:
        member = f"{name}/config/{config_file_name(rel, micropkg_name, entry.alias)}"
        if member in members:
            raise PackageError(
                f"'{project.rel(path)}' and the micro-package's own "
                f"'config/{member.split('/config/', 1)[1]}' would be the same file in the sdist; "
                "rename one of them."
            )
        members[member] = path

    spec = SdistSpec(name=name, version=plan.version, requirements=requirements, files=members)
    limits = project_limits(project.pyproject)
    if plan.remote:
        from .publish import publish

        with tempfile.TemporaryDirectory(prefix="micropkg-") as tmp:
            local = Path(tmp) / plan.filename
            write_sdist(local, spec, limits=limits)
            return PackageResult(plan, publish(local, plan.location), tuple(warnings))

    folder = Path(plan.location)
    target = folder / plan.filename
    write_sdist(target, spec, limits=limits)
    _remove_stale(project, plan, target, manifest_entry, run)
    return PackageResult(plan, str(target), tuple(warnings))


_TARBALL = re.compile(r"^(?P<name>[a-z0-9_]+)-(?P<version>[^-/]+)\.tar\.gz$")


def _is_version(text: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@dataclass
class PackageRun:
    """What the entries of one package run share.

    ``targets``: every tarball the run's entries produce (built now or up to date), which no
    entry may remove as stale: two entries that swap aliases each keep the other's tarball.
    Each destination folder is listed once per run, not once per entry. ``plans``: the run's
    entries in the order doit builds them, whose Python files a worker process rewrites ahead
    of need once the run has built a few (:mod:`.ahead`).
    """

    targets: frozenset[Path]
    log: TarballLog
    plans: tuple[PackagePlan, ...] = ()
    _tarballs: dict[Path, dict[str, set[str]]] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _lookahead: Lookahead | None = None

    @classmethod
    def of(cls, project: Project, plans: Iterable[PackagePlan]) -> PackageRun:
        """The run of ``plans`` (remote targets are never listed nor removed)."""
        plans = tuple(plans)
        targets = frozenset(Path(p.target) for p in plans if not p.remote)
        return cls(targets, TarballLog(project.state_dir / "package"), plans)

    def lookahead(self, project: Project) -> Lookahead:
        """The run's rewriting ahead (:mod:`.ahead`), keyed by module path."""
        with self._mutex:
            if self._lookahead is None:
                plans = {plan.entry.module_path: plan for plan in self.plans}
                self._lookahead = Lookahead(
                    list(plans), lambda key: _files_batch(project, plans[str(key)])
                )
            return self._lookahead

    def tarballs(self, folder: Path, name: str) -> list[Path]:
        """Our tarballs of distribution ``name`` in ``folder`` (other versions included)."""
        with self._mutex:
            index = self._tarballs.get(folder)
            if index is None:
                index = {}
                names = os.listdir(folder)
                remove_partial_tarballs(folder, names)  # what a killed run of ours left
                for entry in names:
                    match = _TARBALL.match(entry)
                    if match and _is_version(match["version"]):
                        index.setdefault(match["name"], set()).add(entry)
                self._tarballs[folder] = index
            return [folder / entry for entry in sorted(index.get(name, ()))]

    def remove(self, path: Path) -> None:
        """Delete the tarball ``path`` unless an entry of this run produces it."""
        if path in self.targets:
            return
        path.unlink(missing_ok=True)
        with self._mutex:
            names = self._tarballs.get(path.parent, {}).get(path.name.split("-", 1)[0])
            if names is not None:
                names.discard(path.name)


def _remove_stale(
    project: Project, plan: PackagePlan, target: Path, manifest_entry: bool, run: PackageRun
) -> None:
    """Remove older tarballs of this entry: other versions, or the previous alias's tarball."""
    stem = plan.filename.split("-", 1)[0]
    for other in run.tarballs(target.parent, stem):
        if other != target:
            run.remove(other)
    if not manifest_entry:
        return
    record = run.log.get(plan.entry.module_path)
    previous = _recorded_tarball(project, record) if record else None
    if (
        previous is not None
        and previous != target
        and (match := _TARBALL.match(previous.name))
        and _is_version(match["version"])
        and previous.is_file()
    ):
        run.remove(previous)
    if previous != target:
        run.log.put(plan.entry.module_path, _tarball_record(project, target))


def _tarball_record(project: Project, target: Path) -> TarballRecord:
    """The record of ``target``: relative to the project root when inside it (a copied or
    moved project then names its own tarball); else absolute, with the project root that
    wrote it."""
    rel = project.rel(target)
    if not Path(rel).is_absolute():
        return rel, None
    return str(target), str(project.root)


def _recorded_tarball(project: Project, record: TarballRecord) -> Path | None:
    """The tarball ``record`` names, or None when it may belong to another project.

    A record written in another folder (this project is a copy, ``cp -r``) must never make
    this run delete that folder's tarballs: an absolute path counts only when the record
    names this root, or (records of older versions, a bare absolute path) lies inside it.
    """
    path = Path(record[0])
    if not path.is_absolute():
        return None if ".." in path.parts else project.root / path
    writer = Path(record[1]) if record[1] else None
    if writer == project.root or (writer is None and path.is_relative_to(project.root)):
        return path
    return None
