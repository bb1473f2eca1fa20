"""Rewrite absolute references to one module path into another, splicing only the changed spans.

Used when a micro-package moves: ``demo_proj.pipelines.data_proc`` → ``dp_alias`` on package,
``dp_alias`` → ``demo_proj.pipelines.nested.beta`` on pull. One ``ast.parse`` per file (of
its text up to the statement after the last line that may need it) finds what to change; the
text outside the changed spans (comments, layout, line endings, BOM, encoding cookie) is kept
byte for byte.

A dotted reference (``demo_proj.pipelines.data_proc.nodes.f``) is rewritten only where its root
name is the package, by Python's scoping rules (functions, lambdas, comprehensions and class
bodies; ``global``/``nonlocal``; every binding form): the scope the name resolves to must bind
it only by ``import`` statements, before the rewrite (old's root) and after it (new's root).
The standard library's ``symtable`` would give the scopes, but since Python 3.12 it folds
comprehensions into their enclosing scope (PEP 709), so a comprehension variable could not be
told from the module it shadows; the tree walk keeps the few scopes it needs itself.
"""

from __future__ import annotations

import ast
import bisect
import functools
import io
import itertools
import re
import tokenize
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["RewriteResult", "rewrite_source", "submodule_names"]

_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_BYTES_NEWLINE_RE = re.compile(rb"\r\n|\r|\n")
# ``from .`` (a relative import). Without a leading ``\b``, which kept ``re`` from searching
# for the literal ``from`` (~25x slower); the word boundary before it is checked by hand.
_RELATIVE_IMPORT_RE = re.compile(rb"from[\s\\]*\.")
_BLANKS_RE = re.compile(r"[\s\\]+")
# What may stand between tokens of one statement (line continuations included), in bytes.
_BLANK_BYTES = b" \t\f\r\n\\"
_BLANK_BYTES_RE = re.compile(b"[" + re.escape(_BLANK_BYTES) + b"]*")
_QUOTES = frozenset(b"'\"")
# What before a mention may make it a name an import binds; how far back blanks are skipped.
_BINDING_CONTEXT = (b"import", b"from", b",", b"(")
_LOOK_BACK = 64
# An encoding declaration (PEP 263) on the first or second line.
_COOKIE_RE = re.compile(rb"(?:[^\r\n]*(?:\r\n|\r|\n))?[ \t\f]*#[^\r\n]*coding[:=]")
_RELATIVE_FROM_RE = re.compile(r"from[\s\\]*\.")
_ASCII_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
# A line that likely starts a statement: a name or a decorator at column 0 (lines inside
# brackets rarely start so), not a clause continuing the statement before it.
_STATEMENT_START_RE = re.compile(r"^(?=[A-Za-z_@])(?!(?:else|elif|except|finally)\b)", re.MULTILINE)
_DECORATED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_STRING_PREFIX = frozenset("rRuUfF")
# Functions whose first argument (or ``package=``/``name=``/``anchor=``) names a module or
# package: where a string that is exactly a one-word ``old`` is a module name.
_MODULE_FUNCTIONS = frozenset(
    {
        "import_module", "__import__", "find_spec", "importorskip", "getLogger",
        "files", "as_file", "get_data", "read_text", "read_binary", "open_text", "open_binary",
        "contents", "is_resource", "resource_filename", "resource_string", "resource_stream",
        "resource_exists", "resource_listdir", "resource_isdir",
    }
)  # fmt: skip
_MODULE_KEYWORDS = frozenset({"package", "name", "anchor"})
# Compared with these (``module.__name__ == "old"``), a string is a module name too.
_MODULE_ATTRIBUTES = frozenset({"__name__", "__package__", "__module__"})
_MODULE_SUFFIXES = (".py", ".so", ".pyd")
_COLLECTIONS = (ast.Tuple, ast.List, ast.Set)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Flags of the tree walk: inside an f-string's format spec, inside an annotation.
_IN_FSTRING = 1
_IN_ANNOTATION = 2
# Inside an f-string's expressions, whose positions are not exact before Python 3.12.
_IN_JOINED = 4
# Kinds of scope. Python's rules: a comprehension is a scope of its own; the names a class
# body binds are not seen from the functions and comprehensions inside it.
_MODULE, _FUNCTION, _CLASS, _COMPREHENSION = range(4)
# How a scope binds a tracked name (bits).
_IMPORTED_OLD = 1  # ``import old[.x]``: the top-level package, rebound to new's by the rewrite
_IMPORTED = 2  # another ``import root[.x]``: the same top-level package
_OTHER = 4  # anything else: assignment, parameter, loop target, def, class, as-target, ...
_DELETED = 8  # ``del name``: makes it local, binds nothing
_PACKAGE = _IMPORTED_OLD | _IMPORTED
# The tracked names: old's root name before the rewrite, new's root name after it.
_OLD, _NEW = 0, 1


class _Scope:
    """One scope of the file: what it binds of the tracked names, and what it declares."""

    __slots__ = ("binds", "declared_global", "declared_nonlocal", "kind", "parent")

    def __init__(self, kind: int, parent: int) -> None:
        self.kind = kind
        self.parent = parent
        self.binds = [0, 0]  # binding kinds of old's and new's root names, made here
        self.declared_global = [False, False]
        self.declared_nonlocal = [False, False]


@dataclass(frozen=True)
class _Chain:
    """An expression spelling ``old`` (a name or attribute chain): its span, scope and line,
    and for a one-word ``old`` the attribute that follows it, if any (``old.nodes``). A
    ``del old`` is a chain too (``deleted``)."""

    start: int
    end: int
    scope: int
    lineno: int
    attr: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class RewriteResult:
    """The outcome of :func:`rewrite_source`."""

    text: bytes
    changed: bool
    warnings: tuple[str, ...]


