"""``micropkg build-reqs``: compile requirements.in when it changed (or check it)."""

from __future__ import annotations

from ..errors import MicropkgError
from ..messages import build_reqs_message
from ..project import load_project
from ..requirements import build_requirements, requirements_stale
from ..result import CommandResult
from ._base import Context, Values, locked

__all__ = ["DESCRIPTION", "HELP", "NAME", "run"]

NAME = "build-reqs"
HELP = "compile requirements.in into requirements.txt (pip-tools)"

DESCRIPTION = (
    "Compile requirements.in into requirements.txt with pip-tools when requirements.in "
    "changed. Extra pip-compile options go after '--'."
)


def run(ctx: Context, values: Values) -> CommandResult:
    """Compile, or with ``--check`` only say whether a compile is needed."""
    project = load_project(ctx.cwd)
    req_in, req_txt = project.requirements_in, project.requirements_txt
    if values["check"]:
        if not req_in.is_file():
            raise MicropkgError(
                f"No {project.rel(req_in)} to compile: pull a micro-package first, or copy "
                f"{project.rel(req_txt)} to {project.rel(req_in)}."
            )
        with locked(project, create=False) as recovered:
            stale = requirements_stale(req_in, req_txt)
        if stale:
            raise MicropkgError(
                f"{project.rel(req_txt)} is out of date with {project.rel(req_in)}: "
                "run 'micropkg build-reqs'."
            )
        return CommandResult(lines=(recovered,) if recovered else ())
    if not req_in.is_file():  # checked before the lock: a failed command creates nothing
        build_requirements(project.root, req_in, req_txt)
    # One resolver per project at a time.
    with locked(project) as recovered:
        result = build_requirements(
            project.root, req_in, req_txt, extra_args=values["extra"], backend=values["backend"]
        )
    notes = (recovered,) if recovered else ()
    return CommandResult(lines=(*notes, build_reqs_message(project, result)))
