"""Running the ``micropkg`` CLI in-process in tests: a typed result and the runner's type."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Cli", "CliResult", "plain_doit"]


def plain_doit(
    root: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m doit ARGS`` in ``root``: plain doit, through the project's ``dodo.py``
    (``env``: the whole environment; by default this process's)."""
    return subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=root,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
