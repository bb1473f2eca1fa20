"""Developer tasks for this repository: ``doit lint``, ``doit test``, ``doit demo``.

(A Kedro project's own dodo.py is one line; ``micropkg init`` writes it:
``from micropkg_tasks.tasks import *``.)
"""

from __future__ import annotations

import sys

DOIT_CONFIG = {"default_tasks": ["lint", "test"], "verbosity": 2}
PY = sys.executable


def task_lint() -> dict[str, object]:
    """ruff (lint + format check) and mypy --strict."""
    return {
        "actions": [
            f"{PY} -m ruff check .",
            f"{PY} -m ruff format --check .",
            f"{PY} -m mypy",
        ],
    }


def task_test() -> dict[str, object]:
    """The whole suite on two workers."""
    return {"actions": [f"{PY} -m pytest -n 2"]}


def task_demo() -> dict[str, object]:
    """Package every manifest entry of examples/demo_project and list the tarballs."""
    return {
        "actions": [
            f"cd examples/demo_project && {PY} -m micropkg_tasks package --all && ls dist/",
        ],
    }
