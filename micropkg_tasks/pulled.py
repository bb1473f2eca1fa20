"""The pulled version of a lock entry's files: the base of a 3-way merge, what ``micropkg
diff`` compares against.

The cache (:mod:`.cache`) holds the sdist a pull used; the pulled version of a file is that
tarball's member after the same layout, alias and import rewriting the pull applied, so it is
computed by the pull's own layout function, and kept only where its sha256 is the one the lock
recorded (a file the tool would now lay out differently has no known base). When the cache
lacks the sdist, the lock's source is fetched again (an index requirement at the version
pulled) and must have the recorded sha256; the fetched sdist is cached.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .cache import cached, store
from .errors import MicropkgError
from .fsutil import sha256_bytes
from .layout import lay_out
from .lockfile import LockEntry
from .project import Project

__all__ = ["PulledVersion", "read_pulled", "refetch_source"]


@dataclass(frozen=True)
class PulledVersion:
    """The content each file of a lock entry had when it was pulled (where known)."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    """Project-relative path → the bytes the pull wrote."""
    unavailable: str | None = None
    """Why the pulled version of the other files is unknown (``None``: every file is known)."""

    def get(self, rel: str) -> bytes | None:
        """The pulled content of ``rel``, or ``None`` when it is unknown."""
        return self.files.get(rel)

    def why_unknown(self, rel: str) -> str:
        """Why ``rel`` has no known pulled version (for messages)."""
        return self.unavailable or f"the pulled version of {rel} cannot be reproduced"


def refetch_source(entry: LockEntry, project: Project) -> str:
    """The SOURCE that gives the sdist of ``entry`` again: its source, or for an index
    requirement that is not pinned, the requirement pinned at the version pulled."""
    from packaging.requirements import InvalidRequirement, Requirement

    from .sources import source_kind

    if entry.version is None or source_kind(entry.source, project.root) != "index":
        return entry.source
    try:
        req = Requirement(entry.source)
    except InvalidRequirement:
        return entry.source
    if req.url is not None:
        return entry.source
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}=={entry.version}"


def _fetch_again(project: Project, entry: LockEntry, workdir: Path) -> tuple[Path | None, str]:
    """Fetch the lock's source into ``workdir``: ``(archive, "")`` or ``(None, why not)``."""
    from .sources import fetch, load_fs_args

    source = refetch_source(entry, project)
    try:
        fs_args = None
        if entry.options.get("fs_args"):
            fs_path = Path(entry.options["fs_args"])
            fs_args = load_fs_args(fs_path if fs_path.is_absolute() else project.root / fs_path)
        fetched = fetch(source, workdir / "download", base=project.root, fs_args=fs_args)
    except MicropkgError as exc:
        return None, f"it is not in the cache and fetching {source} again failed: {exc}"
    if fetched.sha256 != entry.sha256:
        return None, (
            f"it is not in the cache and {source} now holds another sdist "
            f"(sha256 {fetched.sha256[:12]}…, pulled {entry.sha256[:12]}…)"
        )
    store(project.state_dir, fetched.path, fetched.sha256)
    return fetched.path, ""


def read_pulled(project: Project, entry: LockEntry, *, refetch: bool = True) -> PulledVersion:
    """The pulled version of every file of ``entry`` that can be known (see module docs)."""
    with tempfile.TemporaryDirectory(prefix="micropkg-base-") as tmp:
        workdir = Path(tmp)
        archive = cached(project.state_dir, entry.sha256)
        if archive is None:
            if not refetch:
                return PulledVersion(unavailable="the pulled sdist is not in the cache")
            archive, reason = _fetch_again(project, entry, workdir)
            if archive is None:
                return PulledVersion(unavailable=f"the pulled sdist is unavailable: {reason}")
        try:
            laid_out = _lay_out_again(project, entry, archive, workdir)
        except MicropkgError as exc:
            return PulledVersion(unavailable=f"the pulled sdist cannot be read again: {exc}")
    files = {
        rel: data for rel, data in laid_out.items() if entry.files.get(rel) == sha256_bytes(data)
    }
    missing = sorted(set(entry.files) - set(files))
    why: str | None = None
    if missing:
        why = (
            f"{len(missing)} file(s) of the pulled sdist are laid out differently today "
            f"(e.g. {missing[0]})"
        )
    return PulledVersion(files, why)


def _lay_out_again(
    project: Project, entry: LockEntry, archive: Path, workdir: Path
) -> dict[str, bytes]:
    """The files the pull of ``entry`` wrote, computed again from its sdist."""
    from .limits import project_limits
    from .lockfile import Lock
    from .manifest import PullEntry
    from .sdist_reader import read_sdist

    pull_entry = PullEntry(
        entry.source,
        alias=entry.options.get("alias"),
        destination=entry.options.get("destination"),
        env=entry.options.get("env", "base"),
    )
    limits = project_limits(project.pyproject)
    contents = read_sdist(
        archive, workdir / "sdist", max_bytes=limits.max_size, max_members=limits.max_members
    )
    # The entry as the only one pulled: the folder __init__.py files it created count as its own.
    lock = Lock({entry.module: entry})
    layout = lay_out(project, pull_entry, contents, lock)
    # A large file is read whole here: these are the pulled versions to diff or merge against.
    return {
        project.rel(target): data.read_bytes() if isinstance(data, Path) else data
        for target, data in layout.writes.items()
    }
