"""Tests for micropkg_tasks.rewrite: exact output text, warnings, byte preservation."""

from __future__ import annotations

import ast
import bisect
import re
import sys
from pathlib import Path

import pytest

from micropkg_tasks.rewrite import (
    RewriteResult,
    _apply,
    _Rewriter,
    _worth_parsing,
    rewrite_source,
    submodule_names,
)

OLD = "demo_proj.pipelines.data_proc"
ALIAS = "dp_alias"
PULLED = "demo_proj.pipelines.nested.beta"

CORPUS = Path(__file__).parent / "data" / "rewrite"
CORPUS_FILES = sorted(p.relative_to(CORPUS / "project") for p in (CORPUS / "project").rglob("*"))
CORPUS_FILES = [p for p in CORPUS_FILES if (CORPUS / "project" / p).is_file()]
# The modules of the corpus micro-package as pull computes them (utils/constants.py is not
# in the corpus, but its tests patch it).
CORPUS_MODULES = submodule_names(
    ["__init__.py", "nodes.py", "pipeline.py", "utils/__init__.py", "utils/tools.py",
     "utils/constants.py", "sql/query.sql"]
)  # fmt: skip


def pack(source: str, **kwargs: object) -> str:
    """Rewrite ``OLD`` to ``ALIAS`` in UTF-8 text and return the text."""
    return rewrite_source(source.encode(), OLD, ALIAS, **kwargs).text.decode()  # type: ignore[arg-type]


def warnings_of(source: str, old: str = OLD, new: str = ALIAS, **kwargs: object) -> list[str]:
    result = rewrite_source(source.encode(), old, new, filename="f.py", **kwargs)  # type: ignore[arg-type]
    return list(result.warnings)


# -- golden corpus ---------------------------------------------------------------------------


def _depth(rel: Path) -> int:
    return len(rel.parts) - 1


@pytest.mark.parametrize("rel", CORPUS_FILES, ids=str)
def test_corpus_package(rel: Path) -> None:
    data = (CORPUS / "project" / rel).read_bytes()
    result = rewrite_source(
        data, OLD, ALIAS, filename=str(rel), project_package="demo_proj", package_depth=_depth(rel)
    )
    assert result.text == (CORPUS / "packaged" / rel).read_bytes()
    assert result.changed is (result.text != data)
    assert result.warnings == ()


@pytest.mark.parametrize("rel", CORPUS_FILES, ids=str)
def test_corpus_pull(rel: Path) -> None:
    data = (CORPUS / "packaged" / rel).read_bytes()
    result = rewrite_source(
        data, ALIAS, PULLED, filename=str(rel), package_depth=_depth(rel), submodules=CORPUS_MODULES
    )
    assert result.text == (CORPUS / "pulled" / rel).read_bytes()
    assert result.warnings == ()


@pytest.mark.parametrize("rel", CORPUS_FILES, ids=str)
# Not from "pulled": ``import <pulled> as data_proc`` goes back as ``from demo_proj.pipelines
# import data_proc``, the idiomatic equivalent, rather than the same bytes.
@pytest.mark.parametrize(
    ("stage", "old", "new"), [("project", OLD, ALIAS), ("packaged", ALIAS, PULLED)]
)
def test_corpus_round_trip(rel: Path, stage: str, old: str, new: str) -> None:
    original = (CORPUS / stage / rel).read_bytes()
    there = rewrite_source(original, old, new, submodules=CORPUS_MODULES).text
    assert rewrite_source(there, new, old, submodules=CORPUS_MODULES).text == original


def test_corpus_has_changes() -> None:
    changed = [
        rel
        for rel in CORPUS_FILES
        if (CORPUS / "project" / rel).read_bytes() != (CORPUS / "packaged" / rel).read_bytes()
    ]
    assert len(changed) == len(CORPUS_FILES) - 1  # only __init__.py has nothing to rewrite


# -- import statements -----------------------------------------------------------------------


def test_import_forms() -> None:
    source = (
        "import demo_proj.pipelines.data_proc\n"
        "import demo_proj.pipelines.data_proc.nodes as n\n"
        "import os, demo_proj.pipelines.data_proc.nodes, sys  # keep\n"
        "import demo_proj.pipelines.data_proc_extra\n"
        "import demo_proj.pipelines.data_proc   as   dp\n"
    )
    assert pack(source) == (
        "import dp_alias\n"
        "import dp_alias.nodes as n\n"
        "import os, dp_alias.nodes, sys  # keep\n"
        "import demo_proj.pipelines.data_proc_extra\n"
        "import dp_alias   as   dp\n"
    )


def test_import_with_odd_spacing_and_continuation() -> None:
    source = (
        "import demo_proj . pipelines .data_proc. nodes\n"
        "import demo_proj.\\\n  pipelines.data_proc\n"
    )
    assert pack(source) == "import dp_alias. nodes\nimport dp_alias\n"


def test_from_import_forms() -> None:
    source = (
        "from demo_proj.pipelines.data_proc import nodes\n"
        "from demo_proj.pipelines.data_proc.nodes import (x as y,  # comment\n"
        "    z)\n"
        "from demo_proj . pipelines . data_proc . nodes import helper\n"
        "from demo_proj.pipelines.data_proc\\\n"
        "    .nodes import helper\n"
        "from demo_proj.pipelines.data_proc_extra import helper\n"
    )
    assert pack(source) == (
        "from dp_alias import nodes\n"
        "from dp_alias.nodes import (x as y,  # comment\n"
        "    z)\n"
        "from dp_alias . nodes import helper\n"
        "from dp_alias\\\n"
        "    .nodes import helper\n"
        "from demo_proj.pipelines.data_proc_extra import helper\n"
    )


def test_local_imports_in_functions_and_classes() -> None:
    source = (
        "def f():\n"
        "    import demo_proj.pipelines.data_proc.nodes as n\n"
        "    from demo_proj.pipelines.data_proc.nodes import helper\n"
        "    return n, helper\n"
        "class C:\n"
        "    if True:\n"
        "        from demo_proj.pipelines.data_proc import pipeline\n"
    )
    assert pack(source) == (
        "def f():\n"
        "    import dp_alias.nodes as n\n"
        "    from dp_alias.nodes import helper\n"
        "    return n, helper\n"
        "class C:\n"
        "    if True:\n"
        "        from dp_alias import pipeline\n"
    )


def test_relative_imports_unchanged() -> None:
    source = "from . import nodes\nfrom .nodes import helper\nfrom ..data_proc import x\n"
    result = rewrite_source(source.encode(), "data_proc", "beta")
    assert result == RewriteResult(source.encode(), False, ())


def test_pull_into_nested_destination() -> None:
    source = (
        "import dp_alias.nodes\n"
        "from dp_alias.pipeline import create_pipeline\n"
        "dp_alias.nodes.helper()\n"
        'PATH = "dp_alias.nodes.log"\n'
    )
    result = rewrite_source(source.encode(), ALIAS, PULLED, submodules={"nodes", "pipeline"})
    assert result.text.decode() == (
        "import demo_proj.pipelines.nested.beta.nodes\n"
        "from demo_proj.pipelines.nested.beta.pipeline import create_pipeline\n"
        "demo_proj.pipelines.nested.beta.nodes.helper()\n"
        'PATH = "demo_proj.pipelines.nested.beta.nodes.log"\n'
    )
    assert result.changed


