"""Requirements of two micro-packages (or of one and the project) that no version satisfies.

``pandas>=2`` and ``pandas<2`` under the same canonical name can never be installed together:
the pull still succeeds, but the user is warned before any compile fails on it. Two specifier
sets have a version in common when one of a few candidate versions satisfies both: every
version the two sets name (and the upper ends of ``==X.*`` and ``~=X.Y``), a version between
each two neighbours, one below all and one above all. Those candidates cover every interval
the clauses can form, so a set with a common version is never reported (pre-releases count as
versions here: the question is whether any version could do). Lines with different environment
markers, URLs or ``===`` clauses are not compared.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

__all__ = ["RequirementConflict", "disjoint", "find_conflicts"]

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class RequirementConflict:
    """An incoming requirement that no version of an existing line satisfies."""

    new: str
    """The requirement the pull brings (as it was declared)."""
    new_owner: str
    """The micro-package that brings it."""
    existing: str
    """The line already in ``requirements.in``."""
    existing_owners: tuple[str, ...]
    """The pulled micro-packages that brought that line (empty: the project's own line)."""

    def message(self, requirements_file: str) -> str:
        """One line naming both requirements and where they come from (no ``Warning:``)."""
        if self.existing_owners:
            owners = ", ".join(f"'{o}'" for o in self.existing_owners)
            where = f"micro-package{'s' if len(self.existing_owners) > 1 else ''} {owners}"
        else:
            where = "the project"
        return (
            f"requirement '{self.new}' of micro-package '{self.new_owner}' has no version in "
            f"common with '{self.existing}' in {requirements_file} (from {where}); "
            "the compile will fail until one of them changes."
        )


def _version(text: str) -> Version | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def _bump(release: tuple[int, ...], epoch: int) -> Version | None:
    """The first version after every version starting with ``release`` (``1.2`` → ``1.3``)."""
    if not release:
        return None
    bumped = (*release[:-1], release[-1] + 1)
    return _version(f"{epoch}!" + ".".join(str(p) for p in bumped))


def _boundaries(spec: SpecifierSet) -> set[Version]:
    """Every version where ``spec``'s answer can change."""
    found: set[Version] = set()
    for clause in spec:
        text = clause.version
        if text.endswith(".*"):
            prefix = _version(text[:-2])
            if prefix is not None:
                found.add(prefix)
                upper = _bump(prefix.release, prefix.epoch)
                if upper is not None:
                    found.add(upper)
            continue
        version = _version(text)
        if version is None:
            continue
        found.add(version)
        if clause.operator == "~=" and len(version.release) >= 2:
            upper = _bump(version.release[:-1], version.epoch)
            if upper is not None:
                found.add(upper)
    return found


def _between(low: Version, high: Version) -> list[Version]:
    """A few versions strictly between ``low`` and ``high`` (possibly none)."""
    width = max(len(low.release), len(high.release))
    release = (*low.release, *([0] * (width - len(low.release))), 1)
    texts = [
        f"{low.epoch}!" + ".".join(str(p) for p in release),
        f"{high.epoch}!{high.base_version.split('!')[-1]}.dev0",
        f"{low}.post1",
    ]
    out = []
    for text in texts:
        candidate = _version(text)
        if candidate is not None and low < candidate < high:
            out.append(candidate)
    return out


def _candidates(a: SpecifierSet, b: SpecifierSet) -> list[Version]:
    points = sorted(_boundaries(a) | _boundaries(b))
    if not points:
        return []
    out = list(points)
    first, last = points[0], points[-1]
    below = _version(f"{first.epoch}!0.dev0")
    if below is not None and below < first:
        out.append(below)
    above = _bump(last.release[:1], last.epoch)
    if above is not None and above > last:
        out.append(above)
    for low, high in itertools.pairwise(points):
        out.extend(_between(low, high))
    return out


# Cached: a ``pull --all`` asks the same questions of every entry (the lines of requirements.in,
# the requirements many micro-packages share), and packaging's parser is the cost.
@functools.lru_cache(maxsize=4096)
def disjoint(a: SpecifierSet, b: SpecifierSet) -> bool:
    """Whether no version satisfies both ``a`` and ``b`` (``===`` clauses: never reported)."""
    if not len(a) or not len(b):
        return False
    if any(c.operator == "===" for c in (*a, *b)):
        return False
    return not any(
        a.contains(v, prereleases=True) and b.contains(v, prereleases=True)
        for v in _candidates(a, b)
    )


@functools.lru_cache(maxsize=4096)
def _parse_line(line: str) -> Requirement | None:
    """A requirements-file line as a requirement, or ``None`` (comments, options, paths);
    shared between callers, never changed."""
    from packaging.requirements import InvalidRequirement, Requirement

    body = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
    if not body or body.startswith(("#", "-")):
        return None
    body = body.split(" --", 1)[0].strip()
    try:
        return Requirement(body)
    except InvalidRequirement:
        return None


def _comparable(new: Requirement, old: Requirement) -> bool:
    from packaging.utils import canonicalize_name

    return (
        canonicalize_name(new.name) == canonicalize_name(old.name)
        and new.url is None
        and old.url is None
        and str(new.marker or "") == str(old.marker or "")
    )


def find_conflicts(
    lines: Iterable[str],
    incoming: Sequence[str],
    new_owner: str,
    owners: Mapping[str, Sequence[str]],
) -> list[RequirementConflict]:
    """Each pair (incoming requirement, line of ``lines``) with no version in common.

    ``lines`` are the lines of ``requirements.in`` that stay (outside the pulled
    micro-package's own previous block); ``owners`` maps a line (stripped, as written) to the
    micro-packages that brought it.
    """
    from packaging.utils import canonicalize_name

    wanted = {}
    for text in dict.fromkeys(incoming):
        new = _parse_line(text)
        if new is not None:
            wanted[text] = new
    names = {canonicalize_name(req.name) for req in wanted.values()}
    # Only lines that start with one of those names are parsed (a pull runs this on every
    # line of requirements.in, and packaging's parser is the cost).
    existing = []
    for line in lines:
        match = _NAME_RE.match(line)
        if match and canonicalize_name(match.group(1)) in names:
            req = _parse_line(line)
            if req is not None:
                existing.append((line.strip(), req))
    found: list[RequirementConflict] = []
    for text, new in wanted.items():
        for line, old in existing:
            if _comparable(new, old) and disjoint(new.specifier, old.specifier):
                found.append(
                    RequirementConflict(text.strip(), new_owner, line, tuple(owners.get(line, ())))
                )
    return found
