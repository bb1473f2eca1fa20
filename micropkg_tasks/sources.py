"""Where pulled sdists come from: local files, fsspec URLs and package indexes.

Three kinds of SOURCE (design §4):

* ``local``: an existing path, a path ending in ``.tar.gz``/``.tgz`` or a ``file://`` URL. Used in
  place (never copied); relative paths are relative to the ``base`` the caller gives.
* ``fsspec``: any other ``scheme://`` (or chained ``a::b://``) URL. Downloaded into ``workdir``
  with the storage options of the ``--fs-args`` YAML; the object's change key (ETag, else
  fsspec's ``ukey``) is recorded so doit can tell cheaply whether it changed (:func:`remote_key`).
* ``index``: anything else must be a PEP 508 requirement (``my-pipeline==0.2``), fetched with
  ``pip download --no-deps --no-binary :all: --no-build-isolation -- <requirement>``. Index
  options come from pip's own configuration (``PIP_INDEX_URL``, ``pip.conf``...).

**fs-args rule for HTTP(S)** (the seed's form ``Authorization: token <t>`` must work): for
``http://``/``https://`` sources, a top-level key that is neither an ``HTTPFileSystem`` option
(:data:`HTTP_FS_OPTIONS`) nor an aiohttp request option (:data:`AIOHTTP_REQUEST_OPTIONS`) is a
request header; its value must be a string (numbers are converted) and it is merged into
``client_kwargs.headers``. A header also given there explicitly keeps the explicit value.
Other protocols get the YAML mapping unchanged as keyword arguments.

Every failure is a one-line :class:`~micropkg_tasks.errors.SourceError`. fsspec, yaml and
packaging are imported lazily: this module is imported when doit loads tasks.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SourceError
from .fsutil import sha256_file

__all__ = [
    "AIOHTTP_REQUEST_OPTIONS",
    "DEFAULT_TIMEOUT",
    "HTTP_FS_OPTIONS",
    "Fetched",
    "fetch",
    "is_remote",
    "list_folder",
    "load_fs_args",
    "local_path",
    "public_url",
    "remote_key",
    "source_kind",
    "storage_options",
]

#: ``scheme://`` or a chained fsspec URL (``simplecache::s3://``); a Windows drive does not match.
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)(?:://|::)")
#: A PEP 508 direct reference: ``name[extras] @ scheme://...`` (an index-kind requirement).
_DIRECT_REF_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*@\s*[A-Za-z][A-Za-z0-9+.\-]*://"
)
#: Seconds a remote source may stay silent (connecting, or between two reads) by default.
DEFAULT_TIMEOUT = 60.0
#: ``scheme://`` and the user information after it (up to the last ``@`` of the authority).
_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
#: An HTTP header name (RFC 9110 ``token``).
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

#: Keyword arguments of fsspec's ``HTTPFileSystem`` (and of ``AbstractFileSystem``).
HTTP_FS_OPTIONS = frozenset(
    {
        "simple_links",
        "block_size",
        "same_scheme",
        "size_policy",
        "cache_type",
        "cache_options",
        "asynchronous",
        "loop",
        "client_kwargs",
        "get_client",
        "encoded",
        "use_listings_cache",
        "listings_expiry_time",
        "max_paths",
        "skip_instance_cache",
        "batch_size",
    }
)
#: aiohttp request options: ``HTTPFileSystem`` passes its other keyword arguments to each request.
AIOHTTP_REQUEST_OPTIONS = frozenset(
    {
        "params",
        "cookies",
        "headers",
        "skip_auto_headers",
        "auth",
        "allow_redirects",
        "max_redirects",
        "compress",
        "chunked",
        "expect100",
        "raise_for_status",
        "read_until_eof",
        "proxy",
        "proxy_auth",
        "proxy_headers",
        "timeout",
        "verify_ssl",
        "fingerprint",
        "ssl_context",
        "ssl",
        "server_hostname",
        "trace_request_ctx",
        "read_bufsize",
        "auto_decompress",
        "max_line_size",
        "max_field_size",
    }
)

# Exception class names (anywhere in the cause chain) that mean "wrong or missing credentials"
# or "the server cannot be reached"; matched by name to avoid importing aiohttp/botocore.
_DENIED_NAMES = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
)
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
        "401",
        "403",
    }
)
_UNREACHABLE_NAMES = frozenset(
    {
        "ClientConnectorError",
        "ClientConnectorDNSError",
        "ClientConnectorSSLError",
        "ClientConnectorCertificateError",
        "ServerDisconnectedError",
        "EndpointConnectionError",
        "ProxyConnectionError",
        "SSLError",
    }
)
# aiohttp's, fsspec's and botocore's timeouts (asyncio.TimeoutError is no TimeoutError on 3.10).
_TIMEOUT_NAMES = frozenset(
    {
        "ServerTimeoutError",
        "ConnectionTimeoutError",
        "SocketTimeoutError",
        "FSTimeoutError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "TimeoutError",
    }
)
_PIP_SDIST_TEXT = (
    "More than 1 or no sdist files found: {names}. "
    "There has to be exactly one source distribution file."
)


@dataclass(frozen=True)
class Fetched:
    """A fetched sdist: where it is, its digest, and the remote change key."""

    path: Path
    """A local ``.tar.gz``: inside ``workdir``, or the source itself for a local file."""
    sha256: str
    ukey: str | None
    """ETag/ukey of the remote object, read before its bytes; ``None`` for local files, index
    downloads, or HTTP servers that send no validator (ETag, Content-MD5, Digest,
    Last-Modified)."""


# --------------------------------------------------------------------------- classification


def _scheme(location: str) -> str | None:
    """The (first) URL scheme of ``location``, lower-cased, or ``None`` for a plain path."""
    match = _SCHEME_RE.match(location)
    return match.group(1).lower() if match else None


def is_remote(location: str) -> bool:
    """True if ``location`` is a URL with a scheme other than ``file://``."""
    scheme = _scheme(location)
    return scheme is not None and scheme != "file"


