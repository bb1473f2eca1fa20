"""``micropkg remove MODULE [--force] [--dry-run]``: take a pulled micro-package out."""

from __future__ import annotations

from ..errors import ManifestError
from ..project import load_project
from ..result import CommandResult
from ..selection import select_modules
from ._base import Context, Values, locked
from ._common import pulled_lock

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "remove"
HELP = "remove a pulled micro-package: its files, requirements block, lock and manifest entry"
DESCRIPTION = (
    "Remove every file the pull of MODULE wrote (a file edited locally is a conflict unless "
    "--force), its block in requirements.in, its lock entry and its pull manifest entry, "
    "all-or-nothing. MODULE is the module path 'micropkg status' prints (or its last "
    "component)."
)


def run(ctx: Context, values: Values) -> CommandResult:
    """Remove, or show the plan (``--dry-run``: exit status 1 when there are conflicts)."""
    from ..remove import apply_remove, plan_remove

    if not values["module_name"]:
        raise ManifestError(
            "Please specify the pulled micro-package to remove (MODULE, as 'micropkg status' "
            "prints it)."
        )
    project = load_project(ctx.cwd)
    with locked(ctx, project):
        lock = pulled_lock(project)
        (module,) = select_modules(lock, [values["module_name"]])
        plan = plan_remove(project, module, force=values["force"])
        lines: list[str] = []
        if values["dry_run"]:
            lines.append(f"Removal of {module} (version {plan.version or '?'}):")
            lines += [f"  {action}  {what}" for action, what in plan.actions]
            lines += [f"  conflict  {conflict}" for conflict in plan.conflicts]
            lines.append("Nothing was removed (--dry-run).")
            return CommandResult(1 if plan.conflicts else 0, tuple(lines))
        apply_remove(project, plan)
    files = sum(1 for action, _ in plan.actions if action == "remove")
    lines.append(f"Removed '{module}' ({files} file(s)).")
    return CommandResult(0, tuple(lines))
