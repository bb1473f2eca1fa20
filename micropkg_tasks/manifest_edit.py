"""Edits of the manifests in ``pyproject.toml`` (tomlkit: comments, order and formatting
of everything else are kept): pull entries, and moving ``[tool.kedro.micropkg]`` to
``[tool.micropkg]``.

Pure functions, text in and text out: the caller writes the result as part of its own
transaction. The table written to is ``[tool.kedro.micropkg.pull]`` when the project already
uses ``[tool.kedro.micropkg]``, else ``[tool.micropkg.pull]`` (Kedro 1.x refuses unknown keys
under ``[tool.kedro]``, so a new manifest never goes there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from ._compat import tomllib
from .errors import ManifestError
from .manifest import SETTINGS_KEYS

__all__ = [
    "entry_options",
    "migrate_manifest",
    "remove_pull_entry",
    "rename_pull_entry",
    "set_pull_entry",
]


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


# --------------------------------------------------------------------------- migration


def _fragments(body: Any, name: str) -> list[tuple[Any, Any]]:
    """The ``(key, item)`` pairs named ``name`` in a container's body, in file order: a table
    split by others (``[tool.kedro]`` … ``[tool.pytest]`` … ``[tool.kedro.micropkg.pull]``) has
    one pair per part."""
    return [(key, item) for key, item in body if key is not None and key.key == name]


def _rename_headers(table: Any, name: str) -> None:
    """Give ``table`` and the tables below it the headers of ``name`` (where they stand)."""
    from tomlkit.items import Table

    if table.display_name is not None:
        table.display_name = name
    for key, child in table.value.body:
        if key is not None and isinstance(child, Table) and not key.is_dotted():
            _rename_headers(child, f"{name}.{key.as_string().strip()}")


def _as_table(item: Any) -> Any:
    """A header table holding the entries of ``item`` (a table, or an inline table)."""
    import tomlkit

    table = tomlkit.table()
    for key, value in item.items():
        table.append(key, value)
    return table


def _moved(data: dict[str, Any]) -> dict[str, Any]:
    """What ``data`` (a parsed pyproject.toml) holds once the manifest has moved."""
    tool = dict(data["tool"])
    kedro = dict(tool["kedro"])
    tool["micropkg"] = {**tool.get("micropkg", {}), **kedro.pop("micropkg")}
    tool["kedro"] = kedro
    return {**data, "tool": tool}


def migrate_manifest(text: str) -> str | None:
    """``pyproject.toml`` with the ``[tool.kedro.micropkg]`` manifest moved to
    ``[tool.micropkg]``, or ``None`` when there is nothing to move.

    Table headers are renamed where they stand (``[tool.kedro.micropkg.pull]`` becomes
    ``[tool.micropkg.pull]``), so comments, order and formatting stay. A manifest written as
    keys of ``[tool.kedro]`` (dotted keys, an inline table) becomes a ``[tool.micropkg]`` table.
    Settings already in ``[tool.micropkg]`` (``max-size``) stay; a manifest already there is an
    error (merge by hand), as is anything the move cannot do exactly.
    """
    from tomlkit.items import InlineTable, Table

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"Cannot edit pyproject.toml: {exc}") from exc
    tool = data.get("tool")
    if not isinstance(tool, dict):
        return None
    kedro = tool.get("kedro")
    if not isinstance(kedro, dict) or "micropkg" not in kedro:
        return None
    moving, own = kedro["micropkg"], tool.get("micropkg")
    if not isinstance(moving, dict):
        raise ManifestError(
            "[tool.kedro.micropkg] must be a table with 'package' and/or 'pull' tables."
        )
    if own is not None and (
        not isinstance(own, dict) or set(own) - SETTINGS_KEYS or set(own) & set(moving)
    ):
        raise ManifestError(
            "Both [tool.kedro.micropkg] and [tool.micropkg] hold a manifest in pyproject.toml; "
            "merge them into [tool.micropkg] by hand (Kedro 1.x refuses the first). "
            "Nothing was written."
        )
    expected = _moved(data)

    doc = _parse(text)
    tools = [item for _, item in _fragments(doc.body, "tool") if isinstance(item, Table)]
    owns = [
        item
        for part in tools
        for _, item in _fragments(part.value.body, "micropkg")
        if isinstance(item, Table)
    ]
    for part in tools:
        for _, kedro_part in _fragments(part.value.body, "kedro"):
            if not isinstance(kedro_part, Table):
                continue
            for key, item in _fragments(kedro_part.value.body, "micropkg"):
                headed = isinstance(item, Table) and not key.is_dotted()
                if headed and not (owns and item.display_name is not None):
                    # [tool.kedro.micropkg.*] (or [tool.kedro.micropkg] with no [tool.micropkg])
                    _rename_headers(item, "tool.micropkg")
                    continue
                if not isinstance(item, (Table, InlineTable)):
                    continue  # not a table: the check below refuses the result
                # Keys of [tool.kedro], or a [tool.kedro.micropkg] beside [tool.micropkg].
                kedro_part.remove(key)
                if owns:
                    for child_key, child in item.value.body:
                        if child_key is not None:
                            owns[0].append(child_key, child)
                    _rename_headers(owns[0], owns[0].display_name or "tool.micropkg")
                else:
                    table = _as_table(item)
                    part.append("micropkg", table)
                    owns.append(table)
    result = str(doc.as_string())
    if text.endswith("\n") and not result.endswith("\n"):  # a table added at the end
        result += "\r\n" if text.endswith("\r\n") else "\n"
    try:
        exact = tomllib.loads(result) == expected
    except tomllib.TOMLDecodeError:
        exact = False
    if not exact:
        raise ManifestError(
            "Cannot move [tool.kedro.micropkg] to [tool.micropkg] in this pyproject.toml "
            "automatically; rename its tables by hand. Nothing was written."
        )
    return result
