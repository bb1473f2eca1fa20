"""TOML basic strings, for the files we write by hand (sdist pyproject, micropkg.lock)."""

from __future__ import annotations

import re

__all__ = ["toml_string"]

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string (double-quoted, escaped)."""
    out = ['"']
    for char in value:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif _CONTROL_RE.match(char):
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
