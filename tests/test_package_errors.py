"""Bad input to ``micropkg package``: one ``Error: ...`` line, exit 1, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from projects import add_pipeline, tree_snapshot, write


def assert_clean_failure(result: object, root: Path, before: dict[str, bytes], text: str) -> None:
    """Exit 1, exactly one ``Error:`` line containing ``text``, project unchanged."""
    code, out, err = result.code, result.out, result.err  # type: ignore[attr-defined]
    assert code == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert text in lines[0], lines[0]
    assert tree_snapshot(root, with_state=True) == before
    assert not (root / "dist").exists()


@pytest.fixture
def with_pipeline(project: Path) -> Path:
    add_pipeline(project, "data_proc", requirements="pandas>=1.0\n")
    return project


def test_not_inside_a_kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    folder = tmp_path / "plain"
    write(folder / "pyproject.toml", '[project]\nname = "x"\n')
    monkeypatch.chdir(folder)
    before = tree_snapshot(with_state=True, root=folder)
    result = cli("package", "pipelines.x")
    assert_clean_failure(result, folder, before, "Not inside a Kedro project")


def test_missing_micro_package(with_pipeline: Path, cli) -> None:
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "pipelines.non_existing")
    missing = with_pipeline / "src/demo_proj/pipelines/non_existing"
    assert_clean_failure(result, with_pipeline, before, f"Directory '{missing}' doesn't exist.")


def test_empty_micro_package(with_pipeline: Path, cli) -> None:
    empty = with_pipeline / "src/demo_proj/pipelines/empty_dir"
    (empty / "__pycache__").mkdir(parents=True)
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "pipelines.empty_dir")
    assert_clean_failure(result, with_pipeline, before, f"'{empty}' is an empty directory.")


def test_module_path_that_is_a_file(with_pipeline: Path, cli) -> None:
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "pipelines.data_proc.nodes")
    assert_clean_failure(result, with_pipeline, before, "only directories can be micro-packages")


@pytest.mark.parametrize("bad", ["pipelines.data-proc", "pipelines..x", "pipelines.1abc", ".x"])
def test_invalid_module_path(with_pipeline: Path, cli, bad: str) -> None:
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", bad)
    assert_clean_failure(
        result,
        with_pipeline,
        before,
        "The micro-package location you provided is not a valid Python module path",
    )


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("bad name", "It must contain only letters, digits, and/or underscores."),
        ("bad%name", "It must contain only letters, digits, and/or underscores."),
        ("1bad", "It must start with a letter or underscore."),
        ("a", "It must be at least 2 characters long."),
        ("tests", "'tests' is reserved"),
    ],
)
def test_invalid_alias(with_pipeline: Path, cli, alias: str, message: str) -> None:
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "pipelines.data_proc", "--alias", alias)
    assert_clean_failure(
        result, with_pipeline, before, f"'{alias}' is not a valid Python package name. {message}"
    )


def test_malformed_pyproject(with_pipeline: Path, cli) -> None:
    with (with_pipeline / "pyproject.toml").open("a") as fh:
        fh.write("\nthis is [not toml\n")
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "--all")
    assert_clean_failure(result, with_pipeline, before, "Failed to parse")


def test_pyproject_that_is_not_utf8(with_pipeline: Path, cli) -> None:
    with (with_pipeline / "pyproject.toml").open("ab") as fh:
        fh.write(b"\n# caf\xe9\n")
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "--all")
    assert_clean_failure(result, with_pipeline, before, "Failed to parse")
    assert "not UTF-8 text" in result.err


def _append_manifest(root: Path, text: str) -> None:
    with (root / "pyproject.toml").open("a") as fh:
        fh.write("\n" + text)


def test_unknown_manifest_key(with_pipeline: Path, cli) -> None:
    _append_manifest(
        with_pipeline, '[tool.kedro.micropkg.package]\n"pipelines.data_proc" = {bogus = 1}\n'
    )
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "--all")
    assert_clean_failure(
        result,
        with_pipeline,
        before,
        "Unknown key 'bogus' in entry \"pipelines.data_proc\" of [tool.kedro.micropkg.package]; "
        "allowed keys: alias, destination, env",
    )


def test_unquoted_dotted_manifest_key(with_pipeline: Path, cli) -> None:
    _append_manifest(with_pipeline, "[tool.kedro.micropkg.package]\npipelines.data_proc = {}\n")
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "--all")
    assert_clean_failure(
        result, with_pipeline, before, 'write it quoted, as "pipelines.data_proc" = { ... }'
    )


def test_both_manifest_tables(with_pipeline: Path, cli) -> None:
    _append_manifest(
        with_pipeline,
        '[tool.kedro.micropkg.package]\n"pipelines.data_proc" = {}\n\n'
        '[tool.micropkg.package]\n"pipelines.data_proc" = {}\n',
    )
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "--all")
    assert_clean_failure(result, with_pipeline, before, "keep only one")


def test_non_pep508_requirement(with_pipeline: Path, cli) -> None:
    write(
        with_pipeline / "src/demo_proj/pipelines/data_proc/requirements.txt",
        "pandas>=1.0\n-r other.txt\n",
    )
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "pipelines.data_proc")
    assert_clean_failure(result, with_pipeline, before, "line 2")
    assert "-r other.txt" in result.err


def test_bad_requirement_in_all_mode_writes_nothing(with_pipeline: Path, cli) -> None:
    add_pipeline(with_pipeline, "second", requirements="./local/pkg.whl\n")
    _append_manifest(
        with_pipeline,
        '[tool.kedro.micropkg.package]\n"pipelines.data_proc" = {}\n"pipelines.second" = {}\n',
    )
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "--all")
    assert_clean_failure(result, with_pipeline, before, "./local/pkg.whl")


def test_name_and_all_together(with_pipeline: Path, cli) -> None:
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "pipelines.data_proc", "--all")
    assert_clean_failure(result, with_pipeline, before, "not both")


def test_neither_name_nor_all(with_pipeline: Path, cli) -> None:
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package")
    assert_clean_failure(
        result,
        with_pipeline,
        before,
        "Please specify a micro-package name or add '--all' to package all micro-packages in "
        "the 'pyproject.toml' package manifest section.",
    )


def test_destination_is_a_file(with_pipeline: Path, cli) -> None:
    write(with_pipeline / "afile", "x")
    before = tree_snapshot(with_state=True, root=with_pipeline)
    result = cli("package", "pipelines.data_proc", "-d", "afile")
    assert_clean_failure(result, with_pipeline, before, "is a file, not a folder")


def test_empty_manifest_is_not_an_error(with_pipeline: Path, cli: Callable[..., object]) -> None:
    _append_manifest(with_pipeline, "[tool.kedro.micropkg.package]\n")
    result = cli("package", "--all")
    assert result.code == 0  # type: ignore[attr-defined]
    assert "Nothing to package." in result.out  # type: ignore[attr-defined]
