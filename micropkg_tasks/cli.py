"""The ``micropkg`` command line: argparse → validated entries → doit (embedded)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ManifestError, MicropkgError

__all__ = ["main"]

DODO_LINE = "from micropkg_tasks.tasks import *  # noqa: F403\n"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show task names and full tracebacks"
    )


def _add_parallel(parser: argparse.ArgumentParser) -> None:
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

    init = sub.add_parser("init", help="write a one-line dodo.py into the project")
    _add_common(init)

    doit = sub.add_parser(
        "doit",
        help="run any doit command on the project's tasks (list, info, clean, forget...)",
        description="Example: micropkg doit list --status",
    )
    doit.add_argument("doit_args", nargs=argparse.REMAINDER)
    _add_common(doit)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Sub-commands defined in other modules register themselves here (pull, build-reqs, status).
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []
_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {}


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    # doit reads [tool.doit] only from a file literally named "pyproject.toml" in the CWD.
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_doit(ctx: Any, doit_args: Sequence[str], *, verbose: bool = False) -> tuple[int, Any]:
    """Run doit on the tasks of ``ctx`` from the project root; return (exit code, reporter)."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from .reporter import MicropkgReporter
    from .tasks import acquire_lock, namespace, release_lock

    reporter = MicropkgReporter(sys.stdout, {})
    reporter.verbose = verbose
    ns = namespace(ctx)
    if "reporter" in ns["DOIT_CONFIG"]:
        ns["DOIT_CONFIG"]["reporter"] = reporter
    acquire_lock(ctx.project)
    try:
        with _chdir(ctx.project.root):
            main = DoitMain(ModuleTaskLoader(ns), config_filenames=("pyproject.toml",))
            main.BIN_NAME = "micropkg doit"
            code = int(main.run(list(doit_args)) or 0)
    finally:
        release_lock(ctx.project)
    return code, reporter


def _parallel_args(args: argparse.Namespace) -> list[str]:
    if args.process and args.process > 1:
        return ["-n", str(args.process), "-P", args.parallel_type]
    return []


def _local_or_url(value: str | None) -> str | None:
    """Make a local ``-d`` absolute against the CWD (Kedro's click Path(resolve_path=True))."""
    from .sources import is_remote

    if not value or is_remote(value):
        return value
    return os.path.abspath(os.path.expanduser(value))


def _cmd_package(args: argparse.Namespace) -> int:
    from .manifest import package_entry
    from .requirements import parse_package_requirements
    from .tasks import TaskContext

    if args.module_path and args.all_flag:
        raise ManifestError(
            "Give either a micro-package name or '--all', not both "
            "('--all' packages every entry of the manifest with its own options)."
        )
    if not args.module_path and not args.all_flag:
        raise ManifestError(
            "Please specify a micro-package name or add '--all' to package all micro-packages "
            "in the 'pyproject.toml' package manifest section."
        )
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
    for plan, _ in ctx.package_plans():
        parse_package_requirements(
            plan.collected.code_dir / "requirements.txt", relative_to=ctx.project.root
        )

    code, reporter = run_doit(ctx, ["run", *_parallel_args(args), *targets], verbose=args.verbose)
    if code != 0:
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


def _cmd_init(args: argparse.Namespace) -> int:
    from .project import load_project

    project = load_project(Path.cwd())
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


_HANDLERS.update({"package": _cmd_package, "init": _cmd_init, "doit": _cmd_doit})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``micropkg`` CLI; return the exit code (0 ok, 1 error)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _HANDLERS[args.command](args)
    except MicropkgError as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
