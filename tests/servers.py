"""Test servers on 127.0.0.1 (pytest fixtures): S3 (moto), an HTTP file server that wants a
token header, and a PEP 503 package index. ``tests/conftest.py`` star-imports this module.

Fixtures:

* ``s3_server`` (session): a moto S3 server in a thread; yields an :class:`S3Server` (endpoint,
  dummy credentials, ``make_bucket``, ``put``, ``fs_args``/``write_fs_args``).
* ``s3`` (function): the same server with the AWS environment pointing at it (dummy
  credentials, ``AWS_ENDPOINT_URL``, no config files, no instance metadata), so a bare
  ``s3://bucket/key`` works without fs-args.
* ``s3_bucket`` (function): a fresh bucket name on that server (uses ``s3``).
* ``http_server`` (function): an :class:`HTTPFileServer` serving a fresh folder; GET and HEAD,
  ETag, byte ranges; 401 without ``Authorization: token <token>``, 403 with a wrong one.
* ``https_server`` (function): the same over TLS with a self-signed certificate
  (``cafile``); its ``fs_args()`` add ``ssl: false``.
* ``index_server`` (function): an :class:`IndexServer`, a static PEP 503 index; sets
  ``PIP_INDEX_URL`` (and ``PIP_RETRIES=0``) for the test. ``publish(sdist)`` adds a file.
* ``unused_port`` (function): a port with nothing listening on 127.0.0.1.
* ``trouble_server`` (function): base URL of an HTTP server where ``/status/<code>/<name>``
  answers ``<code>`` and ``/loop/<name>`` redirects to itself forever.
* ``silent_server`` (function): base URL of a server that accepts connections and never answers
  (closed when the test ends).

Helpers: :func:`make_sdist` writes a small, pip-buildable sdist with :mod:`tarfile`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import ipaddress
import os
import secrets
import shutil
import socket
import ssl
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

__all__ = [
    "HTTPFileServer",
    "IndexServer",
    "S3Server",
    "find_free_port",
    "http_server",
    "https_server",
    "index_server",
    "make_sdist",
    "s3",
    "s3_bucket",
    "s3_server",
    "silent_server",
    "trouble_server",
    "unused_port",
    "wait_for_port",
]

HOST = "127.0.0.1"


def find_free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout}s") from None
            time.sleep(0.02)


def _write_yaml(path: Path, data: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path


class _Threaded:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (free port) served from a daemon thread."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
    ) -> None:
        self.httpd = ThreadingHTTPServer((HOST, 0), handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        wait_for_port(self.port)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------- sdists


def make_sdist(
    folder: Path,
    name: str = "demo-pipe",
    version: str = "0.1",
    files: Mapping[str, str | bytes] | None = None,
    requires: tuple[str, ...] = (),
) -> Path:
    """Write ``<folder>/<name_>-<version>.tar.gz``: PKG-INFO, a setuptools ``pyproject.toml``
    and ``<name_>/__init__.py`` (plus ``files``, relative to the top folder). pip can prepare
    its metadata offline (``--no-build-isolation``). Byte-stable for the same inputs."""
    module = name.replace("-", "_").replace(".", "_").lower()
    top = f"{module}-{version}"
    deps = "".join(f"Requires-Dist: {r}\n" for r in requires)
    members: dict[str, str | bytes] = {
        "PKG-INFO": f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n{deps}",
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
            f"dependencies = {list(requires)!r}\n\n"
            f'[tool.setuptools]\npackages = ["{module}"]\n'
        ),
        f"{module}/__init__.py": f'__version__ = "{version}"\n',
    }
    members.update(files or {})
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{top}.tar.gz"
    with tarfile.open(target, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(members):
            content = members[rel]
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return target


# --------------------------------------------------------------------------- S3 (moto)


@dataclass(frozen=True)
class S3Server:
    """A moto S3 endpoint with its dummy credentials."""

    endpoint_url: str
    key: str = "testing"
    secret: str = "testing"
    region: str = "us-east-1"

    def fs_args(self) -> dict[str, Any]:
        """Storage options for s3fs (the ``--fs-args`` YAML form)."""
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def write_fs_args(self, path: Path) -> Path:
        """Write :meth:`fs_args` as YAML to ``path``; return it."""
        return _write_yaml(path, self.fs_args())

    def client(self) -> Any:
        """A boto3 S3 client for this server (explicit credentials; no environment needed)."""
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default); return its name."""
        bucket = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Upload ``data`` to ``s3://bucket/key``; return that URL."""
        self.client().put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 (own thread, free port) for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    wait_for_port(port)
    try:
        yield S3Server(endpoint_url=f"http://{HOST}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server`` with the AWS environment aimed at it (dummy creds, endpoint, no files)."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_server


@pytest.fixture
def s3_bucket(s3: S3Server) -> str:
    """A fresh, empty bucket on the test S3 server."""
    return s3.make_bucket()


# --------------------------------------------------------------------------- HTTP file server


@dataclass
class HTTPFileServer:
    """A token-protected static file server (``root``) on 127.0.0.1."""

    root: Path
    port: int
    token: str
    scheme: str = "http"
    cafile: Path | None = None
    """For ``https``: the server's self-signed certificate (PEM)."""
    log: list[tuple[str, str, int]] = field(default_factory=list)
    """``(method, path, status)`` of every request, in order."""
    basic: tuple[str, str] | None = None
    """``(user, password)`` also accepted as HTTP Basic auth (``http://user:pw@host/...``)."""

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    def url(self, name: str) -> str:
        """The URL of ``root/name``."""
        return f"{self.base_url}/{name.lstrip('/')}"

    def put(self, name: str, data: bytes) -> str:
        """Write ``root/name``; return its URL."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.url(name)

    def fs_args(self, token: str | None = None) -> dict[str, Any]:
        """The seed's fs-args form: ``{"Authorization": "token <t>"}`` (plus ``ssl: false``
        for the self-signed ``https`` server)."""
        args: dict[str, Any] = {"Authorization": f"token {token or self.token}"}
        if self.scheme == "https":
            args["ssl"] = False
        return args

    def write_fs_args(self, path: Path, token: str | None = None) -> Path:
        """Write :meth:`fs_args` as YAML to ``path``; return it."""
        return _write_yaml(path, self.fs_args(token))


def _file_handler(server: HTTPFileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] = {}) -> None:
            server.log.append((self.command, self.path, status))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            auth = self.headers.get("Authorization")
            if server.basic is not None and auth is not None and auth.startswith("Basic "):
                expected = base64.b64encode(":".join(server.basic).encode()).decode()
                auth = f"token {server.token}" if auth == f"Basic {expected}" else "wrong"
            if auth is None:
                return self._reply(401, b"token required", {"WWW-Authenticate": "token"})
            if auth != f"token {server.token}":
                return self._reply(403, b"bad token")
            rel = self.path.split("?", 1)[0].lstrip("/")
            path = (server.root / rel).resolve()
            if server.root.resolve() not in path.parents or not path.is_file():
                return self._reply(404, b"not found")
            data = path.read_bytes()
            etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
            headers = {"ETag": etag, "Content-Type": "application/gzip", "Accept-Ranges": "bytes"}
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and "," not in ranged:
                first, _, last = ranged[6:].partition("-")
                start = int(first) if first else max(len(data) - int(last), 0)
                end = min(int(last), len(data) - 1) if first and last else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                return self._reply(206, data[start : end + 1], headers)
            return self._reply(200, data, headers)

        do_GET = _serve
        do_HEAD = _serve

    return Handler


@pytest.fixture
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPFileServer]:
    """A fresh token-protected HTTP file server (GET/HEAD, ETag, ranges) on 127.0.0.1."""
    root = tmp_path_factory.mktemp("http-root")
    state = HTTPFileServer(root=root, port=0, token=secrets.token_hex(8))
    threaded = _Threaded(_file_handler(state))
    state.port = threaded.port
    try:
        yield state
    finally:
        threaded.stop()


def _self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: ``(certfile, keyfile)`` in PEM."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@pytest.fixture
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPFileServer]:
    """``http_server`` over TLS (self-signed certificate ``cafile``; ``fs_args()`` adds
    ``ssl: false``, an aiohttp request option that the header rule keeps as an option)."""
    root = tmp_path_factory.mktemp("https-root")
    certfile, keyfile = _self_signed_cert(tmp_path_factory.mktemp("tls"))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certfile, keyfile)
    state = HTTPFileServer(
        root=root, port=0, token=secrets.token_hex(8), scheme="https", cafile=certfile
    )
    threaded = _Threaded(_file_handler(state), tls)
    state.port = threaded.port
    try:
        yield state
    finally:
        threaded.stop()


# --------------------------------------------------------------------------- package index


@dataclass
class IndexServer:
    """A static PEP 503 "simple" index served from ``root`` on 127.0.0.1."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        """The index URL (``.../simple/``), as pip's ``--index-url`` wants it."""
        return f"http://{HOST}:{self.port}/simple/"

    def publish(self, sdist: Path) -> str:
        """Add a distribution file to the index; return its download URL."""
        from packaging.utils import canonicalize_name, parse_sdist_filename

        project, _ = parse_sdist_filename(sdist.name)
        name = canonicalize_name(project)
        packages = self.root / "packages"
        packages.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sdist, packages / sdist.name)
        self._write_project(name)
        return f"http://{HOST}:{self.port}/packages/{sdist.name}"

    def _write_project(self, name: str) -> None:
        from packaging.utils import canonicalize_name, parse_sdist_filename

        links = []
        for file in sorted((self.root / "packages").iterdir()):
            if canonicalize_name(parse_sdist_filename(file.name)[0]) != name:
                continue
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            href = html.escape(f"../../packages/{file.name}#sha256={digest}")
            links.append(f'<a href="{href}">{html.escape(file.name)}</a><br>')
        project_dir = self.root / "simple" / name
        project_dir.mkdir(parents=True, exist_ok=True)
        (project_dir / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n",
            encoding="utf-8",
        )
        projects = sorted(p.name for p in (self.root / "simple").iterdir() if p.is_dir())
        (self.root / "simple" / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n"
            + "\n".join(f'<a href="{p}/">{p}</a><br>' for p in projects)
            + "\n</body></html>\n",
            encoding="utf-8",
        )


