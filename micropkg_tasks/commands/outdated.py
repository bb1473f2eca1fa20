"""``micropkg outdated [--pre] [--check]``: the newest version of each pulled micro-package."""

from __future__ import annotations

from ..project import load_project
from ..result import CommandResult
from ._base import Context, Values, locked
from ._common import pulled_lock

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "outdated"
HELP = "show the newest version each pulled micro-package's source offers"
DESCRIPTION = (
    "For every pulled micro-package: the version pulled and the newest its source offers "
    "(sibling <name>-<version>.tar.gz files of a local folder or fsspec location, or the "
    "versions of pip's configured index for a requirement). --check: exit 1 when anything is "
    "outdated (or its source cannot be listed)."
)


def run(ctx: Context, values: Values) -> CommandResult:
    """One line per lock entry: module, pulled version, newest, source."""
    from ..outdated import outdated

    project = load_project(ctx.cwd)
    with locked(ctx, project):
        pulled_lock(project)
        rows = outdated(project, pre=values["pre"])
    table = [("module", "pulled", "newest", "source")]
    for row in rows:
        newest = row.newest.version if row.newest is not None else "?"
        table.append((row.module, row.version or "?", newest, row.source))
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    lines: list[str] = []
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        lines.append("  ".join([*cells, line[3]]))
    warnings = tuple(f"{row.module}: {row.error}" for row in rows if row.error)
    stale = values["check"] and any(row.outdated or row.error for row in rows)
    return CommandResult(1 if stale else 0, tuple(lines), warnings)
