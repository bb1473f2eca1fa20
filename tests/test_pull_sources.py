"""``micropkg pull SOURCE`` through the real CLI, one test per kind of source.

Source sdists are made with our own ``micropkg package`` in a second project; every pull runs
in the ``project`` fixture (``demo_proj``) against servers on 127.0.0.1 (moto S3, a token-guarded
HTTP(S) file server, a PEP 503 index).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from projects import add_pipeline, tree_snapshot, write
from servers import HTTPFileServer, IndexServer, S3Server

from micropkg_tasks._compat import tomllib

TARBALL = "data_proc-0.1.tar.gz"
OTHER = "other-0.1.tar.gz"
"""The name failing pulls use (a different doit task than the successful pulls)."""
PIPELINE = "src/demo_proj/data_proc/pipeline.py"
PARAMS = "conf/base/parameters_data_proc.yml"
TEST_FILE = "tests/data_proc/test_pipeline.py"

Cli = Callable[..., Any]


@pytest.fixture(autouse=True)
def _fresh_filesystems() -> None:
    """Drop fsspec's cached S3/HTTP filesystem instances: each test brings its own AWS
    environment, and a cached s3fs instance would keep the credentials of an earlier test."""
    import fsspec

    for protocol in ("s3", "http", "https"):
        fsspec.get_filesystem_class(protocol).clear_instance_cache()


@pytest.fixture
def sdist(
    project: Path,
    project_factory: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
) -> Path:
    """``data_proc-0.1.tar.gz`` packaged by ``micropkg package`` in a source project; the CWD is
    the consumer project (``project``) again afterwards."""
    source = project_factory("src_proj")
    add_pipeline(source, "data_proc", requirements="alpha>=1.0\n")
    monkeypatch.chdir(source)
    result = cli("package", "pipelines.data_proc")
    assert result.code == 0, result.err
    monkeypatch.chdir(project)
    tarball = source / "dist" / TARBALL
    assert tarball.is_file()
    return tarball


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS credentials, endpoint or config from the environment: fs-args must do it all."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def lock_entry(root: Path, module: str = "data_proc") -> dict[str, Any]:
    """The ``micropkg.lock`` table of ``module``."""
    with (root / "micropkg.lock").open("rb") as fh:
        entry: dict[str, Any] = tomllib.load(fh)["micropkg"][module]
    return entry


def assert_pulled(root: Path, result: Any, source: str | None = None) -> dict[str, Any]:
    """Exit 0, code/params/tests placed with rewritten imports; returns the lock entry (whose
    source is checked when ``source`` is given)."""
    assert result.code == 0, result.err
    assert "pulled and unpacked" in result.out, result.out
    pipeline = root / PIPELINE
    assert pipeline.is_file()
    assert "from demo_proj.data_proc.nodes import helper" in pipeline.read_text()
    assert (root / "src/demo_proj/data_proc/nodes.py").is_file()
    assert (root / PARAMS).read_text() == "data_proc:\n  rate: 0.5\n"
    test_file = root / TEST_FILE
    assert test_file.is_file()
    assert "from demo_proj.data_proc.pipeline import create_pipeline" in test_file.read_text()
    assert "alpha>=1.0" in (root / "requirements.in").read_text().splitlines()
    entry = lock_entry(root)
    assert entry["version"] == "0.1"
    assert entry["package"] == "data_proc"
    assert PIPELINE in entry["files"]
    if source is not None:
        assert entry["source"] == source
    return entry


def assert_one_error(result: Any, *fragments: str) -> str:
    """Exit 1 and exactly one line on stderr, ``Error: ...`` containing ``fragments``."""
    assert result.code == 1, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    line: str = lines[0]
    return line


# --------------------------------------------------------------------------- local paths


def test_local_relative_path(project: Path, sdist: Path, cli: Cli) -> None:
    rel = os.path.relpath(sdist, project)
    result = cli("pull", rel)
    entry = assert_pulled(project, result, source=rel)
    assert (project / entry["source"]).resolve() == sdist.resolve()


def test_local_relative_to_cwd_in_subfolder(
    project: Path, sdist: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``src/demo_proj``, a relative SOURCE is relative to the CWD, and is recorded
    relative to the project root."""
    sub = project / "src" / "demo_proj"
    monkeypatch.chdir(sub)
    result = cli("pull", os.path.relpath(sdist, sub))
    entry = assert_pulled(project, result, source=os.path.relpath(sdist, project))
    assert (project / entry["source"]).resolve() == sdist.resolve()


def test_local_absolute_path(project: Path, sdist: Path, cli: Cli) -> None:
    result = cli("pull", str(sdist))
    entry = assert_pulled(project, result)
    assert (project / entry["source"]).resolve() == sdist.resolve()


