"""``micropkg pull``: placement, round trips, hostile archives, atomicity, upgrades, conflicts."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from projects import add_pipeline, make_project, tree_snapshot, write

import micropkg_tasks.journal as journal_module

PKG_REQUIREMENTS = "pandas>=1.0\nPyYAML\nscikit_learn~=1.0\n"


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> Path:
    """A source project with pipeline ``data_proc``; returns its root (tarballs in dist/)."""
    root = make_project(tmp_path / "source")
    code = add_pipeline(root, "data_proc", requirements=PKG_REQUIREMENTS)
    write(code / "utils/__init__.py", "")
    write(
        code / "utils/tools.py",
        "import demo_proj.pipelines.data_proc.nodes\n"
        "from ..nodes import helper\n\n\n"
        "def run():\n"
        '    """Calls demo_proj.pipelines.data_proc.nodes."""\n'
        "    return demo_proj.pipelines.data_proc.nodes.helper(1), helper(2)\n",
    )
    write(code / "sql/query.sql", "select 1;\n")
    write(
        root / "tests/pipelines/data_proc/test_patch.py",
        "from unittest import mock\n\n\n"
        "def test_patch():\n"
        '    with mock.patch("demo_proj.pipelines.data_proc.nodes.helper") as m:\n'
        "        assert m is not None\n",
    )
    write(root / "conf/base/parameters/data_proc/p1.yml", "p1: 1\n")
    write(root / "conf/base/parameters/deep/data_proc.yml", "deep: 1\n")
    monkeypatch.chdir(root)
    assert cli("package", "pipelines.data_proc").code == 0
    assert cli("package", "pipelines.data_proc", "--alias", "another_pipeline").code == 0
    return root


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A second project (package ``consumer_pkg``) as the CWD."""
    root = make_project(tmp_path / "consumer", package="consumer_pkg")
    monkeypatch.chdir(root)
    return root


def sdist(source: Path, name: str = "data_proc") -> str:
    return str(source / f"dist/{name}-0.1.tar.gz")


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize("env", [None, "local"])
@pytest.mark.parametrize(
    ("alias", "destination", "module"),
    [
        (None, None, "data_proc"),
        ("beta", None, "beta"),
        ("beta", "pipelines", "pipelines.beta"),
        (None, "pipelines", "pipelines.data_proc"),
        ("beta", "pipelines.nested", "pipelines.nested.beta"),
        ("beta", "pipelines/nested", "pipelines.nested.beta"),
    ],
)
def test_placement(
    source: Path,
    consumer: Path,
    cli,
    env: str | None,
    alias: str | None,
    destination: str | None,
    module: str,
) -> None:
    args = ["pull", sdist(source)]
    if alias:
        args += ["--alias", alias]
    if destination:
        args += ["-d", destination]
    if env:
        args += ["-e", env]
    result = cli(*args)
    assert result.code == 0, result.err
    as_alias = f" as '{alias}'" if alias else ""
    assert f"Micro-package {sdist(source)} pulled and unpacked{as_alias}!" in result.out

    parts = module.split(".")
    name = parts[-1]
    code = consumer.joinpath("src/consumer_pkg", *parts)
    assert sorted(files_under(code)) == [
        "__init__.py",
        "nodes.py",
        "pipeline.py",
        "requirements.txt",
        "sql/query.sql",
        "utils/__init__.py",
        "utils/tools.py",
    ]
    tests = consumer.joinpath("tests", *parts)
    assert sorted(files_under(tests)) == ["__init__.py", "test_patch.py", "test_pipeline.py"]
    conf = consumer / "conf" / (env or "base")
    assert (conf / f"parameters_{name}.yml").read_text() == "data_proc:\n  rate: 0.5\n"
    assert (conf / "parameters/data_proc/p1.yml").read_text() == "p1: 1\n"
    assert (conf / f"parameters/deep/{name}.yml").read_text() == "deep: 1\n"
    # new intermediate folders become packages, in src/ and tests/
    for depth in range(1, len(parts)):
        assert consumer.joinpath("src/consumer_pkg", *parts[:depth], "__init__.py").is_file()
        assert consumer.joinpath("tests", *parts[:depth], "__init__.py").is_file()
    full = f"consumer_pkg.{module}"
    pipeline = (code / "pipeline.py").read_text()
    assert f"from {full}.nodes import helper" in pipeline
    tools = (code / "utils/tools.py").read_text()
    assert tools.startswith(f"import {full}.nodes\nfrom ..nodes import helper\n")
    assert f"return {full}.nodes.helper(1), helper(2)" in tools
    patch = (tests / "test_patch.py").read_text()
    assert f'mock.patch("{full}.nodes.helper")' in patch


