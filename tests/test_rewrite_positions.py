"""The rewriter end to end: package with ``--alias``, pull with ``--destination pipelines``
into another project, through the real CLI, then import and run the code at each stage
(source project, sdist, consuming project).

Two micro-packages carry the position matrix (``tests/rewrite_matrix.py``): a small hand-made
one, and a real library (click, installed by the test extras) laid out as a micro-package with
its self-imports turned into absolute project imports.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from projects import make_project, write
from rewrite_matrix import CASES, HELPER, render

from micropkg_tasks.rewrite import rewrite_source, submodule_names

SOURCE_PKG = "src_proj"
CONSUMER_PKG = "cons"
STAGES = ("source", "packaged", "pulled")

# Imports each case module of a stage and prints {case: repr(check()) or the error} as JSON.
RUNNER = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
results = {}
for case in sys.argv[3:]:
    try:
        module = importlib.import_module(f"{sys.argv[2]}.{case}")
        results[case] = repr(module.check())
    except BaseException as exc:
        results[case] = f"ERROR {type(exc).__name__}: {exc}"
print(json.dumps(results))
"""


def module_name(case: str) -> str:
    return "case_" + case.replace("-", "_")


@dataclass(frozen=True)
class Layout:
    """A micro-package carried from a source project to a consumer."""

    name: str  # folder under src/<pkg>/pipelines/ in the source project
    alias: str  # --alias at package time: the sdist's package, and the pulled folder
    extra: tuple[str, ...] = ()  # more modules to run at each stage (their ``check()``)

    def path(self, stage: str) -> str:
        """The micro-package's import path at ``stage``."""
        return {
            "source": f"{SOURCE_PKG}.pipelines.{self.name}",
            "packaged": self.alias,
            "pulled": f"{CONSUMER_PKG}.pipelines.{self.alias}",
        }[stage]


@dataclass(frozen=True)
class Built:
    """The micro-package's files and the cases' results at every stage."""

    layout: Layout
    files: dict[str, dict[str, bytes]]  # stage → path inside the micro-package → bytes
    results: dict[str, dict[str, str]]  # stage → case or module → repr(check()) or "ERROR …"
    warnings: str  # what package and pull printed on stderr


def micropkg(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "micropkg_tasks", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"},
    )
    assert result.returncode == 0, result.stderr
    return result


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def run_checks(sys_path: Path, package: str, modules: list[str], cwd: Path) -> dict[str, str]:
    """Import ``package.<module>`` for each module in a fresh interpreter whose ``sys.path``
    starts with ``sys_path``: ``{module: repr(module.check()) or the error}``."""
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(sys_path), package, *modules],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def run_cases(sys_path: Path, layout: Layout, stage: str, cwd: Path) -> dict[str, str]:
    modules = [module_name(case) for case in CASES]
    by_module = run_checks(sys_path, layout.path(stage), [*modules, *layout.extra], cwd)
    results = {case: by_module[module_name(case)] for case in CASES}
    results.update((module, by_module[module]) for module in layout.extra)
    return results


def build(tmp: Path, layout: Layout, lay_out_code: Callable[[Path], None]) -> Built:
    """Lay the micro-package out in a source project, package it, pull it, run the cases."""
    source = make_project(tmp / "source", package=SOURCE_PKG)
    code = source / "src" / SOURCE_PKG / "pipelines" / layout.name
    lay_out_code(code)
    write(code / "mhelp.py", HELPER)
    for case, (template, _) in CASES.items():
        write(code / f"{module_name(case)}.py", render(template, layout.path("source")))
    packaged = micropkg(source, "package", f"pipelines.{layout.name}", "--alias", layout.alias)

    consumer = make_project(tmp / "consumer", package=CONSUMER_PKG)
    tarball = source / "dist" / f"{layout.alias}-0.1.tar.gz"
    pulled = micropkg(consumer, "pull", str(tarball), "--destination", "pipelines")

    with tarfile.open(tarball) as tar:
        tar.extractall(tmp / "sdist", filter="data")
    sdist_root = tmp / "sdist" / f"{layout.alias}-0.1"
    folders = {
        "source": (code, source / "src"),
        "packaged": (sdist_root / layout.alias, sdist_root),
        "pulled": (consumer / "src" / CONSUMER_PKG / "pipelines" / layout.alias, consumer / "src"),
    }
    files = {stage: files_under(folder) for stage, (folder, _) in folders.items()}
    results = {
        stage: run_cases(sys_path, layout, stage, tmp) for stage, (_, sys_path) in folders.items()
    }
    return Built(layout, files, results, packaged.stderr + pulled.stderr)


