"""Side venvs with Kedro 0.19.15 and Kedro 1.x for the interop tests (cached between runs).

The venvs live under ``~/.cache/micropkg-tasks/venvs/`` (or ``$MICROPKG_TEST_CACHE``). Each one is
built under an exclusive ``fcntl`` lock, so parallel pytest-xdist workers wait for one another
instead of racing, and is trusted only if its marker file holds the expected key (written after a
successful install). A broken or outdated venv is rebuilt.

* ``kedro019_bin``: ``kedro==0.19.15`` with ``tests/data/constraints/kedro-0.19.15.txt``
  (carried by the repository, so a fresh clone needs nothing beside it).
* ``kedro1x_bin``: the latest ``kedro>=1,<2`` plus this repository, installed non-editable so that
  the ``micropkg`` console script and the ``kedro.project_commands`` entry point are registered. The
  repository is reinstalled whenever ``pyproject.toml``, ``micropkg_tasks/**/*.py`` or
  ``templates/*`` change; the Kedro layer is refreshed weekly.
* ``oldest_packaging_python``: our declared dependencies with ``packaging`` pinned to the oldest
  version ``pyproject.toml`` allows (built with ``uv``, in seconds); the repository itself goes on
  ``PYTHONPATH`` (:func:`repo_env`), so the code under test is always the working tree's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from micropkg_tasks._compat import tomllib

__all__ = [
    "CONSTRAINTS_019",
    "REPO",
    "kedro019_bin",
    "kedro1x_bin",
    "oldest_packaging_python",
    "repo_digest",
    "repo_env",
    "run",
    "subprocess_env",
    "venv_cache_root",
]

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS_019 = REPO / "tests" / "data" / "constraints" / "kedro-0.19.15.txt"
KEDRO_1X_SPEC = "kedro>=1,<2"
KEDRO_1X_MAX_AGE = 7 * 24 * 3600  # seconds before "latest kedro 1.x" is looked up again
MARKER = ".micropkg-test-ok"
PIP_TIMEOUT = 1800


def venv_cache_root() -> Path:
    """Folder holding the cached venvs (``$MICROPKG_TEST_CACHE`` or ``~/.cache/...``)."""
    override = os.environ.get("MICROPKG_TEST_CACHE")
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "micropkg-tasks" / "venvs"


def subprocess_env(
    extra: Mapping[str, str] | None = None, bin_dir: Path | None = None
) -> dict[str, str]:
    """A clean environment for pip/Kedro subprocesses.

    Drops ``PIP_*``/``UV_*``/``PYTHON*``/``VIRTUAL_ENV``, ignores the machine's pip config, turns
    Kedro's telemetry off, widens rich's console and puts ``bin_dir`` first on ``PATH``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_", "PYTHON")) and key != "VIRTUAL_ENV"
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        COLUMNS="200",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUTF8="1",
    )
    if bin_dir is not None:
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
    if extra:
        env.update(extra)
    return env


