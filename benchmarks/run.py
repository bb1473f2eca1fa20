"""Benchmark micropkg-tasks against Kedro 0.19.15 and write ``benchmarks/results.md`` + ``.json``.

One command from the repository root (with the dev venv's Python)::

    python benchmarks/run.py                 # full run: N=20 and N=500, Kedro at N=5 scaled
    python benchmarks/run.py --kedro-n 20    # Kedro measured at N=20 itself (~15 min more)
    python benchmarks/run.py --smoke         # N=3, one repetition, no Kedro: does the runner work?

Method (see ``benchmarks/README.md``):

* every row times a whole process (``perf_counter`` around spawn → ``wait4``); the median of
  ``--repeat`` runs after ``--warmup`` untimed runs is reported;
* peak RSS = max(sum of ``VmRSS`` over the process tree sampled from ``/proc`` every 10 ms,
  ``ru_maxrss`` from ``wait4``, which is the largest single process of the tree);
* "executed" counts tarballs whose (inode, mtime_ns, size) changed, or micro-packages pulled;
* the tool under test never sees the machine's pip configuration (``PIP_CONFIG_FILE=/dev/null``,
  no ``PIP_*``/``UV_*`` variables) and Kedro's telemetry is off.

Exit status: 0 when every row ran (FAIL rows included, unless ``--strict``), 2 when a command
failed or a check could not run, 1 with ``--strict`` and any FAIL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from generate import GeneratedProject, generate_project  # noqa: E402

KEDRO_VERSION = "0.19.15"
RSS_LIMIT_MB = 150.0
BIG_RSS_LIMIT_MB = 100.0
GROWTH_LIMIT = 5.5
#: The growth rows: time(large N) / time(small N) of each must stay under GROWTH_LIMIT.
GROWTH_ROWS = (
    "scale-pull",
    "scale-pull-noop",
    "scale-package-cold",
    "scale-package-noop",
    "scale-doit-edit",
    "scale-cli-edit",
    "scale-doit-list",
)
RESOLVER_MARKERS = ("piptools", "pip-compile", "pip_compile", "uv pip compile")
README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
POLL_SECONDS = 0.01


# --------------------------------------------------------------------------------------------
# Timing one process


@dataclass
class Sample:
    """One timed run of one command."""

    seconds: float
    returncode: int
    peak_rss_kb: int
    tree_rss_kb: int
    single_rss_kb: int
    children: list[str]
    executed: int | None = None
    changed: list[str] = field(default_factory=list)
    output_tail: str = ""


def _read_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            parts = fh.read().split(b"\0")
    except OSError:
        return "?"
    return " ".join(p.decode(errors="replace") for p in parts if p)


class _TreeSampler(threading.Thread):
    """Samples the summed RSS of a process tree and records every descendant's command line."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.peak_kb = 0
        self.seen: dict[int, str] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(POLL_SECONDS)

    def sample(self) -> None:
        total = 0
        stack = [self.root_pid]
        while stack:
            pid = stack.pop()
            total += _read_rss_kb(pid)
            for child in _children(pid):
                if child not in self.seen:
                    self.seen[child] = _cmdline(child)
                stack.append(child)
        self.peak_kb = max(self.peak_kb, total)


def run_timed(cmd: Sequence[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Run ``cmd`` in ``cwd``; wall time, peak RSS of its process tree, its descendants."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        sampler.stop_event.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    single = int(usage.ru_maxrss)  # KiB on Linux
    return Sample(
        seconds=seconds,
        returncode=proc.returncode,
        peak_rss_kb=max(sampler.peak_kb, single),
        tree_rss_kb=sampler.peak_kb,
        single_rss_kb=single,
        children=sorted(set(sampler.seen.values())),
        output_tail="\n".join(text.strip().splitlines()[-15:]),
    )


# --------------------------------------------------------------------------------------------
# Rows


@dataclass
class Check:
    """One target of a row: a description and whether it held."""

    text: str
    ok: bool


@dataclass
class Row:
    """A measured (or derived) line of the results table."""

    id: str
    label: str
    tool: str
    n: int
    command: str = ""
    samples: list[Sample] = field(default_factory=list)
    warmup: int = 0
    target: str = ""
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str = ""
    skipped: str = ""
    floor_id: str = ""
    expected_executed: int | None = None

    @property
    def times(self) -> list[float]:
        """Wall seconds of the measured runs."""
        return [s.seconds for s in self.samples]

    @property
    def median(self) -> float | None:
        """Median wall seconds."""
        return statistics.median(self.times) if self.samples else None

    @property
    def peak_rss_mb(self) -> float | None:
        """Peak RSS over every measured run, in MiB."""
        return max(s.peak_rss_kb for s in self.samples) / 1024 if self.samples else None

    @property
    def executed(self) -> str:
        """Executed counts of the measured runs (one value when they all agree)."""
        values = [s.executed for s in self.samples if s.executed is not None]
        if not values:
            return ""
        return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))

    @property
    def status(self) -> str:
        """ERROR, SKIP, PASS, FAIL, or "" for an informational row."""
        if self.error:
            return "ERROR"
        if self.skipped:
            return "SKIP"
        if not self.checks:
            return ""
        return "PASS" if all(c.ok for c in self.checks) else "FAIL"


@dataclass
class Job:
    """A row to measure: its command, where and how it runs, and what is done around each run."""

    row: Row
    cmd: Sequence[str]
    cwd: Path
    env: dict[str, str]
    prepare: Callable[[int], None] | None = None
    counter: Counter | None = None
    verify: Callable[[Sample, int], str | None] | None = None