def source_kind(source: str, base: Path) -> str:
    """Classify a pull SOURCE: ``"local"``, ``"fsspec"`` or ``"index"`` (see module docs)."""
    scheme = _scheme(source)
    if scheme == "file":
        return "local"
    if scheme is not None:
        return "fsspec"
    if _DIRECT_REF_RE.match(source):
        return "index"
    if source.endswith((".tar.gz", ".tgz")) or source.startswith(("/", "./", "../", ".\\")):
        return "local"
    try:
        if (base / source).exists():
            return "local"
    except (OSError, ValueError):  # a name too long or with NUL bytes is no path
        pass
    return "index"


def local_path(source: str, base: Path) -> Path:
    """The absolute path of a local source (plain path or ``file://`` URL)."""
    if _scheme(source) == "file":
        rest = source.split("://", 1)[1]
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        path = Path(urllib.parse.unquote(rest))
    else:
        path = Path(source)
    return (path if path.is_absolute() else base / path).absolute()


# --------------------------------------------------------------------------- fs-args


def load_fs_args(path: Path | None) -> dict[str, Any]:
    """Read an ``--fs-args`` YAML file into storage options (``{}`` without a file)."""
    if path is None:
        return {}
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"fs-args file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"Cannot read fs-args file {path}: {_one_line(exc)}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SourceError(f"Invalid YAML in fs-args file {path}: {_one_line(exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SourceError(
            f"fs-args file {path} must hold a mapping of storage options, got {type(data).__name__}"
        )
    bad = [key for key in data if not isinstance(key, str)]
    if bad:
        raise SourceError(f"fs-args file {path}: keys must be strings, got {bad[0]!r}")
    return data


def storage_options(
    url: str, fs_args: Mapping[str, Any] | None, *, timeout: float | None = None
) -> dict[str, Any]:
    """The keyword arguments for ``fsspec.core.url_to_fs(url, ...)``: ``fs_args`` plus, for
    HTTP(S), the header rule of the module docs.

    ``timeout`` (seconds) bounds how long a server may stay silent: when connecting and between
    two reads (not the whole download, which may be large). It becomes aiohttp's
    ``sock_connect``/``sock_read`` for HTTP(S) and botocore's ``connect_timeout``/
    ``read_timeout`` for S3, unless ``fs_args`` sets those itself.
    """
    options: dict[str, Any] = copy.deepcopy(dict(fs_args or {}))
    scheme = _scheme(url)
    if scheme in ("http", "https"):
        options = _http_options(options)
        if timeout is not None:
            _http_timeout(options, timeout)
    elif scheme in ("s3", "s3a") and timeout is not None:
        config = options.get("config_kwargs")
        if config is None or isinstance(config, Mapping):
            config = dict(config or {})
            config.setdefault("connect_timeout", timeout)
            config.setdefault("read_timeout", timeout)
            options["config_kwargs"] = config
    return options


