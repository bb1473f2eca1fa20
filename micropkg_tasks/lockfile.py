"""``micropkg.lock``: what was pulled, from where, and every file written with its sha256."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ._compat import toml_string, tomllib
from .errors import PullError

__all__ = ["LOCK_NAME", "Lock", "LockEntry", "read_lock", "render_lock"]

LOCK_NAME = "micropkg.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class LockEntry:
    """One pulled micro-package, keyed by the module path it lives at in the project."""

    module: str
    """Where the code lives, relative to the project package (``pipelines.beta``)."""
    source: str
    sha256: str
    version: str | None
    package: str
    """The package name inside the sdist (before any alias)."""
    options: dict[str, str] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    """The requirement lines this micro-package added to ``requirements.in``."""
    files: dict[str, str] = field(default_factory=dict)
    """Project-relative posix path → sha256 of the content written."""


@dataclass(frozen=True)
class Lock:
    """All pulled micro-packages of a project."""

    entries: dict[str, LockEntry] = field(default_factory=dict)


def read_lock(path: Path) -> Lock:
    """Read ``micropkg.lock`` (an absent file is an empty lock)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return Lock()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PullError(f"Cannot read '{path}': {exc}; fix or delete it.") from exc
    entries: dict[str, LockEntry] = {}
    raw = data.get("micropkg", {})
    if not isinstance(raw, dict):
        raise PullError(f"Cannot read '{path}': [micropkg] must be a table.")
    for module, item in raw.items():
        try:
            entries[module] = LockEntry(
                module=module,
                source=str(item["source"]),
                sha256=str(item["sha256"]),
                version=item.get("version"),
                package=str(item["package"]),
                options={str(k): str(v) for k, v in item.get("options", {}).items()},
                requirements=tuple(str(r) for r in item.get("requirements", ())),
                files={str(k): str(v) for k, v in item.get("files", {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise PullError(
                f"Cannot read '{path}': entry '{module}' is incomplete ({exc})."
            ) from exc
    return Lock(entries)


def render_lock(lock: Lock) -> str:
    """The TOML text of ``lock``: stable order, so re-pulls leave it byte-identical.

    Written by hand (strings, string arrays and tables only): this runs on every pull and
    tomlkit's document model costs far more than the pull itself.
    """
    q = toml_string
    lines = [
        "# Written by `micropkg pull`: what was pulled and every file written.",
        "# Commit it: the next pull uses it to upgrade files and spot local edits.",
        f"version = {LOCK_VERSION}",
    ]
    for module in sorted(lock.entries):
        entry = lock.entries[module]
        key = q(module)
        lines += [
            "",
            f"[micropkg.{key}]",
            f"source = {q(entry.source)}",
            f"sha256 = {q(entry.sha256)}",
        ]
        if entry.version is not None:
            lines.append(f"version = {q(entry.version)}")
        lines.append(f"package = {q(entry.package)}")
        options = ", ".join(f"{k} = {q(v)}" for k, v in sorted(entry.options.items()))
        lines.append(f"options = {{{options}}}" if options else "options = {}")
        if entry.requirements:
            lines += ["requirements = [", *(f"    {q(r)}," for r in entry.requirements), "]"]
        else:
            lines.append("requirements = []")
        lines += ["", f"[micropkg.{key}.files]"]
        lines += [f"{q(rel)} = {q(entry.files[rel])}" for rel in sorted(entry.files)]
    return "\n".join(lines) + "\n"
