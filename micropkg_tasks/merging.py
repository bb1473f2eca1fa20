"""The 3-way merge rules of a pull, for each file the new version ships and for the
micro-package's block in ``requirements.in``.

Base = the version recorded in the lock (what the last pull wrote), local = what is on disk,
new = the tarball's (after import rewriting):

* local == base: take new. new == base: keep local, silently.
* both changed: merged line by line (:mod:`.merge`); a clean merge is written; overlapping
  changes are a conflict (with ``markers``: written with git-style markers, and recorded).
* deleted locally: stays deleted when new == base; otherwise a conflict (with ``markers``: the
  new version is written inside one conflict, local side empty).
* the pulled version unknown (not cached, source gone): a local edit is a conflict, as before
  3-way merges, and the reason is said.

The requirements block takes part like a file: its lines as the last pull wrote them (the
lock), as they are now under the micro-package's header, and as the new version's pull would
write them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .fsutil import sha256_bytes
from .merge import merge_file
from .pulled import PulledVersion

__all__ = [
    "Action",
    "FileDecision",
    "FileMerger",
    "RequirementsMerge",
    "block_lines",
    "merge_requirements_3way",
    "replace_block",
]

Action = Literal["create", "update", "merge", "keep", "conflict", "unchanged"]


@dataclass(frozen=True)
class FileDecision:
    """What a pull does with one file the new version ships."""

    action: Action
    data: bytes | None = None
    """The content to write (``None``: the file is not written)."""
    note: str = ""
    """For a conflict: why (shown after the path)."""
    marked: bool = False
    """Written with conflict markers (recorded in the lock as conflicted)."""


class FileMerger:
    """Decides, file by file, what an upgrade of one lock entry does with local edits."""

    def __init__(
        self,
        read_pulled: Callable[[], PulledVersion],
        *,
        old_version: str | None,
        new_version: str | None,
        markers: bool = False,
    ) -> None:
        self._read_pulled = read_pulled
        self._pulled: PulledVersion | None = None
        self.markers = markers
        self.old_label = old_version or "pulled"
        self.new_label = new_version or "new"

    @property
    def pulled(self) -> PulledVersion:
        """The pulled version of the entry's files (read once, when first needed)."""
        if self._pulled is None:
            self._pulled = self._read_pulled()
        return self._pulled

    def decide(self, rel: str, recorded: str, local: bytes | None, new: bytes) -> FileDecision:
        """The decision for ``rel``, which the last pull wrote with sha256 ``recorded`` and
        which now holds ``local`` (``None``: deleted)."""
        new_digest = sha256_bytes(new)
        if local is not None and local == new:
            return FileDecision("unchanged")
        if local is not None and sha256_bytes(local) == recorded:
            return FileDecision("update", new)
        if new_digest == recorded:
            return FileDecision("keep")  # only the local side changed (or deleted it)
        base = self.pulled.get(rel)
        if base is None:
            what = "deleted locally" if local is None else "edited locally"
            return FileDecision(
                "conflict",
                note=f"{what}; cannot merge: {self.pulled.why_unknown(rel)}",
            )
        outcome = merge_file(
            base,
            local if local is not None else b"",
            new,
            base_label=self.old_label,
            new_label=self.new_label,
            markers=self.markers,
        )
        if outcome.binary:
            return FileDecision("conflict", note="binary file changed on both sides")
        if outcome.conflicts == 0:
            assert outcome.data is not None
            return FileDecision("merge", outcome.data)
        hunks = f"{outcome.conflicts} conflicting hunk{'s' if outcome.conflicts > 1 else ''}"
        if local is None:
            hunks = f"deleted locally, changed by the new version; {hunks}"
        if outcome.data is not None:
            return FileDecision("conflict", outcome.data, note=hunks, marked=True)
        return FileDecision("conflict", note=hunks)


# --------------------------------------------------------------------------- requirements