def _http_timeout(options: dict[str, Any], timeout: float) -> None:
    """Give the aiohttp session a ``ClientTimeout`` unless ``client_kwargs`` has one."""
    client_kwargs = options.get("client_kwargs") or {}
    if not isinstance(client_kwargs, Mapping) or "timeout" in client_kwargs:
        return
    try:
        import aiohttp
    except ImportError:  # fsspec's HTTP filesystem says what is missing
        return
    options["client_kwargs"] = {
        **client_kwargs,
        "timeout": aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
    }


def _http_options(options: dict[str, Any]) -> dict[str, Any]:
    """Move top-level header keys (``Authorization: token x``) into ``client_kwargs.headers``."""
    out: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for key, value in options.items():
        if key in HTTP_FS_OPTIONS or key in AIOHTTP_REQUEST_OPTIONS:
            out[key] = value
        elif (
            _HEADER_NAME_RE.match(key)
            and isinstance(value, (str, int, float))
            and not isinstance(value, bool)
        ):
            headers[key] = str(value)
        else:
            raise SourceError(
                f"fs-args key {key!r} is neither an HTTP filesystem option nor a request "
                "header (a header value must be a string)"
            )
    if not headers:
        return out
    client_kwargs = out.get("client_kwargs") or {}
    if not isinstance(client_kwargs, Mapping):
        raise SourceError("fs-args 'client_kwargs' must be a mapping")
    explicit = client_kwargs.get("headers") or {}
    if not isinstance(explicit, Mapping):
        raise SourceError("fs-args 'client_kwargs.headers' must be a mapping")
    given = {str(name).lower() for name in explicit}
    merged = {name: value for name, value in headers.items() if name.lower() not in given}
    merged.update(explicit)
    out["client_kwargs"] = {**client_kwargs, "headers": merged}
    return out


# --------------------------------------------------------------------------- errors


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of an exception's text, shortened, without URL credentials."""
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = public_url(lines[0] if lines else text.strip())
    return first if len(first) <= limit else first[: limit - 1] + "…"


def public_url(text: str) -> str:
    """``text`` with the user information of every ``scheme://user:password@`` removed.

    What is recorded in ``micropkg.lock`` and printed: the user name goes too, since tokens are
    often passed as one (``https://<token>@host/...``). Works on plain URLs, chained fsspec URLs
    (``simplecache::https://...``) and PEP 508 direct references (``name @ https://...``).
    """
    return _USERINFO_RE.sub(r"\1", text)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts (each once)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _status(exc: BaseException) -> int | None:
    """The HTTP status carried by an aiohttp/botocore error, if any."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(code, int):
            return code
    return None


def _error_code(exc: BaseException) -> str | None:
    """The service error code of a botocore ``ClientError`` (``AccessDenied``...)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _translate(
    exc: BaseException, url: str, action: str = "fetch", *, timeout: float | None = None
) -> SourceError:
    """Map any fsspec/aiohttp/botocore failure to a one-line :class:`SourceError`.

    In this order: access denied, a timeout (``timeout`` seconds without an answer), an
    unreachable server, a redirect loop, an HTTP error status other than 404, not found.
    """
    shown = public_url(url)
    chain = list(_chain(exc))
    for err in chain:
        names = {cls.__name__ for cls in type(err).__mro__}
        if (
            isinstance(err, PermissionError)
            or names & _DENIED_NAMES
            or _status(err) in (401, 403)
            or _error_code(err) in _DENIED_CODES
        ):
            return SourceError(f"Access denied to {shown}: {_one_line(err)}")
    for err in chain:
        names = {cls.__name__ for cls in type(err).__mro__}
        if names & _TIMEOUT_NAMES or isinstance(err, TimeoutError):
            waited = f" after {timeout:g} s" if timeout is not None else ""
            return SourceError(
                f"No answer from {shown}{waited}: the server accepted the connection but did "
                "not respond (--timeout sets how long to wait)."
                if "Connect" not in type(err).__name__
                else f"Cannot reach {shown}: connecting timed out{waited} (--timeout)."
            )
    for err in chain:
        names = {cls.__name__ for cls in type(err).__mro__}
        if names & _UNREACHABLE_NAMES or isinstance(err, ConnectionError):
            return SourceError(f"Cannot reach {shown}: {_one_line(err)}")
    for err in chain:
        if "TooManyRedirects" in {cls.__name__ for cls in type(err).__mro__}:
            return SourceError(f"Too many redirects from {shown} (a redirect loop?)")
    for err in chain:
        status = _status(err)
        if status is not None and status >= 400 and status != 404:
            reason = getattr(err, "message", "") or _error_code(err) or ""
            reason = f" {_one_line(str(reason))}" if reason else ""
            return SourceError(f"HTTP error {status}{reason} from {shown}")
    for err in chain:
        if isinstance(err, FileNotFoundError) or _status(err) == 404:
            return SourceError(f"{shown} not found")
    if isinstance(exc, TypeError) and "keyword argument" in str(exc):
        return SourceError(f"Invalid fs-args for {shown}: {_one_line(exc)}")
    return SourceError(f"Cannot {action} {shown}: {type(exc).__name__}: {_one_line(exc)}")


