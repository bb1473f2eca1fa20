"""The worker process that rewrites ahead of ``package --all``: the same tarballs with it or
without it, its results used only for the bytes they came from, and it never outlives the
process that started it (even after a SIGKILL)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Cli
from faults import assert_no_litter, micropkg, snapshot, start
from projects import add_pipeline, make_project, write

from micropkg_tasks import ahead as ahead_mod
from micropkg_tasks import sdist_reader
from micropkg_tasks.ahead import AHEAD_AFTER, Rewrite, RewriteAhead
from micropkg_tasks.package import _FilesBatch
from micropkg_tasks.rewrite import rewrite_source

N = 8


def _project(root: Path, n: int = N) -> Path:
    """``n`` pipelines, with what makes the rewriter work and warn: imports of the pipeline,
    an import of the project outside it, a file that is not Python, a Latin-1 file."""
    make_project(
        root,
        manifest="[tool.kedro.micropkg.package]\n"
        + "".join(f'"pipelines.p{i}" = {{}}\n' for i in range(n)),
    )
    for i in range(n):
        code = add_pipeline(root, f"p{i}")
        write(
            code / "extra.py", f"import demo_proj.pipelines.p{i}.nodes\nimport demo_proj.settings\n"
        )
        write(code / "broken.py", "import demo_proj\ndef f(:\n    return demo_proj\n")
        (code / "latin.py").write_bytes(
            b"# -*- coding: latin-1 -*-\nfrom demo_proj.pipelines.p%d import nodes  # \xe9\n" % i
        )
    return root


def _tarballs(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(root).items() if k.startswith("dist/")}


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_package_all_uses_the_workers_rewrites_and_writes_the_same_bytes(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "proj")
    monkeypatch.chdir(root)
    monkeypatch.setenv(ahead_mod.ENV_VAR, "0")
    started: list[subprocess.Popen[bytes]] = []
    real_start = RewriteAhead._start

    def spy_start(self: RewriteAhead) -> subprocess.Popen[bytes] | None:
        proc = real_start(self)
        if proc is not None and proc not in started:
            started.append(proc)
        return proc

    monkeypatch.setattr(RewriteAhead, "_start", spy_start)
    alone = cli("package", "--all")
    assert alone.code == 0, alone.err
    assert started == []  # MICROPKG_WORKER=0: no worker
    expected = _tarballs(root)
    assert len(expected) == N

    for folder in ("dist", ".micropkg"):
        subprocess.run(["rm", "-rf", str(root / folder)], check=True)
    monkeypatch.delenv(ahead_mod.ENV_VAR)
    taken: list[Rewrite] = []
    real_take = RewriteAhead.take

    def spy_take(self: RewriteAhead, key: object, call: Rewrite, data: bytes) -> object:
        result = real_take(self, key, call, data)
        if result is not None:
            taken.append(call)
            assert result == call.run(data)
        return result

    monkeypatch.setattr(RewriteAhead, "take", spy_take)
    helped = cli("package", "--all")
    assert helped.code == 0, helped.err
    assert len(started) == 1
    # Entries after the first AHEAD_AFTER + 1 are rewritten ahead: their every .py file.
    assert {call.new for call in taken} == {f"p{i}" for i in range(AHEAD_AFTER + 1, N)}
    assert _tarballs(root) == expected
    assert (helped.out, helped.err) == (alone.out, alone.err)  # the same warnings, in order
    assert "broken.py:2: not valid Python" in helped.err
    assert started[0].wait(timeout=10) is not None  # stopped after the run's last entry


def _pull_project(tmp_path: Path, tarballs: list[Path]) -> Path:
    """A fresh project pulling ``tarballs`` (one under an alias, one into a sub-folder)."""
    lines = []
    for i, tarball in enumerate(tarballs):
        options = {1: 'alias = "renamed"', 4: 'destination = "pipelines"'}.get(i, "")
        lines.append(f'"{tarball}" = {{{options}}}\n')
    return make_project(
        tmp_path / "dest",
        "dest_pkg",
        manifest="[tool.kedro.micropkg.pull]\n" + "".join(lines),
    )


def test_pull_all_uses_the_workers_rewrites_and_writes_the_same_files(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _project(tmp_path / "proj")
    assert micropkg(source, "package", "--all").code == 0
    tarballs = sorted((source / "dist").glob("*.tar.gz"))
    assert len(tarballs) == N

    dest = _pull_project(tmp_path, tarballs)
    alone = micropkg(dest, "pull", "--all", env={ahead_mod.ENV_VAR: "0"})
    assert alone.code == 0, alone.err
    expected = snapshot(dest)
    assert "src/dest_pkg/renamed/extra.py" in expected
    assert "src/dest_pkg/pipelines/p4/nodes.py" in expected

    subprocess.run(["rm", "-rf", str(dest)], check=True)
    dest = _pull_project(tmp_path, tarballs)
    monkeypatch.chdir(dest)
    taken: list[str] = []
    real_take = RewriteAhead.take

    def spy_take(self: RewriteAhead, key: object, call: Rewrite, data: bytes) -> object:
        result = real_take(self, key, call, data)
        if result is not None:
            taken.append(call.new)
            assert result == call.run(data)
        return result

    monkeypatch.setattr(RewriteAhead, "take", spy_take)
    own_reads: list[Path] = []  # the sdists this process read itself (not the worker's)
    real_read = sdist_reader.read_sdist

    def spy_read(archive: Path, *args: Any, **kwargs: Any) -> object:
        if kwargs.get("archive_data") is None:
            own_reads.append(archive)
        return real_read(archive, *args, **kwargs)

    monkeypatch.setattr(sdist_reader, "read_sdist", spy_read)
    helped = cli("pull", "--all")
    assert helped.code == 0, helped.err
    # The sdists the worker read are not read again (checked by their sha256).
    assert [a.name for a in own_reads] == [t.name for t in tarballs[: AHEAD_AFTER + 1]]
    # Entries after the first AHEAD_AFTER + 1 are rewritten ahead: each .py file (6 of code,
    # 2 of tests).
    assert len(taken) == 8 * (N - AHEAD_AFTER - 1)
    assert set(taken) == {
        f"dest_pkg.{'pipelines.' if i == 4 else ''}p{i}" for i in range(AHEAD_AFTER + 1, N)
    }
    assert snapshot(dest) == expected
    assert (helped.out, helped.err) == (alone.out, alone.err)


@pytest.mark.parametrize("parallel", ["thread", "process"])
def test_parallel_doit_runs_write_the_same_tarballs(tmp_path: Path, parallel: str) -> None:
    # Threads share one worker; each forked doit process starts its own (or none).
    root = _project(tmp_path / "proj", n=12)
    serial = micropkg(root, "package", "--all", env={ahead_mod.ENV_VAR: "0"})
    assert serial.code == 0, serial.err
    expected = _tarballs(root)
    for folder in ("dist", ".micropkg"):
        subprocess.run(["rm", "-rf", str(root / folder)], check=True)
    threaded = micropkg(root, "package", "--all", "-n", "2", "-P", parallel)
    assert threaded.code == 0, threaded.err
    assert threaded.err == serial.err
    assert _tarballs(root) == expected


CALL = Rewrite("demo_proj.pipelines.p0", "p0", "nodes.py", "demo_proj", 0)
SOURCE = b"from demo_proj.pipelines.p0 import nodes\n"


def _batch(path: Path) -> _FilesBatch:
    return _FilesBatch(((path, CALL),))


def test_a_result_is_used_only_for_the_bytes_the_worker_read(tmp_path: Path) -> None:
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    ahead = RewriteAhead()
    try:
        ahead.submit("a", _batch(path))
        edited = SOURCE + b"x = 1\n"  # the file changed after the worker read it
        assert ahead.take("a", CALL, edited) is None
        ahead.submit("b", _batch(path))
        assert ahead.take("b", CALL, SOURCE) == rewrite_source(
            SOURCE,
            "demo_proj.pipelines.p0",
            "p0",
            filename="nodes.py",
            project_package="demo_proj",
            package_depth=0,
        )
        assert ahead.take("b", CALL, SOURCE) is None  # taken once
        other = Rewrite("demo_proj.pipelines.p0", "elsewhere", "nodes.py", "demo_proj", 0)
        ahead.submit("c", _batch(path))
        assert ahead.take("c", other, SOURCE) is None  # another call: not answered
        assert ahead.take("never-submitted", CALL, SOURCE) is None
        rewrite = ahead.rewriter("c")(CALL, SOURCE)
        assert rewrite.text == b"from p0 import nodes\n"
    finally:
        ahead.close()


def test_a_batch_is_done_once(tmp_path: Path) -> None:
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    other = Rewrite("demo_proj.pipelines.p0", "elsewhere", "nodes.py", "demo_proj", 0)
    ahead = RewriteAhead()
    try:
        ahead.submit("nothing", _batch(tmp_path / "missing.py"))  # answered with no result
        assert ahead.take("nothing", CALL, SOURCE) is None  # waits for the batch's end
        frames = ahead._frames
        ahead.submit("nothing", _batch(tmp_path / "missing.py"))  # submitted before: skipped
        ahead.submit("one", _batch(path))
        assert ahead.take("one", other, SOURCE) is None  # waits for the batch's end
        assert ahead._frames - frames == 1  # batch "one" only, answered in one frame
    finally:
        ahead.close()


def _signal_worker(ahead: RewriteAhead, tmp_path: Path, signum: int) -> subprocess.Popen[bytes]:
    """Start ``ahead``'s worker (batch "first": a file it cannot read) and send it ``signum``."""
    ahead.submit("first", _batch(tmp_path / "missing.py"))
    proc = ahead._proc
    assert proc is not None
    proc.send_signal(signum)
    return proc


