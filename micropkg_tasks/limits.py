"""The size limits of a micro-package sdist: one setting, read by package and pull alike.

``MICROPKG_MAX_SIZE`` (environment) or ``max-size`` under ``[tool.micropkg]`` caps the total
uncompressed bytes of an sdist's files (default 200 MiB); an sdist also has at most
``MAX_MEMBERS`` members. ``package`` refuses what ``pull`` would refuse, with the same words.

Raising the cap for big data files stays safe against gzip bombs: past ``BOMB_FLOOR`` bytes, the
decompressed stream may be at most ``BOMB_RATIO`` times the size of the ``.tar.gz`` file,
whatever the cap. Both sides compute this from the same two numbers (the compressed file size
and the tar stream length), so they agree to the byte.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ManifestError

__all__ = [
    "BOMB_FLOOR",
    "BOMB_RATIO",
    "DEFAULT_MAX_SIZE",
    "ENV_VAR",
    "LARGE_FILE",
    "MAX_MEMBERS",
    "SETTING_KEY",
    "Limits",
    "bomb_message",
    "members_message",
    "parse_size",
    "project_limits",
    "size_message",
]

ENV_VAR = "MICROPKG_MAX_SIZE"
SETTING_KEY = "max-size"
#: A file larger than this is never held in memory whole (except a ``.py`` file, which the
#: rewriter reads): a pulled sdist's member is streamed to a temporary file, then compared,
#: hashed and staged in chunks; such files are never 3-way merged.
LARGE_FILE = 8 * 1024**2
DEFAULT_MAX_SIZE = 200 * 1024**2
MAX_MEMBERS = 20000
#: Below this many decompressed bytes the ratio is not checked (the default cap, so the
#: default behaviour is exactly the cap's).
BOMB_FLOOR = DEFAULT_MAX_SIZE
#: Deflate reaches about 1000:1 on constant data; real data files (CSV, JSON, logs) stay far
#: below 100:1, and a bomb needs a high ratio to be a bomb.
BOMB_RATIO = 100

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")
_WHERE = f"{ENV_VAR} or '{SETTING_KEY}' under [tool.micropkg]"


def parse_size(value: object, where: str) -> int:
    """Bytes from an integer or a string like ``500MB`` / ``2GiB`` (units are case-blind)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    unit = _UNITS.get(match[2].lower()) if match else None
    if match is None or unit is None or int(match[1]) <= 0:
        raise ManifestError(
            f"Invalid size {value!r} in {where}: expected a positive number of bytes, "
            "optionally with kB, MB, GB, KiB, MiB or GiB."
        )
    return int(match[1]) * unit


@dataclass(frozen=True)
class Limits:
    """The caps one sdist must respect."""

    max_size: int = DEFAULT_MAX_SIZE
    max_members: int = MAX_MEMBERS

    def stream_limit(self, compressed_size: int) -> tuple[int, bool]:
        """How many decompressed bytes an sdist of ``compressed_size`` bytes may have.

        Returns (limit, whether the gzip-bomb ratio is what binds). The cap's share counts
        each member's data plus room for its headers (pax, long names) and padding.
        """
        by_cap = self.max_size + (self.max_members + 8) * 4 * tarfile.BLOCKSIZE
        by_cap += tarfile.RECORDSIZE
        by_ratio = max(BOMB_FLOOR, BOMB_RATIO * compressed_size)
        return (by_ratio, True) if by_ratio < by_cap else (by_cap, False)


def project_limits(pyproject: Mapping[str, Any]) -> Limits:
    """The project's limits: ``MICROPKG_MAX_SIZE`` wins over ``[tool.micropkg] max-size``."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Limits(parse_size(env, ENV_VAR))
    tool = pyproject.get("tool", {})
    table = tool.get("micropkg", {}) if isinstance(tool, Mapping) else {}
    if isinstance(table, Mapping) and SETTING_KEY in table:
        return Limits(parse_size(table[SETTING_KEY], f"[tool.micropkg] {SETTING_KEY}"))
    return Limits()


def size_message(limit: int, member: str | None = None) -> str:
    """Why an sdist is too large (the same words for package and pull)."""
    at = f" (at member '{member}')" if member else ""
    return (
        f"its contents exceed {limit} bytes uncompressed{at}; the limit is set by {_WHERE} "
        f"(default {DEFAULT_MAX_SIZE // 1024**2} MiB)."
    )


def members_message(limit: int) -> str:
    """Why an sdist has too many members."""
    return f"it has more than {limit} members."


def bomb_message() -> str:
    """Why an sdist looks like a gzip bomb (whatever the size limit)."""
    return (
        f"it decompresses to more than {BOMB_RATIO} times its compressed size (past "
        f"{BOMB_FLOOR} bytes), which looks like a gzip bomb; {_WHERE} does not change this."
    )
