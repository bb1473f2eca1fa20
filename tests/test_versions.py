"""Versions a source offers (``micropkg outdated``): sibling files in a local folder, on S3
(moto on loopback) and in an HTTP folder listing; an index's simple API (PEP 503 and 691)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from servers import IndexServer, S3Server, _Threaded, make_sdist

from micropkg_tasks.errors import SourceError
from micropkg_tasks.versions import VersionFinder, pip_index_urls, sdist_name_version


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def _versions(finder: VersionFinder, source: str, **kw: Any) -> list[tuple[str, str]]:
    return [(r.version, r.source) for r in finder.releases(source, **kw)]


def test_sdist_file_names() -> None:
    assert sdist_name_version("data_science-0.1.tar.gz") == ("data-science", _v("0.1"))
    assert sdist_name_version("Data.Science-1.0rc1.tar.gz") == ("data-science", _v("1.0rc1"))
    assert sdist_name_version("latest.tar.gz") is None
    assert sdist_name_version("ds-0.1.zip") is None


def _v(text: str) -> Any:
    from packaging.version import Version

    return Version(text)


def test_local_folder_siblings_in_pep440_order(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _touch(
        dist,
        "ds-0.1.tar.gz",
        "ds-0.10.tar.gz",
        "ds-0.9.tar.gz",
        "ds-1.0rc1.tar.gz",
        "ds-0.2.dev1.tar.gz",
        "ds_other-5.0.tar.gz",
        "dsx-9.tar.gz",
        "ds-2.0.whl",
        "notes.txt",
    )
    finder = VersionFinder(tmp_path)
    assert _versions(finder, "dist/ds-0.1.tar.gz") == [
        ("0.1", "dist/ds-0.1.tar.gz"),
        ("0.9", "dist/ds-0.9.tar.gz"),
        ("0.10", "dist/ds-0.10.tar.gz"),
    ]
    pre = VersionFinder(tmp_path, pre=True)
    assert [v for v, _ in _versions(pre, "dist/ds-0.1.tar.gz")] == [
        "0.1",
        "0.2.dev1",
        "0.9",
        "0.10",
        "1.0rc1",
    ]
    # file:// URLs and absolute paths give sources of the same form.
    url = f"file://{dist}/ds-0.1.tar.gz"
    assert _versions(finder, url)[-1] == ("0.10", f"file://{dist}/ds-0.10.tar.gz")


def test_a_source_without_a_version_in_its_name_offers_nothing(tmp_path: Path) -> None:
    _touch(tmp_path / "dist", "latest.tar.gz", "latest-0.2.tar.gz")
    assert VersionFinder(tmp_path).releases("dist/latest.tar.gz") == []


def test_each_folder_is_listed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import micropkg_tasks.sources as sources

    _touch(tmp_path / "dist", "a-0.1.tar.gz", "a-0.2.tar.gz", "b-1.0.tar.gz", "b-1.1.tar.gz")
    calls: list[str] = []
    real = sources.list_folder

    def counting(location: str, **kw: Any) -> list[str]:
        calls.append(location)
        return real(location, **kw)

    monkeypatch.setattr(sources, "list_folder", counting)
    finder = VersionFinder(tmp_path)
    assert finder.releases("dist/a-0.1.tar.gz")[-1].version == "0.2"
    assert finder.releases("dist/b-1.0.tar.gz")[-1].version == "1.1"
    assert calls == ["dist/"]


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        VersionFinder(tmp_path).releases("gone/a-0.1.tar.gz")


def test_s3_folder(s3: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    for name in ("ds-0.1.tar.gz", "ds-0.3.tar.gz", "ds-0.2.tar.gz", "other-9.0.tar.gz"):
        s3.put(s3_bucket, f"micropkgs/{name}", b"x")
    s3.put(s3_bucket, "elsewhere/ds-9.0.tar.gz", b"x")
    releases = VersionFinder(tmp_path).releases(f"s3://{s3_bucket}/micropkgs/ds-0.1.tar.gz")
    assert [(r.version, r.source) for r in releases] == [
        ("0.1", f"s3://{s3_bucket}/micropkgs/ds-0.1.tar.gz"),
        ("0.2", f"s3://{s3_bucket}/micropkgs/ds-0.2.tar.gz"),
        ("0.3", f"s3://{s3_bucket}/micropkgs/ds-0.3.tar.gz"),
    ]


def test_s3_with_fs_args(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.make_bucket()
    s3_server.put(bucket, "ds-0.1.tar.gz", b"x")
    s3_server.put(bucket, "ds-0.4.tar.gz", b"x")
    finder = VersionFinder(tmp_path)
    releases = finder.releases(f"s3://{bucket}/ds-0.1.tar.gz", fs_args=s3_server.fs_args())
    assert releases[-1].source == f"s3://{bucket}/ds-0.4.tar.gz"


def test_http_folder_listing(index_server: IndexServer, tmp_path: Path) -> None:
    # The index fixture's static server also answers a folder with an HTML listing.
    _touch(index_server.root / "files", "ds-0.1.tar.gz", "ds-0.2.tar.gz")
    url = f"http://127.0.0.1:{index_server.port}/files/ds-0.1.tar.gz"
    releases = VersionFinder(tmp_path).releases(url)
    assert [r.source for r in releases] == [url, url.replace("ds-0.1", "ds-0.2")]


def test_pep503_index(index_server: IndexServer, tmp_path: Path) -> None:
    for version in ("0.1", "0.2", "0.3b1"):
        index_server.publish(make_sdist(tmp_path / "sdists", "data-science", version))
    index_server.publish(make_sdist(tmp_path / "sdists", "other", "7.0"))
    finder = VersionFinder(tmp_path)
    assert _versions(finder, "data-science==0.1") == [
        ("0.1", "data-science==0.1"),
        ("0.2", "data-science==0.2"),
    ]
    assert VersionFinder(tmp_path, pre=True).releases("Data_Science")[-1].source == (
        "Data_Science==0.3b1"
    )
    assert finder.releases("unknown-project") == []


class _Pep691(BaseHTTPRequestHandler):
    """A PEP 691 JSON index that also knows yanked files; HTML for anything else."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        files = [
            {"filename": "ds-0.1.tar.gz", "url": "x", "hashes": {}},
            {"filename": "ds-0.2.tar.gz", "url": "x", "hashes": {}, "yanked": "broken"},
            {"filename": "ds-0.3-py3-none-any.whl", "url": "x", "hashes": {}},
            {"filename": "ds-0.1.5.tar.gz", "url": "x", "hashes": {}},
        ]
        if self.path != "/simple/ds/":
            self.send_response(404)
            self.end_headers()
            return
        if "application/vnd.pypi.simple.v1+json" not in self.headers.get("Accept", ""):
            self.send_response(406)
            self.end_headers()
            return
        body = json.dumps({"meta": {"api-version": "1.0"}, "name": "ds", "files": files})
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def json_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = _Threaded(_Pep691)
    url = f"http://127.0.0.1:{server.port}/simple/"
    monkeypatch.setenv("PIP_INDEX_URL", url)
    try:
        yield url
    finally:
        server.stop()