def test_micro_package_named_like_the_project_package() -> None:
    source = (
        "import demo_proj.nodes\n"
        "from demo_proj.pipeline import create_pipeline\n"
        "demo_proj.nodes.f(demo_proj)\n"
        'mock.patch("demo_proj.nodes.log")\n'
    )
    modules = {"nodes", "pipeline"}
    pulled = rewrite_source(
        source.encode(), "demo_proj", "demo_proj.pipelines.demo_proj", submodules=modules
    ).text
    assert pulled.decode() == (
        "import demo_proj.pipelines.demo_proj.nodes\n"
        "from demo_proj.pipelines.demo_proj.pipeline import create_pipeline\n"
        "demo_proj.pipelines.demo_proj.nodes.f(demo_proj.pipelines.demo_proj)\n"
        'mock.patch("demo_proj.pipelines.demo_proj.nodes.log")\n'
    )
    assert rewrite_source(
        pulled, "demo_proj.pipelines.demo_proj", "demo_proj", submodules=modules
    ).text == (source.encode())


# -- ``from <parent> import <last>`` ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "old", "new", "expected"),
    [
        (
            "from demo_proj.pipelines import data_proc\n",
            OLD,
            ALIAS,
            "import dp_alias as data_proc\n",
        ),
        (
            "from demo_proj.pipelines import data_proc as dp\n",
            OLD,
            ALIAS,
            "import dp_alias as dp\n",
        ),
        (
            "from demo_proj.pipelines import (\n    data_proc as dp_alias,\n)  # keep\n",
            OLD,
            ALIAS,
            "import dp_alias  # keep\n",
        ),
        (
            "from demo_proj.pipelines import data_proc\n",
            OLD,
            PULLED,
            "from demo_proj.pipelines.nested import beta as data_proc\n",
        ),
        (
            "from demo_proj.pipelines.nested import beta\n",
            PULLED,
            "demo_proj.dp",
            "from demo_proj import dp as beta\n",
        ),
        (
            "from demo_proj.pipelines import data_proc as beta\n",
            OLD,
            PULLED,
            "from demo_proj.pipelines.nested import beta\n",
        ),
        # The inverse direction: ``import x as <last of new>`` becomes the idiomatic form.
        (
            "import dp_alias as data_proc\n",
            ALIAS,
            OLD,
            "from demo_proj.pipelines import data_proc\n",
        ),
        (
            "import dp_alias as dp\n",
            ALIAS,
            OLD,
            "import demo_proj.pipelines.data_proc as dp\n",
        ),
    ],
)
def test_from_parent_import_last(source: str, old: str, new: str, expected: str) -> None:
    assert rewrite_source(source.encode(), old, new).text.decode() == expected


def test_from_parent_import_last_binds_the_same_name() -> None:
    scope_before: dict[str, object] = {}
    scope_after: dict[str, object] = {}
    exec(compile("from os import path", "<s>", "exec"), scope_before)
    rewritten = rewrite_source(b"from os import path\n", "os.path", "posixpath").text
    assert rewritten == b"import posixpath as path\n"
    exec(compile(rewritten, "<s>", "exec"), scope_after)
    assert scope_after["path"] is scope_before["path"]


def test_from_parent_import_last_with_other_names_warns() -> None:
    source = "from demo_proj.pipelines import data_proc, other\n"
    result = rewrite_source(
        source.encode(), OLD, ALIAS, filename="f.py", project_package="demo_proj"
    )
    assert result.text == source.encode()
    assert result.warnings == (
        "f.py:1: imports 'demo_proj.pipelines.data_proc' together with other names; "
        "not rewritten (import it on a line of its own)",
        "f.py:1: imports 'demo_proj.pipelines.other' from outside the micro-package; "
        "the package will not be portable",
    )


def test_from_grandparent_import_left_alone() -> None:
    source = "from demo_proj import pipelines\n"
    assert pack(source) == source


# -- attribute chains ------------------------------------------------------------------------


def test_chain_rewritten_when_bound_by_bare_import() -> None:
    source = (
        "import demo_proj.pipelines.data_proc.nodes\n"
        "x = demo_proj.pipelines.data_proc.nodes.helper()\n"
        "y = demo_proj.pipelines.data_proc\n"
        "z = demo_proj.pipelines.data_proc_extra.f()\n"
        "w = (demo_proj.pipelines\n"
        "     .data_proc.nodes)\n"
        "demo_proj.pipelines.data_proc = None\n"
    )
    assert pack(source) == (
        "import dp_alias.nodes\n"
        "x = dp_alias.nodes.helper()\n"
        "y = dp_alias\n"
        "z = demo_proj.pipelines.data_proc_extra.f()\n"
        "w = (dp_alias.nodes)\n"
        "demo_proj.pipelines.data_proc = None\n"
    )


def test_chain_not_rewritten_without_bare_import() -> None:
    source = (
        "import demo_proj.pipelines.data_proc as dp\n"
        "from demo_proj.pipelines.data_proc import nodes\n"
        "x = demo_proj.pipelines.data_proc.nodes.helper()\n"
    )
    assert pack(source) == (
        "import dp_alias as dp\nfrom dp_alias import nodes\n"
        "x = demo_proj.pipelines.data_proc.nodes.helper()\n"
    )


def test_chain_in_function_shadowing_the_root_is_left_alone() -> None:
    source = (
        "import demo_proj.pipelines.data_proc.nodes\n"
        "def f(demo_proj):\n"
        "    return demo_proj.pipelines.data_proc.nodes\n"
        "def g():\n"
        "    demo_proj = load()\n"
        "    def inner():\n"
        "        return demo_proj.pipelines.data_proc\n"
        "    return demo_proj.pipelines.data_proc\n"
        "def h():\n"
        "    import demo_proj.pipelines.data_proc.nodes\n"
        "    return demo_proj.pipelines.data_proc.nodes\n"
        "k = lambda demo_proj: demo_proj.pipelines.data_proc\n"
        "@mock.patch.object(demo_proj.pipelines.data_proc.nodes, 'log')\n"
        "def t(log, demo_proj=demo_proj.pipelines.data_proc) -> demo_proj.pipelines.data_proc.T:\n"
        "    return demo_proj.pipelines.data_proc\n"
        "def u():\n"
        "    def demo_proj(): ...\n"
        "    return demo_proj.pipelines.data_proc\n"
        "def v():\n"
        "    def w():\n"
        "        return demo_proj.pipelines.data_proc\n"
        "    return w\n"
    )
    assert pack(source) == (
        "import dp_alias.nodes\n"
        "def f(demo_proj):\n"
        "    return demo_proj.pipelines.data_proc.nodes\n"
        "def g():\n"
        "    demo_proj = load()\n"
        "    def inner():\n"
        "        return demo_proj.pipelines.data_proc\n"
        "    return demo_proj.pipelines.data_proc\n"
        "def h():\n"
        "    import dp_alias.nodes\n"
        "    return dp_alias.nodes\n"
        "k = lambda demo_proj: demo_proj.pipelines.data_proc\n"
        "@mock.patch.object(dp_alias.nodes, 'log')\n"
        "def t(log, demo_proj=dp_alias) -> dp_alias.T:\n"
        "    return demo_proj.pipelines.data_proc\n"
        "def u():\n"
        "    def demo_proj(): ...\n"
        "    return demo_proj.pipelines.data_proc\n"
        "def v():\n"
        "    def w():\n"
        "        return dp_alias\n"
        "    return w\n"
    )


