"""Three-way merge of one pulled file: base (what the last pull wrote), local, new.

Line-based, with the ``merge3`` library (bzr's and breezy's merge, kept by its author as a
package): changes on one side only are taken, identical changes on both sides are taken once,
and overlapping changes are conflicts. With ``markers``, each conflict is written git-style
(diff3 form, base included)::

    <<<<<<< local
    the local lines
    ||||||| 0.1
    the lines of the last pull
    =======
    the new version's lines
    >>>>>>> 0.2

Bytes in, bytes out: line endings are kept as they are; a file that is not UTF-8 text, or holds
a NUL byte, is binary and is never merged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MergeOutcome", "has_conflict_markers", "is_binary", "merge_file"]

LOCAL_LABEL = "local"
# The start, base and end markers (with their label) on a line of their own. The middle
# ``=======`` alone is not searched for: reStructuredText underlines look the same.
_MARKER_RE = re.compile(rb"^(?:<<<<<<< |\|\|\|\|\|\|\| |>>>>>>> )[^\r\n]*\r?$", re.M)


@dataclass(frozen=True)
class MergeOutcome:
    """The result of merging one file."""

    data: bytes | None
    """The merged content: clean, or with conflict markers when they were asked for; ``None``
    when there are conflicts and no markers were asked for, or the file is binary."""
    conflicts: int
    """How many conflicting hunks (0: a clean merge)."""
    binary: bool = False
    """The file is binary: it was not merged (``conflicts`` is 1)."""


def is_binary(data: bytes) -> bool:
    """Whether ``data`` is not line-mergeable text (a NUL byte, or not UTF-8)."""
    if b"\0" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _newline(lines: list[bytes]) -> bytes:
    """The line ending the file uses (that of its first line; ``\\n`` by default)."""
    for line in lines:
        if line.endswith(b"\r\n"):
            return b"\r\n"
        if line.endswith(b"\n"):
            return b"\n"
    return b"\n"


def merge_file(
    base: bytes,
    local: bytes,
    new: bytes,
    *,
    base_label: str,
    new_label: str,
    markers: bool = False,
) -> MergeOutcome:
    """Merge the changes from ``base`` to ``local`` and from ``base`` to ``new``.

    ``base_label`` and ``new_label`` name the two versions in the markers (the old and the new
    version of the micro-package).
    """
    if is_binary(base) or is_binary(local) or is_binary(new):
        return MergeOutcome(None, 1, binary=True)
    from merge3 import Merge3

    base_lines = base.splitlines(keepends=True)
    local_lines = local.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    merger = Merge3(base_lines, local_lines, new_lines)
    newline = _newline(local_lines or base_lines or new_lines)
    out: list[bytes] = []
    conflicts = 0

    def emit_marker(marker: str) -> None:
        if out and not out[-1].endswith((b"\n", b"\r")):
            out[-1] += newline  # a last line without its newline must not swallow the marker
        out.append(marker.encode("utf-8") + newline)

    for region in merger.merge_regions():
        kind = region[0]
        if kind == "unchanged":
            out.extend(base_lines[region[1] : region[2]])
        elif kind in ("a", "same"):
            out.extend(local_lines[region[1] : region[2]])
        elif kind == "b":
            out.extend(new_lines[region[1] : region[2]])
        elif len(region) == 7:
            _, base_start, base_end, local_start, local_end, new_start, new_end = region
            conflicts += 1
            if not markers:
                continue
            emit_marker(f"<<<<<<< {LOCAL_LABEL}")
            out.extend(local_lines[local_start:local_end])
            emit_marker(f"||||||| {base_label}")
            out.extend(base_lines[base_start:base_end])
            emit_marker("=======")
            out.extend(new_lines[new_start:new_end])
            emit_marker(f">>>>>>> {new_label}")
    if conflicts and not markers:
        return MergeOutcome(None, conflicts)
    return MergeOutcome(b"".join(out), conflicts)


def has_conflict_markers(data: bytes) -> bool:
    """Whether ``data`` still holds a conflict marker line (``<<<<<<< ``, ``||||||| `` or
    ``>>>>>>> ``, at the start of a line)."""
    return _MARKER_RE.search(data) is not None
