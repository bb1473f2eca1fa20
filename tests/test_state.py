"""The state folder and the project lock (issue 8 item 10), with real concurrent processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from cli_runner import plain_doit
from kedro_venvs import describe, subprocess_env
from projects import add_pipeline, make_project, tree_snapshot, write

from micropkg_tasks.fsutil import sha256_file
from micropkg_tasks.project import load_project
from micropkg_tasks.state import STATE_DIR, ensure_state_dir, project_lock

MANIFEST = """
[tool.kedro.micropkg.package]
"pipelines.alpha" = {}
"pipelines.beta" = {}
"""
BUSY = "Another micropkg/doit run is in progress in"

# Each child imports everything first, then sleeps until a common instant: the processes
# collide on the state folder and the lock, not on interpreter start-up.
_AT_ONCE = """
import sys, time
from micropkg_tasks.cli import main
from micropkg_tasks.state import ensure_state_dir
start, tool, args = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
if tool == "doit":
    from doit.doit_cmd import DoitMain
time.sleep(max(0.0, start - time.time()))
if tool == "state-dir":
    # A slow file system: every mkdir takes a while, so all the processes are inside the
    # check-then-create window at once (the race that gave tracebacks, 5 runs in 60).
    from pathlib import Path
    real_mkdir = Path.mkdir
    def slow_mkdir(self, *a, **k):
        time.sleep(0.2)
        return real_mkdir(self, *a, **k)
    Path.mkdir = slow_mkdir
    ensure_state_dir(Path(args[0]))
    sys.exit(0)
if tool == "doit":
    sys.exit(DoitMain().run(args))
sys.exit(main(args))
"""


def _at_once(
    commands: Sequence[Sequence[str]], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Start every command in its own process, all entering their work at the same instant."""
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _AT_ONCE, repr(start), *command],
            cwd=cwd,
            env=subprocess_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _source(root: Path) -> Path:
    make_project(root, manifest=MANIFEST)
    add_pipeline(root, "alpha", requirements="pandas>=1.0\n")
    add_pipeline(root, "beta")
    write(root / "dodo.py", "from micropkg_tasks.tasks import *  # noqa: F403\n")
    write(root / "requirements.in", "pandas>=1.0\n")
    digest = sha256_file(root / "requirements.in")
    write(root / "requirements.txt", f"# micropkg: requirements.in sha256={digest}\npandas==2.0\n")
    return root


def test_state_folder_creation_is_race_free(tmp_path: Path) -> None:
    """Many first runs creating .micropkg/ at the same instant all succeed."""
    for round_ in range(2):
        root = tmp_path / f"round{round_}"
        root.mkdir()
        results = _at_once([["state-dir", str(root)]] * 6, tmp_path)
        for proc in results:
            assert proc.returncode == 0, describe(proc)
        assert (root / STATE_DIR / ".gitignore").read_text() == "# micropkg-tasks state\n*\n"
        assert sorted(p.name for p in (root / STATE_DIR).iterdir()) == [".gitignore"]


def _package_all(root: Path) -> None:
    """``micropkg package --all`` in ``root`` in a child process (it must work)."""
    subprocess.run(
        [sys.executable, "-m", "micropkg_tasks", "package", "--all"],
        cwd=root,
        env=subprocess_env(),
        check=True,
        capture_output=True,
    )


def test_concurrent_first_runs_one_works_the_others_refuse(tmp_path: Path) -> None:
    """Three commands that write, started at once in a fresh project: each either works or
    stops with the one-line lock error; never a traceback, never a half-made state."""
    reference = _source(tmp_path / "reference")
    _package_all(reference)
    commands = [
        ["micropkg", "package", "--all"],
        ["doit", "package"],
        ["micropkg", "build-reqs"],
    ]
    for round_ in range(3):
        root = _source(tmp_path / f"round{round_}")
        results = _at_once(commands, root)
        worked = 0
        for proc in results:
            if proc.returncode == 0:
                worked += 1
                continue
            doit = proc.args[4] == "doit"  # doit's convention: "ERROR: ...", exit status 3
            assert proc.returncode == (3 if doit else 1), describe(proc)
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            prefix = "ERROR: " if doit else "Error: "
            assert len(lines) == 1 and lines[0].startswith(f"{prefix}{BUSY}"), describe(proc)
        assert worked >= 1, [describe(proc) for proc in results]
        assert (root / STATE_DIR / ".gitignore").is_file()
        for name in ("alpha-0.1.tar.gz", "beta-0.1.tar.gz"):
            if (root / "dist" / name).exists():  # built by whichever package run got the lock
                assert (root / "dist" / name).read_bytes() == (
                    reference / "dist" / name
                ).read_bytes()
        leftovers = [p.name for p in root.rglob("*") if p.name.endswith((".tmp", "-tmp"))]
        assert leftovers == []


