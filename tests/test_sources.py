"""sources: local/fsspec/index fetches against real servers on 127.0.0.1 (S3, HTTP, index)."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from servers import HTTPFileServer, IndexServer, S3Server, make_sdist

from micropkg_tasks import sources
from micropkg_tasks.errors import SourceError
from micropkg_tasks.publish import publish
from micropkg_tasks.sources import (
    fetch,
    is_remote,
    load_fs_args,
    remote_key,
    source_kind,
    storage_options,
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sdist(tmp_path: Path) -> Path:
    return make_sdist(tmp_path / "dist", "demo-pipe", "0.2")


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("s3://bucket/x.tar.gz", "fsspec"),
        ("https://host/x.tar.gz", "fsspec"),
        ("simplecache::s3://bucket/x.tar.gz", "fsspec"),
        ("unsupported://x", "fsspec"),
        ("file:///abs/x.tar.gz", "local"),
        ("dist/missing-0.1.tar.gz", "local"),
        ("./some/dir", "local"),
        ("/abs/thing", "local"),
        ("my-pipeline==0.2", "index"),
        ("my-pipeline", "index"),
        ("name @ https://host/x.tar.gz", "index"),
    ],
)
def test_source_kind(source: str, kind: str, tmp_path: Path) -> None:
    assert source_kind(source, tmp_path) == kind


def test_source_kind_existing_path_is_local(tmp_path: Path) -> None:
    (tmp_path / "archive.tgz").write_bytes(b"x")
    (tmp_path / "my-pipeline").mkdir()
    assert source_kind("archive.tgz", tmp_path) == "local"
    assert source_kind("my-pipeline", tmp_path) == "local"


@pytest.mark.parametrize(
    ("location", "remote"),
    [
        ("s3://b/k", True),
        ("https://h/x", True),
        ("gcs://b/x", True),
        ("file:///tmp/x", False),
        ("/tmp/x", False),
        ("dist", False),
        ("C:\\dist", False),
    ],
)
def test_is_remote(location: str, remote: bool) -> None:
    assert is_remote(location) is remote


# --------------------------------------------------------------------------- fs-args


def test_load_fs_args(tmp_path: Path) -> None:
    assert load_fs_args(None) == {}
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert load_fs_args(empty) == {}
    good = tmp_path / "good.yml"
    good.write_text("fs_arg_1: 1\nfs_arg_2:\n  fs_arg_2_nested_1: 2\n")
    assert load_fs_args(good) == {"fs_arg_1": 1, "fs_arg_2": {"fs_arg_2_nested_1": 2}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "fs-args file not found"),
        ("key: [unclosed\n", "Invalid YAML in fs-args file"),
        ("- a\n- b\n", "must hold a mapping of storage options, got list"),
        ("1: x\n", "keys must be strings"),
    ],
)
def test_load_fs_args_errors(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "fs.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SourceError, match=message) as info:
        load_fs_args(path)
    assert "\n" not in str(info.value)


def test_http_header_rule() -> None:
    options = storage_options(
        "https://h/x.tar.gz",
        {
            "Authorization": "token abc",
            "X-Retries": 3,
            "ssl": False,
            "block_size": 0,
            "client_kwargs": {"headers": {"x-retries": "5"}, "trust_env": False},
        },
    )
    assert options == {
        "ssl": False,
        "block_size": 0,
        "client_kwargs": {
            "headers": {"Authorization": "token abc", "x-retries": "5"},
            "trust_env": False,
        },
    }
    # other protocols: unchanged
    s3_args = {"key": "k", "Authorization": "x"}
    assert storage_options("s3://b/k", s3_args) == s3_args


@pytest.mark.parametrize("bad", [{"extra": {"nested": 1}}, {"flag": True}, {"bad header": "x"}])
def test_http_header_rule_rejects_non_headers(bad: dict[str, Any]) -> None:
    with pytest.raises(SourceError, match="neither an HTTP filesystem option nor a request header"):
        storage_options("http://h/x", bad)


# --------------------------------------------------------------------------- local


def test_fetch_local_relative_absolute_and_file_url(tmp_path: Path, sdist: Path) -> None:
    base = tmp_path
    workdir = tmp_path / "work"
    expected = sha(sdist)
    for source in (
        "dist/demo_pipe-0.2.tar.gz",
        str(sdist),
        sdist.as_uri(),
        "file://dist/demo_pipe-0.2.tar.gz",
    ):
        got = fetch(source, workdir, base=base)
        assert got == sources.Fetched(path=sdist, sha256=expected, ukey=None)
    assert not workdir.exists()  # local files are used in place


def test_fetch_local_relative_to_base_not_cwd(
    tmp_path: Path, sdist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sdist.parent)
    with pytest.raises(SourceError, match="not found"):
        fetch("demo_pipe-0.2.tar.gz", tmp_path / "w", base=tmp_path)
    assert fetch("demo_pipe-0.2.tar.gz", tmp_path / "w", base=sdist.parent).path == sdist


def test_fetch_local_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^dist/nope-0\.1\.tar\.gz not found \("):
        fetch("dist/nope-0.1.tar.gz", tmp_path / "w", base=tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(SourceError, match="is not a file"):
        fetch("./folder", tmp_path / "w", base=tmp_path)


# --------------------------------------------------------------------------- S3 (moto)


def test_fetch_s3_with_fs_args_yaml(
    s3_server: S3Server, tmp_path: Path, sdist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No AWS environment at all: endpoint and credentials come from the YAML only.
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bucket = s3_server.make_bucket()
    url = s3_server.put(bucket, "micropkgs/demo_pipe-0.2.tar.gz", sdist.read_bytes())
    yml = tmp_path / "fs_args.yml"
    yml.write_text(
        f"key: {s3_server.key}\nsecret: {s3_server.secret}\n"
        f"client_kwargs:\n  endpoint_url: {s3_server.endpoint_url}\n"
    )

    got = fetch(url, tmp_path / "work", base=tmp_path, fs_args=load_fs_args(yml))

    assert got.path == tmp_path / "work" / "demo_pipe-0.2.tar.gz"
    assert got.sha256 == sha(sdist) == sha(got.path)
    head = s3_server.client().head_object(Bucket=bucket, Key="micropkgs/demo_pipe-0.2.tar.gz")
    assert got.ukey == head["ETag"]
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["demo_pipe-0.2.tar.gz"]


def test_fetch_s3_from_environment(
    s3: S3Server, s3_bucket: str, tmp_path: Path, sdist: Path
) -> None:
    url = s3.put(s3_bucket, "demo_pipe-0.2.tar.gz", sdist.read_bytes())
    got = fetch(url, tmp_path / "work", base=tmp_path)
    assert got.sha256 == sha(sdist)


def test_publish_to_s3_then_fetch_back(
    s3: S3Server, s3_bucket: str, tmp_path: Path, sdist: Path
) -> None:
    url = publish(sdist, f"s3://{s3_bucket}/team/", s3.fs_args())
    assert url == f"s3://{s3_bucket}/team/demo_pipe-0.2.tar.gz"
    got = fetch(url, tmp_path / "work", base=tmp_path, fs_args=s3.fs_args())
    assert got.sha256 == sha(sdist)
    assert got.ukey == remote_key(url, s3.fs_args())


def test_remote_key_stable_then_changes_after_reupload(
    s3: S3Server, s3_bucket: str, tmp_path: Path, sdist: Path
) -> None:
    url = publish(sdist, f"s3://{s3_bucket}", s3.fs_args())
    first = remote_key(url, s3.fs_args())
    assert first is not None
    assert remote_key(url, s3.fs_args()) == first
    assert remote_key(url) == first  # environment credentials: same object, same key

    changed = make_sdist(tmp_path / "v2", "demo-pipe", "0.2", files={"extra.txt": "new"})
    assert publish(changed, f"s3://{s3_bucket}", s3.fs_args()) == url
    second = remote_key(url, s3.fs_args())
    assert second != first
    assert fetch(url, tmp_path / "w", base=tmp_path).sha256 == sha(changed)


def test_remote_key_none_for_local(sdist: Path) -> None:
    assert remote_key(str(sdist)) is None
    assert remote_key(sdist.as_uri()) is None
    assert remote_key("demo-pipe==0.2") is None


def test_publish_to_file_url(tmp_path: Path, sdist: Path) -> None:
    dest = tmp_path / "shared" / "nested"
    url = publish(sdist, dest.as_uri())
    assert url == dest.as_uri() + "/demo_pipe-0.2.tar.gz"
    assert sha(dest / sdist.name) == sha(sdist)
    assert sorted(p.name for p in dest.iterdir()) == [sdist.name]


@pytest.mark.parametrize("key", ["missing-0.1.tar.gz", "sub/missing-0.1.tar.gz"])
def test_s3_missing_object(s3: S3Server, s3_bucket: str, tmp_path: Path, key: str) -> None:
    url = f"s3://{s3_bucket}/{key}"
    with pytest.raises(SourceError, match=rf"^{url} not found$"):
        fetch(url, tmp_path / "w", base=tmp_path)
    with pytest.raises(SourceError, match="not found"):
        remote_key(url)
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_s3_missing_bucket(s3: S3Server, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        fetch("s3://no-such-bucket-xyz/a-0.1.tar.gz", tmp_path / "w", base=tmp_path)


def test_s3_unreachable(s3: S3Server, unused_port: int, tmp_path: Path) -> None:
    fs_args = {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{unused_port}"},
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
    started = time.monotonic()
    with pytest.raises(
        SourceError,
        match=rf"^Cannot reach s3://bucket/a-0\.1\.tar\.gz: .*127\.0\.0\.1:{unused_port}",
    ):
        fetch("s3://bucket/a-0.1.tar.gz", tmp_path / "w", base=tmp_path, fs_args=fs_args)
    assert time.monotonic() - started < 15


def test_publish_to_missing_bucket_is_one_line_error(s3: S3Server, sdist: Path) -> None:
    with pytest.raises(SourceError) as info:
        publish(sdist, "s3://no-such-bucket-xyz/dir", s3.fs_args())
    assert "no-such-bucket-xyz" in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_s3_fs_args(s3: S3Server, tmp_path: Path) -> None:
    with pytest.raises(
        SourceError, match=r"^Invalid fs-args for s3://b/a-0\.1\.tar\.gz: .*no_such_option"
    ):
        fetch("s3://b/a-0.1.tar.gz", tmp_path / "w", base=tmp_path, fs_args={"no_such_option": 1})


def test_publish_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        publish(tmp_path / "nope.tar.gz", "s3://b/x")


# --------------------------------------------------------------------------- HTTP


def test_fetch_http_with_seed_authorization_header(
    http_server: HTTPFileServer, tmp_path: Path, sdist: Path
) -> None:
    url = http_server.put("releases/demo_pipe-0.2.tar.gz", sdist.read_bytes())
    yml = http_server.write_fs_args(tmp_path / "fs_args.yml")
    assert yml.read_text() == f"Authorization: token {http_server.token}\n"  # the seed's form

    got = fetch(url, tmp_path / "work", base=tmp_path, fs_args=load_fs_args(yml))

    assert got.sha256 == sha(sdist)
    assert got.path.name == "demo_pipe-0.2.tar.gz"
    assert got.ukey == f'"{sha(sdist)[:32]}"'  # the server's ETag
    assert all(status == 200 for _, _, status in http_server.log)


def test_fetch_https_with_seed_header_and_ssl_option(
    https_server: HTTPFileServer, tmp_path: Path, sdist: Path
) -> None:
    url = https_server.put("demo_pipe-0.2.tar.gz", sdist.read_bytes())
    assert url.startswith("https://127.0.0.1:")
    yml = https_server.write_fs_args(tmp_path / "fs_args.yml")
    assert yml.read_text() == f"Authorization: token {https_server.token}\nssl: false\n"
    got = fetch(url, tmp_path / "work", base=tmp_path, fs_args=load_fs_args(yml))
    assert got.sha256 == sha(sdist)
    assert got.ukey == remote_key(url, load_fs_args(yml)) is not None
    # Without the token: denied; with verification on, the self-signed certificate is refused.
    with pytest.raises(SourceError, match=r"^Access denied to https://.*: 401"):
        fetch(url, tmp_path / "w2", base=tmp_path, fs_args={"ssl": False})
    with pytest.raises(SourceError, match=r"^Cannot reach https://.*certificate"):
        fetch(url, tmp_path / "w3", base=tmp_path, fs_args={"Authorization": "token x"})


def test_s3_access_denied_mapping() -> None:
    # moto's server accepts any credentials (checked: wrong key/secret still read objects), so
    # the S3 denial path is checked on botocore's error shape; missing credentials for real below.
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    error = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}, "ResponseMetadata": {}},
        "HeadObject",
    )
    try:
        raise PermissionError("Access Denied") from error
    except PermissionError as exc:
        message = str(sources._translate(exc, "s3://b/k.tar.gz"))
    assert message == "Access denied to s3://b/k.tar.gz: Access Denied"


def test_s3_missing_credentials(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = s3_server.put(s3_server.make_bucket(), "a-0.1.tar.gz", b"abc")
    fs_args = {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}}
    with pytest.raises(SourceError, match=r"^Access denied to s3://.*Unable to locate credentials"):
        fetch(url, tmp_path / "w", base=tmp_path, fs_args=fs_args)


def test_http_remote_key_uses_head_and_tracks_etag(
    http_server: HTTPFileServer, tmp_path: Path, sdist: Path
) -> None:
    url = http_server.put("demo_pipe-0.2.tar.gz", sdist.read_bytes())
    fs_args = http_server.fs_args()
    first = remote_key(url, fs_args)
    assert remote_key(url, fs_args) == first
    assert {method for method, _, _ in http_server.log} == {"HEAD"}  # no download
    http_server.put("demo_pipe-0.2.tar.gz", b"other bytes")
    assert remote_key(url, fs_args) not in (None, first)


def test_fetch_http_query_string_name(
    http_server: HTTPFileServer, tmp_path: Path, sdist: Path
) -> None:
    http_server.put("demo_pipe-0.2.tar.gz", sdist.read_bytes())
    url = http_server.url("demo_pipe-0.2.tar.gz?download=1")
    got = fetch(url, tmp_path / "w", base=tmp_path, fs_args=http_server.fs_args())
    assert got.path.name == "demo_pipe-0.2.tar.gz"


@pytest.mark.parametrize(
    ("fs_args", "status"),
    [(None, 401), ({"Authorization": "token wrong"}, 403)],
    ids=["missing-token", "wrong-token"],
)
def test_http_access_denied(
    http_server: HTTPFileServer,
    tmp_path: Path,
    sdist: Path,
    fs_args: dict[str, str] | None,
    status: int,
) -> None:
    url = http_server.put("demo_pipe-0.2.tar.gz", sdist.read_bytes())
    with pytest.raises(SourceError, match=rf"^Access denied to {url}: {status}") as info:
        fetch(url, tmp_path / "w", base=tmp_path, fs_args=fs_args)
    assert "\n" not in str(info.value)
    with pytest.raises(SourceError, match=r"^Access denied"):
        remote_key(url, fs_args)


def test_http_not_found(http_server: HTTPFileServer, tmp_path: Path) -> None:
    url = http_server.url("missing-0.1.tar.gz")
    with pytest.raises(SourceError, match=rf"^{url} not found$"):
        fetch(url, tmp_path / "w", base=tmp_path, fs_args=http_server.fs_args())


def test_http_unreachable(unused_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port}/x-0.1.tar.gz"
    with pytest.raises(SourceError, match=rf"^Cannot reach {url}: ") as info:
        fetch(url, tmp_path / "w", base=tmp_path)
    assert "\n" not in str(info.value)


def test_credentials_in_url_are_redacted(unused_port: int, tmp_path: Path) -> None:
    url = f"http://user:hunter2@127.0.0.1:{unused_port}/x.tar.gz"
    with pytest.raises(SourceError) as info:
        fetch(url, tmp_path / "w", base=tmp_path)
    assert "hunter2" not in str(info.value) and "user" not in str(info.value)
    assert f"http://127.0.0.1:{unused_port}/x.tar.gz" in str(info.value)


def test_unknown_protocol(tmp_path: Path) -> None:
    with pytest.raises(
        SourceError, match=r"^Unknown protocol 'unsupported' in 'unsupported://x': "
    ):
        fetch("unsupported://x", tmp_path / "w", base=tmp_path)
    with pytest.raises(SourceError, match=r"^Unknown protocol"):
        remote_key("unsupported://x")


# --------------------------------------------------------------------------- index (pip download)


def test_fetch_from_index(index_server: IndexServer, tmp_path: Path) -> None:
    old = make_sdist(tmp_path / "dist1", "demo-pipe", "0.1")
    new = make_sdist(tmp_path / "dist2", "demo-pipe", "0.2")
    index_server.publish(old)
    index_server.publish(new)
    workdir = tmp_path / "cache"

    got = fetch("demo-pipe==0.1", workdir, base=tmp_path)
    assert got == sources.Fetched(workdir / old.name, sha(old), None)
    latest = fetch("Demo_Pipe", workdir, base=tmp_path)
    assert latest.path == workdir / new.name and latest.sha256 == sha(new)
    assert sorted(p.name for p in workdir.iterdir()) == [old.name, new.name]  # no temp dirs left


def test_index_missing_version(index_server: IndexServer, tmp_path: Path) -> None:
    index_server.publish(make_sdist(tmp_path / "d", "demo-pipe", "0.1"))
    with pytest.raises(
        SourceError,
        match=r"^pip download 'demo-pipe==9\.9' failed: "
        r"ERROR: No matching distribution found for demo-pipe==9\.9$",
    ):
        fetch("demo-pipe==9.9", tmp_path / "w", base=tmp_path)


def test_index_requirement_is_not_an_option(index_server: IndexServer, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nor a valid requirement"):
        fetch("--index-url=http://evil/", tmp_path / "w", base=tmp_path)


def test_index_needs_exactly_one_sdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        dest = Path(command[command.index("--dest") + 1])
        (dest / "a-0.1.tar.gz").write_bytes(b"a")
        (dest / "b-0.1.tar.gz").write_bytes(b"b")
        assert command[-2:] == ["--", "a"]
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr("micropkg_tasks.sources.subprocess.run", fake_run)
    with pytest.raises(
        SourceError,
        match=r"^More than 1 or no sdist files found: \['a-0\.1\.tar\.gz', 'b-0\.1\.tar\.gz'\]\. "
        r"There has to be exactly one source distribution file\.$",
    ):
        fetch("a", tmp_path / "w", base=tmp_path)


def test_module_import_is_cheap() -> None:
    code = (
        "import sys, micropkg_tasks.sources; print('fsspec' in sys.modules, 'yaml' in sys.modules)"
    )
    out = subprocess.run(
        [__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