def submodule_names(paths: Iterable[str]) -> frozenset[str]:
    """The dotted names of the modules inside a package, from its files' relative POSIX
    paths: ``nodes.py`` → ``nodes``, ``utils/__init__.py`` → ``utils``, ``utils/sub/x.py`` →
    ``utils.sub.x``. Folders holding no Python file (``sql/``, ``templates/``) are not
    modules; a folder with Python files but no ``__init__.py`` is a namespace package, known
    through its modules.
    """
    names = set()
    for path in paths:
        folders, _, filename = path.rpartition("/")
        stem = filename.split(".", 1)[0]
        if not filename.endswith(_MODULE_SUFFIXES) or not stem.isidentifier():
            continue
        parts = folders.split("/") if folders else []
        if stem != "__init__":
            parts.append(stem)
        if parts and all(part.isidentifier() for part in parts):
            names.add(".".join(parts))
    return frozenset(names)


def rewrite_source(
    data: bytes,
    old: str,
    new: str,
    *,
    filename: str = "<string>",
    project_package: str | None = None,
    package_depth: int | None = None,
    submodules: Collection[str] = (),
) -> RewriteResult:
    """Rewrite absolute references to module ``old`` (and ``old.<x>``) into ``new``.

    Rewritten, in every syntactic position (decorators, defaults, annotations, class bodies,
    lambdas, comprehensions, f-string expressions, ...): ``import`` and ``from ... import``
    statements, dotted references ``old.nodes.f`` whose root name resolves, by Python's
    scoping, to a scope binding it only by imports (before and after the rewrite), string
    annotations (parsed and rewritten as code), and str literals whose text starts with the
    dotted path (``mock.patch("old.nodes.log")``; any prefix but ``b``, triple-quoted, or the
    leading text of an f-string, ``f"old.nodes.{name}"``). Relative imports, comments,
    docstrings and bytes are never changed. References left alone because the name is bound
    to something else as well, or because new's root name is captured where they are, are
    warned.

    Warnings (never rewritten) name ``filename`` and the line: relative imports climbing out
    of the micro-package (when ``package_depth``, the number of package levels between the
    micro-package root and this file, is given), absolute imports of ``project_package``
    outside ``old``, and files that are not valid Python as far as they are parsed (returned
    unchanged: parsing stops after the last line that may be code, see
    :meth:`_Rewriter.parse_end`). A file that cannot hold anything to rewrite or report is
    not even parsed (nor reported): its text names neither the project package nor a
    relative import (when they are checked), and names old's root only as prose (see
    :func:`_may_be_code`).

    ``submodules`` names the modules inside ``old`` at any depth, as :func:`submodule_names`
    gives them. With a one-word ``old`` ("report"), a string ``"old.x..."`` is rewritten only
    when ``x...`` starts with one of them (``"report.nodes.log"``, not ``"report.html"``), and
    ``"old"`` alone only where a module name is expected (``import_module("old")``,
    ``sys.modules["old"]``, ``module.__name__ == "old"``; not ``namespace="old"``).
    """
    if not _worth_parsing(data, old, project_package, package_depth):
        return RewriteResult(data, False, ())
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
        rewriter = _Rewriter(text, old, new, filename, project_package, package_depth, submodules)
        tree = _parse(text, rewriter.parse_end(), filename)
    except SyntaxError as exc:
        line = exc.lineno or 1
        why = exc.msg or "syntax error"
        return RewriteResult(data, False, (_not_python(filename, line, why),))
    except UnicodeDecodeError as exc:
        line = len(_BYTES_NEWLINE_RE.findall(data, 0, exc.start)) + 1
        return RewriteResult(data, False, (_not_python(filename, line, str(exc)),))
    except (ValueError, RecursionError) as exc:
        return RewriteResult(data, False, (_not_python(filename, 1, str(exc)),))

    rewriter.run(tree)
    warnings = tuple(message for _, message in sorted(set(rewriter.warnings)))
    if not rewriter.edits:
        return RewriteResult(data, False, warnings)
    out = _apply(text, rewriter.edits)
    try:
        encoded = out.encode(encoding)
    except UnicodeEncodeError:
        message = f"{filename}:1: '{new}' cannot be written in the file's encoding {encoding}"
        return RewriteResult(data, False, (*warnings, message + "; left unchanged"))
    return RewriteResult(encoded, encoded != data, warnings)


def _parse(text: str, end: int, filename: str) -> ast.Module:
    """Parse ``text`` up to ``end`` (see :meth:`_Rewriter.parse_end`), or all of it when that
    prefix is not valid Python on its own."""
    if end < len(text):
        try:
            return ast.parse(text[:end], filename)
        except (SyntaxError, ValueError, RecursionError):
            pass  # (the cut was not between two statements: the whole file is parsed)
    return ast.parse(text, filename)


def _not_python(filename: str, line: int, why: str) -> str:
    return f"{filename}:{line}: not valid Python ({why}); left unchanged"


def _worth_parsing(
    data: bytes, old: str, project_package: str | None, package_depth: int | None
) -> bool:
    """Cheap test on the bytes: can this file hold anything to rewrite or report at all?"""
    # Every rewrite needs the root name of ``old`` in the source text (non-ASCII names are
    # stored in the file's own encoding, so only ASCII names can be looked up in bytes).
    if project_package:
        name = project_package.split(".")[0]
        if not name.isascii() or name.encode() in data:
            return True
    root = old.split(".")[0]
    if not root.isascii():
        return True
    word = root.encode()
    if word in data and (
        # Outside plain ASCII text (or with an encoding cookie), bytes next to the name are
        # not read as characters here: any mention counts.
        not data.isascii() or _COOKIE_RE.match(data) is not None or _may_be_code(data, word)
    ):
        return True
    return package_depth is not None and any(
        not m.start() or data[m.start() - 1] not in _ASCII_WORD
        for m in _RELATIVE_IMPORT_RE.finditer(data)
    )


