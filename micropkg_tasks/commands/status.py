"""``micropkg status``: every pulled micro-package, clean or changed since it was pulled."""

from __future__ import annotations

from ..project import load_project
from ..result import CommandResult
from ._base import Context, Values, locked

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "status"
HELP = "show pulled micro-packages and local modifications"
DESCRIPTION = (
    "List every pulled micro-package with its version, source and state (clean, modified, "
    "conflict), then its conflicted, modified or missing files. --check: exit 1 unless every "
    "one is clean (a pre-commit hook)."
)


def run(ctx: Context, values: Values) -> CommandResult:
    """The status listing; with ``--check``, exit status 1 when anything is not clean."""
    from ..pull import status

    project = load_project(ctx.cwd)
    with locked(ctx, project, create=False):
        rows = status(project)
    lines: list[str] = []
    if not rows:
        lines.append("No micro-package pulled yet (no micropkg.lock).")
        return CommandResult(lines=tuple(lines))
    for row in rows:
        lines.append(f"{row.module}  {row.version or '-'}  {row.source}  [{row.state}]")
        lines += [f"  conflict: {rel}" for rel in row.conflicted]
        lines += [f"  modified: {rel}" for rel in row.modified if rel not in row.conflicted]
        lines += [f"  missing:  {rel}" for rel in row.missing]
    dirty = values.get("check") and any(row.state != "clean" for row in rows)
    return CommandResult(1 if dirty else 0, tuple(lines))
