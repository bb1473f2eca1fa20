"""Kedro 1.x: ``kedro micropkg …`` through the ``kedro.project_commands`` entry point.

A project is made by Kedro 1.x itself (``kedro new`` + ``kedro pipeline create``) in a side venv
where this repository is installed non-editable. Its manifest lives in ``[tool.micropkg.package]``,
which Kedro's start-up must tolerate (a manifest under ``[tool.kedro]`` makes Kedro 1.x refuse to
start, which is why we use ``[tool.micropkg]`` there).
"""

from __future__ import annotations

import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from kedro_venvs import run, subprocess_env

pytestmark = pytest.mark.interop

PKG = "one_proj"
PIPE = "data_proc"
MANIFEST = f'\n[tool.micropkg.package]\n"pipelines.{PIPE}" = {{}}\n'


@dataclass(frozen=True)
class Kedro1xProject:
    """A pristine Kedro 1.x project (with our manifest) and the venv's ``bin/``."""

    root: Path
    bin: Path

    def copy(self, dest: Path) -> Path:
        """A private copy of the project for one test."""
        shutil.copytree(self.root, dest)
        return dest

    def kedro(self, *args: str, cwd: Path, check: bool = True) -> str:
        """Run Kedro 1.x in ``cwd``; return stdout + stderr."""
        env = subprocess_env(bin_dir=self.bin)
        proc = run([self.bin / "kedro", *args], cwd=cwd, env=env, check=check)
        return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def kedro1x_project(tmp_path_factory: pytest.TempPathFactory, kedro1x_bin: Path) -> Kedro1xProject:
    """``kedro new`` + ``kedro pipeline create data_proc`` with Kedro 1.x, plus our manifest."""
    work = tmp_path_factory.mktemp("kedro1x")
    env = subprocess_env(bin_dir=kedro1x_bin)
    kedro = kedro1x_bin / "kedro"
    run([kedro, "new", "--name", "One Proj", "--tools", "none", "--example", "n"], work, env)
    root = work / "one-proj"
    metadata = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert 'kedro_init_version = "1.' in metadata
    run([kedro, "pipeline", "create", PIPE], root, env)
    (root / "pyproject.toml").write_text(metadata + MANIFEST, encoding="utf-8")
    return Kedro1xProject(root, kedro1x_bin)


def _members(tarball: Path) -> set[str]:
    with tarfile.open(tarball, "r:gz") as tar:
        return set(tar.getnames())


def _assert_data_proc_sdist(dist: Path) -> None:
    tarballs = sorted(p.name for p in dist.glob("*.tar.gz"))
    assert tarballs == [f"{PIPE}-0.1.tar.gz"]
    members = _members(dist / tarballs[0])
    top = f"{PIPE}-0.1"
    for expected in (
        f"{top}/PKG-INFO",
        f"{top}/pyproject.toml",
        f"{top}/{PIPE}/__init__.py",
        f"{top}/{PIPE}/pipeline.py",
        f"{top}/{PIPE}/nodes.py",
        f"{top}/{PIPE}/config/parameters_{PIPE}.yml",
        f"{top}/tests/test_pipeline.py",
    ):
        assert expected in members, f"{expected} missing from {sorted(members)}"


def _move_manifest_under_tool_kedro(root: Path) -> str:
    """Write the project's manifest as ``[tool.kedro.micropkg]``; return the text before."""
    pyproject = root / "pyproject.toml"
    ours = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(ours.replace("[tool.micropkg.", "[tool.kedro.micropkg."), "utf-8")
    return ours


def _assert_kedro1x_refuses(kedro1x_project: Kedro1xProject, root: Path) -> None:
    """Kedro 1.x does not start in ``root``: it refuses ``[tool.kedro.micropkg]``."""
    out = kedro1x_project.kedro("registry", "list", cwd=root, check=False)
    assert "Found unexpected keys in 'pyproject.toml'" in out


def test_kedro_starts_with_our_manifest(kedro1x_project: Kedro1xProject) -> None:
    """``[tool.micropkg]`` does not break Kedro's start-up, and ``micropkg`` is listed."""
    root = kedro1x_project.root
    help_text = kedro1x_project.kedro("--help", cwd=root)
    assert "micropkg" in help_text
    assert "micropkg" in kedro1x_project.kedro("micropkg", "--help", cwd=root)
    assert "micropkg_tasks" in kedro1x_project.kedro("info", cwd=root)
    registry = kedro1x_project.kedro("registry", "list", cwd=root)  # full project bootstrap
    assert f"- {PIPE}" in registry


def test_kedro_micropkg_package_module(kedro1x_project: Kedro1xProject, tmp_path: Path) -> None:
    """``kedro micropkg package pipelines.data_proc`` writes the sdist to ``dist/``."""
    root = kedro1x_project.copy(tmp_path / "proj")
    out = kedro1x_project.kedro("micropkg", "package", f"pipelines.{PIPE}", cwd=root)
    assert f"'{PKG}.pipelines.{PIPE}' packaged!" in out
    _assert_data_proc_sdist(root / "dist")


