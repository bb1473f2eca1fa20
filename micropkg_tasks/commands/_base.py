"""What every command shares: the frozen context, running doit, the lock with recovery."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ManifestError, MicropkgError
from ..journal import recovered_lock
from ..manifest import kedro1x_manifest_warning
from ..project import Project, find_project, installed_kedro_version, read_pyproject
from ..result import CommandResult, TaskOutcome

if TYPE_CHECKING:
    from ..loader import TaskContext
    from ..manifest import PackageEntry

__all__ = [
    "Context",
    "Values",
    "doit_run_args",
    "failure_summary",
    "locked",
    "one_of",
    "run_doit",
    "startup_warnings",
]

Values = Mapping[str, Any]
"""A command's option values, by the option table's names."""


def _quiet(line: str) -> None:
    """A ``notify`` that drops what it is told."""


@dataclass(frozen=True)
class Context:
    """Where and how a command runs."""

    cwd: Path
    verbose: bool = False
    notify: Callable[[str], None] = _quiet
    """Where a command's notices go as they happen (the CLI prints them on stderr): what was
    recovered from an interrupted run is said even when the command then fails."""


@contextlib.contextmanager
def locked(ctx: Context, project: Project, *, create: bool = True) -> Iterator[None]:
    """Hold the project lock for the ``with`` block; once it is taken, an interrupted pull
    is finished or rolled back first and ``ctx.notify`` is told so (see
    :func:`micropkg_tasks.journal.recovered_lock`)."""
    with recovered_lock(project, create=create) as notice:
        if notice is not None:
            ctx.notify(notice)
        yield


def startup_warnings(cwd: Path) -> tuple[str, ...]:
    """What every command warns about once, before it starts: a ``[tool.kedro.micropkg]``
    manifest in a Kedro 1.x project. Never raises: a project that cannot be read is the
    command's own error to report."""
    try:
        pyproject = read_pyproject(find_project(cwd) / "pyproject.toml")
    except MicropkgError:
        return ()
    warning = kedro1x_manifest_warning(pyproject, installed_kedro_version)
    return (warning,) if warning else ()


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    # doit reads [tool.doit] only from a file literally named "pyproject.toml" in the CWD.
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_doit(root: Path, loader: Any, doit_args: Sequence[str]) -> int:
    """Run doit with ``loader`` from the project root; return doit's exit code."""
    from doit.doit_cmd import DoitMain

    # doit parses pyproject.toml again for [tool.doit] (tens of ms for a manifest of 1,000
    # entries): not when our parse of the same bytes has no such table.
    doit_table = "doit" in read_pyproject(root / "pyproject.toml").get("tool", {})
    with _chdir(root):
        main = DoitMain(loader, config_filenames=("pyproject.toml",) if doit_table else ())
        main.BIN_NAME = "micropkg doit"
        return int(main.run(list(doit_args)) or 0)


def doit_run_args(values: Values) -> list[str]:
    """``doit run`` options from ``-n/-P`` and ``--keep-going``."""
    run = ["run"]
    if values["process"] and values["process"] > 1:
        run += ["-n", str(values["process"]), "-P", values["parallel_type"]]
    if values["keep_going"]:
        run.append("--continue")
    return run


def run_task_group(
    ctx: Context,
    tasks: TaskContext,
    values: Values,
    group: str,
    targets: Sequence[str],
    *,
    selection: tuple[PackageEntry, ...] | None = None,
    extra_args: Sequence[str] = (),
) -> CommandResult:
    """Run doit's ``targets`` with our loader and the CLI reporter, under the project lock.

    The result holds the message and warnings of each task of ``group``; a failed run has
    exit code 1 and, after ``--keep-going``, a line naming the failed entries. A successful
    result has no closing line: the command adds its own.
    """
    from ..loader import MicropkgLoader  # doit: imported by the commands using it
    from ..reporter import CliReporter

    reporter = CliReporter(sys.stdout, {})
    reporter.verbose = ctx.verbose
    loader = MicropkgLoader(ctx.cwd, selection=selection, reporter=reporter, context=tasks)
    with locked(ctx, tasks.project):
        code = run_doit(tasks.project.root, loader, [*doit_run_args(values), *extra_args, *targets])
        if group == "pull":
            # The tasks' teardown wrote the lock; when it failed, this says why (Error:).
            tasks.lock_file.close()
    outcomes = loader.outcomes(group)
    lines = tuple(o.message for o in outcomes if o.message)
    warnings = tuple(w for o in outcomes for w in o.warnings)
    if code != 0:
        summary = failure_summary(outcomes) if values["keep_going"] else None
        return CommandResult(1, lines, warnings, (summary,) if summary else (), outcomes)
    return CommandResult(0, lines, warnings, (), outcomes)


def failure_summary(outcomes: Sequence[TaskOutcome]) -> str | None:
    """After a ``--keep-going`` run: one line naming the failed entries (None: none failed)."""
    failed = [o.subject for o in outcomes if o.status == "failed"]
    if not failed:
        return None
    return f"{len(failed)} of {len(outcomes)} micro-packages failed: {', '.join(failed)}"


def one_of(name: str | None, all_flag: bool, what: str, verb: str) -> None:
    """Exactly one of a positional name and ``--all`` (Kedro's message when neither)."""
    if name and all_flag:
        raise ManifestError(
            f"Give either {what} or '--all', not both ('--all' {verb}s every entry of the "
            "manifest with its own options)."
        )
    if not name and not all_flag:
        raise ManifestError(
            f"Please specify {what} or add '--all' to {verb} all micro-packages in the "
            "'pyproject.toml' package manifest section."
        )
