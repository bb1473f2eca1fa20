"""Generate synthetic Kedro 0.19 projects for the benchmarks.

A generated project looks like ``kedro new`` + ``kedro pipeline create`` output, scaled up:
``N`` micro-packages ``pipelines.p001`` … each with

* code: ``__init__.py`` (``__version__``), ``nodes.py``, ``pipeline.py``, ``transforms.py``,
  ``utils/__init__.py``, ``utils/helpers.py`` (100–200 lines per module, docstrings, absolute
  ``from <pkg>.pipelines.pNNN… import`` and relative ``from .x import`` imports, an
  ``import a.b as c``) and a ``requirements.txt``;
* tests: ``tests/pipelines/pNNN/__init__.py`` and ``test_pipeline.py`` (absolute imports and a
  ``mock.patch("<pkg>.pipelines.pNNN.nodes.logger")`` string);
* parameters: flat ``conf/base/parameters_pNNN.yml`` and nested
  ``conf/base/parameters/pNNN/model.yml``.

That is 11 input files per micro-package (5,500 at N=500). The same project serves Kedro 0.19.15
and micropkg-tasks: ``[tool.kedro.micropkg.package]`` lists every micro-package, and a "pull"
project (no micro-packages, other package name) lists tarballs in ``[tool.kedro.micropkg.pull]``.
User code imports only the standard library and ``kedro.pipeline``, so Kedro can import it.

Output is deterministic: the same arguments give byte-identical trees. N=500 takes ~1 s.

Usage::

    python benchmarks/generate.py DEST --n 20
    python benchmarks/generate.py DEST --n 0 --package bench_dest --pull dist/p001-0.1.tar.gz
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GeneratedProject", "generate_project", "micropkg_names"]

KEDRO_VERSION = "0.19.15"
DEFAULT_PACKAGE = "bench_proj"
FILES_PER_MICROPKG = 11

_REQUIREMENT_POOL = (
    "pandas>=1.5",
    "numpy>=1.23,<3",
    "scikit-learn~=1.3",
    "PyYAML>=6.0",
    "requests>=2.28",
    "scipy>=1.10",
    "pyarrow>=12",
    "matplotlib>=3.7",
)
_FEATURES = ("value", "weight", "price", "quantity", "score", "age", "distance", "duration")


@dataclass(frozen=True)
class GeneratedProject:
    """What :func:`generate_project` wrote."""

    root: Path
    package: str
    names: tuple[str, ...]
    """Micro-package names (``p001`` …), in manifest order."""
    input_files: tuple[str, ...]
    """Every file that belongs to a micro-package (code, tests, parameters), root-relative."""

    def module_path(self, name: str) -> str:
        """The manifest key of micro-package ``name`` (``pipelines.p001``)."""
        return f"pipelines.{name}"

    def flat_params(self, name: str) -> Path:
        """The flat parameter file of ``name`` (``conf/base/parameters_p001.yml``)."""
        return self.root / "conf" / "base" / f"parameters_{name}.yml"

    def code_dir(self, name: str) -> Path:
        """The code folder of ``name``."""
        return self.root / "src" / self.package / "pipelines" / name


def micropkg_names(n: int) -> list[str]:
    """``p001`` … ``pNNN`` (at least three digits, so names sort in order)."""
    width = max(3, len(str(n)))
    return [f"p{i:0{width}d}" for i in range(1, n + 1)]


class _Writer:
    """Writes files under a root, creating each folder once, and remembers what it wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[Path] = set()
        self.written: list[str] = []

    def __call__(self, rel: str, text: str) -> str:
        path = self.root / rel
        parent = path.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        path.write_bytes(text.encode("utf-8"))
        self.written.append(rel)
        return rel


# --------------------------------------------------------------------------------------------
# Project skeleton


def _pyproject(package: str, names: Sequence[str], pulls: Sequence[str], dest: str) -> str:
    lines = [
        "[build-system]",
        'requires = ["setuptools"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{package}"',
        'readme = "README.md"',
        'dynamic = ["version"]',
        'requires-python = ">=3.9"',
        'dependencies = ["ipython>=8.10", "jupyterlab>=3.0", "notebook", '
        f'"kedro~={KEDRO_VERSION}"]',
        "",
        "[project.scripts]",
        f'{package.replace("_", "-")} = "{package}.__main__:main"',
        "",
        "[tool.setuptools.dynamic]",
        f'version = {{attr = "{package}.__version__"}}',
        "",
        "[tool.setuptools.packages.find]",
        'where = ["src"]',
        "namespaces = false",
        "",
        "[tool.kedro]",
        f'package_name = "{package}"',
        f'project_name = "{package.replace("_", " ").title()}"',
        f'kedro_init_version = "{KEDRO_VERSION}"',
        "tools = \"['None']\"",
        'example_pipeline = "False"',
        'source_dir = "src"',
    ]
    if names:
        lines += ["", "[tool.kedro.micropkg.package]"]
        lines += [f'"pipelines.{name}" = {{}}' for name in names]
    if pulls:
        lines += ["", "[tool.kedro.micropkg.pull]"]
        lines += [f'"{src}" = {{destination = "{dest}"}}' for src in pulls]
    return "\n".join(lines) + "\n"


