"""doit task creators: ``package``, ``pull``, ``build_reqs``, ``pull_all``.

A Kedro project needs a one-line ``dodo.py``::

    from micropkg_tasks.tasks import *  # noqa: F403

The ``micropkg`` CLI builds the same tasks through :func:`namespace` and shares the state
(``.micropkg/doit.sqlite``). Loading stays cheap: pyproject is parsed, files are globbed and
``__version__`` is read with ``ast``; user code is never imported, nothing touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doit import task_params
from doit.exceptions import InvalidTask, TaskFailed
from doit.tools import config_changed

from . import __version__
from .collect import ConfigIndex
from .errors import MicropkgError
from .lockfile import LockFile
from .manifest import Manifest, PackageEntry, PullEntry, load_manifest, package_entry
from .names import normalize_destination
from .package import PackagePlan, PackageRun, build_package, plan_package
from .project import Project, load_project
from .reporter import MicropkgReporter
from .state import DEP_FILE, acquire, ensure_state_dir

__all__ = [  # noqa: F822  (DOIT_CONFIG comes from the module __getattr__)
    "DOIT_CONFIG",
    "task_build_reqs",
    "task_package",
    "task_pull",
    "task_pull_all",
]


@dataclass
class TaskContext:
    """The project, its manifest, and which entries the tasks are generated for."""

    project: Project
    manifest: Manifest
    package_entries: tuple[PackageEntry, ...] | None = None
    """None: every manifest entry ("all" mode); else these entries only (single mode)."""
    force: bool = False
    markers: bool = False
    """``--merge=markers``: pulls write conflict markers instead of refusing."""
    timeout: float | None = None
    """``--timeout``: seconds a remote source may stay silent (``None``: the default)."""
    plans: dict[str, PackagePlan] = field(default_factory=dict)
    config_indexes: dict[str, ConfigIndex] = field(default_factory=dict)
    _lock_file: LockFile | None = None
    _package_run: PackageRun | None = None

    @property
    def lock_file(self) -> LockFile:
        """The run's ``micropkg.lock``: parsed once, shared by every pull task and check."""
        if self._lock_file is None:
            self._lock_file = LockFile(self.project)
        return self._lock_file

    @classmethod
    def load(cls, start: Path) -> TaskContext:
        """Read the project containing ``start`` and validate its manifests."""
        project = load_project(start)
        manifest = load_manifest(project.pyproject, source_prefix=project.rel(project.package_dir))
        return cls(project, manifest)

    @property
    def package_run(self) -> PackageRun:
        """What the package tasks of this run share (their targets, one listing per folder)."""
        if self._package_run is None:
            self._package_run = PackageRun.of(plan for plan, _ in self.package_plans())
        return self._package_run

    def package_plans(self) -> list[tuple[PackagePlan, bool]]:
        """Plans of the selected package entries with their "all mode" flag (memoised)."""
        all_mode = self.package_entries is None
        entries = self.manifest.package if all_mode else self.package_entries or ()
        result = []
        for entry in entries:
            if entry.module_path not in self.plans:
                if entry.env not in self.config_indexes:
                    conf_dir = self.project.conf_root / entry.env
                    self.config_indexes[entry.env] = ConfigIndex(conf_dir)
                index = self.config_indexes[entry.env]
                self.plans[entry.module_path] = plan_package(self.project, entry, index)
            result.append((self.plans[entry.module_path], all_mode))
        return result


def default_config(project_root: Path, user_doit: dict[str, Any] | None = None) -> dict[str, Any]:
    """Our doit defaults, minus every key the user set in ``[tool.doit]``."""
    defaults: dict[str, Any] = {
        "default_tasks": ["package"],
        "dep_file": DEP_FILE,
        "backend": "sqlite3",
        "check_file_uptodate": "md5",
        "reporter": MicropkgReporter,
        # `doit list` shows one line per micro-package (doit hides sub-tasks by default).
        "subtasks": True,
    }
    ensure_state_dir(project_root)
    return {k: v for k, v in defaults.items() if k not in (user_doit or {})}


