"""The lifecycle commands end to end: diff, outdated, upgrade, remove, pull --save."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lifecycle import NODES, Releases
from projects import make_project, tree_snapshot

from micropkg_tasks._compat import tomllib
from micropkg_tasks.lockfile import LOCK_NAME, read_lock

CODE = "src/consumer_pkg/pipelines/ds"
SRC_NODES = "src/demo_proj/pipelines/ds/nodes.py"


@pytest.fixture
def releases(tmp_path: Path, cli) -> Releases:
    return Releases.create(tmp_path, cli)


MANIFEST = textwrap.dedent(
    """
    [tool.micropkg.pull]
    # Shared pipelines: `micropkg upgrade` keeps this list current.
    "../releases/ds-0.1.tar.gz" = {destination = "pipelines"}  # the data science one

    [tool.other]
    keep = "me"  # untouched
    """
)


@pytest.fixture
def managed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, releases: Releases, cli) -> Path:
    """A project whose pull manifest has ds 0.1 (pulled), as the CWD."""
    releases.release("0.1")
    root = make_project(tmp_path / "consumer", package="consumer_pkg", manifest=MANIFEST)
    monkeypatch.chdir(root)
    result = cli("pull", "--all")
    assert result.code == 0, result.err
    return root


def test_diff(managed: Path, cli) -> None:
    assert cli("diff").out == ""
    assert cli("diff", "--exit-code").code == 0
    nodes = managed / CODE / "nodes.py"
    nodes.write_text(nodes.read_text().replace("x * rate", "x * rate * 2"))
    (managed / "conf/base/parameters_ds.yml").unlink()
    result = cli("diff", "ds")
    assert result.code == 0
    assert result.out.startswith(
        "--- a/conf/base/parameters_ds.yml\n+++ /dev/null\n@@ -1,4 +0,0 @@\n-ds:\n"
    )
    assert f"--- a/{CODE}/nodes.py\n+++ b/{CODE}/nodes.py\n@@ -6,7 +6,7 @@\n" in result.out
    assert "-    return x * rate\n+    return x * rate * 2\n" in result.out
    assert cli("diff", "--exit-code", "pipelines.ds").code == 1
    unknown = cli("diff", "nope")
    assert unknown.code == 1 and unknown.err.startswith("Error: No pulled micro-package 'nope'")


def test_outdated(managed: Path, releases: Releases, cli) -> None:
    result = cli("outdated")
    assert result.code == 0 and cli("outdated", "--check").code == 0
    assert result.out.splitlines()[1].split() == [
        "pipelines.ds",
        "0.1",
        "0.1",
        "../releases/ds-0.1.tar.gz",
    ]
    releases.release("0.2")
    releases.release("0.3rc1")
    assert cli("outdated").out.splitlines()[1].split()[:3] == ["pipelines.ds", "0.1", "0.2"]
    assert cli("outdated", "--pre").out.splitlines()[1].split()[2] == "0.3rc1"
    assert cli("outdated", "--check").code == 1


def test_upgrade_rewrites_the_manifest_keeping_comments(
    managed: Path, releases: Releases, cli
) -> None:
    nodes = managed / CODE / "nodes.py"
    nodes.write_text(nodes.read_text().replace("return df.dropna()", "return df.dropna(0)"))
    releases.release("0.2", {SRC_NODES: NODES.replace('{"value": x}', '{"v": x}')})
    before = (managed / "pyproject.toml").read_text()
    dry = cli("upgrade", "ds", "--dry-run")
    assert dry.code == 0, dry.err
    assert f"  merge  {CODE}/nodes.py" in dry.out
    assert (managed / "pyproject.toml").read_text() == before
    result = cli("upgrade", "ds")
    assert result.code == 0, result.err
    assert (
        "Upgraded 'pipelines.ds' from 0.1 to 0.2: ../releases/ds-0.2.tar.gz (pull manifest updated)"
    ) in result.out
    assert (managed / "pyproject.toml").read_text() == before.replace("ds-0.1", "ds-0.2")
    text = nodes.read_text()
    assert "dropna(0)" in text and '{"v": x}' in text
    entry = read_lock(managed / LOCK_NAME).entries["pipelines.ds"]
    assert (entry.version, entry.source) == ("0.2", "../releases/ds-0.2.tar.gz")
    again = cli("upgrade", "--all")
    assert again.code == 0 and again.out == "'pipelines.ds' is up to date (0.2).\n"
    # The manifest and the lock agree: `pull --all` changes nothing.
    snapshot = tree_snapshot(managed)
    assert cli("pull", "--all").code == 0
    assert tree_snapshot(managed) == snapshot


def test_upgrade_needs_a_module_or_all(managed: Path, cli) -> None:
    result = cli("upgrade")
    assert result.code == 1 and result.err.startswith("Error: Please specify a pulled")


def test_upgrade_of_a_pinned_entry_pins_the_new_tarball(
    tmp_path: Path, releases: Releases, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from micropkg_tasks.fsutil import sha256_file

    first = releases.release("0.1")
    pinned = (
        f'[tool.micropkg.pull]\n"../releases/ds-0.1.tar.gz" = {{sha256 = "{sha256_file(first)}"}}\n'
    )
    root = make_project(tmp_path / "pinned", package="consumer_pkg", manifest=pinned)
    monkeypatch.chdir(root)
    assert cli("pull", "--all").code == 0
    second = releases.release("0.2")
    assert cli("upgrade", "ds").code == 0
    manifest = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["micropkg"]["pull"]
    assert manifest == {"../releases/ds-0.2.tar.gz": {"sha256": sha256_file(second)}}


def test_remove_restores_the_project(
    tmp_path: Path, releases: Releases, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "fresh", package="consumer_pkg")
    (root / "requirements.in").write_text("kedro~=0.19.15\npandas>=1.0\n")
    monkeypatch.chdir(root)
    before = tree_snapshot(root)
    releases.release("0.1", {"src/demo_proj/pipelines/ds/requirements.txt": "numpy>=1.26\n"})
    assert cli("pull", "../releases/ds-0.1.tar.gz", "-d", "pipelines.nested").code == 0
    assert (root / "src/consumer_pkg/pipelines/nested/__init__.py").is_file()
    assert "numpy>=1.26" in (root / "requirements.in").read_text()
    dry = cli("remove", "ds", "--dry-run")
    assert dry.code == 0
    assert "  remove  src/consumer_pkg/pipelines/nested/__init__.py" in dry.out
    assert "  update  requirements.in (its block)" in dry.out
    result = cli("remove", "ds")
    assert result.code == 0, result.err
    assert result.out.startswith("Removed 'pipelines.nested.ds' (")
    # Back to the tree before the pull: files, created packages, block, lock all gone.
    after = tree_snapshot(root)
    assert after == before
    assert cli("status").out == "No micro-package pulled yet (no micropkg.lock).\n"


def test_remove_keeps_packages_with_other_files_and_drops_the_manifest_entry(
    managed: Path, cli
) -> None:
    (managed / "src/consumer_pkg/pipelines/ds/mine.py").write_text("MINE = 1\n")
    before = (managed / "pyproject.toml").read_text()
    result = cli("remove", "pipelines.ds")
    assert result.code == 0, result.err
    assert (managed / CODE / "mine.py").is_file()
    assert (managed / CODE / "__init__.py").is_file()  # its folder keeps a file of the user's
    assert not (managed / CODE / "nodes.py").exists()
    assert not (managed / "tests/pipelines/ds").exists()
    assert (managed / "pyproject.toml").read_text() == before.replace(
        '"../releases/ds-0.1.tar.gz" = {destination = "pipelines"}  # the data science one\n', ""
    )


def test_remove_with_local_edits(managed: Path, cli) -> None:
    nodes = managed / CODE / "nodes.py"
    nodes.write_text("# mine\n")
    before = tree_snapshot(managed, with_state=True)
    dry = cli("remove", "ds", "--dry-run")
    assert dry.code == 1 and f"  conflict  {CODE}/nodes.py (edited locally)" in dry.out
    result = cli("remove", "ds")
    assert result.code == 1
    assert result.err.startswith("Error: 1 file(s) of 'pipelines.ds' were changed locally")
    assert tree_snapshot(managed, with_state=True) == before
    assert cli("remove", "ds", "--force").code == 0
    assert not nodes.exists()


def test_pull_save(
    tmp_path: Path, releases: Releases, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    releases.release("0.1")
    root = make_project(tmp_path / "saver", package="consumer_pkg")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# my own comment\n")
    monkeypatch.chdir(root)
    result = cli("pull", "../releases/ds-0.1.tar.gz", "--alias", "beta", "-e", "local", "--save")
    assert result.code == 0, result.err
    text = pyproject.read_text()
    assert "# my own comment" in text
    manifest = tomllib.loads(text)["tool"]["micropkg"]["pull"]
    assert manifest == {"../releases/ds-0.1.tar.gz": {"alias": "beta", "env": "local"}}
    # A new version of the same micro-package replaces its entry.
    releases.release("0.2")
    assert (
        cli("pull", "../releases/ds-0.2.tar.gz", "--alias", "beta", "-e", "local", "--save").code
        == 0
    )
    manifest = tomllib.loads(pyproject.read_text())["tool"]["micropkg"]["pull"]
    assert manifest == {"../releases/ds-0.2.tar.gz": {"alias": "beta", "env": "local"}}
    snapshot = tree_snapshot(root)
    assert cli("pull", "--all").code == 0
    assert tree_snapshot(root) == snapshot


def test_pull_save_into_a_kedro_manifest(
    tmp_path: Path, releases: Releases, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    releases.release("0.1")
    kedro = '[tool.kedro.micropkg.package]\n"pipelines.x" = {}\n'
    root = make_project(tmp_path / "kedro", package="consumer_pkg", manifest=kedro)
    monkeypatch.chdir(root)
    assert cli("pull", "../releases/ds-0.1.tar.gz", "--save").code == 0
    data = tomllib.loads((root / "pyproject.toml").read_text())
    assert data["tool"]["kedro"]["micropkg"]["pull"] == {"../releases/ds-0.1.tar.gz": {}}
    assert "micropkg" not in data["tool"] or set(data["tool"]) == {"kedro"}


def test_doit_list_shows_no_lifecycle_command(managed: Path, cli) -> None:
    listed = cli("doit", "list").out
    for name in ("outdated", "diff", "remove", "upgrade"):
        assert name not in listed.split()


def test_remove_needs_a_module_and_help_lists_the_commands(managed: Path, cli) -> None:
    result = cli("remove")
    assert result.code == 1 and result.err.startswith("Error: Please specify the pulled")
    import contextlib
    import io

    from micropkg_tasks.cli import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        build_parser().parse_args(["upgrade", "--help"])
    for flag in ("--all", "--pre", "--dry-run", "--force", "--merge", "MODULE"):
        assert flag in out.getvalue()


def test_remove_keeps_requirement_lines_another_micro_package_needs(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import make_sdist

    first = make_sdist(tmp_path / "a", "alpha-pipe", "1.0", requires=("numpy>=1.26", "scipy"))
    second = make_sdist(tmp_path / "b", "beta-pipe", "1.0", requires=("numpy>=1.26",))
    root = make_project(tmp_path / "shared", package="consumer_pkg")
    monkeypatch.chdir(root)
    assert cli("pull", str(first)).code == 0
    assert cli("pull", str(second)).code == 0  # numpy is there already: no block of its own
    assert cli("remove", "alpha_pipe").code == 0
    text = (root / "requirements.in").read_text()
    assert "numpy>=1.26" in text  # beta_pipe still needs it
    assert "scipy" not in text