def test_round_trip_is_byte_identical(source: Path, monkeypatch, cli) -> None:
    """Package with an alias, pull back at the original place: code, tests, params identical."""
    original_code = files_under(source / "src/demo_proj/pipelines/data_proc")
    original_tests = files_under(source / "tests/pipelines/data_proc")
    original_params = (source / "conf/base/parameters_data_proc.yml").read_bytes()
    shutil.rmtree(source / "src/demo_proj/pipelines/data_proc")
    shutil.rmtree(source / "tests/pipelines/data_proc")
    for rel in ("parameters_data_proc.yml", "parameters/data_proc/p1.yml"):
        (source / "conf/base" / rel).unlink()
    (source / "conf/base/parameters/deep/data_proc.yml").unlink()
    result = cli(
        "pull",
        "dist/another_pipeline-0.1.tar.gz",
        "--alias",
        "data_proc",
        "--destination",
        "pipelines",
    )
    assert result.code == 0, result.err
    assert files_under(source / "src/demo_proj/pipelines/data_proc") == original_code
    assert files_under(source / "tests/pipelines/data_proc") == original_tests
    assert (source / "conf/base/parameters_data_proc.yml").read_bytes() == original_params


def test_requirements_go_to_requirements_in(source: Path, consumer: Path, cli) -> None:
    write(consumer / "requirements.txt", "kedro~=0.19.15\n-r extra.txt\npandas<2,>=1.0\n")
    result = cli("pull", sdist(source))
    assert result.code == 0, result.err
    assert (consumer / "requirements.txt").read_text() == (
        "kedro~=0.19.15\n-r extra.txt\npandas<2,>=1.0\n"
    )
    assert (consumer / "requirements.in").read_text() == (
        "kedro~=0.19.15\n-r extra.txt\npandas<2,>=1.0\n"
        "\n"
        "# Additional requirements from micro-package `data_proc`:\n"
        "PyYAML\n"
        "pandas>=1.0\n"
        "scikit_learn~=1.0\n"
    )
    assert "Added the following requirements from micro-package 'data_proc'" in result.out


def test_repull_changes_nothing(source: Path, consumer: Path, cli) -> None:
    assert cli("pull", sdist(source), "-d", "pipelines").code == 0
    before = tree_snapshot(consumer)
    stamps = {p: p.stat().st_mtime_ns for p in consumer.rglob("*") if p.is_file()}
    assert cli("pull", sdist(source), "-d", "pipelines").code == 0
    after = tree_snapshot(consumer)
    assert {k: v for k, v in after.items() if not k.startswith(".micropkg/")} == {
        k: v for k, v in before.items() if not k.startswith(".micropkg/")
    }
    for path, stamp in stamps.items():
        if ".micropkg" not in path.parts:
            assert path.stat().st_mtime_ns == stamp, path


