"""The ``micropkg`` command line: argparse → validated entries → doit (embedded)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import ManifestError, MicropkgError
from .names import shown

if TYPE_CHECKING:
    from types import ModuleType

    from .manifest import PullEntry
    from .project import Project
    from .pull import PullPlan
    from .reporter import MicropkgReporter
    from .tasks import TaskContext

__all__ = ["main"]

DODO_LINE = "from micropkg_tasks.tasks import *  # noqa: F403\n"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show task names and full tracebacks"
    )


def _add_parallel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k",
        "--keep-going",
        action="store_true",
        help="with --all: go on after a failed entry, then list the failures",
    )
    parser.add_argument(
        "-n", "--process", type=int, default=0, metavar="N", help="run N tasks in parallel"
    )
    parser.add_argument(
        "-P",
        "--parallel-type",
        choices=("thread", "process"),
        default="thread",
        help="parallel runner (default: thread)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="micropkg",
        description="Package and pull Kedro micro-packages (incremental, driven by doit).",
    )
    parser.add_argument("--version", action="version", version=f"micropkg-tasks {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pkg = sub.add_parser(
        "package",
        help="package a micro-package (or every manifest entry) as an sdist",
        description="Package up a modular pipeline or micro-package as a Python source "
        "distribution. Example: micropkg package pipelines.data_science --alias ds",
    )
    pkg.add_argument("module_path", nargs="?", metavar="MODULE_PATH")
    pkg.add_argument("--alias", default="", help="alternative name to package under")
    pkg.add_argument(
        "-d", "--destination", default=None, help="folder or fsspec URL (default: dist/)"
    )
    pkg.add_argument("-e", "--env", default=None, help="config environment (default: base)")
    pkg.add_argument(
        "-a", "--all", dest="all_flag", action="store_true", help="package every manifest entry"
    )
    _add_parallel(pkg)
    _add_common(pkg)

    pull = sub.add_parser(
        "pull",
        help="pull a micro-package (or every manifest entry) into the project",
        description="Pull and unpack a micro-package: a local .tar.gz, an fsspec URL "
        "(s3://, https://, ...) or a package index requirement. "
        "Example: micropkg pull dist/data_science-0.1.tar.gz --alias ds -d pipelines",
    )
    pull.add_argument("source", nargs="?", metavar="SOURCE")
    pull.add_argument("--alias", default="", help="rename the micro-package")
    pull.add_argument(
        "-d", "--destination", default=None, help="module location to unpack under (pipelines)"
    )
    pull.add_argument("-e", "--env", default=None, help="config environment (default: base)")
    pull.add_argument("--fs-args", default=None, metavar="FILE", help="fsspec options (YAML)")
    pull.add_argument(
        "--force", action="store_true", help="overwrite files that were changed locally"
    )
    pull.add_argument(
        "--timeout",
        default=None,
        metavar="SECONDS",
        help="give up on a remote source silent this long (connecting or between reads; "
        "default: 60)",
    )
    pull.add_argument(
        "--save",
        action="store_true",
        help="also add the entry (with its options) to the pull manifest in pyproject.toml",
    )
    pull.add_argument(
        "--merge",
        choices=("markers",),
        default=None,
        help="markers: write overlapping local and new changes with git-style conflict "
        "markers instead of refusing (exit status 1; see 'micropkg status')",
    )
    pull.add_argument(
        "--dry-run",
        action="store_true",
        help="show what the pull would do to each file (create, update, merge, keep, remove, "
        "conflict); write nothing",
    )
    pull.add_argument(
        "-a", "--all", dest="all_flag", action="store_true", help="pull every manifest entry"
    )
    _add_parallel(pull)
    _add_common(pull)

    reqs = sub.add_parser(
        "build-reqs",
        help="compile requirements.in into requirements.txt (pip-tools)",
        description="Compile requirements.in into requirements.txt with pip-tools when "
        "requirements.in changed. Extra pip-compile options go after '--'.",
    )
    reqs.add_argument(
        "--check", action="store_true", help="exit 1 if requirements.txt is stale (no resolving)"
    )
    reqs.add_argument("--backend", choices=("pip-tools", "uv"), default="pip-tools")
    reqs.add_argument("extra", nargs="*", metavar="PIP_COMPILE_ARG")
    _add_common(reqs)

    stat = sub.add_parser("status", help="show pulled micro-packages and local modifications")
    stat.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless every pulled micro-package is clean (no local change, no conflict)",
    )
    _add_common(stat)

    init = sub.add_parser("init", help="write a one-line dodo.py into the project")
    _add_common(init)

    for command in _lifecycle_commands():
        parser_ = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(parser_)
        _add_common(parser_)

    doit = sub.add_parser(
        "doit",
        help="run any doit command on the project's tasks (list, info, clean, forget...)",
        description="Example: micropkg doit list --status",
    )
    doit.add_argument("doit_args", nargs=argparse.REMAINDER)
    _add_common(doit)

    return parser


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _lifecycle_commands() -> list[ModuleType]:
    """The command modules of ``micropkg_tasks.commands`` (one module per command)."""
    from .commands import diff, outdated, remove, upgrade

    return [diff, outdated, upgrade, remove]


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    # doit reads [tool.doit] only from a file literally named "pyproject.toml" in the CWD.
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_doit(
    ctx: TaskContext, doit_args: Sequence[str], *, verbose: bool = False
) -> tuple[int, MicropkgReporter]:
    """Run doit on the tasks of ``ctx`` from the project root; return (exit code, reporter)."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from .reporter import MicropkgReporter
    from .state import project_lock
    from .tasks import namespace

    reporter = MicropkgReporter(sys.stdout, {})
    reporter.verbose = verbose
    ns = namespace(ctx)
    if "reporter" in ns["DOIT_CONFIG"]:
        ns["DOIT_CONFIG"]["reporter"] = reporter
    with project_lock(ctx.project), _chdir(ctx.project.root):
        main = DoitMain(ModuleTaskLoader(ns), config_filenames=("pyproject.toml",))
        main.BIN_NAME = "micropkg doit"
        code = int(main.run(list(doit_args)) or 0)
    return code, reporter


