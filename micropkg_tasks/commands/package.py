"""``micropkg package``: one micro-package, or every package manifest entry, through doit."""

from __future__ import annotations

import sys

from ..limits import project_limits
from ..manifest import package_entry
from ..result import CommandResult
from ..sources import is_remote
from ._base import Context, Values, doit_run_args, failure_summary, locked, one_of, run_doit

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
    from ..loader import MicropkgLoader, TaskContext  # doit: imported by the commands using it
    from ..reporter import CliReporter

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

    reporter = CliReporter(sys.stdout, {})
    reporter.verbose = ctx.verbose
    loader = MicropkgLoader(ctx.cwd, selection=selection, reporter=reporter, context=tasks)
    targets = [f"package:{selection[0].module_path}"] if selection else ["package"]
    with locked(ctx, project):
        code = run_doit(project.root, loader, [*doit_run_args(values), *targets])
    outcomes = loader.outcomes("package")
    lines: list[str] = []
    lines += [o.message for o in outcomes if o.message]
    warnings = tuple(w for o in outcomes for w in o.warnings)
    if code != 0:
        summary = failure_summary(outcomes) if values["keep_going"] else None
        errors = (summary,) if summary else ()
        return CommandResult(1, tuple(lines), warnings, errors, outcomes)
    if all_flag:
        executed = any(o.status == "executed" for o in outcomes)
        lines.append(
            "Micro-packages packaged!" if executed else "All micro-packages are up to date."
        )
    elif not any(o.status == "executed" for o in outcomes):
        plan = plans[0][0]
        lines.append(
            f"'{project.package_name}.{plan.entry.module_path}' is up to date. "
            f"Location: {plan.location}"
        )
    return CommandResult(0, tuple(lines), warnings, (), outcomes)
