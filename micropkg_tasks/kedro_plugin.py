"""``kedro micropkg ...`` on Kedro 1.x, through the ``kedro.project_commands`` entry point."""

from __future__ import annotations

import sys

import click

from .cli import main

__all__ = ["commands"]


@click.group(name="micropkg-tasks")
def commands() -> None:
    """Commands contributed by micropkg-tasks."""


@commands.command(
    name="micropkg",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def micropkg(args: tuple[str, ...]) -> None:
    """Package and pull micro-packages (micropkg-tasks): kedro micropkg --help."""
    sys.exit(main(list(args) or ["--help"]))