# --------------------------------------------------------------------------- fsspec


def _filesystem(
    url: str, fs_args: Mapping[str, Any] | None, timeout: float | None = None
) -> tuple[Any, str]:
    """``(filesystem, path)`` for ``url``; SourceError on unknown protocols or bad options."""
    import fsspec.core

    options = storage_options(url, fs_args, timeout=timeout)
    scheme = _scheme(url) or "file"
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise SourceError(
                f"Unknown protocol {scheme!r} in {public_url(url)!r}: not an fsspec protocol "
                "(e.g. s3, gcs, abfs, https, file)"
            ) from exc
        raise SourceError(f"Invalid fs-args for {public_url(url)}: {_one_line(exc)}") from exc
    except ImportError as exc:
        raise SourceError(
            f"Cannot use protocol {scheme!r} for {public_url(url)!r}: {_one_line(exc)}"
        ) from exc
    except TypeError as exc:
        raise SourceError(f"Invalid fs-args for {public_url(url)}: {_one_line(exc)}") from exc
    except Exception as exc:
        raise _translate(exc, url, timeout=timeout) from exc
    return fs, str(path)


def _info(fs: Any, path: str, url: str, timeout: float | None) -> dict[str, Any]:
    """Fresh ``fs.info(path)`` (listing caches dropped first); SourceError on failure."""
    try:
        fs.invalidate_cache(path)
        info = fs.info(path)
    except Exception as exc:
        raise _translate(exc, url, timeout=timeout) from exc
    if not isinstance(info, dict):  # pragma: no cover - fsspec always returns a dict
        raise SourceError(f"Cannot fetch {public_url(url)}: no file information")
    if info.get("type") == "directory":
        raise SourceError(f"{public_url(url)} is a directory, not a .tar.gz file")
    return info


def _key_from_info(fs: Any, path: str, info: Mapping[str, Any], url: str) -> str | None:
    """The change key of a remote object: its ETag (or another validator), else ``fs.ukey``.

    HTTP servers without any validator give ``None``: fsspec's HTTP ``ukey`` never changes.
    """
    lowered = {str(key).lower(): value for key, value in info.items()}
    for field in ("etag", "content-md5", "md5hash", "digest", "last-modified"):
        value = lowered.get(field)
        if value:
            return str(value)
    if _scheme(url) in ("http", "https"):
        return None
    try:
        return str(fs.ukey(path))
    except Exception as exc:
        raise _translate(exc, url) from exc


def _file_name(url: str) -> str:
    """The last path component of ``url`` (query and fragment dropped), safe as a file name."""
    last = url.rsplit("::", 1)[-1]
    path = urllib.parse.urlsplit(last).path if "://" in last else last
    name = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "\\" in name or "\0" in name:
        return "source.tar.gz"
    return name


