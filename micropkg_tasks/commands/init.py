"""``micropkg init``: the one-line dodo.py and the .gitignore entry for the state folder; with
``--migrate``, only the move of the manifest to ``[tool.micropkg]``."""

from __future__ import annotations

from ..errors import MicropkgError
from ..fsutil import atomic_write
from ..project import Project, load_project
from ..result import CommandResult
from ._base import Context, Values, locked

__all__ = ["DESCRIPTION", "DODO_LINE", "HELP", "NAME", "run"]

NAME = "init"
HELP = "write a one-line dodo.py into the project (--migrate: move the manifest)"

DESCRIPTION = (
    "Write a one-line dodo.py into the project (an existing one is left alone). --migrate: "
    "only move the manifest from [tool.kedro.micropkg] to [tool.micropkg], which Kedro 1.x "
    "requires."
)
DODO_LINE = "from micropkg_tasks.tasks import *  # noqa: F403\n"
_IGNORE = "# micropkg-tasks state (doit database, caches)\n.micropkg/\n"


def run(ctx: Context, values: Values) -> CommandResult:
    """Write ``dodo.py`` unless it exists, and add ``.micropkg/`` to ``.gitignore``; with
    ``--migrate``, only move the manifest."""
    project = load_project(ctx.cwd)
    if values.get("migrate"):
        return _migrate(ctx, project)
    dodo = project.root / "dodo.py"
    if dodo.exists() and "micropkg_tasks.tasks import" not in dodo.read_text(encoding="utf-8"):
        raise MicropkgError(
            f"'{dodo}' exists and does not load micropkg's tasks; add this line to it: "
            f"{DODO_LINE.strip()}"
        )
    lines = []
    with locked(ctx, project):
        if not dodo.exists():
            atomic_write(dodo, DODO_LINE)
            lines.append(f"Wrote {dodo}: run 'doit list' to see the micro-package tasks.")
        gitignore = project.root / ".gitignore"
        text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
        existing = text.splitlines()
        if ".micropkg/" not in existing:
            separator = "\n" if existing and existing[-1] != "" else ""
            atomic_write(gitignore, text + separator + _IGNORE)
    return CommandResult(lines=tuple(lines))


def _migrate(ctx: Context, project: Project) -> CommandResult:
    """Move ``[tool.kedro.micropkg]`` to ``[tool.micropkg]`` (nothing to do: one line)."""
    from ..manifest_edit import migrate_manifest

    pyproject = project.root / "pyproject.toml"
    lines = []
    with locked(ctx, project, create=False):
        # Bytes decoded as they are: CRLF stays CRLF.
        text = pyproject.read_bytes().decode("utf-8")
        migrated = migrate_manifest(text)
        if migrated is None:
            lines.append(
                f"Nothing to migrate: {project.rel(pyproject)} has no [tool.kedro.micropkg]."
            )
        else:
            atomic_write(pyproject, migrated)
            lines.append(
                f"Moved the manifest from [tool.kedro.micropkg] to [tool.micropkg] in "
                f"{project.rel(pyproject)}."
            )
    return CommandResult(lines=tuple(lines))
