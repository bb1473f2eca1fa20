"""Which tarball each manifest entry wrote last: one append-only log in the state folder.

``package`` removes the tarball an entry wrote last time under another alias or destination,
so it must remember that tarball. A record is written only when an entry's tarball changes
(its first build, a new version, alias or destination), as one line appended to
``.micropkg/package/tarballs.jsonl``: no file is created per entry, which on a cold run of
thousands of entries cost about a tenth of the main process.

* Each record is one ``write`` of ``"\\n" + JSON`` to the file opened with ``O_APPEND``: the
  records of the processes of one run (doit ``-P process``) never interleave; one torn by a
  crash or a full disk is a line of its own, skipped when read, since the next record starts on
  a new line. A lost record only means a stale tarball stays in ``dist/``.
* The log is read once per run (per process), when the first entry is built; the last record
  of an entry wins. When it holds many superseded or unreadable lines, the process that made
  the log object (not a forked doit worker, which may append meanwhile) rewrites it
  atomically with one record per entry. One run at a time holds the project (:mod:`.state`),
  so no other run appends meanwhile.
* ``<entry>.last`` files, one per entry, are what earlier versions wrote: read when the log
  has no record of the entry, and deleted once it has one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from pathlib import Path

from .fsutil import atomic_write

__all__ = ["LOG_NAME", "TarballLog", "TarballRecord"]

LOG_NAME = "tarballs.jsonl"
_LEGACY_SUFFIX = ".last"
#: Rewrite the log when it holds more than twice its entries' lines plus this many.
_SLACK = 64

TarballRecord = tuple[str, str | None]
"""(the tarball: relative to the project root, or absolute; the root that wrote an absolute
path, None when unknown: a bare absolute path of an older version)."""


class TarballLog:
    """The records of the state folder ``folder`` (``.micropkg/package``), read on first use:
    loading tasks (``doit list``) reads nothing. Thread-safe."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._mutex = threading.Lock()
        self._pid = os.getpid()
        self._records: dict[str, TarballRecord] | None = None
        self._legacy: set[str] = set()
        self._exists = False

    def _load(self) -> dict[str, TarballRecord]:
        """The records (read once; called under the mutex)."""
        if self._records is not None:
            return self._records
        try:
            names = os.listdir(self.folder)
        except OSError:
            names = []
        self._legacy = {n[: -len(_LEGACY_SUFFIX)] for n in names if n.endswith(_LEGACY_SUFFIX)}
        self._exists = bool(names)
        records: dict[str, TarballRecord] = {}
        lines = 0
        if LOG_NAME in names:
            try:
                data = (self.folder / LOG_NAME).read_bytes()
            except OSError:
                data = b""
            for raw in data.split(b"\n"):
                if raw:
                    lines += 1
                    parsed = _parse(raw)
                    if parsed is not None:
                        records[parsed[0]] = parsed[1]
        # Only the process that made the log rewrites it: doit's ``-P process`` workers
        # (forked) append to it at the same time.
        if lines > 2 * len(records) + _SLACK and os.getpid() == self._pid:
            body = "".join(_line(*item) for item in sorted(records.items()))
            with contextlib.suppress(OSError):  # only tidying: the log as it is stays valid
                atomic_write(self.folder / LOG_NAME, body)
        self._records = records
        return records

    def get(self, entry: str) -> TarballRecord | None:
        """The last record of ``entry`` (a module path), or None."""
        with self._mutex:
            record = self._load().get(entry)
            if record is None and entry in self._legacy:
                record = _read_legacy(self.folder / f"{entry}{_LEGACY_SUFFIX}")
            return record

    def put(self, entry: str, record: TarballRecord) -> None:
        """Record that ``entry`` wrote ``record``'s tarball last (an ``OSError`` propagates)."""
        data = _line(entry, record).encode("ascii")
        with self._mutex:
            records = self._load()
            if not self._exists:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._exists = True
            fd = os.open(self.folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                # One write: appending the rest later could land after another process's record.
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.folder))
            finally:
                os.close(fd)
            records[entry] = record
            if entry in self._legacy:
                self._legacy.discard(entry)
                (self.folder / f"{entry}{_LEGACY_SUFFIX}").unlink(missing_ok=True)


def _line(entry: str, record: TarballRecord) -> str:
    """The text appended for one record (a newline first: see the module's docstring)."""
    tarball, root = record
    fields = {"entry": entry, "tarball": tarball} | ({"root": root} if root else {})
    return "\n" + json.dumps(fields, ensure_ascii=True, sort_keys=True)


def _parse(raw: bytes) -> tuple[str, TarballRecord] | None:
    """One line of the log, or None when it is not a whole record of ours."""
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    entry, tarball, root = fields.get("entry"), fields.get("tarball"), fields.get("root")
    if not (isinstance(entry, str) and entry and isinstance(tarball, str) and tarball):
        return None
    if root is not None and not isinstance(root, str):
        return None
    return entry, (tarball, root)


def _read_legacy(path: Path) -> TarballRecord | None:
    """An ``<entry>.last`` file: the tarball on its first line, the writing root on its second
    (only beside an absolute path)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or not lines[0].strip():
        return None
    root = lines[1].strip() if len(lines) > 1 and lines[1].strip() else None
    return lines[0].strip(), root