class RemoteUnchanged:
    """doit ``uptodate``: True while the remote object keeps the ukey/ETag seen last time."""

    def __init__(
        self, url: str, fs_args_file: Path | None = None, timeout: float | None = None
    ) -> None:
        self.url, self.fs_args_file, self.timeout = url, fs_args_file, timeout
        self.key: str | None = None

    def _key(self) -> str | None:
        from .sources import DEFAULT_TIMEOUT, remote_key

        timeout = DEFAULT_TIMEOUT if self.timeout is None else self.timeout
        return remote_key(self.url, self.fs_args, timeout=timeout)

    @property
    def fs_args(self) -> dict[str, Any] | None:
        """Storage options, read when the check runs (not while tasks load)."""
        from .sources import load_fs_args

        return load_fs_args(self.fs_args_file) if self.fs_args_file else None

    def configure_task(self, task: Any) -> None:
        """Save the key seen at the end of a successful run."""
        task.value_savers.append(self._save)

    def _save(self) -> dict[str, Any]:
        try:
            self.key = self._key()
        except MicropkgError:
            self.key = None
        return {"remote_key": self.key}

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        try:
            key = self._key()
        except MicropkgError:
            return False
        return key is not None and values.get("remote_key") == key


# --- actions (thin: call the operation, turn its result into a message) -----------------


def _run_package(
    project: Project, plan: PackagePlan, all_mode: bool, run: PackageRun
) -> dict[str, Any] | TaskFailed:
    from .messages import package_message

    try:
        result = build_package(project, plan, manifest_entry=all_mode, run=run)
    except MicropkgError as exc:
        return TaskFailed(str(exc))
    return {
        "message": package_message(project, result, all_mode),
        "warnings": list(result.warnings),
        "sdist": result.sdist,
    }


def _run_pull(
    project: Project,
    entry: PullEntry,
    force: bool,
    lock_file: LockFile,
    markers: bool = False,
    timeout: float | None = None,
) -> dict[str, Any] | TaskFailed:
    from .messages import markers_message, pull_message
    from .pull import pull

    try:
        result = pull(
            project,
            entry,
            base=project.root,
            force=force,
            lock_file=lock_file,
            markers=markers,
            timeout=timeout,
        )
    except MicropkgError as exc:
        return TaskFailed(str(exc))
    if result.plan.marked:  # written, but not done: the next run pulls again
        return TaskFailed(markers_message(result.plan))
    return {
        "message": pull_message(project, result, entry.source, all_mode=True),
        "warnings": list(result.plan.warnings),
    }


def _run_build_reqs(project: Project) -> dict[str, Any] | TaskFailed:
    from .requirements import compile_requirements

    if not project.requirements_in.is_file():
        return {"message": f"Nothing to compile: no {project.rel(project.requirements_in)}."}
    try:
        compile_requirements(project.root, project.requirements_in, project.requirements_txt)
    except MicropkgError as exc:
        return TaskFailed(str(exc))
    return {
        "message": f"Compiled {project.rel(project.requirements_in)} into "
        f"{project.rel(project.requirements_txt)}."
    }


class RequirementsFresh:
    """doit ``uptodate``: True while ``requirements.txt`` was compiled from this ``.in``."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __call__(self) -> bool:
        from .requirements import requirements_stale

        req_in, req_txt = self.project.requirements_in, self.project.requirements_txt
        return not req_in.is_file() or not requirements_stale(req_in, req_txt)


class PulledBefore:
    """doit ``uptodate``: True when ``micropkg.lock`` records a pull of this source.

    Every pull task of a run shares one :class:`LockFile`: the lock is parsed once per run,
    not once per task.
    """

    def __init__(self, lock_file: LockFile, source: str) -> None:
        self.lock_file, self.source = lock_file, source

    def __call__(self) -> bool:
        from .sources import public_url

        try:
            # the lock records sources without credentials
            return public_url(self.source) in self.lock_file.sources()
        except MicropkgError:
            return False


# --- task dicts ---------------------------------------------------------------------------


def _package_task(
    project: Project, plan: PackagePlan, all_mode: bool, digest: str, run: PackageRun
) -> dict[str, Any]:
    entry = plan.entry
    uptodate: list[Any] = [
        config_changed(
            {
                "entry": entry.options(),
                "location": plan.location,
                "tool": __version__,
                "templates": digest,
            }
        )
    ]
    task: dict[str, Any] = {
        "name": entry.module_path,
        "doc": f"Package {project.package_name}.{entry.module_path} into {plan.target}",
        "actions": [(_run_package, [project, plan, all_mode, run])],
        "file_dep": [project.rel(p) for p in plan.collected.all_paths()],
        "uptodate": uptodate,
        "clean": True,
        "verbosity": 1,
    }
    if plan.remote:
        uptodate.append(RemoteUnchanged(plan.target))
    else:
        task["targets"] = [project.rel(Path(plan.target))]
    return task


def package_tasks(ctx: TaskContext) -> Iterator[dict[str, Any]]:
    """One doit sub-task per selected package entry."""
    from .sdist import templates_digest

    yield {"name": None, "doc": "Package micro-packages listed in the package manifest."}
    digest = templates_digest()
    for plan, all_mode in ctx.package_plans():
        yield _package_task(ctx.project, plan, all_mode, digest, ctx.package_run)


def is_pinned(requirement: str) -> bool:
    """Whether an index requirement names exactly one release (``name==1.2``, ``name===1.2``)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False
    clauses = list(req.specifier)
    return (
        req.url is None
        and req.marker is None
        and len(clauses) == 1
        and clauses[0].operator in ("==", "===")
        and not clauses[0].version.endswith(".*")
    )