def handmade(code: Path) -> None:
    write(code / "__init__.py", '"""A micro-package made for the position matrix."""\n')


# click's package folder, as installed in the test venv (the test extras require click).
CLICK = Path(__import__("click").__file__).parent
_FROM_RE = re.compile(r"from\s+(\.*[\w.]*)\s+import\b")


def project_imports(data: bytes, rel: str, package: str, path: str) -> bytes:
    """``data`` (module ``rel`` of library ``package``) with its imports of itself, relative
    (``from .core import x``) or absolute (``from click.core import x``), importing ``path``
    instead: how a library becomes a micro-package of a project (Kedro's own templates import
    ``<project>.pipelines.<name>.nodes``). Written independently of the rewriter.

    Each module also ends with ``import <path>.core``, which binds the root name of ``path``
    in the module: the library's own uses of that name (click's many local variables named
    ``parser``, the alias used here) must then be told from the package by their scopes.
    """
    text = data.decode()
    lines = text.splitlines(keepends=True)
    here = rel.split("/")[:-1]  # the file's package, inside the library
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] != package for a in node.names), (rel, node.lineno)
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if node.level:
            base = here[: len(here) - node.level + 1]
            inside = ".".join([*base, *([module] if module else [])])
        elif module == package or module.startswith(package + "."):
            inside = module[len(package) + 1 :]
        else:
            continue
        line = lines[node.lineno - 1]
        col = len(line.encode()[: node.col_offset].decode())
        match = _FROM_RE.match(line, col)
        assert match, (rel, node.lineno)
        target = f"{path}.{inside}" if inside else path
        lines[node.lineno - 1] = line[: match.start(1)] + target + line[match.end(1) :]
    lines.append(f"import {path}.core  # noqa: E402\n")
    return "".join(lines).encode()


