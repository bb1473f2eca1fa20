"""``micropkg upgrade [MODULE ...] [--all] [--pre] [--dry-run] [--force] [--merge=markers]``."""

from __future__ import annotations

from ..errors import ManifestError, MicropkgError
from ..project import load_project
from ..result import CommandResult
from ._base import Context, Values, locked
from ._common import modules_of, pulled_lock

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "upgrade"
HELP = "pull the newest version of pulled micro-packages (local edits are merged)"
DESCRIPTION = (
    "Pull the newest version 'micropkg outdated' finds, 3-way merging local edits as a pull "
    "does; a pull manifest entry's key is rewritten to the new source. MODULE is the module "
    "path 'micropkg status' prints (or its last component)."
)


def run(ctx: Context, values: Values) -> CommandResult:
    """Upgrade each selected micro-package in turn; a refused one stops the run (exit 1)."""
    from ..messages import describe_plan, markers_message, pull_message
    from ..upgrade import find_upgrades, upgrade_entry

    if not values["modules"] and not values["all_flag"]:
        raise ManifestError(
            "Please specify a pulled micro-package (MODULE, as 'micropkg status' prints it) or "
            "add '--all' to upgrade every one."
        )
    code = 0
    lines: list[str] = []
    warnings: list[str] = []
    errors: list[str] = []
    project = load_project(ctx.cwd)
    with locked(ctx, project):
        lock = pulled_lock(project)
        selected = modules_of(lock, values["modules"], all_flag=values["all_flag"])
        for row in find_upgrades(project, selected, pre=values["pre"]):
            if row.error is not None:
                warnings.append(f"{row.module}: {row.error}")
                code = 1
                continue
            if not row.outdated or row.newest is None:
                lines.append(f"'{row.module}' is up to date ({row.version}).")
                continue
            try:
                done = upgrade_entry(
                    project,
                    row,
                    force=values["force"],
                    markers=values["merge"] == "markers",
                    dry_run=values["dry_run"],
                )
            except MicropkgError as exc:  # the upgrades before it stay applied
                errors.append(str(exc))
                code = 1
                break
            if done.plan is not None:
                lines += describe_plan(project, done.plan).splitlines()
                if done.plan.conflicts or done.plan.marked:
                    code = 1
                continue
            assert done.result is not None  # an outdated row is pulled
            warnings += done.result.plan.warnings
            # The requirements paragraph of a pull's message (its last line names the source).
            lines += pull_message(project, done.result, "", all_mode=True).split("\n")[:-1]
            manifest = " (pull manifest updated)" if done.manifest_updated else ""
            lines.append(
                f"Upgraded '{row.module}' from {row.version} to {row.newest.version}: "
                f"{row.newest.source}{manifest}"
            )
            if done.result.plan.marked:
                errors.append(markers_message(done.result.plan))
                code = 1
    return CommandResult(code, tuple(lines), tuple(warnings), tuple(errors))
