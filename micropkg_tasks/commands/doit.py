"""``micropkg doit ...``: any doit command on the project's tasks, without a dodo.py."""

from __future__ import annotations

import sys

from ..result import CommandResult
from ._base import Context, Values, locked, run_doit

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "doit"
HELP = "run any doit command on the project's tasks (list, info, clean, forget...)"

DESCRIPTION = "Example: micropkg doit list --status"


def run(ctx: Context, values: Values) -> CommandResult:
    """Run doit (``list`` by default) with our loader; doit prints its own output."""
    from ..loader import MicropkgLoader, TaskContext  # doit: imported by the commands using it
    from ..reporter import DoitStyleReporter

    tasks = TaskContext.load(ctx.cwd)
    reporter = DoitStyleReporter(sys.stdout, {})
    reporter.verbose = ctx.verbose
    loader = MicropkgLoader(ctx.cwd, reporter=reporter, context=tasks)
    with locked(ctx, tasks.project):
        code = run_doit(tasks.project.root, loader, values["doit_args"] or ["list"])
    return CommandResult(code)
