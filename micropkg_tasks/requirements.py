"""Requirements: Kedro's canonical form and equivalence, package-side parsing, pull-side merge,
and compiling ``requirements.in`` into ``requirements.txt`` (pip-tools, optionally uv).

``packaging`` is imported lazily (about 20 ms): ``requirements_stale`` runs when doit loads the
tasks and must stay cheap, so it only hashes files.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from .errors import RequirementsError
from .faults import fault
from .fsutil import sha256_file
from .journal import staged_path
from .names import describe_character, shown, unsafe_character

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

__all__ = [
    "BACKENDS",
    "COMPILE_COMMAND",
    "HEADER_TEMPLATE",
    "CompileBackend",
    "MergeResult",
    "NothingToCompile",
    "PipToolsBackend",
    "UvBackend",
    "block_header",
    "canonical",
    "check_one_line",
    "compile_requirements",
    "merge_requirements",
    "names_requirements",
    "nothing_to_compile",
    "parse_package_requirements",
    "read_requirements_text",
    "requirements_stale",
    "same_requirement",
]

#: Kedro's header above the lines a pull appends (reference §4.6).
HEADER_TEMPLATE = "# Additional requirements from micro-package `{name}`:"
#: What the compiled file's header tells readers to run (``CUSTOM_COMPILE_COMMAND``).
COMPILE_COMMAND = "micropkg build-reqs"

_HASH_PREFIX = "# micropkg: requirements.in sha256="
_HASH_RE = re.compile(r"^# micropkg: requirements\.in sha256=([0-9a-f]{64})[ \t]*\r?$", re.M)
# pip's comment rule: ``#`` at the start of a line or after whitespace (Kedro: only " #").
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_STDERR_TAIL = 12

_Key = tuple[str, frozenset[str], "SpecifierSet", str | None, str | None]


# --------------------------------------------------------------------------- canonical form


def check_one_line(text: str) -> None:
    """Refuse a requirement with a line break or a control character anywhere in it.

    Our own check, whatever ``packaging`` accepts (23.x-25.x parse a URL running on past a form
    feed or U+2028 as one requirement): pip splits requirements files with
    ``str.splitlines()``, so such a "requirement" would add an option line.
    """
    bad = unsafe_character(text, allow="\t")
    if bad is not None:
        raise RequirementsError(
            f"Invalid requirement '{shown(text.strip())}': it contains {describe_character(bad)}; "
            "a requirement must be one line."
        )


@functools.lru_cache(maxsize=4096)  # a pull --all parses the same lines for every entry
def _parse(text: str) -> Requirement:
    """Parse one PEP 508 string (leading/trailing whitespace tolerated, as in Kedro); shared
    between callers, never changed."""
    from packaging.requirements import InvalidRequirement, Requirement

    check_one_line(text)
    try:
        return Requirement(text.strip())
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "invalid syntax"
        raise RequirementsError(f"Invalid requirement '{shown(text.strip())}': {detail}.") from exc


def _format(req: Requirement) -> str:
    """Kedro's ``_EquivalentRequirement.__str__`` (reference §4.1)."""
    parts = [req.name]
    if req.extras:
        parts.append("[" + ",".join(sorted(req.extras)) + "]")
    if req.specifier:
        parts.append(str(req.specifier))
    if req.url:
        parts.append(f"@ {req.url}")
        if req.marker:
            parts.append(" ")
    if req.marker:
        parts.append(f"; {req.marker}")
    return "".join(parts)


def _key(req: Requirement) -> _Key:
    """A hashable key equal exactly when Kedro's equivalence says two requirements are equal."""
    from packaging.utils import canonicalize_name

    return (
        canonicalize_name(req.name),
        frozenset(req.extras),
        req.specifier,
        req.url,
        str(req.marker) if req.marker is not None else None,
    )


def canonical(req: str) -> str:
    """Return Kedro's canonical string form of a PEP 508 requirement (reference §4.1).

    The name keeps its spelling, extras are sorted, specifier clauses are sorted, markers are
    normalised. Raises ``RequirementsError`` when ``req`` is not PEP 508.
    """
    return _format(_parse(req))


