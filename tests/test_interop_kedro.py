"""Interop with Kedro 0.19.15, both ways, on a project made by Kedro itself.

A project is created with ``kedro new`` and ``kedro pipeline create data_proc`` (Kedro 0.19.15 side
venv), given an absolute self-import, a test that uses it, a nested parameter file, a README and a
``requirements.txt``, then packaged by Kedro and by us.

* ``test_kedro_pulls_our_tarball_like_its_own``: Kedro's ``micropkg pull`` of our tarball and of
  Kedro's own tarball give the same tree (same files, byte-identical contents), plainly and with
  ``--alias beta --destination pipelines``. The one allowed difference: data files Kedro drops on
  package (here the micro-package's ``requirements.txt``) are kept by us, so they arrive too.
* ``test_we_pull_kedros_tarball_like_kedro``: our ``pull`` of Kedro's tarball matches Kedro's pull,
  apart from the documented differences: requirements go to ``requirements.in`` (not
  ``requirements.txt``), new intermediate folders get an empty ``__init__.py``, and we write
  ``micropkg.lock`` and ``.micropkg/`` (not compared).
"""

from __future__ import annotations

import difflib
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from kedro_venvs import run

pytestmark = pytest.mark.interop

PKG = "interop_proj"
PIPE = "data_proc"
COMPARED_TOPS = ("src", "tests", "conf")
COMPARED_FILES = ("requirements.txt", "requirements.in")
# Kedro's sdist keeps only .py files, README.md and parameter files of a micro-package (§2.9).
KEDRO_KEEPS_SUFFIXES = (".py",)
KEDRO_KEEPS_NAMES = ("README.md",)

PIPELINE_PY = f'''\
"""
Pipeline of the interop test project.
"""

from kedro.pipeline import Pipeline, node, pipeline

import {PKG}.pipelines.{PIPE}.nodes as dp_nodes
from {PKG}.pipelines.{PIPE}.nodes import double, shift


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(double, inputs="raw", outputs="doubled", name="double_node"),
            node(shift, inputs=["doubled", "params:offset"], outputs="shifted", name="shift_node"),
            node(dp_nodes.total, inputs="shifted", outputs="total", name="total_node"),
        ]
    )
'''

NODES_PY_TAIL = '''

def double(values: list[float]) -> list[float]:
    """Twice every value."""
    return [2 * value for value in values]


def shift(values: list[float], offset: float) -> list[float]:
    """Add ``offset`` to every value."""
    return [value + offset for value in values]


def total(values: list[float]) -> float:
    """Sum of the values."""
    return sum(values)
'''

TEST_PY = f'''\
"""
Tests of the pipeline, importing it through the project package.
"""

from {PKG}.pipelines.{PIPE} import nodes
from {PKG}.pipelines.{PIPE}.nodes import double
from {PKG}.pipelines.{PIPE}.pipeline import create_pipeline


def test_double():
    assert double([1.0, 2.5]) == [2.0, 5.0]


def test_total():
    assert nodes.total([1.0, 2.0]) == 3.0


def test_pipeline_has_three_nodes():
    assert len(create_pipeline().nodes) == 3
'''

PIPE_REQUIREMENTS = """\
# what the pipeline needs
numpy>=1.24
requests[security]>=2.28  # http
PyYAML; python_version >= "3.9"
"""


@dataclass(frozen=True)
class InteropProject:
    """The Kedro-made project, a copy with the pipeline deleted, and Kedro's tarball."""

    root: Path
    base: Path
    kedro_tarball: Path
    kedro_bin: Path
    work: Path

    def kedro(self, *args: str, cwd: Path) -> None:
        """Run Kedro 0.19.15's CLI in ``cwd``; fail the test on a non-zero exit."""
        run([self.kedro_bin / "kedro", *args], cwd=cwd)

    def fresh_copy(self, name: str) -> Path:
        """A new copy of the project without the pipeline."""
        dest = self.work / name
        shutil.copytree(self.base, dest)
        return dest


