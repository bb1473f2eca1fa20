"""doit embedding: one ``TaskLoader2`` for the ``micropkg`` CLI and a project's ``dodo.py``.

:class:`MicropkgLoader` builds the tasks ``package``, ``pull``, ``build_reqs`` and
``pull_all`` from a frozen :class:`TaskContext` (the project, its manifests, the ``--force``
choice) and gives doit our configuration minus whatever the user set in ``[tool.doit]``. The CLI
hands an instance to ``DoitMain``; the one-line ``dodo.py`` star-imports
:mod:`micropkg_tasks.tasks`, whose names are the same loader's methods. A ``--module`` choice
is a parameter of one call, never stored. Loading stays cheap: pyproject is parsed, files are
globbed and ``__version__`` is read with ``ast``; user code is never imported, nothing touches
the network. The project lock is taken when the tasks are loaded.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import secrets
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from doit import task_params
from doit.cmd_base import TaskLoader2
from doit.exceptions import InvalidTask, TaskFailed
from doit.loader import load_tasks
from doit.tools import config_changed

from . import __version__
from .ahead import Batch, Lookahead, collect_less_often
from .collect import ConfigIndex
from .errors import MicropkgError
from .journal import recovered_lock
from .lockfile import LockFile
from .manifest import Manifest, PackageEntry, PullEntry, load_manifest, package_entry
from .names import normalize_destination
from .options import doit_params
from .package import PackagePlan, PackageRun, build_package, plan_package
from .project import Project, find_project, load_project, read_pyproject
from .reporter import UPTODATE_NOTE
from .result import TaskOutcome, TaskStatus
from .state import DEP_FILE, ensure_state_dir

__all__ = ["MicropkgLoader", "TaskContext", "doit_config", "is_pinned", "pull_task_name"]


@dataclass(frozen=True)
class TaskContext:
    """The project, its manifests and the run's choices; frozen (plans are memoised)."""

    project: Project
    manifest: Manifest
    force: bool = False
    markers: bool = False
    """``--merge=markers``: pulls write conflict markers instead of refusing."""
    timeout: float | None = None
    """``--timeout``: seconds a remote source may stay silent (``None``: the default)."""
    run_id: str = field(default_factory=lambda: secrets.token_hex(8))
    """Identifies this run in the tasks' saved values (executed now, or up to date)."""
    _plans: dict[str, PackagePlan] = field(default_factory=dict, repr=False, compare=False)
    _indexes: dict[str, ConfigIndex] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        start: Path,
        *,
        force: bool = False,
        markers: bool = False,
        timeout: float | None = None,
    ) -> TaskContext:
        """Read the project containing ``start`` and validate its manifests."""
        project = load_project(start)
        manifest = load_manifest(project.pyproject, source_prefix=project.rel(project.package_dir))
        return cls(project, manifest, force, markers, timeout)

    @cached_property
    def lock_file(self) -> LockFile:
        """The run's ``micropkg.lock``: parsed once, shared by every pull task and check, and
        written once, when the run ends (the pull tasks' doit ``teardown``)."""
        return LockFile(self.project, deferred=True)

    def package_plans(
        self, selection: tuple[PackageEntry, ...] | None = None
    ) -> list[tuple[PackagePlan, bool]]:
        """Plans of ``selection`` (None: every manifest entry, "all mode"), with that flag."""
        all_mode = selection is None
        entries = self.manifest.package if selection is None else selection
        result = []
        for entry in entries:
            plan = self._plans.get(entry.module_path)
            if plan is None or plan.entry != entry:
                if entry.env not in self._indexes:
                    self._indexes[entry.env] = ConfigIndex(self.project.conf_root / entry.env)
                plan = plan_package(self.project, entry, self._indexes[entry.env])
                self._plans[entry.module_path] = plan
            result.append((plan, all_mode))
        return result


OUR_CONFIG: Mapping[str, Any] = {
    "default_tasks": ["package"],
    "dep_file": DEP_FILE,
    "backend": "sqlite3",
    "check_file_uptodate": "md5",
    # `doit list` shows one line per micro-package (doit hides sub-tasks by default).
    "subtasks": True,
}


