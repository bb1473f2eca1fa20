"""The shells over the command layer: one option table, results built from what ran, doit's
own output conventions, and a loader whose --module choice never sticks."""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import plain_doit
from kedro_venvs import describe, subprocess_env
from projects import add_pipeline, write

from micropkg_tasks.ahead import GC_YOUNG_THRESHOLD
from micropkg_tasks.cli import build_parser
from micropkg_tasks.commands import COMMANDS
from micropkg_tasks.loader import MicropkgLoader
from micropkg_tasks.manifest import load_manifest
from micropkg_tasks.options import OPTIONS, doit_params, manifest_keys
from micropkg_tasks.state import release

MANIFEST = """
[tool.kedro.micropkg.package]
"pipelines.alpha" = {}
"pipelines.beta" = {alias = "bb"}
"""


@pytest.fixture
def two(project: Path) -> Path:
    """A project with two pipelines in its package manifest."""
    with (project / "pyproject.toml").open("a") as fh:
        fh.write(MANIFEST)
    add_pipeline(project, "alpha", requirements="pandas>=1.0\n")
    add_pipeline(project, "beta")
    return project


# --- one option table -----------------------------------------------------------------------


def _flags(parser: argparse.ArgumentParser, command: str) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    child = sub.choices[command]
    return {flag for action in child._actions for flag in action.option_strings}


@pytest.mark.parametrize("command", COMMANDS)
def test_argparse_is_generated_from_the_table(command: str) -> None:
    expected = {f for row in OPTIONS if command in row.commands for f in row.flags}
    assert _flags(build_parser(), command) - {"-h", "--help"} == expected


def test_doit_params_and_manifest_keys_come_from_the_same_rows() -> None:
    params = {p["name"]: p for p in doit_params("package")}
    assert set(params) == {"module", "alias", "env", "destination"}
    assert (params["destination"]["short"], params["env"]["short"]) == ("d", "e")
    assert all(p["default"] == "" for p in params.values())
    assert manifest_keys("package") == ("alias", "destination", "env")
    assert manifest_keys("pull") == ("alias", "destination", "env", "fs-args", "fs_args", "sha256")
    # The CLI's --alias and doit's --alias are the same row: same help.
    alias = next(row for row in OPTIONS if row.name == "alias")
    assert params["alias"]["help"] == alias.help


def test_manifest_spellings_of_one_option_conflict() -> None:
    from micropkg_tasks.errors import ManifestError

    pyproject = {
        "tool": {
            "kedro": {"micropkg": {"pull": {"x.tar.gz": {"fs_args": "a.yml", "fs-args": "b.yml"}}}}
        }
    }
    with pytest.raises(ManifestError, match="sets both 'fs-args' and 'fs_args'"):
        load_manifest(pyproject)
    pyproject["tool"]["kedro"]["micropkg"]["pull"]["x.tar.gz"] = {"fs_args": "a.yml"}
    assert load_manifest(pyproject).pull[0].fs_args == "a.yml"


# --- results from what ran, not from a reporter ------------------------------------------------


def test_a_foreign_reporter_does_not_change_what_package_all_says(two: Path, cli) -> None:
    """With ``[tool.doit] reporter = "zero"`` our reporter never runs: the messages come from
    the tasks' results, so a build is still reported as a build."""
    with (two / "pyproject.toml").open("a") as fh:
        fh.write('\n[tool.doit]\nreporter = "zero"\n')
    first = cli("package", "--all")
    assert first.code == 0, first.err
    assert first.out.splitlines() == [
        f"Packaged 'pipelines.alpha' micro-package! ({two / 'dist/alpha-0.1.tar.gz'})",
        f"Packaged 'pipelines.beta' micro-package! ({two / 'dist/bb-0.1.tar.gz'})",
        "Micro-packages packaged!",
    ]
    again = cli("package", "--all")
    assert (again.code, again.out, again.err) == (0, "All micro-packages are up to date.\n", "")


def test_cli_says_one_line_on_a_no_op(two: Path, cli) -> None:
    assert cli("package", "--all").code == 0
    assert cli("package", "--all").out == "All micro-packages are up to date.\n"
    single = cli("package", "pipelines.alpha")
    location = two / "dist"
    assert single.out == f"'demo_proj.pipelines.alpha' is up to date. Location: {location}\n"


