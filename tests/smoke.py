"""The CLI smoke set, run as real processes by any interpreter: package --all, pull,
build-reqs --check, doit package twice. Used for every supported Python and for the
"no POSIX-only module" run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from kedro_venvs import describe
from projects import add_pipeline, make_project, write

__all__ = ["SMOKE_TARBALLS", "run_smoke"]

MANIFEST = """
[tool.kedro.micropkg.package]
"pipelines.alpha" = {}
"pipelines.beta" = {alias = "bb"}
"""
SMOKE_TARBALLS = ("alpha-0.1.tar.gz", "bb-0.1.tar.gz")


def _run(
    cmd: Sequence[str], cwd: Path, env: Mapping[str, str], expect: int = 0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == expect, describe(proc, cwd)
    assert "Traceback" not in proc.stderr, describe(proc, cwd)
    return proc


def run_smoke(
    workdir: Path, micropkg: Sequence[str], doit: Sequence[str], env: Mapping[str, str]
) -> dict[str, bytes]:
    """Run the smoke set in fresh projects under ``workdir``; return the tarballs of
    ``package --all`` (name → bytes). ``micropkg``/``doit`` are the argv prefixes to use."""
    source = make_project(workdir / "source", manifest=MANIFEST)
    add_pipeline(source, "alpha", requirements="pandas>=1.0\nPyYAML>=6\n")
    add_pipeline(source, "beta")

    out = _run([*micropkg, "package", "--all"], source, env).stdout
    assert "Micro-packages packaged!" in out, out
    tarballs = {name: (source / "dist" / name).read_bytes() for name in SMOKE_TARBALLS}
    assert sorted(os.listdir(source / "dist")) == sorted(SMOKE_TARBALLS)

    consumer = make_project(workdir / "consumer", package="consumer_pkg")
    tarball = str(source / "dist" / "alpha-0.1.tar.gz")
    out = _run([*micropkg, "pull", tarball, "-d", "pipelines"], consumer, env)
    assert "pulled and unpacked" in out.stdout, out.stdout
    pulled = consumer / "src/consumer_pkg/pipelines/alpha/pipeline.py"
    assert "from consumer_pkg.pipelines.alpha.nodes import helper" in pulled.read_text()
    assert (consumer / "conf/base/parameters_alpha.yml").is_file()
    assert (consumer / "micropkg.lock").is_file()
    assert "PyYAML>=6" in (consumer / "requirements.in").read_text()

    stale = _run([*micropkg, "build-reqs", "--check"], consumer, env, expect=1)
    assert stale.stderr.startswith("Error: requirements.txt is out of date"), stale.stderr
    from micropkg_tasks.fsutil import sha256_file  # the hash line a compile writes

    digest = sha256_file(consumer / "requirements.in")
    write(consumer / "requirements.txt", f"# micropkg: requirements.in sha256={digest}\nx==1\n")
    _run([*micropkg, "build-reqs", "--check"], consumer, env)

    write(source / "dodo.py", "from micropkg_tasks.tasks import *  # noqa: F403\n")
    write(source / "conf/base/parameters_alpha.yml", "alpha:\n  rate: 0.9\n")
    alpha, beta = source / "dist" / SMOKE_TARBALLS[0], source / "dist" / SMOKE_TARBALLS[1]
    beta_before = beta.stat().st_mtime_ns
    _run([*doit, "package"], source, env)
    assert alpha.read_bytes() != tarballs[SMOKE_TARBALLS[0]]  # rebuilt with the new parameter
    assert beta.stat().st_mtime_ns == beta_before  # up to date: not rewritten
    after_first = {path: path.stat().st_mtime_ns for path in (alpha, beta)}
    _run([*doit, "package"], source, env)
    assert {path: path.stat().st_mtime_ns for path in (alpha, beta)} == after_first
    return tarballs
