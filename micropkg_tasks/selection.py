"""Which pulled micro-packages a command names: ``MODULE`` as ``micropkg status`` prints it."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ManifestError
from .lockfile import Lock

__all__ = ["select_modules"]


def _one(lock: Lock, name: str) -> str:
    """The lock entry ``name`` names: its module path (``pipelines.ds``, also written with
    slashes), or its last component alone when no other entry ends the same way."""
    wanted = name.strip().replace("/", ".").strip(".")
    if wanted in lock.entries:
        return wanted
    matches = sorted(m for m in lock.entries if m.rsplit(".", 1)[-1] == wanted)
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(lock.entries)) or "none"
    if matches:
        raise ManifestError(
            f"'{name}' is ambiguous: it could be {' or '.join(matches)}; give the module path."
        )
    raise ManifestError(f"No pulled micro-package '{name}' in micropkg.lock (pulled: {known}).")


def select_modules(lock: Lock, names: Iterable[str]) -> list[str]:
    """The module paths of the entries ``names`` name (each once, in the order given)."""
    return list(dict.fromkeys(_one(lock, name) for name in names))
