"""Fixtures every test can use (loaded through ``pytest_plugins`` in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Cli, CliResult
from projects import make_project

from micropkg_tasks.cli import main


@pytest.fixture(autouse=True)
def _isolate_pip_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's pip configuration (index URLs, find-links) out of the tests."""
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("DO_NOT_TRACK", "1")


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail the test if anything starts a process (``subprocess.Popen``: a resolver)."""
    started: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        raise AssertionError(f"a process was started: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    yield started
    assert started == []


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh Kedro 0.19 project (package ``demo_proj``); the CWD is its root."""
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(root)
    yield root


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``micropkg <args>`` in-process (CWD as set by the test)."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def project_factory(tmp_path: Path) -> Callable[..., Path]:
    """Make more projects: ``project_factory("other", package="other_pkg")``."""

    def factory(folder: str = "proj2", **kwargs: object) -> Path:
        return make_project(tmp_path / folder, **kwargs)  # type: ignore[arg-type]

    return factory