def pull_task_name(entry: PullEntry) -> str:
    """A readable, doit-safe sub-task name: the alias, else the source's package name."""
    if entry.alias:
        base = entry.alias
    else:
        last = entry.source.rstrip("/").split("?", 1)[0].rsplit("/", 1)[-1]
        for suffix in (".tar.gz", ".tgz"):
            last = last.removesuffix(suffix)
        base = re.split(r"[-=<>!~\[;@ ]", last, maxsplit=1)[0] or "source"
    parts = normalize_destination(entry.destination)
    return ".".join((*parts, base)) if parts else base


def _pull_task(ctx: TaskContext, entry: PullEntry, name: str) -> dict[str, Any]:
    from .sources import is_remote, local_path, public_url, source_kind

    project = ctx.project
    base = project.root
    uptodate: list[Any] = [
        config_changed({"entry": entry.options(), "tool": __version__}),
        PulledBefore(ctx.lock_file, entry.source),
    ]
    task: dict[str, Any] = {
        "name": name,
        "doc": f"Pull {public_url(entry.source)}",
        "actions": [
            (_run_pull, [project, entry, ctx.force, ctx.lock_file, ctx.markers, ctx.timeout])
        ],
        "uptodate": uptodate,
        "verbosity": 1,
    }
    kind = source_kind(entry.source, base)
    if kind == "local":
        task["file_dep"] = [project.rel(local_path(entry.source, base))]
    elif is_remote(entry.source):
        fs_file = base / entry.fs_args if entry.fs_args else None  # an absolute path stays
        uptodate.append(RemoteUnchanged(entry.source, fs_file, ctx.timeout))
    elif not is_pinned(entry.source):
        uptodate.append(False)  # an unpinned index requirement may resolve to a new release
    return task


def pull_tasks(ctx: TaskContext) -> Iterator[dict[str, Any]]:
    """One doit sub-task per selected pull entry."""
    yield {"name": None, "doc": "Pull micro-packages listed in the pull manifest."}
    entries = ctx.manifest.pull
    seen: dict[str, int] = {}
    for entry in entries:
        name = pull_task_name(entry)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}_{seen[name]}"
        yield _pull_task(ctx, entry, name)


def build_reqs_task(project: Project) -> dict[str, Any]:
    """Compile ``requirements.in`` into ``requirements.txt`` when it changed."""
    task: dict[str, Any] = {
        "doc": "Compile requirements.in into requirements.txt (pip-tools) when it changed.",
        "actions": [(_run_build_reqs, [project])],
        "uptodate": [RequirementsFresh(project)],
        "verbosity": 1,
    }
    if project.requirements_in.is_file():
        task["file_dep"] = [project.rel(project.requirements_in)]
        task["targets"] = [project.rel(project.requirements_txt)]
    return task


def pull_all_task(project: Project) -> dict[str, Any]:
    """Pull every manifest entry, then compile requirements.in if it changed.

    The compile is this task's own action, not a dependency on ``build_reqs``: doit decides
    whether a task is up to date once its ``task_dep`` ran, so the check sees what the pulls
    wrote to requirements.in.
    """
    return {
        "doc": "Pull every micro-package of the pull manifest, then run build_reqs.",
        "actions": [(_run_build_reqs, [project])],
        "task_dep": ["pull"],
        "uptodate": [RequirementsFresh(project)],
        "verbosity": 1,
    }