def _run_args(args: argparse.Namespace) -> list[str]:
    """``doit run`` options from ``-n/-P`` and ``--keep-going``."""
    run = ["run"]
    if args.process and args.process > 1:
        run += ["-n", str(args.process), "-P", args.parallel_type]
    if args.keep_going:
        run.append("--continue")
    return run


def _failure_summary(reporter: MicropkgReporter, total: int) -> int:
    """After a ``--keep-going`` run: one line naming the failed entries; exit status 1."""
    names = ", ".join(name.split(":", 1)[-1] for name in reporter.failed)
    print(
        f"Error: {len(reporter.failed)} of {total} micro-packages failed: {names}",
        file=sys.stderr,
    )
    return 1


def _local_or_url(value: str | None) -> str | None:
    """Make a local ``-d`` absolute against the CWD (Kedro's click Path(resolve_path=True))."""
    from .sources import is_remote

    if not value or is_remote(value):
        return value
    return os.path.abspath(os.path.expanduser(value))


def _one_of(name: str | None, all_flag: bool, what: str, verb: str) -> None:
    """Exactly one of a positional name and ``--all`` (Kedro's message when neither)."""
    if name and all_flag:
        raise ManifestError(
            f"Give either {what} or '--all', not both ('--all' {verb}s every entry of the "
            "manifest with its own options)."
        )
    if not name and not all_flag:
        raise ManifestError(
            f"Please specify {what} or add '--all' to {verb} all micro-packages in the "
            "'pyproject.toml' package manifest section."
        )


def _cmd_package(args: argparse.Namespace) -> int:
    from .limits import project_limits
    from .manifest import package_entry
    from .tasks import TaskContext

    _one_of(args.module_path, args.all_flag, "a micro-package name", "package")
    ctx = TaskContext.load(Path.cwd())
    if args.module_path:
        entry = package_entry(
            args.module_path,
            alias=args.alias or None,
            destination=_local_or_url(args.destination),
            env=args.env,
            source_prefix=ctx.project.rel(ctx.project.package_dir),
        )
        ctx.package_entries = (entry,)
        targets = [f"package:{entry.module_path}"]
    else:
        if not ctx.manifest.package:
            print(
                "Nothing to package. Please update the 'pyproject.toml' package manifest section."
            )
            return 0
        targets = ["package"]
    # Validate every selected entry before doit starts: a bad entry writes nothing at all.
    project_limits(ctx.project.pyproject)  # a bad MICROPKG_MAX_SIZE / max-size
    for plan, _ in ctx.package_plans():
        plan.requirements  # noqa: B018  (parsed once: the build reuses it)

    code, reporter = run_doit(ctx, [*_run_args(args), *targets], verbose=args.verbose)
    if code != 0:
        if args.keep_going and reporter.failed:
            return _failure_summary(reporter, len(ctx.package_plans()))
        return 1
    if args.all_flag:
        print(
            "Micro-packages packaged!"
            if reporter.executed
            else "All micro-packages are up to date."
        )
    elif not reporter.executed:
        plan = ctx.package_plans()[0][0]
        print(
            f"'{ctx.project.package_name}.{plan.entry.module_path}' is up to date. "
            f"Location: {plan.location}"
        )
    return 0


