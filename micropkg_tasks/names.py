"""Name rules shared by package and pull: aliases, module paths, destinations, PEP 625."""

from __future__ import annotations

import functools
import keyword
import re
import unicodedata

from .errors import ManifestError

__all__ = [
    "LINE_BREAKS",
    "config_file_name",
    "describe_character",
    "normalize_destination",
    "normalize_module_path",
    "sdist_basename",
    "shown",
    "unsafe_character",
    "validate_alias",
]

#: Every character ``str.splitlines()`` splits on. pip reads requirements files with
#: ``splitlines()``, so any of these inside one requirement starts a new line (an option line).
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")

# LINE_BREAKS, Unicode's Cc (U+0000-U+001F, U+007F-U+009F) and Cs (lone surrogates): one C-speed
# search instead of a category look-up per character (every string of the lock goes through it).
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_WORD_RE = re.compile(r"\w+")  # always fullmatch: ``$`` also matches before a final newline
_PEP503_RE = re.compile(r"[-_.]+")

INVALID_MODULE_PATH = "The micro-package location you provided is not a valid Python module path"


def unsafe_character(text: str, *, allow: str = "") -> str | None:
    """The first line break, control character or lone surrogate in ``text``, if any.

    Lone surrogates are what undecodable bytes become (``surrogateescape``). Characters in
    ``allow`` (a tab in a requirement, say) are accepted.
    """
    for match in _UNSAFE_RE.finditer(text):
        if match[0] not in allow:
            return match[0]
    return None


def describe_character(char: str) -> str:
    """``a line break (U+2028)``: what an unsafe character is, for a message."""
    kind = "a line break" if char in LINE_BREAKS else "a control character"
    if unicodedata.category(char) == "Cs":
        kind = "an undecodable byte"
    return f"{kind} (U+{ord(char):04X})"


def shown(text: str) -> str:
    """``text`` for a one-line message: line breaks and other unprintable characters escaped."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def validate_alias(name: str) -> str:
    """Apply Kedro's package-name rule (reference §5.2) to the whole name; also reject Python
    keywords (``class`` cannot be imported) and ``tests``."""
    prefix = f"'{shown(name)}' is not a valid Python package name."
    if not re.match(r"[a-zA-Z_]", name):
        raise ManifestError(f"{prefix} It must start with a letter or underscore.")
    if len(name) < 2:
        raise ManifestError(f"{prefix} It must be at least 2 characters long.")
    if not _WORD_RE.fullmatch(name) or not name.isidentifier():
        raise ManifestError(f"{prefix} It must contain only letters, digits, and/or underscores.")
    if keyword.iskeyword(name):
        raise ManifestError(f"{prefix} It is a Python keyword.")
    if name == "tests":
        raise ManifestError(f"{prefix} 'tests' is reserved for the micro-package's tests.")
    return name


def normalize_module_path(raw: str, *, source_prefix: str = "") -> str:
    """Turn ``pipelines.x``, ``pipelines/x`` or ``src/<pkg>/pipelines/x`` into ``pipelines.x``.

    ``source_prefix`` is ``<source_dir>/<package_name>`` relative to the project root, posix.
    """
    text = raw.strip().replace("\\", "/").rstrip("/")
    if source_prefix and (text == source_prefix or text.startswith(source_prefix + "/")):
        text = text[len(source_prefix) :].lstrip("/")
    if "/" in text:
        if "." in text:
            raise ManifestError(f"{INVALID_MODULE_PATH}: '{shown(raw)}'.")
        text = text.replace("/", ".")
    parts = text.split(".")
    if not text or not all(part.isidentifier() for part in parts):
        raise ManifestError(f"{INVALID_MODULE_PATH}: '{shown(raw)}'.")
    return text


@functools.lru_cache(maxsize=64)  # called per entry and per lock entry with a few distinct values
def normalize_destination(raw: str | None) -> tuple[str, ...]:
    """Split a pull ``destination`` (``pipelines.nested`` or ``pipelines/nested``) into parts.

    Every part must be a Python identifier that is not a keyword. An absolute path
    (``/etc/cron.d``, ``C:\\x``, ``~/x``) is refused, never mapped under the package.
    """
    if not raw:
        return ()
    hint = (
        "use a module location inside the project package, e.g. 'pipelines' or 'pipelines/nested'."
    )
    prefix = f"Invalid destination '{shown(raw)}'"
    bad = unsafe_character(raw)
    if bad is not None:
        raise ManifestError(f"{prefix}: it contains {describe_character(bad)}; {hint}")
    text = raw.strip()
    if text.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:", text):
        raise ManifestError(f"{prefix}: an absolute path; {hint}")
    parts = tuple(re.split(r"[./]", text.replace("\\", "/").rstrip("/")))
    if not all(part.isidentifier() for part in parts):
        raise ManifestError(f"{prefix}: {hint}")
    keywords = [part for part in parts if keyword.iskeyword(part)]
    if keywords:
        raise ManifestError(
            f"{prefix}: '{keywords[0]}' is a Python keyword and cannot name a package; {hint}"
        )
    return parts


def config_file_name(rel: str, name: str, alias: str | None) -> str:
    """Kedro's alias rule for parameter files: in the *file* name (folders are kept), every
    occurrence of the micro-package's ``name`` becomes ``alias``."""
    if not alias or alias == name:
        return rel
    head, _, base = rel.rpartition("/")
    base = base.replace(name, alias)
    return f"{head}/{base}" if head else base


def sdist_basename(name: str, version: str) -> str:
    """``{name}-{version}`` with PEP 625 name normalisation and a canonical PEP 440 version."""
    from packaging.version import InvalidVersion, Version

    try:
        canonical = str(Version(version))
    except InvalidVersion as exc:
        raise ManifestError(f"Invalid version '{version}' for '{name}': not PEP 440.") from exc
    return f"{_PEP503_RE.sub('_', name).lower()}-{canonical}"