def remote_key(
    source: str, fs_args: Mapping[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> str | None:
    """The change key (ETag/ukey) of a remote source, without downloading it.

    ``None`` for local paths and index requirements (and HTTP servers without validators).
    Used by doit's ``uptodate`` to tell cheaply whether a remote sdist changed.
    """
    if not is_remote(source):
        return None
    fs, path = _filesystem(source, fs_args, timeout)
    info = _info(fs, path, source, timeout)
    return _key_from_info(fs, path, info, source)


def list_folder(
    location: str,
    *,
    base: Path,
    fs_args: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """The names of the entries of the folder ``location``: a local path (relative to
    ``base``), a ``file://`` URL or any fsspec URL (for HTTP(S), the links of the page the
    server gives for the folder, where it offers a listing). One listing, sorted."""
    if not is_remote(location):
        folder = local_path(location, base)
        try:
            return sorted(os.listdir(folder))
        except FileNotFoundError:
            raise SourceError(f"{location} not found ({folder})") from None
        except OSError as exc:
            raise SourceError(f"Cannot list {folder}: {_one_line(exc)}") from exc
    fs, path = _filesystem(location, fs_args, timeout)
    try:
        fs.invalidate_cache(path)
        found = fs.ls(path, detail=False)
    except Exception as exc:
        raise _translate(exc, location, "list", timeout=timeout) from exc
    names = set()
    for item in found:
        name = urllib.parse.unquote(str(item).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
        if name:
            names.add(name)
    return sorted(names)


# --------------------------------------------------------------------------- fetch


def fetch(
    source: str,
    workdir: Path | Callable[[], Path],
    *,
    base: Path,
    fs_args: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Fetched:
    """Get the sdist behind ``source`` as a local file.

    ``base`` anchors relative local paths (the project root for manifests, the CWD for the CLI).
    ``timeout``: seconds a remote server or index may stay silent before the fetch fails.
    The kind comes from :func:`source_kind`. Remote and index downloads land in ``workdir``
    (created; a function giving the folder is called only then), written under a temporary
    name and renamed, so a failed fetch leaves no partial file.
    """
    kind = source_kind(source, base)
    if kind == "local":
        return _fetch_local(source, base)
    folder = workdir if isinstance(workdir, Path) else workdir()
    if kind == "fsspec":
        return _fetch_fsspec(source, folder, fs_args, timeout)
    return _fetch_index(source, folder, timeout)


def _fetch_local(source: str, base: Path) -> Fetched:
    """A local tarball, used in place."""
    path = local_path(source, base)
    if not path.exists():
        raise SourceError(f"{source} not found ({path})")
    if not path.is_file():
        raise SourceError(f"{source} is not a file ({path})")
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise SourceError(f"Cannot read {path}: {_one_line(exc)}") from exc
    return Fetched(path=path, sha256=digest, ukey=None)


def _fetch_fsspec(
    source: str, workdir: Path, fs_args: Mapping[str, Any] | None, timeout: float
) -> Fetched:
    """Download an fsspec URL into ``workdir``; the key is read before the bytes."""
    fs, path = _filesystem(source, fs_args, timeout)
    info = _info(fs, path, source, timeout)
    key = _key_from_info(fs, path, info, source)
    workdir.mkdir(parents=True, exist_ok=True)
    dest = workdir / _file_name(source)
    fd, tmp = tempfile.mkstemp(dir=workdir, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        try:
            fs.get_file(path, tmp)
        except Exception as exc:
            raise _translate(exc, source, timeout=timeout) from exc
        digest = sha256_file(Path(tmp))
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return Fetched(path=dest, sha256=digest, ukey=key)


def _check_requirement(source: str) -> None:
    """SourceError unless ``source`` is a PEP 508 requirement (so it is safe to give pip)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(source)
    except InvalidRequirement as exc:
        raise SourceError(
            f"{public_url(source)!r} is neither an existing file, a URL (scheme://...) nor a valid "
            f"requirement: {_one_line(exc)}"
        ) from exc


def _fetch_index(source: str, workdir: Path, timeout: float) -> Fetched:
    """``pip download`` one sdist (no deps, no wheels) into ``workdir``.

    ``--no-build-isolation``: pip prepares the sdist's metadata with the build backend installed
    here, so no build dependencies are downloaded (Kedro's isolated call needed setuptools from
    the index). pip still runs that backend, as any ``pip download`` of an sdist does.
    """
    _check_requirement(source)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".pip-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--no-build-isolation",
            "--no-input",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--timeout",
            f"{timeout:g}",
            "--dest",
            tmp,
            "--",
            source,
        ]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise SourceError(f"Cannot run pip: {_one_line(exc)}") from exc
        if proc.returncode != 0:
            lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            last = lines[-1].strip() if lines else f"exit code {proc.returncode}"
            raise SourceError(f"pip download {public_url(source)!r} failed: {public_url(last)}")
        found = sorted(Path(tmp).glob("*.tar.gz"))
        if len(found) != 1:
            names = [p.name for p in sorted(Path(tmp).iterdir())]
            raise SourceError(_PIP_SDIST_TEXT.format(names=names))
        dest = workdir / found[0].name
        os.replace(found[0], dest)
    return Fetched(path=dest, sha256=sha256_file(dest), ukey=None)