@pytest.fixture
def locked_project(tmp_path: Path) -> Path:
    """A project with a tarball to pull, a manifest and a stale requirements.txt."""
    source = _source(tmp_path / "source")
    _package_all(source)
    root = make_project(
        tmp_path / "proj",
        package="consumer_pkg",
        manifest=f'[tool.kedro.micropkg.pull]\n"{source}/dist/alpha-0.1.tar.gz" = {{}}\n'
        '[tool.kedro.micropkg.package]\n"pipelines.gamma" = {}\n',
    )
    add_pipeline(root, "gamma", package="consumer_pkg")
    write(root / "requirements.in", "pandas>=1.0\n")
    write(root / "dodo.py", "from micropkg_tasks.tasks import *  # noqa: F403\n")
    ensure_state_dir(root)
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["package", "--all"],
        ["package", "pipelines.gamma"],
        ["pull", "{source}/dist/alpha-0.1.tar.gz"],
        ["pull", "--all"],
        ["pull", "{source}/dist/alpha-0.1.tar.gz", "--dry-run"],
        ["build-reqs"],
        ["build-reqs", "--check"],
        ["status"],
        ["init"],
        ["doit", "list"],
        ["doit:", "package"],
    ],
    ids=lambda command: " ".join(command).replace("{source}/dist/", ""),
)
def test_every_command_waits_for_nobody_and_writes_nothing_while_locked(
    locked_project: Path, command: list[str]
) -> None:
    """While another process holds the project lock, each command (build-reqs included: no
    second resolver) stops with the one-line error and changes nothing."""
    source = locked_project.parent / "source"
    args = [part.replace("{source}", str(source)) for part in command]
    if args[0] == "doit:":  # doit itself, through the project's dodo.py
        argv = [sys.executable, "-m", "doit", *args[1:]]
    else:
        argv = [sys.executable, "-m", "micropkg_tasks", *args]
    before = tree_snapshot(locked_project)
    with project_lock(load_project(locked_project)):
        proc = subprocess.run(
            argv, cwd=locked_project, env=subprocess_env(), capture_output=True, text=True
        )
    # doit's own convention for a task loader's error: "ERROR: ...", exit status 3.
    code, prefix = (3, "ERROR: ") if args[0] == "doit:" else (1, "Error: ")
    assert proc.returncode == code, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{prefix}{BUSY}"), describe(proc)
    assert tree_snapshot(locked_project) == before


def test_a_failed_first_run_leaves_no_state_folder(project: Path, cli) -> None:
    result = cli("pull", "nowhere/data_proc-0.1.tar.gz")
    assert result.code == 1
    assert not (project / STATE_DIR).exists()
    add_pipeline(project, "alpha")
    assert cli("package", "pipelines.alpha").code == 0
    assert (project / STATE_DIR / "lock").exists()  # kept once a run succeeded


def test_the_lock_is_reentrant_within_a_process(project: Path, cli) -> None:
    proj = load_project(project)
    with project_lock(proj) as first, project_lock(proj) as second:
        assert (first, second) == (True, False)
        add_pipeline(project, "alpha")
        assert cli("package", "pipelines.alpha").code == 0  # the same process: not refused
    with project_lock(proj) as again:
        assert again is True  # released by the outermost


def test_a_file_in_the_way_of_the_state_folder_is_one_error_line(project: Path, cli) -> None:
    (project / STATE_DIR).write_text("not a folder\n")
    write(project / "dodo.py", "from micropkg_tasks.tasks import *  # noqa: F403\n")
    add_pipeline(project, "alpha")
    result = cli("package", "pipelines.alpha")
    assert result.code == 1
    assert (
        result.err == f"Error: '{project / STATE_DIR}' exists but is not a folder; move it away.\n"
    )
    proc = plain_doit(project, "list", env=subprocess_env())
    assert proc.returncode == 3, describe(proc)  # doit's code for a task loader's error
    assert proc.stderr.splitlines() == [
        f"ERROR: '{project.resolve() / STATE_DIR}' exists but is not a folder; move it away."
    ], describe(proc)
