"""Builders of real, temporary Kedro-shaped projects for the tests (no Kedro needed)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

__all__ = ["add_pipeline", "make_project", "tree_snapshot", "write"]


def write(path: Path, text: str) -> Path:
    """Write ``text`` (dedented) to ``path``, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def make_project(
    root: Path,
    package: str = "demo_proj",
    *,
    kedro_version: str = "0.19.15",
    manifest: str = "",
    requirements: str = "kedro~=0.19.15\npandas>=1.0\n",
) -> Path:
    """Create a minimal Kedro 0.19-style project at ``root`` and return ``root``.

    ``manifest`` is appended verbatim to ``pyproject.toml`` (e.g. a
    ``[tool.kedro.micropkg.package]`` table).
    """
    write(
        root / "pyproject.toml",
        f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{package}"
        dynamic = ["version"]

        [tool.kedro]
        package_name = "{package}"
        project_name = "Demo Project"
        kedro_init_version = "{kedro_version}"
        source_dir = "src"
        """,
    )
    if manifest:
        with (root / "pyproject.toml").open("a", encoding="utf-8") as fh:
            fh.write("\n" + textwrap.dedent(manifest).strip() + "\n")
    write(root / "src" / package / "__init__.py", '"""Demo project."""\n\n__version__ = "0.1"\n')
    write(root / "src" / package / "settings.py", '# CONF_SOURCE = "conf"\n')
    write(root / "src" / package / "pipelines" / "__init__.py", "")
    write(root / "conf" / "base" / "parameters.yml", "{}\n")
    write(root / "conf" / "base" / "catalog.yml", "{}\n")
    write(root / "conf" / "local" / ".gitkeep", "")
    write(root / "tests" / "__init__.py", "")
    write(root / "tests" / "pipelines" / "__init__.py", "")
    if requirements:
        write(root / "requirements.txt", requirements)
    return root


def add_pipeline(
    root: Path,
    name: str,
    package: str = "demo_proj",
    *,
    env: str = "base",
    version: str | None = "0.1",
    requirements: str | None = None,
    params: bool = True,
) -> Path:
    """Add a pipeline the way ``kedro pipeline create`` lays it out; return its code folder."""
    code = root / "src" / package / "pipelines" / name
    version_line = f'\n__version__ = "{version}"\n' if version else ""
    (code).mkdir(parents=True, exist_ok=True)
    (code / "__init__.py").write_text(
        f'"""Complete \'{name}\' pipeline."""\n\n'
        "from .pipeline import create_pipeline\n\n"
        '__all__ = ["create_pipeline"]\n' + version_line,
        encoding="utf-8",
    )
    write(
        code / "nodes.py",
        '''
        """Nodes of the pipeline."""


        def helper(x):
            return x + 1
        ''',
    )
    write(
        code / "pipeline.py",
        f'''
        """Pipeline '{name}'."""

        from {package}.pipelines.{name}.nodes import helper


        def create_pipeline(**kwargs):
            return [helper]
        ''',
    )
    write(root / "tests" / "pipelines" / name / "__init__.py", "")
    write(
        root / "tests" / "pipelines" / name / "test_pipeline.py",
        f"""
        from {package}.pipelines.{name}.pipeline import create_pipeline


        def test_create():
            assert create_pipeline()
        """,
    )
    if params:
        write(root / "conf" / env / f"parameters_{name}.yml", f"{name}:\n  rate: 0.5\n")
    if requirements is not None:
        write(code / "requirements.txt", requirements)
    return code


def tree_snapshot(
    root: Path, *, with_state: bool = False, folders: bool = False
) -> dict[str, bytes]:
    """Every file below ``root`` with its content (to assert that nothing was written).

    ``.micropkg/`` (doit's database, locks: gitignored state) is left out unless asked for. A
    symbolic link is recorded as its target (never followed); with ``folders``, every folder is
    recorded too (as ``<rel>/``), so a created empty folder shows.
    """
    snapshot = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not with_state and (rel == ".micropkg" or rel.startswith(".micropkg/")):
            continue
        if path.is_symlink():
            snapshot[rel] = b"symlink -> " + os.fsencode(os.readlink(path))
        elif path.is_file():
            snapshot[rel] = path.read_bytes()
        elif folders and path.is_dir():
            snapshot[rel + "/"] = b""
    return snapshot
