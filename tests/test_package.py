"""``micropkg package``: what goes into the sdist, names, versions, messages, destinations."""

from __future__ import annotations

import email.parser
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from projects import add_pipeline, make_project, write

REFERENCE_REQUIREMENTS = (
    "pandas>=1.0  # inline\n"
    "# comment\n"
    'requests[security]==2.*; python_version>"3.8"\n'
    "PyYAML\n"
    "\n"
    "scikit_learn~=1.0\n"
)


def members(tarball: Path) -> list[str]:
    """Regular-file members of a tarball."""
    with tarfile.open(tarball) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def read_member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        fh = tar.extractfile(name)
        assert fh is not None
        return fh.read()


@pytest.fixture
def reference(project: Path) -> Path:
    """The reference scenario of kedro-0.19-reference.md §9."""
    code = add_pipeline(project, "data_proc", requirements=REFERENCE_REQUIREMENTS)
    write(code / "utils/__init__.py", "")
    write(
        code / "utils/tools.py",
        "import demo_proj.pipelines.data_proc.nodes\n"
        "from demo_proj.pipelines.data_proc.nodes import helper\n\n\n"
        "def run():\n"
        "    return demo_proj.pipelines.data_proc.nodes.helper(1), helper(2)\n",
    )
    write(code / "README.md", "# data_proc\n")
    write(code / "data.csv", "a,b\n1,2\n")
    write(code / "__pycache__/nodes.cpython-311.pyc", "junk")
    write(code / ".ipynb_checkpoints/nodes-checkpoint.py", "junk")
    write(code / ".DS_Store", "junk")
    conf = project / "conf"
    write(conf / "base/parameters/data_proc/p1.yml", "p1: 1\n")
    write(conf / "base/parameters/deep/data_proc.yml", "deep: 1\n")
    write(conf / "base/data_proc/anything.txt", "not a parameter file\n")
    write(conf / "base/sub/parameters_data_proc.yml", "sub: 1\n")
    write(conf / "base/catalog_data_proc.yml", "catalog: 1\n")
    write(conf / "base/parameters_data_proc_extra.yml", "extra: 1\n")
    write(conf / "local/parameters_data_proc.yml", "local: 1\n")
    return project


def test_reference_scenario_contents(reference: Path, cli) -> None:
    result = cli("package", "pipelines.data_proc")
    assert result.code == 0, result.err
    assert result.out.strip() == (
        f"'demo_proj.pipelines.data_proc' packaged! Location: {reference / 'dist'}"
    )
    tarball = reference / "dist/data_proc-0.1.tar.gz"
    top = "data_proc-0.1"
    assert members(tarball) == sorted(
        f"{top}/{name}"
        for name in [
            "MANIFEST.in",
            "PKG-INFO",
            "pyproject.toml",
            "data_proc/README.md",
            "data_proc/__init__.py",
            "data_proc/data.csv",
            "data_proc/nodes.py",
            "data_proc/pipeline.py",
            "data_proc/requirements.txt",
            "data_proc/utils/__init__.py",
            "data_proc/utils/tools.py",
            "data_proc/config/parameters_data_proc.yml",
            "data_proc/config/parameters/data_proc/p1.yml",
            "data_proc/config/parameters/deep/data_proc.yml",
            "data_proc/config/sub/parameters_data_proc.yml",
            "tests/__init__.py",
            "tests/test_pipeline.py",
        ]
    )
    info = email.parser.HeaderParser().parsestr(read_member(tarball, f"{top}/PKG-INFO").decode())
    assert info["Metadata-Version"] == "2.2"
    assert info["Name"] == "data_proc"
    assert info["Version"] == "0.1"
    assert info.get_all("Requires-Dist") == [
        "pandas>=1.0",
        'requests[security]==2.*; python_version > "3.8"',
        "PyYAML",
        "scikit_learn~=1.0",
    ]
    assert info.get_all("Dynamic") is None
    tools = read_member(tarball, f"{top}/data_proc/utils/tools.py").decode()
    assert tools == (
        "import data_proc.nodes\n"
        "from data_proc.nodes import helper\n\n\n"
        "def run():\n"
        "    return data_proc.nodes.helper(1), helper(2)\n"
    )
    test_file = read_member(tarball, f"{top}/tests/test_pipeline.py").decode()
    assert "from data_proc.pipeline import create_pipeline" in test_file
    # data files and parameter files are copied byte for byte
    assert read_member(tarball, f"{top}/data_proc/data.csv") == b"a,b\n1,2\n"
    assert read_member(tarball, f"{top}/data_proc/config/parameters/deep/data_proc.yml") == (
        b"deep: 1\n"
    )


