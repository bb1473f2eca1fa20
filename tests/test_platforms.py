"""Every supported platform and Python: nothing POSIX-only at import, and the smoke set under
each Python 3.10-3.13 found here, with byte-identical tarballs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kedro_venvs import describe, subprocess_env
from pythons import SUPPORTED, find_python, venv_for
from smoke import SMOKE_TARBALLS, run_smoke

POSIX_FREE = Path(__file__).with_name("posix_free.py")


def _reference(tmp_path: Path) -> dict[str, bytes]:
    """The smoke set's tarballs as this interpreter builds them."""
    env = subprocess_env()
    micropkg = [sys.executable, "-m", "micropkg_tasks"]
    return run_smoke(tmp_path / "reference", micropkg, [sys.executable, "-m", "doit"], env)


def test_no_posix_only_module_is_needed(tmp_path: Path) -> None:
    """As on Windows: fcntl & co. cannot be imported; every module imports, the smoke set runs,
    and the tarballs are the same bytes."""
    env = subprocess_env()
    proc = subprocess.run(
        [sys.executable, str(POSIX_FREE), "import-all"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, describe(proc)
    imported = proc.stdout.split()
    assert {"micropkg_tasks.cli", "micropkg_tasks.tasks", "micropkg_tasks.state"} <= set(imported)

    wrapper = [sys.executable, str(POSIX_FREE)]
    tarballs = run_smoke(tmp_path / "posix_free", [*wrapper, "micropkg"], [*wrapper, "doit"], env)
    assert tarballs == _reference(tmp_path)


@pytest.mark.parametrize("version", SUPPORTED)
def test_smoke_set_on_every_python(version: str, tmp_path: Path) -> None:
    python = find_python(version)
    if python is None:
        pytest.skip(f"Python {version} not found (on PATH or in pyenv's versions)")
    bin_dir = venv_for(python, version)
    env = subprocess_env(bin_dir=bin_dir)
    tarballs = run_smoke(
        tmp_path / f"py{version}", [str(bin_dir / "micropkg")], [str(bin_dir / "doit")], env
    )
    reference = _reference(tmp_path)
    for name in SMOKE_TARBALLS:
        assert tarballs[name] == reference[name], f"{name} differs under Python {version}"
