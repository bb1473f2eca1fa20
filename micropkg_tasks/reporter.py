"""doit reporters: doit's own lines for ``doit``, quiet ones for the ``micropkg`` CLI.

Both print failures as one ``Error: <message>`` line (the traceback only when verbose) and
our warnings on stderr.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

from doit.exceptions import BaseFail, TaskFailed, UnmetDependency
from doit.reporter import ConsoleReporter

__all__ = ["UPTODATE_NOTE", "CliReporter", "DoitStyleReporter"]

#: A task's ``meta`` key: a callable returning the line to print after doit's ``-- task``
#: line, or None (``-- build_reqs`` then ``Nothing to compile: no requirements.in.``).
UPTODATE_NOTE = "micropkg_uptodate_note"


class DoitStyleReporter(ConsoleReporter):  # type: ignore[misc]
    """doit's usual ``.  task`` (executed) and ``-- task`` (up to date) lines, each executed
    task followed by our one-line message."""

    desc = "micropkg: doit's task lines, our messages, errors as 'Error: ...'"
    verbose = False

    def __init__(self, outstream: TextIO, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.errstream: TextIO = sys.stderr

    def skip_uptodate(self, task: Any) -> None:
        """doit's ``-- task`` line, then the task's note when it has one."""
        super().skip_uptodate(task)
        note = (task.meta or {}).get(UPTODATE_NOTE)
        text = note() if callable(note) else None
        if text:
            self.write(f"{text}\n")

    def add_success(self, task: Any) -> None:
        """Our warnings (stderr) and message (stdout) after doit's ``.  task`` line."""
        if not task.actions:
            return
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

    def cleanup_error(self, exception: BaseFail) -> None:
        """A teardown that failed (the lock written when a pull run ends) as one line: doit
        keeps only the error's traceback, whose last line is ``<class>: <message>``."""
        from .sources import public_url

        text = _ERROR_CLASS_RE.sub("", _last_line(exception.get_msg()))
        self.errstream.write(f"Error: {public_url(text)}\n")
        if self.verbose:
            self.errstream.write(public_url(exception.get_msg()))

    def complete_run(self) -> None:
        """Nothing more to print: failures were printed as they happened."""


class CliReporter(DoitStyleReporter):
    """For the ``micropkg`` CLI, which prints Kedro's messages from the command's result:
    only errors (and, with ``-v``, doit's task lines)."""

    desc = "micropkg CLI: errors only (task lines with -v)"

    def execute_task(self, task: Any) -> None:
        """doit's ``.  task`` line, only when verbose."""
        if self.verbose:
            super().execute_task(task)

    def skip_uptodate(self, task: Any) -> None:
        """doit's ``-- task`` line, only when verbose."""
        if self.verbose:
            super().skip_uptodate(task)

    def add_success(self, task: Any) -> None:
        """Silent: the command prints the result."""

    def cleanup_error(self, exception: BaseFail) -> None:
        """Silent: the command writes the lock again, and reports its error."""


_ERROR_CLASS_RE = re.compile(r"^[\w.]+: ")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
