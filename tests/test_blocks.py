"""Direct unit tests of the blocks (names, project, manifest, collect), beside the CLI tests
that drive them through ``micropkg``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from projects import add_pipeline, make_project, write

from micropkg_tasks.collect import (
    ConfigIndex,
    collect,
    is_parameter_file,
    is_skipped,
    read_version,
    walk_files,
)
from micropkg_tasks.errors import ManifestError, PackageError, ProjectError
from micropkg_tasks.manifest import (
    KEDRO_TABLE,
    OWN_TABLE,
    PackageEntry,
    load_manifest,
    manifest_table,
)
from micropkg_tasks.names import (
    config_file_name,
    normalize_destination,
    normalize_module_path,
    sdist_basename,
    validate_alias,
)
from micropkg_tasks.project import find_project, load_project

# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pipelines.ds", "pipelines.ds"),
        ("pipelines/ds", "pipelines.ds"),
        ("pipelines/ds/", "pipelines.ds"),
        ("src/demo_proj/pipelines/ds", "pipelines.ds"),
        ("pipelines\\ds", "pipelines.ds"),
    ],
)
def test_module_paths_normalise(raw: str, expected: str) -> None:
    assert normalize_module_path(raw, source_prefix="src/demo_proj") == expected


@pytest.mark.parametrize("raw", ["", "pipelines..x", "pipelines.1x", "pipe-lines.x", "a/b.c"])
def test_invalid_module_paths(raw: str) -> None:
    with pytest.raises(ManifestError, match="not a valid Python module path"):
        normalize_module_path(raw)


def test_alias_rule() -> None:
    assert validate_alias("ds") == "ds"
    assert validate_alias("_x1") == "_x1"
    for bad, why in [("1ds", "start with"), ("d", "2 characters"), ("d-s", "only letters")]:
        with pytest.raises(ManifestError, match=why):
            validate_alias(bad)
    with pytest.raises(ManifestError, match="reserved"):
        validate_alias("tests")


def test_destinations_and_config_names() -> None:
    assert normalize_destination(None) == ()
    assert normalize_destination("pipelines.nested") == ("pipelines", "nested")
    assert normalize_destination("pipelines/nested/") == ("pipelines", "nested")
    with pytest.raises(ManifestError):
        normalize_destination("/etc/cron.d")
    assert config_file_name("parameters_ds.yml", "ds", "alias") == "parameters_alias.yml"
    assert config_file_name("ds/ds.yml", "ds", "al") == "ds/al.yml"  # folders are kept
    assert config_file_name("parameters_ds.yml", "ds", None) == "parameters_ds.yml"


def test_sdist_basename_is_pep625() -> None:
    assert sdist_basename("Data-Science", "1.0.0") == "data_science-1.0.0"
    assert sdist_basename("ds", "01.2") == "ds-1.2"
    with pytest.raises(ManifestError, match="not PEP 440"):
        sdist_basename("ds", "one")


# --- project ---------------------------------------------------------------------------------


def test_project_discovery_from_a_subfolder(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    deep = root / "src" / "demo_proj" / "pipelines"
    assert find_project(deep) == root.resolve()
    project = load_project(deep)
    assert project.package_dir == (root / "src/demo_proj").resolve()
    assert project.conf_root == root.resolve() / "conf"
    assert project.requirements_in == project.requirements_txt.with_name("requirements.in")
    assert project.rel(project.package_dir / "x.py") == "src/demo_proj/x.py"


def test_project_layout_details(tmp_path: Path) -> None:
    root = make_project(tmp_path / "old", kedro_version="0.18.14", requirements="")
    write(root / "src/demo_proj/settings.py", 'CONF_SOURCE = "settings_conf"\n')
    project = load_project(root)
    assert project.conf_root == root.resolve() / "settings_conf"
    assert project.requirements_txt == (root / "src/requirements.txt").resolve()


def test_not_a_project(tmp_path: Path) -> None:
    write(tmp_path / "plain/pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(ProjectError, match="Not inside a Kedro project"):
        load_project(tmp_path / "plain")
    write(tmp_path / "bad/pyproject.toml", "[tool.kedro]\npackage_name = 3\n")
    with pytest.raises(ProjectError, match="package_name"):
        load_project(tmp_path / "bad")


# --- manifest --------------------------------------------------------------------------------


def _pyproject(table: str, body: dict[str, object]) -> dict[str, object]:
    data: dict[str, object] = body
    for part in reversed(table.split(".")):
        data = {part: data}
    return data


def test_manifest_entries_are_typed_and_validated() -> None:
    data = _pyproject(
        KEDRO_TABLE,
        {
            "package": {"pipelines.ds": {"alias": "ds2", "env": "local"}, "utils": {}},
            "pull": {"dist/x-0.1.tar.gz": {"fs-args": "s3.yml", "sha256": "a" * 64}},
        },
    )
    manifest = load_manifest(data)
    assert manifest.package == (
        PackageEntry("pipelines.ds", "ds2", None, "local"),
        PackageEntry("utils"),
    )
    (pull,) = manifest.pull
    assert (pull.source, pull.fs_args, pull.sha256) == ("dist/x-0.1.tar.gz", "s3.yml", "a" * 64)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"package": {"x": {"bogus": "1"}}}, "Unknown key 'bogus'"),
        ({"package": {"x": {"alias": ""}}}, "must be a non-empty string"),
        ({"package": {"x": "y"}}, "must be a table"),
        ({"pull": {"x.tar.gz": {"sha256": "zz"}}}, "expected 64 hex digits"),
        ({"package": {"a": {}, "src/demo_proj/a": {}}}, "name the same micro-package"),
        ({"other": {}}, "allowed keys: package, pull"),
        ({"package": {"pipelines": {"ds": {}}}}, 'write it quoted, as "pipelines.ds"'),
    ],
)
def test_manifest_errors(body: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_manifest(_pyproject(KEDRO_TABLE, body), source_prefix="src/demo_proj")


def test_manifest_table_choice() -> None:
    assert manifest_table({}) == KEDRO_TABLE
    assert manifest_table(_pyproject(OWN_TABLE, {"package": {}})) == OWN_TABLE
    both = {"tool": {"micropkg": {"pull": {}}, "kedro": {"micropkg": {"pull": {}}}}}
    with pytest.raises(ManifestError, match="keep only one"):
        manifest_table(both)


# --- collect ---------------------------------------------------------------------------------


def test_collect_code_parameters_and_tests(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    add_pipeline(root, "ds", requirements="pandas\n")
    write(root / "src/demo_proj/pipelines/ds/__pycache__/x.pyc", "")
    write(root / "src/demo_proj/pipelines/ds/.DS_Store", "")
    write(root / "src/demo_proj/pipelines/ds/sql/q.sql", "select 1;\n")
    write(root / "conf/base/parameters/ds/more.yml", "x: 1\n")
    write(root / "conf/base/catalog_ds.yml", "{}\n")  # not a parameter file
    collected = collect(load_project(root), "pipelines.ds")
    assert [rel for _, rel in collected.code] == [
        "__init__.py",
        "nodes.py",
        "pipeline.py",
        "requirements.txt",
        "sql/q.sql",
    ]
    assert [rel for _, rel in collected.config] == ["parameters/ds/more.yml", "parameters_ds.yml"]
    assert [rel for _, rel in collected.tests] == ["__init__.py", "test_pipeline.py"]
    assert len(collected.all_paths()) == 9


def test_collect_errors_and_version(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    project = load_project(root)
    with pytest.raises(PackageError, match="doesn't exist"):
        collect(project, "pipelines.nope")
    write(root / "src/demo_proj/pipelines/mod.py", "")
    with pytest.raises(PackageError, match="not a package directory"):
        collect(project, "pipelines.mod")
    add_pipeline(root, "ds", version="2.1")
    add_pipeline(root, "plain", version=None)
    assert read_version(project, "pipelines.ds") == "2.1"
    assert read_version(project, "pipelines.plain") == "0.1"  # the project's __version__


@pytest.mark.parametrize(
    ("rel", "name", "expected"),
    [
        ("parameters_ds.yml", "ds", True),
        ("parameters/ds.yml", "ds", True),
        ("parameters/ds/a.yml", "ds", True),
        ("nested/parameters_ds.yml", "ds", True),
        ("ds/a.yml", "ds", False),  # Kedro's MANIFEST.in shipped parameter files only
        ("parameters_other.yml", "ds", False),
    ],
)
def test_parameter_file_rule(rel: str, name: str, expected: bool) -> None:
    assert is_parameter_file(rel, name) is expected


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="symlinks and FIFOs: POSIX")
def test_walk_files_finds_what_os_walk_and_isfile_find(tmp_path: Path) -> None:
    """Issue 9: the walk reads scandir's entry types instead of a stat per file; it must find
    what ``os.walk`` (symlinked folders not entered) with ``os.path.isfile`` found."""
    root = tmp_path / "pkg"
    for rel in (
        "a.py",
        "b/x.py",
        "b/c/d/deep.yml",
        "__pycache__/a.pyc",
        "b/__pycache__/z.py",
        "b/.x.py.micropkg-tmp",
        "e.pyc",
        ".DS_Store",
        ".hidden.py",
        "b/c/ü.py",
    ):
        write(root / rel, "")
    outside = tmp_path / "outside"
    write(outside / "o.py", "")
    (root / "to-dir").symlink_to(outside, target_is_directory=True)
    (root / "b/to-file.py").symlink_to(root / "a.py")
    (root / "broken.py").symlink_to(tmp_path / "missing.py")
    os.mkfifo(root / "fifo")
    expected = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".ipynb_checkpoints")]
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not is_skipped(name):
                expected.append((Path(full), name if rel_dir == "." else f"{rel_dir}/{name}"))
    found = walk_files(root)
    assert found == sorted(expected, key=lambda item: item[1])
    assert [rel for _, rel in found] == [
        ".hidden.py", "a.py", "b/c/d/deep.yml", "b/c/ü.py", "b/to-file.py", "b/x.py"
    ]  # fmt: skip


def test_walk_and_index(tmp_path: Path) -> None:
    write(tmp_path / "b/x.py", "")
    write(tmp_path / "a.py", "")
    write(tmp_path / ".ipynb_checkpoints/c.py", "")
    assert [rel for _, rel in walk_files(tmp_path)] == ["a.py", "b/x.py"]
    write(tmp_path / "conf/parameters_ds.yml", "")
    index = ConfigIndex(tmp_path / "conf")
    assert [rel for _, rel in index.files_for("ds")] == ["parameters_ds.yml"]
    assert index.files_for("other") == ()