def _may_be_code(data: bytes, word: bytes) -> bool:
    """Whether a mention of the name ``word`` in ASCII source ``data`` may be one the rewriter
    changes or reports. Each change or report needs a string literal whose text starts with
    the name (a quote just before it) or an import naming it (``import``, ``from`` or a comma
    before it): a dotted reference is rewritten only where an import binds its root. A dot or
    a comment after it, a ``(`` before it, or nothing but blanks before it count too. What is
    left is prose (``the ``p0001`` pipeline`` in a docstring or a comment): a file with only
    such mentions can be left unparsed."""
    size = len(data)
    at = data.find(word)
    while at >= 0:
        end = at + len(word)
        if not ((at and data[at - 1] in _ASCII_WORD) or (end < size and data[end] in _ASCII_WORD)):
            if at and data[at - 1] in _QUOTES:
                return True
            after = _BLANK_BYTES_RE.match(data, end)
            assert after is not None  # (a ``*`` pattern always matches)
            if data[after.end() : after.end() + 1] in (b".", b"#"):
                return True
            before = data[max(0, at - _LOOK_BACK) : at].rstrip(_BLANK_BYTES)
            if not before or before.endswith(_BINDING_CONTEXT):
                return True
        at = data.find(word, end)
    return False


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Splice ``edits`` (start, end, replacement) into ``text``, dropping overlapping ones."""
    pieces: list[str] = []
    done = 0  # end of the last kept edit
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], -e[1])):
        if start < done:
            continue
        pieces += (text[done:start], replacement)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes over a name, else ``None``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class _Rewriter:
    """Collects the edits (str offsets) and warnings for one parsed file."""

    def __init__(
        self,
        text: str,
        old: str,
        new: str,
        filename: str,
        project_package: str | None,
        package_depth: int | None,
        submodules: Collection[str] = (),
    ) -> None:
        self.text = text
        self.submodules = frozenset(submodules)
        self.subpackages = _subpackages(self.submodules)
        self.old = old
        self.old_parts = old.split(".")
        self.old_parent, _, self.old_last = old.rpartition(".")
        self.new = new
        self.new_parent, _, self.new_last = new.rpartition(".")
        self.filename = filename
        self.project_package = project_package
        self.package_depth = package_depth
        self.edits: list[tuple[int, int, str]] = []
        self.warnings: list[tuple[int, str]] = []
        self.roots = (self.old_parts[0], new.split(".")[0])
        self.scopes = [_Scope(_MODULE, -1)]
        self._line_starts = _line_starts(text)
        self._hits: list[int] | None = None
        self._code_end = len(text)  # (see interesting_lines)

    # -- positions ---------------------------------------------------------------------

    def offset(self, lineno: int, col: int) -> int:
        """Turn ast's (line, UTF-8 byte column) into an offset in the decoded text."""
        start = self._line_starts[lineno - 1]
        if self.text[start : start + col].isascii():
            return start + col
        end = self._line_starts[lineno] if lineno < len(self._line_starts) else len(self.text)
        return start + len(self.text[start:end].encode()[:col].decode())

    def span(self, node: ast.stmt | ast.expr | ast.alias) -> tuple[int, int]:
        end_lineno = node.end_lineno if node.end_lineno is not None else node.lineno
        end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
        return self.offset(node.lineno, node.col_offset), self.offset(end_lineno, end_col)

    def name_spans(
        self, name: str, start: int, end: int, *, after_from: bool
    ) -> list[tuple[int, int]]:
        """Spans of the parts of the dotted ``name`` spelled at the start of ``text[start:end]``.

        With ``after_from`` the segment starts with the ``from`` keyword, which is skipped.
        The usual spelling is found by a string comparison; odd ones (``from a . b import c``,
        backslash continuations) by tokenizing the segment.
        """
        pos = start
        if after_from:
            pos += 4
            while self.text[pos] in " \t\f":
                pos += 1
        spans: list[tuple[int, int]] = []
        if self.text.startswith(name, pos):
            for part in name.split("."):
                spans.append((pos, pos + len(part)))
                pos += len(part) + 1
            return spans
        segment = self.text[start:end]
        starts = [0] + [m.end() for m in _NEWLINE_RE.finditer(segment)]
        expect_name = True
        tokens = tokenize.generate_tokens(io.StringIO(segment, newline="").readline)
        for tok in tokens:
            if tok.type in (tokenize.NL, tokenize.COMMENT):
                continue
            if after_from:
                after_from = False
                continue
            if expect_name and tok.type == tokenize.NAME:
                spans.append(
                    (start + starts[tok.start[0] - 1] + tok.start[1],
                     start + starts[tok.end[0] - 1] + tok.end[1])
                )  # fmt: skip
                expect_name = False
            elif not expect_name and tok.type == tokenize.OP and tok.string == ".":
                expect_name = True
            else:
                break
        return spans

    # -- rules -------------------------------------------------------------------------

    def under_old(self, name: str) -> bool:
        return name == self.old or name.startswith(self.old + ".")

    def in_project(self, name: str) -> bool:
        pkg = self.project_package
        return pkg is not None and (name == pkg or name.startswith(pkg + "."))

    def warn(self, node: ast.stmt | ast.expr, message: str) -> None:
        self.warnings.append((node.lineno, f"{self.filename}:{node.lineno}: {message}"))

    def warn_outside(self, node: ast.stmt, module: str) -> None:
        self.warn(
            node,
            f"imports '{module}' from outside the micro-package; the package will not be portable",
        )

    def replace_prefix(self, spans: list[tuple[int, int]]) -> None:
        """Replace the first ``len(old_parts)`` names of a dotted name by ``new``."""
        count = len(self.old_parts)
        if len(spans) >= count:
            self.edits.append((spans[0][0], spans[count - 1][1], self.new))

    # -- scopes ------------------------------------------------------------------------

    def new_scope(self, kind: int, parent: int) -> int:
        self.scopes.append(_Scope(kind, parent))
        return len(self.scopes) - 1

    def bind(self, scope: int, which: int, name: str, kind: int) -> None:
        """Record that ``scope`` binds ``name`` as ``kind``, if it is the tracked root name
        ``which`` (old's root before the rewrite, new's root after it)."""
        if name == self.roots[which]:
            self.scopes[scope].binds[which] |= kind

    def bind_both(self, scope: int, name: str, kind: int) -> None:
        """A binding the rewrite does not change."""
        self.bind(scope, _OLD, name, kind)
        self.bind(scope, _NEW, name, kind)

    def bind_arguments(self, scope: int, args: ast.arguments) -> None:
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None:
                self.bind_both(scope, arg.arg, _OTHER)

    def declare(self, scope: int, node: ast.Global | ast.Nonlocal) -> None:
        declared = self.scopes[scope]
        flags = (
            declared.declared_global if isinstance(node, ast.Global) else declared.declared_nonlocal
        )
        for which, root in enumerate(self.roots):
            if root in node.names:
                flags[which] = True

    def home(self, scope: int, which: int) -> int:
        """The scope a binding made in ``scope`` lands in (``global``/``nonlocal``)."""
        here = self.scopes[scope]
        if here.kind == _MODULE or here.declared_global[which]:
            return 0
        if here.declared_nonlocal[which]:
            return self.binder(here.parent, which)
        return scope

    def resolve(self, scope: int, which: int) -> int:
        """The scope whose binding of the tracked name ``which`` a reference in ``scope``
        reads, by Python's rules."""
        here = self.scopes[scope]
        if here.kind == _MODULE or here.declared_global[which]:
            return 0
        if here.declared_nonlocal[which]:
            return self.binder(here.parent, which)
        if here.binds[which]:
            return scope
        return self.binder(here.parent, which)

    def binder(self, scope: int, which: int) -> int:
        """The nearest function scope at or around ``scope`` binding ``which`` (class bodies
        are skipped), else the module."""
        while scope > 0:
            here = self.scopes[scope]
            if here.kind != _CLASS:
                if here.declared_global[which]:
                    return 0
                if here.binds[which] and not here.declared_nonlocal[which]:
                    return scope
            scope = here.parent
        return 0

    def effective(self, which: int) -> list[int]:
        """For each scope, the kinds of binding of ``which`` that land in it."""
        kinds = [0] * len(self.scopes)
        for index, scope in enumerate(self.scopes):
            if scope.binds[which]:
                kinds[self.home(index, which)] |= scope.binds[which]
        return kinds

    def decide(self, chains: list[_Chain]) -> None:
        """Rewrite the chains that name the package, by the scope their root name resolves
        to: bound there only by imports (old's root before the rewrite, new's after it)."""
        if not chains:
            return
        old_kinds, new_kinds = self.effective(_OLD), self.effective(_NEW)
        for chain in chains:
            kinds = old_kinds[self.resolve(chain.scope, _OLD)]
            if not kinds & _PACKAGE:
                continue  # a local variable, a parameter, ...: not the package
            if chain.deleted:
                shown = f"del {self.roots[_OLD]}"
            else:
                shown = self.old if chain.attr is None else f"{self.old}.{chain.attr}"
            if kinds & _OTHER:
                if len(self.old_parts) > 1 or chain.attr in self.subpackages:
                    self.warn_chain(
                        chain,
                        f"'{self.roots[_OLD]}' is bound to the micro-package and to something "
                        f"else in this scope; '{shown}' not rewritten here",
                    )
                continue
            new_scope = self.resolve(chain.scope, _NEW)
            kinds_after = new_kinds[new_scope]
            if kinds_after & _OTHER:
                self.warn_chain(
                    chain,
                    f"'{self.roots[_NEW]}' names something else in this scope; '{shown}' not "
                    "rewritten here",
                )
            elif not kinds_after & _PACKAGE:
                self.warn_chain(
                    chain,
                    f"no import binds '{self.roots[_NEW]}' in this scope after the rewrite; "
                    f"'{shown}' not rewritten here",
                )
            elif chain.deleted:
                # ``del old``: the import now binds new's root, unless another import of old's
                # root (not under old) still binds it here.
                if not kinds & _IMPORTED and new_scope == self.resolve(chain.scope, _OLD):
                    self.edits.append((chain.start, chain.end, self.roots[_NEW]))
            else:
                self.visit_chain(chain)

    def warn_chain(self, chain: _Chain, message: str) -> None:
        self.warnings.append((chain.lineno, f"{self.filename}:{chain.lineno}: {message}"))

    def visit_import(self, node: ast.Import, scope: int) -> None:
        for alias in node.names:
            name = alias.name
            if alias.asname is None:
                root = name.partition(".")[0]
                if self.under_old(name):
                    self.bind(scope, _OLD, root, _IMPORTED_OLD)
                    self.bind(scope, _NEW, self.roots[_NEW], _IMPORTED)
                else:
                    self.bind_both(scope, root, _IMPORTED)
            else:
                # ``import x as x`` binds the top-level package; ``import old as x`` binds ``x``
                # to the package itself, before and after the rewrite alike.
                same = name == alias.asname and not self.under_old(name)
                self.bind_both(scope, alias.asname, _IMPORTED if same else _OTHER)
            if not self.under_old(name):
                if self.in_project(name):
                    self.warn_outside(node, name)
                continue
            if (
                alias.asname is not None and len(node.names) == 1 and name == self.old
                and self.new_parent and alias.asname == self.new_last
            ):  # fmt: skip
                # ``import dp_alias as beta`` → ``from demo_proj.nested import beta``: the
                # idiomatic spelling, and the inverse of the ``from parent import last`` rule.
                start, end = self.span(node)
                self.edits.append((start, end, f"from {self.new_parent} import {self.new_last}"))
                continue
            start, end = self.span(alias)
            self.replace_prefix(self.name_spans(name, start, end, after_from=False))

    def visit_import_from(self, node: ast.ImportFrom, scope: int) -> None:
        self.bind_from(node, scope)
        if node.level:
            depth = self.package_depth
            if depth is not None and node.level > depth + 1:
                target = "." * node.level + (node.module or "")
                self.warn(
                    node,
                    f"relative import '{target}' climbs out of the micro-package; "
                    "the package will not be portable",
                )
            return
        module = node.module or ""
        if self.under_old(module):
            start, end = self.span(node)
            self.replace_prefix(self.name_spans(module, start, end, after_from=True))
            return
        others = node.names
        if self.old_parent and module == self.old_parent:
            others = [alias for alias in node.names if alias.name != self.old_last]
            if len(others) < len(node.names):
                if not others:
                    self.replace_from_parent(node, node.names[0].asname or self.old_last)
                else:
                    self.warn(
                        node,
                        f"imports '{self.old}' together with other names; not rewritten "
                        "(import it on a line of its own)",
                    )
        if not self.in_project(module):
            return
        if not self.old.startswith(module + "."):
            self.warn_outside(node, module)
            return
        for alias in others:
            full = module if alias.name == "*" else f"{module}.{alias.name}"
            if not self.under_old(full):
                self.warn_outside(node, full)

    def bind_from(self, node: ast.ImportFrom, scope: int) -> None:
        """Record the names a ``from ... import`` binds."""
        rewritten = (
            not node.level and self.old_parent and node.module == self.old_parent
            and len(node.names) == 1 and node.names[0].name == self.old_last
        )  # fmt: skip
        for alias in node.names:
            local = alias.asname or alias.name
            if alias.name == "*":
                continue
            if rewritten and not self.new_parent and local == self.new:
                # ``from <parent of old> import <last of old>`` becomes ``import <new>``.
                self.bind(scope, _OLD, local, _OTHER)
                self.bind(scope, _NEW, local, _IMPORTED)
            else:
                self.bind_both(scope, local, _OTHER)

    def replace_from_parent(self, node: ast.ImportFrom, local: str) -> None:
        """``from <parent of old> import <last of old> [as x]`` → an import of new binding the
        same local name."""
        if self.new_parent:
            text = f"from {self.new_parent} import {self.new_last}"
            if local != self.new_last:
                text += f" as {local}"
        else:
            text = f"import {self.new}"
            if local != self.new:
                text += f" as {local}"
        start, end = self.span(node)
        self.edits.append((start, end, text))

    def visit_chain(self, chain: _Chain) -> None:
        """Replace an expression spelling ``old`` by ``new``."""
        if _BLANKS_RE.sub("", self.text[chain.start : chain.end]) == self.old:
            self.edits.append((chain.start, chain.end, self.new))
        else:
            self.warn_chain(chain, f"reference to '{self.old}' not rewritten (unusual spelling)")

    def string_target(self, value: str, complete: bool, module_name: bool) -> bool:
        """Whether a string's text (or an f-string's leading text, ``complete`` when nothing
        follows it) names ``old`` or a module inside it.

        A dotted ``old`` is unambiguous. A one-word ``old`` ("report") is as likely a file,
        dataset or namespace name ("report.html", "report.raw"): ``"old.x..."`` counts only
        when ``x...`` starts with a module of the package, and ``"old"`` alone only where a
        module name is expected (``module_name``: ``import_module("old")``).
        """
        if value == self.old:
            return complete and (len(self.old_parts) > 1 or module_name)
        if not value.startswith(self.old + "."):
            return False
        return len(self.old_parts) > 1 or self.names_module(value[len(self.old) + 1 :], complete)

    def names_module(self, rest: str, complete: bool) -> bool:
        """Whether ``rest`` (what follows ``old.``) starts with a module of the package: the
        longest dotted prefix naming a module or package may be followed by attributes, but a
        namespace package (no ``__init__.py``) has none."""
        parts = rest.split(".")
        if not complete:
            parts.pop()  # the last part goes on in an f-string field: unknown
        known = False
        prefix = ""
        matched = 0
        for part in parts:
            name = f"{prefix}.{part}" if prefix else part
            if name not in self.subpackages:
                break
            prefix, known, matched = name, name in self.submodules, matched + 1
        return matched > 0 and (known or matched == len(parts))

    def body_start(self, start: int) -> int | None:
        """Where the text of the string literal starting at ``start`` begins (after its prefix
        and opening quotes), or ``None`` for a bytes literal."""
        pos = start
        while self.text[pos] in _STRING_PREFIX:
            pos += 1
        quote = self.text[pos]
        if quote not in "'\"":
            return None
        return pos + (3 if self.text.startswith(quote * 3, pos) else 1)

    def replace_in_literal(self, start: int) -> None:
        """Replace ``old`` at the start of the literal's text when it is spelled there as is (no
        escapes; in an implicit concatenation, within the first literal)."""
        body = self.body_start(start)
        if body is not None and self.text.startswith(self.old, body):
            self.edits.append((body, body + len(self.old), self.new))

    def visit_string(self, node: ast.Constant, module_name: bool) -> None:
        if self.string_target(str(node.value), True, module_name):
            self.replace_in_literal(self.span(node)[0])

    def visit_fstring(self, node: ast.JoinedStr) -> None:
        """An f-string's leading literal text is rewritten like a string (``f"old.nodes.{x}"``);
        its expressions are walked as code."""
        if not node.values or not isinstance(node.values[0], ast.Constant):
            return
        lead = str(node.values[0].value)
        if self.string_target(lead, len(node.values) == 1, module_name=False):
            self.replace_in_literal(self.span(node)[0])

    def annotation_string(self, node: ast.Constant, scope: int, chains: list[_Chain]) -> bool:
        """A string annotation (``x: "old.nodes.T"``, ``Optional["old.T"]``) is code: the
        references to ``old`` in it are rewritten like the others. Only a plain one-line
        ``'...'``/``"..."`` literal holding a valid expression; any other goes by the string
        rules."""
        value = str(node.value)
        start, end = self.span(node)
        source = self.text[start:end]
        if source[:1] not in ("'", '"') or source[1:-1] != value or "\n" in value:
            return False
        try:
            expr = ast.parse(value, mode="eval")
        except (SyntaxError, ValueError):
            return False
        base = start + 1
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Attribute):
                if sub.attr != self.old_last or _dotted(sub) != self.old:
                    continue
            elif not (isinstance(sub, ast.Name) and sub.id == self.old):
                continue
            col, end_col = sub.col_offset, sub.end_col_offset or sub.col_offset
            if not value.isascii():
                encoded = value.encode()
                col, end_col = len(encoded[:col].decode()), len(encoded[:end_col].decode())
            chains.append(_Chain(base + col, base + end_col, scope, node.lineno))
        return True

    # -- traversal ---------------------------------------------------------------------

    def run(self, tree: ast.Module) -> None:
        """Walk the tree once, recording scopes and bindings; chains and strings are kept as
        candidates until the whole file (imports may come after uses) is known."""
        chains: list[_Chain] = []
        strings: list[ast.Constant] = []
        fstrings: list[ast.JoinedStr] = []
        annotations: list[tuple[ast.Constant, int]] = []
        docstrings: set[int] = set()
        module_names: set[int] = set()  # strings where a module name is expected
        one_word = len(self.old_parts) == 1
        tracked = frozenset(self.roots)
        walked = self.walked_lines(self.interesting_lines())
        _note_docstring(tree, docstrings)
        stack: list[tuple[ast.AST, int, int]] = [(tree, 0, 0)]  # node, scope, _IN_* flags
        push = stack.append
        while stack:
            node, scope, flags = stack.pop()
            if isinstance(node, ast.Name):
                name = node.id
                if name in tracked:
                    ctx = node.ctx
                    if isinstance(ctx, ast.Load):
                        if one_word and name == self.old:
                            chains.append(_Chain(*self.span(node), scope, node.lineno))
                    elif isinstance(ctx, ast.Del):
                        self.bind_both(scope, name, _DELETED)
                        if name == self.roots[_OLD]:
                            chains.append(
                                _Chain(*self.span(node), scope, node.lineno, deleted=True)
                            )
                    else:
                        self.bind_both(scope, name, _OTHER)
                continue
            if isinstance(node, ast.Attribute):
                base = node.value
                if one_word:
                    if (
                        isinstance(base, ast.Name) and base.id == self.old
                        and isinstance(base.ctx, ast.Load)
                    ):  # fmt: skip
                        chains.append(_Chain(*self.span(base), scope, base.lineno, node.attr))
                        continue
                elif node.attr == self.old_last and _dotted(node) == self.old:
                    if isinstance(node.ctx, ast.Load):
                        chains.append(_Chain(*self.span(node), scope, node.lineno))
                    continue
                push((base, scope, flags))
                continue
            if isinstance(node, ast.Constant):
                value = node.value
                if isinstance(value, str) and id(node) not in docstrings:
                    if flags & _IN_ANNOTATION:
                        if self.old_parts[0] in value:
                            annotations.append((node, scope))
                    elif value.startswith(self.old):
                        strings.append(node)
                continue
            if isinstance(node, ast.stmt):
                # Skip statements that cannot hold anything to rewrite or report: most of a
                # file, and walking the tree costs more than parsing it. A decorated
                # definition starts at its first decorator, not at ``def``/``class``.
                first = node.lineno
                if isinstance(node, _DECORATED) and node.decorator_list:
                    first = node.decorator_list[0].lineno
                if walked is not None:
                    hit = bisect.bisect_left(walked, first)
                    if hit == len(walked) or walked[hit] > (node.end_lineno or node.lineno):
                        continue
                if isinstance(node, _FUNCTIONS):
                    # Decorators, defaults and annotations belong to the enclosing scope.
                    self.bind_both(scope, node.name, _OTHER)
                    _note_docstring(node, docstrings)
                    inner = self.new_scope(_FUNCTION, scope)
                    self.bind_arguments(inner, node.args)
                    stack.extend((child, scope, flags) for child in node.decorator_list)
                    self.push_arguments(node.args, scope, flags, stack)
                    if node.returns is not None:
                        push((node.returns, scope, flags | _IN_ANNOTATION))
                    stack.extend((child, scope, flags) for child in _type_params(node))
                    stack.extend((child, inner, flags) for child in node.body)
                    continue
                if isinstance(node, ast.ClassDef):
                    self.bind_both(scope, node.name, _OTHER)
                    _note_docstring(node, docstrings)
                    inner = self.new_scope(_CLASS, scope)
                    outer = (*node.decorator_list, *node.bases, *node.keywords, *_type_params(node))
                    stack.extend((child, scope, flags) for child in outer)
                    stack.extend((child, inner, flags) for child in node.body)
                    continue
                if isinstance(node, ast.Import):
                    self.visit_import(node, scope)
                    continue
                if isinstance(node, ast.ImportFrom):
                    self.visit_import_from(node, scope)
                    continue
                if isinstance(node, (ast.Global, ast.Nonlocal)):
                    self.declare(scope, node)
                    continue
                if isinstance(node, ast.AnnAssign):
                    push((node.annotation, scope, flags | _IN_ANNOTATION))
                    push((node.target, scope, flags))
                    if node.value is not None:
                        push((node.value, scope, flags))
                    continue
            elif isinstance(node, _COMPREHENSIONS):
                # The first iterable is evaluated outside; the rest is the comprehension's.
                generators = node.generators
                push((generators[0].iter, scope, flags))
                inner = self.new_scope(_COMPREHENSION, scope)
                for index, generator in enumerate(generators):
                    push((generator.target, inner, flags))
                    if index:
                        push((generator.iter, inner, flags))
                    stack.extend((child, inner, flags) for child in generator.ifs)
                if isinstance(node, ast.DictComp):
                    push((node.key, inner, flags))
                    push((node.value, inner, flags))
                else:
                    push((node.elt, inner, flags))
                continue
            elif isinstance(node, ast.Lambda):
                inner = self.new_scope(_FUNCTION, scope)
                self.bind_arguments(inner, node.args)
                self.push_arguments(node.args, scope, flags, stack)
                push((node.body, inner, flags))
                continue
            elif isinstance(node, ast.NamedExpr):
                # ``:=`` in a comprehension binds in the enclosing function (or module).
                target = node.target.id
                home = scope
                while self.scopes[home].kind == _COMPREHENSION:
                    home = self.scopes[home].parent
                self.bind_both(home, target, _OTHER)
                push((node.value, scope, flags))
                continue
            elif isinstance(node, ast.JoinedStr):
                # The literal text is read by visit_fstring (before Python 3.12 its parts have
                # no exact positions); the expressions are code, strings in them included. A
                # format spec is a JoinedStr too, whose text is not a module path.
                if not flags & _IN_FSTRING:
                    fstrings.append(node)
                for part in node.values:
                    if isinstance(part, ast.FormattedValue):
                        push((part.value, scope, (flags & ~_IN_FSTRING) | _IN_JOINED))
                        if part.format_spec is not None:
                            push((part.format_spec, scope, flags | _IN_FSTRING | _IN_JOINED))
                continue
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
                if node.name:
                    self.bind_both(scope, node.name, _OTHER)
            elif isinstance(node, ast.MatchMapping):
                if node.rest:
                    self.bind_both(scope, node.rest, _OTHER)
            elif one_word and isinstance(node, ast.Call):
                if _terminal_name(node.func) in _MODULE_FUNCTIONS:
                    named = node.args[:1] + [
                        k.value for k in node.keywords if k.arg in _MODULE_KEYWORDS
                    ]
                    module_names.update(id(arg) for arg in named)
            elif (
                one_word
                and isinstance(node, ast.Subscript)
                and _dotted(node.value) == "sys.modules"
            ):
                module_names.add(id(node.slice))
            elif one_word and isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(_terminal_name(o) in _MODULE_ATTRIBUTES for o in operands):
                    for operand in operands:
                        items = operand.elts if isinstance(operand, _COLLECTIONS) else [operand]
                        module_names.update(id(item) for item in items)
            if walked is not None and isinstance(node, ast.expr) and not flags & _IN_JOINED:
                # Like statements, an expression none of whose lines holds a tracked name
                # holds nothing to rewrite or report (see walked_lines).
                hit = bisect.bisect_left(walked, node.lineno)
                if hit == len(walked) or walked[hit] > (node.end_lineno or node.lineno):
                    continue
            # ``ast.iter_child_nodes``, in the same order, without its two generators (the
            # walk's largest cost after the parse).
            for field in node._fields:
                value = getattr(node, field, None)
                if isinstance(value, ast.AST):
                    push((value, scope, flags))
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST):
                            push((item, scope, flags))

        for node, scope in annotations:
            if not self.annotation_string(node, scope, chains) and self.under_old(str(node.value)):
                strings.append(node)
        self.decide(chains)
        for string in strings:
            self.visit_string(string, id(string) in module_names)
        for fstring in fstrings:
            self.visit_fstring(fstring)

    @staticmethod
    def push_arguments(
        args: ast.arguments, scope: int, flags: int, stack: list[tuple[ast.AST, int, int]]
    ) -> None:
        """Defaults and annotations of a function's arguments, evaluated in ``scope``."""
        stack.extend((default, scope, flags) for default in args.defaults)
        stack.extend((d, scope, flags) for d in args.kw_defaults if d is not None)
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None and arg.annotation is not None:
                stack.append((arg.annotation, scope, flags | _IN_ANNOTATION))

    def tracked_names(self) -> set[str]:
        """The root names of ``old``, ``new`` and the project package."""
        names = {*self.roots}
        if self.project_package:
            names.add(self.project_package.split(".")[0])
        return names

    def plain_names(self) -> bool:
        """Whether every tracked name is an ASCII identifier."""
        return all(name.isascii() and name.isidentifier() for name in self.tracked_names())

    def walked_lines(self, hits: list[int]) -> list[int] | None:
        """The lines inside which a statement or an expression is walked (None: all): those
        of ``hits``, and those holding any non-ASCII character, where an identifier may be a
        tracked name spelled otherwise (the parser normalises ``ｐ001`` to ``p001``, and
        ``ｐ001 = 2`` binds ``p001``). On the other lines every identifier is spelled as is, so
        a tracked one makes the line a hit; and a string is only ever rewritten where the text
        of the literal spells the name. Only with plain (ASCII identifier) tracked names,
        whose word matches make ``hits``; with others, every statement and expression is
        walked."""
        if not self.plain_names():
            return None
        if self.text.isascii():
            return hits
        starts = self._line_starts
        lines = set(hits)
        lines.update(
            bisect.bisect_right(starts, m.start()) for m in _NON_ASCII_RE.finditer(self.text)
        )
        return sorted(lines)

    def interesting_lines(self) -> list[int]:
        """Sorted numbers of the lines holding the root name of ``old`` or ``new`` (a binding
        of new's root name could capture a rewritten reference) or of the project package, or
        (when relative imports are checked) a ``from .`` import.

        Also notes where the last of them that may be code ends (see parse_end). A name with a
        backtick just before it (````p0001```` in reST prose) is not: a backtick is not Python
        outside strings and comments, and a string the rewriter reads (a module path, or a
        string annotation, which is then not valid code) starts with the name itself."""
        if self._hits is None:
            self._hits = self._scan()
        return self._hits

    def _scan(self) -> list[int]:
        names = self.tracked_names()
        starts = self._line_starts
        text = self.text
        lines: set[int] = set()
        if self.plain_names():
            code_end = 0
            # Each name found by str.find and its word boundaries checked here: a regex
            # starting with ``\b`` scanned every file several times slower. Bounded
            # occurrences never overlap (inside one, every character is a word character), so
            # these are the lines the regex below finds.
            size = len(text)
            for name in names:
                at = text.find(name)
                while at >= 0:
                    end = at + len(name)
                    if not (
                        (at and _is_word(text[at - 1])) or (end < size and _is_word(text[end]))
                    ):
                        lines.add(bisect.bisect_right(starts, at))
                        if end > code_end and not (at and text[at - 1] == "`"):
                            code_end = end
                    at = text.find(name, end)
            self._code_end = code_end
        else:
            pattern = "|".join(_word(name) for name in sorted(names))
            lines.update(bisect.bisect_right(starts, m.start()) for m in re.finditer(pattern, text))
        if self.package_depth is not None:
            for match in _RELATIVE_FROM_RE.finditer(text):
                at = match.start()
                if not at or not _is_word(text[at - 1]):
                    lines.add(bisect.bisect_right(starts, at))
                    self._code_end = max(self._code_end, match.end())
        return sorted(lines)

    def parse_end(self) -> int:
        """Where parsing may stop: at the first line after every hit that may be code (see
        interesting_lines) that may start a statement at column 0, outside triple-quoted
        strings by a count of their quotes; the end of the text if there is none, or if a
        non-ASCII character (an identifier may spell a tracked name otherwise) follows it.

        What comes after names a tracked name only as prose: it binds none, and holds nothing
        to rewrite or report (its statements without a hit run skips anyway; a syntax error
        there goes unreported). If the guess cuts a statement, the prefix is not valid Python
        on its own and the whole text is parsed (see _parse); if the prefix is valid, the
        parser read it exactly as in the whole text, statement by statement."""
        self.interesting_lines()
        text = self.text
        size = len(text)
        newline = text.find("\n", self._code_end)
        if newline < 0:
            return size
        start = doubles = singles = 0
        for match in _STATEMENT_START_RE.finditer(text, newline + 1):
            cut = match.start()
            doubles += text.count('"""', start, cut)
            singles += text.count("'''", start, cut)
            start = cut
            if not (doubles % 2 or singles % 2):
                break
        else:
            return size
        if not text.isascii() and _NON_ASCII_RE.search(text, cut):
            return size
        return cut


