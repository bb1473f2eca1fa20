"""Crash-safe multi-file changes (the pull transaction), and recovery after a crash.

The protocol follows SQLite's rollback journal and git's lock-file discipline:

1. **Journal.** ``.micropkg/journal.json`` lists every target with its staged file, its backup,
   whether it existed and the sha256 of its new content (none for a removal), and every folder
   the transaction creates. It is written to a temporary file, renamed into place (and fsynced
   with ``MICROPKG_FSYNC=1``) before anything in the project changes, so every temporary name
   is registered before it is created.
2. **Stage.** Folders are created; each new content goes to ``.<name>.micropkg-tmp`` beside its
   target (same folder, so the renames below are atomic).
3. **Swap.** Each existing target is renamed to ``.<name>.micropkg-bak``, then its staged file
   is renamed over it; a file to remove is renamed to its backup.
4. **Commit point.** The journal is renamed to ``journal.committed.json``.
5. **Clean up.** The transaction's line, if any, is appended to the pending lock entries
   (``pull --all``: :class:`~micropkg_tasks.lockfile.LockFile`); backups are deleted, emptied
   folders pruned, the journal deleted.

Any error or signal before 4 rolls back in the same process. After a crash, :func:`recover`,
called by the next command once it holds the project lock, rolls back a journal that was not
committed and finishes one that was, then writes the pending lock entries into the lock. All
are idempotent: a crash during recovery is recovered
by the next run. So after a SIGKILL anywhere, once the next command has started, the project is
exactly its old state or exactly its new one, and none of our temporary files are left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PullError
from .faults import fault
from .fsutil import durable, folder_lock, remove_if_unheld, sha256_file, sha256_of
from .lockfile import LOCK_NAME, LOCK_TEMP_RE, PENDING_NAME, merge_pending
from .project import Project
from .state import ensure_state_dir, project_lock

__all__ = [
    "BACKUP_SUFFIX",
    "STAGED_SUFFIX",
    "Write",
    "apply",
    "backup_path",
    "folders_to_create",
    "is_our_temp",
    "recover",
    "recovered_lock",
    "relative_paths",
    "remove_partial_tarballs",
    "staged_path",
]

STAGED_SUFFIX = ".micropkg-tmp"
BACKUP_SUFFIX = ".micropkg-bak"
JOURNAL = "journal.json"
COMMITTED = "journal.committed.json"
_FORMAT = 1
# A tarball being written by ``package``: ``.<name>.tar.gz.<8 hex>.tmp`` (sdist writer).
_TARBALL_TEMP_RE = re.compile(r"^\.(?P<name>.+\.tar\.gz)\.[0-9a-f]{8}\.tmp$")
# Ours in the state folder: the journal's (``.journal.json.micropkg-tmp``) and atomic writes'.
_STATE_TEMP_RE = re.compile(r"^\..+\.micropkg-tmp$")


@dataclass(frozen=True)
class Write:
    """New content for ``target`` (created, or replaced keeping its mode)."""

    target: Path
    data: bytes | Path
    """The new bytes, or a file to copy them from in chunks (a large file: never held whole)."""
    executable: bool = False
    """Set the executable bits (where the mode has read bits), as the sdist member had."""


def staged_path(target: Path) -> Path:
    """Where the new content of ``target`` is staged: ``.<name>.micropkg-tmp`` beside it."""
    return target.with_name(f".{target.name}{STAGED_SUFFIX}")


def backup_path(target: Path) -> Path:
    """Where the old ``target`` waits for the commit: ``.<name>.micropkg-bak`` beside it."""
    return target.with_name(f".{target.name}{BACKUP_SUFFIX}")


def is_our_temp(name: str) -> bool:
    """Whether a file name is one of our staged or backup names (never packaged)."""
    return name.startswith(".") and name.endswith((STAGED_SUFFIX, BACKUP_SUFFIX))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(src: Path, dst: Path) -> None:
    # Every rename of a transaction goes through here (tests inject failures).
    os.replace(src, dst)


# --------------------------------------------------------------------------- the journal


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def relative_paths(
    root: Path, outside: Callable[[Path], str] | None = None
) -> Callable[[Path], str]:
    """A function giving the POSIX path of a path below ``root`` relative to it (what
    ``relative_to(root).as_posix()`` gives), by cutting the root's text off the path's: pathlib's
    ``relative_to`` on every file was a tenth of a pull. Other paths go to ``outside`` (by
    default ``relative_to``, which raises ``ValueError``)."""
    prefix = os.path.join(str(root), "")
    size = len(prefix)
    slow = outside or (lambda path: _rel(root, path))

    def rel(path: Path) -> str:
        text = str(path)
        if os.sep == "/" and text.startswith(prefix):
            return text[size:]
        return slow(path)

    return rel


def _temp_rel(rel: str, suffix: str) -> str:
    """The relative path of :func:`staged_path` or :func:`backup_path` (by ``suffix``) of the
    file at ``rel``."""
    folder, slash, name = rel.rpartition("/")
    return f"{folder}{slash}.{name}{suffix}"


def _write_journal(state_dir: Path, record: dict[str, Any]) -> Path:
    """Write the journal atomically (temp file, rename); return its path."""
    ensure_state_dir(state_dir.parent)
    journal = state_dir / JOURNAL
    temp = staged_path(journal)
    # One line: with an indent, json encodes in Python, not C (a tenth of a millisecond a pull).
    data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _write_all(fd, data)
            if durable():
                os.fsync(fd)
        finally:
            os.close(fd)
        fault("journal-staged")
        _replace(temp, journal)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(journal)) from exc
        raise
    if durable():
        _fsync_dir(state_dir)
    return journal


def _copy_into(fd: int, source: Path) -> None:
    with source.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            _write_all(fd, block)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _load(path: Path, root: Path) -> dict[str, Any]:
    """Read and check a journal: every path must be inside ``root`` and named as we name it."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        files = record["files"]
        created = record["created"]
        prune = record["prune"]
        ok = (
            record.get("format") == _FORMAT
            and isinstance(record.get("what"), str)
            and isinstance(files, list)
            and isinstance(created, list)
            and isinstance(prune, list)
        )
        for item in files:
            target = _inside(root, item["target"])
            ok = (
                ok
                and item["staged"] == _rel(root, staged_path(target))
                and item["backup"] == _rel(root, backup_path(target))
                and isinstance(item["existed"], bool)
                and (item["sha256"] is None or isinstance(item["sha256"], str))
            )
        for rel in (*created, *prune):
            _inside(root, rel)
        append = record.get("append")
        if append is not None:
            line = append["line"]
            ok = (
                ok
                and root / append["file"] == path.parent / PENDING_NAME
                and isinstance(line, str)
                and line.startswith("\n")
                and "\n" not in line[1:]
                and line.isascii()
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PullError(
            f"Cannot read the journal of an interrupted pull '{path}' ({exc}); "
            "restore the project from version control and delete that file."
        ) from exc
    if not ok:
        raise PullError(
            f"The journal of an interrupted pull '{path}' is not one micropkg wrote; "
            "restore the project from version control and delete that file."
        )
    return dict(record)


def _inside(root: Path, rel: object) -> Path:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in rel.split("/"):
        raise ValueError(f"path {rel!r} is not inside the project")
    return root / rel


# --------------------------------------------------------------------------- rollback, finish


def _rollback(root: Path, record: dict[str, Any]) -> None:
    """Undo every step of an uncommitted transaction (idempotent)."""
    for item in reversed(record["files"]):
        target = root / item["target"]
        staged = root / item["staged"]
        backup = root / item["backup"]
        if os.path.lexists(backup):
            _replace(backup, target)
        elif (
            not item["existed"]
            and item["sha256"] is not None
            and not os.path.lexists(staged)
            and target.is_file()
            and not target.is_symlink()
            and sha256_file(target) == item["sha256"]
        ):
            target.unlink()  # a file this transaction created
        staged.unlink(missing_ok=True)
        fault("rollback")
    for rel in reversed(record["created"]):
        with contextlib.suppress(OSError):
            (root / rel).rmdir()


def _append(root: Path, record: dict[str, Any]) -> None:
    """Append a committed transaction's line to its log (the pending lock entries): done
    again by recovery when a crash may have come first, so the line may be there twice."""
    append = record.get("append")
    if append is None:
        return
    fault("append")
    fd = os.open(root / append["file"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        _write_all(fd, append["line"].encode("ascii"))
        if durable():
            os.fsync(fd)
    finally:
        os.close(fd)
    fault("appended")


def _finish(root: Path, record: dict[str, Any], *, backups: Collection[str] | None = None) -> None:
    """Complete a committed transaction: delete backups and prune emptied folders.

    ``backups``: the backups that exist, when the process that committed knows it (then no
    staged file is left either: each was renamed into place before the commit).
    """
    for item in record["files"]:
        if backups is None or item["backup"] in backups:
            (root / item["backup"]).unlink(missing_ok=True)
        if backups is None:
            (root / item["staged"]).unlink(missing_ok=True)
        fault("cleanup")
    for rel in record["prune"]:
        with contextlib.suppress(OSError):
            (root / rel).rmdir()


# --------------------------------------------------------------------------- apply


def folders_to_create(root: Path, targets: Iterable[Path]) -> list[Path]:
    """Folders to create for ``targets``, parents first.

    A file (or a link to one) where a folder must go raises ``PullError`` naming it.
    """
    # Folders as strings (os.path.dirname, not Path.parent): two calls per pull walked up
    # from every target, building a path object per step.
    missing: dict[str, None] = {}
    known: set[str] = set()
    top = str(root)
    prefix = os.path.join(top, "")
    for target in targets:
        chain = []
        folder = os.path.dirname(str(target))
        while (
            folder not in known
            and folder != top
            and (folder.startswith(prefix) or root in Path(folder).parents)
        ):
            if os.path.isdir(folder):
                known.add(folder)
                break
            if os.path.lexists(folder):
                raise PullError(f"'{_rel(root, Path(folder))}' is a file where a folder must go.")
            chain.append(folder)
            folder = os.path.dirname(folder)
        known.update(chain)
        for item in reversed(chain):
            missing.setdefault(item, None)
    return [Path(folder) for folder in missing]


def _stage(write: Write, staged: Path, existing_mode: int | None) -> None:
    """Write ``write.data`` to ``staged`` with the target's final mode.

    An ``OSError`` names the target (``File too large: src/pkg/x.py``).
    """
    base = 0o777 if write.executable else 0o666
    try:
        # O_EXCL: the journal registered this name; anything already there is not ours.
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, base)
        try:
            if existing_mode is not None:
                mode = existing_mode
                if write.executable:
                    mode |= (mode & 0o444) >> 2
                os.fchmod(fd, mode)
            if isinstance(write.data, Path):
                _copy_into(fd, write.data)
            else:
                _write_all(fd, write.data)
            if durable():
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(write.target)) from exc


def apply(
    root: Path,
    state_dir: Path,
    writes: Sequence[Write],
    removals: Sequence[Path],
    *,
    what: str,
    prune: Sequence[Path] = (),
    append: bytes | None = None,
) -> None:
    """Write ``writes`` and delete ``removals`` below ``root`` as one crash-safe transaction.

    ``what`` names the transaction in recovery messages (``pull of 'pipelines.ds'``);
    ``prune`` lists folders to remove after the commit if they are then empty (deepest first);
    ``append``: a line (a newline, then ASCII) to append to the pending lock entries
    (``.micropkg/lock.pending.jsonl``) once the transaction commits, and only then.
    On any error (or signal) before the commit point everything is rolled back and the error
    is re-raised; if the rollback itself fails, a ``PullError`` says the next command
    finishes it.
    """
    targets = [w.target for w in writes]
    folders = folders_to_create(root, targets)
    unborn = {str(folder) for folder in folders}  # nothing can be in these yet
    rel = relative_paths(root)
    existing: dict[Path, int | None] = {}
    temps: dict[Path, tuple[Path, Path]] = {}  # target -> (staged, backup)
    rels: dict[Path, str] = {}
    for path in (*targets, *removals):
        temps[path] = staged, backup = staged_path(path), backup_path(path)
        rels[path] = rel(path)
        if os.path.dirname(path) in unborn:
            existing[path] = None
            continue
        try:
            existing[path] = stat.S_IMODE(os.lstat(path).st_mode)
        except FileNotFoundError:
            existing[path] = None
        for temp in (staged, backup):
            if os.path.lexists(temp):
                raise PullError(
                    f"'{_rel(root, temp)}' is in the way (not written by this micropkg run); "
                    "delete it and pull again."
                )
    record = {
        "format": _FORMAT,
        "what": what,
        "created": [rel(f) for f in folders],
        "prune": [rel(f) for f in prune],
        "files": [
            {
                "target": rels[path],
                "staged": _temp_rel(rels[path], STAGED_SUFFIX),
                "backup": _temp_rel(rels[path], BACKUP_SUFFIX),
                "existed": existing[path] is not None,
                "sha256": data,
            }
            for path, data in (
                *((w.target, sha256_of(w.data)) for w in writes),
                *((p, None) for p in removals),
            )
        ],
    }
    if append is not None:
        record["append"] = {"file": rel(state_dir / PENDING_NAME), "line": append.decode("ascii")}
    # A committed transaction of this run whose clean-up failed (its line not appended): done
    # first, as recovery would, since the commit below would replace its journal.
    _finish_committed(root, state_dir)
    journal = _write_journal(state_dir, record)
    try:
        fault("journal")
        for folder in folders:
            folder.mkdir()
            fault("mkdir")
        for write in writes:
            _stage(write, temps[write.target][0], existing[write.target])
            fault("stage")
        for write in writes:
            staged, backup = temps[write.target]
            if existing[write.target] is not None:
                _replace(write.target, backup)
                fault("backup")
            _replace(staged, write.target)
            fault("place")
        for path in removals:
            if existing[path] is not None:
                _replace(path, temps[path][1])
                fault("backup")
        if durable():
            for folder in {p.parent for p in (*targets, *removals)}:
                _fsync_dir(folder)
        fault("commit")
        committed = state_dir / COMMITTED
        _replace(journal, committed)
    except BaseException as exc:
        try:
            _rollback(root, record)
            journal.unlink(missing_ok=True)
        except BaseException as undo_exc:
            raise PullError(
                f"The pull failed ({exc}) and could not be rolled back ({undo_exc}); the next "
                "micropkg command in this project finishes the rollback."
            ) from exc
        raise
    if durable():
        _fsync_dir(state_dir)
    fault("committed")
    try:
        _append(root, record)
    except OSError as exc:  # the committed journal stays: the next command appends the line
        raise PullError(
            f"The {what} was written but could not be recorded ({exc}); the next micropkg "
            "command in this project records it."
        ) from exc
    with contextlib.suppress(OSError):  # on failure the next command finishes the cleanup
        moved = {
            _temp_rel(rels[p], BACKUP_SUFFIX) for p, mode in existing.items() if mode is not None
        }
        _finish(root, record, backups=moved)
        committed.unlink()
        fault("done")


# --------------------------------------------------------------------------- recovery


def _remove_unheld(folder: Path, names: Iterable[str], pattern: re.Pattern[str]) -> list[Path]:
    """Delete the files of ``folder`` named like ``pattern`` that no live process holds (our
    writers hold their temporary file until they rename it: :func:`.fsutil.hold`)."""
    return [
        folder / name
        for name in sorted(names)
        if pattern.match(name) and remove_if_unheld(folder / name)
    ]


def remove_partial_tarballs(folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Delete tarballs a killed ``package`` left half-written in ``folder`` (ours only:
    ``.<name>.tar.gz.<8 hex>.tmp`` that no live process holds). ``names``: the folder's
    listing, when the caller has it."""
    if names is None:
        try:
            with os.scandir(folder) as entries:
                names = [entry.name for entry in entries]
        except OSError:
            return []
    # Exclusive against writers creating their temporary file (``atomic_writer``'s
    # ``shared_folder``): a parallel ``package`` run's file is held before it can be seen here.
    try:
        with folder_lock(folder):
            return _remove_unheld(folder, names, _TARBALL_TEMP_RE)
    except OSError:  # no such folder (yet): nothing to remove
        return []


def _remove_state_temps(state_dir: Path) -> list[Path]:
    """Our temporary files in the state folder (cache copies, records) nobody holds."""
    removed: list[Path] = []
    for dirpath, _, filenames in os.walk(state_dir):
        removed += _remove_unheld(Path(dirpath), filenames, _STATE_TEMP_RE)
    return removed


@contextlib.contextmanager
def recovered_lock(project: Project, *, create: bool = True) -> Iterator[str | None]:
    """Hold the project lock (:func:`micropkg_tasks.state.project_lock`) for the ``with``
    block; when this call took it, first finish or roll back a pull interrupted by a crash.
    Yields the line saying what was recovered (None: nothing). Every command takes the lock
    through here, so recovery runs before anything else looks at the project.
    """
    with project_lock(project, create=create) as taken:
        yield recover(project) if taken else None


def recover(project: Project) -> str | None:
    """Finish or roll back a pull interrupted by a crash; remove our litter. Call with the
    project lock held. Returns one line saying what was done, or ``None`` when nothing was.
    """
    try:
        notes = _recover(project)
    except OSError as exc:
        raise PullError(
            f"Cannot recover the interrupted pull recorded in '{project.rel(project.state_dir)}' "
            f"({exc}); fix that and run the command again."
        ) from exc
    if not notes:
        return None
    return "Recovered: " + "; ".join(notes) + "."


def _finish_committed(root: Path, state_dir: Path) -> str | None:
    """Finish the committed transaction whose journal is left, if any (its line appended,
    its backups deleted); return what it was."""
    committed = state_dir / COMMITTED
    if not committed.is_file():
        return None
    record = _load(committed, root)
    _append(root, record)
    _finish(root, record)
    committed.unlink()
    return str(record["what"])


def _recover(project: Project) -> list[str]:
    root, state_dir = project.root, project.state_dir
    notes: list[str] = []
    pending = state_dir / JOURNAL
    what = _finish_committed(root, state_dir)
    if what is not None:
        notes.append(f"completed the interrupted {what} (it had reached its commit)")
    if pending.is_file():
        record = _load(pending, root)
        _rollback(root, record)
        pending.unlink()
        notes.append(f"rolled back the interrupted {record['what']}; the project is as before it")
    log = state_dir / PENDING_NAME
    had_log = log.exists()
    merged = merge_pending(project)
    if merged:
        notes.append(
            f"wrote the {merged} micro-package(s) the interrupted pull had pulled to {LOCK_NAME}"
        )
    # A log whose entries the lock already held (killed right after writing it): deleted.
    litter = [log] if had_log and not merged else []
    litter += remove_partial_tarballs(root / "dist")
    with contextlib.suppress(OSError):  # a lock written when the run was killed
        litter += _remove_unheld(root, os.listdir(root), LOCK_TEMP_RE)
    # A journal never renamed into place (nothing was staged yet), cache copies, records.
    litter += _remove_state_temps(state_dir)
    compiled = staged_path(project.requirements_txt)  # a compile's staged output
    if compiled.is_file():
        compiled.unlink()
        litter.append(compiled)
    if litter:
        names = ", ".join(project.rel(p) for p in litter)
        notes.append(f"removed what an interrupted run left: {names}")
    return notes
