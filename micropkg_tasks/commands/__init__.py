"""The commands: one module each (``build-reqs`` → ``build_reqs.py``), registered in
:data:`COMMANDS`.

A command module declares ``NAME``, ``HELP`` (one line for ``micropkg --help``) and
``DESCRIPTION``, and ``run(ctx, values) -> CommandResult``: it does the work through the
operations and returns a typed result the CLI prints; its options are rows of
:mod:`micropkg_tasks.options`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._base import Context, Values, startup_warnings

__all__ = ["COMMANDS", "Context", "Values", "command", "startup_warnings"]

#: Every command, in the order ``micropkg --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "package",
    "pull",
    "build-reqs",
    "status",
    "init",
    "diff",
    "outdated",
    "upgrade",
    "remove",
    "doit",
)


def command(name: str) -> ModuleType:
    """The module of command ``name``."""
    if name not in COMMANDS:
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