def test_a_dead_worker_is_not_waited_for(tmp_path: Path) -> None:
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    ahead = RewriteAhead()
    try:
        _signal_worker(ahead, tmp_path, signal.SIGKILL).wait(timeout=10)
        ahead.submit("late", _batch(path))
        began = time.monotonic()
        assert ahead.take("late", CALL, SOURCE) is None
        assert ahead.take("first", CALL, b"") is None
        assert ahead.rewriter("late")(CALL, SOURCE).text == b"from p0 import nodes\n"
        assert time.monotonic() - began < 5
    finally:
        ahead.close()


def test_a_worker_that_cannot_start_or_be_sent_its_work_is_done_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    expected = CALL.run(SOURCE)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    cannot_start = RewriteAhead()
    cannot_start.submit("one", _batch(path))
    assert cannot_start._proc is None
    assert cannot_start.take("one", CALL, SOURCE) is None
    assert cannot_start.rewriter("one")(CALL, SOURCE) == expected
    monkeypatch.undo()

    def no_pipe() -> tuple[int, int]:
        raise OSError(errno.EMFILE, "Too many open files")

    with monkeypatch.context() as patch:
        patch.setattr(ahead_mod.os, "pipe", no_pipe)
        without_pipe = RewriteAhead()
        without_pipe.submit("one", _batch(path))
    assert without_pipe._proc is None and without_pipe._skips == -1
    assert without_pipe.take("one", CALL, SOURCE) is None
    assert without_pipe.rewriter("one")(CALL, SOURCE) == expected

    ahead = RewriteAhead()
    try:
        ahead.submit("first", _batch(path))  # starts the worker
        proc = ahead._proc
        assert proc is not None
        ahead.submit("unpicklable", lambda: None)  # type: ignore[arg-type]
        assert ahead.take("unpicklable", CALL, SOURCE) is None
        assert proc.wait(timeout=10) == -signal.SIGKILL  # given up: killed
        assert ahead.rewriter("first")(CALL, SOURCE) == expected
    finally:
        ahead.close()