def same_requirement(a: str, b: str) -> bool:
    """Kedro's equivalence: same canonical name, extras set, specifier set, URL and marker."""
    return _key(_parse(a)) == _key(_parse(b))


# --------------------------------------------------------------------------- package side


def _strip_comment(line: str) -> str:
    """Drop an inline comment (``#`` at the start or after whitespace, like pip)."""
    return _COMMENT_RE.sub("", line)


def _display(path: Path, relative_to: Path | None) -> str:
    base = relative_to if relative_to is not None else Path.cwd()
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except (ValueError, OSError):
        return path.as_posix()


_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _not_pep508_reason(text: str) -> str | None:
    """Why a line that failed to parse is a requirements-file-only construct, if it is one."""
    if text.endswith("\\"):
        return "line continuations are not supported: put the requirement on one line"
    first = text.split(maxsplit=1)[0] if text.split() else text
    path_like = ("/" in first or "\\" in first) and not re.search(r"[<>=!~;@\[]", first)
    if (
        text.startswith(("-", ".", "/", "~"))
        or "://" in first
        or first.lower().endswith(_ARCHIVE_SUFFIXES)
        or path_like
    ):
        return "options, file references and URLs to wheels cannot go into package metadata"
    return None


def _line_prefix(path: Path, relative_to: Path | None, number: int, text: str) -> str:
    # Built only on error: _display resolves paths (a third of a no-op at N=1000).
    return f"Invalid requirement in {_display(path, relative_to)} line {number}: '{shown(text)}'"


@functools.lru_cache(maxsize=4096)
def _canonical_line(body: str) -> str:
    """Kedro's canonical form of one requirement line (raises ``InvalidRequirement``).

    Memoised: micro-packages of one project share most requirement lines, and ``packaging``'s
    parser is most of the cost of reading them.
    """
    from packaging.requirements import Requirement

    return _format(Requirement(body))


def parse_package_requirements(path: Path, *, relative_to: Path | None = None) -> tuple[str, ...]:
    """Read a micro-package's ``requirements.txt`` into canonical strings (reference §2.6).

    File order, duplicates kept, names as written. Blank and comment lines (indented ones too)
    are skipped and inline comments dropped. Any other line that is not PEP 508 raises
    ``RequirementsError`` naming the file (relative to ``relative_to``, default the CWD), the
    line number and the text. A missing file gives ``()``.
    """
    from packaging.requirements import InvalidRequirement

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise RequirementsError(
            f"Cannot read '{_display(path, relative_to)}': {exc.strerror}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise RequirementsError(
            f"Cannot read '{_display(path, relative_to)}': not UTF-8 ({exc.reason})."
        ) from exc

    result: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        body = _strip_comment(raw).strip()
        bad = unsafe_character(body, allow="\t")
        if bad is not None:
            prefix = _line_prefix(path, relative_to, number, stripped)
            raise RequirementsError(f"{prefix} contains {describe_character(bad)}.")
        try:
            result.append(_canonical_line(body))
        except InvalidRequirement as exc:
            prefix = _line_prefix(path, relative_to, number, stripped)
            reason = _not_pep508_reason(body)
            if reason is not None:
                message = f"{prefix} is not a PEP 508 requirement ({reason})."
            else:
                detail = str(exc).splitlines()[0] if str(exc) else "invalid syntax"
                message = f"{prefix} is not a PEP 508 requirement: {detail}."
            raise RequirementsError(message) from exc
    return tuple(result)


# --------------------------------------------------------------------------- pull side


def block_header(package_name: str) -> str:
    """The comment line above the requirements a pull of ``package_name`` appends."""
    return HEADER_TEMPLATE.format(name=package_name)


def _logical_lines(text: str) -> Iterable[str]:
    """Join pip continuation lines (``\\`` at the end) into logical lines."""
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\") and not line.lstrip().startswith("#"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _existing_keys(lines: Iterable[str]) -> set[_Key]:
    """Leniently parse requirements-file lines: anything that is not PEP 508 is ignored.

    ``-r``, ``-c``, ``-e``, ``--index-url``, paths and URLs to archives are kept in the file
    verbatim by the merge; they just never count as "already present". Per-requirement options
    (``pkg==1 --hash=...``) are dropped before parsing.
    """
    keys: set[_Key] = set()
    for line in _logical_lines("\n".join(lines)):
        key = _line_key(line)
        if key is not None:
            keys.add(key)
    return keys


