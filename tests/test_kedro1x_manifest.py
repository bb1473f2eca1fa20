"""Kedro 1.x projects with ``[tool.kedro.micropkg]`` (which Kedro 1.x refuses at start-up): every
command warns once, and ``micropkg init --migrate`` moves the manifest to ``[tool.micropkg]``
with tomlkit, keeping comments and order. (Kedro 1.x itself: ``test_kedro1x.py``.)"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from cli_runner import Cli, plain_doit
from projects import add_pipeline, make_project, write

from micropkg_tasks._compat import tomllib
from micropkg_tasks.errors import ManifestError
from micropkg_tasks.manifest import kedro1x_manifest_warning, load_manifest
from micropkg_tasks.manifest_edit import migrate_manifest
from micropkg_tasks.project import installed_kedro_version
from micropkg_tasks.state import STATE_DIR

HEAD = """\
[project]
name = "demo_proj"
dynamic = ["version"]

[tool.kedro]
package_name = "demo_proj"
project_name = "Demo Project"
kedro_init_version = "{version}"
source_dir = "src"
"""
MANIFEST = """
# The micro-packages this project ships
[tool.kedro.micropkg.package]
"pipelines.alpha" = {}  # the first one
"pipelines.beta" = {alias = "bb"}

# And the ones it pulls (none yet)
[tool.kedro.micropkg.pull]