def test_alias_renames_package_config_files_and_imports(reference: Path, cli) -> None:
    result = cli("package", "pipelines.data_proc", "--alias", "dp_alias")
    assert result.code == 0, result.err
    assert "'demo_proj.pipelines.data_proc' packaged as 'dp_alias'! Location:" in result.out
    tarball = reference / "dist/dp_alias-0.1.tar.gz"
    config = [m.split("/config/", 1)[1] for m in members(tarball) if "/config/" in m]
    assert sorted(config) == [
        "parameters/data_proc/p1.yml",
        "parameters/deep/dp_alias.yml",
        "parameters_dp_alias.yml",
        "sub/parameters_dp_alias.yml",
    ]
    pipeline = read_member(tarball, "dp_alias-0.1/dp_alias/pipeline.py").decode()
    assert "from dp_alias.nodes import helper" in pipeline


def test_pep625_file_name_and_top_folder(project: Path, cli) -> None:
    add_pipeline(project, "data_proc")
    assert cli("package", "pipelines.data_proc", "--alias", "MyPipe").code == 0
    tarball = project / "dist/mypipe-0.1.tar.gz"
    names = members(tarball)
    assert all(n.startswith("mypipe-0.1/") for n in names)
    assert "mypipe-0.1/MyPipe/__init__.py" in names


@pytest.mark.parametrize(
    ("own", "project_version", "expected"),
    [("2.0.1", "0.1", "2.0.1"), (None, "0.3", "0.3"), ("01.2.0rc1", "0.1", "1.2.0rc1")],
)
def test_version_is_read_statically(
    project: Path, cli, own: str | None, project_version: str, expected: str
) -> None:
    add_pipeline(project, "data_proc", version=own)
    init = project / "src/demo_proj/__init__.py"
    init.write_text(init.read_text().replace('"0.1"', f'"{project_version}"'))
    # user code that would fail if it were imported
    write(project / "src/demo_proj/pipelines/data_proc/boom.py", "raise SystemExit('imported!')\n")
    assert cli("package", "pipelines.data_proc").code == 0
    assert (project / f"dist/data_proc-{expected}.tar.gz").is_file()


def test_version_defaults_to_0_1(project: Path, cli) -> None:
    add_pipeline(project, "data_proc", version=None)
    (project / "src/demo_proj/__init__.py").write_text("")
    assert cli("package", "pipelines.data_proc").code == 0
    assert (project / "dist/data_proc-0.1.tar.gz").is_file()


def test_nested_module_and_non_portable_import_warning(reference: Path, cli) -> None:
    result = cli("package", "pipelines.data_proc.utils")
    assert result.code == 0, result.err
    names = members(reference / "dist/utils-0.1.tar.gz")
    assert "utils-0.1/utils/tools.py" in names
    assert not any("pipeline.py" in n for n in names)
    assert "Warning:" in result.err
    assert "demo_proj.pipelines.data_proc.nodes" in result.err
    assert "portable" in result.err


def test_micropackage_named_like_the_project_package(project: Path, cli) -> None:
    add_pipeline(project, "demo_proj")
    assert cli("package", "pipelines.demo_proj").code == 0
    tarball = project / "dist/demo_proj-0.1.tar.gz"
    assert "demo_proj-0.1/demo_proj/pipeline.py" in members(tarball)
    pipeline = read_member(tarball, "demo_proj-0.1/demo_proj/pipeline.py").decode()
    assert "from demo_proj.nodes import helper" in pipeline


