"""Rewrite the Python files of upcoming micro-packages in a worker process, ahead of need.

A cold ``package --all`` spends about half its time in the import rewriter, whose
``ast.parse`` holds the GIL: no thread can share it. While the main process writes one sdist,
a worker process rewrites the files of the next ones. The worker only accelerates:

* it has no side effects (it reads files and answers); the main process writes everything;
* a result is used only for the very bytes the main process reads when it needs the file
  (the worker answers with their digest), and only from this Python (the same executable):
  the tarballs are the same bytes with or without it;
* anything unexpected (the worker cannot start, dies, answers late or not at all) makes the
  main process rewrite that file itself, as it always did;
* it reads its requests from a pipe and ends when that pipe closes: when the main process
  ends, even by ``SIGKILL``, the worker ends too.

``MICROPKG_WORKER=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .rewrite import RewriteResult

__all__ = ["ENV_VAR", "RewriteAhead", "RewriteJob", "worker_allowed"]

ENV_VAR = "MICROPKG_WORKER"
#: Files larger than this are rewritten by the main process (never sent through the pipe).
MAX_FILE = 1024**2
#: How long the main process waits for a result the worker owes before doing it itself.
WAIT_SECONDS = 30.0
_FRAME = struct.Struct("!I")
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from micropkg_tasks.ahead import serve; serve(sys.stdin.buffer, sys.stdout.buffer)"
)


def worker_allowed() -> bool:
    """False when ``MICROPKG_WORKER=0`` (or ``false``/``no``/``off``) is set."""
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class RewriteJob:
    """One call of :func:`~micropkg_tasks.rewrite.rewrite_source` on the file ``path``."""

    path: str
    old: str
    new: str
    filename: str
    project_package: str | None
    package_depth: int | None

    def run(self, data: bytes) -> RewriteResult:
        """Rewrite ``data`` (the file's bytes) as this job says."""
        from .rewrite import rewrite_source

        return rewrite_source(
            data,
            self.old,
            self.new,
            filename=self.filename,
            project_package=self.project_package,
            package_depth=self.package_depth,
        )


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _send(stream: IO[bytes], obj: object) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> object:
    """The next frame's object; EOFError at the end of the stream."""
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        raise EOFError
    (size,) = _FRAME.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)


_Answer = tuple[bytes, bytes, bool, tuple[str, ...]] | None
"""The worker's answer to one job: (digest of the bytes read, text, changed, warnings)."""


def _answer(job: RewriteJob) -> _Answer:
    try:
        with open(job.path, "rb") as stream:
            data = stream.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            return None
        result = job.run(data)
    except Exception:  # the main process does it again, and reports what goes wrong
        return None
    return _digest(data), result.text, result.changed, result.warnings


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop: answer each batch of jobs, in order, until ``requests`` ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    while True:
        try:
            batch = _receive(requests)
        except EOFError:
            return
        assert isinstance(batch, tuple)
        try:
            _send(answers, tuple(_answer(job) for job in batch))
        except (BrokenPipeError, OSError):
            return


class RewriteAhead:
    """A worker process rewriting submitted jobs in the background (started on first use).

    Thread-safe; used only by the process that created it (a forked doit worker falls back
    to rewriting itself).
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._mutex = threading.Condition()
        self._sending = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dead = not worker_allowed()
        self._pending: list[tuple[RewriteJob, ...]] = []
        """Batches sent and not answered yet, in order."""
        self._done: dict[RewriteJob, _Answer] = {}
        self._submitted: set[RewriteJob] = set()

    def submit(self, jobs: Sequence[RewriteJob]) -> None:
        """Have the worker rewrite ``jobs`` (those not submitted before)."""
        with self._mutex:
            batch = tuple(job for job in jobs if job not in self._submitted)
            if not batch or not self._usable():
                return
            proc = self._start()
            if proc is None or proc.stdin is None:
                return
            self._submitted.update(batch)
            self._pending.append(batch)
        # Not under the mutex: the reader thread must be free to drain the worker's answers
        # while a long batch fills the pipe.
        with self._sending:
            try:
                _send(proc.stdin, batch)
            except (OSError, ValueError):
                with self._mutex:
                    self._fail()

    def take(self, job: RewriteJob, data: bytes) -> RewriteResult | None:
        """The worker's result of ``job`` if it rewrote exactly ``data``; else None (the
        caller rewrites). Waits for a job the worker still owes."""
        from .rewrite import RewriteResult

        with self._mutex:
            if job not in self._submitted or os.getpid() != self._pid:
                return None
            if not self._mutex.wait_for(lambda: job in self._done or self._dead, WAIT_SECONDS):
                self._fail()  # stuck: never wait for it again
            answer = self._done.pop(job, None)
            self._submitted.discard(job)
        if answer is None or answer[0] != _digest(data):
            return None
        return RewriteResult(answer[1], answer[2], answer[3])

    def close(self) -> None:
        """Stop the worker (what it still owes is dropped)."""
        with self._mutex:
            self._dead = True
            self._mutex.notify_all()
            proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)

    # -- internals ----------------------------------------------------------------------

    def _usable(self) -> bool:
        return not self._dead and os.getpid() == self._pid

    def _start(self) -> subprocess.Popen[bytes] | None:
        if self._proc is not None:
            return self._proc
        if not sys.executable:
            self._dead = True
            return None
        root = str(Path(__file__).resolve().parent.parent)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, root],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._dead = True
            return None
        self._proc = proc
        weakref.finalize(self, _stop, proc)
        # The thread holds the object weakly: dropping it stops the worker (the finalizer).
        thread = threading.Thread(target=_read_answers, args=(weakref.ref(self), proc), daemon=True)
        thread.start()
        return proc

    def _store(self, answers: object) -> None:
        """File the worker's answers to its oldest pending batch."""
        with self._mutex:
            batch = self._pending.pop(0) if self._pending else ()
            if not isinstance(answers, tuple) or not batch or len(answers) != len(batch):
                self._fail()
                return
            self._done.update(zip(batch, answers, strict=True))
            self._mutex.notify_all()

    def _gone(self) -> None:
        with self._mutex:
            self._fail()

    def _fail(self) -> None:
        """The worker is gone, stuck or confused: what it owes falls back to the caller."""
        self._dead = True
        self._pending.clear()
        self._mutex.notify_all()
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()


def _read_answers(ref: weakref.ref[RewriteAhead], proc: subprocess.Popen[bytes]) -> None:
    """The reader thread: hand each batch of answers to the owner, until the worker ends."""
    assert proc.stdout is not None
    with proc.stdout:
        while True:
            try:
                answers = _receive(proc.stdout)
            except Exception:  # the end of the stream, or not our answers
                answers = None
            owner = ref()
            if owner is None:
                return
            if answers is None:
                owner._gone()
                return
            owner._store(answers)
            del owner


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        proc.kill()
    if proc.stdin is not None:  # stdout is the reader thread's to close
        with contextlib.suppress(OSError):
            proc.stdin.close()
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc.wait(timeout=5)
