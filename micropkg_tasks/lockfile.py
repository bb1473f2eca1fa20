"""``micropkg.lock``: what was pulled, from where, and every file written with its sha256."""

from __future__ import annotations

import bisect
import collections
import contextlib
import functools
import itertools
import json
import keyword
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._compat import toml_string, tomllib
from .errors import ManifestError, PullError
from .faults import fault
from .fsutil import atomic_write, folder_lock, read_if_exists
from .manifest import pull_entry
from .names import describe_character, shown, unsafe_character
from .project import Project

__all__ = [
    "LOCK_NAME",
    "LOCK_TEMP_RE",
    "PENDING_NAME",
    "Lock",
    "LockEntry",
    "LockFile",
    "check_lock_paths",
    "merge_pending",
    "pending_line",
    "read_lock",
    "read_project_lock",
    "render_lock",
    "render_lock_bytes",
]

LOCK_NAME = "micropkg.lock"
LOCK_VERSION = 1
PENDING_NAME = "lock.pending.jsonl"
"""In the state folder: entries a ``pull --all`` committed and not yet written to the lock."""
SOURCES_NAME = "lock-sources.json"
"""In the state folder: the sources the lock records, with the lock file's signature."""
# The temporary file of the lock's atomic write (:func:`.fsutil.atomic_writer`).
LOCK_TEMP_RE = re.compile(r"^\.micropkg\.lock\.[0-9a-f]{8}\.micropkg-tmp$")


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
    """The requirement lines this micro-package added to ``requirements.in`` (its block)."""
    files: dict[str, str] = field(default_factory=dict)
    """Project-relative posix path → sha256 of the content written."""
    conflicts: tuple[str, ...] = ()
    """Files the pull wrote with conflict markers (``--merge=markers``): ``micropkg status``
    shows them as conflicts while a marker is left in them."""
    requires: tuple[str, ...] | None = None
    """Every requirement the micro-package declares (canonical), whether its pull added the
    line or found it present: an upgrade of another micro-package keeps the lines this one
    still needs. ``None`` in locks written before it was recorded."""

    @property
    def needs(self) -> tuple[str, ...]:
        """The requirements this micro-package needs (``requirements`` for older locks)."""
        return self.requirements if self.requires is None else self.requires


@dataclass(frozen=True)
class Lock:
    """All pulled micro-packages of a project."""

    entries: dict[str, LockEntry] = field(default_factory=dict)

    @functools.cached_property
    def file_owners(self) -> dict[str, dict[str, str]]:
        """Project path → {module: recorded sha256} of every entry that wrote it (built once
        per lock; :meth:`with_entry` carries it over, so a ``pull --all`` never rebuilds it)."""
        owners: dict[str, dict[str, str]] = {}
        for module, entry in self.entries.items():
            for rel, digest in entry.files.items():
                owners.setdefault(rel, {})[module] = digest
        return owners

    def with_entry(self, entry: LockEntry) -> Lock:
        """This lock with ``entry`` added or replacing the entry of the same module."""
        new = Lock({**self.entries, entry.module: entry})
        index = self.__dict__.get("file_owners")
        if index is not None:
            # Only the files of the old and new entry change owners (a C-speed dict copy, not
            # a walk over every file of every entry).
            owners = dict(index)
            old = self.entries.get(entry.module)
            for rel in old.files if old else ():
                rest = {m: d for m, d in owners[rel].items() if m != entry.module}
                if rest:
                    owners[rel] = rest
                else:
                    del owners[rel]
            for rel, digest in entry.files.items():
                owners[rel] = {**owners.get(rel, {}), entry.module: digest}
            new.__dict__["file_owners"] = owners
        return new


