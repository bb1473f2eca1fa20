"""A shared pipeline released in several versions, and a project that pulls it (lifecycle
tests: upgrades with local edits, diff, outdated, upgrade, remove)."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projects import add_pipeline, make_project

__all__ = ["NODES", "PARAMS", "Releases"]

NODES = textwrap.dedent(
    '''\
    """Nodes of the pipeline."""


    def clean(df):
        return df.dropna()


    def scale(x, rate):
        return x * rate


    def report(x):
        return {"value": x}
    '''
)
PARAMS = "ds:\n  rate: 0.5\n  threshold: 3\n  columns: [a, b]\n"


@dataclass
class Releases:
    """A source project with pipeline ``ds``; each :meth:`release` packages it as a new version
    into ``folder`` (older tarballs stay, as in a shared release folder)."""

    root: Path
    folder: Path
    cli: Callable[..., Any]

    @classmethod
    def create(cls, tmp_path: Path, cli: Callable[..., Any]) -> Releases:
        root = make_project(tmp_path / "source")
        code = add_pipeline(root, "ds", requirements="pandas>=1.0\n")
        (code / "nodes.py").write_text(NODES, encoding="utf-8")
        (root / "conf/base/parameters_ds.yml").write_text(PARAMS, encoding="utf-8")
        return cls(root, tmp_path / "releases", cli)

    @property
    def code(self) -> Path:
        return self.root / "src/demo_proj/pipelines/ds"

    def release(self, version: str, changes: Mapping[str, str | None] | None = None) -> Path:
        """Apply ``changes`` (source-project path → text, ``None`` deletes), set
        ``__version__``, package, and copy the tarball into :attr:`folder`; return it."""
        for rel, text in (changes or {}).items():
            path = self.root / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        init = self.code / "__init__.py"
        lines = [
            line
            for line in init.read_text(encoding="utf-8").splitlines()
            if not line.startswith("__version__")
        ]
        init.write_text("\n".join([*lines, f'__version__ = "{version}"']) + "\n", "utf-8")
        previous = os.getcwd()
        os.chdir(self.root)
        try:
            result = self.cli("package", "pipelines.ds")
        finally:
            os.chdir(previous)
        assert result.code == 0, result.err
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"ds-{version}.tar.gz"
        shutil.copyfile(self.root / "dist" / f"ds-{version}.tar.gz", target)
        return target