def _is_word(char: str) -> bool:
    r"""Whether ``char`` matches ``\w`` (what ``\b`` looks at)."""
    return char.isalnum() or char == "_"


def _line_starts(text: str) -> list[int]:
    r"""The offset where each line of ``text`` starts (a line ends at ``\r\n``, ``\r`` or
    ``\n``, as for the parser)."""
    if "\r" in text:
        return [0] + [m.end() for m in _NEWLINE_RE.finditer(text)]
    lengths = map(len, text.split("\n"))
    starts = list(itertools.accumulate(map((1).__add__, lengths), initial=0))
    starts.pop()  # the end of the text (one past it), not a line start
    return starts


def _word(name: str) -> str:
    """A pattern for ``name`` as a whole word (identifiers: ASCII ones, to stay safe)."""
    return rf"\b{re.escape(name)}\b" if name.isascii() else re.escape(name)


@functools.lru_cache(maxsize=16)
def _subpackages(submodules: frozenset[str]) -> frozenset[str]:
    """Packages known only through their modules (namespace packages) and modules alike
    (the same for every file of a micro-package: computed once)."""
    return frozenset(name[:dot] for name in submodules for dot in _dots(name)) | submodules


def _dots(name: str) -> Iterator[int]:
    """Positions of the dots in ``name``."""
    dot = name.find(".")
    while dot >= 0:
        yield dot
        dot = name.find(".", dot + 1)


def _terminal_name(node: ast.expr) -> str | None:
    """``f`` for a call of ``f`` or ``a.b.f``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def _note_docstring(
    node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef, docstrings: set[int]
) -> None:
    """Add the id of ``node``'s docstring, if any, to ``docstrings``."""
    if node.body:
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            docstrings.add(id(first.value))


def _type_params(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.AST]:
    """PEP 695 type parameters (Python 3.12+), read in the enclosing scope (their bounds may
    name the package)."""
    return list(getattr(node, "type_params", ()))