def test_kedro_micropkg_package_all(kedro1x_project: Kedro1xProject, tmp_path: Path) -> None:
    """``kedro micropkg package --all`` packages the ``[tool.micropkg.package]`` entries."""
    root = kedro1x_project.copy(tmp_path / "proj")
    kedro1x_project.kedro("micropkg", "package", "--all", cwd=root)
    _assert_data_proc_sdist(root / "dist")
    # A deleted target is rebuilt by the next run.
    shutil.rmtree(root / "dist")
    kedro1x_project.kedro("micropkg", "package", "--all", cwd=root)
    _assert_data_proc_sdist(root / "dist")


def test_micropkg_console_script(kedro1x_project: Kedro1xProject, tmp_path: Path) -> None:
    """The non-editable install also registers the ``micropkg`` console script."""
    root = kedro1x_project.copy(tmp_path / "proj")
    env = subprocess_env(bin_dir=kedro1x_project.bin)
    run([kedro1x_project.bin / "micropkg", "package", f"pipelines.{PIPE}"], root, env)
    _assert_data_proc_sdist(root / "dist")


def test_manifest_under_tool_kedro_breaks_kedro1x(
    kedro1x_project: Kedro1xProject, tmp_path: Path
) -> None:
    """Control: Kedro 1.x refuses ``[tool.kedro.micropkg]``, hence ``[tool.micropkg]``."""
    root = kedro1x_project.copy(tmp_path / "proj")
    _move_manifest_under_tool_kedro(root)
    _assert_kedro1x_refuses(kedro1x_project, root)


def test_kedro_micropkg_pull_and_registry(kedro1x_project: Kedro1xProject, tmp_path: Path) -> None:
    """``kedro micropkg pull`` places the pipeline where ``find_pipelines`` registers it."""
    root = kedro1x_project.copy(tmp_path / "proj")
    kedro1x_project.kedro("micropkg", "package", f"pipelines.{PIPE}", "--alias", "beta", cwd=root)
    out = kedro1x_project.kedro(
        "micropkg", "pull", "dist/beta-0.1.tar.gz", "-d", "pipelines", cwd=root
    )
    assert "Micro-package dist/beta-0.1.tar.gz pulled and unpacked!" in out
    assert (root / f"src/{PKG}/pipelines/beta/pipeline.py").is_file()
    assert (root / "tests/pipelines/beta/test_pipeline.py").is_file()
    assert (root / "conf/base/parameters_beta.yml").is_file()
    assert (root / "micropkg.lock").is_file()
    registry = kedro1x_project.kedro("registry", "list", cwd=root)
    assert "- beta" in registry and f"- {PIPE}" in registry


def test_init_migrate_lets_kedro1x_start(kedro1x_project: Kedro1xProject, tmp_path: Path) -> None:
    """With ``[tool.kedro.micropkg]`` Kedro 1.x crashes on start-up and ``micropkg`` warns (once,
    on stderr, naming the fix); after ``micropkg init --migrate`` Kedro starts and our commands
    read the same manifest, without the warning."""
    root = kedro1x_project.copy(tmp_path / "proj")
    pyproject = root / "pyproject.toml"
    ours = _move_manifest_under_tool_kedro(root)
    _assert_kedro1x_refuses(kedro1x_project, root)

    env = subprocess_env(bin_dir=kedro1x_project.bin)
    micropkg = kedro1x_project.bin / "micropkg"
    warned = run([micropkg, "package", "--all"], root, env)
    lines = warned.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Warning: [tool.kedro.micropkg]"), warned.stderr
    assert "[tool.micropkg]" in lines[0] and "micropkg init --migrate" in lines[0]
    _assert_data_proc_sdist(root / "dist")

    migrated = run([micropkg, "init", "--migrate"], root, env)
    assert migrated.stderr == ""
    assert "Moved the manifest from [tool.kedro.micropkg] to [tool.micropkg]" in migrated.stdout
    assert pyproject.read_text(encoding="utf-8") == ours
    registry = kedro1x_project.kedro("registry", "list", cwd=root)  # starts again
    assert f"- {PIPE}" in registry
    shutil.rmtree(root / "dist")
    out = kedro1x_project.kedro("micropkg", "package", "--all", cwd=root)
    assert "Warning" not in out
    _assert_data_proc_sdist(root / "dist")


def test_installed_kedro1x_counts_for_the_warning(
    kedro1x_project: Kedro1xProject, tmp_path: Path
) -> None:
    """A project that says Kedro 0.19 but runs with Kedro 1.x installed: warned too (the
    version comes from the installed distribution's metadata)."""
    root = kedro1x_project.copy(tmp_path / "proj")
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text = re.sub(r'kedro_init_version = "1\.[^"]*"', 'kedro_init_version = "0.19.15"', text)
    pyproject.write_text(text, "utf-8")
    _move_manifest_under_tool_kedro(root)
    env = subprocess_env(bin_dir=kedro1x_project.bin)
    status = run([kedro1x_project.bin / "micropkg", "status"], root, env)
    assert re.fullmatch(
        r"Warning: \[tool\.kedro\.micropkg\] .* \(Kedro 1\.\d+\.\d+\S* is installed\): move the "
        r"manifest to \[tool\.micropkg\] with 'micropkg init --migrate'\.\n",
        status.stderr,
    ), status.stderr