@pytest.fixture
def index_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IndexServer]:
    """A fresh PEP 503 index on 127.0.0.1; ``PIP_INDEX_URL`` points at it for the test."""
    root = tmp_path_factory.mktemp("index-root")
    (root / "simple").mkdir()
    (root / "simple" / "index.html").write_text("<!DOCTYPE html><html></html>\n")

    def handler(*args: Any, **kwargs: Any) -> SimpleHTTPRequestHandler:
        return _QuietStaticHandler(*args, directory=str(root), **kwargs)

    threaded = _Threaded(handler)  # type: ignore[arg-type]
    state = IndexServer(root=root, port=threaded.port)
    monkeypatch.setenv("PIP_INDEX_URL", state.url)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "10")
    try:
        yield state
    finally:
        threaded.stop()


class _QuietStaticHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# --------------------------------------------------------------------------- misc


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    return find_free_port()


@pytest.fixture
def trouble_server() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: ``/status/<code>/...`` answers ``<code>``, ``/loop/...``
    redirects to itself (GET and HEAD)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = self.path.split("/")
            if len(parts) > 2 and parts[1] == "status" and parts[2].isdigit():
                self.send_response(int(parts[2]))
                self.send_header("Content-Length", "0")
            else:
                self.send_response(302)
                self.send_header("Location", self.path)
                self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = _serve
        do_HEAD = _serve

    threaded = _Threaded(Handler)
    try:
        yield f"http://{HOST}:{threaded.port}"
    finally:
        threaded.stop()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: accepts every connection, reads nothing, answers nothing."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