def _newer_version(source: Path, cli) -> None:
    """Release 0.2 of data_proc: nodes.py changed, sql/ dropped, a new module, new reqs."""
    code = source / "src/demo_proj/pipelines/data_proc"
    init = code / "__init__.py"
    init.write_text(init.read_text().replace('"0.1"', '"0.2"'))
    (code / "nodes.py").write_text('"""Nodes v2."""\n\n\ndef helper(x):\n    return x + 2\n')
    shutil.rmtree(code / "sql")
    write(code / "extra.py", "EXTRA = True\n")
    (code / "requirements.txt").write_text("pandas>=2.0\nPyYAML\n")
    assert cli("package", "pipelines.data_proc").code == 0


def test_upgrade_updates_removes_and_replaces_requirement_block(
    source: Path, consumer: Path, cli, monkeypatch
) -> None:
    assert cli("pull", sdist(source), "-d", "pipelines").code == 0
    pulled = consumer / "src/consumer_pkg/pipelines/data_proc"
    assert (pulled / "sql/query.sql").is_file()
    with (consumer / "requirements.in").open("a") as fh:
        fh.write("\n# mine\nrequests\n")

    monkeypatch.chdir(source)
    _newer_version(source, cli)
    monkeypatch.chdir(consumer)
    result = cli("pull", str(source / "dist/data_proc-0.2.tar.gz"), "-d", "pipelines")
    assert result.code == 0, result.err
    assert (pulled / "nodes.py").read_text().startswith('"""Nodes v2."""')
    assert (pulled / "extra.py").read_text() == "EXTRA = True\n"
    assert not (pulled / "sql").exists()
    assert (consumer / "requirements.in").read_text() == (
        "kedro~=0.19.15\npandas>=1.0\n"
        "\n"
        "# Additional requirements from micro-package `data_proc`:\n"
        "PyYAML\n"
        "pandas>=2.0\n"
        "\n# mine\nrequests\n"
    )
    lock = (consumer / "micropkg.lock").read_text()
    assert 'version = "0.2"' in lock
    assert "sql/query.sql" not in lock


def test_local_edit_is_a_conflict_and_force_overwrites(
    source: Path, consumer: Path, cli, monkeypatch
) -> None:
    assert cli("pull", sdist(source)).code == 0
    nodes = consumer / "src/consumer_pkg/data_proc/nodes.py"
    nodes.write_text(nodes.read_text() + "# my local change\n")
    status = cli("status")
    assert status.code == 0
    assert "data_proc  0.1" in status.out
    assert "[modified]" in status.out
    assert "modified: src/consumer_pkg/data_proc/nodes.py" in status.out

    monkeypatch.chdir(source)
    _newer_version(source, cli)
    monkeypatch.chdir(consumer)
    before = tree_snapshot(consumer)
    result = cli("pull", str(source / "dist/data_proc-0.2.tar.gz"))
    assert result.code == 1
    assert result.err.startswith("Error: ")
    assert "src/consumer_pkg/data_proc/nodes.py" in result.err
    assert "--force" in result.err
    assert tree_snapshot(consumer) == before

    forced = cli("pull", str(source / "dist/data_proc-0.2.tar.gz"), "--force")
    assert forced.code == 0, forced.err
    assert nodes.read_text().startswith('"""Nodes v2."""')
    assert "[clean]" in cli("status").out


def test_existing_file_never_pulled_is_a_conflict(source: Path, consumer: Path, cli) -> None:
    write(consumer / "src/consumer_pkg/data_proc/nodes.py", "# mine\n")
    before = tree_snapshot(consumer)
    result = cli("pull", sdist(source))
    assert result.code == 1
    assert "src/consumer_pkg/data_proc/nodes.py (not written by an earlier pull)" in result.err
    assert tree_snapshot(consumer) == before