def test_local_file_url(project: Path, sdist: Path, cli: Cli) -> None:
    url = sdist.resolve().as_uri()
    assert url.startswith("file:///")
    assert_pulled(project, cli("pull", url), source=url)


# --------------------------------------------------------------------------- S3


def test_s3_with_fs_args_yaml_only(
    project: Path,
    sdist: Path,
    cli: Cli,
    s3_server: S3Server,
    no_aws_env: None,
    tmp_path: Path,
) -> None:
    """Credentials and endpoint come only from the ``--fs-args`` YAML (no AWS environment)."""
    bucket = s3_server.make_bucket()
    url = s3_server.put(bucket, f"pkgs/{TARBALL}", sdist.read_bytes())
    fs_args = s3_server.write_fs_args(tmp_path / "creds" / "s3.yml")
    assert "endpoint_url" in fs_args.read_text()
    assert_pulled(project, cli("pull", url, "--fs-args", str(fs_args)), source=url)


def test_s3_without_fs_args_and_without_environment_fails(
    project: Path, sdist: Path, cli: Cli, s3_server: S3Server, no_aws_env: None
) -> None:
    """Control for the test above: without fs-args nothing points at the local endpoint."""
    bucket = s3_server.make_bucket()
    url = s3_server.put(bucket, f"pkgs/{TARBALL}", sdist.read_bytes())
    assert_one_error(cli("pull", url), "credentials")
    assert not (project / PIPELINE).exists()