def test_single_name_old_chain_and_bare_name() -> None:
    source = (
        "import data_proc.nodes\n"
        "data_proc.nodes.helper(data_proc)\n"
        "obj.data_proc.nodes\n"
        "def f(data_proc):\n"
        "    return data_proc.nodes\n"
    )
    result = rewrite_source(source.encode(), "data_proc", PULLED)
    assert result.text.decode() == (
        "import demo_proj.pipelines.nested.beta.nodes\n"
        "demo_proj.pipelines.nested.beta.nodes.helper(demo_proj.pipelines.nested.beta)\n"
        "obj.data_proc.nodes\n"
        "def f(data_proc):\n"
        "    return data_proc.nodes\n"
    )


def test_chain_inside_fstring_expression() -> None:
    source = (
        'import demo_proj.pipelines.data_proc\nx = f"{demo_proj.pipelines.data_proc.nodes!r}"\n'
    )
    assert pack(source) == 'import dp_alias\nx = f"{dp_alias.nodes!r}"\n'


def test_decorator_lines_are_rewritten_when_nothing_else_names_the_package() -> None:
    source = (
        "import dp_alias.nodes\n"
        "@dp_alias.nodes.command()\n"
        "@mock.patch(\n"
        '    "dp_alias.nodes.log",\n'
        ")\n"
        "class C:\n"
        "    @dp_alias.nodes.deco\n"
        "    async def m(self): ...\n"
    )
    result = rewrite_source(source.encode(), ALIAS, PULLED, submodules={"nodes"})
    assert result.text.decode() == source.replace("dp_alias", PULLED)


def test_string_annotations_are_code() -> None:
    source = (
        "from __future__ import annotations\n"
        "import typing\n"
        "import demo_proj.pipelines.data_proc.nodes\n"
        "def f(\n"
        '    a: "demo_proj.pipelines.data_proc.nodes.T",\n'
        '    b: typing.Optional["demo_proj.pipelines.data_proc.nodes.T"] = None,\n'
        '    c: "dict[str, demo_proj.pipelines.data_proc.nodes.T]" = None,\n'
        "    d: \"list['demo_proj.pipelines.data_proc.nodes.T']\" = None,\n"
        '    e: "demo_proj.pipelines.data_proc.nodes.T | demo_proj.pipelines.data_proc_x.U" = 1,\n'
        ') -> "Café[demo_proj.pipelines.data_proc.nodes.T]": ...\n'
        'X: "demo_proj.pipelines.data_proc.nodes.T (not an expression"\n'
    )
    assert pack(source) == (
        "from __future__ import annotations\n"
        "import typing\n"
        "import dp_alias.nodes\n"
        "def f(\n"
        '    a: "dp_alias.nodes.T",\n'
        '    b: typing.Optional["dp_alias.nodes.T"] = None,\n'
        '    c: "dict[str, dp_alias.nodes.T]" = None,\n'
        "    d: \"list['demo_proj.pipelines.data_proc.nodes.T']\" = None,\n"
        '    e: "dp_alias.nodes.T | demo_proj.pipelines.data_proc_x.U" = 1,\n'
        ') -> "Café[dp_alias.nodes.T]": ...\n'
        'X: "dp_alias.nodes.T (not an expression"\n'
    )


def test_string_annotation_references_follow_the_code_rules() -> None:
    # Without a bare import binding the root name, a dotted reference is not rewritten in
    # code, nor in a string annotation, which is code too (it could not be resolved anyway).
    source = (
        "from demo_proj.pipelines.data_proc import nodes\n"
        'def f(a: "list[demo_proj.pipelines.data_proc.nodes.T]") -> "Optional['
        'demo_proj.pipelines.data_proc.nodes.T]": ...\n'
    )
    assert pack(source) == source.replace("from demo_proj.pipelines.data_proc", "from dp_alias")


def test_chain_with_comment_inside_is_reported_not_rewritten() -> None:
    source = (
        "import demo_proj.pipelines.data_proc\nx = (demo_proj  # root\n     .pipelines.data_proc)\n"
    )
    result = rewrite_source(source.encode(), OLD, ALIAS, filename="f.py")
    assert result.text.decode() == (
        "import dp_alias\nx = (demo_proj  # root\n     .pipelines.data_proc)\n"
    )
    assert result.warnings == (
        "f.py:2: reference to 'demo_proj.pipelines.data_proc' not rewritten (unusual spelling)",
    )


# -- string literals -------------------------------------------------------------------------


def test_plain_strings_rewritten() -> None:
    source = (
        '@mock.patch("demo_proj.pipelines.data_proc.nodes.log")\n'
        "def test(log):\n"
        "    mocker.patch('demo_proj.pipelines.data_proc')\n"
        '    importlib.import_module("demo_proj.pipelines.data_proc.pipeline")\n'
    )
    assert pack(source) == (
        '@mock.patch("dp_alias.nodes.log")\n'
        "def test(log):\n"
        "    mocker.patch('dp_alias')\n"
        '    importlib.import_module("dp_alias.pipeline")\n'
    )


def test_string_literal_forms() -> None:
    """Any str literal whose text starts with the module path as written: prefixes, triple
    quotes, the first piece of an implicit concatenation, an f-string's leading text."""
    source = (
        "x = (\n"
        '    r"demo_proj.pipelines.data_proc.nodes",\n'
        '    u"demo_proj.pipelines.data_proc",\n'
        '    Rb"demo_proj.pipelines.data_proc",\n'
        '    """demo_proj.pipelines.data_proc""",\n'
        "    '''demo_proj.pipelines.data_proc.nodes''',\n"
        '    "demo_proj.pipelines.data_proc" ".nodes",\n'
        '    "demo_proj.pipelines.data_proc\\x2enodes",\n'
        '    f"demo_proj.pipelines.data_proc.{name}",\n'
        '    rf"demo_proj.pipelines.data_proc.nodes.{name}",\n'
        '    "demo_proj.pipelines.data_proc." f"{name}",\n'
        '    f"demo_proj.pipelines.data_proc",\n'
        # code inside an f-string, even inside its format spec
        "    f\"x{patch('demo_proj.pipelines.data_proc.nodes')!r:>"
        "{f'demo_proj.pipelines.data_proc'}}\",\n"
        ")\n"
    )
    assert pack(source) == (
        "x = (\n"
        '    r"dp_alias.nodes",\n'
        '    u"dp_alias",\n'
        '    Rb"demo_proj.pipelines.data_proc",\n'
        '    """dp_alias""",\n'
        "    '''dp_alias.nodes''',\n"
        '    "dp_alias" ".nodes",\n'
        '    "dp_alias\\x2enodes",\n'
        '    f"dp_alias.{name}",\n'
        '    rf"dp_alias.nodes.{name}",\n'
        '    "dp_alias." f"{name}",\n'
        '    f"dp_alias",\n'
        "    f\"x{patch('dp_alias.nodes')!r:>{f'dp_alias'}}\",\n"
        ")\n"
    )


