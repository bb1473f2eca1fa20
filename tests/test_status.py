"""``micropkg status [--check]``: one test per state of a pulled micro-package. ``--check``
prints the same listing and exits 1 when anything is not clean (modified, missing, conflict):
the CI and pre-commit gate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runner import Cli
from projects import add_pipeline, tree_snapshot

TARBALL = "../src_proj/dist/{name}-{version}.tar.gz"
NODES = "src/demo_proj/{name}/nodes.py"
PARAMS = "conf/base/parameters_{name}.yml"


@pytest.fixture
def source(
    project: Path, project_factory: Callable[..., Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str], str]:
    """``release(name, version)``: package pipeline ``name`` of ``src_proj`` at ``version``
    (``nodes.py`` returns ``x + <version>``); the tarball's path as the project sees it."""
    root = project_factory("src_proj")

    def release(name: str, version: str) -> str:
        code = add_pipeline(root, name, version=version)
        nodes = code / "nodes.py"
        nodes.write_text(nodes.read_text().replace("x + 1", f"x + {version}"))
        monkeypatch.chdir(root)
        try:
            assert cli("package", f"pipelines.{name}").code == 0
        finally:
            monkeypatch.chdir(project)
        return TARBALL.format(name=name, version=version)

    return release


@pytest.fixture
def pulled(project: Path, source: Callable[[str, str], str], cli: Cli) -> Path:
    """The project with two micro-packages pulled, both clean."""
    for name in ("alpha", "beta"):
        result = cli("pull", source(name, "0.1"))
        assert result.code == 0, result.err
    return project


def _status(cli: Cli, root: Path) -> tuple[int, str]:
    """``status --check`` (exit code and stdout), checking it prints what ``status`` prints
    and writes nothing."""
    before = tree_snapshot(root)
    plain = cli("status")
    check = cli("status", "--check")
    assert plain.code == 0, plain.err
    assert (check.out, check.err, plain.err) == (plain.out, "", "")
    assert tree_snapshot(root) == before
    return check.code, check.out


def test_nothing_pulled(project: Path, cli: Cli) -> None:
    assert _status(cli, project) == (0, "No micro-package pulled yet (no micropkg.lock).\n")


def test_clean(pulled: Path, cli: Cli) -> None:
    assert _status(cli, pulled) == (
        0,
        f"alpha  0.1  {TARBALL.format(name='alpha', version='0.1')}  [clean]\n"
        f"beta  0.1  {TARBALL.format(name='beta', version='0.1')}  [clean]\n",
    )


def test_modified(pulled: Path, cli: Cli) -> None:
    nodes = pulled / NODES.format(name="beta")
    nodes.write_text(nodes.read_text() + "# a local edit\n")
    code, out = _status(cli, pulled)
    assert code == 1
    assert "alpha  0.1" in out and "[clean]" in out  # the other one stays clean
    assert f"beta  0.1  {TARBALL.format(name='beta', version='0.1')}  [modified]\n" in out
    assert f"  modified: {NODES.format(name='beta')}\n" in out


def test_parameters_modified(pulled: Path, cli: Cli) -> None:
    params = pulled / PARAMS.format(name="alpha")
    params.write_text("alpha:\n  rate: 0.7\n")
    code, out = _status(cli, pulled)
    assert code == 1
    assert f"  modified: {PARAMS.format(name='alpha')}\n" in out


def test_missing(pulled: Path, cli: Cli) -> None:
    (pulled / NODES.format(name="alpha")).unlink()
    code, out = _status(cli, pulled)
    assert code == 1
    assert "[modified]" in out
    assert f"  missing:  {NODES.format(name='alpha')}\n" in out
    assert "modified: " not in out


def test_conflict(
    pulled: Path, source: Callable[[str, str], str], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull with --merge=markers leaves a file with conflict markers: [conflict]; once the
    markers are resolved it is a local edit, still not clean; restored, it is clean."""
    nodes = pulled / NODES.format(name="alpha")
    pulled_text = nodes.read_text()
    nodes.write_text(pulled_text.replace("x + 0.1", "x + 100"))
    newer = source("alpha", "0.2")
    result = cli("pull", newer, "--merge=markers")
    assert result.code == 1 and "conflict markers to resolve" in result.err
    code, out = _status(cli, pulled)
    assert code == 1
    assert f"alpha  0.2  {newer}  [conflict]\n" in out
    assert f"  conflict: {NODES.format(name='alpha')}\n" in out
    assert "modified: " not in out  # a file in conflict is listed once

    nodes.write_text(pulled_text.replace("x + 0.1", "x + 100"))  # resolved: our side
    code, out = _status(cli, pulled)
    assert code == 1
    assert f"alpha  0.2  {newer}  [modified]\n" in out and "conflict" not in out

    nodes.write_text(pulled_text.replace("x + 0.1", "x + 0.2"))  # resolved: theirs
    assert _status(cli, pulled)[0] == 0
