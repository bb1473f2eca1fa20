"""Every command-line option, declared once (model: nox's ``_option_set``).

One :class:`Option` row says the flags, type, default, help, which commands offer it, whether a
manifest entry may set it (and under which key) and whether doit's task takes it as a
parameter. From the table come the argparse arguments (:func:`add_arguments`), doit's
``task_params`` (:func:`doit_params`) and a manifest's allowed keys (:func:`manifest_keys`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["OPTIONS", "Option", "add_arguments", "doit_params", "manifest_keys", "option"]


@dataclass(frozen=True)
class Option:
    """One option of one or more commands."""

    name: str
    """The argparse ``dest``, the manifest entry's field and doit's parameter name."""
    flags: tuple[str, ...]
    help: str
    commands: tuple[str, ...]
    default: Any = None
    type: Callable[[str], Any] | None = None
    action: str | None = None
    """``"store_true"`` for a flag."""
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    manifest: tuple[str, ...] = ()
    """Keys a manifest entry may use for it (the first is the one shown in messages)."""
    manifest_in: tuple[str, ...] = ()
    """The manifests (``package``, ``pull``) whose entries may set it."""
    doit: tuple[str, ...] = ()
    """Commands whose doit task takes it as a parameter (``doit package --alias ds``)."""
    positional: bool = False
    many: bool = False
    """A positional that takes any number of values (``nargs="*"``)."""

    def argparse_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``ArgumentParser.add_argument``."""
        kwargs: dict[str, Any] = {"help": self.help}
        if self.positional:
            nargs = "*" if self.many else "?"
            kwargs.update(nargs=nargs, metavar=self.metavar or self.name.upper())
            return kwargs
        kwargs["dest"] = self.name
        if self.action is not None:
            kwargs["action"] = self.action
            return kwargs
        kwargs["default"] = self.default
        for key in ("type", "choices", "metavar"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        return kwargs


_PACKAGE, _PULL = "package", "pull"
_DIFF, _OUTDATED, _UPGRADE, _REMOVE = "diff", "outdated", "upgrade", "remove"

OPTIONS: tuple[Option, ...] = (
    Option(
        "module_path",
        (),
        "the micro-package's module path (pipelines.data_science)",
        (_PACKAGE,),
        positional=True,
        metavar="MODULE_PATH",
    ),
    Option(
        "module",
        ("--module",),
        "module path to package instead of the manifest entries",
        (),
        default="",
        doit=(_PACKAGE,),
    ),
    Option(
        "source",
        (),
        "a .tar.gz path, an fsspec URL (s3://, https://, ...) or a package index requirement",
        (_PULL,),
        positional=True,
        metavar="SOURCE",
    ),
    Option(
        "modules",
        (),
        "pulled micro-packages, by the module path 'micropkg status' prints (pipelines.ds) or "
        "its last component when that is unambiguous (default: all)",
        (_DIFF, _UPGRADE),
        positional=True,
        many=True,
        metavar="MODULE",
    ),
    Option(
        "module_name",
        (),
        "the pulled micro-package, by the module path 'micropkg status' prints (pipelines.ds) "
        "or its last component when that is unambiguous",
        (_REMOVE,),
        positional=True,
        metavar="MODULE",
    ),
    Option(
        "alias",
        ("--alias",),
        "alternative name for the micro-package",
        (_PACKAGE, _PULL),
        manifest=("alias",),
        manifest_in=(_PACKAGE, _PULL),
        doit=(_PACKAGE,),
    ),
    Option(
        "destination",
        ("-d", "--destination"),
        "package: folder or fsspec URL for the tarball (default: dist/); "
        "pull: module location to unpack under (e.g. pipelines)",
        (_PACKAGE, _PULL),
        manifest=("destination",),
        manifest_in=(_PACKAGE, _PULL),
        doit=(_PACKAGE,),
    ),
    Option(
        "env",
        ("-e", "--env"),
        "config environment of the parameter files (default: base)",
        (_PACKAGE, _PULL),
        manifest=("env",),
        manifest_in=(_PACKAGE, _PULL),
        doit=(_PACKAGE,),
    ),
    Option(
        "fs_args",
        ("--fs-args",),
        "YAML file of fsspec storage options (credentials, endpoint, headers)",
        (_PULL,),
        metavar="FILE",
        manifest=("fs-args", "fs_args"),
        manifest_in=(_PULL,),
    ),
    Option(
        "sha256",
        (),
        "expected sha256 of the tarball (manifest only)",
        (),
        manifest=("sha256",),
        manifest_in=(_PULL,),
    ),
    Option(
        "force",
        ("--force",),
        "overwrite (remove: delete) files that were changed locally",
        (_PULL, _UPGRADE, _REMOVE),
        action="store_true",
    ),
    Option(
        "dry_run",
        ("--dry-run",),
        "show what would be done to each file (create, update, merge, keep, remove, conflict); "
        "write nothing",
        (_PULL, _UPGRADE, _REMOVE),
        action="store_true",
    ),
    Option(
        "timeout",
        ("--timeout",),
        "give up on a remote source silent this long (connecting or between reads; default: 60)",
        (_PULL,),
        metavar="SECONDS",
    ),
    Option(
        "save",
        ("--save",),
        "also add the entry (with its options) to the pull manifest in pyproject.toml",
        (_PULL,),
        action="store_true",
    ),
    Option(
        "merge",
        ("--merge",),
        "markers: write overlapping local and new changes with git-style conflict markers "
        "instead of refusing (exit status 1; see 'micropkg status')",
        (_PULL, _UPGRADE),
        choices=("markers",),
    ),
    Option(
        "all_flag",
        ("-a", "--all"),
        "package, pull: every entry of the manifest, each with its own options; upgrade: every "
        "pulled micro-package",
        (_PACKAGE, _PULL, _UPGRADE),
        action="store_true",
    ),
    Option(
        "keep_going",
        ("-k", "--keep-going"),
        "with --all: go on after a failed entry, then list the failures",
        (_PACKAGE, _PULL),
        action="store_true",
    ),
    Option(
        "process",
        ("-n", "--process"),
        "run N tasks in parallel",
        (_PACKAGE, _PULL),
        default=0,
        type=int,
        metavar="N",
    ),
    Option(
        "parallel_type",
        ("-P", "--parallel-type"),
        "parallel runner (default: thread)",
        (_PACKAGE, _PULL),
        default="thread",
        choices=("thread", "process"),
    ),
    Option(
        "check",
        ("--check",),
        "build-reqs: exit 1 if requirements.txt is stale (resolves nothing); status: exit 1 "
        "unless every pulled micro-package is clean (no local change, no conflict); outdated: "
        "exit 1 when anything is outdated or its source cannot be listed",
        ("build-reqs", "status", _OUTDATED),
        action="store_true",
    ),
    Option(
        "pre",
        ("--pre",),
        "count pre-releases and dev releases as versions too",
        (_OUTDATED, _UPGRADE),
        action="store_true",
    ),
    Option(
        "exit_code",
        ("--exit-code",),
        "exit 1 when there is a difference",
        (_DIFF,),
        action="store_true",
    ),
    Option(
        "backend",
        ("--backend",),
        "resolver for build-reqs (default: pip-tools)",
        ("build-reqs",),
        default="pip-tools",
        choices=("pip-tools", "uv"),
    ),
    Option(
        "extra",
        (),
        "extra pip-compile options, after '--'",
        ("build-reqs",),
        metavar="PIP_COMPILE_ARG",
        positional=True,
        many=True,
    ),
    Option(
        "migrate",
        ("--migrate",),
        "only move the manifest from [tool.kedro.micropkg] to [tool.micropkg] in "
        "pyproject.toml (Kedro 1.x refuses the first), keeping comments and order",
        ("init",),
        action="store_true",
    ),
    Option(
        "verbose",
        ("-v", "--verbose"),
        "show task names and full tracebacks",
        (
            "package",
            "pull",
            "build-reqs",
            "status",
            "init",
            _DIFF,
            _OUTDATED,
            _UPGRADE,
            _REMOVE,
            "doit",
        ),
        action="store_true",
    ),
)


def option(name: str) -> Option:
    """The row called ``name``."""
    for row in OPTIONS:
        if row.name == name:
            return row
    raise KeyError(name)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``command``'s options to its argparse (sub)parser, in table order."""
    for row in OPTIONS:
        if command not in row.commands:
            continue
        if row.positional:
            parser.add_argument(row.name, **row.argparse_kwargs())
        else:
            parser.add_argument(*row.flags, **row.argparse_kwargs())


def doit_params(command: str) -> list[dict[str, Any]]:
    """doit ``task_params`` of ``command``'s task (strings, ``""`` for "not given")."""
    params = []
    for row in OPTIONS:
        if command not in row.doit:
            continue
        param: dict[str, Any] = {
            "name": row.name,
            "long": row.flags[-1].removeprefix("--"),
            "default": "" if row.default is None else row.default,
            "help": row.help,
        }
        short = [flag for flag in row.flags if not flag.startswith("--")]
        if short:
            param["short"] = short[0].removeprefix("-")
        params.append(param)
    return params


def manifest_keys(command: str, *, primary: bool = False) -> tuple[str, ...]:
    """Keys a ``[tool.(kedro.)micropkg.<command>]`` entry may set, in table order
    (``primary``: one per option, the spelling messages show)."""
    keys: list[str] = []
    for row in OPTIONS:
        if command in row.manifest_in:
            keys += row.manifest[:1] if primary else row.manifest
    return tuple(keys)


def manifest_field(key: str) -> str:
    """The option (entry field) a manifest key sets: ``fs-args`` → ``fs_args``."""
    for row in OPTIONS:
        if key in row.manifest:
            return row.name
    raise KeyError(key)