def test_the_worker_reads_the_batches_to_skip_across_partial_writes() -> None:
    read_end, write_end = os.pipe()
    try:
        skips = ahead_mod._Skips(read_end)
        frames = ahead_mod._FRAME.pack(5) + ahead_mod._FRAME.pack(7)
        os.write(write_end, frames[:2])  # half a number: not known yet
        assert not skips.has(5)
        os.write(write_end, frames[2:6])
        assert skips.has(5)
        assert not skips.has(5)  # skipped once
        assert not skips.has(7)
        os.write(write_end, frames[6:])
        os.close(write_end)
        write_end = -1
        assert skips.has(7)
        assert skips.fd == -1  # the main process closed its end: nothing more is read
        assert not skips.has(8)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_a_stuck_worker_is_given_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead_mod, "WAIT_SECONDS", 0.5)
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    ahead = RewriteAhead()
    try:
        proc = _signal_worker(ahead, tmp_path, signal.SIGSTOP)  # stopped on batch "first"
        ahead.submit("stuck", _batch(path))
        began = time.monotonic()
        # Not started by the worker: taken back and done here, at once.
        assert ahead.take("stuck", CALL, SOURCE) == CALL.run(SOURCE)
        assert time.monotonic() - began < ahead_mod.WAIT_SECONDS
        # The one the worker is on is waited for, then given up.
        assert ahead.take("first", CALL, b"") is None
        assert ahead_mod.WAIT_SECONDS <= time.monotonic() - began < 5
        assert proc.wait(timeout=10) == -signal.SIGKILL  # given up: killed
        assert ahead.rewriter("stuck")(CALL, SOURCE).text == b"from p0 import nodes\n"
    finally:
        ahead.close()