def _is_block_line(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _physical_lines(text: str, *, keepends: bool = False) -> list[str]:
    """``text`` split on ``\\n`` only, like ``merge_requirements``: a form feed or U+2028 in a
    comment stays inside its line, so the file is written back byte for byte."""
    lines = text.split("\n")
    last = lines.pop()
    if keepends:
        lines = [f"{line}\n" for line in lines]
    return [*lines, last] if last else lines


def _regions(lines: list[str], header: str) -> list[tuple[int, int]]:
    """``(start, end)`` of the lines under each occurrence of ``header`` (exclusive end)."""
    found = []
    for index, line in enumerate(lines):
        if line.strip() == header:
            end = index + 1
            while end < len(lines) and _is_block_line(lines[end]):
                end += 1
            found.append((index + 1, end))
    return found


def _pick(lines: list[str], header: str, base: Sequence[str]) -> tuple[int, int] | None:
    """The region of ``header`` holding most of ``base`` (two pulls of one sdist under
    different aliases share a header), else the first."""
    regions = _regions(lines, header)
    if not regions:
        return None
    wanted = {b.strip() for b in base}

    def score(region: tuple[int, int]) -> int:
        return sum(1 for line in lines[region[0] : region[1]] if line.strip() in wanted)

    return max(regions, key=score)


def block_lines(text: str, header: str, base: Sequence[str] = ()) -> list[str] | None:
    """The lines (stripped) under ``header`` in ``text``, or ``None`` without the header."""
    lines = _physical_lines(text)
    region = _pick(lines, header, base)
    if region is None:
        return None
    return [line.strip() for line in lines[region[0] : region[1]]]


def replace_block(text: str, header: str, new: Sequence[str], base: Sequence[str] = ()) -> str:
    """``text`` with the lines under ``header`` replaced by ``new`` (the rest kept byte for
    byte); ``text`` itself when it has no such header."""
    lines = _physical_lines(text, keepends=True)
    region = _pick([line.rstrip("\r\n") for line in lines], header, base)
    if region is None:
        return text
    start, end = region
    newline = "\r\n" if lines[start - 1].endswith("\r\n") else "\n"
    replacement = [f"{line}{newline}" for line in new]
    if end == len(lines) and not lines[-1].endswith(("\n", "\r")) and replacement:
        # The block ended the file without a newline: so does the replacement.
        replacement[-1] = replacement[-1].rstrip("\r\n")
    return "".join([*lines[:start], *replacement, *lines[end:]])


@dataclass(frozen=True)
class RequirementsMerge:
    """The requirements part of a pull, 3-way merged."""

    text: str | None
    """The new ``requirements.in`` (``None``: unchanged)."""
    added: tuple[str, ...]
    """The block as the new version's pull writes it (what the lock records)."""
    result: Any
    """The :class:`~micropkg_tasks.requirements.MergeResult` of that pull."""
    conflicts: int = 0
    """Conflicting hunks between the local edits of the block and the new version."""
    marked: bool = False
    """The conflicts were written with markers."""
    edited: bool = False
    """The block had been edited locally (its lines differ from the lock's)."""


def merge_requirements_3way(
    requirements_in: Path,
    requirements_txt: Path,
    package_name: str,
    new: Sequence[str],
    previous: Sequence[str] = (),
    *,
    old_version: str | None = None,
    new_version: str | None = None,
    markers: bool = False,
    force: bool = False,
    **options: Any,
) -> RequirementsMerge:
    """:func:`~micropkg_tasks.requirements.merge_requirements`, with local edits of the block
    kept: when the lines under the header differ from ``previous``, the new block is computed
    as if they had not been edited, then the edits are merged into it (``force``: dropped).
    ``options`` go to ``merge_requirements`` as they are."""
    from .requirements import block_header, merge_requirements, read_requirements_text

    header = block_header(package_name)
    current = read_requirements_text(requirements_in)  # as stored: CRLF stays CRLF
    base_block = sorted(p.strip() for p in previous)
    local_block = block_lines(current, header, base_block) if current is not None else None
    if (
        force
        or not previous
        or current is None
        or local_block is None
        or sorted(local_block) == base_block
    ):
        result = merge_requirements(
            requirements_in, requirements_txt, package_name, new, previous, **options
        )
        return RequirementsMerge(result.text, tuple(result.added), result)

    # The block as the last pull wrote it, then the new version's pull of that.
    base_text = replace_block(current, header, base_block, base_block)
    with tempfile.TemporaryDirectory(prefix="micropkg-reqs-") as tmp:
        staged = Path(tmp) / requirements_in.name
        staged.write_bytes(base_text.encode("utf-8"))
        result = merge_requirements(
            staged, requirements_txt, package_name, new, previous, **options
        )
    new_text = result.text if result.text is not None else base_text
    new_block = block_lines(new_text, header, base_block) or []
    merged_lines, conflicts = merge_requirement_lines(
        base_block,
        local_block,
        new_block,
        base_label=old_version or "pulled",
        new_label=new_version or "new",
        markers=markers,
    )
    added = tuple(new_block)
    if merged_lines is None:
        return RequirementsMerge(None, added, result, conflicts, edited=True)
    if new_block:
        text = replace_block(new_text, header, merged_lines, new_block)
    else:  # the new version's pull dropped the header: keep the local lines under it
        text = replace_block(current, header, merged_lines, base_block)
    return RequirementsMerge(
        None if text == current else text,
        added,
        result,
        conflicts,
        marked=conflicts > 0,
        edited=True,
    )


def _requirement_key(line: str) -> str:
    """What a block line is about: the canonical name and markers of a requirement (so
    ``pandas>=1`` and ``pandas>=2`` are two versions of one line), else the line itself."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        req = Requirement(line)
    except InvalidRequirement:
        return line
    return f"{canonicalize_name(req.name)};{req.marker or ''}"


def _keyed(lines: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        out.setdefault(_requirement_key(line), []).append(line)
    return out


def merge_requirement_lines(
    base: Sequence[str],
    local: Sequence[str],
    new: Sequence[str],
    *,
    base_label: str,
    new_label: str,
    markers: bool = False,
) -> tuple[list[str] | None, int]:
    """3-way merge of a requirements block, requirement by requirement (a block is a set:
    sorted lines, so neighbouring lines are unrelated and a line-based merge would see
    conflicts between them). Per requirement: unchanged locally → the new version's;
    unchanged in the new version → the local one (a deletion included); both changed alike →
    that; otherwise a conflict. Returns ``(lines, conflicts)``; ``lines`` is ``None`` when
    there are conflicts and no markers were asked for."""
    b, loc, n = _keyed(base), _keyed(local), _keyed(new)
    chunks: list[tuple[str, list[str]]] = []
    conflicts = 0
    for key in sorted({*b, *loc, *n}):
        was, mine, theirs = b.get(key, []), loc.get(key, []), n.get(key, [])
        if mine in (was, theirs):
            chosen = theirs
        elif theirs == was:
            chosen = mine
        else:
            conflicts += 1
            chosen = [
                "<<<<<<< local",
                *mine,
                f"||||||| {base_label}",
                *was,
                "=======",
                *theirs,
                f">>>>>>> {new_label}",
            ]
        if chosen:
            chunks.append((key, chosen))
    if conflicts and not markers:
        return None, conflicts
    # Sorted like the blocks a pull writes.
    ordered = sorted(chunks, key=lambda c: _first_line(c[1]))
    return [line for _, lines in ordered for line in lines], conflicts


def _first_line(lines: list[str]) -> str:
    """The requirement a chunk sorts by (the first line that is not a marker)."""
    for line in lines:
        if not line.startswith(("<<<<<<<", "|||||||", "=======", ">>>>>>>")):
            return line
    return ""