def click_files() -> dict[str, bytes]:
    return {
        p.relative_to(CLICK).as_posix(): p.read_bytes()
        for p in sorted(CLICK.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


# A small command-line application on click's API, written beside it as the issue found it
# (``@prod.pipelines.cli.command()``): decorators naming the package, nothing else on the line.
CLI_APP = """\
import sys

import PKG
import PKG.testing


@PKG.group()
def cli():
    pass


@cli.command()
@PKG.option("--name", default="world")
@PKG.argument("greeting", required=False, default="hello")
def hello(name, greeting):
    PKG.echo(f"{greeting}, {name}!")


def check():
    result = PKG.testing.CliRunner().invoke(cli, ["hello", "--name", "micropkg"])
    return result.exit_code, result.output, "click" in sys.modules
"""


def click_layout(code: Path) -> None:
    """click's package folder as micro-package ``pipelines.click`` of the source project."""
    path = f"{SOURCE_PKG}.pipelines.click"
    for rel, data in click_files().items():
        if rel.endswith(".py"):
            data = project_imports(data, rel, "click", path)
        (code / rel).parent.mkdir(parents=True, exist_ok=True)
        (code / rel).write_bytes(data)
    write(code / "cli_app.py", render(CLI_APP, path))


# The click alias is also the name of one of its modules and of its local variables
# (``parser = self.make_parser(ctx)``): on pull, only the references to the package move.
LAYOUTS = {
    "handmade": (Layout("ds", "ds2"), handmade),
    "click": (Layout("click", "param", extra=("cli_app",)), click_layout),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Built]]:
    """``built(layout)``: the layout packaged and pulled once per test module."""
    cache: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in cache:
            layout, lay_out_code = LAYOUTS[name]
            cache[name] = build(tmp_path_factory.mktemp(name), layout, lay_out_code)
        return cache[name]

    yield get


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("direction", ["package", "pull"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_position(built: Callable[[str], Built], layout: str, direction: str, case: str) -> None:
    """Every reference in every position is rewritten, the result runs, and the unit call of
    ``rewrite_source`` gives the same bytes as the CLI."""
    result = built(layout)
    template, expected = CASES[case]
    before, after = ("source", "packaged") if direction == "package" else ("packaged", "pulled")
    rel = f"{module_name(case)}.py"
    want = render(template, result.layout.path(after)).encode()

    assert result.files[after][rel] == want
    assert result.results["source"][case] == repr(expected)  # the case itself is sound
    assert result.results[after][case] == repr(expected)

    old, new = result.layout.path(before), result.layout.path(after)
    data = render(template, old).encode()
    if direction == "package":
        unit = rewrite_source(data, old, new, project_package=SOURCE_PKG, package_depth=0)
    else:
        modules = submodule_names(result.files["packaged"])
        unit = rewrite_source(data, old, new, submodules=modules)
    assert unit.text == want
    assert unit.warnings == ()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_no_warnings(built: Callable[[str], Built], layout: str) -> None:
    assert "Warning" not in built(layout).warnings


REPORT_EXPORT = """\
import importlib

import PKG.nodes

OUT = "report.html"
RAW = "report.raw"
NAMESPACE = "report"
TEMPLATE = "report.templates.page"
SQL = "report.sql.query"
NODES = "PKG.nodes.render"
DEEP = "PKG.utils.deep.tools"
HELPER = "PKG.utils.helper"


def check():
    module = importlib.import_module("PKG")
    return (
        PKG.nodes.render(),
        importlib.import_module(DEEP).VALUE,
        module.__name__ == "PKG",
        module.utils.helper(),
    )
"""


def test_one_word_strings_on_pull(tmp_path: Path) -> None:
    """Pulling micro-package ``report``: strings naming its modules follow it, others stay
    (``"report.html"``, a dataset, a namespace, a folder of data files)."""
    source = make_project(tmp_path / "source", package=SOURCE_PKG)
    code = source / "src" / SOURCE_PKG / "pipelines" / "report"
    write(code / "__init__.py", "")
    write(code / "nodes.py", 'def render():\n    return "rendered"\n')
    write(code / "utils/__init__.py", "def helper():\n    return 'helped'\n")
    write(code / "utils/deep/tools.py", "VALUE = 1\n")  # a namespace package
    write(code / "templates/page.html", "<html></html>\n")
    write(code / "sql/query.sql", "select 1;\n")
    write(code / "export.py", render(REPORT_EXPORT, f"{SOURCE_PKG}.pipelines.report"))
    micropkg(source, "package", "pipelines.report")
    consumer = make_project(tmp_path / "consumer", package=CONSUMER_PKG)
    micropkg(consumer, "pull", str(source / "dist/report-0.1.tar.gz"), "-d", "pipelines")

    pulled = consumer / "src" / CONSUMER_PKG / "pipelines" / "report" / "export.py"
    assert pulled.read_text() == render(REPORT_EXPORT, f"{CONSUMER_PKG}.pipelines.report")
    for root, package in ((source, SOURCE_PKG), (consumer, CONSUMER_PKG)):
        results = run_checks(root / "src", f"{package}.pipelines.report", ["export"], tmp_path)
        assert results == {"export": repr(("rendered", 1, True, "helped"))}


def test_real_library_round_trip(built: Callable[[str], Built]) -> None:
    """click, laid out as a micro-package, packaged with an alias and pulled into another
    project: every file is the original except the import paths, and it works."""
    result = built("click")
    originals = click_files()
    for stage in STAGES:
        path = result.layout.path(stage)
        files = result.files[stage]
        for rel, data in originals.items():
            expected = project_imports(data, rel, "click", path) if rel.endswith(".py") else data
            assert files[rel] == expected, (stage, rel)
        assert files["cli_app.py"] == render(CLI_APP, path).encode()

    # Each copy runs on its own: click's API through the stage's package path, and the
    # installed click is never imported.
    for stage in STAGES:
        assert result.results[stage]["cli_app"] == repr((0, "hello, micropkg!\n", False)), stage
