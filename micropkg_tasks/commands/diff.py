"""``micropkg diff [MODULE ...] [--exit-code]``: local changes of pulled files."""

from __future__ import annotations

import argparse
import sys

from ._common import locked_project, modules_of, pulled_lock

NAME = "diff"
HELP = "show local changes of pulled files against their pulled version (unified diff)"
DESCRIPTION = (
    "A unified diff of every pulled file changed or deleted locally since it was pulled, "
    "against the pulled version (from the sdist cache, else the source fetched again). "
    "MODULE is the module path 'micropkg status' prints (or its last component)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``MODULE ...`` and ``--exit-code``."""
    parser.add_argument("modules", nargs="*", metavar="MODULE")
    parser.add_argument(
        "--exit-code", action="store_true", help="exit 1 when there is a difference"
    )


def run(args: argparse.Namespace) -> int:
    """Print the diff; 0, or 1 with ``--exit-code`` when anything differs."""
    from ..diff import diff

    with locked_project() as project:
        lock = pulled_lock(project)
        result = diff(project, modules_of(lock, args.modules))
    for item in result.files:
        if item.unknown is not None:
            print(f"Warning: cannot diff {item.path}: {item.unknown}", file=sys.stderr)
        else:
            sys.stdout.write(item.patch)
    return 1 if args.exit_code and result.different else 0
