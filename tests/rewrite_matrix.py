"""The rewriter's position matrix: one small module per syntactic position.

Each case is a module template in which ``PKG`` stands for the micro-package's import path: in
the source project (``src_proj.pipelines.ds``), in the sdist (the alias, ``ds2``) and in the
consuming project (``cons.pipelines.ds2``). Every ``PKG`` must be rewritten, so the expected
text of a stage is the template with that stage's path; ``check()`` exercises every reference,
and its result must be the same at every stage (see ``tests/test_rewrite_positions.py``).
"""

from __future__ import annotations

import textwrap

__all__ = ["CASES", "HELPER", "render"]

# The module the cases refer to, ``PKG.mhelp``.
HELPER = '''\
"""Helpers for the position cases."""

import contextlib
import enum

VALUE = 42
TABLE = {"a": 1}
LOG: list[str] = []


def deco(func):
    func.decorated = True
    return func


def deco_with(tag):
    def wrap(func):
        func.tag = tag
        return func

    return wrap


def helper():
    return "real"


def call_helper():
    return helper()


class Base:
    kind = "base"


class Meta(type):
    pass


class T:
    pass


class Error(Exception):
    pass


class Kind(enum.Enum):
    A = 1
    B = 2


class Point:
    __match_args__ = ("x",)

    def __init__(self, x):
        self.x = x


@contextlib.contextmanager
def ctx():
    yield "entered"
'''


def _case(text: str, expected: object) -> tuple[str, object]:
    return textwrap.dedent(text).lstrip("\n"), expected


