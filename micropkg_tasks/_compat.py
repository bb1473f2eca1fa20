"""TOML on every supported Python: ``tomllib`` (``tomli`` before 3.11) and one string escaper."""

from __future__ import annotations

import json
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["toml_string", "tomllib"]


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string (double-quoted, escaped).

    JSON's string escapes (``\\"``, ``\\\\``, ``\\b``, ``\\f``, ``\\n``, ``\\r``, ``\\t``,
    ``\\uXXXX`` for other controls) are all valid TOML; TOML also forbids a raw DEL, which JSON
    leaves alone.
    """
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
