"""Every supported Python (3.10-3.13) found on this machine, each with a cached venv of ours.

An interpreter is looked up on ``PATH`` (``python3.X``) and among pyenv's versions
(``$PYENV_ROOT/versions/3.X.*``, default ``~/.pyenv``); pyenv's shims are not trusted (they fail
for a version that is not selected), every candidate must start and report its version. Venvs
are built with ``uv`` (a test extra) under the venv cache of :mod:`kedro_venvs`, dependencies
once per ``pyproject.toml``, this repository (non-editable, from a snapshot) whenever its code
changes; parallel pytest-xdist workers wait for one another on a file lock.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock
from kedro_venvs import REPO, _snapshot_repo, repo_digest, run, subprocess_env, venv_cache_root

from micropkg_tasks.requirements import find_uv

__all__ = ["SUPPORTED", "find_python", "venv_for"]

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
MARKER = ".micropkg-test-ok"
UV_TIMEOUT = 1800


def _version_of(executable: str) -> str | None:
    """``3.X`` as reported by running ``executable``, or None when it does not start."""
    try:
        proc = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=subprocess_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _candidates(version: str) -> list[str]:
    found = []
    on_path = shutil.which(f"python{version}")
    if on_path and "shims" not in Path(on_path).parts:
        found.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    installs = sorted(
        (pyenv_root / "versions").glob(f"{version}.*"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split(".")],
        reverse=True,
    )
    found += [str(p / "bin" / f"python{version}") for p in installs]
    if on_path and on_path not in found:
        found.append(on_path)  # a shim last: it works when this version is selected
    return found


def find_python(version: str) -> str | None:
    """An interpreter of Python ``version`` (``"3.10"``) that starts, or None."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        base = Path(sys.base_prefix) / "bin" / f"python{version}"
        if _version_of(str(base)) == version:
            return str(base)
    for candidate in _candidates(version):
        if Path(candidate).is_file() and _version_of(candidate) == version:
            return candidate
    return None


def _uv(*args: str | os.PathLike[str], cwd: Path) -> None:
    uv = find_uv()
    if uv is None:
        raise RuntimeError("uv is not installed (it is in the test extras)")
    run([uv, *args], cwd=cwd, env=subprocess_env(), timeout=UV_TIMEOUT)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def venv_for(python: str, version: str) -> Path:
    """``bin/`` of a cached venv of ``python`` with this repository installed (non-editable)."""
    root = venv_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"py{version}"
    base_marker, repo_marker = venv / MARKER, venv / (MARKER + "-repo")
    pyproject = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    base_key = f"{python}\n{_version_of(python)}\n{pyproject}\n"
    repo_key = repo_digest()
    venv_python = venv / "bin" / "python"
    with FileLock(str(root / f"py{version}.lock")):
        if _read(base_marker) != base_key or _version_of(str(venv_python)) != version:
            if venv.exists():
                shutil.rmtree(venv)
            _uv("venv", "--quiet", "--python", python, venv, cwd=root)
            repo_marker.unlink(missing_ok=True)
        if _read(repo_marker) != repo_key:
            with tempfile.TemporaryDirectory(prefix="micropkg-repo-") as tmp:
                src = _snapshot_repo(Path(tmp))
                _uv("pip", "install", "--quiet", "--python", venv_python, src, cwd=root)
                _uv(
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    venv_python,
                    "--no-deps",
                    "--reinstall-package",
                    "micropkg-tasks",
                    src,
                    cwd=root,
                )
            repo_marker.write_text(repo_key, encoding="utf-8")
            base_marker.write_text(base_key, encoding="utf-8")
    return venv / "bin"