class Counter:
    """Counts what a run produced: tarballs changed in a folder."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        """(inode, mtime_ns, size) of every tarball."""
        if not self.dist.is_dir():
            return {}
        snap = {}
        for p in self.dist.glob("*.tar.gz"):
            st = p.stat()
            snap[p.name] = (st.st_ino, st.st_mtime_ns, st.st_size)
        return snap

    def changed(self, before: dict[str, tuple[int, int, int]]) -> list[str]:
        """Tarballs created or rewritten since ``before``."""
        after = self.snapshot()
        return sorted(name for name, key in after.items() if before.get(name) != key)


class PullCounter(Counter):
    """Counts micro-packages present (code and tests) in a pull project."""

    def __init__(self, root: Path, package: str, names: Sequence[str], dest: str) -> None:
        super().__init__(root / "dist")
        self.code = root / "src" / package / dest
        self.tests = root / "tests" / dest
        self.names = list(names)

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        """Nothing to remember: the project is fresh before each run."""
        return {}

    def changed(self, before: dict[str, tuple[int, int, int]]) -> list[str]:
        """Micro-packages whose ``__init__.py`` and test module both landed."""
        return [
            n
            for n in self.names
            if (self.code / n / "__init__.py").is_file()
            and (self.tests / n / "test_pipeline.py").is_file()
        ]


@dataclass
class Settings:
    """Everything a run needs to know."""

    n: int
    n_large: int
    repeat: int
    warmup: int
    kedro: bool
    kedro_n: int
    kedro_venv: Path
    python: str
    work: Path
    out: Path
    smoke: bool
    update_readme: bool
    strict: bool
    verbose: bool
    scale: tuple[int, ...] = ()
    """N of the growth rows: (small, large[, pull-only extra]); () skips them."""
    scale_repeat: int = 3
    big_mb: int = 0
    """Size of the single data file of the memory rows (0 skips them)."""


class Bench:
    """Builds the projects, runs every row, evaluates the targets."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.rows: list[Row] = []
        self.by_id: dict[str, Row] = {}
        self.headline: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {}
        self.env = self._clean_env()
        tool_bin = Path(s.python).parent
        self.env_ours = dict(self.env, PATH=f"{tool_bin}{os.pathsep}{self.env.get('PATH', '')}")
        kedro_bin = s.kedro_venv / "bin"
        self.env_kedro = dict(self.env, PATH=f"{kedro_bin}{os.pathsep}{self.env.get('PATH', '')}")
        micropkg = tool_bin / "micropkg"
        doit = tool_bin / "doit"
        self.micropkg = [str(micropkg)] if micropkg.exists() else [s.python, "-m", "micropkg_tasks"]
        self.doit = [str(doit)] if doit.exists() else [s.python, "-m", "doit"]
        self.kedro = [str(kedro_bin / "kedro")]
        self.projects = s.work / "projects"
        self.trash = s.work / "trash"
        self._discarded = 0

    # -- environment ------------------------------------------------------------------------

    @staticmethod
    def _clean_env() -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIP_", "UV_"))
            # A user's install reuses its bytecode: without it every process compiles our
            # modules again (~0.3 s here), which would swamp the rows.
            and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
        }
        env.update(
            PIP_CONFIG_FILE=os.devnull,
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            KEDRO_DISABLE_TELEMETRY="1",
            DO_NOT_TRACK="1",
        )
        return env

    def log(self, msg: str) -> None:
        """Progress on stderr."""
        print(msg, file=sys.stderr, flush=True)

    # -- measuring --------------------------------------------------------------------------

    def add(self, row: Row) -> Row:
        """Register a row."""
        self.rows.append(row)
        self.by_id[row.id] = row
        return row

    def measure(
        self,
        row: Row,
        cmd: Sequence[str],
        cwd: Path,
        env: dict[str, str],
        *,
        prepare: Callable[[int], None] | None = None,
        counter: Counter | None = None,
        verify: Callable[[Sample, int], str | None] | None = None,
        warmup: int | None = None,
    ) -> Row:
        """Run ``cmd`` warm-up + repeat times and store the samples in ``row``."""
        job = Job(row, cmd, cwd, env, prepare, counter, verify)
        self.measure_alternating([job], warmup=warmup)
        return row

    def measure_alternating(self, jobs: Sequence[Job], *, warmup: int | None = None) -> None:
        """Run each job's ``cmd`` warm-up + repeat times, the jobs taking turns.

        A floor and the row compared with it are measured this way, so that both see the
        machine in the same state (measured one block after the other, a ratio would follow
        whatever the machine did during each block).
        """
        warmup = self.s.warmup if warmup is None else warmup
        for job in jobs:
            job.row.warmup = warmup
            job.row.command = job.row.command or " ".join(
                shlex.quote(Path(c).name if i == 0 else c) for i, c in enumerate(job.cmd)
            )
            self.add(job.row)
        for i in range(warmup + self.s.repeat):
            for job in jobs:
                if not job.row.error:
                    self._sample(job, i, keep=i >= warmup)
        for job in jobs:
            row = job.row
            self.log(self.describe(row))
            if self.s.verbose and row.samples:
                self.log("    " + row.samples[-1].output_tail.replace("\n", "\n    "))

    @staticmethod
    def _sample(job: Job, i: int, *, keep: bool) -> None:
        """Run ``job`` once (its ``i``-th run); keep the sample in its row when ``keep``."""
        row = job.row
        if job.prepare:
            job.prepare(i)
        before = job.counter.snapshot() if job.counter else {}
        sample = run_timed(job.cmd, job.cwd, job.env)
        if job.counter:
            sample.changed = job.counter.changed(before)
            sample.executed = len(sample.changed)
        if sample.returncode != 0:
            row.error = f"exit {sample.returncode}: {sample.output_tail}"
            return
        problem = job.verify(sample, i) if job.verify else None
        if problem:
            row.problems.append(f"run {i}: {problem}")
        if keep:
            row.samples.append(sample)

    def describe(self, row: Row) -> str:
        """One console line for ``row``."""
        if row.error:
            return f"[ERROR] {row.label}: {row.error}"
        if row.skipped:
            return f"[SKIP ] {row.label}: {row.skipped}"
        med = row.median
        timing = f"median {med:.3f} s" if med is not None else "no samples"
        rss = f", peak RSS {row.peak_rss_mb:.0f} MB" if row.peak_rss_mb else ""
        ex = f", executed {row.executed}" if row.executed else ""
        return f"[ run ] {row.label} ({row.tool}, N={row.n}): {timing}{rss}{ex}"

    # -- projects ---------------------------------------------------------------------------

    def discard(self, path: Path) -> None:
        """Move ``path`` (if it exists) out of the way, into the trash deleted after the run.

        Never deleted between timed runs: on the VM of the recorded runs (ext4 mounted with
        ``discard``), deleting a pull project's 11,000 files made file creation slower for
        minutes after (the extraction floor took 3.1 s four times in fresh folders, and 8, 13,
        17 and 20 s with the last project deleted before each run).
        """
        if path.exists():
            self.trash.mkdir(parents=True, exist_ok=True)
            self._discarded += 1
            path.rename(self.trash / f"{self._discarded:06d}-{path.name}")

    def reset_cold(self, root: Path) -> None:
        """No tarballs and no doit state: the next package run is a cold one."""
        self.discard(root / "dist")
        self.discard(root / ".micropkg")

    def project(self, tag: str, n: int, **kwargs: Any) -> GeneratedProject:
        """Generate (fresh) project ``tag``."""
        t0 = time.perf_counter()
        proj = generate_project(self.projects / tag, n, **kwargs)
        self.meta.setdefault("input_files", {})[str(n)] = len(proj.input_files)
        self.meta.setdefault("generation_seconds", {})[tag] = round(time.perf_counter() - t0, 3)
        return proj

    def pull_project(self, tag: str, tarballs: Sequence[Path]) -> Callable[[int], None]:
        """A ``prepare`` that re-creates a fresh pull project holding ``tarballs`` in ``dist/``."""

        def prepare(_: int) -> None:
            self.discard(self.projects / tag)
            proj = self.project(
                tag,
                0,
                package="bench_dest",
                pulls=[f"dist/{t.name}" for t in tarballs],
                with_dodo=True,
            )
            (proj.root / "dist").mkdir()
            for t in tarballs:
                shutil.copy2(t, proj.root / "dist" / t.name)
            os.sync()  # these writes reach the disk now, not inside the timed run

        return prepare

    # -- the scenarios ----------------------------------------------------------------------

    def floors(self, projects: Sequence[GeneratedProject]) -> None:
        """Interpreter start-up, and start-up + stat/read every input file once."""
        self.measure(
            Row("floor-python", "floor: interpreter start-up", "floor", 0, "python -c pass"),
            [self.s.python, "-c", "pass"],
            REPO,
            self.env_ours,
        )
        code = (
            "import os, sys\n"
            "for p in open(sys.argv[1]).read().splitlines():\n"
            "    os.stat(p)\n"
            "    with open(p, 'rb') as f:\n"
            "        f.read()\n"
        )
        for proj in projects:
            listing = self.s.work / f"inputs-{len(proj.names)}.txt"
            listing.write_text("\n".join(str(proj.root / f) for f in proj.input_files) + "\n")
            n = len(proj.names)
            self.measure(
                Row(
                    f"floor-read-{n}",
                    f"floor: start-up + stat & read {len(proj.input_files):,} input files",
                    "floor",
                    n,
                    "python -c '<stat+read each input>'",
                ),
                [self.s.python, "-c", code, str(listing)],
                proj.root,
                self.env_ours,
            )

    def ours_small(self, proj: GeneratedProject, tag: str) -> None:
        """Rows at N (package cold / no-op / one edit, pull, build-reqs)."""
        n = len(proj.names)
        root = proj.root
        dist = Counter(root / "dist")
        floor = f"floor-read-{n}"

        def cold(_: int) -> None:
            self.reset_cold(root)

        row = self.measure(
            Row(f"{tag}-package-cold", "package --all, cold", "ours", n, floor_id=floor),
            [*self.micropkg, "package", "--all"],
            root,
            self.env_ours,
            prepare=cold,
            counter=dist,
        )
        row.expected_executed = n
        if row.error or tag != "ours":
            return
        self.measure(
            Row(f"{tag}-doit-noop", "no-op `doit package`", "ours", n, floor_id=floor),
            [*self.doit, "package"],
            root,
            self.env_ours,
            counter=dist,
        ).expected_executed = 0
        self.measure(
            Row(f"{tag}-cli-noop", "no-op `package --all`", "ours", n, floor_id=floor),
            [*self.micropkg, "package", "--all"],
            root,
            self.env_ours,
            counter=dist,
        ).expected_executed = 0

        for cmd, rid, label in (
            ([*self.doit, "package"], "doit-edit", "one parameter file edited, `doit package`"),
            ([*self.micropkg, "package", "--all"], "cli-edit", "one parameter file edited, CLI"),
        ):
            edited: list[str] = []

            def edit(i: int, edited: list[str] = edited, rid: str = rid) -> None:
                name = proj.names[i % len(proj.names)]
                with proj.flat_params(name).open("a", encoding="utf-8") as fh:
                    fh.write(f"# benchmark edit {rid} {i}\n")
                edited.append(name)

            def verify(sample: Sample, i: int, edited: list[str] = edited) -> str | None:
                want = edited[-1]
                if len(sample.changed) == 1 and sample.changed[0].startswith(f"{want}-"):
                    return None
                return f"edited {want}, tarballs changed: {sample.changed}"

            row = self.measure(
                Row(f"{tag}-{rid}", label, "ours", n, floor_id=floor),
                cmd,
                root,
                self.env_ours,
                prepare=edit,
                counter=dist,
                verify=verify,
            )
            row.expected_executed = 1

    def ours_pull(self, proj: GeneratedProject, tag: str) -> None:
        """``micropkg pull --all`` of our tarballs into a fresh project."""
        tarballs = sorted((proj.root / "dist").glob("*.tar.gz"))
        n = len(proj.names)
        ptag = f"pull-{tag}-{n}"
        row = self.measure(
            Row(f"{tag}-pull", "pull --all into a fresh project", "ours", n),
            [*self.micropkg, "pull", "--all"],
            self.projects / ptag,
            self.env_ours,
            prepare=self.pull_project(ptag, tarballs),
            counter=PullCounter(self.projects / ptag, "bench_dest", proj.names, "pipelines"),
        )
        row.expected_executed = n

    def ours_build_reqs(self, proj: GeneratedProject) -> None:
        """``build-reqs`` with an unchanged ``requirements.in``: no resolver; ``--check``."""
        n = len(proj.names)
        rows = [
            (
                Row("ours-build-reqs", "build-reqs, requirements.in unchanged", "ours", n),
                [],
            ),
            (
                Row("ours-build-reqs-check", "build-reqs --check", "ours", n),
                ["--check"],
            ),
        ]
        # The first compile (untimed) resolves against the index: it needs the network.
        first = run_timed([*self.micropkg, "build-reqs"], proj.root, self.env_ours)
        if first.returncode != 0:
            for row, extra in rows:
                row.command = " ".join(["micropkg", "build-reqs", *extra])
                row.skipped = f"first compile failed (network?): {first.output_tail[-300:]}"
                self.add(row)
                self.log(self.describe(row))
            return
        self.meta["first_compile_seconds"] = round(first.seconds, 2)
        seen = [c for c in first.children if _is_resolver(c)]
        self.meta["first_compile_resolver"] = seen
        for row, extra in rows:
            self.measure(row, [*self.micropkg, "build-reqs", *extra], proj.root, self.env_ours)
        rows[0][0].notes.append(
            "detector check: the first (untimed) compile started "
            + (
                f"`{Path(seen[0].split()[0]).name} {' '.join(seen[0].split()[1:4])}`"
                if seen
                else "no process recognised as a resolver: the check below proves nothing"
            )
        )

    def ours_large(self, proj: GeneratedProject) -> None:
        """N=500: cold package (serial and 2 threads), no-op ``doit package``."""
        n = len(proj.names)
        root = proj.root
        dist = Counter(root / "dist")
        floor = f"floor-read-{n}"

        def cold(_: int) -> None:
            self.reset_cold(root)

        for rid, label, cmd in (
            ("large-cold", "package --all, cold", [*self.micropkg, "package", "--all"]),
            (
                "large-cold-doit-p2",
                "`doit -n 2 -P thread package`, cold",
                [*self.doit, "-n", "2", "-P", "thread", "package"],
            ),
            (
                "large-cold-cli-p2",
                "package --all -n 2 -P thread, cold",
                [*self.micropkg, "package", "--all", "-n", "2", "-P", "thread"],
            ),
        ):
            self.measure(
                Row(rid, label, "ours", n, floor_id=floor),
                cmd,
                root,
                self.env_ours,
                prepare=cold,
                counter=dist,
            ).expected_executed = n
        self.measure(
            Row("large-doit-noop", "no-op `doit package`", "ours", n, floor_id=floor),
            [*self.doit, "package"],
            root,
            self.env_ours,
            counter=dist,
        ).expected_executed = 0

    # -- growth with N ----------------------------------------------------------------------

    EXTRACT_FLOOR = (
        "import shutil, sys, tarfile\n"
        "from pathlib import Path\n"
        "root, pkg = Path(sys.argv[1]), sys.argv[2]\n"
        "for tarball in sorted((root / 'dist').glob('*.tar.gz')):\n"
        "    name = tarball.name.split('-')[0]\n"
        "    with tarfile.open(tarball, 'r:gz') as tar:\n"
        "        for m in tar:\n"
        "            parts = m.name.split('/')[1:]\n"
        "            if not m.isfile() or len(parts) < 2:\n"
        "                continue\n"
        "            if parts[0] == 'tests':\n"
        "                dest = root.joinpath('tests', 'pipelines', name, *parts[1:])\n"
        "            elif parts[1] == 'config':\n"
        "                dest = root.joinpath('conf', 'base', *parts[2:])\n"
        "            else:\n"
        "                dest = root.joinpath('src', pkg, 'pipelines', *parts)\n"
        "            dest.parent.mkdir(parents=True, exist_ok=True)\n"
        "            with tar.extractfile(m) as src, open(dest, 'wb') as out:\n"
        "                shutil.copyfileobj(src, out)\n"
    )

    def measure_scaled(self, row: Row, cmd: Sequence[str], cwd: Path, **kwargs: Any) -> Row:
        """:meth:`measure` with the growth rows' repetitions (no warm-up: each run is long)."""
        self.measure_scaled_jobs(Job(row, cmd, cwd, kwargs.pop("env", self.env_ours), **kwargs))
        return row

    def measure_scaled_jobs(self, *jobs: Job) -> None:
        """:meth:`measure_alternating` with the growth rows' repetitions, without warm-up."""
        repeat, self.s.repeat = self.s.repeat, self.s.scale_repeat
        try:
            self.measure_alternating(jobs, warmup=0)
        finally:
            self.s.repeat = repeat

    def scaling(self) -> None:
        """The growth rows: the same scenarios at each N of ``--scale``, and their floors.

        At the two first N every row runs; at a third N (2000 by default) only the pull rows,
        ``package --all`` cold and their floors.
        """
        for index, n in enumerate(self.s.scale):
            full = index < 2
            proj = self.project(f"scale-{n}", n)
            root = proj.root
            dist = Counter(root / "dist")
            listing = self.s.work / f"scale-inputs-{n}.txt"
            listing.write_text("\n".join(proj.input_files) + "\n", encoding="utf-8")
            out = self.s.work / f"scale-floor-{n}.tar.gz"
            row = Row(
                f"scale-package-cold-{n}",
                "package --all, cold",
                "ours",
                n,
                floor_id=f"floor-tar-{n}",
            )
            self.measure_scaled_jobs(
                Job(
                    Row(
                        f"floor-tar-{n}",
                        f"floor: `tar czf` of the {len(proj.input_files):,} inputs",
                        "floor",
                        n,
                        f"tar czf OUT -C ROOT -T <{len(proj.input_files):,} files>",
                    ),
                    ["tar", "czf", str(out), "-C", str(root), "-T", str(listing)],
                    root,
                    self.env_ours,
                ),
                Job(
                    row,
                    [*self.micropkg, "package", "--all"],
                    root,
                    self.env_ours,
                    prepare=lambda _, root=root: self.reset_cold(root),
                    counter=dist,
                ),
            )
            row.expected_executed = n
            if row.error:
                continue
            if full:
                self.measure_scaled(
                    Row(f"scale-package-noop-{n}", "package --all, nothing changed", "ours", n),
                    [*self.micropkg, "package", "--all"],
                    root,
                    counter=dist,
                ).expected_executed = 0
                for rid, label, cmd in (
                    (
                        "scale-doit-edit",
                        "one parameter file edited, `doit package`",
                        [*self.doit, "package"],
                    ),
                    (
                        "scale-cli-edit",
                        "one parameter file edited, `package --all`",
                        [*self.micropkg, "package", "--all"],
                    ),
                ):

                    def edit(i: int, rid: str = rid, proj: GeneratedProject = proj) -> None:
                        with proj.flat_params(proj.names[i % len(proj.names)]).open("a") as fh:
                            fh.write(f"# benchmark edit {rid} {i}\n")

                    self.measure_scaled(
                        Row(f"{rid}-{n}", label, "ours", n),
                        cmd,
                        root,
                        prepare=edit,
                        counter=dist,
                    ).expected_executed = 1
                self.measure_scaled(
                    Row(f"scale-doit-list-{n}", "`doit list` (load every task)", "ours", n),
                    [*self.doit, "list"],
                    root,
                )
            tarballs = sorted((root / "dist").glob("*.tar.gz"))
            ptag = f"scale-pull-{n}"
            prepare = self.pull_project(ptag, tarballs)
            proot = self.projects / ptag
            row = Row(
                f"scale-pull-{n}",
                "pull --all into a fresh project",
                "ours",
                n,
                floor_id=f"floor-extract-{n}",
            )
            floor = Row(
                f"floor-extract-{n}",
                f"floor: extract the {n:,} tarballs with tarfile",
                "floor",
                n,
                "python -c '<tarfile: extract into the same layout>'",
            )
            self.measure_scaled_jobs(
                Job(
                    floor,
                    [self.s.python, "-c", self.EXTRACT_FLOOR, str(proot), "bench_dest"],
                    self.projects,
                    self.env_ours,
                    prepare=prepare,
                    counter=PullCounter(proot, "bench_dest", proj.names, "pipelines"),
                ),
                Job(
                    row,
                    [*self.micropkg, "pull", "--all"],
                    proot,
                    self.env_ours,
                    prepare=prepare,
                    counter=PullCounter(proot, "bench_dest", proj.names, "pipelines"),
                ),
            )
            floor.expected_executed = n
            row.expected_executed = n
            if not row.error:
                self.measure_scaled(
                    Row(f"scale-pull-noop-{n}", "pull --all, nothing changed", "ours", n),
                    [*self.micropkg, "pull", "--all"],
                    proot,
                )
            self.discard(root)
            self.discard(proot)

    # -- memory with one large file --------------------------------------------------------

    def memory(self) -> None:
        """Package and pull a micro-package whose only data file is ``--big-mb`` MB."""
        mb = self.s.big_mb
        proj = self.project("big", 1)
        data = proj.code_dir(proj.names[0]) / "data" / "big.csv"
        data.parent.mkdir(parents=True, exist_ok=True)
        block = _csv_block()
        with data.open("wb") as fh:
            for _ in range(mb):
                fh.write(block)
        env = dict(self.env_ours, MICROPKG_MAX_SIZE="2000000000")
        size = f"{mb / 1000:g} GB" if mb >= 1000 else f"{mb} MB"
        row = self.measure(
            Row("big-package", f"package one micro-package with a {size} data file", "ours", 1),
            [*self.micropkg, "package", "--all"],
            proj.root,
            env,
            prepare=lambda _: self.reset_cold(proj.root),
            counter=Counter(proj.root / "dist"),
            warmup=0,
        )
        row.expected_executed = 1
        if row.error:
            return
        tarballs = sorted((proj.root / "dist").glob("*.tar.gz"))
        ptag = "big-pull"
        proot = self.projects / ptag
        self.measure(
            Row("big-pull", f"pull that micro-package ({size} data file)", "ours", 1),
            [*self.micropkg, "pull", "--all"],
            proot,
            env,
            prepare=self.pull_project(ptag, tarballs),
            counter=PullCounter(proot, "bench_dest", proj.names, "pipelines"),
            warmup=0,
        ).expected_executed = 1
        self.discard(proj.root)
        self.discard(proot)

    def kedro_rows(self, proj: GeneratedProject, empty: GeneratedProject | None) -> None:
        """Kedro 0.19.15 on a copy of the same project: package cold, unchanged, pull."""
        n = len(proj.names)
        root = proj.root
        dist = Counter(root / "dist")
        if empty is not None:
            for sub in ("package", "pull"):
                self.measure(
                    Row(
                        f"kedro-{sub}-startup",
                        f"`micropkg {sub} --all`, empty manifest (start-up)",
                        "kedro",
                        0,
                    ),
                    [*self.kedro, "micropkg", sub, "--all"],
                    empty.root,
                    self.env_kedro,
                )

        def cold(_: int) -> None:
            self.discard(root / "dist")

        row = self.measure(
            Row("kedro-package-cold", "package --all, cold", "kedro", n),
            [*self.kedro, "micropkg", "package", "--all"],
            root,
            self.env_kedro,
            prepare=cold,
            counter=dist,
        )
        row.expected_executed = n
        if row.error:
            return
        self.measure(
            Row("kedro-package-again", "package --all, nothing changed", "kedro", n),
            [*self.kedro, "micropkg", "package", "--all"],
            root,
            self.env_kedro,
            counter=dist,
        )
        tarballs = sorted((root / "dist").glob("*.tar.gz"))
        ptag = f"pull-kedro-{n}"
        self.measure(
            Row("kedro-pull", "pull --all into a fresh project", "kedro", n),
            [*self.kedro, "micropkg", "pull", "--all"],
            self.projects / ptag,
            self.env_kedro,
            prepare=self.pull_project(ptag, tarballs),
            counter=PullCounter(self.projects / ptag, "bench_dest", proj.names, "pipelines"),
        ).expected_executed = n

    # -- orchestration ----------------------------------------------------------------------

    def run(self) -> None:
        """Everything, in an order that keeps each row's preconditions."""
        s = self.s
        self.meta.update(self._machine())
        for folder in (self.projects, self.trash):  # a previous run's
            if folder.exists():
                shutil.rmtree(folder)
        small = self.project("ours", s.n)
        large = self.project("large", s.n_large) if s.n_large else None
        self.floors([small] + ([large] if large else []))

        self.ours_small(small, "ours")
        if not self.by_id["ours-package-cold"].error:
            self.ours_pull(small, "ours")
            self.ours_build_reqs(small)

        if s.kedro:
            self.meta["kedro_version"] = self._kedro_version()
            kproj = self.project("kedro", s.kedro_n)
            scaled = s.kedro_n != s.n
            empty = self.project("kedro-empty", 0, with_dodo=False) if scaled else None
            self.kedro_rows(kproj, empty)
            if scaled:
                # Ours on the very project Kedro ran on, for a direct (unscaled) ratio.
                direct = self.project("ours-kedro-n", s.kedro_n)
                self.ours_small(direct, "direct")
                if not self.by_id["direct-package-cold"].error:
                    self.ours_pull(direct, "direct")

        if large:
            self.ours_large(large)
        if s.scale:
            self.scaling()
        if s.big_mb:
            self.memory()
        shutil.rmtree(self.trash, ignore_errors=True)
        self.evaluate()

    def _machine(self) -> dict[str, Any]:
        cpu = ""
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        try:
            load = Path("/proc/loadavg").read_text().split()[:3]
        except OSError:
            load = []
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        ours = subprocess.run(
            [self.s.python, "-c", "import micropkg_tasks as m; print(m.__version__)"],
            capture_output=True,
            text=True,
            env=self.env_ours,
            check=False,
        ).stdout.strip()
        return {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit,
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
            "cpu": cpu,
            "loadavg_at_start": " ".join(load),
            "python": platform.python_version(),
            "micropkg_tasks": ours or "?",
            "n": self.s.n,
            "n_large": self.s.n_large,
            "repeat": self.s.repeat,
            "warmup": self.s.warmup,
            "kedro": self.s.kedro,
            "kedro_n": self.s.kedro_n if self.s.kedro else None,
            "smoke": self.s.smoke,
        }

    def _kedro_version(self) -> str:
        out = subprocess.run(
            [
                str(self.s.kedro_venv / "bin" / "python"),
                "-c",
                "import kedro, platform; "
                "print(f'{kedro.__version__} (Python {platform.python_version()})')",
            ],
            capture_output=True,
            text=True,
            env=self.env_kedro,
            check=False,
        )
        return out.stdout.strip()

    # -- targets ----------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Attach each target's checks to its row and build the headline ratios."""
        s = self.s
        g = self.by_id.get

        def med(rid: str) -> float | None:
            row = g(rid)
            return row.median if row and not row.error and not row.skipped else None

        for row in self.rows:
            if row.expected_executed is not None and row.samples:
                got = [smp.executed for smp in row.samples]
                ok = all(x == row.expected_executed for x in got)
                row.checks.append(Check(f"executed = {row.expected_executed}", ok))
            if row.tool == "ours" and row.samples:
                rss = row.peak_rss_mb or 0.0
                row.checks.append(Check(f"peak RSS ≤ {RSS_LIMIT_MB:.0f} MB", rss <= RSS_LIMIT_MB))
            if row.problems:
                row.checks.append(Check("per-run verification", False))

        def limit(rid: str, seconds: float, text: str) -> None:
            row = g(rid)
            if row and row.median is not None:
                row.checks.append(Check(text, row.median <= seconds))
                row.target = text

        limit("ours-doit-noop", 0.35, "≤ 0.35 s")
        limit("ours-cli-noop", 0.35, "≤ 0.35 s")
        for rid, base in (("ours-doit-edit", "ours-doit-noop"), ("ours-cli-edit", "ours-cli-noop")):
            b = med(base)
            if b is not None:
                limit(rid, b + 0.15, f"≤ no-op + 0.15 s ({b + 0.15:.3f} s)")
        limit("ours-build-reqs-check", 0.3, "≤ 0.3 s")
        limit("large-doit-noop", 2.0, "≤ 2.0 s")
        for rid in ("large-cold", "large-cold-doit-p2", "large-cold-cli-p2"):
            limit(rid, 10.0, "≤ 10 s")
        reqs = g("ours-build-reqs")
        if reqs and reqs.samples:
            spawned = sorted({c for smp in reqs.samples for c in smp.children if _is_resolver(c)})
            reqs.checks.append(Check("no resolver process started", not spawned))
            reqs.target = "no resolver process started"
            if spawned:
                reqs.notes.append("resolver seen: " + "; ".join(spawned)[:300])

        large = g("large-doit-noop")
        if large and large.median is not None and s.n_large:
            files = self.meta["input_files"][str(s.n_large)]
            per_k = large.median * 1000 / (files / 1000)
            note = f"{per_k:.0f} ms per 1,000 input files ({files:,} files)"
            small = med("ours-doit-noop")
            if small is not None and s.n_large > s.n:
                extra = (files - self.meta["input_files"][str(s.n)]) / 1000
                marginal = (large.median - small) * 1000 / extra
                note += f"; marginal {marginal:.0f} ms per 1,000 files above N={s.n}"
            large.notes.append(note)

        self._growth()
        for n, rid, floor, factor in (
            (s.scale[1] if len(s.scale) > 1 else 0, "scale-pull", "floor-extract", 3.0),
            (s.scale[2] if len(s.scale) > 2 else 0, "scale-package-cold", "floor-tar", 25.0),
        ):
            row, base = g(f"{rid}-{n}"), med(f"{floor}-{n}")
            if row and row.median is not None and base:
                text = f"≤ {factor:g}× its floor ({factor * base:.2f} s)"
                row.checks.append(Check(text, row.median <= factor * base))
                row.notes.append(f"{row.median / base:.1f}× the floor measured in the same run")
                floor_row = g(f"{floor}-{n}")
                if floor_row and len(floor_row.samples) == len(row.samples):
                    pairs = ", ".join(
                        f"{o.seconds / f.seconds:.1f}×"
                        for f, o in zip(floor_row.samples, row.samples, strict=True)
                    )
                    row.notes.append(f"run by run, against the floor's run just before: {pairs}")
        if len(s.scale) > 1:
            limit(f"scale-pull-noop-{s.scale[1]}", 1.0, "≤ 1.0 s")
        for rid in ("big-package", "big-pull"):
            row = g(rid)
            if row and row.samples:
                rss = row.peak_rss_mb or 0.0
                row.checks.append(
                    Check(f"peak RSS ≤ {BIG_RSS_LIMIT_MB:.0f} MB", rss <= BIG_RSS_LIMIT_MB)
                )

        if s.kedro:
            self._ratios()

        rss_rows = [r for r in self.rows if r.tool == "ours" and r.samples]
        if rss_rows:
            worst = max(rss_rows, key=lambda r: r.peak_rss_mb or 0.0)
            self.meta["max_peak_rss_mb_ours"] = round(worst.peak_rss_mb or 0.0, 1)

    def _growth(self) -> None:
        """time(N large) / time(N small) of each growth row (and of its floors, for context)."""
        s = self.s
        self.growth: list[dict[str, Any]] = []
        if len(s.scale) < 2:
            return
        small, large = s.scale[0], s.scale[1]
        extra = s.scale[2] if len(s.scale) > 2 else None
        for rid in (*GROWTH_ROWS, "floor-tar", "floor-extract"):
            a, b = self.by_id.get(f"{rid}-{small}"), self.by_id.get(f"{rid}-{large}")
            if not a or not b or a.median is None or b.median is None:
                continue
            c = self.by_id.get(f"{rid}-{extra}") if extra else None
            ratio = b.median / a.median
            gated = rid in GROWTH_ROWS
            entry = {
                "row": rid,
                "label": b.label,
                "small": a.median,
                "large": b.median,
                "extra": c.median if c and c.median is not None else None,
                "ratio": ratio,
                "status": ("PASS" if ratio <= GROWTH_LIMIT else "FAIL") if gated else "",
            }
            self.growth.append(entry)
            if gated:
                b.checks.append(
                    Check(
                        f"time(N={large}) / time(N={small}) ≤ {GROWTH_LIMIT:g}",
                        ratio <= GROWTH_LIMIT,
                    )
                )

    def _scaled_kedro(self, rid: str, startup: str) -> tuple[float | None, str]:
        """Kedro's median at N, scaled from kedro_n with the start-up cost kept fixed."""
        s = self.s
        row = self.by_id.get(rid)
        if not row or row.median is None:
            return None, ""
        if s.kedro_n == s.n:
            return row.median, f"measured at N={s.n}"
        base = self.by_id.get(startup)
        t0 = base.median if base and base.median is not None else 0.0
        value = t0 + (row.median - t0) * s.n / s.kedro_n
        return value, (
            f"scaled from N={s.kedro_n}: "
            f"{t0:.2f} + ({row.median:.2f} − {t0:.2f}) × {s.n}/{s.kedro_n}"
        )

    def _ratios(self) -> None:
        s = self.s
        pairs = [
            (
                "package --all, cold",
                "kedro-package-cold",
                "kedro-package-startup",
                "ours-package-cold",
                50.0,
            ),
            ("pull --all, fresh project", "kedro-pull", "kedro-pull-startup", "ours-pull", 50.0),
            (
                "package --all, nothing changed",
                "kedro-package-again",
                "kedro-package-startup",
                "ours-cli-noop",
                None,
            ),
        ]
        for label, krow, kstart, orow, minimum in pairs:
            kval, how = self._scaled_kedro(krow, kstart)
            ours = self.by_id.get(orow)
            oval = ours.median if ours and not ours.error else None
            entry: dict[str, Any] = {
                "comparison": f"{label}, N={s.n}",
                "kedro_s": kval,
                "kedro_basis": how,
                "ours_s": oval,
                "ratio": (kval / oval) if kval and oval else None,
                "target": f"≥ {minimum:.0f}×" if minimum else "",
            }
            if minimum and entry["ratio"] is not None:
                entry["status"] = "PASS" if entry["ratio"] >= minimum else "FAIL"
            else:
                entry["status"] = ""
            self.headline.append(entry)
        if s.kedro_n != s.n:
            for label, krow, orow in (
                ("package --all, cold", "kedro-package-cold", "direct-package-cold"),
                ("pull --all, fresh project", "kedro-pull", "direct-pull"),
            ):
                k, o = self.by_id.get(krow), self.by_id.get(orow)
                if k and o and k.median and o.median:
                    self.headline.append(
                        {
                            "comparison": f"{label}, N={s.kedro_n} (same project, unscaled)",
                            "kedro_s": k.median,
                            "kedro_basis": "measured",
                            "ours_s": o.median,
                            "ratio": k.median / o.median,
                            "target": "",
                            "status": "",
                        }
                    )

    # -- output -----------------------------------------------------------------------------

    def floor_of(self, row: Row) -> float | None:
        """The median of the row's floor (start-up + reading its inputs)."""
        f = self.by_id.get(row.floor_id)
        return f.median if f else None

    def markdown(self) -> str:
        """The results document."""
        m, s = self.meta, self.s
        out = [
            "# Benchmark results: micropkg-tasks vs Kedro 0.19.15",
            "",
            f"{m['date']} · commit `{m['commit']}` · {m['machine']} ({m['cpu']}) · "
            f"load average at start {m['loadavg_at_start']} · Python {m['python']} · "
            f"micropkg-tasks {m['micropkg_tasks']}"
            + (f" · Kedro {m.get('kedro_version', '?')}" if s.kedro else ""),
            "",
            f"Median of {s.repeat} run(s) after {s.warmup} warm-up run(s); wall time of the whole "
            "process. Peak RSS: max of the process tree's summed VmRSS (sampled every 10 ms) and "
            "the largest single process (`ru_maxrss`). Generated projects: 11 input files per "
            "micro-package (6 code files + requirements.txt, 2 test files, 2 parameter files)."
            + (" **Smoke run: numbers are not meaningful.**" if s.smoke else ""),
            "",
        ]
        if self.headline:
            out += [
                "## Headline: ratios",
                "",
                "| Comparison | Kedro (s) | Kedro basis | ours (s) | ratio | target | result |",
                "|---|---:|---|---:|---:|---|---|",
            ]
            for h in self.headline:
                k = f"{h['kedro_s']:.2f}" if h["kedro_s"] is not None else "—"
                o = f"{h['ours_s']:.3f}" if h["ours_s"] is not None else "—"
                r = f"**{h['ratio']:.0f}×**" if h["ratio"] is not None else "—"
                out.append(
                    f"| {h['comparison']} | {k} | {h['kedro_basis']} | {o} | {r} | {h['target']} "
                    f"| {h['status']} |"
                )
            out.append("")
            if s.kedro_n != s.n:
                out += [
                    f"Kedro was measured at N={s.kedro_n} and scaled linearly to N={s.n}, keeping "
                    "its start-up cost (the same command on an empty manifest) fixed: "
                    "t(N) = t(0) + (t(k) − t(0)) × N/k. Run with `--kedro-n "
                    f"{s.n}` to measure it at N={s.n} directly.",
                    "",
                ]
        if getattr(self, "growth", None):
            small, large = s.scale[0], s.scale[1]
            extra = s.scale[2] if len(s.scale) > 2 else None
            head = f"| Row | N={small} (s) | N={large} (s) |" + (
                f" N={extra} (s) |" if extra else ""
            )
            out += [
                "## Growth with N",
                "",
                f"Growth ratio = time(N={large}) / time(N={small}) (linear: {large / small:g}; "
                f"target ≤ {GROWTH_LIMIT:g}). Medians of {s.scale_repeat} run(s), no warm-up. "
                "Floors (not gated) for context.",
                "",
                head + " growth ratio | result |",
                "|---|---:|---:|" + ("---:|" if extra else "") + "---:|---|",
            ]
            for e in self.growth:
                x = (
                    f" {e['extra']:.3f} |"
                    if extra and e["extra"] is not None
                    else (" — |" if extra else "")
                )
                out.append(
                    f"| {e['label']} (`{e['row']}`) | {e['small']:.3f} | {e['large']:.3f} |{x} "
                    f"**{e['ratio']:.2f}** | {e['status']} |"
                )
            out.append("")
        out += [
            "## All rows",
            "",
            "| Row | tool | N | command | median (s) | min–max (s) | over floor (s) | "
            "peak RSS (MB) | executed | target | result |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for row in self.rows:
            med = f"{row.median:.3f}" if row.median is not None else "—"
            span = f"{min(row.times):.3f}–{max(row.times):.3f}" if row.samples else "—"
            floor = self.floor_of(row)
            over = f"{row.median - floor:+.3f}" if floor is not None and row.median else ""
            rss = f"{row.peak_rss_mb:.0f}" if row.peak_rss_mb else "—"
            target = "; ".join(c.text for c in row.checks)
            failed = [c.text for c in row.checks if not c.ok]
            result = row.status + (f" ({'; '.join(failed)})" if failed else "")
            out.append(
                f"| {row.label} | {row.tool} | {row.n} | `{row.command}` | {med} | {span} | "
                f"{over} | {rss} | {row.executed} | {target} | {result} |"
            )
        if self.rss_line():
            out += ["", self.rss_line().replace("  ", " ", 1)]
        notes = [
            (r, n) for r in self.rows for n in [*r.problems, *r.notes, r.error, r.skipped] if n
        ]
        if notes:
            out += ["", "## Notes", ""]
            out += [
                f"* {r.label} ({r.tool}, N={r.n}): " + " / ".join(n.strip().splitlines())
                for r, n in notes
            ]
        out += [
            "",
            "Reproduce: `python benchmarks/run.py` from the repository root with the dev venv "
            "(see benchmarks/README.md).",
            "",
        ]
        return "\n".join(out)

    def summary(self) -> list[str]:
        """PASS/FAIL per target row and per headline ratio, for the console."""
        lines = ["", "Targets:"]
        for h in self.headline:
            if h["target"]:
                ratio = f"{h['ratio']:.0f}×" if h["ratio"] is not None else "—"
                status = h["status"] or "ERROR"
                lines.append(f"  {status:5} {h['comparison']}: {ratio} (target {h['target']})")
        for r in self.rows:
            if r.status and r.tool == "ours":
                med = f"{r.median:.3f} s" if r.median is not None else "—"
                failed = [c.text for c in r.checks if not c.ok]
                why = f"  failed: {'; '.join(failed)}" if failed else ""
                lines.append(f"  {r.status:5} {r.label} (N={r.n}): {med}{why}")
        for e in getattr(self, "growth", []):
            if e["status"]:
                lines.append(f"  {e['status']:5} growth of {e['row']}: {e['ratio']:.2f}")
        if self.rss_line():
            lines.append("  " + self.rss_line())
        return lines

    def rss_line(self) -> str:
        """The "peak RSS, any row" target over our rows."""
        worst = self.meta.get("max_peak_rss_mb_ours")
        if worst is None:
            return ""
        status = "PASS" if worst <= RSS_LIMIT_MB else "FAIL"
        return f"{status:5} peak RSS of every row of ours ≤ {RSS_LIMIT_MB:.0f} MB: max {worst} MB"

    def as_json(self) -> dict[str, Any]:
        """Everything, for machines."""
        rows = []
        for r in self.rows:
            d = asdict(r)
            for smp in d["samples"]:
                smp.pop("output_tail", None)
            d.update(
                median_s=r.median,
                peak_rss_mb=r.peak_rss_mb,
                status=r.status,
                floor_s=self.floor_of(r),
            )
            rows.append(d)
        return {
            "meta": self.meta,
            "headline": self.headline,
            "growth": getattr(self, "growth", []),
            "rows": rows,
        }

    def write(self) -> str:
        """Write results.md and results.json (and the README table); return the markdown."""
        text = self.markdown()
        self.s.out.parent.mkdir(parents=True, exist_ok=True)
        self.s.out.write_text(text, encoding="utf-8")
        self.s.out.with_suffix(".json").write_text(
            json.dumps(self.as_json(), indent=2, default=str) + "\n", encoding="utf-8"
        )
        if self.s.update_readme:
            # benchmarks/README.md and the project README both show the latest table.
            for readme in (HERE / "README.md", HERE.parent / "README.md"):
                current = readme.read_text(encoding="utf-8") if readme.exists() else ""
                if README_START in current and README_END in current:
                    head, rest = current.split(README_START, 1)
                    _, tail = rest.split(README_END, 1)
                    body = text.split("\n", 2)[2].replace("\n## ", "\n### ")
                    readme.write_text(
                        f"{head}{README_START}\n{body.strip()}\n{README_END}{tail}",
                        encoding="utf-8",
                    )
        return text


def _csv_block(size: int = 1_000_000) -> bytes:
    """About ``size`` bytes of CSV rows (dates, categories, numbers): a typical data file."""
    import random

    rng = random.Random(0)
    cats = ("north", "south", "east", "west", "centre")
    rows, total = [], 0
    while total < size:
        row = (
            f"{rng.randrange(10**6)},2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d},"
            f"{rng.choice(cats)},{rng.randrange(1000)},{rng.randrange(10**4) / 100:.2f}\n"
        ).encode()
        rows.append(row)
        total += len(row)
    return b"".join(rows)[:size]


def _is_resolver(cmdline: str) -> bool:
    low = cmdline.lower()
    return any(m in low for m in RESOLVER_MARKERS) or (" uv " in f" {low} " and "compile" in low)


# --------------------------------------------------------------------------------------------
# Kedro's side venv


def ensure_kedro_venv(venv: Path, base_env: dict[str, str]) -> None:
    """Create ``venv`` with Kedro 0.19.15 (pinned by the project's copy of its constraints)."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import kedro; print(kedro.__version__)"]
    if (venv / "bin" / "kedro").exists():
        got = subprocess.run(check, capture_output=True, text=True, env=base_env, check=False)
        if got.stdout.strip() == KEDRO_VERSION:
            return
        raise SystemExit(f"{venv} has Kedro {got.stdout.strip() or '?'}, not {KEDRO_VERSION}")
    print(f"Creating Kedro {KEDRO_VERSION} venv at {venv} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=base_env)
    cmd = [str(python), "-m", "pip", "install", "--quiet"]
    constraints = REPO / "tests" / "data" / "constraints" / f"kedro-{KEDRO_VERSION}.txt"
    if constraints.is_file():
        cmd += ["-c", str(constraints)]
    subprocess.run([*cmd, f"kedro=={KEDRO_VERSION}"], check=True, env=base_env)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Settings:
    """Command line → settings (smoke mode changes the defaults)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="N=3, one repetition, no Kedro")
    p.add_argument("--with-kedro", action="store_true", help="measure Kedro in smoke mode too")
    p.add_argument("--no-kedro", action="store_true", help="skip Kedro in a full run")
    p.add_argument("--n", type=int, help="micro-packages (default 20; smoke 3)")
    p.add_argument("--n-large", type=int, help="the large project (default 500; smoke 6; 0 = skip)")
    p.add_argument("--kedro-n", type=int, help="Kedro's N, scaled to --n (default 5; smoke = N)")
    p.add_argument("--repeat", type=int, help="measured runs per row (default 5; smoke 1)")
    p.add_argument("--warmup", type=int, help="untimed runs first (default 1; smoke 0)")
    p.add_argument(
        "--scale",
        help="N of the growth rows, comma-separated: small,large[,pull-only] "
        "(default 200,1000,2000; smoke 3,6; 'none' skips them)",
    )
    p.add_argument("--scale-repeat", type=int, help="runs per growth row (default 3; smoke 1)")
    p.add_argument(
        "--big-mb",
        type=int,
        help="MB of the memory rows' single data file (default 1000; smoke 2; 0 skips them)",
    )
    p.add_argument("--kedro-venv", type=Path, help="Kedro 0.19.15 venv (created if missing)")
    p.add_argument("--python", default=sys.executable, help="Python with micropkg-tasks installed")
    p.add_argument("--work", type=Path, default=HERE / "work", help="scratch folder")
    p.add_argument("--out", type=Path, help="results markdown (JSON beside it)")
    p.add_argument("--no-readme", action="store_true", help="leave benchmarks/README.md alone")
    p.add_argument("--strict", action="store_true", help="exit 1 when any target fails")
    p.add_argument("-v", "--verbose", action="store_true", help="show each row's output tail")
    a = p.parse_args(argv)
    n = a.n or (3 if a.smoke else 20)
    kedro = (a.with_kedro or not a.smoke) and not a.no_kedro
    default_out = (a.work / "smoke" / "results.md") if a.smoke else HERE / "results.md"
    out = (a.out or default_out).resolve()
    venv = a.kedro_venv or Path(
        os.environ.get("MICROPKG_KEDRO019_VENV", a.work / f"venv-kedro-{KEDRO_VERSION}")
    )
    scale_text = a.scale or ("3,6" if a.smoke else "200,1000,2000")
    scale = () if scale_text == "none" else tuple(int(x) for x in scale_text.split(",") if x)
    if scale and (len(scale) < 2 or len(scale) > 3):
        p.error("--scale takes two or three N (or 'none')")
    return Settings(
        n=n,
        n_large=a.n_large if a.n_large is not None else (6 if a.smoke else 500),
        repeat=a.repeat or (1 if a.smoke else 5),
        warmup=a.warmup if a.warmup is not None else (0 if a.smoke else 1),
        kedro=kedro,
        kedro_n=min(a.kedro_n or (n if a.smoke else 5), n),
        kedro_venv=venv.absolute(),
        python=a.python,
        work=a.work.resolve(),
        out=out,
        smoke=a.smoke,
        update_readme=not a.smoke and not a.no_readme and out == (HERE / "results.md").resolve(),
        strict=a.strict,
        verbose=a.verbose,
        scale=scale,
        scale_repeat=a.scale_repeat or (1 if a.smoke else 3),
        big_mb=a.big_mb if a.big_mb is not None else (2 if a.smoke else 1000),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the tables; write the results files."""
    s = parse_args(argv)
    s.work.mkdir(parents=True, exist_ok=True)
    bench = Bench(s)
    if s.kedro:
        ensure_kedro_venv(s.kedro_venv, bench.env)
    bench.run()
    text = bench.write()
    print(text)
    for line in bench.summary():
        print(line, file=sys.stderr)
    print(f"Wrote {s.out} and {s.out.with_suffix('.json')}", file=sys.stderr)
    broken = [r for r in bench.rows if r.error]
    failed = [r for r in bench.rows if r.status == "FAIL"] + [
        h for h in bench.headline if h["status"] == "FAIL"
    ]
    if broken:
        return 2
    return 1 if s.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
