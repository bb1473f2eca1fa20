"""``micropkg build-reqs``: compile requirements.in when it changed (or check it)."""

from __future__ import annotations

from ..errors import MicropkgError
from ..messages import build_reqs_message
from ..project import load_project
from ..requirements import (
    BuildResult,
    build_requirements,
    nothing_to_compile,
    requirements_stale,
)
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
    # Only a compile writes: a check, or nothing to compile, creates no state folder either.
    writes = not values["check"] and nothing_to_compile(req_in, req_txt) is None
    with locked(ctx, project, create=writes):
        if values["check"]:
            nothing = nothing_to_compile(req_in, req_txt)
            if nothing is None and requirements_stale(req_in, req_txt):
                raise MicropkgError(
                    f"{project.rel(req_txt)} is out of date with {project.rel(req_in)}: "
                    "run 'micropkg build-reqs'."
                )
            result = BuildResult(False, req_in, req_txt, nothing) if nothing else None
        else:  # one resolver per project at a time
            result = build_requirements(
                project.root,
                req_in,
                req_txt,
                extra_args=values["extra"],
                backend=values["backend"],
            )
    lines: list[str] = []
    if result is not None:
        lines.append(build_reqs_message(project, result))
    return CommandResult(lines=tuple(lines))
