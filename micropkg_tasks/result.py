"""What each command returns: frozen, typed results built from what the operations returned
(or from doit's task values), never from what a reporter happened to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CommandResult", "TaskOutcome", "TaskStatus"]

TaskStatus = Literal["executed", "up-to-date", "failed"]


@dataclass(frozen=True)
class TaskOutcome:
    """One doit task of a run: executed now, up to date, or failed (or never reached)."""

    task: str
    """doit's task name, ``package:pipelines.ds``."""
    status: TaskStatus
    message: str | None = None
    """The operation's one-line message (executed tasks)."""
    warnings: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """The sub-task's name without the task's: ``pipelines.ds``."""
        return self.task.split(":", 1)[-1]


@dataclass(frozen=True)
class CommandResult:
    """What a command did, ready to print: lines for stdout, warnings and errors for stderr.

    ``errors`` hold the text after ``Error: ``; ``code`` is the exit status.
    """

    code: int = 0
    lines: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    outcomes: tuple[TaskOutcome, ...] = field(default=(), repr=False)
    """The doit tasks behind it, when the command ran doit."""

    @property
    def executed(self) -> tuple[str, ...]:
        """Names of the tasks that ran in this command."""
        return tuple(o.task for o in self.outcomes if o.status == "executed")
