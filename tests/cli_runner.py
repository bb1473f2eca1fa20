"""Running the ``micropkg`` CLI in-process in tests: a typed result and the runner's type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Cli", "CliResult"]


@dataclass(frozen=True)
class CliResult:
    """Exit code and captured output of one in-process ``micropkg`` run."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """stdout's non-empty lines."""
        return [line for line in self.out.splitlines() if line.strip()]

    @property
    def err_lines(self) -> list[str]:
        """stderr's non-empty lines."""
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def error(self) -> str:
        """The text of the one ``Error:`` line on stderr (an AssertionError otherwise)."""
        lines = self.err_lines
        assert len(lines) == 1 and lines[0].startswith("Error: "), self.err
        return lines[0].removeprefix("Error: ")


class Cli(Protocol):
    """The ``cli`` fixture: ``cli("package", "--all")``."""

    def __call__(self, *args: str) -> CliResult:
        """Run ``micropkg *args`` in the current folder."""
        ...