def test_pep691_json_index_skips_yanked_files_and_wheels(json_index: str, tmp_path: Path) -> None:
    assert _versions(VersionFinder(tmp_path), "ds") == [("0.1", "ds==0.1"), ("0.1.5", "ds==0.1.5")]


def test_unreachable_index_is_one_error(
    unused_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", f"http://user:secret@127.0.0.1:{unused_port}/simple/")
    with pytest.raises(SourceError, match="Cannot reach") as info:
        VersionFinder(tmp_path).releases("ds==0.1")
    assert "secret" not in str(info.value)


def test_pip_index_urls_follow_pips_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {
        "global.index-url": "https://global/simple",
        "download.index-url": "https://download/simple/",
        "global.extra-index-url": "https://extra1/simple https://extra2/simple",
    }
    assert pip_index_urls(config) == [
        "https://download/simple/",
        "https://extra1/simple/",
        "https://extra2/simple/",
    ]
    assert pip_index_urls({**config, ":env:.index-url": "http://env/simple"})[0] == (
        "http://env/simple/"
    )
    assert pip_index_urls({}) == ["https://pypi.org/simple/"]
    # The real ``pip config list`` sees the environment variable.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    assert pip_index_urls() == ["http://127.0.0.1:9/simple/"]


def test_file_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder of files per project (what `pip download --dest` and local mirrors make).
    _touch(tmp_path / "simple" / "ds", "ds-0.1.tar.gz", "ds-0.4.tar.gz")
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "simple").as_uri())
    assert VersionFinder(tmp_path).releases("ds")[-1].source == "ds==0.4"