def test_a_folder_where_a_pulled_file_goes_is_a_conflict(source: Path, consumer: Path, cli) -> None:
    (consumer / "src/consumer_pkg/data_proc/nodes.py").mkdir(parents=True)
    unreadable = consumer / "src/consumer_pkg/data_proc/pipeline.py"
    unreadable.mkdir()
    unreadable.chmod(0o000)  # not even readable: still a folder in the way
    try:
        before = tree_snapshot(consumer)
        result = cli("pull", sdist(source))
    finally:
        unreadable.chmod(0o755)
    assert result.code == 1
    assert "src/consumer_pkg/data_proc/nodes.py (a folder is in the way)" in result.err
    assert "src/consumer_pkg/data_proc/pipeline.py (a folder is in the way)" in result.err
    assert tree_snapshot(consumer) == before


def test_dropped_file_edited_locally_is_a_conflict(
    source: Path, consumer: Path, cli, monkeypatch
) -> None:
    assert cli("pull", sdist(source)).code == 0
    query = consumer / "src/consumer_pkg/data_proc/sql/query.sql"
    query.write_text("select 2;\n")
    monkeypatch.chdir(source)
    _newer_version(source, cli)
    monkeypatch.chdir(consumer)
    result = cli("pull", str(source / "dist/data_proc-0.2.tar.gz"))
    assert result.code == 1
    assert "sql/query.sql (edited locally; the new version drops it)" in result.err


@pytest.mark.parametrize("fail_at", [1, 3, 8])
def test_failure_after_staging_leaves_project_identical(
    source: Path, consumer: Path, cli, monkeypatch, fail_at: int
) -> None:
    assert cli("pull", sdist(source)).code == 0  # a lock and files exist: an upgrade follows
    monkeypatch.chdir(source)
    _newer_version(source, cli)
    monkeypatch.chdir(consumer)
    before = tree_snapshot(consumer)
    calls = {"n": 0}
    real = journal_module._replace

    def failing(src: Path, dst: Path) -> None:
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(journal_module, "_replace", failing)
    result = cli("pull", str(source / "dist/data_proc-0.2.tar.gz"))
    assert result.code == 1
    assert "No space left on device" in result.err
    assert "the project was left unchanged" in result.err
    assert calls["n"] >= fail_at
    assert tree_snapshot(consumer) == before


def _tarball(path: Path, build: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        build(tar)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"x", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


def _good(tar: tarfile.TarFile) -> None:
    _add(tar, "evil-0.1/PKG-INFO", b"Metadata-Version: 2.2\nName: evil\nVersion: 0.1\n")
    _add(tar, "evil-0.1/evil/__init__.py", b"")


HOSTILE: dict[str, Callable[[tarfile.TarFile], None]] = {
    "dotdot": lambda t: (_good(t), _add(t, "evil-0.1/../../outside.txt")),
    "absolute": lambda t: (_good(t), _add(t, "/tmp/micropkg-absolute-outside.txt")),
    "symlink": lambda t: (
        _good(t),
        _add(t, "evil-0.1/evil/link", type=tarfile.SYMTYPE, linkname="/etc"),
    ),
    "hardlink": lambda t: (
        _good(t),
        _add(t, "evil-0.1/evil/hard", type=tarfile.LNKTYPE, linkname="evil-0.1/PKG-INFO"),
    ),
    "through_link": lambda t: (
        _good(t),
        _add(t, "evil-0.1/evil/up", type=tarfile.SYMTYPE, linkname="../.."),
        _add(t, "evil-0.1/evil/up/written.txt"),
    ),
    "device": lambda t: (
        _good(t),
        _add(t, "evil-0.1/evil/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
    ),
    "fifo": lambda t: (_good(t), _add(t, "evil-0.1/evil/fifo", type=tarfile.FIFOTYPE)),
    "huge": lambda t: (_good(t), _add(t, "evil-0.1/evil/big.bin", b"\0" * (300 * 1024**2))),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tarball_is_refused_and_nothing_written(
    consumer: Path, tmp_path: Path, cli, case: str
) -> None:
    archive = _tarball(tmp_path / "evil-0.1.tar.gz", HOSTILE[case])
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    before = tree_snapshot(consumer)
    result = cli("pull", str(archive))
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.err
    assert tree_snapshot(consumer) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == outside_before
    assert not Path("/tmp/micropkg-absolute-outside.txt").exists()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda t: (_good(t), _add(t, "extra-0.1/x.py")),
            "Invalid sdist was extracted: exactly one directory was expected",
        ),
        (
            lambda t: (_good(t), _add(t, "evil-0.1/other/__init__.py")),
            "Invalid package contents: exactly one package was expected",
        ),
    ],
)
def test_kedro_layout_validation(
    consumer: Path, tmp_path: Path, cli, build: Callable[[tarfile.TarFile], None], message: str
) -> None:
    archive = _tarball(tmp_path / "evil-0.1.tar.gz", build)
    before = tree_snapshot(consumer)
    result = cli("pull", str(archive))
    assert result.code == 1
    assert message in result.err
    assert tree_snapshot(consumer) == before