def test_micropackage_without_init_gets_an_empty_one(project: Path, cli) -> None:
    write(project / "src/demo_proj/utils/helpers.py", "X = 1\n")
    assert cli("package", "utils").code == 0
    tarball = project / "dist/utils-0.1.tar.gz"
    assert read_member(tarball, "utils-0.1/utils/__init__.py") == b""


@pytest.mark.parametrize(
    "spelling", ["pipelines.data_proc", "pipelines/data_proc", "src/demo_proj/pipelines/data_proc"]
)
def test_module_path_spellings(project: Path, cli, spelling: str) -> None:
    add_pipeline(project, "data_proc")
    result = cli("package", spelling)
    assert result.code == 0, result.err
    assert "'demo_proj.pipelines.data_proc' packaged!" in result.out


def test_destination_relative_to_cwd_and_env(project: Path, cli, monkeypatch) -> None:
    add_pipeline(project, "data_proc", env="local")
    sub = project / "notebooks"
    sub.mkdir()
    monkeypatch.chdir(sub)
    result = cli("package", "pipelines.data_proc", "-d", "out/here", "-e", "local")
    assert result.code == 0, result.err
    tarball = sub / "out/here/data_proc-0.1.tar.gz"
    assert f"Location: {sub / 'out/here'}" in result.out
    assert "data_proc-0.1/data_proc/config/parameters_data_proc.yml" in members(tarball)


def test_manifest_in_tool_micropkg_with_root_relative_destination(
    project_factory, cli, monkeypatch
) -> None:
    root = project_factory(
        manifest='[tool.micropkg.package]\n"pipelines.data_proc" = {destination = "artefacts"}\n'
    )
    add_pipeline(root, "data_proc")
    (root / "src").mkdir(exist_ok=True)
    monkeypatch.chdir(root / "src")
    result = cli("package", "--all")
    assert result.code == 0, result.err
    assert "Packaged 'pipelines.data_proc' micro-package!" in result.out
    assert "Micro-packages packaged!" in result.out
    assert (root / "artefacts/data_proc-0.1.tar.gz").is_file()


def test_kedro_018_layout_and_conf_source(tmp_path: Path, cli, monkeypatch) -> None:
    root = make_project(tmp_path / "old", kedro_version="0.18.14")
    shutil.move(root / "tests", root / "src/tests")
    write(root / "src/demo_proj/settings.py", 'CONF_SOURCE = "configuration"\n')
    add_pipeline(root, "data_proc", params=False)
    shutil.move(root / "tests/pipelines/data_proc", root / "src/tests/pipelines/data_proc")
    shutil.rmtree(root / "tests")
    write(root / "configuration/base/parameters/data_proc.yml", "x: 1\n")
    monkeypatch.chdir(root)
    assert cli("package", "pipelines.data_proc").code == 0
    names = members(root / "dist/data_proc-0.1.tar.gz")
    assert "data_proc-0.1/tests/test_pipeline.py" in names
    assert "data_proc-0.1/data_proc/config/parameters/data_proc.yml" in names


def test_sdist_is_byte_reproducible(reference: Path, cli) -> None:
    assert cli("package", "pipelines.data_proc").code == 0
    tarball = reference / "dist/data_proc-0.1.tar.gz"
    first = hashlib.sha256(tarball.read_bytes()).hexdigest()
    shutil.rmtree(reference / "dist")
    shutil.rmtree(reference / ".micropkg")
    for path in (reference / "src").rglob("*.py"):
        os.utime(path, (time.time() + 100, time.time() + 100))
    assert cli("package", "pipelines.data_proc").code == 0
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() == first


