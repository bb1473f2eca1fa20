"""``build-reqs`` when there is nothing to compile: every shell (``micropkg build-reqs``,
``--check``, ``doit build_reqs``, ``doit pull_all``, plain doit through a dodo.py) succeeds with
one line saying so, starts no resolver and writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Cli, plain_doit
from projects import add_pipeline, tree_snapshot, write

from micropkg_tasks.requirements import names_requirements, nothing_to_compile
from micropkg_tasks.state import STATE_DIR

SOURCE = "../src_proj/dist/reporting-0.1.tar.gz"
NO_INPUT = "Nothing to compile: no requirements.in."
NO_REQUIREMENTS = "Nothing to compile: requirements.in has no requirements."
#: requirements.in with no requirement line: comments, blank lines, options that add none.
EMPTY_INPUT = (
    "# The project's requirements live in requirements.txt\n"
    "\n"
    "--index-url https://pypi.org/simple  # an option, not a requirement\n"
    "-c constraints.txt\n"
    "   # an indented comment\n"
)
#: The shells, each run twice: the first run and a no-op one say the same.
SHELLS = {
    "micropkg build-reqs": ("build-reqs",),
    "micropkg build-reqs --check": ("build-reqs", "--check"),
    "doit build_reqs": ("doit", "build_reqs"),
    "doit pull_all": ("doit", "pull_all"),
}


@pytest.fixture
def pulled(
    project: Path, project_factory: Callable[..., Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A project (with its own requirements.txt) that pulled, through its pull manifest, a
    micro-package without requirements: no requirements.in was made."""
    source = project_factory("src_proj")
    add_pipeline(source, "reporting")
    monkeypatch.chdir(source)
    assert cli("package", "pipelines.reporting").code == 0
    monkeypatch.chdir(project)
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[tool.kedro.micropkg.pull]\n"{SOURCE}" = {{}}\n')
    result = cli("pull", "--all")
    assert result.code == 0, result.err
    assert not (project / "requirements.in").exists()
    return project


@pytest.mark.parametrize("shell", SHELLS)
def test_nothing_to_compile_after_pulls_without_requirements(
    pulled: Path, cli: Cli, no_processes: list[Any], shell: str
) -> None:
    before = tree_snapshot(pulled)
    expected = {
        "doit build_reqs": f"-- build_reqs\n{NO_INPUT}\n",
        "doit pull_all": f"-- pull:reporting\n-- pull_all\n{NO_INPUT}\n",
    }.get(shell, f"{NO_INPUT}\n")
    for _ in range(2):
        result = cli(*SHELLS[shell])
        assert (result.code, result.out, result.err) == (0, expected, "")
    assert tree_snapshot(pulled) == before


@pytest.mark.parametrize("shell", SHELLS)
def test_nothing_to_compile_in_a_requirements_in_without_requirements(
    pulled: Path, cli: Cli, no_processes: list[Any], shell: str
) -> None:
    """requirements.txt is the project's own (no hash line): it is never replaced by the
    empty list that compiling would give."""
    write(pulled / "requirements.in", EMPTY_INPUT)
    before = tree_snapshot(pulled)
    for run in range(2):
        result = cli(*SHELLS[shell])
        assert (result.code, result.err) == (0, ""), result.err
        assert result.out.endswith(f"\n{NO_REQUIREMENTS}\n") or result.out == (
            f"{NO_REQUIREMENTS}\n"
        )
        assert result.out.count("Nothing to compile") == 1
        if run and shell.startswith("doit"):  # a no-op run is reported as one
            assert ".  " not in result.out
    assert tree_snapshot(pulled) == before
    assert (pulled / "requirements.txt").read_text() == "kedro~=0.19.15\npandas>=1.0\n"