def _skeleton(w: _Writer, package: str, with_dodo: bool) -> None:
    src = f"src/{package}"
    w("README.md", f"# {package}\n\nA synthetic Kedro {KEDRO_VERSION} project for benchmarks.\n")
    w(".gitignore", "dist/\n.micropkg/\n__pycache__/\n")
    w("requirements.txt", f"ipython>=8.10\njupyterlab>=3.0\nnotebook\nkedro~={KEDRO_VERSION}\n")
    w(
        "requirements.in",
        "# Project requirements (benchmark: kept small so the first compile is quick).\n"
        "PyYAML>=6.0\npackaging>=23\n",
    )
    if with_dodo:
        w("dodo.py", "from micropkg_tasks.tasks import *  # noqa: F403\n")
    w(f"{src}/__init__.py", f'"""{package}."""\n\n__version__ = "0.1"\n')
    w(
        f"{src}/__main__.py",
        f'"""{package} file for ensuring the package is executable as `python -m {package}`."""\n'
        "\nimport sys\nfrom pathlib import Path\n\n"
        "from kedro.framework.cli.utils import find_run_command\n"
        "from kedro.framework.project import configure_project\n\n\n"
        "def main(*args, **kwargs):\n"
        "    package_name = Path(__file__).parent.name\n"
        "    configure_project(package_name)\n"
        "    run = find_run_command(package_name)\n"
        "    run(*args, **kwargs)\n\n\n"
        'if __name__ == "__main__":\n    main()\n',
    )
    w(
        f"{src}/pipeline_registry.py",
        '"""Project pipelines."""\n\nfrom kedro.framework.project import find_pipelines\n'
        "from kedro.pipeline import Pipeline\n\n\n"
        "def register_pipelines() -> dict[str, Pipeline]:\n"
        '    """Register the project\'s pipelines."""\n'
        "    pipelines = find_pipelines()\n"
        '    pipelines["__default__"] = sum(pipelines.values())\n'
        "    return pipelines\n",
    )
    w(
        f"{src}/settings.py",
        '"""Project settings."""\n\n# CONF_SOURCE = "conf"\n\n'
        "from kedro.config import OmegaConfigLoader  # noqa: E402\n\n"
        "CONFIG_LOADER_CLASS = OmegaConfigLoader\n"
        'CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}\n',
    )
    w(f"{src}/pipelines/__init__.py", "")
    w("conf/base/parameters.yml", "# Global parameters\nseed: 42\n")
    w("conf/base/catalog.yml", "# Datasets\n")
    w("conf/local/credentials.yml", "# Credentials (never committed)\n")
    w("conf/local/.gitkeep", "")
    w("tests/__init__.py", "")
    w("tests/pipelines/__init__.py", "")
    w(
        "tests/test_run.py",
        '"""Project-level smoke test."""\n\n\ndef test_project_imports():\n'
        f"    import {package}  # noqa: F401\n",
    )


# --------------------------------------------------------------------------------------------
# One micro-package


def _function(i: int, feature: str, other: str, ref: str) -> list[str]:
    return [
        "",
        "",
        f"def compute_{feature}_{i}(rows: list[Row], params: Mapping[str, Any]) -> list[Row]:",
        f'    """Derive ``{feature}_{i}`` from ``{feature}`` and ``{other}``.',
        "",
        "    Args:",
        "        rows: input records.",
        f"        params: the ``{ref}`` parameters (``scale``, ``threshold``).",
        "",
        "    Returns:",
        f"        The records, each with ``{feature}_{i}`` added.",
        '    """',
        '    scale = float(params.get("scale", 1.0))',
        '    threshold = float(params.get("threshold", 0.5))',
        "    out: list[Row] = []",
        "    for row in rows:",
        f'        value = float(row.get("{feature}", 0.0)) * scale',
        f'        weight = float(row.get("{other}", 1.0))',
        "        if value > threshold:",
        "            derived = safe_div(value, weight)",
        "        else:",
        "            derived = clip(value, 0.0, 1.0)",
        f'        out.append({{**row, "{feature}_{i}": round(derived, 4)}})',
        f'    logger.debug("{feature}_{i}: %d rows", len(out))',
        "    return out",
    ]


