"""``micropkg pull``: one source (always pulled), or every pull manifest entry through doit."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ManifestError
from ..manifest import PullEntry, pull_entry
from ..messages import describe_plan, markers_message, pull_message
from ..names import shown
from ..project import Project
from ..result import CommandResult
from ._base import Context, Values, locked, one_of, run_task_group

if TYPE_CHECKING:
    from ..loader import TaskContext
    from ..pull import PullPlan

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "pull"
HELP = "pull a micro-package (or every manifest entry) into the project"

DESCRIPTION = (
    "Pull and unpack a micro-package: a local .tar.gz, an fsspec URL (s3://, https://, ...) "
    "or a package index requirement. "
    "Example: micropkg pull dist/data_science-0.1.tar.gz --alias ds -d pipelines"
)


def run(ctx: Context, values: Values) -> CommandResult:
    """Pull ``SOURCE`` (or ``--all``)."""
    from ..loader import TaskContext  # doit: imported by the commands using it

    one_of(values["source"], values["all_flag"], "a package path", "pull")
    timeout = _seconds(values["timeout"])
    markers = values["merge"] == "markers"
    tasks = TaskContext.load(ctx.cwd, force=values["force"], markers=markers, timeout=timeout)
    if values["all_flag"]:
        return _pull_all(ctx, values, tasks)
    return _pull_one(ctx, values, tasks)


def _seconds(text: str | None) -> float | None:
    """``--timeout``: a positive, finite number of seconds (``None`` when not given)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 < value < float("inf")):
        raise ManifestError(f"--timeout must be a positive number of seconds, got '{shown(text)}'.")
    return value


def _pull_all(ctx: Context, values: Values, tasks: TaskContext) -> CommandResult:
    if values["dry_run"]:
        raise ManifestError("--dry-run previews one pull: give a package path.")
    if values["save"]:
        raise ManifestError("--save adds one pull to the manifest: give a package path.")
    if not tasks.manifest.pull:
        return CommandResult(
            lines=("Nothing to pull. Please update the 'pyproject.toml' package manifest section.",)
        )
    extra = ["--always-execute"] if values["force"] else []
    result = run_task_group(ctx, tasks, values, "pull", ["pull"], extra_args=extra)
    if result.code != 0:
        return result
    closing = (
        "Micro-packages pulled and unpacked!"
        if result.executed
        else "All micro-packages are up to date."
    )
    return dataclasses.replace(result, lines=(*result.lines, closing))


def _pull_one(ctx: Context, values: Values, tasks: TaskContext) -> CommandResult:
    # A single pull always runs (identical files are no-ops), so it needs no doit state.
    from ..pull import fetch_and_plan, pull
    from ..sources import source_kind

    project = tasks.project
    fs_args = None
    if values["fs_args"]:
        fs_path = (ctx.cwd / Path(values["fs_args"]).expanduser()).absolute()
        if not fs_path.is_file():
            raise ManifestError(f"--fs-args file '{values['fs_args']}' does not exist.")
        fs_args = project.rel(fs_path)  # recorded in micropkg.lock: root-relative
    source = values["source"]
    if source_kind(source, ctx.cwd) == "local" and "://" not in source:
        # Recorded relative to the project root, like manifest entries.
        source = os.path.relpath((ctx.cwd / Path(source).expanduser()).absolute(), project.root)
    entry = pull_entry(
        source,
        alias=values["alias"] or None,
        destination=values["destination"],
        env=values["env"],
        fs_args=fs_args,
    )
    force, markers = values["force"], tasks.markers
    if values["dry_run"]:
        with locked(ctx, project, create=False):
            plan, _ = fetch_and_plan(
                project,
                entry,
                base=project.root,
                force=force,
                markers=markers,
                timeout=tasks.timeout,
            )
        code = 1 if plan.conflicts or plan.marked else 0
        return CommandResult(code, (describe_plan(project, plan),))
    with locked(ctx, project):
        also = _saver(project, entry) if values["save"] else None
        result = pull(
            project,
            entry,
            base=project.root,
            force=force,
            markers=markers,
            also=also,
            timeout=tasks.timeout,
        )
    warnings = tuple(result.plan.warnings)
    message = pull_message(project, result, values["source"], all_mode=False)
    if result.plan.marked:
        return CommandResult(1, (message,), warnings, (markers_message(result.plan),))
    return CommandResult(0, (message,), warnings)


def _saver(project: Project, entry: PullEntry) -> Callable[[PullPlan], dict[Path, bytes]]:
    """``pull --save``: the pull manifest with ``entry`` added, or replacing the entry of the
    same micro-package, written in the pull's own all-or-nothing step."""
    from ..lockfile import read_project_lock
    from ..manifest_edit import entry_options, set_pull_entry
    from ..sources import public_url

    lock = read_project_lock(project)

    def edit(plan: PullPlan) -> dict[Path, bytes]:
        pyproject = project.root / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        previous = lock.entries.get(plan.module)
        options = entry_options(
            alias=entry.alias, destination=entry.destination, env=entry.env, fs_args=entry.fs_args
        )
        replaces = [previous.source] if previous is not None else []
        # pyproject.toml is committed: no credentials from the URL in it (as in the lock)
        edited = set_pull_entry(text, public_url(entry.source), options, replaces=replaces)
        return {} if edited == text else {pyproject: edited.encode("utf-8")}

    return edit
