"""``micropkg package``: one micro-package, or every package manifest entry, through doit."""

from __future__ import annotations

import dataclasses

from ..limits import project_limits
from ..manifest import package_entry
from ..result import CommandResult
from ..sources import is_remote
from ._base import Context, Values, one_of, run_task_group

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "package"
HELP = "package a micro-package (or every manifest entry) as an sdist"

DESCRIPTION = (
    "Package up a modular pipeline or micro-package as a Python source distribution. "
    "Example: micropkg package pipelines.data_science --alias ds"
)


def _local_or_url(value: str | None, ctx: Context) -> str | None:
    """A local ``-d`` made absolute against the CWD (Kedro's click Path(resolve_path=True))."""
    if not value or is_remote(value):
        return value
    return str((ctx.cwd / value).expanduser().absolute())


def run(ctx: Context, values: Values) -> CommandResult:
    """Package ``MODULE_PATH`` (or ``--all``); up-to-date work is skipped."""
    from ..loader import TaskContext  # doit: imported by the commands using it

    module_path, all_flag = values["module_path"], values["all_flag"]
    one_of(module_path, all_flag, "a micro-package name", "package")
    tasks = TaskContext.load(ctx.cwd)
    project = tasks.project
    selection = None
    if module_path:
        entry = package_entry(
            module_path,
            alias=values["alias"] or None,
            destination=_local_or_url(values["destination"], ctx),
            env=values["env"],
            source_prefix=project.rel(project.package_dir),
        )
        selection = (entry,)
    elif not tasks.manifest.package:
        return CommandResult(
            lines=(
                "Nothing to package. Please update the 'pyproject.toml' package manifest section.",
            )
        )
    # Validate every selected entry before doit starts: a bad entry writes nothing at all.
    project_limits(project.pyproject)  # a bad MICROPKG_MAX_SIZE / max-size
    plans = tasks.package_plans(selection)
    for plan, _ in plans:
        plan.requirements  # noqa: B018  (parsed once: the build reuses it)

    targets = [f"package:{selection[0].module_path}"] if selection else ["package"]
    result = run_task_group(ctx, tasks, values, "package", targets, selection=selection)
    if result.code != 0:
        return result
    if all_flag:
        closing = (
            "Micro-packages packaged!" if result.executed else "All micro-packages are up to date."
        )
    elif not result.executed:
        plan = plans[0][0]
        closing = (
            f"'{project.package_name}.{plan.entry.module_path}' is up to date. "
            f"Location: {plan.location}"
        )
    else:
        return result
    return dataclasses.replace(result, lines=(*result.lines, closing))