def test_s3_from_environment(project: Path, sdist: Path, cli: Cli, s3: S3Server) -> None:
    bucket = s3.make_bucket()
    url = s3.put(bucket, TARBALL, sdist.read_bytes())
    entry = assert_pulled(project, cli("pull", url), source=url)
    assert entry["sha256"] == hashlib.sha256(sdist.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- HTTP(S)


@pytest.mark.parametrize("server_fixture", ["http_server", "https_server"])
def test_http_with_seed_authorization_header(
    project: Path,
    sdist: Path,
    cli: Cli,
    request: pytest.FixtureRequest,
    server_fixture: str,
    tmp_path: Path,
) -> None:
    """The seed's fs-args form: a top-level ``Authorization: token <t>`` line."""
    server: HTTPFileServer = request.getfixturevalue(server_fixture)
    url = server.put(f"pkgs/{TARBALL}", sdist.read_bytes())
    fs_args = server.write_fs_args(tmp_path / "http.yml")
    assert fs_args.read_text().splitlines()[0] == f"Authorization: token {server.token}"
    assert_pulled(project, cli("pull", url, "--fs-args", str(fs_args)), source=url)
    assert any(method == "GET" and status in (200, 206) for method, _, status in server.log)
    assert all(status != 401 for _, _, status in server.log), server.log


# --------------------------------------------------------------------------- package index


@pytest.mark.parametrize("requirement", ["data_proc==0.1", "data_proc"])
def test_package_index(
    project: Path, sdist: Path, cli: Cli, index_server: IndexServer, requirement: str
) -> None:
    index_server.publish(sdist)
    assert_pulled(project, cli("pull", requirement), source=requirement)


# --------------------------------------------------------------------------- errors


@pytest.fixture
def pulled(project: Path, sdist: Path, cli: Cli) -> Path:
    """The consumer after one successful pull as ``warm`` (a lock, requirements.in and doit
    state exist; the doit task is ``pull:warm``, so the failing pulls below use other names)."""
    assert cli("pull", str(sdist), "--alias", "warm").code == 0
    assert (project / "src/demo_proj/warm/pipeline.py").is_file()
    return project


Case = tuple[list[str], tuple[str, ...]]
"""The arguments after ``pull`` and the fragments the error line must contain."""


def _unknown_protocol(**_: Any) -> Case:
    return ["unsupported://x/y.tar.gz"], ("unsupported",)


def _missing_s3_object(s3: S3Server, **_: Any) -> Case:
    return [f"s3://{s3.make_bucket()}/nope/{OTHER}"], ("not found",)


def _http_404(http: HTTPFileServer, tmp: Path, **_: Any) -> Case:
    fs_args = http.write_fs_args(tmp / "h.yml")
    return [http.url(OTHER), "--fs-args", str(fs_args)], ("not found",)


def _http_403_wrong_token(http: HTTPFileServer, tmp: Path, sdist: Path, **_: Any) -> Case:
    url = http.put(OTHER, sdist.read_bytes())
    fs_args = http.write_fs_args(tmp / "h.yml", token="wrong")
    return [url, "--fs-args", str(fs_args)], ("Access denied", "403")


def _http_401_no_header(http: HTTPFileServer, sdist: Path, **_: Any) -> Case:
    return [http.put(OTHER, sdist.read_bytes())], ("Access denied", "401")


def _unreachable(port: int, tmp: Path, **_: Any) -> Case:
    fs_args = write(tmp / "h.yml", "Authorization: token x\n")
    return [f"http://127.0.0.1:{port}/{OTHER}", "--fs-args", str(fs_args)], ("Cannot reach",)


def _s3_unreachable(port: int, tmp: Path, **_: Any) -> Case:
    fs_args = write(
        tmp / "s3.yml",
        f"""
        key: k
        secret: s
        client_kwargs:
          endpoint_url: http://127.0.0.1:{port}
        config_kwargs:
          retries:
            max_attempts: 1
        """,
    )
    return [f"s3://bucket/{OTHER}", "--fs-args", str(fs_args)], ("Cannot reach",)


def _missing_local(tmp: Path, **_: Any) -> Case:
    return [str(tmp / "nowhere" / OTHER)], ("not found",)


def _missing_fs_args(sdist: Path, tmp: Path, **_: Any) -> Case:
    return [str(sdist), "--fs-args", str(tmp / "missing.yml")], ("missing.yml",)


ERROR_CASES: dict[str, Callable[..., Case]] = {
    "unknown-protocol": _unknown_protocol,
    "missing-s3-object": _missing_s3_object,
    "http-404": _http_404,
    "http-403-wrong-token": _http_403_wrong_token,
    "http-401-no-header": _http_401_no_header,
    "http-unreachable": _unreachable,
    "s3-unreachable": _s3_unreachable,
    "missing-local-tarball": _missing_local,
    "missing-fs-args-file": _missing_fs_args,
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_pull_errors_leave_project_untouched(
    pulled: Path,
    sdist: Path,
    cli: Cli,
    s3: S3Server,
    http_server: HTTPFileServer,
    unused_port: int,
    tmp_path: Path,
    case: str,
) -> None:
    """One ``Error:`` line, exit 1, and not one byte of the project changed (doit state,
    ``micropkg.lock`` and ``requirements.in`` included)."""
    args, fragments = ERROR_CASES[case](
        s3=s3, http=http_server, tmp=tmp_path, sdist=sdist, port=unused_port
    )
    before = tree_snapshot(pulled, with_state=True)
    result = cli("pull", *args)
    assert_one_error(result, *fragments)
    assert "pulled and unpacked" not in result.out
    assert tree_snapshot(pulled, with_state=True) == before


def test_failed_pull_in_fresh_project_writes_nothing(
    project: Path, cli: Cli, tmp_path: Path
) -> None:
    before = tree_snapshot(project, with_state=True)
    assert_one_error(cli("pull", str(tmp_path / "nowhere" / TARBALL)), "not found")
    assert tree_snapshot(project, with_state=True) == before


def test_sha256_pin_mismatch_in_manifest(pulled: Path, sdist: Path, cli: Cli) -> None:
    rel = os.path.relpath(sdist, pulled)
    with (pulled / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[tool.kedro.micropkg.pull]\n"{rel}" = {{sha256 = "{"0" * 64}"}}\n')
    before = tree_snapshot(pulled)
    result = cli("pull", "--all")
    assert_one_error(result, "sha256 mismatch", "0" * 64)
    assert tree_snapshot(pulled) == before


def test_sha256_pin_match_in_manifest(project: Path, sdist: Path, cli: Cli) -> None:
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    rel = os.path.relpath(sdist, project)
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[tool.kedro.micropkg.pull]\n"{rel}" = {{sha256 = "{digest.upper()}"}}\n')
    result = cli("pull", "--all")
    assert result.code == 0, result.err
    assert "Micro-packages pulled and unpacked!" in result.out
    assert lock_entry(project)["sha256"] == digest


# --------------------------------------------------------------------------- manifest fs-args


@pytest.mark.parametrize("key", ["fs-args", "fs_args"])
def test_manifest_fs_args_relative_to_project_root(
    project: Path,
    sdist: Path,
    cli: Cli,
    s3_server: S3Server,
    no_aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
) -> None:
    """``fs-args = "s3.yml"`` (the docs' spelling) and ``fs_args``, found from the project root
    even when the CWD is a subfolder."""
    bucket = s3_server.make_bucket()
    url = s3_server.put(bucket, TARBALL, sdist.read_bytes())
    s3_server.write_fs_args(project / "s3.yml")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[tool.kedro.micropkg.pull]\n"{url}" = {{{key} = "s3.yml"}}\n')
    monkeypatch.chdir(project / "conf")
    result = cli("pull", "--all")
    assert result.code == 0, result.err
    assert f"Pulled and unpacked '{url}'!" in result.out
    assert "Micro-packages pulled and unpacked!" in result.out
    assert_pulled(project, result, source=url)