def _nodes(pkg: str, name: str, rng: random.Random, count: int) -> tuple[str, list[str]]:
    funcs: list[str] = []
    lines = [
        f'"""Nodes of the ``{name}`` pipeline.',
        "",
        "Every node takes a list of records and the pipeline's parameters and returns new records;",
        "nothing is changed in place.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import logging",
        "import math",
        "import statistics",
        "from collections.abc import Mapping",
        "from typing import Any",
        "",
        f"from {pkg}.pipelines.{name}.utils.helpers import clip, safe_div",
        "",
        "from .transforms import normalise",
        "",
        "Row = dict[str, Any]",
        "logger = logging.getLogger(__name__)",
    ]
    for i in range(count):
        feature, other = rng.sample(_FEATURES, 2)
        funcs.append(f"compute_{feature}_{i}")
        lines += _function(i, feature, other, name)
    lines += [
        "",
        "",
        "def summarise(rows: list[Row], params: Mapping[str, Any]) -> dict[str, float]:",
        '    """Summary statistics of the numeric columns of ``rows``."""',
        '    columns = params.get("columns") or sorted({k for r in rows for k in r})',
        "    summary: dict[str, float] = {}",
        "    for column in columns:",
        "        values = [float(r[column]) for r in rows"
        " if isinstance(r.get(column), int | float)]",
        "        if not values:",
        "            continue",
        '        summary[f"{column}_mean"] = statistics.fmean(values)',
        '        summary[f"{column}_max"] = max(values)',
        '        summary[f"{column}_norm"] = math.sqrt(sum(v * v for v in values))',
        "    return summary",
        "",
        "",
        "def prepare(rows: list[Row], params: Mapping[str, Any]) -> list[Row]:",
        '    """Normalise the raw records before the feature nodes run."""',
        '    return normalise(rows, keys=params.get("columns", ()))',
    ]
    funcs += ["summarise", "prepare"]
    return "\n".join(lines) + "\n", funcs


def _transforms(pkg: str, name: str, rng: random.Random, count: int) -> str:
    lines = [
        f'"""Row transforms shared by the ``{name}`` nodes."""',
        "",
        "from __future__ import annotations",
        "",
        "import math",
        "from collections.abc import Iterable",
        "from typing import Any",
        "",
        f"import {pkg}.pipelines.{name}.utils.helpers as helpers",
        "",
        "from .utils import clip",
        "",
        "",
        "def normalise(rows: list[dict[str, Any]], keys: Iterable[str] = ())"
        " -> list[dict[str, Any]]:",
        '    """Scale each of ``keys`` to [0, 1] over ``rows``."""',
        "    keys = list(keys)",
        "    out = [dict(row) for row in rows]",
        "    for key in keys:",
        "        values = [float(r.get(key, 0.0)) for r in rows]",
        "        low, high = min(values, default=0.0), max(values, default=1.0)",
        "        for row, value in zip(out, values, strict=True):",
        "            row[key] = clip(helpers.safe_div(value - low, high - low), 0.0, 1.0)",
        "    return out",
    ]
    for i in range(count):
        feature = rng.choice(_FEATURES)
        lines += [
            "",
            "",
            f"def log_{feature}_{i}(rows: list[dict[str, Any]], base: float = math.e)"
            " -> list[float]:",
            f'    """The log of ``{feature}`` in base ``base`` (zero for non-positive values).',
            "",
            "    Args:",
            "        rows: input records.",
            "        base: logarithm base.",
            "",
            "    Returns:",
            "        One value per record.",
            '    """',
            "    out = []",
            "    for row in rows:",
            f'        value = float(row.get("{feature}", 0.0))',
            "        out.append(math.log(value, base) if value > 0 else 0.0)",
            "    return out",
        ]
    return "\n".join(lines) + "\n"