def test_keep_going_names_the_failures_from_the_results(two: Path, cli) -> None:
    # alpha's own config/ clashes with its parameter file: the build of alpha fails
    write(two / "src/demo_proj/pipelines/alpha/config/parameters_alpha.yml", "x: 1\n")
    result = cli("package", "--all", "--keep-going")
    assert result.code == 1
    assert "Packaged 'pipelines.beta' micro-package!" in result.out
    assert result.err.splitlines()[-1] == "Error: 1 of 2 micro-packages failed: pipelines.alpha"


# --- doit speaks doit -------------------------------------------------------------------------


def test_plain_doit_prints_doits_task_lines_then_our_message(two: Path) -> None:
    write(two / "dodo.py", "from micropkg_tasks.tasks import *  # noqa: F403\n")

    def doit(*args: str) -> str:
        proc = plain_doit(two, *args, env=subprocess_env())
        assert (proc.returncode, proc.stderr) == (0, ""), describe(proc)
        return proc.stdout

    assert doit("package").splitlines() == [
        ".  package:pipelines.alpha",
        f"Packaged 'pipelines.alpha' micro-package! ({two / 'dist/alpha-0.1.tar.gz'})",
        ".  package:pipelines.beta",
        f"Packaged 'pipelines.beta' micro-package! ({two / 'dist/bb-0.1.tar.gz'})",
    ]
    assert doit("package").splitlines() == [
        "-- package:pipelines.alpha",
        "-- package:pipelines.beta",
    ]
    single = doit("package", "--module", "pipelines.alpha", "--alias", "al")
    assert single.splitlines()[0] == ".  package:pipelines.alpha"
    assert (two / "dist/al-0.1.tar.gz").is_file()


# --- the loader -----------------------------------------------------------------------------


def test_a_module_choice_does_not_stick(two: Path) -> None:
    """One loader (as a dodo.py holds it for the whole process): ``--module`` applies to its
    own call only."""
    loader = MicropkgLoader(two, lock=True)
    try:
        chosen = [t["name"] for t in loader.task_package(module="pipelines.alpha", alias="al")]
        assert chosen[1:] == ["pipelines.alpha"]
        assert (
            "al-0.1.tar.gz"
            in next(
                t for t in loader.task_package(module="pipelines.alpha", alias="al") if t["name"]
            )["targets"][0]
        )
        everything = [t["name"] for t in loader.task_package()]
        assert everything[1:] == ["pipelines.alpha", "pipelines.beta"]
        alpha = next(t for t in loader.task_package() if t["name"] == "pipelines.alpha")
        assert alpha["targets"] == ["dist/alpha-0.1.tar.gz"]
    finally:
        release(loader.context.project)


def test_user_doit_settings_win_over_ours(two: Path) -> None:
    with (two / "pyproject.toml").open("a") as fh:
        fh.write('\n[tool.doit]\nbackend = "json"\nverbosity = 2\n')
    config = MicropkgLoader(two).dodo_config()
    assert "backend" not in config  # doit takes [tool.doit]'s value
    assert config["dep_file"] == ".micropkg/doit.sqlite"


@pytest.mark.parametrize(("before", "after"), [(700, GC_YOUNG_THRESHOLD), (0, 0), (50_000, 50_000)])
def test_a_loader_runs_the_cyclic_collector_less_often(two: Path, before: int, after: int) -> None:
    """The rewriter's parse trees made CPython's default threshold start a collection every
    700 allocations (see ``collect_less_often``); a disabled or higher one is left alone."""
    saved = gc.get_threshold()
    try:
        gc.set_threshold(before, 10, 10)
        MicropkgLoader(two)
        assert gc.get_threshold() == (after, 10, 10)
    finally:
        gc.set_threshold(*saved)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows cannot delete a process's folder")
def test_a_deleted_current_folder_is_one_error_line(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys\n"
        "os.chdir(sys.argv[1]); os.rmdir(sys.argv[1])\n"
        "from micropkg_tasks.cli import main\n"
        "sys.exit(main(['status']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(gone)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == "Error: Cannot use the current folder: No such file or directory\n"
    assert proc.stdout == ""
