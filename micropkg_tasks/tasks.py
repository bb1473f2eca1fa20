"""What a Kedro project's one-line ``dodo.py`` star-imports::

    from micropkg_tasks.tasks import *  # noqa: F403

doit imports the dodo.py with the CWD at the project root; the names below are then the
task creators and ``DOIT_CONFIG`` of one :class:`~micropkg_tasks.loader.MicropkgLoader` for
that folder (the loader the ``micropkg`` CLI runs too). Import this module only from a
dodo.py: the CLI and library code use :mod:`micropkg_tasks.loader`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .commands import startup_warnings
from .loader import MicropkgLoader

__all__ = ["DOIT_CONFIG", "task_build_reqs", "task_package", "task_pull", "task_pull_all"]

for _warning in startup_warnings(Path.cwd()):  # doit imports the dodo.py once per command
    print(f"Warning: {_warning}", file=sys.stderr)

_LOADER = MicropkgLoader(Path.cwd(), lock=True)

DOIT_CONFIG = _LOADER.dodo_config()
task_package = _LOADER.task_package
task_pull = _LOADER.task_pull
task_build_reqs = _LOADER.task_build_reqs
task_pull_all = _LOADER.task_pull_all