def test_nothing_to_compile_creates_no_state_folder(
    project: Path, cli: Cli, no_processes: list[Any]
) -> None:
    before = tree_snapshot(project, with_state=True, folders=True)
    for args in (("build-reqs",), ("build-reqs", "--check"), ("build-reqs", "--", "-U")):
        result = cli(*args)
        assert (result.code, result.out, result.err) == (0, f"{NO_INPUT}\n", "")
    assert not (project / STATE_DIR).exists()
    assert tree_snapshot(project, with_state=True, folders=True) == before


def test_plain_doit_agrees(pulled: Path, cli: Cli) -> None:
    """``doit`` itself, through the one-line dodo.py of ``micropkg init``."""
    assert cli("init").code == 0

    def doit(*args: str) -> str:
        proc = plain_doit(pulled, *args)
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
        return proc.stdout

    assert doit("build_reqs") == f"-- build_reqs\n{NO_INPUT}\n"
    assert doit("pull_all") == f"-- pull:reporting\n-- pull_all\n{NO_INPUT}\n"


def test_a_requirements_txt_we_compiled_follows_an_emptied_requirements_in(
    project: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the last requirement is gone from requirements.in (its micro-package removed),
    the pins build-reqs wrote are stale: --check says so and build-reqs compiles them away."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # an empty input needs no index
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    req_in = write(project / "requirements.in", "alpha>=1.0\n")
    digest = hashlib.sha256(req_in.read_bytes()).hexdigest()
    write(
        project / "requirements.txt",
        f"# compiled\n# micropkg: requirements.in sha256={digest}\nalpha==1.0\nbeta==2.0\n",
    )
    assert cli("build-reqs", "--check").code == 0
    write(req_in, EMPTY_INPUT.replace("-c constraints.txt\n", ""))
    check = cli("build-reqs", "--check")
    assert check.code == 1
    assert check.error.startswith("requirements.txt is out of date with requirements.in")
    result = cli("build-reqs")
    assert (result.code, result.out) == (0, "Compiled requirements.in into requirements.txt.\n")
    lines = (project / "requirements.txt").read_text().splitlines()
    assert not [line for line in lines if line and not line.startswith("#")], lines
    assert cli("build-reqs", "--check").code == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", False),
        ("\n\n", False),
        ("# a comment\n  # indented\n", False),
        ("--index-url https://x/simple\n--extra-index-url https://y/simple\n", False),
        ("-i https://x/simple\n-f ./wheels\n--pre\n--require-hashes\n", False),
        ("-c constraints.txt\n--constraint other.txt\n", False),
        ("--index-url https://x/simple \\\n    --trusted-host x\n", False),
        ("pandas>=2\n", True),
        ("# comment\npandas  # inline comment\n", True),
        ("-r base.txt\n", True),
        ("--requirement=base.txt\n", True),
        ("-e .\n", True),
        ("--editable ./lib\n", True),
        ("./wheels/alpha-1.0-py3-none-any.whl\n", True),
        ("https://example.com/alpha-1.0.tar.gz\n", True),
        ("alpha \\\n  >=1.0\n", True),
    ],
)
def test_names_requirements(text: str, expected: bool) -> None:
    assert names_requirements(text) is expected
    assert names_requirements(text.replace("\n", "\r\n")) is expected


def test_nothing_to_compile_cases(tmp_path: Path) -> None:
    req_in, req_txt = tmp_path / "requirements.in", tmp_path / "requirements.txt"
    assert nothing_to_compile(req_in, req_txt) == "no requirements.in"
    write(req_txt, "pandas==2.0\n")  # the project's own, hand-written
    assert nothing_to_compile(req_in, req_txt) == "no requirements.in"
    write(req_in, "# nothing yet\n")
    assert nothing_to_compile(req_in, req_txt) == "no requirements"
    write(req_txt, f"# micropkg: requirements.in sha256={'0' * 64}\npandas==2.0\n")
    assert nothing_to_compile(req_in, req_txt) is None  # ours: it follows its input
    write(req_in, "pandas\n")
    assert nothing_to_compile(req_in, req_txt) is None
    req_in.unlink()
    req_in.mkdir()  # not a file: the compile names the problem
    assert nothing_to_compile(req_in, req_txt) is None
