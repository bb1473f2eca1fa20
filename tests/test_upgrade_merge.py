"""Pulling a new version over local edits: the 3-way merge cases, markers and their clearing,
the base from the cache, fetched again, or unavailable; dry runs; requirement conflicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lifecycle import NODES, PARAMS, Releases
from projects import make_project, tree_snapshot
from servers import make_sdist

from micropkg_tasks.lockfile import LOCK_NAME, read_lock

CODE = "src/consumer_pkg/pipelines/ds"
NODES_REL = f"{CODE}/nodes.py"
PARAMS_REL = "conf/base/parameters_ds.yml"
SRC_NODES = "src/demo_proj/pipelines/ds/nodes.py"
SRC_PARAMS = "conf/base/parameters_ds.yml"


@pytest.fixture
def releases(tmp_path: Path, cli) -> Releases:
    return Releases.create(tmp_path, cli)


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, releases: Releases, cli) -> Path:
    """A project that pulled ds 0.1 into pipelines/ds (the CWD)."""
    first = releases.release("0.1")
    root = make_project(tmp_path / "consumer", package="consumer_pkg")
    monkeypatch.chdir(root)
    result = cli("pull", str(first), "-d", "pipelines")
    assert result.code == 0, result.err
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def upgrade(cli, releases: Releases, version: str, *args: str):  # type: ignore[no-untyped-def]
    return cli("pull", str(releases.folder / f"ds-{version}.tar.gz"), "-d", "pipelines", *args)


def test_local_unchanged_takes_new_and_new_unchanged_keeps_local(
    consumer: Path, releases: Releases, cli
) -> None:
    edit(consumer / f"{CODE}/pipeline.py", "return [helper]", "return [helper, helper]")
    releases.release("0.2", {SRC_NODES: NODES.replace("x * rate", "x * rate * 10")})
    result = upgrade(cli, releases, "0.2")
    assert result.code == 0, result.err
    assert "x * rate * 10" in (consumer / NODES_REL).read_text()
    assert "return [helper, helper]" in (consumer / f"{CODE}/pipeline.py").read_text()
    assert "conflict" not in result.out + result.err
    status = cli("status").out
    assert "[modified]" in status and f"modified: {CODE}/pipeline.py" in status
    assert read_lock(consumer / LOCK_NAME).entries["pipelines.ds"].version == "0.2"


def test_both_changed_apart_are_merged_parameters_too(
    consumer: Path, releases: Releases, cli
) -> None:
    edit(consumer / NODES_REL, "return df.dropna()", "return df.dropna(how='all')")
    edit(consumer / PARAMS_REL, "rate: 0.5", "rate: 0.7")
    releases.release(
        "0.2",
        {
            SRC_NODES: NODES.replace('{"value": x}', '{"value": x, "v": 2}'),
            SRC_PARAMS: PARAMS.replace("columns: [a, b]", "columns: [a, b, c]"),
        },
    )
    dry = upgrade(cli, releases, "0.2", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert f"  merge  {NODES_REL}\n" in dry.out
    assert f"  merge  {PARAMS_REL}\n" in dry.out
    result = upgrade(cli, releases, "0.2")
    assert result.code == 0, result.err
    nodes = (consumer / NODES_REL).read_text()
    assert "dropna(how='all')" in nodes and '{"value": x, "v": 2}' in nodes
    assert (consumer / PARAMS_REL).read_text() == (
        "ds:\n  rate: 0.7\n  threshold: 3\n  columns: [a, b, c]\n"
    )


def test_overlapping_changes_refuse_and_write_nothing(
    consumer: Path, releases: Releases, cli
) -> None:
    edit(consumer / NODES_REL, "x * rate", "x * rate + 1")
    releases.release("0.2", {SRC_NODES: NODES.replace("x * rate", "rate * x")})
    before = tree_snapshot(consumer, with_state=True)
    dry = upgrade(cli, releases, "0.2", "--dry-run")
    assert dry.code == 1
    assert f"  conflict  {NODES_REL} (1 conflicting hunk)" in dry.out
    result = upgrade(cli, releases, "0.2")
    assert result.code == 1
    assert result.err.startswith("Error: 1 file(s) changed locally cannot be updated")
    assert f"  {NODES_REL} (1 conflicting hunk)" in result.err
    assert "--merge=markers" in result.err
    assert tree_snapshot(consumer, with_state=True) == before


def test_markers_are_written_recorded_and_cleared(consumer: Path, releases: Releases, cli) -> None:
    edit(consumer / NODES_REL, "x * rate", "x * rate + 1")
    releases.release(
        "0.2",
        {
            SRC_NODES: NODES.replace("x * rate", "rate * x"),
            "src/demo_proj/pipelines/ds/extra.py": "EXTRA = 1\n",
        },
    )
    result = upgrade(cli, releases, "0.2", "--merge=markers")
    assert result.code == 1
    assert "conflict markers to resolve" in result.err and NODES_REL in result.err
    nodes = (consumer / NODES_REL).read_text()
    assert (
        "<<<<<<< local\n        return x * rate + 1\n||||||| 0.1\n        return x * rate\n"
        "=======\n        return rate * x\n>>>>>>> 0.2\n"
    ).replace("        ", "    ") in nodes
    # The rest of the upgrade is applied.
    assert (consumer / f"{CODE}/extra.py").read_text() == "EXTRA = 1\n"
    entry = read_lock(consumer / LOCK_NAME).entries["pipelines.ds"]
    assert (entry.version, entry.conflicts) == ("0.2", (NODES_REL,))
    status = cli("status")
    assert "[conflict]" in status.out and f"  conflict: {NODES_REL}" in status.out
    assert cli("status", "--check").code == 1
    # Another pull refuses while the markers are there.
    again = upgrade(cli, releases, "0.2")
    assert again.code == 1 and "unresolved conflict markers" in again.err
    # Resolved: no conflict any more (still a local change).
    (consumer / NODES_REL).write_text(NODES.replace("x * rate", "rate * x + 1"))
    status = cli("status")
    assert "[modified]" in status.out and "conflict" not in status.out
    assert cli("status", "--check").code == 1
    assert upgrade(cli, releases, "0.2").code == 0


def test_deleted_locally(consumer: Path, releases: Releases, cli) -> None:
    (consumer / f"{CODE}/pipeline.py").unlink()
    (consumer / PARAMS_REL).unlink()
    releases.release("0.2", {SRC_PARAMS: PARAMS.replace("0.5", "0.6")})
    before = tree_snapshot(consumer, with_state=True)
    result = upgrade(cli, releases, "0.2")
    assert result.code == 1
    assert f"{PARAMS_REL} (deleted locally, changed by the new version" in result.err
    assert tree_snapshot(consumer, with_state=True) == before
    # Restored: the parameter file updates; pipeline.py (unchanged upstream) stays deleted.
    shutil.copyfile(releases.root / SRC_PARAMS, consumer / PARAMS_REL)
    edit(consumer / PARAMS_REL, "0.6", "0.5")
    dry = upgrade(cli, releases, "0.2", "--dry-run")
    assert f"  keep  {CODE}/pipeline.py (local deletion kept)" in dry.out
    assert upgrade(cli, releases, "0.2").code == 0
    assert not (consumer / f"{CODE}/pipeline.py").exists()
    assert "rate: 0.6" in (consumer / PARAMS_REL).read_text()


def test_dropped_file_removed_when_unchanged(consumer: Path, releases: Releases, cli) -> None:
    releases.release("0.2", {"src/demo_proj/pipelines/ds/pipeline.py": None})
    dry = upgrade(cli, releases, "0.2", "--dry-run")
    assert f"  remove  {CODE}/pipeline.py" in dry.out
    assert upgrade(cli, releases, "0.2").code == 0
    assert not (consumer / f"{CODE}/pipeline.py").exists()


def test_requirements_block_edited_locally_is_merged(
    consumer: Path, releases: Releases, cli
) -> None:
    header = "# Additional requirements from micro-package `ds`:"
    reqs = "src/demo_proj/pipelines/ds/requirements.txt"
    releases.release("0.2", {reqs: "pandas>=1.0\nnumpy>=1.26\nscipy\n"})
    assert upgrade(cli, releases, "0.2").code == 0
    assert (consumer / "requirements.in").read_text().endswith(f"{header}\nnumpy>=1.26\nscipy\n")
    edit(consumer / "requirements.in", "numpy>=1.26", "numpy>=1.26,<3")  # a local edit
    releases.release("0.3", {reqs: "pandas>=1.0\nnumpy>=1.26\nscipy>=1.11\n"})
    dry = upgrade(cli, releases, "0.3", "--dry-run")
    assert "  merge  requirements.in (block of micro-package `ds`)" in dry.out
    result = upgrade(cli, releases, "0.3")
    assert result.code == 0, result.err
    assert (
        (consumer / "requirements.in")
        .read_text()
        .endswith(f"{header}\nnumpy>=1.26,<3\nscipy>=1.11\n")
    )
    # The same line changed upstream too: a conflict.
    releases.release("0.4", {reqs: "pandas>=1.0\nnumpy>=2\nscipy>=1.11\n"})
    result = upgrade(cli, releases, "0.4")
    assert result.code == 1
    assert "requirements.in (block of micro-package `ds`: 1 conflicting hunk)" in result.err


def test_the_base_is_fetched_again_when_the_cache_lacks_it(
    consumer: Path, releases: Releases, cli
) -> None:
    shutil.rmtree(consumer / ".micropkg" / "cache")
    edit(consumer / NODES_REL, "return df.dropna()", "return df.dropna(how='all')")
    releases.release("0.2", {SRC_NODES: NODES.replace('{"value": x}', '{"value": x, "v": 2}')})
    result = upgrade(cli, releases, "0.2")
    assert result.code == 0, result.err
    nodes = (consumer / NODES_REL).read_text()
    assert "dropna(how='all')" in nodes and '"v": 2' in nodes
    cached = sorted(p.name for p in (consumer / ".micropkg/cache").iterdir())
    entry = read_lock(consumer / LOCK_NAME).entries["pipelines.ds"]
    assert cached == [f"{entry.sha256}.tar.gz"]  # the old base is pruned, the new one kept


def test_without_cache_or_source_a_local_edit_is_a_conflict_that_says_why(
    consumer: Path, releases: Releases, cli
) -> None:
    shutil.rmtree(consumer / ".micropkg" / "cache")
    edit(consumer / NODES_REL, "return df.dropna()", "return df.dropna(how='all')")
    newer = releases.release("0.2", {SRC_NODES: NODES.replace('{"value": x}', '{"v": x}')})
    (releases.folder / "ds-0.1.tar.gz").unlink()
    result = cli("pull", str(newer), "-d", "pipelines")
    assert result.code == 1
    assert (
        f"{NODES_REL} (edited locally; cannot merge: the pulled sdist is unavailable: it is "
        in (result.err)
    )
    assert "fetching" in result.err


def test_requirement_conflict_warning(consumer: Path, cli, tmp_path: Path) -> None:
    other = make_sdist(tmp_path / "other", "legacy-pipe", "1.0", requires=("pandas<1.0", "numpy"))
    result = cli("pull", str(other))
    assert result.code == 0, result.err
    assert result.err.startswith(
        "Warning: requirement 'pandas<1.0' of micro-package "
        "'legacy_pipe' has no version in common with 'pandas>=1.0' in "
        "requirements.in (from the project)"
    )
    third = make_sdist(tmp_path / "third", "modern-pipe", "1.0", requires=("numpy<1.0",))
    # numpy came from legacy_pipe: any numpy matches "numpy", so no warning.
    assert "Warning" not in cli("pull", str(third)).err


def test_doit_pull_all_merges_too(tmp_path: Path, releases: Releases, cli, monkeypatch) -> None:
    releases.release("0.1")
    root = make_project(
        tmp_path / "managed",
        package="consumer_pkg",
        manifest=(
            f'[tool.micropkg.pull]\n"{releases.folder}/ds-0.1.tar.gz" = '
            '{destination = "pipelines"}\n'
        ),
    )
    monkeypatch.chdir(root)
    assert cli("doit", "pull_all").code == 0
    edit(root / NODES_REL, "return df.dropna()", "return df.dropna(how='all')")
    releases.release("0.2", {SRC_NODES: NODES.replace('{"value": x}', '{"v": x}')})
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("ds-0.1", "ds-0.2"))
    result = cli("doit", "pull_all")
    assert result.code == 0, result.out + result.err
    nodes = (root / NODES_REL).read_text()
    assert "dropna(how='all')" in nodes and '{"v": x}' in nodes