def _edit_project(root: Path) -> None:
    """Give the generated pipeline real code, self-imports, tests, parameters and requirements."""
    code = root / "src" / PKG / "pipelines" / PIPE
    nodes = code / "nodes.py"
    nodes.write_text(nodes.read_text(encoding="utf-8") + NODES_PY_TAIL, encoding="utf-8")
    (code / "pipeline.py").write_text(PIPELINE_PY, encoding="utf-8")
    (code / "README.md").write_text(f"# {PIPE}\n\nDoubles and shifts numbers.\n")
    (code / "requirements.txt").write_text(PIPE_REQUIREMENTS, encoding="utf-8")
    (root / "tests" / "pipelines" / PIPE / "test_pipeline.py").write_text(TEST_PY)
    conf = root / "conf" / "base"
    (conf / f"parameters_{PIPE}.yml").write_text("offset: 1.5\n", encoding="utf-8")
    nested = conf / "parameters" / PIPE / "model.yml"
    nested.parent.mkdir(parents=True)
    nested.write_text("model:\n  depth: 3\n  rate: 0.1\n", encoding="utf-8")


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory, kedro019_bin: Path) -> InteropProject:
    """Create the project with Kedro 0.19.15, package it with Kedro, prepare a base copy."""
    work = tmp_path_factory.mktemp("interop")
    kedro = kedro019_bin / "kedro"
    run([kedro, "new", "--name", "Interop Proj", "--tools", "none", "--example", "n"], cwd=work)
    root = work / "interop-proj"
    assert (root / "src" / PKG / "__init__.py").is_file()
    run([kedro, "pipeline", "create", PIPE], cwd=root)
    _edit_project(root)

    kdist = work / "kdist"
    run([kedro, "micropkg", "package", f"pipelines.{PIPE}", "-d", kdist], cwd=root)
    tarballs = sorted(kdist.glob("*.tar.gz"))
    assert [t.name for t in tarballs] == [f"{PIPE}-0.1.tar.gz"]

    base = work / "base"
    shutil.copytree(root, base)
    run([kedro, "pipeline", "delete", "-y", PIPE], cwd=base)
    shutil.rmtree(base / "conf" / "base" / "parameters")  # nested files `delete` leaves behind
    assert not (base / "src" / PKG / "pipelines" / PIPE).exists()
    return InteropProject(root, base, tarballs[0], kedro019_bin, work)


# ---------------------------------------------------------------------------- helpers


