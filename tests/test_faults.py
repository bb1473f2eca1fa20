"""Fault injection: real ``micropkg``/``doit`` child processes are SIGKILLed at named steps
(``MICROPKG_TEST_FAULT``) and after random delays, interrupted with SIGINT, and run out of
file-size quota (``RLIMIT_FSIZE``, a full disk). After each kill and after the next command,
the project must be exactly its old or its new state (byte for byte, folders included), the
lock must parse and match the disk, and no temporary file of ours may be left.

Randomness is seeded (``FAULT_SEED``, default 8); kill counts keep the module to about a minute
on two cores.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from faults import (
    State,
    assert_consistent,
    assert_no_litter,
    assert_one_of,
    clone,
    kill_after,
    litter,
    micropkg,
    snapshot,
    start,
)
from projects import add_pipeline, make_project, write
from wheelhouse import build_wheel

from micropkg_tasks.lockfile import LOCK_NAME, PENDING_NAME, read_lock

SEED = int(os.environ.get("FAULT_SEED", "8"))
MEDIUM = 200  # data files of the micro-package most kills use
BIG = 2000  # data files of the big one (the commit window of a few thousand files)


# --------------------------------------------------------------------------- micro-packages


def _data_pipeline(root: Path, name: str, version: str, files: int) -> None:
    """``pipelines.<name>`` with ``files`` data files; version 0.2 changes a quarter of them,
    drops a tenth, adds a new folder of files and changes the requirements."""
    code = root / f"src/demo_proj/pipelines/{name}"
    if code.exists():
        shutil.rmtree(code)
    add_pipeline(root, name, version=version, requirements="alpha>=1.0\nbeta\n")
    v2 = version != "0.1"
    for i in range(files):
        if v2 and i % 10 == 0:
            continue
        text = f"row {i}\n" + ("changed\n" if v2 and i % 4 == 1 else "")
        write(code / f"data/d{i % 12:02d}/f{i:04d}.csv", text)
    for i in range(20):
        write(
            code / f"mods/m{i:02d}.py",
            f"from demo_proj.pipelines.{name}.nodes import helper\n\nVALUE = helper({i})\n",
        )
    write(code / "mods/__init__.py", "")
    if v2:
        for i in range(files // 20):
            write(code / f"data/new/n{i:03d}.csv", f"new {i}\n")
        (code / "requirements.txt").write_text("alpha>=1.0\ngamma\n")
    write(root / f"conf/base/parameters/{name}/extra.yml", f"version: '{version}'\n")


@dataclass(frozen=True)
class Tarballs:
    """Version 0.1 and 0.2 of a micro-package."""

    v1: Path
    v2: Path


def _package_both(root: Path, name: str, files: int) -> Tarballs:
    for version, dist in (("0.1", "dist1"), ("0.2", "dist2")):
        _data_pipeline(root, name, version, files)
        result = micropkg(root, "package", f"pipelines.{name}", "-d", dist)
        assert result.code == 0, result.err
    return Tarballs(root / f"dist1/{name}-0.1.tar.gz", root / f"dist2/{name}-0.2.tar.gz")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("src") / "source")


@pytest.fixture(scope="module")
def medium(source: Path) -> Tarballs:
    return _package_both(source, "medium", MEDIUM)


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """A project before a command (``base``) and the states allowed after it (old first,
    new last)."""

    base: Path
    args: tuple[str, ...]
    allowed: list[State]

    @property
    def old(self) -> State:
        return self.allowed[0]

    @property
    def new(self) -> State:
        return self.allowed[-1]

    def work(self, name: str = "work") -> Path:
        # A sibling of base: relative sources recorded in the lock stay identical.
        return clone(self.base, self.base.with_name(name))


def _reference(base: Path, args: tuple[str, ...], name: str = "reference") -> State:
    reference = clone(base, base.with_name(name))
    result = micropkg(reference, *args)
    assert result.code == 0, result.err
    assert_no_litter(reference)
    assert_consistent(reference)
    return snapshot(reference)


def _consumer(folder: Path, *, bare: bool = False) -> Path:
    base = make_project(folder / "base", package="consumer_pkg")
    if bare:  # no pipelines/ and no tests/: a pull creates folders and their __init__.py
        shutil.rmtree(base / "src/consumer_pkg/pipelines")
        shutil.rmtree(base / "tests")
    return base


def _pull_scenario(folder: Path, tarballs: Tarballs, which: str) -> Scenario:
    if which == "fresh":
        base = _consumer(folder, bare=True)
        args = ("pull", str(tarballs.v1), "-d", "pipelines.extra")
    else:
        base = _consumer(folder)
        assert micropkg(base, "pull", str(tarballs.v1), "-d", "pipelines").code == 0
        args = ("pull", str(tarballs.v2), "-d", "pipelines")
    return Scenario(base, args, [snapshot(base), _reference(base, args)])


@pytest.fixture(scope="module", params=["fresh", "upgrade"])
def pulled(
    request: pytest.FixtureRequest, medium: Tarballs, tmp_path_factory: pytest.TempPathFactory
) -> Scenario:
    """Pull the medium micro-package: fresh (new folders) or as an upgrade of 0.1."""
    return _pull_scenario(tmp_path_factory.mktemp(request.param), medium, request.param)


# --------------------------------------------------------------------------- checks


def journal_left(root: Path) -> bool:
    return any((root / ".micropkg").glob("journal*.json"))


def after_kill(scenario: Scenario, work: Path) -> bool:
    """Right after a kill: the lock parses, and the tree is old or new unless a journal
    records the interrupted transaction, or the pending log entries a ``pull --all`` had not
    yet written to the lock. Returns whether either was left."""
    read_lock(work / LOCK_NAME)
    pending = journal_left(work) or (work / ".micropkg" / PENDING_NAME).exists()
    if not pending:
        assert_one_of(work, scenario.allowed, but_litter=True)
    return pending


def next_run(scenario: Scenario, work: Path, pending: bool) -> int:
    """The next command (``status``) recovers and says so in one line; then the project is
    one of the allowed states, consistent, with nothing of ours left. Returns which state."""
    had_litter = bool(litter(work))
    result = micropkg(work, "status")
    assert result.code == 0, result.err
    notes = [line for line in result.err.splitlines() if line.startswith("Recovered: ")]
    assert len(notes) == (1 if pending or had_litter else 0), result.err
    index = assert_one_of(work, scenario.allowed)
    assert_no_litter(work)
    assert_consistent(work)
    return index


def changed_files(scenario: Scenario) -> tuple[int, int]:
    """(files a transaction writes, files it moves aside: replaced or removed)."""
    old, new = scenario.old, scenario.new
    writes = sum(1 for k, v in new.items() if v is not None and old.get(k) != v)
    replaced = sum(1 for k, v in new.items() if v is not None and old.get(k) not in (None, v))
    removed = sum(1 for k, v in old.items() if v is not None and k not in new)
    return writes, replaced + removed


# --------------------------------------------------------------------------- pull: SIGKILL


def test_sigkill_at_each_step_of_a_pull(pulled: Scenario) -> None:
    """Kill at every step boundary of the transaction; the next command recovers."""
    writes, moved = changed_files(pulled)
    steps = [
        "journal-staged",
        "journal",
        "mkdir",
        "stage",
        f"stage#{writes // 2}",
        f"stage#{writes}",
        "place",
        f"place#{writes // 2}",
        f"place#{writes}",
        "commit",
        "committed",
        f"cleanup#{writes // 3}",
        "done",
    ]
    if moved:
        steps += ["backup", f"backup#{moved // 2}"]
    outcomes = set()
    for step in steps:
        work = pulled.work()
        result = micropkg(work, *pulled.args, fault=step)
        assert result.code == -9, (step, result.code, result.err)
        pending = after_kill(pulled, work)
        assert pending == (step not in ("journal-staged", "done")), step
        outcome = next_run(pulled, work, pending)
        after_commit = step in ("committed", "done") or step.startswith("cleanup")
        assert outcome == (1 if after_commit else 0), step
        outcomes.add(outcome)
        if step == "place":  # and the interrupted command, run again, completes
            assert micropkg(work, *pulled.args).code == 0
            assert snapshot(work) == pulled.new
            assert_no_litter(work)
    assert outcomes == {0, 1}


def test_sigkill_while_recovering(pulled: Scenario) -> None:
    """A crash during the recovery itself is recovered by the run after it."""
    writes, _ = changed_files(pulled)
    for step, during_recovery in (
        (f"place#{writes // 2}", f"rollback#{writes // 3}"),
        ("committed", f"cleanup#{writes // 3}"),
    ):
        work = pulled.work()
        assert micropkg(work, *pulled.args, fault=step).code == -9
        assert micropkg(work, "status", fault=during_recovery).code == -9
        assert journal_left(work)
        assert next_run(pulled, work, pending=True) == (0 if step.startswith("place") else 1)


def test_sigkill_after_random_delays(pulled: Scenario) -> None:
    rng = random.Random(f"{SEED}-{pulled.args}")
    work = pulled.work()
    began = time.monotonic()
    assert micropkg(work, *pulled.args).code == 0
    duration = time.monotonic() - began
    kills = 0
    for _ in range(10):
        work = pulled.work()
        killed = kill_after(start(work, *pulled.args), rng.uniform(0.3, 0.95) * duration)
        next_run(pulled, work, after_kill(pulled, work))
        kills += killed
        if not killed:  # the machine got faster than when the run was timed: aim earlier
            duration *= 0.7
        if kills == 4:
            break
    assert kills >= 2


def test_sigkill_in_the_commit_window_of_a_big_upgrade(
    source: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The case the issue saw 8 times out of 8: an upgrade of a 2,000-file micro-package."""
    scenario = _pull_scenario(
        tmp_path_factory.mktemp("big"), _package_both(source, "big", BIG), "upgrade"
    )
    writes, moved = changed_files(scenario)
    assert writes > 500 and moved > 500
    for step in (f"backup#{moved // 2}", f"place#{writes - 10}", "committed"):
        work = scenario.work()
        assert micropkg(work, *scenario.args, fault=step).code == -9
        next_run(scenario, work, after_kill(scenario, work))