def test_corrupt_archive(consumer: Path, tmp_path: Path, cli) -> None:
    archive = tmp_path / "broken-0.1.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00garbage")
    before = tree_snapshot(consumer)
    result = cli("pull", str(archive))
    assert result.code == 1
    assert result.err.startswith("Error: ")
    assert tree_snapshot(consumer) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alias", "1bad"], "It must start with a letter or underscore."),
        (["--alias", "pipelines.dotted"], "is not a valid Python package name"),
        (["-d", "../outside"], "Invalid destination"),
    ],
)
def test_bad_pull_options_write_nothing(
    source: Path, consumer: Path, cli, args: list[str], message: str
) -> None:
    before = tree_snapshot(consumer)
    result = cli("pull", sdist(source), *args)
    assert result.code == 1
    assert message in result.err
    assert tree_snapshot(consumer) == before


def test_pull_needs_a_source_or_all(consumer: Path, cli) -> None:
    result = cli("pull")
    assert result.code == 1
    assert (
        "Please specify a package path or add '--all' to pull all micro-packages in the "
        "'pyproject.toml' package manifest section." in result.err
    )
    assert cli("pull", "x.tar.gz", "--all").code == 1


def test_empty_pull_manifest(consumer: Path, cli) -> None:
    with (consumer / "pyproject.toml").open("a") as fh:
        fh.write("\n[tool.kedro.micropkg.pull]\n")
    result = cli("pull", "--all")
    assert result.code == 0
    assert "Nothing to pull." in result.out


@pytest.mark.parametrize("package_alias", [None, "dp_alias"])
@pytest.mark.parametrize(
    ("alias", "destination", "env"),
    [
        (None, None, None),
        ("beta", None, "local"),
        (None, "pipelines", None),
        ("gamma", "a/b", "local"),
    ],
)
def test_round_trip_differs_only_in_rewritten_imports(
    source: Path,
    consumer: Path,
    cli,
    monkeypatch,
    package_alias: str | None,
    alias: str | None,
    destination: str | None,
    env: str | None,
) -> None:
    from micropkg_tasks.rewrite import rewrite_source

    monkeypatch.chdir(source)
    args = ["package", "pipelines.data_proc", "-d", "rt"]
    if package_alias:
        args += ["--alias", package_alias]
    assert cli(*args).code == 0
    tarball = source / f"rt/{package_alias or 'data_proc'}-0.1.tar.gz"
    monkeypatch.chdir(consumer)
    args = ["pull", str(tarball)]
    for flag, value in (("--alias", alias), ("-d", destination), ("-e", env)):
        if value:
            args += [flag, value]
    assert cli(*args).code == 0

    name = alias or package_alias or "data_proc"
    parts = [*(destination.split("/") if destination else []), name]
    module = "consumer_pkg." + ".".join(parts)
    original = "demo_proj.pipelines.data_proc"
    for kind, src_dir, dst_dir in (
        (
            "code",
            source / "src/demo_proj/pipelines/data_proc",
            consumer.joinpath("src/consumer_pkg", *parts),
        ),
        ("tests", source / "tests/pipelines/data_proc", consumer.joinpath("tests", *parts)),
    ):
        before, after = files_under(src_dir), files_under(dst_dir)
        assert sorted(before) == sorted(after), kind
        for rel, data in after.items():
            if rel.endswith(".py"):
                data = rewrite_source(data, module, original).text
            assert data == before[rel], (kind, rel)
    conf = consumer / "conf" / (env or "base")
    renamed = package_alias if package_alias and not alias else name
    assert (conf / f"parameters_{renamed}.yml").read_bytes() == (
        source / "conf/base/parameters_data_proc.yml"
    ).read_bytes()
    assert (conf / "parameters/data_proc/p1.yml").read_bytes() == b"p1: 1\n"


