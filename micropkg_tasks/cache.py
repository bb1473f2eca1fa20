"""The cache of pulled sdists: ``.micropkg/cache/<sha256>.tar.gz``, content-addressed.

Every pull stores the tarball it pulled here, so the pulled version of each file (the base of a
3-way merge, what ``micropkg diff`` compares against) is available offline. A cached file is
trusted only when its content still has the sha256 it is named after. The state folder is
git-ignored, so the cache never reaches a commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from pathlib import Path

from .fsutil import atomic_writer, sha256_file

__all__ = ["CACHE_DIR", "cached", "drop", "store"]

CACHE_DIR = "cache"
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def _folder(state_dir: Path) -> Path:
    return state_dir / CACHE_DIR


def _ensure_folder(state_dir: Path) -> Path:
    """``<state>/cache/`` (the state folder is made the usual way when missing)."""
    from .state import ensure_state_dir

    ensure_state_dir(state_dir.parent)
    folder = _folder(state_dir)
    folder.mkdir(exist_ok=True)
    return folder


def cached(state_dir: Path, sha256: str) -> Path | None:
    """The cached sdist whose content has ``sha256``, or ``None``.

    A cached file whose content no longer matches its name is removed (and ``None`` returned).
    """
    if not _SHA_RE.fullmatch(sha256):
        return None
    path = _folder(state_dir) / f"{sha256}.tar.gz"
    try:
        if sha256_file(path) == sha256:
            return path
    except OSError:
        return None
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def store(state_dir: Path, archive: Path, sha256: str) -> Path | None:
    """Copy ``archive`` (whose content has ``sha256``) into the cache; return the cached path.

    Written through a temporary file and renamed, so a cached file is always complete. Copied,
    never linked: the source file may later be overwritten in place. When the copy does not
    have ``sha256`` (the source changed meanwhile), nothing is stored and ``None`` returned.
    """
    if not _SHA_RE.fullmatch(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    present = cached(state_dir, sha256)
    if present is not None:
        return present
    target = _ensure_folder(state_dir) / f"{sha256}.tar.gz"
    digest = hashlib.sha256()
    try:
        with archive.open("rb") as source, atomic_writer(target) as stream:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                stream.write(block)
            if digest.hexdigest() != sha256:
                raise _Changed
    except _Changed:
        return None
    return target


class _Changed(Exception):
    """The source's content changed while it was copied."""


def drop(state_dir: Path, sha256: str) -> None:
    """Remove the cached sdist whose content has ``sha256``, if there is one (a lock entry no
    longer names it: called by the pull or removal that dropped it)."""
    if _SHA_RE.fullmatch(sha256):
        with contextlib.suppress(OSError):
            (_folder(state_dir) / f"{sha256}.tar.gz").unlink()