# --------------------------------------------------------------------------- pull: SIGINT


@pytest.mark.parametrize("step", ["journal", "stage#50", "place#50", "commit"])
def test_ctrl_c_rolls_back_in_the_same_process(pulled: Scenario, step: str) -> None:
    work = pulled.work()
    result = micropkg(work, *pulled.args, fault=f"{step}:INT")
    assert result.code == 130, result.err
    assert result.err == "Error: interrupted\n"
    assert snapshot(work) == pulled.old
    assert_no_litter(work)


# --------------------------------------------------------------------------- pull: full disk


def _wide_pipeline(root: Path, version: str) -> None:
    """``pipelines.wide``: a module whose imports grow about threefold when a pull rewrites
    them, so that file is bigger in the project than in the tarball."""
    code = root / "src/demo_proj/pipelines/wide"
    if code.exists():
        shutil.rmtree(code)
    add_pipeline(root, "wide", version=version, requirements="alpha>=1.0\n")
    body = "".join(f"X{i} = demo_proj.pipelines.wide.nodes\n" for i in range(6000))
    write(code / "refs.py", f"import demo_proj.pipelines.wide.nodes\n# {version}\n{body}")


@pytest.fixture(scope="module", params=["fresh", "upgrade"])
def wide(
    request: pytest.FixtureRequest, source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Scenario:
    tarballs = Tarballs(
        *(source / f"{d}/wide-{v}.tar.gz" for d, v in (("d1", "0.1"), ("d2", "0.2")))
    )
    if not tarballs.v2.exists():
        for version, dist in (("0.1", "d1"), ("0.2", "d2")):
            _wide_pipeline(source, version)
            assert micropkg(source, "package", "pipelines.wide", "-d", dist).code == 0
    return _pull_scenario(tmp_path_factory.mktemp(f"wide-{request.param}"), tarballs, request.param)


def test_full_disk_at_the_journal_leaves_the_project_unchanged(pulled: Scenario) -> None:
    """``RLIMIT_FSIZE`` in the child: every extracted file fits, the journal does not."""
    work = pulled.work()
    result = micropkg(work, *pulled.args, fsize=8 * 1024)
    assert result.code == 1, result.err
    assert result.err.splitlines() == [
        "Error: Cannot write the pulled files (File too large: .micropkg/journal.json); "
        "the project was left unchanged."
    ]
    assert snapshot(work) == pulled.old
    assert_no_litter(work)
    assert micropkg(work, "status").err == ""  # nothing left to recover


def test_full_disk_while_staging_leaves_the_project_unchanged(wide: Scenario) -> None:
    """``RLIMIT_FSIZE`` in the child: the rewritten ``refs.py`` is bigger than anything the
    extraction wrote, and than the cap."""
    work = wide.work()
    refs = next(k for k in wide.new if k.endswith("/refs.py"))
    fsize = len(wide.new[refs] or b"") * 9 // 10
    result = micropkg(work, *wide.args, fsize=fsize)
    assert result.code == 1, result.err
    assert result.err.splitlines() == [
        f"Error: Cannot write the pulled files (File too large: {refs}); "
        "the project was left unchanged."
    ]
    assert snapshot(work) == wide.old
    assert_no_litter(work)
    assert micropkg(work, "status").err == ""


# --------------------------------------------------------------------------- pull --all, doit


NAMES = ("p1", "p2", "p3", "p4", "p5")


def _small_pipeline(root: Path, name: str, version: str) -> None:
    code = root / f"src/demo_proj/pipelines/{name}"
    if code.exists():
        shutil.rmtree(code)
    # p1 and p2 both need alpha; 0.2 of p1 drops it (p2 still needs it).
    reqs = {"p1": "alpha>=1.0\n" if version == "0.1" else "beta\n", "p2": "alpha>=1.0\n"}
    add_pipeline(root, name, version=version, requirements=reqs.get(name, "beta\n"))
    for i in range(15):
        write(code / f"data/f{i}.csv", f"{name} {version} {i if version == '0.1' else -i}\n")


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of an offline resolver (pip-tools and uv) with alpha, beta, gamma."""
    house = tmp_path_factory.mktemp("wheelhouse")
    build_wheel(house, "alpha", "1.0", requires=["beta>=2"])
    build_wheel(house, "beta", "2.0")
    build_wheel(house, "gamma", "0.5")
    cache = str(tmp_path_factory.mktemp("cache"))
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(house),
        "PIP_CONFIG_FILE": os.devnull,
        "XDG_CACHE_HOME": cache,
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(house),
        "UV_CACHE_DIR": cache,
    }


@dataclass(frozen=True)
class AllScenario:
    """``pull --all`` upgrading five entries: the state after each committed entry."""

    base: Path
    prefixes: list[State]
    """prefixes[k]: the first k entries upgraded (0: old, 5: new)."""


def _manifest(root: Path, dist: str, version: str) -> str:
    lines = ["[tool.kedro.micropkg.pull]"]
    for name in NAMES:
        options = {"p3": '{alias = "third", destination = "pipelines"}', "p4": '{env = "local"}'}
        lines.append(f'"{root}/{dist}/{name}-{version}.tar.gz" = {options.get(name, "{}")}')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pull_all(tmp_path_factory: pytest.TempPathFactory) -> AllScenario:
    folder = tmp_path_factory.mktemp("all")
    source = make_project(folder / "source")
    base = make_project(
        folder / "base",
        package="consumer_pkg",
        manifest=_manifest(source, "all1", "0.1"),
        requirements="",
    )
    for version, dist in (("0.1", "all1"), ("0.2", "all2")):
        for name in NAMES:
            _small_pipeline(source, name, version)
        entries = "".join(f'"pipelines.{n}" = {{destination = "{dist}"}}\n' for n in NAMES)
        pyproject = (source / "pyproject.toml").read_text().split("[tool.kedro.micropkg")[0]
        (source / "pyproject.toml").write_text(
            f"{pyproject}[tool.kedro.micropkg.package]\n{entries}"
        )
        assert micropkg(source, "package", "--all").code == 0
        if version == "0.1":  # (packaging 0.2 elsewhere removes the 0.1 tarballs)
            assert micropkg(base, "pull", "--all").code == 0
    assert micropkg(base, "init").code == 0  # a dodo.py for `doit pull_all`
    pyproject = base / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("/all1/", "/all2/").replace("-0.1.tar", "-0.2.tar")
    )
    prefixes = [snapshot(base)]
    for k in range(1, len(NAMES)):
        work = clone(base, base.with_name("prefix"))
        assert micropkg(work, "pull", "--all", fault=f"committed#{k}").code == -9
        assert "Recovered: completed" in micropkg(work, "status").err
        prefixes.append(snapshot(work))
    prefixes.append(_reference(base, ("pull", "--all")))
    assert len({tuple(sorted(p.items())) for p in prefixes}) == len(NAMES) + 1
    return AllScenario(base, prefixes)


def test_pull_all_killed_anywhere_keeps_each_entry_whole(pull_all: AllScenario) -> None:
    scenario = Scenario(pull_all.base, ("pull", "--all"), pull_all.prefixes)
    rng = random.Random(f"{SEED}-pull-all")
    seen = set()
    # appended: a pull's entry is in the pending log, its journal not yet deleted;
    # lock-written: the run's lock is written, the pending log not yet deleted.
    for fault in ("place#3", "backup#70", "committed#3", "appended#2", "lock-written", None, None):
        work = scenario.work()
        if fault:
            assert micropkg(work, "pull", "--all", fault=fault).code == -9
        else:
            kill_after(start(work, "pull", "--all"), rng.uniform(0.3, 1.6))
        seen.add(next_run(scenario, work, after_kill(scenario, work)))
        result = micropkg(work, "pull", "--all")  # the next run pulls what is left
        assert result.code == 0, result.err
        assert snapshot(work) == scenario.new
    assert len(seen) >= 3, seen
    # Ownership: p1 0.2 dropped alpha, which p2 still needs: the line stays.
    assert b"\nalpha>=1.0\n" in (scenario.new["requirements.in"] or b"")


def test_doit_pull_all_killed_with_its_resolver(
    pull_all: AllScenario, wheelhouse: dict[str, str]
) -> None:
    """``doit pull_all`` (the pulls, then pip-compile): the process group is killed."""
    final = _reference_env(pull_all.base, ("doit", "pull_all"), wheelhouse)
    assert final["requirements.txt"] != pull_all.prefixes[-1].get("requirements.txt")
    scenario = Scenario(pull_all.base, ("doit", "pull_all"), [*pull_all.prefixes, final])
    rng = random.Random(f"{SEED}-doit")
    for fault in ("compiled", None, None):
        work = scenario.work()
        proc = start(
            work,
            "doit",
            "pull_all",
            env={**wheelhouse, **({"MICROPKG_TEST_FAULT": fault} if fault else {})},
        )
        if fault:
            assert proc.wait() == -9
        else:
            kill_after(proc, rng.uniform(0.5, 4.0), group=True)
        next_run(scenario, work, after_kill(scenario, work))
    result = micropkg(work, "doit", "pull_all", env=wheelhouse)
    assert result.code == 0, result.err
    assert snapshot(work) == final


def _reference_env(base: Path, args: tuple[str, ...], env: dict[str, str]) -> State:
    reference = clone(base, base.with_name("reference-env"))
    result = micropkg(reference, *args, env=env)
    assert result.code == 0, result.err
    assert_no_litter(reference)
    return snapshot(reference)


# --------------------------------------------------------------------------- package --all


def test_package_all_killed_leaves_whole_tarballs_only(
    tmp_path: Path,
) -> None:
    root = make_project(
        tmp_path / "base",
        manifest="[tool.kedro.micropkg.package]\n"
        + "".join(f'"pipelines.{n}" = {{}}\n' for n in NAMES[:4])
        + '"pipelines.p5" = {alias = "fifth"}\n',
    )
    for name in NAMES:
        _small_pipeline(root, name, "0.1")
    old = snapshot(root)
    reference = clone(root, tmp_path / "reference")
    assert micropkg(reference, "package", "--all").code == 0
    tarballs = {k: v for k, v in snapshot(reference).items() if k.startswith("dist/")}
    assert len(tarballs) == 5

    def check(work: Path) -> None:
        state = snapshot(work)
        assert {k: v for k, v in state.items() if not k.startswith("dist")} == {
            k: v for k, v in old.items() if not k.startswith("dist")
        }
        for rel, data in state.items():
            if rel.startswith("dist/"):
                assert tarballs.get(rel, b"missing") == data, rel  # whole, or absent

    rng = random.Random(f"{SEED}-package")
    for fault in ("sdist#3", None, None):
        work = clone(root, tmp_path / "work")
        if fault:
            assert micropkg(work, "package", "--all", fault=fault).code == -9
            assert litter(work), "the killed run left its temporary tarball"
        else:
            kill_after(start(work, "package", "--all"), rng.uniform(0.3, 1.5))
        result = micropkg(work, "status")
        assert result.code == 0, result.err
        check(work)
        assert_no_litter(work)
        assert micropkg(work, "package", "--all").code == 0
        check(work)
        assert sorted(k for k in snapshot(work) if k.startswith("dist/")) == sorted(tarballs)


# --------------------------------------------------------------------------- build-reqs


def test_build_reqs_killed_keeps_the_old_or_the_new_file(
    tmp_path: Path, wheelhouse: dict[str, str]
) -> None:
    root = make_project(tmp_path / "base", requirements="# compiled long ago\nalpha==0.9\n")
    write(root / "requirements.in", "alpha>=1.0\ngamma\n")
    args = ("build-reqs", "--backend", "uv")
    old = snapshot(root)
    new = _reference_env(root, args, wheelhouse)
    assert b"alpha==1.0" in (new["requirements.txt"] or b"")
    scenario = Scenario(root, args, [old, new])
    rng = random.Random(f"{SEED}-build-reqs")
    for fault in ("compiled", None, None, None):
        work = scenario.work()
        env = {**wheelhouse, **({"MICROPKG_TEST_FAULT": fault} if fault else {})}
        proc = start(work, *args, env=env)
        if fault:
            assert proc.wait() == -9
            assert litter(work) == [".requirements.txt.micropkg-tmp"]
        else:
            kill_after(proc, rng.uniform(0.2, 1.0), group=True)
        next_run(scenario, work, pending=False)
    result = micropkg(work, *args, env=wheelhouse)
    assert result.code == 0, result.err
    assert snapshot(work) == new
