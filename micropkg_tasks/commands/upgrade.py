"""``micropkg upgrade [MODULE ...] [--all] [--pre] [--dry-run] [--force] [--merge=markers]``."""

from __future__ import annotations

import argparse
import sys

from ..errors import ManifestError, MicropkgError
from ._common import locked_project, modules_of, pulled_lock

NAME = "upgrade"
HELP = "pull the newest version of pulled micro-packages (local edits are merged)"
DESCRIPTION = (
    "Pull the newest version 'micropkg outdated' finds, 3-way merging local edits as a pull "
    "does; a pull manifest entry's key is rewritten to the new source. MODULE is the module "
    "path 'micropkg status' prints (or its last component)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``MODULE ...``, ``--all``, ``--pre`` and the pull's ``--dry-run/--force/--merge``."""
    parser.add_argument("modules", nargs="*", metavar="MODULE")
    parser.add_argument(
        "-a", "--all", dest="all_flag", action="store_true", help="every pulled micro-package"
    )
    parser.add_argument("--pre", action="store_true", help="consider pre-releases too")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what each upgrade would do; write nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite files that were changed locally"
    )
    parser.add_argument(
        "--merge",
        choices=("markers",),
        default=None,
        help="markers: write overlapping changes with conflict markers instead of refusing",
    )


def run(args: argparse.Namespace) -> int:
    """Upgrade each selected micro-package in turn; the first refusal stops (exit 1)."""
    from ..messages import describe_plan, markers_message, pull_message
    from ..upgrade import find_upgrades, upgrade_entry

    if not args.modules and not args.all_flag:
        raise ManifestError(
            "Please specify a pulled micro-package (MODULE, as 'micropkg status' prints it) or "
            "add '--all' to upgrade every one."
        )
    code = 0
    with locked_project() as project:
        lock = pulled_lock(project)
        rows = find_upgrades(
            project, modules_of(lock, args.modules, all_flag=args.all_flag), pre=args.pre
        )
        for row in rows:
            if row.error is not None:
                print(f"Warning: {row.module}: {row.error}", file=sys.stderr)
                code = 1
                continue
            if not row.outdated or row.newest is None:
                print(f"'{row.module}' is up to date ({row.version}).")
                continue
            done = upgrade_entry(
                project,
                row,
                force=args.force,
                markers=args.merge == "markers",
                dry_run=args.dry_run,
            )
            if done.plan is not None:
                print(describe_plan(project, done.plan))
                if done.plan.conflicts or done.plan.marked:
                    code = 1
                continue
            if done.result is None:  # pragma: no cover - an outdated row is always pulled
                raise MicropkgError(f"'{row.module}' was not upgraded.")
            for warning in done.result.plan.warnings:
                print(f"Warning: {warning}", file=sys.stderr)
            # The requirements paragraph of a pull's message (its last line names the source).
            for line in pull_message(project, done.result, "", all_mode=True).split("\n")[:-1]:
                print(line)
            manifest = " (pull manifest updated)" if done.manifest_updated else ""
            print(
                f"Upgraded '{row.module}' from {row.version} to {row.newest.version}: "
                f"{row.newest.source}{manifest}"
            )
            if done.result.plan.marked:
                print(f"Error: {markers_message(done.result.plan)}", file=sys.stderr)
                code = 1
    return code
