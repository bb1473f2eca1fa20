"""A quiet doit reporter: prints our one-line messages, ``Error: ...`` lines and warnings."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from doit.exceptions import BaseFail, TaskFailed, UnmetDependency
from doit.reporter import ConsoleReporter

__all__ = ["MicropkgReporter"]


class MicropkgReporter(ConsoleReporter):  # type: ignore[misc]
    """Success lines come from the actions' ``message`` value; up-to-date tasks stay silent."""

    desc = "micropkg: one line per executed task, errors as 'Error: ...'"
    verbose = False

    def __init__(self, outstream: TextIO, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.executed: list[str] = []
        self.failed: list[str] = []
        self.uptodate: list[str] = []
        self.errstream: TextIO = sys.stderr

    def execute_task(self, task: Any) -> None:
        """Show the task name only when verbose."""
        if self.verbose and task.actions and not task.name.startswith("_"):
            self.write(f".  {task.title()}\n")

    def skip_uptodate(self, task: Any) -> None:
        """Up-to-date tasks are silent unless verbose."""
        if task.actions:
            self.uptodate.append(task.name)
        if self.verbose and not task.name.startswith("_"):
            self.write(f"-- {task.title()}\n")

    def add_success(self, task: Any) -> None:
        """Print the action's message and warnings."""
        if not task.actions:
            return
        self.executed.append(task.name)
        values = task.values or {}
        for warning in values.get("warnings", ()):
            self.errstream.write(f"Warning: {warning}\n")
        message = values.get("message")
        if message:
            self.write(f"{message}\n")

    def add_failure(self, task: Any, fail: BaseFail) -> None:
        """``Error: <message>`` for our errors; the traceback only when verbose."""
        if isinstance(fail, UnmetDependency):
            return  # a group task whose sub-task failed (--continue): already reported
        self.failed.append(task.name)
        from .sources import public_url  # tracebacks quote URLs: no credentials in them

        if isinstance(fail, TaskFailed) or self.verbose is False:
            text = fail.message if isinstance(fail, TaskFailed) else _last_line(fail.get_msg())
            self.errstream.write(f"Error: {public_url(text)}\n")
            if self.verbose and not isinstance(fail, TaskFailed):
                self.errstream.write(public_url(fail.get_msg()))
        else:
            self.errstream.write(f"Error in {task.name}:\n{public_url(fail.get_msg())}\n")

    def runtime_error(self, msg: str) -> None:
        """doit's own errors (e.g. a missing file dependency) as one line."""
        self.errstream.write(f"Error: {msg.strip()}\n")

    def complete_run(self) -> None:
        """Nothing more to print: failures were printed as they happened."""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