def _helpers(name: str, count: int) -> str:
    lines = [
        f'"""Small numeric helpers of the ``{name}`` pipeline (standard library only)."""',
        "",
        "from __future__ import annotations",
        "",
        "import math",
        "from collections.abc import Sequence",
        "",
        "",
        "def clip(value: float, low: float, high: float) -> float:",
        '    """``value`` limited to ``[low, high]``."""',
        "    return max(low, min(high, value))",
        "",
        "",
        "def safe_div(num: float, den: float, default: float = 0.0) -> float:",
        '    """``num / den``, or ``default`` when ``den`` is zero or not finite."""',
        "    if den == 0 or not math.isfinite(den):",
        "        return default",
        "    return num / den",
    ]
    for i in range(count):
        lines += [
            "",
            "",
            f"def moving_average_{i}(values: Sequence[float], window: int = {i + 2})"
            " -> list[float]:",
            f'    """Trailing moving average over ``window`` values (variant {i}).',
            "",
            "    Args:",
            "        values: the series.",
            "        window: how many values each mean covers.",
            "",
            "    Returns:",
            "        A list as long as ``values``.",
            '    """',
            "    out: list[float] = []",
            "    total = 0.0",
            "    for j, value in enumerate(values):",
            "        total += value",
            "        if j >= window:",
            "            total -= values[j - window]",
            "        out.append(total / min(j + 1, window))",
            "    return out",
        ]
    return "\n".join(lines) + "\n"


def _pipeline(pkg: str, name: str, funcs: Sequence[str]) -> str:
    lines = [
        f'"""Pipeline ``{name}``: prepare, derive features, summarise."""',
        "",
        "from kedro.pipeline import Pipeline, node, pipeline",
        "",
        f"from {pkg}.pipelines.{name}.nodes import (",
    ]
    lines += [f"    {f}," for f in funcs]
    lines += [
        ")",
        "",
        "from .utils import helpers  # noqa: F401",
        "",
        "",
        "def create_pipeline(**kwargs) -> Pipeline:",
        f'    """The ``{name}`` pipeline."""',
        "    return pipeline(",
        "        [",
    ]
    previous = f"{name}_raw"
    for f in funcs:
        output = f"{name}_{f}"
        lines += [
            "            node(",
            f"                func={f},",
            f'                inputs=["{previous}", "params:{name}"],',
            f'                outputs="{output}",',
            f'                name="{name}_{f}",',
            "            ),",
        ]
        if f != "summarise":
            previous = output
    lines += ["        ]", "    )"]
    return "\n".join(lines) + "\n"


def _tests(pkg: str, name: str, funcs: Sequence[str]) -> str:
    features = [f for f in funcs if f.startswith("compute_")]
    lines = [
        f'"""Tests of the ``{name}`` pipeline and its nodes."""',
        "",
        "from unittest import mock",
        "",
        "import pytest",
        "",
        f"from {pkg}.pipelines.{name} import nodes",
        f"from {pkg}.pipelines.{name}.pipeline import create_pipeline",
        f"from {pkg}.pipelines.{name}.utils.helpers import clip, safe_div",
        "",
        "",
        "@pytest.fixture",
        "def rows():",
        "    return [",
    ]
    for i in range(4):
        pairs = ", ".join(f'"{f}": {(i + 1) * (j + 2) / 3:.2f}' for j, f in enumerate(_FEATURES))
        lines.append(f"        {{{pairs}}},")
    lines += [
        "    ]",
        "",
        "",
        "@pytest.fixture",
        "def params():",
        '    return {"scale": 1.5, "threshold": 0.25, "columns": ["value", "weight"]}',
        "",
        "",
        "def test_pipeline_has_nodes():",
        f"    assert len(create_pipeline().nodes) == {len(funcs)}",
        "",
        "",
        "def test_helpers():",
        "    assert clip(3.0, 0.0, 1.0) == 1.0",
        "    assert safe_div(1.0, 0.0) == 0.0",
    ]
    for f in features:
        lines += [
            "",
            "",
            f"def test_{f}(rows, params):",
            f"    out = nodes.{f}(rows, params)",
            "    assert len(out) == len(rows)",
            f'    assert all("{f.removeprefix("compute_")}" in row for row in out)',
        ]
    lines += [
        "",
        "",
        "def test_logging(rows, params):",
        f'    with mock.patch("{pkg}.pipelines.{name}.nodes.logger") as logger:',
        f"        nodes.{features[0]}(rows, params)",
        "    logger.debug.assert_called_once()",
    ]
    return "\n".join(lines) + "\n"


def _flat_params(name: str, rng: random.Random) -> str:
    lines = [
        f"# Parameters of the {name} pipeline",
        f"{name}:",
        f"  scale: {rng.uniform(0.5, 2.0):.3f}",
        f"  threshold: {rng.uniform(0.1, 0.9):.3f}",
        "  columns:",
    ]
    lines += [f"    - {c}" for c in rng.sample(_FEATURES, 4)]
    lines += [
        "  split:",
        f"    test_size: {rng.choice([0.1, 0.2, 0.25])}",
        f"    random_state: {rng.randint(1, 9999)}",
        "  options:",
        "    drop_missing: true",
        f"    max_rows: {rng.randint(1000, 100000)}",
        "    labels:",
        f"      positive: {name}_pos",
        f"      negative: {name}_neg",
    ]
    return "\n".join(lines) + "\n"