def _seconds(text: str | None) -> float | None:
    """``--timeout``: a positive, finite number of seconds (``None`` when not given)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 < value < float("inf")):
        raise ManifestError(f"--timeout must be a positive number of seconds, got '{shown(text)}'.")
    return value


def _cmd_pull(args: argparse.Namespace) -> int:
    from .manifest import pull_entry
    from .messages import describe_plan, markers_message, pull_message
    from .pull import fetch_and_plan, pull
    from .sources import source_kind
    from .state import project_lock
    from .tasks import TaskContext

    _one_of(args.source, args.all_flag, "a package path", "pull")
    timeout = _seconds(args.timeout)
    ctx = TaskContext.load(Path.cwd())
    ctx.timeout = timeout
    if args.all_flag:
        if args.dry_run:
            raise ManifestError("--dry-run previews one pull: give a package path.")
        if args.save:
            raise ManifestError("--save adds one pull to the manifest: give a package path.")
        if not ctx.manifest.pull:
            print("Nothing to pull. Please update the 'pyproject.toml' package manifest section.")
            return 0
        ctx.force = args.force
        ctx.markers = args.merge == "markers"
        run_args = _run_args(args)
        if args.force:
            run_args.append("--always-execute")
        code, reporter = run_doit(ctx, [*run_args, "pull"], verbose=args.verbose)
        if code != 0:
            if args.keep_going and reporter.failed:
                return _failure_summary(reporter, len(ctx.manifest.pull))
            return 1
        print(
            "Micro-packages pulled and unpacked!"
            if reporter.executed
            else "All micro-packages are up to date."
        )
        return 0

    # A single pull always runs (identical files are no-ops), so it needs no doit state.
    fs_args = None
    if args.fs_args:
        fs_path = Path(args.fs_args).expanduser().absolute()
        if not fs_path.is_file():
            raise ManifestError(f"--fs-args file '{args.fs_args}' does not exist.")
        fs_args = ctx.project.rel(fs_path)  # recorded in micropkg.lock: root-relative
    source = args.source
    if source_kind(source, Path.cwd()) == "local" and "://" not in source:
        # Recorded relative to the project root, like manifest entries.
        source = os.path.relpath(Path(source).expanduser().absolute(), ctx.project.root)
    entry = pull_entry(
        source,
        alias=args.alias or None,
        destination=args.destination,
        env=args.env,
        fs_args=fs_args,
    )
    markers = args.merge == "markers"
    if args.dry_run:
        with project_lock(ctx.project, create=False):
            plan, _ = fetch_and_plan(
                ctx.project,
                entry,
                base=ctx.project.root,
                force=args.force,
                markers=markers,
                timeout=timeout,
            )
        print(describe_plan(ctx.project, plan))
        return 1 if plan.conflicts or plan.marked else 0
    with project_lock(ctx.project):
        result = pull(
            ctx.project,
            entry,
            base=ctx.project.root,
            force=args.force,
            markers=markers,
            also=_saver(ctx.project, entry) if args.save else None,
            timeout=timeout,
        )
    for warning in result.plan.warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    print(pull_message(ctx.project, result, args.source, all_mode=False))
    if result.plan.marked:
        print(f"Error: {markers_message(result.plan)}", file=sys.stderr)
        return 1
    return 0


def _saver(project: Project, entry: PullEntry) -> Callable[[PullPlan], dict[Path, bytes]]:
    """``pull --save``: the pull manifest with ``entry`` added, or replacing the entry of the
    same micro-package, written in the pull's own all-or-nothing step."""
    from .lockfile import read_project_lock
    from .manifest_edit import entry_options, set_pull_entry
    from .sources import public_url

    lock = read_project_lock(project)

    def edit(plan: PullPlan) -> dict[Path, bytes]:
        pyproject = project.root / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        previous = lock.entries.get(plan.module)
        options = entry_options(
            alias=entry.alias, destination=entry.destination, env=entry.env, fs_args=entry.fs_args
        )
        replaces = [previous.source] if previous is not None else []
        # pyproject.toml is committed: no credentials from the URL in it (as in the lock)
        edited = set_pull_entry(text, public_url(entry.source), options, replaces=replaces)
        return {} if edited == text else {pyproject: edited.encode("utf-8")}

    return edit