def test_other_strings_left_alone() -> None:
    source = (
        '"""demo_proj.pipelines.data_proc"""\n'
        "def f():\n"
        '    "demo_proj.pipelines.data_proc"\n'
        "    return (\n"
        '        "demo_proj.pipelines.data_proc_extra",\n'
        '        "x.demo_proj.pipelines.data_proc",\n'
        '        b"demo_proj.pipelines.data_proc",\n'
        '        "demo_proj.pipelines.\\x64ata_proc",\n'
        '        "demo_proj.pipelines." "data_proc",\n'
        '        f"demo_proj.pipelines.data_proc{suffix}",\n'
        '        f"{prefix}demo_proj.pipelines.data_proc",\n'
        '        f"x{demo_proj.pipelines.data_proc!r:demo_proj.pipelines.data_proc}",\n'
        "    )\n"
        "class C:\n"
        '    "demo_proj.pipelines.data_proc"\n'
        "async def g():\n"
        '    "demo_proj.pipelines.data_proc"\n'
    )
    assert pack(source) == source


MODULES = submodule_names(
    [
        "__init__.py", "nodes.py", "pipeline.py", "__main__.py",
        "ext.cpython-311-x86_64-linux-gnu.so", "utils/__init__.py", "utils/tools.py",
        "ns/deep/mod.py", "ns/deep/data.csv",
        "templates/page.html", "sql/query.sql", "my-scripts/run.py", "README.md", "nodes.pyi",
    ]
)  # fmt: skip


def test_submodule_names() -> None:
    assert sorted(MODULES) == [
        "__main__", "ext", "nodes", "ns.deep.mod", "pipeline", "utils", "utils.tools",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("string", "rewritten"),
    [
        ('"report.html"', False),  # the case: a file name
        ('"report.raw"', False),  # a Kedro dataset name
        ('"report.nodes"', True),
        ('"report.nodes.log"', True),
        ('"report.nodesx.log"', False),
        ('"report.utils.tools.f"', True),
        ('"report.utils.helper"', True),  # an attribute of utils/__init__.py
        ('"report.ns"', True),  # a namespace package
        ('"report.ns.deep.mod.f"', True),
        ('"report.ns.helper"', False),  # a namespace package has no attributes
        ('"report.templates.page"', False),  # data files only
        ('"report.sql"', False),
        ('"report.__main__"', True),
        ('"report.ext.f"', True),  # an extension module
        ('f"report.nodes.{name}"', True),
        ('f"report.{ext}"', False),
        ('f"report.nod{name}"', False),
        ('f"report.ns.{name}"', True),
        ('"report"', False),
        ('f"report"', False),
        ('pipeline(pipe, namespace="report")', False),  # a Kedro namespace
        ('importlib.import_module("report")', True),
        ('importlib.import_module(".nodes", package="report")', True),
        ("__import__('report')", True),
        ('importlib.resources.files("report")', True),
        ('logging.getLogger("report")', True),
        ('sys.modules["report"]', True),
        ('module.__name__ == "report"', True),
        ('__package__ in ("report", "other")', True),
        ('"report" != obj.__module__', True),
        ('obj.name == "report"', False),
        ('importlib.metadata.version("report")', False),  # a distribution name
        ('logging.getLogger(name="report.html")', False),
    ],
)
def test_one_word_strings_name_a_module_or_stay(string: str, rewritten: bool) -> None:
    """With a one-word package name, a string is rewritten only when it names one of the
    package's modules, or is the name itself where a module name is expected."""
    source = f"import report.nodes\nX = {string}\n"
    result = rewrite_source(source.encode(), "report", PULLED, submodules=MODULES)
    expected = string.replace("report", PULLED, 1) if rewritten else string
    assert result.text.decode() == f"import {PULLED}.nodes\nX = {expected}\n"


# -- bytes outside the edits -----------------------------------------------------------------


def test_crlf_tabs_trailing_whitespace_and_no_final_newline() -> None:
    data = (
        b"import os  \r\n"
        b"if True:\r\n"
        b"\tfrom demo_proj.pipelines.data_proc.nodes import x\t\r\n"
        b"\tdemo = 'demo_proj.pipelines.data_proc'   "
    )
    result = rewrite_source(data, OLD, ALIAS)
    assert result.text == (
        b"import os  \r\nif True:\r\n\tfrom dp_alias.nodes import x\t\r\n\tdemo = 'dp_alias'   "
    )
    assert result.changed


def test_lone_cr_line_endings() -> None:
    data = b"x = 1\rimport demo_proj.pipelines.data_proc\rdemo_proj.pipelines.data_proc.f()\r"
    assert rewrite_source(data, OLD, ALIAS).text == b"x = 1\rimport dp_alias\rdp_alias.f()\r"


def test_bom_and_encoding_cookie_kept() -> None:
    data = b"\xef\xbb\xbf# -*- coding: utf-8 -*-\nimport demo_proj.pipelines.data_proc\n"
    result = rewrite_source(data, OLD, ALIAS)
    assert result.text == b"\xef\xbb\xbf# -*- coding: utf-8 -*-\nimport dp_alias\n"


def test_latin1_file() -> None:
    data = (
        b"# -*- coding: latin-1 -*-\n"
        b"s = '\xe9t\xe9'; import demo_proj.pipelines.data_proc;"
        b" demo_proj.pipelines.data_proc.f()\n"
    )
    result = rewrite_source(data, OLD, ALIAS)
    assert result.text == (
        b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'; import dp_alias; dp_alias.f()\n"
    )


def test_new_name_not_encodable_in_file_encoding() -> None:
    data = b"# -*- coding: latin-1 -*-\nimport data_proc\n"
    result = rewrite_source(data, "data_proc", "données", filename="f.py")
    assert result.text == b"# -*- coding: latin-1 -*-\nimport donn\xe9es\n"
    result = rewrite_source(data, "data_proc", "данные", filename="f.py")
    assert result == RewriteResult(
        data,
        False,
        ("f.py:1: 'данные' cannot be written in the file's encoding iso-8859-1; left unchanged",),
    )


def test_non_ascii_columns_are_utf8_byte_offsets() -> None:
    source = (
        "import demo_proj.pipelines.data_proc\n"
        "é = 'ü'; x = '日本語'; y = demo_proj.pipelines.data_proc.nodes;"
        " z = 'demo_proj.pipelines.data_proc'\n"
        "ç = {'clé': 1}; from demo_proj.pipelines.data_proc.nodes import (helper)  # « ok »\n"
    )
    assert pack(source) == (
        "import dp_alias\n"
        "é = 'ü'; x = '日本語'; y = dp_alias.nodes; z = 'dp_alias'\n"
        "ç = {'clé': 1}; from dp_alias.nodes import (helper)  # « ok »\n"
    )


def test_non_ascii_names() -> None:
    source = "import données.nodes\nx = données.nodes.f('données.nodes')\n"
    result = rewrite_source(source.encode(), "données", "beta", submodules={"nodes"})
    assert result.text.decode() == "import beta.nodes\nx = beta.nodes.f('beta.nodes')\n"


def test_unchanged_file_returns_the_same_bytes() -> None:
    data = b"import os\r\nfrom .nodes import helper  \n# demo_proj.pipelines.data_proc\n"
    result = rewrite_source(data, OLD, ALIAS, project_package="demo_proj", package_depth=0)
    assert result == RewriteResult(data, False, ())
    assert result.text is data


# -- warnings --------------------------------------------------------------------------------


