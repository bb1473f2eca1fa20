"""Which versions of a pulled micro-package its source offers (``micropkg outdated``).

* A file source named ``<name>-<version>.tar.gz`` (a local path, ``file://`` or any fsspec URL:
  S3, GCS, an HTTP folder where the server gives a listing): the sibling files of the same
  distribution name (PEP 503 normalised) in the same folder. Each folder is listed once per
  :class:`VersionFinder`, however many entries come from it.
* An index requirement (``data-science==0.1``): the simple API (PEP 503 HTML or PEP 691 JSON,
  negotiated) of pip's configured index and extra indexes (``PIP_INDEX_URL``, ``pip.conf``...,
  as ``pip config list`` reports them), sdists only (a pull never uses wheels), yanked files
  left out.

Versions are ordered by PEP 440; pre-releases (and dev releases) count only with ``pre``.
"""

from __future__ import annotations

import ast
import base64
import html.parser
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SourceError

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.version import Version

__all__ = ["DEFAULT_INDEX", "Release", "VersionFinder", "pip_index_urls", "sdist_name_version"]

DEFAULT_INDEX = "https://pypi.org/simple/"
_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.1"
)
_TIMEOUT = 60.0


@dataclass(frozen=True, order=True)
class Release:
    """One version a source offers, and the SOURCE that pulls exactly it."""

    key: Version = field(repr=False)
    version: str = field(compare=False)
    source: str = field(compare=False)


def sdist_name_version(file_name: str) -> tuple[str, Version] | None:
    """``(normalised name, version)`` of an sdist file name ``<name>-<version>.tar.gz``, or
    ``None`` when the name is not one."""
    from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename

    if not file_name.endswith(".tar.gz"):
        return None
    try:
        name, version = parse_sdist_filename(file_name)
    except (InvalidSdistFilename, ValueError):
        return None
    return canonicalize_name(name), version


def _split_location(source: str) -> tuple[str, str, str]:
    """``(folder, file name, tail)`` of a file source: ``folder + name + tail == source``;
    ``tail`` is a URL's query or fragment."""
    tail = ""
    if "://" in source:
        cut = min((i for i in (source.find("?"), source.find("#")) if i >= 0), default=-1)
        if cut >= 0:
            source, tail = source[:cut], source[cut:]
    head, sep, name = source.rpartition("/")
    if not sep and "\\" in name:
        head, sep, name = name.rpartition("\\")
    return head + sep, name, tail


def _shown(url: str) -> str:
    """``url`` without its user info (no credentials in messages)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# --------------------------------------------------------------------------- pip's indexes


def _pip_config() -> dict[str, str]:
    """``pip config list`` as a mapping (``global.index-url`` → value); ``{}`` on failure."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    config: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        config[key.strip()] = str(parsed)
    return config


def pip_index_urls(config: Mapping[str, str] | None = None) -> list[str]:
    """The index URLs ``pip download`` would use: the index URL (``PIP_INDEX_URL``, else the
    ``download`` then ``global`` section of pip's configuration, else PyPI), then the extra
    index URLs, each once."""
    values = _pip_config() if config is None else config

    def option(name: str) -> str | None:
        for section in (":env:", "download", "global"):
            value = values.get(f"{section}.{name}")
            if value:
                return value
        return None

    urls = [option("index-url") or DEFAULT_INDEX, *(option("extra-index-url") or "").split()]
    return [u if u.endswith("/") else u + "/" for u in dict.fromkeys(urls)]


class _Links(html.parser.HTMLParser):
    """The anchors of a PEP 503 page: ``(file name, yanked)``."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, bool]] = []
        self._href: str | None = None
        self._yanked = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            found = dict(attrs)
            self._href = found.get("href") or ""
            self._yanked = "data-yanked" in found
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            text = "".join(self._text).strip()
            path = urllib.parse.urlsplit(self._href).path
            name = text or urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
            self.files.append((name, self._yanked))
            self._href = None


def _read_url(url: str, timeout: float) -> tuple[bytes, str]:
    """GET ``url`` (user info in it becomes basic auth): ``(body, content type)``.

    A ``file://`` folder gives its ``index.html``, else a page listing its files.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.request.url2pathname(parts.path))
        if path.is_dir():
            index = path / "index.html"
            if index.is_file():
                return index.read_bytes(), "text/html"
            links = "".join(f'<a href="{n}">{n}</a>\n' for n in sorted(os.listdir(path)))
            return links.encode("utf-8"), "text/html"
        return path.read_bytes(), "text/html"
    headers = {"Accept": _ACCEPT}
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        content_type = response.headers.get("Content-Type", "text/html")
        return response.read(), str(content_type)