def doit_config(user_keys: Mapping[str, Any] | None, reporter: Any) -> dict[str, Any]:
    """Our doit configuration and ``reporter``, minus every key the user set in
    ``[tool.doit]`` (doit lets a dodo's configuration override the config file's)."""
    config = {**OUR_CONFIG, "reporter": reporter}
    return {k: v for k, v in config.items() if k not in (user_keys or {})}


class RemoteUnchanged:
    """doit ``uptodate``: True while the remote object keeps the ukey/ETag seen last time."""

    def __init__(
        self,
        url: str,
        fs_args_file: Path | None = None,
        timeout: float | None = None,
        *,
        save: bool = True,
    ) -> None:
        self.url, self.fs_args_file, self.timeout, self.save = url, fs_args_file, timeout, save
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
        """Save the key seen at the end of a successful run (unless the action returns the
        key it saw, as a pull does: read at download time, it cannot miss a change made while
        the task ran)."""
        if self.save:
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
    project: Project, plan: PackagePlan, all_mode: bool, run: PackageRun, run_id: str
) -> dict[str, Any] | TaskFailed:
    from .messages import package_message

    try:
        result = build_package(project, plan, manifest_entry=all_mode, run=run)
    except MicropkgError as exc:
        return TaskFailed(str(exc))
    return {
        "run": run_id,
        "message": package_message(project, result, all_mode),
        "warnings": list(result.warnings),
        "sdist": result.sdist,
    }


def _run_pull(
    project: Project,
    entry: PullEntry,
    force: bool,
    lock_file: LockFile,
    markers: bool,
    timeout: float | None,
    run_id: str,
    lookahead: Lookahead,
    key: str,
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
            rewrite=lookahead.start(key),
            prepared=lambda: lookahead.product(key),
        )
    except MicropkgError as exc:
        return TaskFailed(str(exc))
    finally:
        lookahead.done(key)
    if result.plan.marked:  # written, but not done: the next run pulls again
        return TaskFailed(markers_message(result.plan))
    return {
        "run": run_id,
        "remote_key": result.plan.remote_key,
        "message": pull_message(project, result, entry.source, all_mode=True),
        "warnings": list(result.plan.warnings),
    }


def _write_lock(lock_file: LockFile) -> TaskFailed | None:
    first = not lock_file.closed
    try:
        lock_file.close()
    except MicropkgError as exc:  # reported by the first teardown only
        # doit's report of a failed teardown keeps only the traceback: one is made
        return TaskFailed(str(exc), exc) if first else None
    return None


def _run_build_reqs(project: Project, run_id: str) -> dict[str, Any] | TaskFailed:
    from .messages import build_reqs_message
    from .requirements import build_requirements

    try:
        result = build_requirements(
            project.root, project.requirements_in, project.requirements_txt, force=True
        )
    except MicropkgError as exc:
        return TaskFailed(str(exc))
    return {"run": run_id, "message": build_reqs_message(project, result)}


class RequirementsFresh:
    """doit ``uptodate``: True while ``requirements.txt`` was compiled from this ``.in``, or
    while there is nothing to compile."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __call__(self) -> bool:
        from .requirements import nothing_to_compile, requirements_stale

        req_in, req_txt = self.project.requirements_in, self.project.requirements_txt
        return (
            not requirements_stale(req_in, req_txt)
            or nothing_to_compile(req_in, req_txt) is not None
        )

    def note(self) -> str | None:
        """What an up-to-date task says after doit's ``-- task`` line: ``Nothing to compile:
        ...`` (None: nothing to say)."""
        from .requirements import BuildResult, nothing_to_compile

        req_in, req_txt = self.project.requirements_in, self.project.requirements_txt
        nothing = nothing_to_compile(req_in, req_txt)
        if nothing is None:
            return None
        from .messages import build_reqs_message  # imports the operations: only when needed

        return build_reqs_message(self.project, BuildResult(False, req_in, req_txt, nothing))


# doit inspects each ``uptodate`` callable's signature for every task it checks; a callable
# object's costs ~0.1 ms, a tenth of a no-op ``pull --all`` at N=1,000. These declare theirs.
_NO_ARGS = inspect.Signature()
_TASK_AND_VALUES = inspect.Signature(
    [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("task", "values")]
)


class _ConfigChanged(config_changed):  # type: ignore[misc]
    """doit's ``config_changed``, with its signature declared (see ``_TASK_AND_VALUES``)."""

    __signature__ = _TASK_AND_VALUES