def test_a_batch_the_worker_has_not_started_is_done_here_and_skipped_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the worker is busy (stopped here), the main process does the batch it needs
    itself rather than wait; the worker, told on its pipe, answers that one with nothing."""
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    answered: dict[object, int] = {}
    done: list[object] = []
    real_store = RewriteAhead._store

    def spy_store(self: RewriteAhead, frame: Any) -> None:
        key = self._pending[0]
        answered[key] = answered.get(key, 0) + len(frame[0])
        done.extend([key] if frame[1] else [])
        real_store(self, frame)

    monkeypatch.setattr(RewriteAhead, "_store", spy_store)
    ahead = RewriteAhead()
    try:
        proc = _signal_worker(ahead, tmp_path, signal.SIGSTOP)
        for key in ("b", "c", "d"):
            ahead.submit(key, _batch(path))
        began = time.monotonic()
        assert ahead.take("c", CALL, SOURCE) == CALL.run(SOURCE)  # done here, at once
        assert time.monotonic() - began < ahead_mod.WAIT_SECONDS
        proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while ahead._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done == ["first", "b", "c", "d"]
        assert answered == {"first": 0, "b": 1, "c": 0, "d": 1}
        assert ahead.take("b", CALL, SOURCE) == CALL.run(SOURCE)  # the worker's
        assert ahead.take("c", CALL, SOURCE) is None  # taken once
        assert ahead.room() == ahead_mod.AHEAD_BYTES // ahead._largest - 1  # "d" held
    finally:
        ahead.close()


def test_package_all_does_the_batches_of_a_stopped_worker_itself(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stopped for a second when it starts: the main process does every batch
    but the worker's first one itself, and the tarballs and messages are the same."""
    root = _project(tmp_path / "proj")
    monkeypatch.chdir(root)
    monkeypatch.setenv(ahead_mod.ENV_VAR, "0")
    alone = cli("package", "--all")
    assert alone.code == 0, alone.err
    expected = _tarballs(root)
    for folder in ("dist", ".micropkg"):
        subprocess.run(["rm", "-rf", str(root / folder)], check=True)
    monkeypatch.delenv(ahead_mod.ENV_VAR)
    real_start = RewriteAhead._start

    def resume(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGCONT)

    def stopped_start(self: RewriteAhead) -> subprocess.Popen[bytes] | None:
        fresh = self._proc is None
        proc = real_start(self)
        if fresh and proc is not None:
            proc.send_signal(signal.SIGSTOP)
            threading.Timer(1.0, resume, (proc,)).start()
        return proc

    taken_back: list[object] = []
    real_take_back = RewriteAhead._take_back

    def spy_take_back(self: RewriteAhead, key: object, number: int, batch: Any) -> None:
        taken_back.append(key)
        real_take_back(self, key, number, batch)

    monkeypatch.setattr(RewriteAhead, "_start", stopped_start)
    monkeypatch.setattr(RewriteAhead, "_take_back", spy_take_back)
    helped = cli("package", "--all")
    assert helped.code == 0, helped.err
    # Handed over: the entries after the first AHEAD_AFTER + 1; the first of them is the
    # worker's (it is on it, as far as the main process knows), the others done here.
    assert len(taken_back) == N - AHEAD_AFTER - 2
    assert _tarballs(root) == expected
    assert (helped.out, helped.err) == (alone.out, alone.err)


