"""The pre-commit hooks of .pre-commit-hooks.yaml, run with ``pre-commit try-repo`` on a
temporary project, offline: pip is pointed at an address that answers nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kedro_venvs import REPO, describe, subprocess_env
from projects import add_pipeline, make_project, write

from micropkg_tasks.fsutil import sha256_file

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")


def _pre_commit(project: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(
        {
            "PRE_COMMIT_HOME": str(home),
            # Nothing may be installed: an index that answers nothing, and no index at all.
            "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
            "PIP_NO_INDEX": "1",
            "UV_OFFLINE": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
        },
        bin_dir=Path(sys.executable).parent,  # the `micropkg` the hooks run
    )
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), hook, "--all-files"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


@pytest.fixture
def pulled(tmp_path: Path) -> Path:
    """A git project with a micro-package pulled into it (requirements.in not compiled)."""
    source = make_project(tmp_path / "source")
    add_pipeline(source, "alpha", requirements="PyYAML>=6\n")
    subprocess.run(
        [sys.executable, "-m", "micropkg_tasks", "package", "pipelines.alpha"],
        cwd=source,
        env=subprocess_env(),
        check=True,
        capture_output=True,
    )
    project = make_project(tmp_path / "proj", package="consumer_pkg")
    subprocess.run(
        [sys.executable, "-m", "micropkg_tasks", "pull", str(source / "dist/alpha-0.1.tar.gz")],
        cwd=project,
        env=subprocess_env(),
        check=True,
        capture_output=True,
    )
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    return project


def test_micropkg_status_hook(pulled: Path, tmp_path: Path) -> None:
    home = tmp_path / "pre-commit-home"
    clean = _pre_commit(pulled, "micropkg-status", home)
    assert clean.returncode == 0, describe(clean)
    assert "micropkg status --check" in clean.stdout and "Passed" in clean.stdout

    nodes = pulled / "src/consumer_pkg/alpha/nodes.py"
    nodes.write_text(nodes.read_text() + "# local edit\n")
    dirty = _pre_commit(pulled, "micropkg-status", home)
    assert dirty.returncode == 1, describe(dirty)
    assert "Failed" in dirty.stdout
    assert "modified: src/consumer_pkg/alpha/nodes.py" in dirty.stdout


def test_micropkg_build_reqs_hook(pulled: Path, tmp_path: Path) -> None:
    home = tmp_path / "pre-commit-home"
    stale = _pre_commit(pulled, "micropkg-build-reqs", home)
    assert stale.returncode == 1, describe(stale)
    assert "requirements.txt is out of date with requirements.in" in stale.stdout

    digest = sha256_file(pulled / "requirements.in")
    write(pulled / "requirements.txt", f"# micropkg: requirements.in sha256={digest}\nx==1\n")
    _git(pulled, "add", "-A")
    fresh = _pre_commit(pulled, "micropkg-build-reqs", home)
    assert fresh.returncode == 0, describe(fresh)
    assert "Passed" in fresh.stdout
    assert not any(home.rglob("pyvenv.cfg")), "a hook environment was built"
    assert os.environ.get("PIP_NO_INDEX") is None  # the test's settings stayed in the child