[tool.pytest.ini_options]
addopts = "-q"
"""
WARNING = "Warning: [tool.kedro.micropkg] in pyproject.toml stops Kedro 1.x from starting"


def pyproject_text(version: str = "1.0.0", manifest: str = MANIFEST) -> str:
    return HEAD.format(version=version) + manifest


@pytest.fixture
def kedro1x(project: Path) -> Path:
    """A Kedro 1.x project (kedro_init_version 1.0.0) with its manifest under [tool.kedro]."""
    write(project / "pyproject.toml", pyproject_text())
    add_pipeline(project, "alpha")
    add_pipeline(project, "beta")
    return project


def fake_kedro(folder: Path, version: str) -> Path:
    """An installed ``kedro`` distribution: its metadata, and an empty package (found, never
    imported)."""
    info = folder / f"kedro-{version}.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: kedro\nVersion: {version}\n")
    write(folder / "kedro/__init__.py", "")
    return folder


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Warning:")]


# --------------------------------------------------------------------------- the warning


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("build-reqs", "--check"),
        ("package", "--all"),
        ("package", "--all"),  # again: up to date
        ("pull", "--all"),
        ("doit", "list"),
        ("init",),
    ],
    ids=" ".join,
)
def test_every_command_warns_once_and_still_works(kedro1x: Path, cli: Cli, args: tuple[str, ...]):
    result = cli(*args)
    assert result.code == 0, result.err
    warnings = warnings_in(result.err)
    assert len(warnings) == 1, result.err
    assert warnings[0] == (
        f"{WARNING} (\"Found unexpected keys in 'pyproject.toml'\") and this is a Kedro 1.x "
        'project (kedro_init_version = "1.0.0"): move the manifest to [tool.micropkg] with '
        "'micropkg init --migrate'."
    )
    assert result.err_lines == warnings  # nothing else on stderr


def test_an_error_comes_after_the_warning(kedro1x: Path, cli: Cli) -> None:
    result = cli("pull", "nowhere/x-0.1.tar.gz")
    assert result.code == 1
    assert [line.split(":")[0] for line in result.err_lines] == ["Warning", "Error"]


def test_plain_doit_warns_once_on_stderr_and_runs(kedro1x: Path, cli: Cli) -> None:
    """doit through the one-line dodo.py: the warning does not break doit."""
    assert cli("init").code == 0
    for args in (["package"], ["list"]):
        proc = plain_doit(kedro1x, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len(warnings_in(proc.stderr)) == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert "[tool.micropkg]" in proc.stderr
    assert (kedro1x / "dist/alpha-0.1.tar.gz").is_file()


@pytest.mark.parametrize(
    ("version", "manifest"),
    [
        ("0.19.15", MANIFEST),  # Kedro 0.19 reads [tool.kedro.micropkg] itself
        ("1.0.0", MANIFEST.replace("tool.kedro.micropkg", "tool.micropkg")),
        ("1.0.0", ""),
    ],
    ids=["kedro-0.19", "own-table", "no-manifest"],
)
def test_no_warning(project: Path, cli: Cli, version: str, manifest: str) -> None:
    write(project / "pyproject.toml", pyproject_text(version, manifest))
    result = cli("status")
    assert (result.code, result.err) == (0, "")


@pytest.mark.parametrize(("installed", "warned"), [("1.2.0", True), ("0.19.15", False)])
def test_the_installed_kedro_counts_too(
    project: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed, warned
) -> None:
    """A 0.19 project whose environment has Kedro 1.x installed (read from its metadata)."""
    write(project / "pyproject.toml", pyproject_text("0.19.15"))
    monkeypatch.syspath_prepend(str(fake_kedro(tmp_path / "site", installed)))
    result = cli("status")
    assert result.code == 0
    expected = [
        f"{WARNING} (\"Found unexpected keys in 'pyproject.toml'\") and this is a Kedro 1.x "
        f"project (Kedro {installed} is installed): move the manifest to [tool.micropkg] with "
        "'micropkg init --migrate'."
    ]
    assert warnings_in(result.err) == (expected if warned else [])
    assert "kedro" not in sys.modules  # metadata only


def test_warning_rules() -> None:
    def never() -> str | None:
        raise AssertionError("the installed Kedro was looked up")

    data = tomllib.loads(pyproject_text("1.3.1"))
    assert 'kedro_init_version = "1.3.1"' in (kedro1x_manifest_warning(data, never) or "")
    assert kedro1x_manifest_warning(tomllib.loads(pyproject_text("2.0.0")), never)
    old = tomllib.loads(pyproject_text("0.18.14"))
    assert kedro1x_manifest_warning(old, lambda: None) is None
    assert kedro1x_manifest_warning(old, lambda: "1.0.0rc1")
    assert kedro1x_manifest_warning(old, lambda: "not a version") is None
    plain = tomllib.loads(pyproject_text("1.0.0", ""))
    assert kedro1x_manifest_warning(plain, never) is None


# --------------------------------------------------------------------------- init --migrate


def test_migrate_renames_the_headers_and_keeps_everything_else(kedro1x: Path, cli: Cli) -> None:
    pyproject = kedro1x / "pyproject.toml"
    pyproject.chmod(0o640)
    before = pyproject.read_text()
    result = cli("init", "--migrate")
    assert (result.code, result.err) == (0, "")  # the warning is what this command fixes
    assert result.out == (
        "Moved the manifest from [tool.kedro.micropkg] to [tool.micropkg] in pyproject.toml.\n"
    )
    assert pyproject.read_text() == before.replace("[tool.kedro.micropkg.", "[tool.micropkg.")
    assert stat.S_IMODE(pyproject.stat().st_mode) == 0o640
    # Only the manifest moved: no dodo.py, .gitignore or state folder.
    assert not (kedro1x / "dodo.py").exists() and not (kedro1x / ".gitignore").exists()
    assert not (kedro1x / STATE_DIR).exists()
    # The same entries, and no more warning.
    manifest = load_manifest(tomllib.loads(pyproject.read_text()))
    assert [e.module_path for e in manifest.package] == ["pipelines.alpha", "pipelines.beta"]
    packaged = cli("package", "--all")
    assert (packaged.code, packaged.err) == (0, "")
    assert (kedro1x / "dist/bb-0.1.tar.gz").is_file()


def test_migrate_is_idempotent(kedro1x: Path, cli: Cli) -> None:
    assert cli("init", "--migrate").code == 0
    pyproject = kedro1x / "pyproject.toml"
    migrated = pyproject.read_bytes()
    again = cli("init", "--migrate")
    assert (again.code, again.err) == (0, "")
    assert again.out == "Nothing to migrate: pyproject.toml has no [tool.kedro.micropkg].\n"
    assert pyproject.read_bytes() == migrated


def test_migrate_with_both_tables_is_a_clean_error(kedro1x: Path, cli: Cli) -> None:
    pyproject = kedro1x / "pyproject.toml"
    with pyproject.open("a", encoding="utf-8") as fh:
        fh.write('\n[tool.micropkg.pull]\n"dist/x-0.1.tar.gz" = {}\n')
    before = pyproject.read_bytes()
    result = cli("init", "--migrate")
    assert result.code == 1
    assert result.error == (
        "Both [tool.kedro.micropkg] and [tool.micropkg] hold a manifest in pyproject.toml; merge "
        "them into [tool.micropkg] by hand (Kedro 1.x refuses the first). Nothing was written."
    )
    assert pyproject.read_bytes() == before
    assert not (kedro1x / STATE_DIR).exists()


def test_migrate_keeps_crlf(project: Path, cli: Cli) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject_text().replace("\n", "\r\n")
    pyproject.write_bytes(text.encode())
    assert cli("init", "--migrate").code == 0
    assert (
        pyproject.read_bytes() == text.replace("[tool.kedro.micropkg.", "[tool.micropkg.").encode()
    )


# --------------------------------------------------------------------------- migrate_manifest

#: Layouts of a manifest under [tool.kedro], each with what it must become.
LAYOUTS = {
    "headers": (
        pyproject_text(),
        pyproject_text(manifest=MANIFEST.replace(".kedro.micropkg", ".micropkg")),
    ),
    "explicit-table": (
        '[tool.kedro]\npackage_name = "p"\n\n[tool.kedro.micropkg]  # ours\n'
        'package = {"pipelines.a" = {}}\n\n[tool.kedro.micropkg.pull]\n"a.tar.gz" = {}\n',
        '[tool.kedro]\npackage_name = "p"\n\n[tool.micropkg]  # ours\n'
        'package = {"pipelines.a" = {}}\n\n[tool.micropkg.pull]\n"a.tar.gz" = {}\n',
    ),
    "quoted-and-spaced": (
        '[tool.kedro]\npackage_name = "p"\n\n[ tool . kedro . "micropkg" . "package" ]  # q\n'
        '"pipelines.a" = {}\n',
        '[tool.kedro]\npackage_name = "p"\n\n[tool.micropkg."package"]  # q\n"pipelines.a" = {}\n',
    ),
    "entry-tables": (
        '[tool.kedro]\npackage_name = "p"\n\n[tool.kedro.micropkg.package."pipelines.a"]\n'
        'alias = "aa"  # why\n',
        '[tool.kedro]\npackage_name = "p"\n\n[tool.micropkg.package."pipelines.a"]\n'
        'alias = "aa"  # why\n',
    ),
    "out-of-order": (
        '[tool.kedro]\npackage_name = "p"\n\n[tool.ruff]\nline-length = 99\n\n'
        '# shipped\n[tool.kedro.micropkg.package]\n"pipelines.a" = {}\n',
        '[tool.kedro]\npackage_name = "p"\n\n[tool.ruff]\nline-length = 99\n\n'
        '# shipped\n[tool.micropkg.package]\n"pipelines.a" = {}\n',
    ),
    "settings-table-beside": (
        '[tool.micropkg]\nmax-size = "2GiB"  # big data\n\n[tool.kedro]\npackage_name = "p"\n\n'
        '[tool.kedro.micropkg.pull]\n"a.tar.gz" = {}\n',
        '[tool.micropkg]\nmax-size = "2GiB"  # big data\n\n[tool.kedro]\npackage_name = "p"\n\n'
        '[tool.micropkg.pull]\n"a.tar.gz" = {}\n',
    ),
    "dotted-keys": (
        '[tool.kedro]\npackage_name = "p"\nmicropkg.package."pipelines.a" = {}  # dotted\n',
        None,
    ),
    "inline-table": (
        '[tool.kedro]\npackage_name = "p"\nmicropkg = {package = {"pipelines.a" = {}}}\n',
        None,
    ),
    "explicit-table-beside-settings": (
        '[tool.kedro]\npackage_name = "p"\n\n[tool.kedro.micropkg]\n'
        'package = {"pipelines.a" = {}}\n\n[tool.micropkg]\nmax-size = "1GB"\n',
        None,
    ),
}


def _moved(text: str) -> dict[str, object]:
    data = tomllib.loads(text)
    tool = data["tool"]
    tool["micropkg"] = {**tool.get("micropkg", {}), **tool["kedro"].pop("micropkg")}
    return data


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_migrate_manifest_layouts(layout: str) -> None:
    text, expected = LAYOUTS[layout]
    result = migrate_manifest(text)
    assert result is not None
    if expected is not None:  # headers renamed where they stand: nothing else changes
        assert result == expected
    assert tomllib.loads(result) == _moved(text)
    assert _comments(result) == _comments(text)
    assert "kedro.micropkg" not in result and "micropkg =" not in result
    assert migrate_manifest(result) is None  # idempotent
    assert migrate_manifest(result.replace("\n", "\r\n")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tool.kedro.micropkg.pull]\n"a.tar.gz" = {}\n[tool.micropkg.package]\n"p.a" = {}\n',
            "Both [tool.kedro.micropkg] and [tool.micropkg] hold a manifest",
        ),
        (
            '[tool.kedro.micropkg.pull]\n"a.tar.gz" = {}\n[tool.micropkg.pull]\n"b.tar.gz" = {}\n',
            "Both [tool.kedro.micropkg] and [tool.micropkg] hold a manifest",
        ),
        ('[tool]\nmicropkg = 3\n[tool.kedro.micropkg.pull]\n"a" = {}\n', "Both"),
        ("[tool.kedro]\nmicropkg = 3\n", "[tool.kedro.micropkg] must be a table"),
        ("[tool.kedro\n", "Cannot edit pyproject.toml"),
    ],
)
def test_migrate_manifest_refuses(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=r"^" + message.replace("[", r"\[").replace(".", r"\.")):
        migrate_manifest(text)


def test_migrate_manifest_nothing_to_do() -> None:
    for text in ("", '[tool.kedro]\npackage_name = "p"\n', "[tool.micropkg.pull]\n"):
        assert migrate_manifest(text) is None


def test_migrated_demo_project_reads_the_same_manifest() -> None:
    """The bundled demo project's manifest, moved: the same entries, comments kept."""
    demo = Path(__file__).resolve().parents[1] / "examples/demo_project/pyproject.toml"
    text = demo.read_text(encoding="utf-8")
    result = migrate_manifest(text)
    if result is None:
        pytest.skip("the demo project has no [tool.kedro.micropkg]")
    assert load_manifest(tomllib.loads(result)) == load_manifest(tomllib.loads(text))
    assert _comments(result) == _comments(text)


def test_make_project_default_has_no_manifest(tmp_path: Path) -> None:
    """Control for the fixtures above: the helper projects start without a manifest."""
    root = make_project(tmp_path / "p")
    assert migrate_manifest((root / "pyproject.toml").read_text()) is None


def test_the_installed_kedro_is_looked_up_only_where_kedro_is_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where ``kedro`` cannot be imported (our own venv, a pipx install) no distribution
    metadata is read; where it can, its version comes from the metadata."""
    import importlib.metadata

    def refuse(name: str) -> str:
        raise AssertionError(f"metadata read for {name}")

    monkeypatch.setattr(importlib.metadata, "version", refuse)
    assert installed_kedro_version() is None  # kedro lives in side venvs, never in ours

    monkeypatch.undo()
    monkeypatch.syspath_prepend(str(fake_kedro(tmp_path / "site", "1.0.0")))
    assert installed_kedro_version() == "1.0.0"