def test_publish_to_s3(reference: Path, cli, s3, s3_bucket: str) -> None:
    import fsspec

    url = f"s3://{s3_bucket}/micropkgs"
    result = cli("package", "pipelines.data_proc", "-d", url)
    assert result.code == 0, result.err
    assert f"Location: {url}" in result.out
    fs = fsspec.filesystem("s3")
    data = fs.cat(f"{s3_bucket}/micropkgs/data_proc-0.1.tar.gz")
    local = reference / "local.tar.gz"
    local.write_bytes(data)
    assert "data_proc-0.1/data_proc/utils/tools.py" in members(local)
    assert not (reference / "dist").exists()
    # unchanged inputs and the object still there: nothing is uploaded again
    assert cli("package", "pipelines.data_proc", "-d", url).out.strip().endswith(url)
    info = fs.info(f"{s3_bucket}/micropkgs/data_proc-0.1.tar.gz")
    again = cli("package", "pipelines.data_proc", "-d", url)
    assert "is up to date" in again.out
    assert fs.info(f"{s3_bucket}/micropkgs/data_proc-0.1.tar.gz")["ETag"] == info["ETag"]
    # the object was deleted remotely: it is published again
    fs.rm(f"{s3_bucket}/micropkgs/data_proc-0.1.tar.gz")
    assert "packaged!" in cli("package", "pipelines.data_proc", "-d", url).out
    assert fs.exists(f"{s3_bucket}/micropkgs/data_proc-0.1.tar.gz")


def test_publish_to_unreachable_bucket_is_one_error_line(
    reference: Path, cli, s3, unused_port: int, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{unused_port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = cli("package", "pipelines.data_proc", "-d", "s3://nowhere/x")
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.err


def test_killed_build_leaves_no_partial_tarball(project: Path) -> None:
    code = add_pipeline(project, "data_proc")
    # a large, incompressible data file makes the write take a while
    (code / "blob.bin").write_bytes(os.urandom(64 * 1024 * 1024))
    proc = subprocess.Popen(
        [sys.executable, "-m", "micropkg_tasks", "package", "pipelines.data_proc"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dist = project / "dist"
    deadline = time.time() + 30
    while time.time() < deadline and not (dist.exists() and any(dist.iterdir())):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (dist / "data_proc-0.1.tar.gz").exists()
    assert not list(dist.glob("*.tar.gz"))


def test_code_config_folder_warns_and_clashes_are_errors(project: Path, cli) -> None:
    code = add_pipeline(project, "data_proc")
    write(code / "config/settings.yml", "a: 1\n")
    result = cli("package", "pipelines.data_proc")
    assert result.code == 0, result.err
    assert "Warning:" in result.err and "config" in result.err
    write(code / "config/parameters_data_proc.yml", "clash: 1\n")
    result = cli("package", "pipelines.data_proc")
    assert result.code == 1
    assert "would be the same file in the sdist" in result.err


@pytest.mark.parametrize("keep_going", [False, True])
def test_all_stops_at_a_failure_unless_keep_going(
    project_factory, cli, monkeypatch, keep_going: bool
) -> None:
    root = project_factory(
        manifest='[tool.kedro.micropkg.package]\n"pipelines.alpha" = {}\n'
        '"pipelines.beta" = {}\n"pipelines.gamma" = {}\n'
    )
    for name in ("alpha", "beta", "gamma"):
        add_pipeline(root, name)
    # beta fails while it is built: its own config/ clashes with a parameter file
    write(root / "src/demo_proj/pipelines/beta/config/parameters_beta.yml", "x: 1\n")
    monkeypatch.chdir(root)
    result = cli("package", "--all", *(["--keep-going"] if keep_going else []))
    assert result.code == 1
    built = sorted(p.name for p in (root / "dist").iterdir())
    if keep_going:
        assert built == ["alpha-0.1.tar.gz", "gamma-0.1.tar.gz"]
        assert "Error: 1 of 3 micro-packages failed: pipelines.beta" in result.err
    else:
        assert built == ["alpha-0.1.tar.gz"]
    assert "would be the same file in the sdist" in result.err