def _kind(value: object) -> str:
    """What a TOML value is, for a message (``an integer``, ``an array``...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


_HEX64_RE = re.compile(r"[0-9a-f]{64}")


def _is_hex64(value: str) -> bool:
    return _HEX64_RE.fullmatch(value) is not None


# A plain relative path for sure (the common case, one C-speed match per file of the lock):
# no control character, no backslash or colon, no empty, '.', '..' or '~'-led first part.
_PLAIN_REL_RE = re.compile(
    r"(?!~)[^\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff/\\:]+"
    r"(?:/[^\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff/\\]+)*"
)


def _path_problem(rel: str) -> str | None:
    """Why ``rel`` is not a plain project-relative posix path, if it is not one."""
    if _PLAIN_REL_RE.fullmatch(rel) and "/./" not in f"/{rel}/" and "/../" not in f"/{rel}/":
        return None
    return _path_problem_detail(rel)


def _path_problem_detail(rel: str) -> str | None:
    """:func:`_path_problem` without the fast path."""
    bad = unsafe_character(rel)
    if bad is not None:
        return f"it contains {describe_character(bad)}"
    if rel.startswith(("/", "\\", "~")) or (len(rel) > 1 and rel[1] == ":"):
        return "it is absolute"
    if "\\" in rel:
        return "it contains a backslash"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "it is not a plain relative path (empty, '.' or '..' parts)"
    return None


class _EntryReader:
    """Typed access to one ``[micropkg."<module>"]`` table; every problem names the entry."""

    def __init__(self, path: Path, module: str, item: dict[str, Any]) -> None:
        self.path, self.module, self.item = path, module, item

    def error(self, detail: str) -> PullError:
        return PullError(
            f"Cannot read '{self.path.name}': entry '{shown(self.module)}' {detail}; "
            "fix or delete it."
        )

    def string(self, key: str) -> str:
        value = self.optional_string(key)
        if value is None:
            raise self.error(f"has no '{key}'")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.item.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"'{key}' must be a string, got {_kind(value)}")
        bad = unsafe_character(value)
        if bad is not None:
            raise self.error(f"'{key}' contains {describe_character(bad)}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.item.get(key, [])
        if not isinstance(value, list):
            raise self.error(f"'{key}' must be an array of strings, got {_kind(value)}")
        for element in value:
            if not isinstance(element, str):
                raise self.error(f"'{key}' must hold strings only, got {_kind(element)}")
            bad = unsafe_character(element, allow="\t")
            if bad is not None:
                raise self.error(f"'{key}' has a line that contains {describe_character(bad)}")
        return tuple(value)

    def table(self, key: str) -> dict[str, str]:
        value = self.item.get(key, {})
        if not isinstance(value, dict):
            raise self.error(f"'{key}' must be a table of strings, got {_kind(value)}")
        for name, element in value.items():
            if not isinstance(element, str):
                raise self.error(f"'{key}.{shown(name)}' must be a string, got {_kind(element)}")
            bad = unsafe_character(element)
            if bad is not None:
                raise self.error(f"'{key}.{shown(name)}' contains {describe_character(bad)}")
        return dict(value)


def _read_entry(path: Path, module: str, item: object) -> LockEntry:
    if not isinstance(item, dict):
        raise PullError(
            f"Cannot read '{path.name}': entry '{shown(module)}' must be a table, got "
            f"{_kind(item)}; fix or delete it."
        )
    reader = _EntryReader(path, module, item)
    parts = module.split(".")
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        raise reader.error("is not a module path (dotted Python identifiers)")
    source = reader.string("source")
    sha256 = reader.string("sha256")
    package = reader.string("package")
    if not _is_hex64(sha256):
        raise reader.error("'sha256' must be 64 lowercase hex digits")
    if not package.isidentifier() or keyword.iskeyword(package):
        raise reader.error(f"'package' is not a Python package name: '{shown(package)}'")
    files = reader.table("files")
    for rel, digest in files.items():
        problem = _path_problem(rel)
        if problem is not None:
            raise reader.error(f"lists the file '{shown(rel)}': {problem}")
        if not _is_hex64(digest):
            raise reader.error(f"lists the file '{shown(rel)}' with an invalid sha256")
    options = reader.table("options")
    try:  # upgrades pull again with these options: they become paths
        pull_entry(
            source,
            alias=options.get("alias"),
            destination=options.get("destination"),
            env=options.get("env"),
            where="the lock",
        )
    except ManifestError as exc:
        raise reader.error(f"has an invalid option: {exc}") from None
    return LockEntry(
        module=module,
        source=source,
        sha256=sha256,
        version=reader.optional_string("version"),
        package=package,
        options=options,
        requirements=reader.strings("requirements"),
        files=files,
        conflicts=_conflicts(reader),
        requires=reader.strings("requires") if "requires" in item else None,
    )


def _conflicts(reader: _EntryReader) -> tuple[str, ...]:
    """The files a pull wrote with conflict markers (plain relative paths)."""
    conflicts = reader.strings("conflicts")
    for rel in conflicts:
        problem = _path_problem(rel)
        if problem is not None:
            raise reader.error(f"lists the conflicted file '{shown(rel)}': {problem}")
    return conflicts


# The lock as render_lock writes it, line by line: strings without escapes or control
# characters, bare or such quoted keys, inline tables and arrays of such strings.
_STR = r'"([^"\\\x00-\x1f\x7f]*)"'
_HEADER_RE = re.compile(rf"^\[micropkg\.{_STR}(?:\.([A-Za-z0-9_-]+))?\]$")
_KEY_VALUE_RE = re.compile(rf"^(?:([A-Za-z0-9_-]+)|{_STR}) = (.*)$")
_STRING_RE = re.compile(rf"^{_STR}$")
_INT_RE = re.compile(r"^(0|[1-9][0-9]{0,8})$")
_ITEM_RE = re.compile(rf"^    {_STR},$")
_PAIR_RE = re.compile(rf"([A-Za-z0-9_-]+) = {_STR}")


def _parse_written(text: str) -> dict[str, Any] | None:
    """The TOML data of a lock in exactly the shape :func:`render_lock` writes, else None.

    tomllib is pure Python and a third of a no-op ``pull --all`` at N=1,000 went into parsing
    the lock. This reads only a strict subset of TOML whose meaning is plain (one
    ``key = value`` per line, no escapes, each table and key once); anything else, a
    hand-edited lock included, returns None and goes to tomllib, which also reports errors.
    """
    data: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {}
    table: dict[str, Any] = data
    lines = iter(text.split("\n"))
    for line in lines:
        if not line or line.startswith("#"):
            continue
        header = _HEADER_RE.match(line)
        if header is not None:
            module, sub = header[1], header[2]
            micropkg = data.setdefault("micropkg", {})
            if sub is None:
                if module in micropkg:
                    return None
                table = micropkg[module] = tables[module] = {}
            else:
                parent = tables.get(module)
                if parent is None or sub in parent:
                    return None
                table = parent[sub] = {}
            continue
        pair = _KEY_VALUE_RE.match(line)
        if pair is None:
            return None
        key, raw = pair[1] if pair[1] is not None else pair[2], pair[3]
        if key in table or (table is data and key != "version"):
            return None
        value: Any
        if table is data:
            if _INT_RE.match(raw) is None:
                return None
            value = int(raw)
        elif (string := _STRING_RE.match(raw)) is not None:
            value = string[1]
        elif raw == "[]" or raw == "{}":
            value = [] if raw == "[]" else {}
        elif raw == "[":
            value = []
            for item in lines:
                if item == "]":
                    break
                found = _ITEM_RE.match(item)
                if found is None:
                    return None
                value.append(found[1])
            else:
                return None
        elif raw.startswith("{") and raw.endswith("}"):
            pairs = _PAIR_RE.findall(raw)
            rebuilt = ", ".join(f'{k} = "{v}"' for k, v in pairs)
            if f"{{{rebuilt}}}" != raw or len({k for k, _ in pairs}) != len(pairs):
                return None
            value = dict(pairs)
        else:
            return None
        table[key] = value
    return data


def read_lock(path: Path) -> Lock:
    """Read ``micropkg.lock`` (an absent file is an empty lock).

    Every value is type-checked and every file is a plain relative path (no absolute path, no
    ``..``): a broken or hostile lock is a :class:`PullError` naming the entry.
    :func:`check_lock_paths` then checks the paths against a project's roots.
    """
    try:
        text = path.read_bytes().decode("utf-8")
        data = _parse_written(text)
        if data is None:
            data = tomllib.loads(text)
    except FileNotFoundError:
        return Lock()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PullError(f"Cannot read '{path}': {exc}; fix or delete it.") from exc
    version = data.get("version", LOCK_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise PullError(
            f"Cannot read '{path}': 'version' must be an integer, got {_kind(version)}; "
            "fix or delete it."
        )
    if version > LOCK_VERSION:
        raise PullError(
            f"Cannot read '{path}': it is a version {version} lock, written by a newer "
            "micropkg-tasks; upgrade micropkg-tasks."
        )
    raw = data.get("micropkg", {})
    if not isinstance(raw, dict):
        raise PullError(f"Cannot read '{path}': [micropkg] must be a table, got {_kind(raw)}.")
    return Lock({module: _read_entry(path, module, item) for module, item in raw.items()})


def check_lock_paths(lock: Lock, project: Project) -> None:
    """Refuse a lock whose files are not inside the project's package, tests or conf folders.

    Pulls delete and overwrite the files a lock lists, so each one must be, lexically and once
    symbolic links are followed, inside ``src/<package>``, the tests folder or ``conf``. Each
    distinct folder is resolved once (a lock lists thousands of files in few folders).
    """
    roots = [project.package_dir, project.tests_dir, project.conf_root]
    prefixes = [project.rel(root) + "/" for root in roots]
    resolved = [str(root.resolve()) for root in roots]
    real_folders: dict[str, str] = {"": str(project.root.resolve())}

    def real(folder: str) -> str:
        # Component by component, each folder once: one lstat per distinct folder, where
        # Path.resolve() stats every component of every folder (a third of a no-op pull).
        # Lock paths hold no '.', '..' or empty parts (read_lock checked them).
        found = real_folders.get(folder)
        if found is None:
            parent, _, name = folder.rpartition("/")
            found = os.path.join(real(parent), name)
            if os.path.islink(found):
                found = os.path.realpath(found)
            real_folders[folder] = found
        return found

    def problem(folder: str) -> str | None:
        # ``rel`` starts with a prefix ("src/pkg/") exactly when its folder plus "/" does.
        index = next((i for i, p in enumerate(prefixes) if (folder + "/").startswith(p)), None)
        if index is None:
            return (
                "it is outside the folders a pull writes to ("
                + ", ".join(p.rstrip("/") for p in prefixes)
                + ")"
            )
        where, root = real(folder), resolved[index]
        if where == root or where.startswith(root.rstrip(os.sep) + os.sep):
            return None
        return "it leads outside the project's folders through a symbolic link"

    checked: dict[str, str | None] = {}  # folder → its problem, each distinct folder once
    for entry in lock.entries.values():
        for rel in (*entry.files, *entry.conflicts):
            folder = rel.rpartition("/")[0]
            if folder in checked:
                detail = checked[folder]
            else:
                detail = checked[folder] = problem(folder)
            if detail is not None:
                raise PullError(
                    f"Cannot use '{LOCK_NAME}': entry '{shown(entry.module)}' lists the file "
                    f"'{shown(rel)}': {detail}; fix or delete the entry."
                )


def read_project_lock(project: Project) -> Lock:
    """:func:`read_lock` of the project's ``micropkg.lock`` plus :func:`check_lock_paths`."""
    lock = read_lock(project.root / LOCK_NAME)
    check_lock_paths(lock, project)
    return lock