def namespace(ctx: TaskContext) -> dict[str, Any]:
    """Task creators and DOIT_CONFIG bound to ``ctx`` (what the ``micropkg`` CLI runs)."""

    def task_package() -> Iterator[dict[str, Any]]:
        """Package micro-packages listed in the package manifest."""
        return package_tasks(ctx)

    def task_pull() -> Iterator[dict[str, Any]]:
        """Pull micro-packages listed in the pull manifest."""
        return pull_tasks(ctx)

    def task_build_reqs() -> dict[str, Any]:
        """Compile requirements.in into requirements.txt when it changed."""
        return build_reqs_task(ctx.project)

    def task_pull_all() -> dict[str, Any]:
        """Pull every micro-package of the pull manifest, then run build_reqs."""
        return pull_all_task(ctx.project)

    return {
        "task_package": task_package,
        "task_pull": task_pull,
        "task_build_reqs": task_build_reqs,
        "task_pull_all": task_pull_all,
        "DOIT_CONFIG": default_config(ctx.project.root, _user_doit(ctx.project)),
    }


# --- the dodo.py entry points (CWD = project root, set by doit) ---------------------------


def _user_doit(project: Project) -> dict[str, Any]:
    doit_table = project.pyproject.get("tool", {}).get("doit", {})
    return doit_table if isinstance(doit_table, dict) else {}


_CWD_CONTEXTS: dict[Path, TaskContext] = {}


def _cwd_context() -> TaskContext:
    """The context of the project in the CWD, loaded once per process and locked."""
    cwd = Path.cwd()
    if cwd not in _CWD_CONTEXTS:
        try:
            ctx = TaskContext.load(cwd)
            acquire(ctx.project)
        except MicropkgError as exc:
            raise InvalidTask(str(exc)) from None
        _CWD_CONTEXTS[cwd] = ctx
    return _CWD_CONTEXTS[cwd]


def _guard(creator: Callable[[], Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    try:
        yield from creator()
    except MicropkgError as exc:
        raise InvalidTask(str(exc)) from None


_PACKAGE_PARAMS = [
    {"name": "module", "long": "module", "default": "", "help": "module path to package"},
    {"name": "alias", "long": "alias", "default": "", "help": "alternative name"},
    {"name": "env", "long": "env", "short": "e", "default": "", "help": "config env"},
    {
        "name": "destination",
        "long": "destination",
        "short": "d",
        "default": "",
        "help": "folder or fsspec URL for the tarball",
    },
]


@task_params(_PACKAGE_PARAMS)  # type: ignore[untyped-decorator]
def task_package(module: str, alias: str, env: str, destination: str) -> Iterator[dict[str, Any]]:
    """Package micro-packages listed in the package manifest (or --module)."""
    ctx = _cwd_context()
    if module:
        try:
            entry = package_entry(
                module,
                alias=alias or None,
                destination=destination or None,
                env=env or None,
                source_prefix=ctx.project.rel(ctx.project.package_dir),
            )
        except MicropkgError as exc:
            raise InvalidTask(str(exc)) from None
        ctx.package_entries = (entry,)
    return _guard(lambda: package_tasks(ctx))


def task_pull() -> Iterator[dict[str, Any]]:
    """Pull micro-packages listed in the pull manifest."""
    return _guard(lambda: pull_tasks(_cwd_context()))


def task_build_reqs() -> dict[str, Any]:
    """Compile requirements.in into requirements.txt when it changed."""
    return build_reqs_task(_cwd_context().project)


def task_pull_all() -> dict[str, Any]:
    """Pull every micro-package of the pull manifest, then run build_reqs."""
    return pull_all_task(_cwd_context().project)


def _dodo_config() -> dict[str, Any]:
    try:
        project = load_project(Path.cwd())
    except MicropkgError:
        return {"default_tasks": ["package"]}
    return default_config(project.root, _user_doit(project))


def __getattr__(name: str) -> Any:
    # DOIT_CONFIG is computed when a dodo.py star-imports it (CWD = the project root), not
    # whenever this module is imported.
    if name == "DOIT_CONFIG":
        return _dodo_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