def test_relative_import_escaping_the_package() -> None:
    source = "from . import a\nfrom .. import b\nfrom ..x.y import c\nfrom ... import d\n"
    assert warnings_of(source, package_depth=0) == [
        "f.py:2: relative import '..' climbs out of the micro-package; "
        "the package will not be portable",
        "f.py:3: relative import '..x.y' climbs out of the micro-package; "
        "the package will not be portable",
        "f.py:4: relative import '...' climbs out of the micro-package; "
        "the package will not be portable",
    ]
    assert warnings_of(source, package_depth=1) == [
        "f.py:4: relative import '...' climbs out of the micro-package; "
        "the package will not be portable",
    ]
    assert warnings_of(source) == []


def test_imports_of_other_project_modules() -> None:
    source = (
        "import demo_proj\n"
        "import os, demo_proj.settings as s\n"
        "from demo_proj.settings import X\n"
        "from demo_proj import settings, pipelines\n"
        "from demo_proj.pipelines import other_pipe\n"
        "from demo_proj.pipelines import *\n"
        "from demo_proj.pipelines.data_proc.nodes import helper\n"
        "from demo_proj.pipelines import data_proc\n"
        "import demo_proj.pipelines.data_proc\n"
        "import demo_proj_other\n"
        "def f():\n"
        "    from demo_proj.utils import g\n"
    )
    end = " from outside the micro-package; the package will not be portable"
    assert warnings_of(source, project_package="demo_proj") == [
        f"f.py:1: imports 'demo_proj'{end}",
        f"f.py:2: imports 'demo_proj.settings'{end}",
        f"f.py:3: imports 'demo_proj.settings'{end}",
        f"f.py:4: imports 'demo_proj.pipelines'{end}",
        f"f.py:4: imports 'demo_proj.settings'{end}",
        f"f.py:5: imports 'demo_proj.pipelines.other_pipe'{end}",
        f"f.py:6: imports 'demo_proj.pipelines'{end}",
        f"f.py:12: imports 'demo_proj.utils'{end}",
    ]
    assert warnings_of(source) == []


def test_project_warnings_when_old_is_outside_the_project_package() -> None:
    source = "from demo_proj.settings import X\nimport dp_alias.nodes\n"
    assert warnings_of(source, ALIAS, PULLED, project_package="demo_proj") == [
        "f.py:1: imports 'demo_proj.settings' from outside the micro-package; "
        "the package will not be portable",
    ]


@pytest.mark.parametrize(
    ("data", "line", "why"),
    [
        (b"import demo_proj.pipelines.data_proc\ndef f(:\n    demo_proj\n", 2, "invalid syntax"),
        (b"demo_proj: [1, 2\n", 1, "'[' was never closed"),
        (b"# demo_proj\n\nx = '\xff'\n", 3, "invalid start byte"),
        (b"# demo_proj\nx = '\xff'\n", 1, "invalid or missing encoding declaration"),
        (b"# -*- coding: klingon -*-\nimport demo_proj\n", 1, "unknown encoding: klingon"),
    ],
)
def test_not_python_is_returned_unchanged_with_one_warning(
    data: bytes, line: int, why: str
) -> None:
    result = rewrite_source(data, OLD, ALIAS, filename="conf/data.py")
    assert result.text is data
    assert not result.changed
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(f"conf/data.py:{line}: not valid Python (")
    assert why in result.warnings[0]
    assert result.warnings[0].endswith("); left unchanged")


def test_null_bytes_are_not_python() -> None:
    data = b"import demo_proj\x00\n"
    result = rewrite_source(data, OLD, ALIAS, filename="f.py")
    assert result.text is data
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("f.py:")


def _parse_end(text: str, old: str = "p0001", new: str = "proj.pipelines.p0001") -> int:
    return _Rewriter(text, old, new, "f.py", None, None).parse_end()


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        # Past the last import: the rest names the package only in reST prose.
        ('import p0001.nodes\n\ndef f():\n    """The ``p0001`` rows."""\n', 20),
        # The statement holding the last mention ends at the next name at column 0.
        ("from p0001.nodes import (\n    f,\n)\nx = 1\n", 35),
        ("x = p0001.f(\n1)\ny = 2\n", 16),
        # Not inside a triple-quoted string; not before a clause of the same statement.
        ('import p0001\n"""\nx = 1\n"""\ny = 1\n', 27),
        ("if 1:\n    import p0001\nelse:\n    pass\nz = 1\n", 38),
        ("try:\n    import p0001\nexcept ImportError:\n    pass\n", None),
        # Nothing after the last mention that may be code, or it is on the last line.
        ("def f():\n    import p0001\n    return 1\n", None),
        ("import p0001", None),
        # A non-ASCII character after the cut may spell the name (NFKC): no cut.
        ("import p0001\nx = 1\n\uff50\uff10\uff10\uff10\uff11 = 2\n", None),
        ("# \u00e9\nimport p0001\nx = 1\n", 17),
        # A mention after the cut that may be code moves it (a quote before, a binding).
        ("import p0001\nx = 1\nm = patch('p0001.nodes.g')\n", None),
        ("import p0001\nx = 1\nfor p0001 in y: pass\n", None),
        ("import p0001\nx = 1\n# see `p0001`\ny = 2\n", 13),
    ],
)
def test_the_parse_stops_after_the_last_line_that_may_be_code(text: str, cut: int | None) -> None:
    end = _parse_end(text)
    assert end == (len(text) if cut is None else cut)
    # What is cut off starts a statement (the prefix is valid Python on its own).
    ast.parse(text[:end])


def test_a_binding_spelled_in_other_characters_is_seen() -> None:
    """``ｐ0001`` is ``p0001`` to the parser (NFKC): rebinding it at module level leaves the
    reference alone, as the ASCII spelling does, wherever it is (its statement is walked, and
    the parse does not stop before it)."""
    ascii_text = "import p0001\np0001.f()\nx = 1\np0001 = 2\n"
    wide = "\uff50\uff10\uff10\uff10\uff11"
    expected = rewrite_source(ascii_text.encode(), "p0001", "proj.pipelines.p0001").text.decode()
    assert "\np0001.f()\n" in expected
    result = rewrite_source(
        ascii_text.replace("p0001 = 2", f"{wide} = 2").encode(), "p0001", "proj.pipelines.p0001"
    )
    assert result.text.decode() == expected.replace("p0001 = 2", f"{wide} = 2")


def test_relative_imports_keep_the_parse_going() -> None:
    text = "import p0001\nx = 1\nfrom ... import y\n"
    assert _Rewriter(text, "p0001", "n", "f.py", None, 0).parse_end() == len(text)
    assert _parse_end(text) == 13
    assert warnings_of(text, "p0001", "n", package_depth=0) == [
        "f.py:3: relative import '...' climbs out of the micro-package; "
        "the package will not be portable"
    ]


def test_a_syntax_error_past_the_last_reference_is_not_reported() -> None:
    """Nothing after the last line that may be code can hold anything to rewrite or report:
    the file is rewritten, and its tail not parsed."""
    data = b"import p0001.nodes\n\ndef f(:\n    '''The ``p0001`` rows.'''\n"
    result = rewrite_source(data, "p0001", "proj.pipelines.p0001", filename="f.py")
    expected = data.replace(b"import p0001", b"import proj.pipelines.p0001", 1)
    assert result == RewriteResult(expected, True, ())
    # Before it (or in the statement holding it), the file is reported and left unchanged.
    data = b"import p0001.nodes\n\ndef f(:\n    return p0001\n"
    result = rewrite_source(data, "p0001", "proj.pipelines.p0001", filename="f.py")
    assert result.text is data
    assert result.warnings[0].startswith("f.py:3: not valid Python (")