_HEADER = (
    "# Written by `micropkg pull`: what was pulled and every file written.\n"
    "# Commit it: the next pull uses it to upgrade files and spot local edits.\n"
    f"version = {LOCK_VERSION}\n"
)
# module -> (the entry, its rendered block): a pull re-renders only the entry it changed, so
# writing the lock after each of N pulls costs O(N) string joins, not O(N) renders.
_BLOCKS: dict[str, tuple[LockEntry, bytes]] = {}
_HEADER_BYTES = _HEADER.encode("utf-8")


def _render_entry(entry: LockEntry) -> str:
    q = toml_string
    key = q(entry.module)
    lines = [
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
    if entry.requires:
        lines += ["requires = [", *(f"    {q(r)}," for r in entry.requires), "]"]
    elif entry.requires is not None:
        lines.append("requires = []")
    if entry.conflicts:
        lines += ["conflicts = [", *(f"    {q(r)}," for r in entry.conflicts), "]"]
    lines += ["", f"[micropkg.{key}.files]"]
    lines += [f"{q(rel)} = {q(entry.files[rel])}" for rel in sorted(entry.files)]
    return "\n".join(lines) + "\n"


def _block(entry: LockEntry) -> bytes:
    cached = _BLOCKS.get(entry.module)
    if cached is not None and cached[0] is entry:
        return cached[1]
    text = _render_entry(entry).encode("utf-8")
    _BLOCKS[entry.module] = (entry, text)
    return text


def render_lock(lock: Lock) -> str:
    """The TOML text of ``lock``: stable order, so re-pulls leave it byte-identical.

    Written by hand (strings, string arrays and tables only): this runs on every pull and
    tomlkit's document model costs far more than the pull itself. Each entry's block is
    rendered once per entry object and reused by the next pulls of the same run.
    """
    return render_lock_bytes(lock).decode("utf-8")


def render_lock_bytes(lock: Lock) -> bytes:
    """:func:`render_lock`, encoded: what the lock file holds. The blocks are kept encoded, so
    writing the lock after each pull copies its bytes once (no join, concatenation, encode)."""
    return b"".join(itertools.chain((_HEADER_BYTES,), _sorted_blocks(lock.entries)))


# The last rendering: (a copy of its entries, their sorted modules, their blocks in that order). The
# next pull's lock differs from it by one entry, so only that entry is re-rendered and put in
# place (a bisection), instead of sorting and looking up all N blocks on each of N pulls.
_LAST: tuple[dict[str, LockEntry], list[str], list[bytes]] | None = None
_LAST_MUTEX = threading.Lock()


def _sorted_blocks(entries: dict[str, LockEntry]) -> list[bytes]:
    """The blocks of ``entries`` in the order of their modules."""
    global _LAST
    with _LAST_MUTEX:
        last = _LAST
        changed = None
        if last is not None and len(entries) - len(last[0]) in (0, 1):
            before = last[0]
            changed = [m for m, e in entries.items() if before.get(m) is not e]
            added = sum(1 for m in changed if m not in before)
            if len(changed) > 8 or len(before) + added != len(entries):
                changed = None  # entries were removed, or many changed: render afresh
        if changed is None:
            modules = sorted(entries)
            blocks = [_block(entries[module]) for module in modules]
        else:
            modules, blocks = list(last[1]), list(last[2])  # type: ignore[index]
            for module in changed:
                at = bisect.bisect_left(modules, module)
                if at < len(modules) and modules[at] == module:
                    blocks[at] = _block(entries[module])
                else:
                    modules.insert(at, module)
                    blocks.insert(at, _block(entries[module]))
        _LAST = (dict(entries), modules, blocks)  # a copy: a caller may change its dict later
        return blocks


_Signature = tuple[int, int, int, int] | None


def _signature(path: Path) -> _Signature:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def pending_line(entry: LockEntry) -> bytes:
    """The line recording ``entry`` in the pending log: a newline, then one JSON object (a
    line torn by a crash never runs into the next one, which starts on its own line)."""
    item: dict[str, Any] = {
        "source": entry.source,
        "sha256": entry.sha256,
        "package": entry.package,
        "options": entry.options,
        "requirements": list(entry.requirements),
        "files": entry.files,
    }
    if entry.version is not None:
        item["version"] = entry.version
    if entry.requires is not None:
        item["requires"] = list(entry.requires)
    if entry.conflicts:
        item["conflicts"] = list(entry.conflicts)
    record = {"module": entry.module, "entry": item}
    return b"\n" + json.dumps(record, separators=(",", ":")).encode("ascii")


def _pending_entries(
    path: Path, data: bytes, *, complete: bool, first_line: int = 1
) -> tuple[list[LockEntry], int]:
    """The entries of the pending log's bytes ``data`` (starting at line ``first_line`` of the
    file, counted from 1), and how many bytes were read whole.

    A line that is not JSON was torn by a crash or a full disk (its transaction, still
    journaled, appends it again) and is skipped; the last one is left unread unless
    ``complete`` (a writer may still be appending it). A whole line that is not an entry is
    refused like a broken lock: it would become one.
    """
    entries: list[LockEntry] = []
    read = 0
    lines = data.split(b"\n")
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        try:
            record = json.loads(line) if line else None
        except ValueError:
            if last and not complete:
                return entries, read
            record = None
        except RecursionError:
            record = False  # whole, nested too deep to be an entry
        if record is not None:
            if not (isinstance(record, dict) and isinstance(record.get("module"), str)):
                raise PullError(
                    f"Cannot read '{path.name}': line {first_line + index} is not a pulled "
                    "entry; fix or delete it."
                )
            entries.append(_read_entry(path, record["module"], record.get("entry")))
        read += len(line) + (0 if last else 1)
    return entries, read


class LockFile:
    """``micropkg.lock`` as one run sees it: parsed once, not once per entry.

    ``current()`` re-parses only when the file on disk is no longer the one this object read or
    wrote (another process replaced it, e.g. a parallel ``-P process`` worker); ``mutex``
    serialises the read-modify-write of pulls that run in threads.

    ``deferred`` (a ``pull --all`` run): instead of rewriting the whole lock, each pull's
    transaction appends its entry to the pending log (``.micropkg/lock.pending.jsonl``) when
    it commits; :meth:`flush` writes the lock once at the end of the run and deletes the log.
    :meth:`current` always includes the log's entries (other processes of the run append to
    it), and recovery (:func:`merge_pending`) writes a log a killed run left.
    """

    def __init__(self, project: Project, *, deferred: bool = False) -> None:
        self.project = project
        self.path = project.root / LOCK_NAME
        self.pending = project.state_dir / PENDING_NAME
        self.deferred = deferred
        self.mutex = threading.RLock()
        self._lock: Lock | None = None
        self._signature: _Signature = None
        self._sources: collections.Counter[str] | None = None  # source → entries pulling it
        # The log's inode, the bytes applied from it, and the line they end on (from 1).
        self._pending_at: tuple[int, int, int] | None = None
        self._merged: set[str] = set()  # modules applied from the log since the lock was read
        self._dirty = False  # a pull committed since the last flush
        self._closed = False  # the run's end (:meth:`close`) came
        self._failure: PullError | None = None  # why :meth:`close` could not write the lock
        self._cached: tuple[_Signature, frozenset[str] | None] | None = None
        """The lock's signature when the sources file was last read, and its sources."""

    def current(self) -> Lock:
        """The lock as it is on disk, with the pending log's entries (an absent file is an
        empty lock)."""
        with self.mutex:
            signature = _signature(self.path)
            if self._lock is None or signature != self._signature:
                self._lock = read_project_lock(self.project)
                self._signature = signature
                self._sources = None
                self._pending_at = None
                self._merged = set()
            self._apply_pending()
            return self._lock

    def _apply_pending(self, *, complete: bool = False) -> None:
        try:
            st = os.stat(self.pending)
        except FileNotFoundError:
            return
        inode, offset, line = self._pending_at or (st.st_ino, 0, 1)
        if inode != st.st_ino:
            offset, line = 0, 1  # a new log: the old one was written to the lock, which we re-read
        if st.st_size == offset:
            return
        try:
            with open(self.pending, "rb") as stream:
                stream.seek(offset)
                data = stream.read()
        except OSError as exc:
            where = self.project.rel(self.pending)
            why = exc.strerror or exc
            raise PullError(f"Cannot read '{where}': {why}; fix or delete it.") from exc
        entries, read = _pending_entries(self.pending, data, complete=complete, first_line=line)
        if entries:
            check_lock_paths(Lock({e.module: e for e in entries}), self.project)
            assert self._lock is not None
            for entry in entries:
                if self._lock.entries.get(entry.module) != entry:
                    self._merged.add(entry.module)
                    self._lock = self._lock.with_entry(entry)
            self._sources = None
        self._pending_at = (st.st_ino, offset + read, line + data.count(b"\n", 0, read))

    def has_source(self, source: str) -> bool:
        """Whether an entry of :meth:`current` was pulled from ``source``.

        Until the lock is needed whole, the sources come from ``.micropkg/lock-sources.json``
        when it was written for the lock file now on disk (the same inode, size and times)
        and no pending log exists: a run with nothing to pull (1,000 up-to-date checks) then
        never parses the lock.
        """
        with self.mutex:
            if self._lock is None:
                cached = self._cached_sources()
                if cached is not None:
                    return source in cached
            lock = self.current()
            if self._sources is None:
                self._sources = collections.Counter(e.source for e in lock.entries.values())
                self._save_sources(lock)
            return self._sources[source] > 0

    def _cached_sources(self) -> frozenset[str] | None:
        signature = _signature(self.path)
        if signature is None or os.path.exists(self.pending):
            return None
        if self._cached is None or self._cached[0] != signature:
            self._cached = (signature, _read_sources(self.sources_path, signature))
        return self._cached[1]

    @property
    def sources_path(self) -> Path:
        """Where the sources of the lock on disk are kept (see :meth:`has_source`)."""
        return self.project.state_dir / SOURCES_NAME

    def _save_sources(self, lock: Lock) -> None:
        """Keep ``lock``'s sources for the next run, when it is the lock on disk."""
        signature = _signature(self.path)
        if signature is None or signature != self._signature or os.path.exists(self.pending):
            return
        if _read_sources(self.sources_path, signature) is not None:
            return
        data = {
            "lock": list(signature),
            "sources": sorted({e.source for e in lock.entries.values()}),
        }
        with contextlib.suppress(OSError):  # only a shortcut: the next run reads the lock
            atomic_write(self.sources_path, json.dumps(data))

    def written(self, base: Lock, entry: LockEntry, appended: bytes | None = None) -> Lock:
        """Record that the file on disk now holds ``base`` (the lock the pull planned against)
        with ``entry`` added or replacing its module's: we just wrote it (or, ``deferred``,
        appended ``appended`` to the pending log). Returns that lock.

        The sources are updated for that entry only: a ``pull --all`` never rebuilds them.
        """
        with self.mutex:
            lock = base.with_entry(entry)
            if self._sources is not None and base is self._lock:
                previous = base.entries.get(entry.module)
                if previous is not None:
                    self._sources[previous.source] -= 1
                self._sources[entry.source] += 1
            else:
                self._sources = None
            self._lock = lock
            self._dirty = True
            if not self.deferred:
                self._signature = _signature(self.path)
            elif appended is not None:
                # Our own line needs no reading back, when it is the only one since ours.
                inode, offset, line = self._pending_at or (0, 0, 1)
                st = os.stat(self.pending)
                line += appended.count(b"\n")
                if self._pending_at is None and st.st_size == len(appended):
                    self._pending_at = (st.st_ino, st.st_size, line)
                elif inode == st.st_ino and st.st_size == offset + len(appended):
                    self._pending_at = (inode, st.st_size, line)
            return lock

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """:meth:`flush` when the run ends, the first time only: every pull task's doit
        ``teardown`` calls it, and the CLI after the run. Its error is raised again by every
        later call."""
        with self.mutex:
            if not self._closed:
                self._closed = True
                try:
                    self.flush()
                except PullError as exc:
                    self._failure = exc
            if self._failure is not None:
                raise self._failure

    def flush(self) -> int:
        """Write the lock with the pending log's entries, then delete the log (a no-op unless
        a pull committed or a log is left). Returns how many micro-packages of the lock on
        disk the log's entries added or changed.

        Under the project folder's ``flock``, which every pull's transaction holds: no line is
        appended between the reading and the deleting. The lock is written atomically first,
        so a crash in between leaves a log whose entries the lock already holds: writing them
        again gives the same lock.
        """
        with self.mutex:
            if not self._dirty and not os.path.exists(self.pending):
                return 0
            with folder_lock(self.project.root):
                self.current()  # what other processes wrote and appended meanwhile
                self._apply_pending(complete=True)  # nobody appends now: a bad end is torn
                assert self._lock is not None
                lock, merged = self._lock, len(self._merged)
                data = render_lock_bytes(lock)
                try:
                    if read_if_exists(self.path) != data:
                        fault("lock-write")
                        atomic_write(self.path, data)
                    fault("lock-written")
                    self.pending.unlink(missing_ok=True)
                except OSError as exc:
                    raise PullError(
                        f"Cannot write '{LOCK_NAME}' ({exc}); what was pulled is recorded in "
                        f"'{self.project.rel(self.pending)}', which the next micropkg command "
                        "writes to it."
                    ) from exc
                self._signature = _signature(self.path)
                self._pending_at = None
                self._merged = set()
                self._dirty = False
                self._save_sources(lock)
                return merged


def _read_sources(path: Path, signature: _Signature) -> frozenset[str] | None:
    """The sources kept in ``path`` for the lock whose signature is ``signature`` (None: no
    file, another lock's, or not what we write)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("lock") != list(signature or ()):
        return None
    sources = data.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        return None
    return frozenset(sources)


def merge_pending(project: Project) -> int:
    """Write the entries of a pending log a killed ``pull --all`` left into the lock (see
    :class:`LockFile`); returns how many micro-packages that added or changed (0: none, or
    no log)."""
    if not (project.state_dir / PENDING_NAME).exists():
        return 0
    return LockFile(project, deferred=True).flush()