def _cmd_build_reqs(args: argparse.Namespace) -> int:
    from .project import load_project
    from .state import project_lock

    project = load_project(Path.cwd())
    req_in, req_txt = project.requirements_in, project.requirements_txt
    if not req_in.is_file():
        raise MicropkgError(
            f"No {project.rel(req_in)} to compile: pull a micro-package first, or copy "
            f"{project.rel(req_txt)} to {project.rel(req_in)}."
        )
    # One resolver per project at a time; --check only reads.
    with project_lock(project, create=not args.check):
        return _build_reqs(project, args)


def _build_reqs(project: Project, args: argparse.Namespace) -> int:
    from .requirements import compile_requirements, requirements_stale

    req_in, req_txt = project.requirements_in, project.requirements_txt
    stale = requirements_stale(req_in, req_txt)
    if args.check:
        if stale:
            raise MicropkgError(
                f"{project.rel(req_txt)} is out of date with {project.rel(req_in)}: "
                "run 'micropkg build-reqs'."
            )
        return 0
    if not stale and not args.extra:
        print(f"{project.rel(req_txt)} is up to date.")
        return 0
    compile_requirements(project.root, req_in, req_txt, extra_args=args.extra, backend=args.backend)
    print(f"Compiled {project.rel(req_in)} into {project.rel(req_txt)}.")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .project import load_project
    from .pull import status
    from .state import project_lock

    project = load_project(Path.cwd())
    with project_lock(project, create=False):
        rows = status(project)
    if not rows:
        print("No micro-package pulled yet (no micropkg.lock).")
        return 0
    for row in rows:
        print(f"{row.module}  {row.version or '-'}  {row.source}  [{row.state}]")
        for rel in row.conflicted:
            print(f"  conflict: {rel}")
        for rel in row.modified:
            if rel not in row.conflicted:
                print(f"  modified: {rel}")
        for rel in row.missing:
            print(f"  missing:  {rel}")
    if args.check and any(row.state != "clean" for row in rows):
        return 1
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from .project import load_project
    from .state import project_lock

    project = load_project(Path.cwd())
    with project_lock(project):
        return _init(project)


def _init(project: Project) -> int:
    dodo = project.root / "dodo.py"
    if dodo.exists():
        if "micropkg_tasks.tasks import" not in dodo.read_text(encoding="utf-8"):
            raise MicropkgError(
                f"'{dodo}' exists and does not load micropkg's tasks; add this line to it: "
                f"{DODO_LINE.strip()}"
            )
    else:
        dodo.write_text(DODO_LINE, encoding="utf-8")
        print(f"Wrote {dodo}: run 'doit list' to see the micro-package tasks.")
    gitignore = project.root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if ".micropkg/" not in lines:
        with gitignore.open("a", encoding="utf-8") as fh:
            if lines and lines[-1] != "":
                fh.write("\n")
            fh.write("# micropkg-tasks state (doit database, caches)\n.micropkg/\n")
    return 0


def _cmd_doit(args: argparse.Namespace) -> int:
    from .tasks import TaskContext

    ctx = TaskContext.load(Path.cwd())
    code, _ = run_doit(ctx, args.doit_args or ["list"], verbose=args.verbose)
    return code


_HANDLERS.update(
    {
        "package": _cmd_package,
        "pull": _cmd_pull,
        "build-reqs": _cmd_build_reqs,
        "status": _cmd_status,
        "init": _cmd_init,
        "doit": _cmd_doit,
    }
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``micropkg`` CLI; return the exit code (0 ok, 1 error)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    handlers = {**_HANDLERS, **{c.NAME: c.run for c in _lifecycle_commands()}}
    try:
        return int(handlers[args.command](args))
    except MicropkgError as exc:
        if getattr(args, "verbose", False):
            from .sources import public_url  # tracebacks quote URLs: no credentials in them

            print(public_url(traceback.format_exc()), end="", file=sys.stderr)
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