@pytest.mark.parametrize("how", ["packaged-as-project-name", "pulled-as-project-name"])
def test_micropackage_named_like_the_consumer_package(
    source: Path, tmp_path: Path, monkeypatch, cli, how: str
) -> None:
    """Kedro's two 'conflicting name' cases: imports become <pkg>.<pkg>.nodes."""
    write(
        source / "src/demo_proj/pipelines/data_proc/pipeline.py",
        "import demo_proj.pipelines.data_proc.nodes\n",
    )
    args = ["package", "pipelines.data_proc"]
    if how == "packaged-as-project-name":
        args += ["--alias", "consumer_pkg"]
    assert cli(*args).code == 0
    consumer = make_project(tmp_path / "consumer2", package="consumer_pkg")
    monkeypatch.chdir(consumer)
    name = "consumer_pkg" if how == "packaged-as-project-name" else "data_proc"
    args = ["pull", str(source / f"dist/{name}-0.1.tar.gz")]
    if how == "pulled-as-project-name":
        args += ["--alias", "consumer_pkg"]
    assert cli(*args).code == 0
    pipeline = consumer / "src/consumer_pkg/consumer_pkg/pipeline.py"
    assert pipeline.read_text() == "import consumer_pkg.consumer_pkg.nodes\n"


def test_dry_run_shows_the_plan_and_writes_nothing(
    source: Path, consumer: Path, cli, monkeypatch
) -> None:
    before = tree_snapshot(consumer, with_state=True)
    result = cli("pull", sdist(source), "-d", "pipelines", "--dry-run")
    assert result.code == 0, result.err
    assert "  create  src/consumer_pkg/pipelines/data_proc/nodes.py" in result.out
    assert "  create  conf/base/parameters_data_proc.yml" in result.out
    assert "  create  requirements.in" in result.out
    assert "  requirement  PyYAML" in result.out
    assert "Nothing was written (--dry-run)." in result.out
    assert tree_snapshot(consumer, with_state=True) == before

    assert cli("pull", sdist(source), "-d", "pipelines").code == 0
    nodes = consumer / "src/consumer_pkg/pipelines/data_proc/nodes.py"
    nodes.write_text("# mine\n")
    monkeypatch.chdir(source)
    _newer_version(source, cli)
    monkeypatch.chdir(consumer)
    before = tree_snapshot(consumer, with_state=True)
    result = cli("pull", str(source / "dist/data_proc-0.2.tar.gz"), "-d", "pipelines", "--dry-run")
    assert result.code == 1
    assert "  conflict  src/consumer_pkg/pipelines/data_proc/nodes.py (1 conflicting hunk)" in (
        result.out
    )
    assert "  update  src/consumer_pkg/pipelines/data_proc/__init__.py" in result.out
    assert "  remove  src/consumer_pkg/pipelines/data_proc/sql/query.sql" in result.out
    assert "  create  src/consumer_pkg/pipelines/data_proc/extra.py" in result.out
    assert tree_snapshot(consumer, with_state=True) == before
