"""``micropkg remove MODULE [--force] [--dry-run]``: take a pulled micro-package out."""

from __future__ import annotations

import argparse

from ..selection import select_modules
from ._common import locked_project, pulled_lock

NAME = "remove"
HELP = "remove a pulled micro-package: its files, requirements block, lock and manifest entry"
DESCRIPTION = (
    "Remove every file the pull of MODULE wrote (a file edited locally is a conflict unless "
    "--force), its block in requirements.in, its lock entry and its pull manifest entry, "
    "all-or-nothing. MODULE is the module path 'micropkg status' prints (or its last "
    "component)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``MODULE``, ``--force`` and ``--dry-run``."""
    parser.add_argument("module", metavar="MODULE")
    parser.add_argument("--force", action="store_true", help="remove locally edited files too")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be removed; remove nothing"
    )


def run(args: argparse.Namespace) -> int:
    """Remove, or show the plan (exit 1 when there are conflicts)."""
    from ..remove import apply_remove, plan_remove

    with locked_project() as project:
        lock = pulled_lock(project)
        (module,) = select_modules(lock, [args.module])
        plan = plan_remove(project, module, force=args.force)
        if args.dry_run:
            print(f"Removal of {module} (version {plan.version or '?'}):")
            for action, what in plan.actions:
                print(f"  {action}  {what}")
            for conflict in plan.conflicts:
                print(f"  conflict  {conflict}")
            print("Nothing was removed (--dry-run).")
            return 1 if plan.conflicts else 0
        apply_remove(project, plan)
    files = sum(1 for action, _ in plan.actions if action == "remove")
    print(f"Removed '{module}' ({files} file(s)).")
    return 0
