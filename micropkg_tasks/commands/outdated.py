"""``micropkg outdated [--pre] [--check]``: the newest version of each pulled micro-package."""

from __future__ import annotations

import argparse
import sys

from ._common import locked_project, pulled_lock

NAME = "outdated"
HELP = "show the newest version each pulled micro-package's source offers"
DESCRIPTION = (
    "For every pulled micro-package: the version pulled and the newest its source offers "
    "(sibling <name>-<version>.tar.gz files of a local folder or fsspec location, or the "
    "versions of pip's configured index for a requirement)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pre`` and ``--check``."""
    parser.add_argument("--pre", action="store_true", help="count pre-releases too")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when anything is outdated (or its source cannot be listed)",
    )


def run(args: argparse.Namespace) -> int:
    """One line per lock entry: module, pulled version, newest, source."""
    from ..outdated import outdated

    with locked_project() as project:
        pulled_lock(project)
        rows = outdated(project, pre=args.pre)
    table = [("module", "pulled", "newest", "source")]
    for row in rows:
        newest = row.newest.version if row.newest is not None else "?"
        table.append((row.module, row.version or "?", newest, row.source))
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[3]]))
    for row in rows:
        if row.error:
            print(f"Warning: {row.module}: {row.error}", file=sys.stderr)
    if args.check and any(row.outdated or row.error for row in rows):
        return 1
    return 0