def _index_files(index_url: str, project: str, timeout: float) -> list[tuple[str, bool]]:
    """``(file name, yanked)`` of every file the index lists for ``project`` (``[]`` when the
    index does not know it)."""
    url = urllib.parse.urljoin(index_url, f"{project}/")
    try:
        body, content_type = _read_url(url, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise SourceError(f"Cannot list {_shown(url)}: HTTP {exc.code} {exc.reason}") from exc
    except FileNotFoundError:
        return []
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SourceError(f"Cannot reach {_shown(url)}: {reason}") from exc
    if "json" in content_type:
        try:
            data = json.loads(body)
            return [(str(f["filename"]), bool(f.get("yanked"))) for f in data["files"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"Cannot read the index page {_shown(url)}: {exc}") from exc
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    return parser.files


# --------------------------------------------------------------------------- the finder


class VersionFinder:
    """Finds the releases a source offers; lists each folder and each index page once."""

    def __init__(self, base: Path, *, pre: bool = False, timeout: float = _TIMEOUT) -> None:
        self.base, self.pre, self.timeout = base, pre, timeout
        self._folders: dict[tuple[str, str], list[str]] = {}
        self._projects: dict[str, list[tuple[str, bool]]] = {}
        self._indexes: list[str] | None = None

    def releases(
        self, source: str, fs_args: Mapping[str, Any] | None = None, fs_args_key: str = ""
    ) -> list[Release]:
        """The releases ``source`` offers, oldest first (empty when it names no version).

        ``fs_args_key`` tells listings with different storage options apart.
        """
        from .sources import source_kind

        if source_kind(source, self.base) == "index":
            return self._index_releases(source)
        return self._folder_releases(source, fs_args, fs_args_key)

    def _keep(self, version: Version) -> bool:
        return self.pre or not version.is_prerelease

    def _folder_releases(
        self, source: str, fs_args: Mapping[str, Any] | None, fs_args_key: str
    ) -> list[Release]:
        from .sources import list_folder

        folder, name, tail = _split_location(source)
        parsed = sdist_name_version(name)
        if parsed is None:
            return []
        wanted = parsed[0]
        key = (folder, fs_args_key)
        if key not in self._folders:
            self._folders[key] = list_folder(folder or ".", base=self.base, fs_args=fs_args)
        found: dict[Version, Release] = {}
        for sibling in self._folders[key]:
            other = sdist_name_version(sibling)
            if other is None or other[0] != wanted or not self._keep(other[1]):
                continue
            release = Release(other[1], str(other[1]), folder + sibling + tail)
            # Two spellings of one version (1.0 / 1.0.0): the source's own file wins.
            if other[1] not in found or sibling == name:
                found[other[1]] = release
        return sorted(found.values())

    def _index_releases(self, source: str) -> list[Release]:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.utils import canonicalize_name

        try:
            req = Requirement(source)
        except InvalidRequirement:
            return []
        if req.url:
            return []
        project = canonicalize_name(req.name)
        if self._indexes is None:
            self._indexes = pip_index_urls()
        found: dict[Version, Release] = {}
        for index in self._indexes:
            cache_key = f"{index}{project}/"
            if cache_key not in self._projects:
                self._projects[cache_key] = _index_files(index, project, self.timeout)
            for file_name, yanked in self._projects[cache_key]:
                parsed = sdist_name_version(file_name)
                if yanked or parsed is None or parsed[0] != project:
                    continue
                if self._keep(parsed[1]) and parsed[1] not in found:
                    found[parsed[1]] = Release(
                        parsed[1], str(parsed[1]), _pinned(req, str(parsed[1]))
                    )
        return sorted(found.values())


def _pinned(req: Requirement, version: str) -> str:
    """``req`` pinned to ``version`` (name and extras as written, markers kept)."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker is not None else ""
    return f"{req.name}{extras}=={version}{marker}"