@functools.lru_cache(maxsize=16384)
def _line_key(line: str) -> _Key | None:
    """The equivalence key of one logical line, or None when it holds no PEP 508 requirement.

    Memoised: every pull of a ``pull --all`` reads the whole ``requirements.in`` again, which
    grows with each pull; parsing its lines anew each time made the run quadratic.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    body = _strip_comment(line).strip()
    if not body or body.startswith("-"):
        return None
    body = body.split(" --", 1)[0].split("\t--", 1)[0].strip()
    try:
        return _key(Requirement(body))
    except InvalidRequirement:
        return None


@dataclass(frozen=True)
class MergeResult:
    """What merging a micro-package's requirements into ``requirements.in`` gives.

    ``text`` is the new content (``None``: the file must not be touched); ``added`` the lines
    under this micro-package's header, canonical and sorted (record them in the lock file: they
    are the ``previous`` of the next upgrade); ``created_from`` is ``requirements.txt`` when
    ``requirements.in`` did not exist and is seeded from it.
    """

    text: str | None
    added: tuple[str, ...]
    created_from: Path | None
    kept: tuple[str, ...] = ()
    """Lines of ``previous`` left in the block because ``still_needed`` has them."""


def read_requirements_text(path: Path) -> str | None:
    """The text of a requirements file exactly as stored (``None`` when it does not exist).

    Decoded from UTF-8 without newline translation, so CRLF stays CRLF when it is written
    back. A file that is not UTF-8 is refused (pip reads it as UTF-8 too, unless it has a BOM
    of another encoding): we would otherwise have to guess, and write back other bytes.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RequirementsError(f"Cannot read '{path}': {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RequirementsError(
            f"Cannot read '{path}': it is not UTF-8 (byte 0x{data[exc.start]:02x} on line "
            f"{line}); save it as UTF-8. Nothing was written."
        ) from None


