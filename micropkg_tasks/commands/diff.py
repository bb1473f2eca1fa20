"""``micropkg diff [MODULE ...] [--exit-code]``: local changes of pulled files."""

from __future__ import annotations

from ..project import load_project
from ..result import CommandResult
from ._base import Context, Values, locked
from ._common import modules_of, pulled_lock

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "diff"
HELP = "show local changes of pulled files against their pulled version (unified diff)"
DESCRIPTION = (
    "A unified diff of every pulled file changed or deleted locally since it was pulled, "
    "against the pulled version (from the sdist cache, else the source fetched again). "
    "MODULE is the module path 'micropkg status' prints (or its last component)."
)


def run(ctx: Context, values: Values) -> CommandResult:
    """The diff; exit status 1 with ``--exit-code`` when anything differs."""
    from ..diff import diff

    project = load_project(ctx.cwd)
    with locked(ctx, project):
        lock = pulled_lock(project)
        result = diff(project, modules_of(lock, values["modules"]))
    lines: list[str] = []
    warnings = []
    for item in result.files:
        if item.unknown is not None:
            warnings.append(f"cannot diff {item.path}: {item.unknown}")
        else:
            lines += item.patch.splitlines()
    code = 1 if values["exit_code"] and result.different else 0
    return CommandResult(code, tuple(lines), tuple(warnings))