# id → (module template, repr-able result of check()). The decorator cases keep ``PKG`` off the
# ``def``/``class`` lines and bodies on purpose: that is where statements used to be skipped.
CASES: dict[str, tuple[str, object]] = {
    "decorator-function": _case(
        """
        import PKG.mhelp


        @PKG.mhelp.deco
        def target():
            return 1


        def check():
            return target.decorated
        """,
        True,
    ),
    "decorator-with-arguments": _case(
        """
        import PKG.mhelp


        @PKG.mhelp.deco_with("x")
        def target():
            return 1


        @PKG.mhelp.deco_with(
            "multi",
        )
        def other():
            return 2


        def check():
            return target.tag, other.tag
        """,
        ("x", "multi"),
    ),
    "decorator-stacked": _case(
        """
        import functools

        import PKG.mhelp


        @functools.lru_cache
        @PKG.mhelp.deco
        @PKG.mhelp.deco_with("s")
        def target():
            return 1


        def check():
            return target.__wrapped__.decorated, target.__wrapped__.tag
        """,
        (True, "s"),
    ),
    "decorator-async-function": _case(
        """
        import asyncio

        import PKG.mhelp


        @PKG.mhelp.deco
        async def target():
            return 7


        def check():
            return target.decorated, asyncio.run(target())
        """,
        (True, 7),
    ),
    "decorator-method": _case(
        """
        import PKG.mhelp


        class Holder:
            @PKG.mhelp.deco
            def method(self):
                return 1

            @staticmethod
            @PKG.mhelp.deco_with("static")
            def static():
                return 2


        def check():
            return Holder.method.decorated, Holder.static.tag
        """,
        (True, "static"),
    ),
    "decorator-class": _case(
        """
        import PKG.mhelp


        @PKG.mhelp.deco
        class Target:
            pass


        def check():
            return Target.decorated
        """,
        True,
    ),
    "decorator-nested-and-conditional": _case(
        """
        import PKG.mhelp


        def outer():
            @PKG.mhelp.deco
            def inner():
                return 1

            return inner


        if True:

            @PKG.mhelp.deco_with("if")
            def conditional():
                return 1


        def check():
            return outer().decorated, conditional.tag
        """,
        (True, "if"),
    ),
    "mock-patch-function": _case(
        """
        from unittest import mock

        from PKG.mhelp import call_helper


        @mock.patch("PKG.mhelp.helper", return_value="mocked")
        def run(patched):
            return call_helper()


        def check():
            return run()
        """,
        "mocked",
    ),
    "mock-patch-method": _case(
        """
        from unittest import mock

        from PKG.mhelp import call_helper


        class Suite:
            @mock.patch("PKG.mhelp.helper", return_value="mocked")
            def run(self, patched):
                return call_helper()


        def check():
            return Suite().run()
        """,
        "mocked",
    ),
    "mock-patch-class": _case(
        """
        from unittest import mock

        from PKG.mhelp import call_helper


        @mock.patch("PKG.mhelp.helper", return_value="mocked")
        class Suite:
            def test_run(self, patched):
                return call_helper()


        def check():
            return Suite().test_run()
        """,
        "mocked",
    ),
    "default-arguments": _case(
        """
        import PKG.mhelp


        def positional(x=PKG.mhelp.VALUE):
            return x


        def keyword_only(*, x=PKG.mhelp.TABLE):
            return x


        def check():
            return positional(), keyword_only()
        """,
        (42, {"a": 1}),
    ),
    "annotations": _case(
        """
        import PKG.mhelp


        def f(x: PKG.mhelp.T, *args: PKG.mhelp.T, **kwargs: PKG.mhelp.T) -> PKG.mhelp.Base:
            return x


        def check():
            return sorted((k, v.__name__) for k, v in f.__annotations__.items())
        """,
        [("args", "T"), ("kwargs", "T"), ("return", "Base"), ("x", "T")],
    ),
    "annotations-postponed": _case(
        """
        from __future__ import annotations

        import typing

        import PKG.mhelp


        def f(x: PKG.mhelp.T) -> PKG.mhelp.Base:
            return x


        def check():
            return sorted((k, v.__name__) for k, v in typing.get_type_hints(f).items())
        """,
        [("return", "Base"), ("x", "T")],
    ),
    "annotations-strings": _case(
        """
        import typing
        from typing import Optional

        import PKG.mhelp


        def f(x: "PKG.mhelp.T", y: Optional["PKG.mhelp.T"]) -> "Optional[PKG.mhelp.Base]":
            return x


        def check():
            hints = typing.get_type_hints(f)
            return hints["x"].__name__, str(hints["y"]).count("mhelp.T"), str(hints["return"])[-5:]
        """,
        ("T", 1, "Base]"),
    ),
    "annotations-variables": _case(
        """
        import PKG.mhelp

        MODULE_LEVEL: PKG.mhelp.T = None


        class Holder:
            attribute: PKG.mhelp.Base


        def check():
            module, holder = __annotations__, Holder.__annotations__
            return module["MODULE_LEVEL"].__name__, holder["attribute"].kind
        """,
        ("T", "base"),
    ),
    "class-body-bases-keywords": _case(
        """
        import PKG.mhelp


        class Holder(PKG.mhelp.Base, metaclass=PKG.mhelp.Meta):
            value = PKG.mhelp.VALUE
            doubled = [PKG.mhelp.VALUE for _ in range(2)]

            def method(self):
                return PKG.mhelp.VALUE


        def check():
            kind, meta = Holder.kind, type(Holder).__name__
            return kind, meta, Holder.value, Holder.doubled, Holder().method()
        """,
        ("base", "Meta", 42, [42, 42], 42),
    ),
    "module-level": _case(
        """
        import PKG.mhelp

        VALUE = PKG.mhelp.VALUE + 1
        for _ in range(1):
            LOOPED = PKG.mhelp.VALUE
        while not PKG.mhelp.LOG:
            PKG.mhelp.LOG.append("while")
        else:
            ELSE = PKG.mhelp.TABLE["a"]
        assert PKG.mhelp.VALUE, PKG.mhelp.VALUE


        def check():
            return VALUE, LOOPED, ELSE
        """,
        (43, 42, 1),
    ),
    "nested-functions-and-lambdas": _case(
        """
        import PKG.mhelp


        def outer():
            def inner():
                def innermost():
                    return PKG.mhelp.VALUE

                return innermost()

            return inner()


        plain = lambda: PKG.mhelp.VALUE  # noqa: E731
        with_default = lambda x=PKG.mhelp.VALUE: x  # noqa: E731


        def gen():
            yield PKG.mhelp.VALUE
            yield from [PKG.mhelp.TABLE["a"]]


        def check():
            return outer(), plain(), with_default(), list(gen())
        """,
        (42, 42, 42, [42, 1]),
    ),
    "comprehensions": _case(
        """
        import PKG.mhelp

        MODULE = [PKG.mhelp.VALUE for _ in range(2)]


        def check():
            return (
                MODULE,
                sorted({PKG.mhelp.TABLE[k] for k in PKG.mhelp.TABLE}),
                {k: PKG.mhelp.VALUE for k in "ab" if PKG.mhelp.VALUE},
                list(PKG.mhelp.VALUE for _ in range(1)),
                [[PKG.mhelp.VALUE for _ in range(1)] for _ in range(1)],
            )
        """,
        ([42, 42], [1], {"a": 42, "b": 42}, [42], [[42]]),
    ),
    "with-try-match": _case(
        """
        import PKG.mhelp

        with PKG.mhelp.ctx() as ENTERED:
            pass


        def check(kind=PKG.mhelp.Kind.B, point=PKG.mhelp.Point(3)):
            try:
                raise PKG.mhelp.Error("boom")
            except (PKG.mhelp.Error, ValueError) as exc:
                caught = str(exc)
            finally:
                PKG.mhelp.LOG.append("finally")
            match kind:
                case PKG.mhelp.Kind.A:
                    first = "A"
                case PKG.mhelp.Kind.B:
                    first = "B"
            match point:
                case PKG.mhelp.Point(x=3):
                    second = "point"
                case _:
                    second = "other"
            return ENTERED, caught, PKG.mhelp.LOG[-1], first, second
        """,
        ("entered", "boom", "finally", "B", "point"),
    ),
    "expressions": _case(
        """
        import PKG.mhelp


        def check():
            if (value := PKG.mhelp.VALUE) > 0:
                return (
                    dict(key=PKG.mhelp.TABLE["a"]),
                    [*PKG.mhelp.TABLE],
                    value if PKG.mhelp.VALUE else None,
                    -PKG.mhelp.VALUE,
                )
        """,
        ({"key": 1}, ["a"], 42, -42),
    ),
    "fstring-expressions": _case(
        """
        import importlib

        import PKG.mhelp


        def check():
            width = 4
            module = f"{importlib.import_module('PKG.mhelp').VALUE}"
            return f"{PKG.mhelp.VALUE}-{PKG.mhelp.VALUE!r:>{width}}-{PKG.mhelp.TABLE['a']}", module
        """,
        ("42-  42-1", "42"),
    ),
    "fstring-literal-text": _case(
        """
        from unittest import mock

        from PKG.mhelp import call_helper

        NAME = "helper"


        def check():
            with mock.patch(f"PKG.mhelp.{NAME}", return_value="mocked"):
                return call_helper()
        """,
        "mocked",
    ),
    "strings": _case(
        """
        import importlib
        import sys
        from unittest import mock

        from PKG.mhelp import call_helper


        def check():
            with mock.patch(r"PKG.mhelp.helper", return_value="raw"):
                raw = call_helper()
            with mock.patch('''PKG.mhelp.helper''', return_value="triple"):
                triple = call_helper()
            return (
                importlib.import_module("PKG.mhelp").VALUE,
                importlib.import_module("PKG") is sys.modules[__package__],
                raw,
                triple,
            )
        """,
        (42, True, "raw", "triple"),
    ),
    "global-and-local-imports": _case(
        """
        import PKG.mhelp

        COUNTER = 0


        def check():
            global COUNTER
            COUNTER += PKG.mhelp.VALUE
            import PKG.mhelp as local_alias
            from PKG.mhelp import TABLE

            return COUNTER, local_alias.VALUE, TABLE
        """,
        (42, 42, {"a": 1}),
    ),
}


def render(template: str, path: str) -> str:
    """The case module with ``PKG`` spelled ``path``."""
    return template.replace("PKG", path)
