"""The ``micropkg`` command line: parse with the option table, run one command, print its
result (Kedro's messages; ``Error: ...`` on one line, the traceback only with ``-v``)."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .commands import COMMANDS, Context, command, startup_warnings
from .errors import MicropkgError
from .options import add_arguments
from .result import CommandResult

__all__ = ["build_parser", "main", "print_result"]


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every command (options from :mod:`micropkg_tasks.options`)."""
    parser = argparse.ArgumentParser(
        prog="micropkg",
        description="Package and pull Kedro micro-packages (incremental, driven by doit).",
    )
    parser.add_argument("--version", action="version", version=f"micropkg-tasks {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = command(name)
        child = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        if name == "doit":
            child.add_argument("doit_args", nargs=argparse.REMAINDER)
        add_arguments(child, name)
    return parser


def print_result(result: CommandResult) -> int:
    """Print ``result`` (lines on stdout; warnings and errors on stderr); its exit status."""
    for warning in result.warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    for line in result.lines:
        print(line)
    for error in result.errors:
        print(f"Error: {error}", file=sys.stderr)
    return result.code


def _notice(line: str) -> None:
    print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``micropkg`` CLI; return the exit code (0 ok, 1 error)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    values = vars(args)
    try:
        cwd = Path.cwd()
    except OSError as exc:  # the folder was deleted (or made unreadable) under the shell
        print(f"Error: Cannot use the current folder: {exc.strerror or exc}", file=sys.stderr)
        return 1
    ctx = Context(cwd=cwd, verbose=bool(values.get("verbose")), notify=_notice)
    module = command(args.command)
    if not (args.command == "init" and values.get("migrate")):  # that one does what they say
        for warning in startup_warnings(ctx.cwd):
            print(f"Warning: {warning}", file=sys.stderr)
    try:
        return print_result(module.run(ctx, values))
    except MicropkgError as exc:
        if ctx.verbose:
            from .sources import public_url  # tracebacks quote URLs: no credentials in them

            print(public_url(traceback.format_exc()), end="", file=sys.stderr)
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