class PulledBefore:
    """doit ``uptodate``: True when ``micropkg.lock`` records a pull of this source.

    Every pull task of a run shares one :class:`LockFile`: the lock is parsed once per run,
    not once per task.
    """

    __signature__ = _NO_ARGS

    def __init__(self, lock_file: LockFile, source: str) -> None:
        self.lock_file, self.source = lock_file, source

    def __call__(self) -> bool:
        from .sources import public_url

        try:
            # the lock records sources without credentials
            return self.lock_file.has_source(public_url(self.source))
        except MicropkgError:
            return False


# --- task dicts ---------------------------------------------------------------------------


def _package_task(
    project: Project,
    plan: PackagePlan,
    all_mode: bool,
    digest: str,
    run: PackageRun,
    run_id: str,
) -> dict[str, Any]:
    entry = plan.entry
    uptodate: list[Any] = [
        _ConfigChanged(
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
        "actions": [(_run_package, [project, plan, all_mode, run, run_id])],
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


def package_tasks(
    ctx: TaskContext, selection: tuple[PackageEntry, ...] | None
) -> Iterator[dict[str, Any]]:
    """One doit sub-task per selected package entry (None: every manifest entry)."""
    from .sdist import templates_digest

    yield {"name": None, "doc": "Package micro-packages listed in the package manifest."}
    digest = templates_digest()
    plans = ctx.package_plans(selection)
    run = PackageRun.of(ctx.project, (plan for plan, _ in plans))
    for plan, all_mode in plans:
        yield _package_task(ctx.project, plan, all_mode, digest, run, ctx.run_id)


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


def _pull_task(
    ctx: TaskContext, entry: PullEntry, name: str, lookahead: Lookahead
) -> dict[str, Any]:
    from .sources import is_remote, local_path, public_url, source_kind

    project = ctx.project
    base = project.root
    uptodate: list[Any] = [
        _ConfigChanged({"entry": entry.options(), "tool": __version__}),
        PulledBefore(ctx.lock_file, entry.source),
    ]
    task: dict[str, Any] = {
        "name": name,
        "doc": f"Pull {public_url(entry.source)}",
        "actions": [
            (
                _run_pull,
                [
                    project,
                    entry,
                    ctx.force,
                    ctx.lock_file,
                    ctx.markers,
                    ctx.timeout,
                    ctx.run_id,
                    lookahead,
                    name,
                ],
            )
        ],
        "uptodate": uptodate,
        # After the last task (in each process of `-P process`): pulls record their entries
        # in the pending log, and the lock is written once per run, not once per pull.
        "teardown": [(_write_lock, [ctx.lock_file])],
        "verbosity": 1,
    }
    kind = source_kind(entry.source, base)
    if kind == "local":
        task["file_dep"] = [project.rel(local_path(entry.source, base))]
    elif is_remote(entry.source):
        fs_file = base / entry.fs_args if entry.fs_args else None  # an absolute path stays
        uptodate.append(RemoteUnchanged(entry.source, fs_file, ctx.timeout, save=False))
    elif not is_pinned(entry.source):
        uptodate.append(False)  # an unpinned index requirement may resolve to a new release
    return task


def pull_tasks(ctx: TaskContext) -> Iterator[dict[str, Any]]:
    """One doit sub-task per selected pull entry."""
    yield {"name": None, "doc": "Pull micro-packages listed in the pull manifest."}
    named: dict[str, PullEntry] = {}
    seen: dict[str, int] = {}
    for entry in ctx.manifest.pull:
        name = pull_task_name(entry)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}_{seen[name]}"
        named[name] = entry
    lookahead = Lookahead(list(named), lambda name: _sdist_batch(ctx, named[str(name)]))
    for name, entry in named.items():
        yield _pull_task(ctx, entry, name, lookahead)


def _sdist_batch(ctx: TaskContext, entry: PullEntry) -> Batch | None:
    """What the worker can rewrite ahead of ``entry``'s pull: a local sdist's files."""
    from .pull import SdistBatch
    from .sources import local_path, source_kind

    if source_kind(entry.source, ctx.project.root) != "local":
        return None
    return SdistBatch.of(ctx.project, entry, local_path(entry.source, ctx.project.root))


def build_reqs_task(project: Project, run_id: str) -> dict[str, Any]:
    """Compile ``requirements.in`` into ``requirements.txt`` when it changed."""
    fresh = RequirementsFresh(project)
    task: dict[str, Any] = {
        "doc": "Compile requirements.in into requirements.txt (pip-tools) when it changed.",
        "actions": [(_run_build_reqs, [project, run_id])],
        "uptodate": [fresh],
        "meta": {UPTODATE_NOTE: fresh.note},
        "verbosity": 1,
    }
    if project.requirements_in.is_file():
        task["file_dep"] = [project.rel(project.requirements_in)]
        from .requirements import nothing_to_compile

        # A missing target would run the task every time, with nothing to compile.
        if nothing_to_compile(project.requirements_in, project.requirements_txt) is None:
            task["targets"] = [project.rel(project.requirements_txt)]
    return task


def pull_all_task(project: Project, run_id: str) -> dict[str, Any]:
    """Pull every manifest entry, then compile requirements.in if it changed.

    The compile is this task's own action, not a dependency on ``build_reqs``: doit decides
    whether a task is up to date once its ``task_dep`` ran, so the check sees what the pulls
    wrote to requirements.in.
    """
    fresh = RequirementsFresh(project)
    return {
        "doc": "Pull every micro-package of the pull manifest, then run build_reqs.",
        "actions": [(_run_build_reqs, [project, run_id])],
        "task_dep": ["pull"],
        "uptodate": [fresh],
        "meta": {UPTODATE_NOTE: fresh.note},
        "verbosity": 1,
    }


# --- the loader ---------------------------------------------------------------------------

_PACKAGE_PARAMS = doit_params("package")


class MicropkgLoader(TaskLoader2):  # type: ignore[misc]
    """Our tasks for doit: handed to ``DoitMain`` by the CLI, star-imported by a dodo.py.

    ``start`` is a folder inside the project (the CWD for a dodo.py). ``selection`` limits
    the package task to these entries (None: every manifest entry). ``reporter`` is the doit
    reporter (class or instance) we configure unless ``[tool.doit]`` names one. ``context``:
    the project as the caller already read it.
    """

    def __init__(
        self,
        start: Path,
        *,
        selection: tuple[PackageEntry, ...] | None = None,
        force: bool = False,
        markers: bool = False,
        reporter: Any = None,
        lock: bool = False,
        context: TaskContext | None = None,
    ) -> None:
        super().__init__()
        collect_less_often()
        if context is not None:
            self.__dict__["context"] = context  # already read by the caller
        self.start = start
        self.selection = selection
        self.force = force
        self.markers = markers
        self.reporter = reporter
        self.lock = lock
        """Take the project lock when the tasks load (a dodo.py; the CLI holds it itself)."""
        self._locked = False
        self._held = contextlib.ExitStack()
        self.tasks: list[Any] = []
        """The doit ``Task`` objects of the last :meth:`load_tasks` (for :meth:`outcomes`)."""

    # -- TaskLoader2 -------------------------------------------------------------------

    def load_doit_config(self) -> dict[str, Any]:
        """Our configuration minus what ``[tool.doit]`` sets (doit passes it as GLOBAL)."""
        user = (self.config or {}).get("GLOBAL", {})
        ensure_state_dir(self.context.project.root)
        return doit_config(user, self._reporter())

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Any]:
        """Build the tasks doit asked for (``task_package`` parses ``--module`` & co.)."""
        namespace = {
            "task_package": self.task_package,
            "task_pull": self.task_pull,
            "task_build_reqs": self.task_build_reqs,
            "task_pull_all": self.task_pull_all,
        }
        self.tasks = load_tasks(
            namespace,
            self.cmd_names,
            allow_delayed=cmd.execute_tasks,
            args=pos_args,
            config=self.config,
            task_opts=self.task_opts,
        )
        return self.tasks

    # -- what a dodo.py star-imports ---------------------------------------------------

    def dodo_config(self) -> dict[str, Any]:
        """``DOIT_CONFIG`` for a dodo.py: doit reads ``[tool.doit]`` itself, so its keys are
        read here too (a folder outside any Kedro project gets only the default task)."""
        try:
            root = find_project(self.start)
            user = read_pyproject(root / "pyproject.toml").get("tool", {}).get("doit", {})
            ensure_state_dir(root)
        except MicropkgError:
            # Not a project, a broken pyproject.toml, a read-only folder: the same error comes
            # back as one line when the tasks load, not as a traceback from this import.
            return {"default_tasks": ["package"]}
        return doit_config(user if isinstance(user, dict) else {}, self._reporter())

    @task_params(_PACKAGE_PARAMS)  # type: ignore[untyped-decorator]
    def task_package(
        self, module: str = "", alias: str = "", env: str = "", destination: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Package micro-packages listed in the package manifest (or --module)."""
        ctx = self._locked_context()
        selection = self.selection
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
            selection = (entry,)
        return _guard(lambda: package_tasks(ctx, selection))

    def task_pull(self) -> Iterator[dict[str, Any]]:
        """Pull micro-packages listed in the pull manifest."""
        ctx = self._locked_context()
        return _guard(lambda: pull_tasks(ctx))

    def task_build_reqs(self) -> dict[str, Any]:
        """Compile requirements.in into requirements.txt when it changed."""
        ctx = self._locked_context()
        return build_reqs_task(ctx.project, ctx.run_id)

    def task_pull_all(self) -> dict[str, Any]:
        """Pull every micro-package of the pull manifest, then run build_reqs."""
        ctx = self._locked_context()
        return pull_all_task(ctx.project, ctx.run_id)

    # -- after a run ---------------------------------------------------------------------

    def outcomes(self, basename: str) -> tuple[TaskOutcome, ...]:
        """What happened to each task of ``basename`` (with actions) in the last run."""
        run = self.context.run_id
        found = []
        for task in self.tasks:
            if not task.actions or task.name.split(":", 1)[0] != basename:
                continue
            values = task.values or {}
            status: TaskStatus
            if values.get("run") == run:
                status = "executed"
            elif values:
                status = "up-to-date"
            else:
                status = "failed"
            found.append(
                TaskOutcome(
                    task=task.name,
                    status=status,
                    message=values.get("message") if status == "executed" else None,
                    warnings=tuple(values.get("warnings", ())) if status == "executed" else (),
                )
            )
        return tuple(found)

    # -- internals -----------------------------------------------------------------------

    @cached_property
    def context(self) -> TaskContext:
        """The project and its manifests, read once per loader."""
        return TaskContext.load(self.start, force=self.force, markers=self.markers)

    def _locked_context(self) -> TaskContext:
        try:
            ctx = self.context
            if self.lock and not self._locked:
                # Held until the process ends; an interrupted pull is recovered first.
                notice = self._held.enter_context(recovered_lock(ctx.project))
                self._locked = True
                if notice:
                    print(notice, file=sys.stderr)
        except MicropkgError as exc:
            raise InvalidTask(str(exc)) from None
        return ctx

    def _reporter(self) -> Any:
        if self.reporter is not None:
            return self.reporter
        from .reporter import DoitStyleReporter

        return DoitStyleReporter


def _guard(creator: Callable[[], Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    try:
        yield from creator()
    except MicropkgError as exc:
        raise InvalidTask(str(exc)) from None
