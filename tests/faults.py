"""Helpers of the fault-injection tests: run real ``micropkg``/``doit`` processes, kill them,
and check that a project is exactly one of its allowed states with nothing of ours left over.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from micropkg_tasks.fsutil import sha256_bytes
from micropkg_tasks.lockfile import LOCK_NAME, read_lock

__all__ = [
    "Run",
    "State",
    "assert_consistent",
    "assert_no_litter",
    "assert_one_of",
    "clone",
    "kill_after",
    "litter",
    "micropkg",
    "snapshot",
    "start",
]

#: Our temporary names (staged, backup, journal temp, half-written tarball).
LITTER_RE = re.compile(r"(^\..+\.micropkg-(tmp|bak)$)|(^\..+\.tar\.gz\.[0-9a-f]{8}\.tmp$)")

State = dict[str, bytes | None]
"""Every file (its bytes) and folder (``None``) below a project root, ``.micropkg/`` aside."""


def snapshot(root: Path) -> State:
    """Every file and folder below ``root`` except the gitignored state folder and caches."""
    state: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".micropkg", "__pycache__"))
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames:
            state[os.path.normpath(os.path.join(rel_dir, name))] = None
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            state[rel] = Path(dirpath, name).read_bytes()
    return state


def litter(root: Path) -> list[str]:
    """Our temporary files anywhere below ``root`` (the state folder included)."""
    found = []
    for dirpath, _, filenames in os.walk(root):
        found += [
            os.path.relpath(os.path.join(dirpath, n), root) for n in filenames if LITTER_RE.match(n)
        ]
    return sorted(found)


def assert_no_litter(root: Path) -> None:
    """No temporary file of ours, and no journal left in the state folder."""
    assert litter(root) == []
    assert not list((root / ".micropkg").glob("journal*")), "a journal was left behind"


def assert_consistent(root: Path) -> None:
    """``micropkg.lock`` parses and every file it records is on disk with its sha256."""
    lock = read_lock(root / LOCK_NAME)
    for entry in lock.entries.values():
        for rel, digest in entry.files.items():
            path = root / rel
            assert path.is_file(), f"{entry.module}: {rel} is recorded but missing"
            assert sha256_bytes(path.read_bytes()) == digest, f"{entry.module}: {rel} differs"


def describe_difference(state: State, allowed: Sequence[State]) -> str:
    """Which paths differ from the closest allowed state (for assertion messages)."""
    best = min(allowed, key=lambda s: len(set(s.items()) ^ set(state.items())))
    only_here = sorted(k for k in state if k not in best)[:10]
    only_there = sorted(k for k in best if k not in state)[:10]
    changed = sorted(k for k in state if k in best and state[k] != best[k])[:10]
    return f"extra {only_here}, missing {only_there}, different {changed}"


def assert_one_of(root: Path, allowed: Sequence[State], *, but_litter: bool = False) -> int:
    """``root`` is exactly one of ``allowed`` (byte for byte); return its index.

    ``but_litter``: our temporary files (that the next run removes) are left out.
    """
    state = snapshot(root)
    if but_litter:
        state = {k: v for k, v in state.items() if not LITTER_RE.match(os.path.basename(k))}
    for index, candidate in enumerate(allowed):
        if state == candidate:
            return index
    raise AssertionError(f"not an allowed state: {describe_difference(state, allowed)}")


def clone(src: Path, dst: Path) -> Path:
    """A copy of the project ``src`` whose files are hard links (cheap; our writes never modify
    a file in place: they rename new files over old ones)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=os.link, symlinks=True)
    return dst


@dataclass
class Run:
    """A finished child process."""

    code: int
    out: str
    err: str


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MICROPKG_TEST_FAULT", None)
    env.update({"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "PYTHONHASHSEED": "0"})
    env.update(extra or {})
    return env


def _argv(args: Sequence[str]) -> list[str]:
    if args and args[0] == "doit":
        return [sys.executable, "-m", "doit", *args[1:]]
    return [sys.executable, "-m", "micropkg_tasks", *args]


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def micropkg(
    cwd: Path,
    *args: str,
    fault: str | None = None,
    env: Mapping[str, str] | None = None,
    fsize: int | None = None,
) -> Run:
    """Run ``micropkg ARGS`` (or ``doit ARGS`` when ``args[0] == "doit"``) to the end.

    ``fault`` sets ``MICROPKG_TEST_FAULT`` (kill at a named step); ``fsize`` caps the size of
    every file the child writes (``RLIMIT_FSIZE``: a full disk at a chosen point).
    """
    extra = dict(env or {})
    if fault:
        extra["MICROPKG_TEST_FAULT"] = fault
    proc = subprocess.run(
        _argv(args),
        cwd=cwd,
        env=_env(extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        preexec_fn=_limit_file_size(fsize) if fsize is not None else None,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def start(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``micropkg ARGS`` in its own process group (so a kill can take its children)."""
    return subprocess.Popen(
        _argv(args),
        cwd=cwd,
        env=_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_after(proc: subprocess.Popen[bytes], delay: float, *, group: bool = False) -> bool:
    """SIGKILL ``proc`` (its whole group with ``group``) after ``delay`` s; False if it had
    already finished."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
    if proc.poll() is not None:
        return False
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait()
    if group:  # the group's other members (a resolver) die too; reap them before checking
        _wait_group_gone(proc.pid)
    return True


def _wait_group_gone(pgid: int) -> None:
    for _ in range(500):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