def _nested_params(name: str, rng: random.Random) -> str:
    lines = [
        f"# Model parameters of the {name} pipeline (nested layout)",
        f"{name}_model:",
        f"  learning_rate: {rng.uniform(0.001, 0.1):.4f}",
        f"  n_estimators: {rng.randint(50, 500)}",
        f"  max_depth: {rng.randint(2, 12)}",
        "  features:",
    ]
    lines += [f"    - {c}" for c in rng.sample(_FEATURES, 3)]
    lines += ["  early_stopping:", "    enabled: true", f"    rounds: {rng.randint(5, 50)}"]
    return "\n".join(lines) + "\n"


def _requirements(name: str, rng: random.Random) -> str:
    picks = rng.sample(_REQUIREMENT_POOL, rng.randint(2, 4))
    lines = [f"# Requirements of the {name} micro-package", ""]
    lines += [*picks[:-1], f"{picks[-1]}  # pinned by the data team"]
    return "\n".join(lines) + "\n"


def _micropkg(w: _Writer, pkg: str, name: str, seed: int) -> None:
    rng = random.Random(f"{seed}:{name}")
    code = f"src/{pkg}/pipelines/{name}"
    nodes, funcs = _nodes(pkg, name, rng, rng.randint(5, 7))
    w(
        f"{code}/__init__.py",
        f'"""Complete \'{name}\' pipeline."""\n\nfrom .pipeline import create_pipeline\n\n'
        f'__all__ = ["create_pipeline"]\n\n__version__ = "0.1"\n',
    )
    w(f"{code}/nodes.py", nodes)
    w(f"{code}/pipeline.py", _pipeline(pkg, name, funcs))
    w(f"{code}/transforms.py", _transforms(pkg, name, rng, rng.randint(5, 8)))
    w(
        f"{code}/utils/__init__.py",
        f'"""Utilities of the ``{name}`` pipeline."""\n\n'
        'from .helpers import clip, safe_div\n\n__all__ = ["clip", "safe_div"]\n',
    )
    w(f"{code}/utils/helpers.py", _helpers(name, rng.randint(5, 8)))
    w(f"{code}/requirements.txt", _requirements(name, rng))
    w(f"tests/pipelines/{name}/__init__.py", "")
    w(f"tests/pipelines/{name}/test_pipeline.py", _tests(pkg, name, funcs))
    w(f"conf/base/parameters_{name}.yml", _flat_params(name, rng))
    w(f"conf/base/parameters/{name}/model.yml", _nested_params(name, rng))


# --------------------------------------------------------------------------------------------


def generate_project(
    root: Path,
    n: int,
    *,
    package: str = DEFAULT_PACKAGE,
    seed: int = 0,
    pulls: Sequence[str] = (),
    pull_destination: str = "pipelines",
    with_dodo: bool = True,
    clean: bool = True,
) -> GeneratedProject:
    """Write a Kedro 0.19 project with ``n`` micro-packages at ``root``.

    Args:
        root: project folder (emptied first when ``clean``).
        n: number of micro-packages (0 for a project that only pulls).
        package: the project's Python package name.
        seed: varies module sizes and parameter values.
        pulls: sdist paths for ``[tool.kedro.micropkg.pull]`` (relative to ``root``).
        pull_destination: the ``destination`` of every pull entry.
        with_dodo: write the one-line ``dodo.py``.
        clean: delete ``root`` first.
    """
    if clean and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    names = micropkg_names(n)
    w = _Writer(root)
    w("pyproject.toml", _pyproject(package, names, pulls, pull_destination))
    _skeleton(w, package, with_dodo)
    mark = len(w.written)
    for name in names:
        _micropkg(w, package, name, seed)
    return GeneratedProject(root.resolve(), package, tuple(names), tuple(w.written[mark:]))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="project folder (replaced)")
    parser.add_argument("--n", type=int, default=20, help="number of micro-packages")
    parser.add_argument("--package", default=DEFAULT_PACKAGE, help="project package name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pull", action="append", default=[], help="sdist path for the pull manifest"
    )
    parser.add_argument("--pull-destination", default="pipelines")
    parser.add_argument("--no-dodo", action="store_true", help="do not write dodo.py")
    args = parser.parse_args(argv)
    project = generate_project(
        args.dest,
        args.n,
        package=args.package,
        seed=args.seed,
        pulls=args.pull,
        pull_destination=args.pull_destination,
        with_dodo=not args.no_dodo,
    )
    print(
        f"{project.root}: {len(project.names)} micro-packages, "
        f"{len(project.input_files)} input files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
