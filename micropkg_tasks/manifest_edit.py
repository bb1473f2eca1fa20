"""Edits of the pull manifest in ``pyproject.toml`` (tomlkit: comments, order and formatting
of everything else are kept).

Pure functions, text in and text out: the caller writes the result as part of its own
transaction. The table written to is ``[tool.kedro.micropkg.pull]`` when the project already
uses ``[tool.kedro.micropkg]``, else ``[tool.micropkg.pull]`` (Kedro 1.x refuses unknown keys
under ``[tool.kedro]``, so a new manifest never goes there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from .errors import ManifestError

__all__ = ["entry_options", "remove_pull_entry", "rename_pull_entry", "set_pull_entry"]


def _parse(text: str) -> Any:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ManifestError(f"Cannot edit pyproject.toml: {exc}") from exc


def _find(doc: Any, create: bool) -> Any:
    """The pull manifest table of ``doc`` (created when ``create``), or ``None``."""
    import tomlkit

    tool = doc.get("tool")
    kedro = tool.get("kedro") if tool is not None else None
    if isinstance(kedro, Mapping) and "micropkg" in kedro:
        parent = kedro["micropkg"]
    elif tool is not None and "micropkg" in tool:
        parent = tool["micropkg"]
    elif not create:
        return None
    else:
        if tool is None:
            tool = tomlkit.table(is_super_table=True)
            doc["tool"] = tool
        parent = tomlkit.table(is_super_table=True)
        tool["micropkg"] = parent
    if not isinstance(parent, MutableMapping):
        raise ManifestError("Cannot edit pyproject.toml: the micropkg manifest is not a table.")
    if "pull" not in parent:
        if not create:
            return None
        parent["pull"] = tomlkit.table()
    table = parent["pull"]
    if not isinstance(table, MutableMapping):
        raise ManifestError("Cannot edit pyproject.toml: the pull manifest is not a table.")
    return table


def entry_options(
    *,
    alias: str | None = None,
    destination: str | None = None,
    env: str | None = None,
    fs_args: str | None = None,
    sha256: str | None = None,
) -> dict[str, str]:
    """The manifest keys of a pull entry's options (defaults left out), in the README's order."""
    options = {
        "alias": alias,
        "destination": destination,
        "env": env if env and env != "base" else None,
        "fs-args": fs_args,
        "sha256": sha256,
    }
    return {key: value for key, value in options.items() if value}


def _inline(options: Mapping[str, str]) -> Any:
    import tomlkit

    table = tomlkit.inline_table()
    table.update(dict(options))
    return table


def _replace_key(table: Any, old: str, new: str, value: Any) -> None:
    """Give the entry ``old`` the key ``new`` and ``value``, in place (its comment stays)."""
    container = getattr(table, "_value", None)
    replace = getattr(container, "_replace", None)
    if replace is not None:
        replace(old, new, value)
        return
    # Without tomlkit's in-place replace: rebuild the entries in order.
    items = [(k, v) for k, v in table.items()]
    for key, _ in items:
        del table[key]
    for key, item in items:
        table[new if key == old else key] = value if key == old else item


def set_pull_entry(
    text: str, key: str, options: Mapping[str, str], *, replaces: Iterable[str] = ()
) -> str:
    """``pyproject.toml`` with the pull entry ``key`` set to ``options``.

    The entry takes the place of the first existing entry among ``key`` and ``replaces`` (the
    keys of entries for the same micro-package); the others are removed. Without any, it is
    appended to the pull manifest (created when missing).
    """
    doc = _parse(text)
    table = _find(doc, create=True)
    present = [k for k in dict.fromkeys([key, *replaces]) if k in table]
    value = _inline(options)
    if present:
        first = present[0]
        for other in present[1:]:
            del table[other]
        if first == key:
            table[key] = value
        else:
            _replace_key(table, first, key, value)
    else:
        table[key] = value
    return str(doc.as_string())


def rename_pull_entry(
    text: str, old: str, new: str, *, changes: Mapping[str, str | None] | None = None
) -> str | None:
    """``pyproject.toml`` with the pull entry ``old`` renamed to ``new`` (position, comments
    and options kept; ``changes`` sets options, ``None`` removes one), or ``None`` when there
    is no entry ``old``."""
    doc = _parse(text)
    table = _find(doc, create=False)
    if table is None or old not in table:
        return None
    current = table[old]
    options = {str(k): str(v) for k, v in current.items()} if isinstance(current, Mapping) else {}
    for name, value in (changes or {}).items():
        if value is None:
            options.pop(name, None)
        else:
            options[name] = value
    if old == new:
        table[new] = _inline(options)
    else:
        _replace_key(table, old, new, _inline(options))
    return str(doc.as_string())


def remove_pull_entry(text: str, key: str) -> str | None:
    """``pyproject.toml`` without the pull entry ``key``, or ``None`` when there is none."""
    doc = _parse(text)
    table = _find(doc, create=False)
    if table is None or key not in table:
        return None
    del table[key]
    return str(doc.as_string())