def test_a_cut_that_splits_a_statement_parses_the_whole_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wrong guess (a line at column 0 inside a string holding an escaped quote) only
    costs a second parse: the prefix is not valid Python on its own."""
    import micropkg_tasks.rewrite as rewrite_mod

    text = 'import p0001\nx = """\\""" p0001.a\ny = 1\n"""\n'
    parses: list[int] = []
    real = ast.parse

    def counting(source: str, *args: object, **kwargs: object) -> ast.AST:
        parses.append(len(source))
        return real(source, *args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(rewrite_mod.ast, "parse", counting)
    result = rewrite_source(text.encode(), "p0001", "q", filename="f.py")
    assert result.text == text.replace("import p0001", "import q").encode()
    assert parses == [_parse_end(text), len(text)]


def test_precheck_skips_files_that_cannot_match() -> None:
    # Not Python at all, but it mentions neither the old root, the project package nor a
    # relative import, so it is not even parsed.
    data = b"def (: nothing to see\n"
    result = rewrite_source(data, OLD, ALIAS, project_package="demo_proj", package_depth=0)
    assert result == RewriteResult(data, False, ())
    # A relative import only matters when package_depth is given.
    relative = b"from .. import x\n"
    assert rewrite_source(relative, OLD, ALIAS).warnings == ()
    assert rewrite_source(relative, OLD, ALIAS, package_depth=0).warnings != ()


def test_apply_drops_overlapping_edits() -> None:
    edits = [(3, 5, "X"), (0, 2, "Y"), (1, 4, "Z"), (5, 5, "+")]
    assert _apply("abcdef", edits) == "YcX+f"


# -- scoping: names that rebind the package's root name -------------------------------------

# Each case imports ``report.nodes`` and rebinds ``report`` somewhere. ``@report`` marks the
# references to the package (rewritten), plain ``report`` the others (left alone). The
# original runs against a stub package ``report``, the rewritten code against a stub
# ``demo_proj.pipelines.nested.beta``: ``check()`` must give the same result.
SHADOW_PRELUDE = """\
import @report.nodes


class Shadow:
    nodes = None

    def title(self):
        return "shadow"


shadow = Shadow()
xs = [shadow]
"""
SHADOW_CASES: dict[str, tuple[str, object]] = {
    "comprehension": (
        "def check():\n    return [report.title() for report in xs], @report.nodes.title()\n",
        (["shadow"], "module"),
    ),
    "comprehension-first-iterable-is-outside": (
        "def check():\n    return [report.title() for report in @report.nodes.items()]\n",
        ["shadow"],
    ),
    "comprehensions-nested-set-dict-generator": (
        "def check():\n"
        "    return (\n"
        "        [[report.title() for _ in xs] for report in xs],\n"
        "        {report.title() for report in xs},\n"
        "        {report.title(): 1 for report in @report.nodes.items()},\n"
        "        list(report.title() for report in xs),\n"
        "        [@report.nodes.title() for x in xs if @report.nodes],\n"
        "    )\n",
        ([["shadow"]], {"shadow"}, {"shadow": 1}, ["shadow"], ["module"]),
    ),
    "comprehension-at-module-and-class-level": (
        "TITLES = [report.title() for report in xs]\n"
        "class C:\n"
        "    titles = [report.title() for report in xs]\n"
        "    module = [@report.nodes.title() for x in xs]\n"
        "def check():\n"
        "    return TITLES, C.titles, C.module\n",
        (["shadow"], ["shadow"], ["module"]),
    ),
    "for-loop-in-function": (
        "def check():\n"
        "    out = []\n"
        "    for report in xs:\n"
        "        out.append(report.title())\n"
        "    return out, other()\n"
        "def other():\n"
        "    return @report.nodes.title()\n",
        (["shadow"], "module"),
    ),
    "class-body": (
        "class C:\n"
        "    report = shadow\n"
        "    title = report.title()\n"
        "    def method(self):\n"
        "        return @report.nodes.title()\n"
        "def check():\n"
        "    return C.title, C().method()\n",
        ("shadow", "module"),
    ),
    "global-read-only": (
        "def check():\n    global report\n    return @report.nodes.title()\n",
        "module",
    ),
    "nonlocal": (
        "def check():\n"
        "    report = None\n"
        "    def inner():\n"
        "        nonlocal report\n"
        "        report = shadow\n"
        "        return report.title()\n"
        "    def reads():\n"
        "        return report.title()\n"
        "    return inner(), reads(), other()\n"
        "def other():\n"
        "    return @report.nodes.title()\n",
        ("shadow", "shadow", "module"),
    ),
    "with-except-walrus": (
        "import contextlib\n"
        "def check():\n"
        "    with contextlib.nullcontext(shadow) as report:\n"
        "        first = report.title()\n"
        "    try:\n"
        "        raise KeyError\n"
        "    except KeyError as report:\n"
        "        second = type(report).__name__\n"
        "    if (report := shadow):\n"
        "        third = report.title()\n"
        "    return first, second, third, other()\n"
        "def other():\n"
        "    return @report.nodes.title()\n",
        ("shadow", "KeyError", "shadow", "module"),
    ),
    "walrus-in-comprehension-binds-the-function": (
        "def check():\n"
        "    [(report := x) for x in xs]\n"
        "    return report.title(), other()\n"
        "def other():\n"
        "    return [@report.nodes.title() for x in xs]\n",
        ("shadow", ["module"]),
    ),
    "match-captures": (
        "def check():\n"
        "    out = []\n"
        "    match shadow:\n"
        "        case Shadow(nodes=None) as report:\n"
        "            out.append(report.title())\n"
        "    match [shadow]:\n"
        "        case [*report]:\n"
        "            out.append(report[0].title())\n"
        "    match {'a': shadow}:\n"
        "        case {**report}:\n"
        "            out.append(report['a'].title())\n"
        "    return out, other()\n"
        "def other():\n"
        "    match 'module':\n"
        "        case @report.nodes.NAME:\n"
        "            return @report.nodes.title()\n",
        (["shadow", "shadow", "shadow"], "module"),
    ),
    "parameters-and-lambdas": (
        "def a(report):\n"
        "    return report.title()\n"
        "def b(*report, **kw):\n"
        "    return report[0].title()\n"
        "def c(x, /, *, report=shadow):\n"
        "    return report.title()\n"
        "def d(x=@report.nodes.title(), report=shadow):\n"
        "    return x, report.title()\n"
        "e = lambda report: report.title()\n"
        "f = lambda report=@report.nodes: report.title()\n"
        "def check():\n"
        "    return a(shadow), b(shadow), c(1), d(), e(shadow), f()\n",
        ("shadow", "shadow", "shadow", ("module", "shadow"), "shadow", "module"),
    ),
    "nested-functions": (
        "def check():\n"
        "    report = shadow\n"
        "    def inner():\n"
        "        def innermost():\n"
        "            return report.title()\n"
        "        return innermost()\n"
        "    return inner(), other()()\n"
        "def other():\n"
        "    def inner():\n"
        "        return @report.nodes.title()\n"
        "    return inner\n",
        ("shadow", "module"),
    ),
    "local-definitions-and-imports": (
        "def check():\n"
        "    def report():\n"
        "        return 'def'\n"
        "    return report(), imported(), klass(), other()\n"
        "def imported():\n"
        "    from types import SimpleNamespace as report\n"
        "    return report(title=1).title\n"
        "def klass():\n"
        "    class report:\n"
        "        title = 'class'\n"
        "    return report.title\n"
        "def other():\n"
        "    import @report.nodes\n"
        "    return @report.nodes.title()\n",
        ("def", 1, "class", "module"),
    ),
    "del-of-the-package-name": (
        "def check():\n"
        "    import @report.nodes\n"
        "    title = @report.nodes.title()\n"
        "    del @root\n"
        "    return title\n",
        "module",
    ),
    "keyword-arguments-and-attributes-are-not-bindings": (
        "def check():\n"
        "    has = hasattr(shadow, 'report')\n"
        "    return dict(report=1), shadow.report if has else @report.nodes.title()\n",
        ({"report": 1}, "module"),
    ),
}


def _stub_package(monkeypatch: pytest.MonkeyPatch, dotted: str) -> None:
    """Importable stub modules ``dotted`` and ``dotted.nodes`` (``nodes.title()``)."""
    import types

    parts = [*dotted.split("."), "nodes"]
    parent = None
    for depth in range(1, len(parts) + 1):
        module = types.ModuleType(".".join(parts[:depth]))
        module.__path__ = []  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        if parent is not None:
            setattr(parent, parts[depth - 1], module)
        parent = module
    assert parent is not None
    parent.title = lambda: "module"  # type: ignore[attr-defined]
    parent.items = lambda: [types.SimpleNamespace(title=lambda: "shadow")]  # type: ignore[attr-defined]
    parent.NAME = "module"  # type: ignore[attr-defined]


def _run(source: str) -> object:
    scope: dict[str, object] = {"__name__": "case"}
    exec(compile(source, "<case>", "exec"), scope)
    return scope["check"]()  # type: ignore[operator]


@pytest.mark.parametrize("case", sorted(SHADOW_CASES))
def test_rebinding_the_root_name_is_not_the_package(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, expected = SHADOW_CASES[case]
    template = SHADOW_PRELUDE + body
    original = template.replace("@report", "report").replace("@root", "report")
    result = rewrite_source(original.encode(), "report", PULLED, filename="f.py")
    expected_text = template.replace("@report", PULLED).replace("@root", "demo_proj")
    assert result.text.decode() == expected_text
    assert result.warnings == ()
    _stub_package(monkeypatch, "report")
    assert _run(original) == expected
    _stub_package(monkeypatch, PULLED)
    monkeypatch.delitem(sys.modules, "report")
    monkeypatch.delitem(sys.modules, "report.nodes")
    assert _run(result.text.decode()) == expected


def test_a_name_bound_to_the_package_and_to_something_else_is_reported() -> None:
    # At module level (the code runs top to bottom, functions run later) a name bound both to
    # the package and to something else is ambiguous: left alone, with a warning where the
    # reference names a module of the package.
    source = (
        "import report.nodes\n"
        "for report in reports:\n"
        "    report.title()\n"
        "def f():\n"
        "    return report.nodes.helper()\n"
        "def g():\n"
        "    global report\n"
        "    report = None\n"
        "class C:\n"
        "    report = 1\n"
        "    x = report.nodes\n"  # the class's own name: not the package, no warning
    )
    result = rewrite_source(
        source.encode(), "report", PULLED, filename="f.py", submodules={"nodes"}
    )
    assert result.text.decode() == source.replace("import report", f"import {PULLED}")
    assert result.warnings == (
        "f.py:5: 'report' is bound to the micro-package and to something else in this scope; "
        "'report.nodes' not rewritten here",
    )


def test_a_new_root_name_bound_to_something_else_is_reported() -> None:
    # After the rewrite the reference goes through the new root name (``demo_proj`` here): a
    # local variable of that name would capture it.
    source = (
        "import report.nodes\n"
        "def f(demo_proj):\n"
        "    return report.nodes.helper(demo_proj)\n"
        "def g():\n"
        "    return report.nodes.helper()\n"
        "def h():\n"
        "    global report\n"
        "    import report.nodes\n"
        "def i():\n"
        "    return report.nodes\n"
    )
    result = rewrite_source(source.encode(), "report", PULLED, filename="f.py")
    lines = source.replace("import report", f"import {PULLED}").splitlines(keepends=True)
    lines[4] = f"    return {PULLED}.nodes.helper()\n"
    lines[9] = f"    return {PULLED}.nodes\n"
    assert result.text.decode() == "".join(lines)
    assert result.warnings == (
        "f.py:3: 'demo_proj' names something else in this scope; 'report.nodes' not rewritten here",
    )


def test_a_reference_the_rewritten_imports_would_not_reach_is_reported() -> None:
    # ``global report`` makes the function's import bind the module's ``report``, but the
    # rewritten import binds ``demo_proj`` in the function only.
    source = (
        "def load():\n"
        "    global report\n"
        "    import report.nodes\n"
        "def use():\n"
        "    return report.nodes.helper()\n"
    )
    result = rewrite_source(source.encode(), "report", PULLED, filename="f.py")
    assert result.text.decode() == source.replace("import report", f"import {PULLED}")
    assert result.warnings == (
        "f.py:5: no import binds 'demo_proj' in this scope after the rewrite; 'report.nodes' "
        "not rewritten here",
    )


def test_a_new_root_binding_on_a_line_of_its_own_is_seen() -> None:
    source = "import report.nodes\ndef f():\n    demo_proj = 1\n    return report.nodes.helper()\n"
    result = rewrite_source(source.encode(), "report", PULLED, filename="f.py")
    assert result.text.decode() == source.replace("import report", f"import {PULLED}")
    assert result.warnings == (
        "f.py:4: 'demo_proj' names something else in this scope; 'report.nodes' not rewritten here",
    )


def test_import_as_keeps_its_name_through_the_rewrite() -> None:
    source = "import report as report\nx = report.nodes\n"
    result = rewrite_source(source.encode(), "report", PULLED, filename="f.py")
    assert result.text.decode() == f"import {PULLED} as report\nx = report.nodes\n"
    assert result.warnings == ()


def test_a_name_spelled_otherwise_on_its_own_line_of_a_statement_is_still_seen() -> None:
    # The parser normalises ``ｐ001`` (fullwidth p) to ``p001``: a line with non-ASCII text is
    # walked even when the name is not spelled there as is.
    source = "import p001\nx = f(\n    p001.a,\n    g(\uff50001.b),\n)\n"
    result = rewrite_source(source.encode(), "p001", "proj.p001", filename="m.py")
    assert result.text.decode() == source.replace("p001", "proj.p001")
    assert result.warnings == ("m.py:4: reference to 'p001' not rewritten (unusual spelling)",)


def test_a_tracked_name_inside_a_longer_tracked_name_does_not_hide_it() -> None:
    # Old's root ``p0`` is a prefix of new's root ``p0x``: the line binding ``p0x`` is found.
    source = "import p0.nodes\ndef f():\n    p0x = 1\n    return p0.nodes.g()\n"
    result = rewrite_source(source.encode(), "p0", "p0x.pipelines.p0", filename="f.py")
    assert result.text.decode() == source.replace("import p0", "import p0x.pipelines.p0")
    assert result.warnings == (
        "f.py:4: 'p0x' names something else in this scope; 'p0.nodes' not rewritten here",
    )


@pytest.mark.parametrize(
    "text",
    [
        "from . import a\n",
        "from .. import a\nfrom\\\n  .x import b\n",
        "x = 1\nfrom   .nodes import f  # from . again\n",
        "xfrom . import a\n_from .y\né from .z\néfrom .w\n",
        "from_ . import\nfromage.x\nfrom x import y\n",
        "'''from . inside a string'''\n",
    ],
)
def test_relative_imports_are_found_as_a_word_regex_finds_them(text: str) -> None:
    """The ``from .`` finders check the word boundary by hand; they agree with ``\\bfrom``."""
    reference = re.compile(r"\bfrom[\s\\]*\.")
    rewriter = _Rewriter(text, "pkg.mod", "mod", "x.py", None, 0)
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    expected = sorted({bisect.bisect_right(starts, m.start()) for m in reference.finditer(text)})
    assert rewriter.interesting_lines() == expected
    data = text.encode()
    assert _worth_parsing(data, "pkg.mod", None, 0) == bool(re.search(rb"\bfrom[\s\\]*\.", data))


# -- the precheck: files it leaves unparsed have nothing to rewrite or report ---------------


@pytest.mark.parametrize(
    ("source", "worth"),
    [
        ('"""Nodes of the ``p0001`` pipeline."""\n\ndef f():\n    """The p0001 rows."""\n', False),
        ("# p0001: notes\nx = 'see p0001'\np0001_raw = 1\nxp0001.y = 2\nx = p0001\n", False),
        ("import p0001\n", True),
        ("import os, p0001\n", True),
        ("import \\\n    p0001\n", True),
        ("from p0001 import nodes\n", True),
        ("from p0001.nodes import f\n", True),
        ("x = f(a,\n      p0001)\n", True),
        ("x = p0001.nodes\n", True),
        ("x = (p0001\n     .nodes)\n", True),
        ("x = [p0001  # a comment\n     .nodes]\n", True),
        ("patch('p0001.nodes.log')\n", True),
        ("m = import_module('p0001')\n", True),
        ('x = f"p0001.{y}"\n', True),
        ("p0001 = 1\n", True),  # nothing but blanks before it: counted
        ("x = 1\n" + " " * 100 + "p0001 = 1\n", True),  # blanks past the look-back: counted
        ("# é\n'''The p0001 rows.'''\n", True),  # not ASCII: any mention counts
        ("# -*- coding: latin-1 -*-\n'''The p0001 rows.'''\n", True),
        ("#!/usr/bin/env python\n# vim: set fileencoding=utf-8 :\n'''p0001 rows'''\n", True),
        ("'''No mention at all.'''\n", False),
    ],
)
def test_the_precheck_leaves_prose_unparsed(source: str, worth: bool) -> None:
    assert _worth_parsing(source.encode(), "p0001", None, None) is worth


def _precheck_sources() -> list[tuple[str, bytes]]:
    """Real Python sources: this project's modules and tests, the corpus, the position cases."""
    from rewrite_matrix import CASES, render

    here = Path(__file__).parent
    paths = [
        *sorted((here.parent / "micropkg_tasks").rglob("*.py")),
        *sorted(here.glob("*.py")),
        *sorted(CORPUS.rglob("*.py")),
    ]
    sources = [(str(path), path.read_bytes()) for path in paths]
    sources += [(case, render(text, "pkg.sub.ds").encode()) for case, (text, _) in CASES.items()]
    return sources


def test_a_file_the_precheck_leaves_unparsed_has_nothing_to_rewrite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For names taken from real sources, one word or dotted: wherever the precheck says a
    file need not be parsed, parsing it anyway rewrites nothing and reports nothing (but that
    it is not valid Python)."""
    import micropkg_tasks.rewrite as rewrite_mod

    tried = skipped = 0
    cases = []
    for name, data in _precheck_sources():
        words = sorted(set(re.findall(rb"\b[A-Za-z_][A-Za-z0-9_]*\b", data)))
        submodules = frozenset(w.decode() for w in words)
        for word in words[:: max(1, len(words) // 12)]:
            for old in (word.decode(), f"{word.decode()}.nodes"):
                tried += 1
                if not _worth_parsing(data, old, None, None):
                    cases.append((name, data, old, submodules))
    monkeypatch.setattr(rewrite_mod, "_worth_parsing", lambda *args: True)
    for name, data, old, submodules in cases:
        skipped += 1
        full = rewrite_source(data, old, "proj.pipelines.x", filename="f.py", submodules=submodules)
        reported = [w for w in full.warnings if "not valid Python" not in w]
        assert (full.text, reported) == (data, []), (name, old)
    assert tried > 2000 and skipped > tried // 10, (tried, skipped)


def test_the_parse_cut_changes_no_rewrite(monkeypatch: pytest.MonkeyPatch) -> None:
    """For names taken from real sources (old one word or dotted, new's root another word of
    the file, with and without the project package and relative imports checked; and modules
    the file imports, so that a third of the cases rewrite or report something): parsing up
    to parse_end rewrites and reports what parsing the whole file does, wherever the whole
    file is valid Python."""
    import micropkg_tasks.rewrite as rewrite_mod

    monkeypatch.setattr(rewrite_mod, "_worth_parsing", lambda *args: True)
    tried = 0
    cases = []
    for name, data in _precheck_sources():
        text = data.decode()
        words = sorted(set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", text)))
        step = max(1, len(words) // 5)
        names = []
        for index, word in enumerate(words[::step]):
            other = words[(index * 7 + 3) % len(words)]
            names += [
                (word, f"{other}.pipelines.x", None, None),
                (f"{word}.nodes", "proj.x", other, 1),
            ]
        # And modules the file imports, so that there is something to rewrite.
        imported = sorted(set(re.findall(r"^(?:from|import) +([\w.]+)", text, re.MULTILINE)))
        for module in imported[:: max(1, len(imported) // 3)]:
            root = module.split(".")[0]
            names += [(module, "proj.pipelines.x", None, None), (root, "x", root, 0)]
        for old, new, project, depth in names:
            tried += 1
            if _Rewriter(text, old, new, "f.py", project, depth).parse_end() < len(text):
                options = {"project_package": project, "package_depth": depth}
                cases.append((name, data, old, new, options, frozenset(words)))

    def rewrite_all() -> list[RewriteResult]:
        return [
            rewrite_source(data, old, new, filename="f.py", submodules=submodules, **options)  # type: ignore[arg-type]
            for _, data, old, new, options, submodules in cases
        ]

    cut = rewrite_all()
    monkeypatch.setattr(rewrite_mod, "_parse", lambda text, end, filename: ast.parse(text))
    compared = acted = 0
    for case, result, full in zip(cases, cut, rewrite_all(), strict=True):
        if not any("not valid Python" in w for w in full.warnings):
            compared += 1
            acted += bool(full.changed or full.warnings)
            assert result == full, case[:4]
    assert compared > tried // 3 and acted > compared // 4, (tried, compared, acted)