def _is_block_line(line: str) -> bool:
    """Whether ``line`` continues a header's block (not blank, not a comment)."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def merge_requirements(
    requirements_in: Path,
    requirements_txt: Path,
    package_name: str,
    new: Sequence[str],
    previous: Sequence[str] = (),
    *,
    still_needed: Sequence[str] = (),
) -> MergeResult:
    """Merge a pulled micro-package's requirements into the project's ``requirements.in``.

    Pure: reads the files, never writes. The base is ``requirements.in``, else the content of
    ``requirements.txt`` (Kedro's seed rule), else empty. On an upgrade, the lines listed in
    ``previous`` are removed from the blocks under ``package_name``'s header (other lines stay)
    and the new block takes the old block's place; otherwise it is appended after a blank line.
    Lines of ``new`` equivalent (reference §4.1) to a line already present are skipped.
    A line of ``previous`` equivalent to one of ``still_needed`` (what the other pulled
    micro-packages need) stays in the block even when ``new`` drops it.

    Everything outside our blocks is kept byte for byte: lines are split on ``\\n`` only (a form
    feed or U+2028 inside a comment stays where it is), CRLF files get CRLF lines from us, and
    a file without a final newline keeps it that way unless a block is appended at its end.
    """
    header = block_header(package_name)

    # Incoming: canonical strings, de-duplicated by equivalence (first spelling wins).
    incoming: dict[_Key, str] = {}
    for item in new:
        try:
            req = _parse(item)
        except RequirementsError as exc:
            raise RequirementsError(
                f"{exc} (in the metadata of micro-package '{package_name}')"
            ) from exc
        incoming.setdefault(_key(req), _format(req))

    base = read_requirements_text(requirements_in)
    created_from: Path | None = None
    if base is None:
        seed = read_requirements_text(requirements_txt)
        if seed is not None:
            created_from = requirements_txt
        base = seed or ""

    # Physical lines without their "\n" (a CRLF line keeps its "\r"): only "\n" ends a line here.
    lines = base.split("\n")
    final_newline = lines[-1] == ""
    if final_newline:
        lines.pop()
    cr = "\r" if lines and lines[0].endswith("\r") else ""  # our lines follow the file's style
    out: list[str] = []
    removed = False
    # Where the upgraded block goes: (index in ``out``, lines to insert before ``added``).
    slot: tuple[int, list[str]] | None = None
    prev = {p.strip() for p in previous}
    needed = _existing_keys(still_needed) if prev and still_needed else set()
    keep = {p for p in prev if needed and _existing_keys([p]) & needed}
    held: list[str] = []  # our lines that stay: re-inserted, sorted with the added ones
    i = 0
    while i < len(lines):
        line = lines[i]
        if not (prev and line.strip() == header):
            out.append(line)
            i += 1
            continue
        end = i + 1
        while end < len(lines) and _is_block_line(lines[end]):
            end += 1
        region = lines[i + 1 : end]
        kept = [r for r in region if r.strip() not in prev]
        if len(kept) == len(region):  # none of our lines here: not ours to touch
            out.extend(lines[i:end])
            i = end
            continue
        removed = True
        held += [r.strip() for r in region if r.strip() in keep]
        if kept:  # the user added lines under our header: keep them, and the header
            out.append(line)
            if slot is None:
                slot = (len(out), [])
            out.extend(kept)
        else:
            if out and not out[-1].strip():
                out.pop()  # the blank line that separated the block
            if slot is None:
                slot = (len(out), ([cr] if out else []) + [header + cr])
        i = end

    present = _existing_keys([*out, *held])
    added = tuple(sorted(text for key, text in incoming.items() if key not in present))
    kept_lines = tuple(dict.fromkeys(held))

    if not added and not removed:
        return MergeResult(text=None, added=(), created_from=None)

    if slot is not None:
        index, prefix = slot
        block = sorted({*added, *kept_lines})
        if block:
            out[index:index] = [*prefix, *(line + cr for line in block)]
        elif index == 0:
            while out and not out[0].strip():
                out.pop(0)
    elif added:
        if out and cr and not out[-1].endswith(cr):
            out[-1] += cr  # the last line had no line break: it gets the file's own
        separator = [cr] if out and out[-1].strip() else []
        out.extend([*separator, header + cr, *(line + cr for line in added)])
        final_newline = True  # the end of the file is our block now

    text = "\n".join(out) + ("\n" if final_newline else "") if out else ""
    if text == base:
        return MergeResult(text=None, added=added, created_from=None, kept=kept_lines)
    return MergeResult(text=text, added=added, created_from=created_from, kept=kept_lines)


# --------------------------------------------------------------------------- compile


class CompileBackend(Protocol):
    """A resolver that turns ``requirements.in`` into a pinned ``requirements.txt``."""

    name: str

    def command(
        self, requirements_in: str, requirements_txt: str, extra_args: Sequence[str]
    ) -> list[str]:
        """The argv to run from the project root (paths are relative to it)."""
        ...

    def env(self) -> dict[str, str]:
        """Environment variables to set on top of the current environment."""
        ...


class PipToolsBackend:
    """``python -m piptools compile`` with the interpreter running micropkg (the default).

    Flags: ``--no-emit-*`` keep machine-local pip configuration (index URLs, find-links,
    trusted hosts) out of the committed file; ``--strip-extras`` gives constraint-compatible
    output (pip-tools' future default); ``--allow-unsafe`` pins setuptools/pip too, so the file
    is complete and installable with ``pip install --require-hashes``/``pip-sync`` (also
    pip-tools' announced future default, and what uv does).
    """

    name: str = "pip-tools"

    def command(
        self, requirements_in: str, requirements_txt: str, extra_args: Sequence[str]
    ) -> list[str]:
        """``python -m piptools compile IN -o OUT --quiet <fixed flags> *extra_args``."""
        return [
            sys.executable,
            "-m",
            "piptools",
            "compile",
            requirements_in,
            "-o",
            requirements_txt,
            "--quiet",
            "--no-emit-index-url",
            "--no-emit-find-links",
            "--no-emit-trusted-host",
            "--strip-extras",
            "--allow-unsafe",
            *extra_args,
        ]

    def env(self) -> dict[str, str]:
        """``CUSTOM_COMPILE_COMMAND`` makes the header say how to regenerate the file."""
        return {"CUSTOM_COMPILE_COMMAND": COMPILE_COMMAND}


def find_uv() -> str | None:
    """The ``uv`` executable: beside this interpreter (``pip install uv``), else on PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


class UvBackend:
    """``uv pip compile`` (optional, faster); resolves for the interpreter running micropkg."""

    name: str = "uv"

    def command(
        self, requirements_in: str, requirements_txt: str, extra_args: Sequence[str]
    ) -> list[str]:
        """``uv pip compile IN -o OUT --quiet --python <this python> ...``."""
        uv = find_uv()
        if uv is None:
            raise RequirementsError(
                "The 'uv' backend needs uv: 'pip install uv' here, or put it on PATH."
            )
        return [
            uv,
            "pip",
            "compile",
            requirements_in,
            "-o",
            requirements_txt,
            "--quiet",
            "--python",
            sys.executable,
            "--custom-compile-command",
            COMPILE_COMMAND,
            *extra_args,
        ]

    def env(self) -> dict[str, str]:
        """uv takes the compile command as a flag; nothing to add."""
        return {}


BACKENDS: dict[str, CompileBackend] = {"pip-tools": PipToolsBackend(), "uv": UvBackend()}


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def _insert_hash_line(text: str, digest: str) -> str:
    """Put the hash line right after the leading comment block (pip-compile's header)."""
    lines = text.splitlines()
    lines = [line for line in lines if not line.startswith(_HASH_PREFIX)]
    index = 0
    while index < len(lines) and lines[index].startswith("#"):
        index += 1
    lines.insert(index, f"{_HASH_PREFIX}{digest}")
    return "\n".join(lines) + "\n"


def _error_summary(output: str) -> str:
    """The useful end of a resolver's error output: its error lines, not a traceback."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    picked = [
        line.strip() for line in lines if line.lstrip().startswith(("ERROR:", "error:", "Error:"))
    ]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        final = next((line for line in reversed(lines) if not line[:1].isspace()), None)
        if final is not None and final not in picked:
            picked.append(final)
    chosen = picked or lines
    return "\n".join(dict.fromkeys(chosen[-_STDERR_TAIL:])) or "(no output)"


def compile_requirements(
    project_root: Path,
    requirements_in: Path,
    requirements_txt: Path,
    *,
    extra_args: Sequence[str] = (),
    backend: str = "pip-tools",
) -> None:
    """Compile ``requirements.in`` into ``requirements.txt`` from ``project_root``.

    Runs the backend's command (paths relative to the root, so the output names no machine
    paths), then records ``# micropkg: requirements.in sha256=<hex>`` of the input that was
    compiled, for ``requirements_stale``. A failure raises ``RequirementsError`` with the end of
    the resolver's error output; the existing ``requirements.txt`` is then left as it was.
    """
    chosen = BACKENDS.get(backend)
    if chosen is None:
        raise RequirementsError(
            f"Unknown compile backend '{backend}'; choose one of: {', '.join(sorted(BACKENDS))}."
        )
    if not requirements_in.is_file():
        raise RequirementsError(f"'{_relative(requirements_in, project_root)}' does not exist.")
    digest = sha256_file(requirements_in)
    # The resolver writes a staged copy (it keeps the pins of the file it overwrites), renamed
    # over requirements.txt only when complete: a killed run leaves the old file, and the next
    # run deletes the staged one.
    staged = staged_path(requirements_txt)
    staged.unlink(missing_ok=True)
    try:
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(requirements_txt, staged)
        _run_backend(chosen, project_root, requirements_in, staged, extra_args)
        fault("compiled")
        try:
            compiled = staged.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise RequirementsError(
                f"{chosen.name} did not write {_relative(requirements_txt, project_root)}."
            ) from exc
        with staged.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(_insert_hash_line(compiled, digest))
        with contextlib.suppress(FileNotFoundError):  # an updated file keeps its mode
            os.chmod(staged, stat.S_IMODE(requirements_txt.stat().st_mode))
        os.replace(staged, requirements_txt)
    finally:
        staged.unlink(missing_ok=True)


def _run_backend(
    chosen: CompileBackend,
    project_root: Path,
    requirements_in: Path,
    output: Path,
    extra_args: Sequence[str],
) -> None:
    argv = chosen.command(
        _relative(requirements_in, project_root), _relative(output, project_root), extra_args
    )
    try:
        proc = subprocess.run(
            argv,
            cwd=project_root,
            env={**os.environ, **chosen.env()},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise RequirementsError(f"Cannot run {chosen.name}: {exc}") from exc
    if proc.returncode != 0:
        details = _error_summary(proc.stderr.strip() or proc.stdout.strip())
        raise RequirementsError(
            f"Compiling {_relative(requirements_in, project_root)} with {chosen.name} failed "
            f"(exit code {proc.returncode}):\n{details}"
        )


def requirements_stale(requirements_in: Path, requirements_txt: Path) -> bool:
    """Whether ``requirements.txt`` must be recompiled from ``requirements.in``.

    True when the compiled file is missing, has no hash line, or its hash differs from the
    current ``requirements.in`` (also when that is missing). Reads two files; starts nothing.
    """
    try:
        compiled = requirements_txt.read_text(encoding="utf-8", errors="replace")
        current = sha256_file(requirements_in)
    except OSError:
        return True
    match = _HASH_RE.search(compiled)
    return match is None or match.group(1) != current


#: Options of a requirements file that bring requirements (``-r base.txt``, ``-e .``).
_REQUIREMENT_OPTIONS = ("-r", "--requirement", "-e", "--editable")

NothingToCompile = Literal["no requirements.in", "no requirements"]
"""Why :func:`nothing_to_compile` found nothing to compile."""


def names_requirements(text: str) -> bool:
    """Whether a requirements file's ``text`` names anything to install: a line that is not
    blank, a comment or an option that adds no requirement (``--index-url``, ``-c``, ``--pre``).
    ``-r`` and ``-e`` lines count: they bring requirements."""
    for line in _logical_lines(text):
        body = _strip_comment(line).strip()
        if body and (not body.startswith("-") or body.startswith(_REQUIREMENT_OPTIONS)):
            return True
    return False


def nothing_to_compile(requirements_in: Path, requirements_txt: Path) -> NothingToCompile | None:
    """Why there is nothing to compile, or None when there is something (or an error to report).

    Nothing: no ``requirements.in`` (no pull added requirements); or one that names no
    requirement while ``requirements.txt`` is not one we compiled (missing, or without our hash
    line): compiling would replace the project's hand-written pins with an empty list. A
    ``requirements.txt`` we compiled follows its input even when that becomes empty (the last
    micro-package with requirements was removed), so no stale pins stay behind. Starts nothing.
    """
    try:
        data = requirements_in.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return "no requirements.in"
    except OSError:
        return None  # the compile names the problem
    if names_requirements(data.decode("utf-8", errors="replace")):
        return None
    try:
        compiled = requirements_txt.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no requirements"
    return None if _HASH_RE.search(compiled) else "no requirements"


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_requirements` did: compiled, nothing to do, or nothing to compile."""

    compiled: bool
    requirements_in: Path
    requirements_txt: Path
    nothing: NothingToCompile | None = None
    """Why there was nothing to compile (None: there was something)."""


def build_requirements(
    project_root: Path,
    requirements_in: Path,
    requirements_txt: Path,
    *,
    extra_args: Sequence[str] = (),
    backend: str = "pip-tools",
    force: bool = False,
) -> BuildResult:
    """Compile ``requirements.in`` when ``requirements.txt`` is stale, when ``extra_args`` are
    given or with ``force``; otherwise do nothing. When there is :func:`nothing_to_compile`,
    nothing runs and nothing is written, whatever the options."""
    nothing = nothing_to_compile(requirements_in, requirements_txt)
    if nothing is not None:
        return BuildResult(False, requirements_in, requirements_txt, nothing)
    stale = requirements_stale(requirements_in, requirements_txt)
    if not (stale or extra_args or force):
        return BuildResult(False, requirements_in, requirements_txt)
    compile_requirements(
        project_root, requirements_in, requirements_txt, extra_args=extra_args, backend=backend
    )
    return BuildResult(True, requirements_in, requirements_txt)