def test_a_long_batch_is_waited_for_while_its_answers_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long batch is answered in parts as it goes: a batch that takes far longer than
    # WAIT_SECONDS is not given up while answers keep coming.
    monkeypatch.setattr(ahead_mod, "WAIT_SECONDS", 1.0)
    lines = "".join(f"from demo_proj.pipelines.p0 import nodes as n{i}\n" for i in range(400))
    path = write(tmp_path / "big.py", lines)
    calls = [
        Rewrite("demo_proj.pipelines.p0", "p0", f"big{i}.py", "demo_proj", 0) for i in range(300)
    ]
    ahead = RewriteAhead()
    try:
        began = time.monotonic()
        ahead.submit("long", _FilesBatch(tuple((path, call) for call in calls)))
        data = path.read_bytes()
        first = ahead.take("long", calls[0], data)
        assert first is not None and first.text.startswith(b"from p0 import nodes as n0\n")
        last = ahead.take("long", calls[-1], data)
        assert last is not None, "given up while answers were coming"
        assert time.monotonic() - began > ahead_mod.WAIT_SECONDS  # the batch took longer
    finally:
        ahead.close()


def test_the_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    # The parent stops itself once a few tarballs are written: the worker has started.
    proc = start(root, "package", "--all", env={"MICROPKG_TEST_FAULT": f"sdist#{N - 2}:STOP"})
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = [c for c in _children(proc.pid) if "micropkg_tasks.ahead" in _cmdline(c)]
            state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if workers and state == "T":
                break
            assert proc.poll() is None, "the run ended before it stopped"
            time.sleep(0.01)
        assert len(workers) == 1, "no worker process"
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _alive(workers[0]), "the worker outlived its killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert micropkg(root, "status").code == 0
    assert_no_litter(root)
    again = micropkg(root, "package", "--all")
    assert again.code == 0, again.err
    assert len(_tarballs(root)) == N


def test_what_a_pull_sends_the_worker_does_not_grow_with_the_manifest(tmp_path: Path) -> None:
    import pickle

    from micropkg_tasks.loader import TaskContext, _sdist_batch

    sizes = []
    for n in (2, 300):
        root = make_project(
            tmp_path / f"n{n}",
            "dest_pkg",
            manifest="[tool.kedro.micropkg.pull]\n"
            + "".join(f'"dist/p{i}-0.1.tar.gz" = {{}}\n' for i in range(n)),
        )
        ctx = TaskContext.load(root)
        batch = _sdist_batch(ctx, ctx.manifest.pull[0])
        assert batch is not None
        sizes.append(len(pickle.dumps(batch)))
    assert sizes[1] - sizes[0] < 100  # the manifest is not sent: only the folder names differ


class _Recorder:
    """Stands in for the worker: records what a :class:`Lookahead` hands it, and when."""

    def __init__(self, log: list[tuple[object, object]], now: list[object], room: int) -> None:
        self.log, self.now, self._room = log, now, room

    def room(self) -> int:
        return self._room

    def submit(self, key: object, batch: object) -> None:
        self.log.append((self.now[-1], key))

    def rewriter(self, key: object) -> ahead_mod.Rewriter:
        return ahead_mod.run_rewrite

    def forget(self, key: object) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("room", [10**6, 5])