def run(
    cmd: Sequence[str | os.PathLike[str]],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    check: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd`` (stdin closed, output captured as text).

    With ``check`` (default) a non-zero exit raises ``AssertionError`` showing the command, its
    exit code, stdout and stderr; with ``check=False`` the result is returned for the caller to
    assert on. ``env`` defaults to :func:`subprocess_env`.
    """
    args = [os.fspath(part) for part in cmd]
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=dict(env) if env is not None else subprocess_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(describe(proc, cwd))
    return proc


def describe(proc: subprocess.CompletedProcess[str], cwd: Path | None = None) -> str:
    """A readable report of a finished process (for assertion messages)."""
    cmd = " ".join(str(part) for part in proc.args)
    where = f"\ncwd: {cwd}" if cwd is not None else ""
    return (
        f"command failed (exit {proc.returncode}): {cmd}{where}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``path`` (created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _interpreter_key() -> str:
    """Identify the base interpreter: a venv made by another Python is rebuilt."""
    return f"{sys.version.split()[0]} {getattr(sys, 'base_prefix', sys.prefix)}"


def _read_marker(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _healthy(venv: Path, probe: str) -> bool:
    """The venv's interpreter starts and can run ``probe``."""
    python = venv / "bin" / "python"
    if not python.exists():
        return False
    proc = subprocess.run(
        [str(python), "-c", probe],
        cwd=venv,  # not the repository: `import micropkg_tasks` must find the installed copy
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=120,
    )
    return proc.returncode == 0


def _pip(venv: Path, *args: str | os.PathLike[str]) -> None:
    run(
        [venv / "bin" / "python", "-m", "pip", *args],
        cwd=venv,
        env=subprocess_env(bin_dir=venv / "bin"),
        timeout=PIP_TIMEOUT,
    )


def _create_venv(venv: Path) -> None:
    """(Re)create an empty venv at ``venv`` with an up-to-date pip."""
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", venv], cwd=venv.parent, timeout=PIP_TIMEOUT)
    _pip(venv, "install", "--upgrade", "pip")


def ensure_kedro019(root: Path) -> Path:
    """Build (or reuse) the Kedro 0.19.15 venv under ``root``; return its ``bin/``."""
    if not CONSTRAINTS_019.is_file():
        raise FileNotFoundError(f"constraints file not found: {CONSTRAINTS_019}")
    venv = root / "kedro019"
    marker = venv / MARKER
    constraints = CONSTRAINTS_019.read_bytes()
    key = f"kedro==0.19.15\n{_interpreter_key()}\n{hashlib.sha256(constraints).hexdigest()}\n"
    probe = "import kedro, sys; sys.exit(kedro.__version__ != '0.19.15')"
    with _locked(root / "kedro019.lock"):
        if _read_marker(marker) == key and _healthy(venv, probe):
            return venv / "bin"
        _create_venv(venv)
        _pip(venv, "install", "-c", CONSTRAINTS_019, "kedro==0.19.15")
        marker.write_text(key, encoding="utf-8")
    return venv / "bin"


def repo_digest(repo: Path = REPO) -> str:
    """sha256 over ``pyproject.toml``, ``micropkg_tasks/**/*.py`` and ``templates/*``."""
    files = [repo / "pyproject.toml"]
    files += sorted((repo / "micropkg_tasks").rglob("*.py"))
    files += sorted(p for p in (repo / "templates").glob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(repo).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _snapshot_repo(dest: Path) -> Path:
    """Copy what the wheel build needs, so pip never writes ``build/`` into the repository."""
    src = dest / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    if not (src / "README.md").exists():  # [project].readme points at it
        (src / "README.md").write_text("micropkg-tasks\n", encoding="utf-8")
    shutil.copytree(REPO / "micropkg_tasks", src / "micropkg_tasks", ignore=ignore)
    shutil.copytree(REPO / "templates", src / "templates", ignore=ignore)
    return src


def ensure_kedro1x(root: Path) -> Path:
    """Build (or reuse) the Kedro 1.x + micropkg-tasks venv under ``root``; return its ``bin/``."""
    venv = root / "kedro1x"
    base_marker = venv / MARKER
    repo_marker = venv / (MARKER + "-repo")
    base_key = f"{KEDRO_1X_SPEC}\n{_interpreter_key()}\n"
    repo_key = repo_digest()
    probe = "import kedro, sys; sys.exit(not kedro.__version__.startswith('1.'))"
    with _locked(root / "kedro1x.lock"):
        fresh = (
            _read_marker(base_marker) == base_key
            and time.time() - base_marker.stat().st_mtime < KEDRO_1X_MAX_AGE
            and _healthy(venv, probe)
        )
        if not fresh:
            _create_venv(venv)
            _pip(venv, "install", KEDRO_1X_SPEC)
            base_marker.write_text(base_key, encoding="utf-8")
            repo_marker.unlink(missing_ok=True)
        if _read_marker(repo_marker) != repo_key or not _healthy(venv, "import micropkg_tasks"):
            repo_marker.unlink(missing_ok=True)
            with tempfile.TemporaryDirectory(prefix="micropkg-repo-") as tmp:
                src = _snapshot_repo(Path(tmp))
                # Dependencies first (a no-op once satisfied), then force our fresh build in:
                # same version number, new code.
                _pip(venv, "install", KEDRO_1X_SPEC, src)
                _pip(venv, "install", "--force-reinstall", "--no-deps", src)
            repo_marker.write_text(repo_key, encoding="utf-8")
    return venv / "bin"


def _find_uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if found is None:
        raise FileNotFoundError("uv is needed to build side venvs: pip install -e '.[test]'")
    return found


def oldest_packaging_spec() -> str:
    """``packaging==<the floor of pyproject's packaging>=X`` requirement."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    (floor,) = [d.split(">=", 1)[1] for d in deps if d.startswith("packaging>=")]
    return f"packaging=={floor}"


def ensure_oldest_packaging(root: Path) -> Path:
    """Build (or reuse) a venv with our dependencies and the oldest allowed ``packaging``.

    Returns its interpreter. The repository is not installed: run it with :func:`repo_env`.
    """
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    pinned = oldest_packaging_spec()
    specs = [d for d in deps if not d.startswith("packaging")] + [pinned]
    key = "\n".join([_interpreter_key(), *specs]) + "\n"
    # One folder per dependency set: worktrees and branches with other dependencies (run at the
    # same time) never rebuild a venv another test run is using.
    name = f"oldest-packaging-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    venv = root / name
    marker = venv / MARKER
    version = pinned.split("==", 1)[1]
    probe = (
        "import sys, packaging; from packaging.version import Version; "
        f"sys.exit(Version(packaging.__version__) != Version({version!r}))"
    )
    with _locked(root / f"{name}.lock"):
        if _read_marker(marker) == key and _healthy(venv, probe):
            return venv / "bin" / "python"
        if venv.exists():
            shutil.rmtree(venv)
        uv = _find_uv()
        env = subprocess_env()
        run([uv, "venv", "-q", "--python", sys.executable, venv], cwd=root, env=env)
        run(
            [uv, "pip", "install", "-q", "--python", venv / "bin" / "python", *specs],
            cwd=root,
            env=env,
            timeout=PIP_TIMEOUT,
        )
        marker.write_text(key, encoding="utf-8")
    return venv / "bin" / "python"


def repo_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:func:`subprocess_env` with this repository on ``PYTHONPATH``."""
    return subprocess_env({"PYTHONPATH": str(REPO), **(extra or {})})


@pytest.fixture(scope="session")
def oldest_packaging_python() -> Path:
    """Interpreter of a cached venv with our dependencies and the oldest allowed ``packaging``."""
    return ensure_oldest_packaging(venv_cache_root())


@pytest.fixture(scope="session")
def kedro019_bin() -> Path:
    """``bin/`` of a cached venv with ``kedro==0.19.15``."""
    return ensure_kedro019(venv_cache_root())


@pytest.fixture(scope="session")
def kedro1x_bin() -> Path:
    """``bin/`` of a cached venv with the latest Kedro 1.x and this repository installed."""
    return ensure_kedro1x(venv_cache_root())
