"""Rewrite the Python files of upcoming micro-packages in a worker process, ahead of need.

A cold ``package --all`` or a fresh ``pull --all`` spends a third to a half of its time in
the import rewriter, whose ``ast.parse`` holds the GIL: no thread can share it. While the main
process writes one micro-package, a worker process rewrites the files of the next ones. The
worker only accelerates:

* it has no side effects (it reads files and answers); the main process writes everything;
* a result is used only for the very call the main process makes (the same :class:`Rewrite`
  on the same bytes: the worker answers with their digest), from the same interpreter: the
  output is the same bytes with or without it;
* anything unexpected (the worker cannot start, dies, answers late or not at all) makes the
  main process rewrite that file itself, as it always did;
* it reads its requests from a pipe and ends when that pipe closes: when the main process
  ends, even by ``SIGKILL``, the worker ends too;
* while the main process would wait for it, it takes a batch the worker has not started (the
  item it needs, else the one furthest ahead) and does it itself, telling the worker to skip
  it: the two stay busy whichever is the faster one;
* a batch may also give a product (a pull's batch: the sdist it read, with the digest of the
  bytes it read it from), which the main process uses only after checking that digest.

A run hands it work through a :class:`Lookahead`; ``MICROPKG_WORKER=0`` turns it off.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import hashlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from .rewrite import RewriteResult

__all__ = [
    "ENV_VAR",
    "GC_YOUNG_THRESHOLD",
    "Batch",
    "Lookahead",
    "Rewrite",
    "RewriteAhead",
    "Rewriter",
    "collect_less_often",
    "run_rewrite",
    "worker_allowed",
]

ENV_VAR = "MICROPKG_WORKER"
_T = TypeVar("_T")
#: Files larger than this are rewritten by the main process (never sent through the pipe).
MAX_FILE = 1024**2
#: How long the main process waits for the worker to answer anything (a long batch is
#: answered in parts as it goes) before it gives up on it and rewrites what it needs itself.
WAIT_SECONDS = 30.0
_FRAME = struct.Struct("!I")
# The worker imports what this process imports: it gets the folder this package came from,
# then this process's ``sys.path``.
# ``sys.argv[1]``: the file descriptor of the pipe of batches to skip (-1: none).
_BOOT = (
    "import sys; sys.path[:0] = sys.argv[2:]; from micropkg_tasks.ahead import serve; "
    "serve(sys.stdin.buffer, sys.stdout.buffer, int(sys.argv[1]))"
)


#: The cyclic collector's first threshold while our tasks run (CPython's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def collect_less_often() -> None:
    """Run the cyclic garbage collector less often in a process that runs our tasks (and in
    the worker).

    Each ``ast.parse`` of the import rewriter allocates thousands of nodes that reference
    counting frees once the file is rewritten. Counted by CPython's default threshold (700
    allocations), they started young collections and, as survivors piled up, full ones that
    walked every loaded task: 10-18% of ``package --all`` and ``pull --all`` at N=1000. At
    10,000 the trees are gone before a collection starts; cycles are still collected.
    """
    young, *older = gc.get_threshold()
    if young and young < GC_YOUNG_THRESHOLD:  # 0: disabled by the host, left alone
        gc.set_threshold(GC_YOUNG_THRESHOLD, *older)


def worker_allowed() -> bool:
    """False when ``MICROPKG_WORKER=0`` (or ``false``/``no``/``off``) is set."""
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Rewrite:
    """One call of :func:`~micropkg_tasks.rewrite.rewrite_source`, but for the bytes."""

    old: str
    new: str
    filename: str
    project_package: str | None = None
    package_depth: int | None = None
    submodules: frozenset[str] = frozenset()

    def run(self, data: bytes) -> RewriteResult:
        """Rewrite ``data`` (the file's bytes) as this call says."""
        from .rewrite import rewrite_source

        return rewrite_source(
            data,
            self.old,
            self.new,
            filename=self.filename,
            project_package=self.project_package,
            package_depth=self.package_depth,
            submodules=self.submodules,
        )


Rewriter = Callable[[Rewrite, bytes], "RewriteResult"]
"""What an operation calls to rewrite a file's bytes (:func:`run_rewrite`, or a worker's)."""


def run_rewrite(call: Rewrite, data: bytes) -> RewriteResult:
    """The plain :data:`Rewriter`: rewrite here, now."""
    return call.run(data)


class Batch(Protocol):
    """The rewrites of one upcoming micro-package, done by the worker (picklable)."""

    def rewrite(self, rewriter: Rewriter) -> object:
        """Make each rewrite the main process will make for it, through ``rewriter``; return
        what else the main process may use (picklable; None: nothing)."""


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


_Answer = tuple[bytes, bytes, bool, tuple[str, ...]]
"""The worker's answer to one call: (digest of the bytes, text, changed, warnings)."""
_Frame = tuple[list[tuple[Rewrite, _Answer]], bool, bytes | None]
"""What the worker sends: answers of the oldest batch it owes, whether that batch is done, and
(when it is) its product, pickled. A batch is answered in one frame, or in one frame per
``FLUSH_SECONDS`` while it lasts."""
FLUSH_SECONDS = 0.05


class _Gone(Exception):
    """The main process is gone: the pipe of answers is closed."""


def _reply(answers: IO[bytes], frame: _Frame) -> None:
    try:
        _send(answers, frame)
    except OSError as exc:
        raise _Gone from exc


def _run_batch(
    batch: Batch, ready: list[tuple[Rewrite, _Answer]], progress: Callable[[], None]
) -> bytes | None:
    """Do ``batch``, adding each answer to ``ready`` (then calling ``progress``); its product,
    pickled (None: none, or the batch failed)."""

    def record(call: Rewrite, data: bytes) -> RewriteResult:
        result = call.run(data)
        ready.append((call, (_digest(data), result.text, result.changed, result.warnings)))
        progress()
        return result

    try:
        product = batch.rewrite(record)
    except _Gone:
        raise
    except Exception:  # the main process meets it again, and reports it
        return None
    if product is None:
        return None
    try:
        return pickle.dumps(product, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # (what pickle raises for an object it cannot pickle varies)
        return None


def _answer(batch: Batch, answers: IO[bytes]) -> None:
    """Do ``batch``: send its answers, then (with the last ones) that it is done."""
    ready: list[tuple[Rewrite, _Answer]] = []
    flushed = time.monotonic()

    def progress() -> None:
        nonlocal flushed
        if time.monotonic() - flushed > FLUSH_SECONDS:  # a long batch: show progress
            _reply(answers, (ready[:], False, None))
            ready.clear()
            flushed = time.monotonic()

    product = _run_batch(batch, ready, progress)
    _reply(answers, (ready, True, product))


class _Skips:
    """The worker's end of the pipe on which the main process names the batches (by their
    number in the order sent) it does itself."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.numbers: set[int] = set()
        self._partial = b""
        if fd >= 0:
            os.set_blocking(fd, False)

    def has(self, number: int) -> bool:
        """Whether batch ``number`` is the main process's (reading what it has said since)."""
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:  # the main process closed it: nothing more will be skipped
                self.fd = -1
                break
            data = self._partial + data
            whole = len(data) - len(data) % _FRAME.size
            self.numbers.update(n for (n,) in _FRAME.iter_unpack(data[:whole]))
            self._partial = data[whole:]
        if number in self.numbers:
            self.numbers.discard(number)
            return True
        return False


def serve(requests: IO[bytes], answers: IO[bytes], skips: int = -1) -> None:
    """The worker's loop: answer each batch, in order, until ``requests`` ends; a batch the
    main process took (named on the pipe ``skips``) is answered at once, with nothing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    collect_less_often()
    taken = _Skips(skips)
    number = 0
    while True:
        try:
            batch = _receive(requests)
            if taken.has(number):
                _reply(answers, ([], True, None))
            else:
                _answer(batch, answers)  # type: ignore[arg-type]
            number += 1
        except (EOFError, _Gone):
            return


class RewriteAhead:
    """A worker process doing submitted batches in the background (started on first use).

    Thread-safe; used only by the process that created it (a forked doit worker falls back
    to rewriting itself).
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._mutex = threading.Condition()
        self._sending = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dead = not worker_allowed()
        self._pending: list[Hashable] = []
        """Keys of the batches sent and not answered yet, in order."""
        self._done: dict[Hashable, dict[Rewrite, _Answer]] = {}
        self._products: dict[Hashable, bytes] = {}
        """The pickled products of the batches done, not taken yet."""
        self._submitted: set[Hashable] = set()
        self._frames = 0
        """Frames received: the worker's progress."""
        self._held = 0
        """Bytes of the answers and products received and not taken yet."""
        self._sizes: dict[Hashable, int] = {}
        """Bytes of each batch's answers so far."""
        self._largest = 0
        """Bytes of the largest batch answered so far."""
        self._batches: dict[Hashable, tuple[int, Batch]] = {}
        """Batches sent, neither answered nor taken back: their number in the order sent."""
        self._sent = 0
        self._taken: set[Hashable] = set()
        """Batches the main process took back and did: the worker's answers are dropped."""
        self._done_here: set[Hashable] = set()
        """Batches taken back and finished (until the worker has passed them)."""
        self._skips = -1
        """Our end of the pipe naming the batches taken back (-1: none)."""

    def submit(self, key: Hashable, batch: Batch) -> None:
        """Have the worker do ``batch`` (known as ``key``) unless it was submitted before."""
        with self._mutex:
            if key in self._submitted or not self._usable():
                return
            proc = self._start()
            if proc is None or proc.stdin is None:
                return
            self._submitted.add(key)
        # Not under the mutex: the reader thread must be free to file the worker's answers
        # while a long request fills the pipe. Numbered and sent under one lock: in order.
        with self._sending:
            with self._mutex:
                if self._dead:
                    return
                self._pending.append(key)
                self._batches[key] = (self._sent, batch)
                self._sent += 1
            try:
                _send(proc.stdin, batch)
            # AttributeError and TypeError: what pickle raises for a local or unpicklable object
            except (OSError, ValueError, pickle.PicklingError, AttributeError, TypeError):
                with self._mutex:
                    self._fail()

    def take(self, key: Hashable, call: Rewrite, data: bytes) -> RewriteResult | None:
        """The worker's result of ``call`` on exactly ``data`` in batch ``key``; None when it
        has none (the caller rewrites). While the worker owes it and keeps answering, this
        does a batch the worker has not started (:meth:`_victim`), or waits."""
        from .rewrite import RewriteResult

        def grab() -> _Answer | None:
            answer = self._done.get(key, {}).pop(call, None)
            if answer is not None:
                self._held -= len(answer[1])
            return answer

        answer = self._await(key, lambda: self._known(key, call), grab)
        if answer is None or answer[0] != _digest(data):
            return None
        return RewriteResult(answer[1], answer[2], answer[3])

    def product(self, key: Hashable) -> object:
        """What batch ``key`` gave besides its rewrites (None: nothing), once it is done
        (waiting as :meth:`take` does). The caller checks it is what it would make itself."""

        def grab() -> bytes | None:
            blob = self._products.pop(key, None)
            if blob is not None:
                self._held -= len(blob)
            return blob

        blob = self._await(key, lambda: key not in self._pending or key in self._done_here, grab)
        if blob is None:
            return None
        try:
            return pickle.loads(blob)
        except Exception:  # (our own bytes; anything unexpected only means: do it here)
            return None

    def _await(self, key: Hashable, known: Callable[[], bool], grab: Callable[[], _T]) -> _T | None:
        """``grab()`` under the lock once ``known()`` holds for batch ``key`` (None in a forked
        process); until then, do a batch the worker has not started, or wait for the worker."""
        while True:
            with self._mutex:
                if os.getpid() != self._pid:
                    return None
                if known():
                    return grab()
                victim = self._victim(key)
                if victim is None:
                    frames = self._frames
                    self._mutex.wait(WAIT_SECONDS)
                    if not known() and self._frames == frames:
                        self._fail()  # no answer at all for that long: stuck, never wait again
                    continue
                number, batch = self._batches.pop(victim)
                self._taken.add(victim)
            self._take_back(victim, number, batch)

    def _known(self, key: Hashable, call: Rewrite) -> bool:
        return key not in self._pending or call in self._done.get(key, {}) or key in self._done_here

    def _victim(self, key: Hashable) -> Hashable | None:
        """A batch the worker has not started, to do here rather than wait: ``key`` itself,
        else the one furthest ahead (the last the worker would reach). Never the oldest it
        owes: it is working on that one."""
        if self._skips < 0 or not self._pending:
            return None
        first = self._pending[0]
        if key != first and key in self._batches:
            return key
        for candidate in reversed(self._pending):
            if candidate == first:
                return None
            if candidate in self._batches:
                return candidate
        return None

    def _take_back(self, key: Hashable, number: int, batch: Batch) -> None:
        """Do batch ``key`` here, telling the worker to skip it (when the pipe is full or
        closed it does it as well: its answers are dropped all the same)."""
        with contextlib.suppress(OSError):
            os.write(self._skips, _FRAME.pack(number))
        ready: list[tuple[Rewrite, _Answer]] = []
        product = _run_batch(batch, ready, lambda: None)
        size = sum(len(answer[1]) for _, answer in ready)
        with self._mutex:
            self._done.setdefault(key, {}).update(ready)
            if product is not None:
                self._products[key] = product
                size += len(product)
            self._done_here.add(key)
            self._held += size
            self._largest = max(self._largest, size)
            self._mutex.notify_all()

    def room(self) -> int:
        """How many more batches fit in ``AHEAD_BYTES`` with the answers held, each batch in
        flight and each new one counted as large as the largest so far (``AHEAD_ITEMS`` in
        all until a batch is answered: nothing is known of their size before)."""
        with self._mutex:
            flying = len(self._pending) - len(self._taken)  # (those taken back are held)
            if not self._largest:
                return max(0, AHEAD_ITEMS - flying)
            return max(0, (AHEAD_BYTES - self._held) // self._largest - flying)

    def forget(self, key: Hashable) -> None:
        """Drop what is left of batch ``key``'s answers (its item is done)."""
        with self._mutex:
            for answer in self._done.pop(key, {}).values():
                self._held -= len(answer[1])
            self._held -= len(self._products.pop(key, b""))

    def rewriter(self, key: Hashable) -> Rewriter:
        """A :data:`Rewriter` taking batch ``key``'s results, rewriting here what it lacks."""

        def rewrite(call: Rewrite, data: bytes) -> RewriteResult:
            return self.take(key, call, data) or call.run(data)

        return rewrite

    def close(self) -> None:
        """Stop the worker (what it still owes is dropped)."""
        with self._mutex:
            self._fail()
            proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)  # (the pipe of batches taken back is closed with the object)

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
        skips = self._skips = -1
        try:
            if os.name == "posix":  # (no pipe to hand over elsewhere: nothing is taken back)
                skips, self._skips = os.pipe()
                os.set_blocking(self._skips, False)
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, str(skips), root, *sys.path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                pass_fds=(skips,) if skips >= 0 else (),
            )
        except OSError:
            if self._skips >= 0:
                os.close(self._skips)
            self._skips = -1
            self._dead = True
            return None
        finally:
            if skips >= 0:
                os.close(skips)  # the worker's end
        self._proc = proc
        weakref.finalize(self, _stop, proc, self._skips)
        # The thread holds the object weakly: dropping it stops the worker (the finalizer).
        thread = threading.Thread(target=_read_answers, args=(weakref.ref(self), proc), daemon=True)
        thread.start()
        return proc

    def _store(self, frame: object) -> None:
        """File answers of the oldest pending batch, and close it when the frame says so."""
        with self._mutex:
            self._frames += 1
            answers: list[tuple[Rewrite, _Answer]]
            done: bool
            product: bytes | None
            try:
                answers, done, product = frame  # type: ignore[misc]
                key = self._pending[0]
                if key in self._taken:
                    answers, product = [], None  # done here instead (or as well)
                size = sum(len(answer[1]) for _, answer in answers)
                self._done.setdefault(key, {}).update(answers)
                if isinstance(product, bytes) and done:
                    self._products[key] = product
                    size += len(product)
            except (TypeError, ValueError, IndexError):
                self._fail()
            else:
                self._held += size
                self._sizes[key] = self._sizes.get(key, 0) + size
                if done:
                    self._pending.pop(0)
                    self._batches.pop(key, None)
                    self._taken.discard(key)
                    self._done_here.discard(key)
                    self._largest = max(self._largest, self._sizes.pop(key))
            self._mutex.notify_all()

    def _gone(self) -> None:
        with self._mutex:
            self._fail()

    def _fail(self) -> None:
        """The worker is gone, stuck or confused: what it owes falls back to the caller."""
        self._dead = True
        self._pending.clear()
        self._sizes.clear()
        self._batches.clear()
        self._mutex.notify_all()
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()


def _read_answers(ref: weakref.ref[RewriteAhead], proc: subprocess.Popen[bytes]) -> None:
    """The reader thread: hand each frame to the owner, until the worker ends."""
    assert proc.stdout is not None
    with proc.stdout:
        while True:
            try:
                frame = _receive(proc.stdout)
                ended = False
            except Exception:  # the end of the stream, or not our answers
                frame, ended = None, True
            owner = ref()
            if owner is None:
                return
            if ended:
                owner._gone()
                return
            owner._store(frame)
            del owner


def _stop(proc: subprocess.Popen[bytes], skips: int = -1) -> None:
    if skips >= 0:
        with contextlib.suppress(OSError):
            os.close(skips)
    with contextlib.suppress(OSError):
        proc.kill()
    if proc.stdin is not None:  # stdout is the reader thread's to close
        with contextlib.suppress(OSError):
            proc.stdin.close()
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc.wait(timeout=5)


#: Items a run does before it rewrites ahead (a run that rebuilds or pulls one or two
#: micro-packages never starts a worker), and how many items the worker works ahead: enough
#: that it keeps working while the main process waits on the disk.
AHEAD_AFTER = 2
AHEAD_ITEMS = 32
#: What the answers the main process holds may come to (rewritten text), with those of every
#: batch in flight counted as large as the largest so far: fewer items ahead when they are big.
AHEAD_BYTES = 32 * 1024**2


class Lookahead:
    """Rewriting ahead for one run of ordered items (the entries of a ``--all`` run).

    Once the run has started ``AHEAD_AFTER`` items, each item it starts hands the worker the
    batches of the items up to ``AHEAD_ITEMS`` after it, as ``AHEAD_BYTES`` allows (``batch_of``
    gives an item's batch, None when it has none); the worker is stopped when the run's last
    item is done. Thread-safe.

    A run need not start every item (doit skips those up to date). An item handed over and
    then passed without being started was rewritten for nothing, and the worker did it before
    the next item that runs: once some are, the window narrows to the share of handed items
    that ran (a run rebuilding one entry in ten hands over about three at a time).
    """

    def __init__(
        self, keys: Sequence[Hashable], batch_of: Callable[[Hashable], Batch | None]
    ) -> None:
        self.keys = tuple(keys)
        self._batch_of = batch_of
        self._positions = {key: i for i, key in enumerate(self.keys)}
        self._mutex = threading.Lock()
        self._started = 0
        self._ahead: RewriteAhead | None = None
        self._next = 0
        """The position of the first item not handed to the worker yet."""
        self._handed: collections.deque[int] = collections.deque()
        """Positions handed over, not yet passed by the run."""
        self._ran: set[int] = set()
        self._used = 0
        self._wasted = 0
        """Handed items passed by the run: started, or not (rewritten for nothing)."""

    def start(self, key: Hashable) -> Rewriter:
        """The :data:`Rewriter` for item ``key``, which the run starts now."""
        with self._mutex:
            self._started += 1
            if self._started <= AHEAD_AFTER:
                return run_rewrite
            if self._ahead is None:
                self._ahead = RewriteAhead()
            ahead = self._ahead
            position = self._positions.get(key, len(self.keys))
            self._ran.add(position)
            while self._handed and self._handed[0] < position:
                if self._handed.popleft() in self._ran:
                    self._used += 1
                else:
                    self._wasted += 1
            self._next = max(self._next, position + 1)
            end = min(position + 1 + self._window(), len(self.keys))
            end = min(end, self._next + ahead.room())
            upcoming = list(self.keys[self._next : end])
            self._handed.extend(range(self._next, max(self._next, end)))
            self._next = max(self._next, end)
        for item in upcoming:
            batch = self._batch_of(item)
            if batch is not None:
                ahead.submit(item, batch)
        return ahead.rewriter(key)

    def _window(self) -> int:
        """How far ahead to hand items over: ``AHEAD_ITEMS``, times the share of the items
        handed so far that the run started."""
        if not self._wasted:
            return AHEAD_ITEMS
        return max(1, AHEAD_ITEMS * self._used // (self._used + self._wasted))

    def done(self, key: Hashable) -> None:
        """Item ``key`` is rewritten: after the run's last item, stop the worker."""
        if self._ahead is None:
            return
        self._ahead.forget(key)
        if self.keys and key == self.keys[-1]:
            self._ahead.close()

    def product(self, key: Hashable) -> object:
        """What the worker's batch of item ``key`` gave besides its rewrites (None: nothing;
        call after :meth:`start`). The caller checks it before using it."""
        ahead = self._ahead
        return None if ahead is None else ahead.product(key)