def test_each_item_is_handed_to_the_worker_once_up_to_ahead_items_ahead(
    monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    """The worker gets every item once, in order, at most ``AHEAD_ITEMS`` ahead of the item
    the run starts (32: it keeps working while the main process waits on the disk), and no
    more at a time than its answers leave room for."""
    log: list[tuple[object, object]] = []
    now: list[object] = []
    monkeypatch.setattr(ahead_mod, "RewriteAhead", lambda: _Recorder(log, now, room))
    keys = list(range(100))
    lookahead = ahead_mod.Lookahead(keys, lambda key: f"batch {key}")  # type: ignore[arg-type,return-value]
    for key in keys:
        now.append(key)
        lookahead.start(key)
        lookahead.done(key)
        handed = [item for _, item in log]
        assert handed == sorted(set(handed))  # once each, in order
        if key >= AHEAD_AFTER:
            assert max(handed) <= key + ahead_mod.AHEAD_ITEMS
    assert ahead_mod.AHEAD_ITEMS == 32
    assert [item for _, item in log] == list(range(AHEAD_AFTER + 1, 100))
    first = [item for current, item in log if current == AHEAD_AFTER]
    expected = min(room, ahead_mod.AHEAD_ITEMS)
    assert first == list(range(AHEAD_AFTER + 1, AHEAD_AFTER + 1 + expected))


def test_the_answers_held_bound_how_many_batches_go_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch in flight counts as large as the largest answered: with room for three
    answers, one held leaves room for two more; taking or forgetting it, for three."""
    answer = rewrite_source(SOURCE, "demo_proj.pipelines.p0", "p0", filename="nodes.py").text
    monkeypatch.setattr(ahead_mod, "AHEAD_BYTES", 3 * len(answer))
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    other = Rewrite("demo_proj.pipelines.p0", "elsewhere", "nodes.py", "demo_proj", 0)
    ahead = RewriteAhead()
    try:
        assert ahead.room() == ahead_mod.AHEAD_ITEMS  # no answer yet: no size known
        ahead.submit("a", _batch(path))
        assert ahead.take("a", other, SOURCE) is None  # waits for "a" to be answered
        assert ahead.room() == 2
        ahead.forget("a")
        assert ahead.room() == 3
        ahead.submit("b", _batch(path))
        ahead.submit("c", _batch(path))
        assert ahead.room() <= 1  # two in flight (or held)
        assert ahead.take("b", CALL, SOURCE) is not None
        assert ahead.take("c", CALL, SOURCE) is not None
        assert ahead.room() == 3
    finally:
        ahead.close()


def test_without_room_for_answers_the_main_process_rewrites_and_the_bytes_are_the_same(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = AHEAD_AFTER + 1 + ahead_mod.AHEAD_ITEMS + 3
    root = _project(tmp_path / "proj", n)
    monkeypatch.chdir(root)
    monkeypatch.setenv(ahead_mod.ENV_VAR, "0")
    alone = cli("package", "--all")
    assert alone.code == 0, alone.err
    expected = _tarballs(root)
    assert len(expected) == n
    for folder in ("dist", ".micropkg"):
        subprocess.run(["rm", "-rf", str(root / folder)], check=True)
    monkeypatch.delenv(ahead_mod.ENV_VAR)
    monkeypatch.setattr(ahead_mod, "AHEAD_BYTES", 1)  # once a batch is answered, none fits
    submitted: list[object] = []
    real_submit = RewriteAhead.submit

    def spy_submit(self: RewriteAhead, key: object, batch: ahead_mod.Batch) -> None:
        submitted.append(key)
        real_submit(self, key, batch)

    monkeypatch.setattr(RewriteAhead, "submit", spy_submit)
    helped = cli("package", "--all")
    assert helped.code == 0, helped.err
    # the first window, sent before any size was known; then no answer fits: the main
    # process rewrote the last three itself
    assert submitted == [f"pipelines.p{i}" for i in range(AHEAD_AFTER + 1, n - 3)]
    assert _tarballs(root) == expected
    assert (helped.out, helped.err) == (alone.out, alone.err)


def test_items_passed_without_running_narrow_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """doit skips entries that are up to date: items handed over and never started were
    rewritten for nothing, ahead of the next item that runs. A run starting one item in ten
    soon hands over about three at a time, so what runs next is not queued behind 32."""
    log: list[tuple[object, object]] = []
    now: list[object] = []
    monkeypatch.setattr(ahead_mod, "RewriteAhead", lambda: _Recorder(log, now, 10**6))
    keys = list(range(1000))
    lookahead = ahead_mod.Lookahead(keys, lambda key: f"batch {key}")  # type: ignore[arg-type,return-value]
    runs = keys[::10]
    for key in runs:
        now.append(key)
        lookahead.start(key)
        lookahead.done(key)
    handed = [item for _, item in log]
    assert handed == sorted(set(handed))  # still once each, in order
    first = [item for current, item in log if current == runs[AHEAD_AFTER]]
    assert len(first) == ahead_mod.AHEAD_ITEMS  # nothing known yet: the full window
    later = [sum(1 for current, _ in log if current == key) for key in runs[20:]]
    assert max(later) <= 4
    assert len(handed) < 300  # not every item, as a window of 32 from each start would hand


def _sdist_batches(tmp_path: Path) -> tuple[Path, list[Path], Any]:
    """A pull project and its tarballs, and a function giving each tarball's SdistBatch."""
    from micropkg_tasks.loader import TaskContext, _sdist_batch

    source = _project(tmp_path / "proj", n=3)
    assert micropkg(source, "package", "--all").code == 0
    tarballs = sorted((source / "dist").glob("*.tar.gz"))
    dest = _pull_project(tmp_path, tarballs)
    ctx = TaskContext.load(dest)
    return dest, tarballs, lambda i: _sdist_batch(ctx, ctx.manifest.pull[i])


def test_the_worker_hands_over_the_sdist_it_read_with_its_sha256(tmp_path: Path) -> None:
    from micropkg_tasks.fsutil import sha256_file
    from micropkg_tasks.pull import PreparedSdist
    from micropkg_tasks.sdist_reader import read_sdist

    _, tarballs, batch = _sdist_batches(tmp_path)
    ahead = RewriteAhead()
    try:
        ahead.submit("p0", batch(0))
        ahead.submit("missing", _batch(tmp_path / "missing.py"))  # a batch without product
        ready = ahead.product("p0")
        assert isinstance(ready, PreparedSdist)
        assert ready.sha256 == sha256_file(tarballs[0])
        expected = read_sdist(tarballs[0], tmp_path / "work")
        assert (ready.contents, ready.contents.files) == (expected, expected.files)
        assert ready.contents.folders == expected.folders
        assert ahead.product("p0") is None  # taken once
        assert ahead.product("missing") is None
        assert ahead.product("never-submitted") is None
        ahead.forget("p0")
        ahead.forget("missing")
        assert ahead._held == 0
        tarballs[1].write_bytes(b"not a tarball")
        ahead.submit("p1", batch(1))  # the worker fails to read it: nothing to hand over
        assert ahead.product("p1") is None
    finally:
        ahead.close()


class _Threshold:
    """A batch whose product is the cyclic collector's thresholds where it runs."""

    def rewrite(self, rewriter: ahead_mod.Rewriter) -> object:
        import gc

        return os.getpid(), gc.get_threshold()


def test_the_worker_runs_the_cyclic_collector_less_often() -> None:
    """The worker parses as much as the main process: it raises CPython's default threshold
    too (see ``collect_less_often``)."""
    ahead = RewriteAhead()
    try:
        ahead.submit("gc", _Threshold())
        deadline = time.monotonic() + 30
        while "gc" not in ahead._products and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker's answer, not one taken back by this process
        pid, threshold = ahead.product("gc")  # type: ignore[misc]
        assert pid != os.getpid()
        assert threshold[0] == ahead_mod.GC_YOUNG_THRESHOLD
    finally:
        ahead.close()


def test_a_taken_back_sdist_batch_gives_its_product_at_once(tmp_path: Path) -> None:
    from micropkg_tasks.pull import PreparedSdist

    _, _, batch = _sdist_batches(tmp_path)
    ahead = RewriteAhead()
    try:
        proc = _signal_worker(ahead, tmp_path, signal.SIGSTOP)
        ahead.submit("p0", batch(0))
        ahead.submit("p1", batch(1))
        began = time.monotonic()
        ready = ahead.product("p1")  # the worker is stopped: done here, at once
        assert time.monotonic() - began < ahead_mod.WAIT_SECONDS
        assert isinstance(ready, PreparedSdist)
        # Its rewrites were made here too; a call it did not make is not waited for either.
        other = Rewrite("x", "y", "nodes.py")
        began = time.monotonic()
        assert ahead.take("p1", other, SOURCE) is None
        assert time.monotonic() - began < ahead_mod.WAIT_SECONDS
        proc.send_signal(signal.SIGCONT)
    finally:
        ahead.close()


def test_a_pull_uses_a_prepared_sdist_only_with_the_fetched_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from micropkg_tasks.ahead import run_rewrite
    from micropkg_tasks.loader import TaskContext
    from micropkg_tasks.pull import PreparedSdist, pull

    _, tarballs, batch = _sdist_batches(tmp_path)
    mine = batch(0).rewrite(run_rewrite)  # read here, as the worker would
    other = batch(2).rewrite(run_rewrite)  # another sdist's
    assert isinstance(mine, PreparedSdist) and isinstance(other, PreparedSdist)
    offered = [None, mine, other, PreparedSdist(mine.sha256, other.contents), "junk"]
    trees = []
    for i, ready in enumerate(offered):
        dest = _pull_project(tmp_path / f"try{i}", tarballs)
        ctx = TaskContext.load(dest)
        pull(ctx.project, ctx.manifest.pull[0], base=dest, prepared=lambda ready=ready: ready)
        trees.append(snapshot(dest))
    assert "src/dest_pkg/p0/nodes.py" in trees[0]
    # Used when its sha256 is the fetched sdist's (what the worker read is that sdist), and
    # ignored otherwise; the contents stand for the bytes of that sha256 (the worker's own).
    assert trees[1] == trees[0] == trees[2] == trees[4]
    assert "src/dest_pkg/p2/nodes.py" in trees[3]

    # An sdist over PREPARED_MAX, or holding more than PREPARED_MAX_CONTENTS, is read again
    # by the main process: nothing is handed over.
    held = sum(len(item.read()) for item in mine.contents.files.values())
    monkeypatch.setattr("micropkg_tasks.pull.PREPARED_MAX_CONTENTS", held - 1)
    assert batch(0).rewrite(run_rewrite) is None
    monkeypatch.setattr("micropkg_tasks.pull.PREPARED_MAX_CONTENTS", held)
    assert batch(0).rewrite(run_rewrite) == mine
    monkeypatch.setattr("micropkg_tasks.pull.PREPARED_MAX", tarballs[0].stat().st_size - 1)
    assert batch(0).rewrite(run_rewrite) is None
    # Nor one that grew past PREPARED_MAX after its size was looked at (it reads longer).
    import micropkg_tasks.pull as pull_mod

    looked = []

    def small(fd: int) -> Any:
        looked.append(fd)
        return types.SimpleNamespace(st_size=0)

    shim = types.SimpleNamespace(**{**vars(os), "fstat": small})
    monkeypatch.setattr(pull_mod, "os", shim)
    assert batch(0).rewrite(run_rewrite) is None
    assert len(looked) == 1


class _UnpicklableProduct:
    """A batch whose rewrite works but whose product cannot be pickled."""

    def __init__(self, path: Path) -> None:
        self.files = _batch(path)

    def rewrite(self, rewriter: ahead_mod.Rewriter) -> object:
        self.files.rewrite(rewriter)
        return lambda: None


def test_a_product_that_cannot_be_sent_or_read_is_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "nodes.py", SOURCE.decode())
    ready: list[Any] = []
    assert ahead_mod._run_batch(_UnpicklableProduct(path), ready, lambda: None) is None
    assert [call for call, _ in ready] == [CALL]  # its rewrites are still answered

    ahead = RewriteAhead()  # never started: nothing pending
    ahead._products["garbled"] = b"not a pickle"
    ahead._held = len(b"not a pickle")
    assert ahead.product("garbled") is None
    assert ahead._held == 0