def snapshot(root: Path) -> dict[str, bytes]:
    """Relative posix path -> bytes, for ``src/``, ``tests/``, ``conf/`` and requirements files."""
    files: dict[str, bytes] = {}
    for top in COMPARED_TOPS:
        for path in sorted((root / top).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    for name in COMPARED_FILES:
        if (root / name).is_file():
            files[name] = (root / name).read_bytes()
    return files


def _text_diff(name: str, left: bytes, right: bytes, labels: tuple[str, str]) -> str:
    lines = difflib.unified_diff(
        left.decode("utf-8", "replace").splitlines(keepends=True),
        right.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=f"{labels[0]}/{name}",
        tofile=f"{labels[1]}/{name}",
    )
    return "".join(lines) or f"{name}: differ only in bytes not shown (e.g. final newline)\n"


def assert_same_tree(
    left: dict[str, bytes], right: dict[str, bytes], labels: tuple[str, str] = ("kedro", "ours")
) -> None:
    """Same relative file set and byte-identical contents, with a readable report otherwise."""
    problems: list[str] = []
    only_left = sorted(set(left) - set(right))
    only_right = sorted(set(right) - set(left))
    if only_left:
        problems.append(f"only in {labels[0]}: {only_left}")
    if only_right:
        problems.append(f"only in {labels[1]}: {only_right}")
    for name in sorted(set(left) & set(right)):
        if left[name] != right[name]:
            problems.append(_text_diff(name, left[name], right[name], labels))
    assert not problems, "trees differ:\n" + "\n".join(problems)


def kedro_dropped_files(project: Path) -> dict[str, bytes]:
    """Files of the micro-package that Kedro's sdist drops and ours keeps (path inside it)."""
    code = project / "src" / PKG / "pipelines" / PIPE
    dropped: dict[str, bytes] = {}
    for path in sorted(code.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if path.suffix in KEDRO_KEEPS_SUFFIXES or path.name in KEDRO_KEEPS_NAMES:
            continue
        dropped[path.relative_to(code).as_posix()] = path.read_bytes()
    return dropped


def our_cli(*args: str | Path, cwd: Path) -> None:
    """Run our CLI (``python -m micropkg_tasks``) from this interpreter."""
    run([sys.executable, "-m", "micropkg_tasks", *(str(a) for a in args)], cwd=cwd)


def _code_dir(destination: str | None, name: str) -> str:
    parts = [p for p in (destination or "").replace(".", "/").split("/") if p]
    return "/".join(["src", PKG, *parts, name])


def _tests_dir(destination: str | None, name: str) -> str:
    parts = [p for p in (destination or "").replace(".", "/").split("/") if p]
    return "/".join(["tests", *parts, name])


PULL_VARIANTS = [
    pytest.param((), id="plain"),
    pytest.param(("--alias", "beta", "--destination", "pipelines"), id="alias-beta-dest-pipelines"),
]


def _slug(args: Sequence[str]) -> str:
    """A folder-name-safe label for a list of CLI options."""
    return "_".join(arg.lstrip("-").replace("/", ".") for arg in args) or "plain"


def _option(args: Sequence[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


# ---------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def our_tarball(interop: InteropProject) -> Path:
    """Our sdist of the same pipeline, made by ``python -m micropkg_tasks package``."""
    odist = interop.work / "odist"
    our_cli("package", f"pipelines.{PIPE}", "-d", odist, cwd=interop.root)
    tarballs = sorted(odist.glob("*.tar.gz"))
    assert [t.name for t in tarballs] == [interop.kedro_tarball.name]
    return tarballs[0]


@pytest.mark.parametrize("pull_args", PULL_VARIANTS)
def test_kedro_pulls_our_tarball_like_its_own(
    interop: InteropProject, our_tarball: Path, pull_args: tuple[str, ...]
) -> None:
    """``kedro micropkg pull`` of our tarball == of Kedro's tarball (same files, same bytes)."""
    suffix = _slug(pull_args)
    with_kedro = interop.fresh_copy(f"kedro-pulls-kedro-{suffix}")
    with_ours = interop.fresh_copy(f"kedro-pulls-ours-{suffix}")
    interop.kedro("micropkg", "pull", str(interop.kedro_tarball), *pull_args, cwd=with_kedro)
    interop.kedro("micropkg", "pull", str(our_tarball), *pull_args, cwd=with_ours)

    expected = snapshot(with_kedro)
    actual = snapshot(with_ours)
    # Documented difference: we keep the micro-package's data files, Kedro drops them.
    code_dir = _code_dir(_option(pull_args, "--destination"), _option(pull_args, "--alias") or PIPE)
    for rel, content in kedro_dropped_files(interop.root).items():
        key = f"{code_dir}/{rel}"
        assert actual.pop(key, None) == content, f"{key} should arrive unchanged from our sdist"
    assert_same_tree(expected, actual)

    # Sanity: the pull really happened, with rewritten imports and merged requirements.
    pulled = (with_kedro / code_dir / "pipeline.py").read_text(encoding="utf-8")
    target = code_dir.removeprefix("src/").replace("/", ".")
    assert f"from {target}.nodes import double, shift" in pulled
    assert "numpy>=1.24" in (with_kedro / "requirements.txt").read_text(encoding="utf-8")


def _content_lines(text: bytes) -> list[bytes]:
    """Lines without line endings, blank lines dropped."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _new_dirs(base: Path, rel_dirs: Iterable[str]) -> set[str]:
    """Folders (relative) on the way to ``rel_dirs`` that did not exist in ``base``."""
    new: set[str] = set()
    for rel in rel_dirs:
        parts = rel.split("/")
        for i in range(1, len(parts)):  # ancestors only; the micro-package folder has its own
            ancestor = "/".join(parts[:i])
            if not (base / ancestor).exists():
                new.add(ancestor)
    return new


REVERSE_VARIANTS = [
    *PULL_VARIANTS,
    # New intermediate folders (src/.../pipelines/nested, tests/pipelines/nested) and another env.
    pytest.param(("--destination", "pipelines/nested", "-e", "local"), id="dest-nested-env-local"),
]


@pytest.mark.parametrize("pull_args", REVERSE_VARIANTS)
def test_we_pull_kedros_tarball_like_kedro(
    interop: InteropProject, pull_args: tuple[str, ...]
) -> None:
    """Our ``pull`` of Kedro's tarball == Kedro's ``pull``, up to the documented differences."""
    suffix = _slug(pull_args)
    with_kedro = interop.fresh_copy(f"kedro-pulls-{suffix}")
    with_ours = interop.fresh_copy(f"ours-pulls-{suffix}")
    interop.kedro("micropkg", "pull", str(interop.kedro_tarball), *pull_args, cwd=with_kedro)
    our_cli("pull", interop.kedro_tarball, *pull_args, cwd=with_ours)

    expected = snapshot(with_kedro)
    actual = snapshot(with_ours)
    original_reqs = (interop.base / "requirements.txt").read_bytes()

    # 1. Requirements: Kedro appends to requirements.txt; we leave it alone and write
    #    requirements.in (created from requirements.txt) with Kedro's block appended. Only
    #    blank lines may differ: Kedro writes "\n\n# Additional..." after the file's own final
    #    newline (two blank lines) and no final newline; we keep one blank line and end with one.
    assert actual.pop("requirements.txt") == original_reqs, (
        "our pull must not edit requirements.txt"
    )
    assert "requirements.in" not in expected
    kedro_reqs = expected.pop("requirements.txt")
    ours_in = actual.pop("requirements.in", None)
    assert ours_in is not None, "our pull should write requirements.in"
    assert _content_lines(ours_in) == _content_lines(kedro_reqs), _text_diff(
        "requirements", kedro_reqs, ours_in, ("kedro:requirements.txt", "ours:requirements.in")
    )

    # 2. New intermediate folders get an empty __init__.py from us (Kedro leaves them without).
    name = _option(pull_args, "--alias") or PIPE
    destination = _option(pull_args, "--destination")
    dirs = [_code_dir(destination, name), _tests_dir(destination, name)]
    for folder in sorted(_new_dirs(interop.base, dirs)):
        init = f"{folder}/__init__.py"
        if init not in expected and init in actual:
            assert actual.pop(init).strip() == b"", f"{init} should be empty"

    assert_same_tree(expected, actual)
    assert (with_ours / "micropkg.lock").is_file()


def test_project_tests_still_import(interop: InteropProject) -> None:
    """The Kedro-made project is sane: its pipeline test passes under Kedro 0.19.15."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, "src")
        from {PKG}.pipelines.{PIPE}.pipeline import create_pipeline
        from {PKG}.pipelines.{PIPE}.nodes import double, total
        assert len(create_pipeline().nodes) == 3
        assert total(double([1.0, 2.0])) == 6.0
        """
    )
    run([interop.kedro_bin / "python", "-c", script], cwd=interop.root)
