"""The doit engine: a second run executes nothing; each change repackages exactly its entry."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import plain_doit
from projects import add_pipeline, write

from micropkg_tasks.project import load_project
from micropkg_tasks.state import project_lock
from micropkg_tasks.tarball_log import LOG_NAME

MANIFEST = """
[tool.kedro.micropkg.package]
"pipelines.alpha" = {}
"pipelines.beta" = {alias = "bb"}
"pipelines.gamma" = {env = "base"}
"""

TARBALLS = {
    "pipelines.alpha": "dist/alpha-0.1.tar.gz",
    "pipelines.beta": "dist/bb-0.1.tar.gz",
    "pipelines.gamma": "dist/gamma-0.1.tar.gz",
}


@pytest.fixture
def three(project: Path) -> Path:
    """A project with three pipelines in its manifest, packaged once."""
    with (project / "pyproject.toml").open("a") as fh:
        fh.write(MANIFEST)
    for name in ("alpha", "beta", "gamma"):
        add_pipeline(project, name, requirements="pandas>=1.0\n")
    write(project / "conf/base/parameters/beta/nested.yml", "nested: 1\n")
    return project


def records(root: Path) -> dict[str, dict[str, str]]:
    """The last record of each entry in the tarball log (its lines that parse as objects)."""
    found: dict[str, dict[str, str]] = {}
    for line in (root / ".micropkg/package" / LOG_NAME).read_bytes().split(b"\n"):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                found[record["entry"]] = record
    return found


def stamps(root: Path) -> dict[str, int | None]:
    """mtime_ns of each entry's tarball (None when missing)."""
    result: dict[str, int | None] = {}
    for key, rel in TARBALLS.items():
        path = root / rel
        result[key] = path.stat().st_mtime_ns if path.exists() else None
    return result


def edit(path: Path, text: str) -> None:
    """Change a file's content, and move its mtime clearly forward."""
    path.write_text(text, encoding="utf-8")
    later = path.stat().st_mtime + 2
    os.utime(path, (later, later))


def rebuilt(cli, root: Path) -> set[str]:  # type: ignore[no-untyped-def]
    """Run ``micropkg package --all`` and return the entries whose tarball changed."""
    before = stamps(root)
    result = cli("package", "--all")
    assert result.code == 0, result.err
    after = stamps(root)
    changed = {key for key in TARBALLS if after[key] != before[key]}
    printed = {
        line.split("'")[1] for line in result.out.splitlines() if line.startswith("Packaged '")
    }
    assert printed == changed, result.out
    return changed


def test_first_run_packages_all_second_run_nothing(three: Path, cli) -> None:
    assert rebuilt(cli, three) == set(TARBALLS)
    result = cli("package", "--all")
    assert result.code == 0
    assert result.out.strip() == "All micro-packages are up to date."
    assert rebuilt(cli, three) == set()


@pytest.mark.parametrize(
    ("path", "entry"),
    [
        ("conf/base/parameters_alpha.yml", "pipelines.alpha"),
        ("conf/base/parameters/beta/nested.yml", "pipelines.beta"),
        ("tests/pipelines/gamma/test_pipeline.py", "pipelines.gamma"),
        ("src/demo_proj/pipelines/beta/nodes.py", "pipelines.beta"),
        ("src/demo_proj/pipelines/alpha/requirements.txt", "pipelines.alpha"),
    ],
)
def test_editing_one_input_repackages_exactly_its_entry(
    three: Path, cli, path: str, entry: str
) -> None:
    rebuilt(cli, three)
    edit(three / path, (three / path).read_text() + "\n# edited\n")
    assert rebuilt(cli, three) == {entry}
    assert rebuilt(cli, three) == set()


def test_adding_and_deleting_files(three: Path, cli) -> None:
    rebuilt(cli, three)
    write(three / "src/demo_proj/pipelines/gamma/extra.sql", "select 1;\n")
    assert rebuilt(cli, three) == {"pipelines.gamma"}
    write(three / "conf/base/parameters/alpha/more.yml", "more: 2\n")
    assert rebuilt(cli, three) == {"pipelines.alpha"}
    (three / "tests/pipelines/beta/test_pipeline.py").unlink()
    assert rebuilt(cli, three) == {"pipelines.beta"}
    (three / "src/demo_proj/pipelines/gamma/extra.sql").unlink()
    assert rebuilt(cli, three) == {"pipelines.gamma"}


def test_unrelated_files_do_not_rebuild(three: Path, cli) -> None:
    rebuilt(cli, three)
    write(three / "conf/base/catalog_alpha.yml", "x: 1\n")
    write(three / "conf/base/parameters_alpha_extra.yml", "x: 1\n")
    write(three / "src/demo_proj/pipelines/alpha/__pycache__/nodes.cpython-311.pyc", "junk")
    write(three / "conf/local/parameters_alpha.yml", "x: 1\n")
    assert rebuilt(cli, three) == set()


def test_touch_alone_does_not_rebuild(three: Path, cli) -> None:
    rebuilt(cli, three)
    for rel in ("src/demo_proj/pipelines/alpha/nodes.py", "conf/base/parameters_beta.yml"):
        path = three / rel
        later = path.stat().st_mtime + 5
        os.utime(path, (later, later))
    assert rebuilt(cli, three) == set()


@pytest.mark.parametrize(
    ("old", "new", "entry"),
    [
        (
            '"pipelines.beta" = {alias = "bb"}',
            '"pipelines.beta" = {alias = "bb2"}',
            "pipelines.beta",
        ),
        (
            '"pipelines.gamma" = {env = "base"}',
            '"pipelines.gamma" = {env = "local"}',
            "pipelines.gamma",
        ),
        ('"pipelines.alpha" = {}', '"pipelines.alpha" = {destination = "dist"}', "pipelines.alpha"),
    ],
)
def test_changing_an_option_repackages_that_entry(
    three: Path, cli, old: str, new: str, entry: str
) -> None:
    rebuilt(cli, three)
    pyproject = three / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(old, new))
    before = {p.name: p.stat().st_mtime_ns for p in (three / "dist").iterdir()}
    result = cli("package", "--all")
    assert result.code == 0, result.err
    assert [line for line in result.out.splitlines() if line.startswith("Packaged")] == [
        line for line in result.out.splitlines() if f"'{entry}'" in line
    ]
    after = {p.name: p.stat().st_mtime_ns for p in (three / "dist").iterdir()}
    unchanged = {n for n in before if n in after and before[n] == after[n]}
    assert len(unchanged) == 2
    if "bb2" in new:
        # the previous alias's tarball is removed
        assert sorted(after) == ["alpha-0.1.tar.gz", "bb2-0.1.tar.gz", "gamma-0.1.tar.gz"]


def test_version_bump_replaces_the_old_tarball(three: Path, cli) -> None:
    rebuilt(cli, three)
    init = three / "src/demo_proj/pipelines/alpha/__init__.py"
    edit(init, init.read_text().replace('__version__ = "0.1"', '__version__ = "0.2"'))
    assert cli("package", "--all").code == 0
    assert sorted(p.name for p in (three / "dist").iterdir()) == [
        "alpha-0.2.tar.gz",
        "bb-0.1.tar.gz",
        "gamma-0.1.tar.gz",
    ]


def test_doit_list_clean_and_shared_state(three: Path, cli) -> None:
    result = cli("doit", "list")
    assert result.code == 0
    for entry in TARBALLS:
        assert f"package:{entry}" in result.out
    rebuilt(cli, three)
    result = cli("doit", "clean", "package")
    assert result.code == 0
    assert not any((three / rel).exists() for rel in TARBALLS.values())
    assert rebuilt(cli, three) == set(TARBALLS)


_doit = plain_doit


def test_plain_doit_with_the_one_line_dodo(three: Path, cli) -> None:
    assert cli("init").code == 0
    assert (three / "dodo.py").read_text() == "from micropkg_tasks.tasks import *  # noqa: F403\n"
    assert ".micropkg/" in (three / ".gitignore").read_text()

    first = _doit(three, "package")
    assert first.returncode == 0, first.stderr
    assert all((three / rel).exists() for rel in TARBALLS.values())
    before = stamps(three)

    # the doit command and the micropkg CLI share one state database
    assert rebuilt(cli, three) == set()
    second = _doit(three, "package")
    assert second.returncode == 0, second.stderr
    assert stamps(three) == before
    assert "Packaged" not in second.stdout

    edit(three / "conf/base/parameters_gamma.yml", "gamma: 2\n")
    third = _doit(three)  # default task: package
    assert third.returncode == 0, third.stderr
    after = stamps(three)
    assert {k for k in TARBALLS if after[k] != before[k]} == {"pipelines.gamma"}

    listed = _doit(three, "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("package:")] == sorted(
        f"package:{e}" for e in TARBALLS
    )

    single = _doit(three, "package", "--module", "pipelines.alpha", "--alias", "al")
    assert single.returncode == 0, single.stderr
    assert (three / "dist/al-0.1.tar.gz").exists()

    cleaned = _doit(three, "clean", "package")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (three / "dist/bb-0.1.tar.gz").exists()


def test_second_process_is_refused_while_locked(three: Path, cli) -> None:
    with project_lock(load_project(three)):
        proc = subprocess.run(
            [sys.executable, "-m", "micropkg_tasks", "package", "--all"],
            cwd=three,
            capture_output=True,
            text=True,
            check=False,
        )
    assert proc.returncode == 1
    assert "Another micropkg/doit run is in progress" in proc.stderr
    assert not (three / "dist").exists()


@pytest.mark.parametrize("parallel", ["thread", "process"])
def test_parallel_runs(three: Path, cli, parallel: str) -> None:
    result = cli("package", "--all", "-n", "2", "-P", parallel)
    assert result.code == 0, result.err
    assert all((three / rel).is_file() for rel in TARBALLS.values())
    assert rebuilt(cli, three) == set()


def test_init_keeps_an_existing_dodo(three: Path, cli) -> None:
    (three / "dodo.py").write_text("def task_mine():\n    return {'actions': []}\n")
    result = cli("init")
    assert result.code == 1
    assert "does not load micropkg's tasks" in result.err
    assert "from micropkg_tasks.tasks import *" in result.err
    assert (three / "dodo.py").read_text().startswith("def task_mine")
    (three / "dodo.py").write_text("from micropkg_tasks.tasks import *  # noqa: F403\n")
    assert cli("init").code == 0
    assert cli("init").code == 0  # idempotent: .gitignore gets the entry once
    assert (three / ".gitignore").read_text().count(".micropkg/") == 1


def test_swapping_aliases_keeps_both_new_tarballs(three: Path, cli) -> None:
    # Issue 8 item 9: each entry's "remove my previous tarball" step deleted the tarball the
    # other entry had just written under that name.
    import tarfile

    pyproject = three / "pyproject.toml"
    text = pyproject.read_text()
    swap = text.replace('"pipelines.alpha" = {}', '"pipelines.alpha" = {alias = "xx"}')
    pyproject.write_text(swap.replace('{alias = "bb"}', '{alias = "yy"}'))
    assert cli("package", "--all").code == 0
    pyproject.write_text(
        swap.replace('{alias = "xx"}', '{alias = "TMP"}')
        .replace('{alias = "bb"}', '{alias = "xx"}')
        .replace('{alias = "TMP"}', '{alias = "yy"}')
    )
    result = cli("package", "--all")
    assert result.code == 0, result.err
    dist = three / "dist"
    assert sorted(p.name for p in dist.iterdir()) == [
        "gamma-0.1.tar.gz",
        "xx-0.1.tar.gz",
        "yy-0.1.tar.gz",
    ]
    for alias, origin in (("xx", "beta"), ("yy", "alpha")):
        with tarfile.open(dist / f"{alias}-0.1.tar.gz") as tar:
            member = tar.extractfile(f"{alias}-0.1/{alias}/config/parameters_{alias}.yml")
            assert member is not None
            shipped = member.read()
        assert shipped == (three / f"conf/base/parameters_{origin}.yml").read_bytes()


def test_package_removes_only_older_versions_of_its_own_tarball(three: Path, cli) -> None:
    dist = three / "dist"
    dist.mkdir()
    user_files = [
        "alpha-backup.tar.gz",
        "alpha-old-copy.tar.gz",
        "alpha.tar.gz",
        "alphabet-0.1.tar.gz",
    ]
    for name in [*user_files, "alpha-0.0.1.tar.gz"]:
        (dist / name).write_bytes(b"not ours")
    assert cli("package", "--all").code == 0
    names = sorted(p.name for p in dist.iterdir())
    assert names == sorted([*user_files, *(Path(t).name for t in TARBALLS.values())])


def test_package_all_lists_dist_once_and_parses_requirements_once(
    three: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 9: dist/ was globbed once per entry and requirements.txt parsed twice per entry.
    import micropkg_tasks.package as package_module
    import micropkg_tasks.requirements as requirements_module

    listed: list[str] = []
    parsed: list[Path] = []
    real_listdir, real_parse = os.listdir, requirements_module.parse_package_requirements

    def listdir(path: str | Path) -> list[str]:
        listed.append(str(path))
        return real_listdir(path)

    def parse(path: Path, **kwargs: object) -> tuple[str, ...]:
        parsed.append(path)
        return real_parse(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(package_module.os, "listdir", listdir)
    monkeypatch.setattr(requirements_module, "parse_package_requirements", parse)
    assert cli("package", "--all").code == 0
    assert [p for p in listed if Path(p).name == "dist"] == [str(three / "dist")]
    assert sorted(p.parent.name for p in parsed) == ["alpha", "beta", "gamma"]


def test_a_copied_project_never_removes_the_original_s_tarballs(
    three: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cp -r`` copies ``.micropkg/`` too: packaging the copy (its dist/ emptied, an alias
    changed) removes only the copy's own tarballs, never those of the project it came from."""
    rebuilt(cli, three)
    original = sorted(p.name for p in (three / "dist").iterdir())
    copy = tmp_path / "copy"
    shutil.copytree(three, copy, symlinks=True)
    monkeypatch.chdir(copy)
    for tarball in (copy / "dist").iterdir():
        tarball.unlink()
    assert cli("package", "--all").code == 0
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('alias = "bb"', 'alias = "bb2"'))
    result = cli("package", "--all")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (three / "dist").iterdir()) == original
    # within the copy, the previous alias's tarball still goes
    assert sorted(p.name for p in (copy / "dist").iterdir()) == [
        "alpha-0.1.tar.gz",
        "bb2-0.1.tar.gz",
        "gamma-0.1.tar.gz",
    ]
    assert records(copy)["pipelines.beta"] == {
        "entry": "pipelines.beta",
        "tarball": "dist/bb2-0.1.tar.gz",
    }


@pytest.mark.parametrize("inside", [True, False])
def test_an_older_absolute_record_counts_only_inside_this_project(
    three: Path, cli, tmp_path: Path, inside: bool
) -> None:
    """Records of older versions hold a bare absolute path: honoured inside this project,
    ignored elsewhere (it may be another project's tarball)."""
    rebuilt(cli, three)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    old = (three / "dist" if inside else elsewhere) / "bb-0.0.9.tar.gz"
    old.write_bytes(b"")
    # a project last packaged by an older version: a ``.last`` file per entry, no log
    (three / ".micropkg/package" / LOG_NAME).unlink()
    (three / ".micropkg/package/pipelines.beta.last").write_text(f"{old}\n")
    pyproject = three / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('alias = "bb"', 'alias = "bb2"'))
    assert cli("package", "--all").code == 0
    assert old.exists() is not inside


# --------------------------------------------------------------------------- tarball log


def _set_alias(root: Path, alias: str) -> None:
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        re.sub(
            r'"pipelines.beta" = \{alias = "\w+"\}',
            f'"pipelines.beta" = {{alias = "{alias}"}}',
            text,
        )
    )


def test_the_last_tarballs_are_one_log_appended_only_when_a_tarball_changes(
    three: Path, cli
) -> None:
    """Issue 9: a cold run created and renamed one ``.last`` file per entry; now one log
    holds a line per change, and a rebuild of the same tarball appends nothing."""
    rebuilt(cli, three)
    state = three / ".micropkg/package"
    assert sorted(p.name for p in state.iterdir()) == [LOG_NAME]
    assert records(three) == {
        entry: {"entry": entry, "tarball": tarball} for entry, tarball in TARBALLS.items()
    }
    log = (state / LOG_NAME).read_bytes()
    edit(three / "src/demo_proj/pipelines/alpha/nodes.py", "# edited\n")
    assert rebuilt(cli, three) == {"pipelines.alpha"}
    assert (state / LOG_NAME).read_bytes() == log
    _set_alias(three, "bb2")
    assert cli("package", "--all").code == 0
    assert (state / LOG_NAME).read_bytes().startswith(log)
    assert records(three)["pipelines.beta"]["tarball"] == "dist/bb2-0.1.tar.gz"
    assert not (three / "dist/bb-0.1.tar.gz").exists()


def test_older_last_files_are_honoured_then_replaced_by_the_log(three: Path, cli) -> None:
    """A project packaged by an earlier version has a ``.last`` file per entry and no log:
    the previous alias's tarball still goes, and that entry's file gives way to the log."""
    rebuilt(cli, three)
    state = three / ".micropkg/package"
    (state / LOG_NAME).unlink()
    for entry, tarball in TARBALLS.items():
        (state / f"{entry}.last").write_text(f"{tarball}\n")
    _set_alias(three, "bb2")
    result = cli("package", "--all")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (three / "dist").iterdir()) == [
        "alpha-0.1.tar.gz", "bb2-0.1.tar.gz", "gamma-0.1.tar.gz"
    ]  # fmt: skip
    assert sorted(p.name for p in state.iterdir()) == [
        "pipelines.alpha.last", "pipelines.gamma.last", LOG_NAME
    ]  # fmt: skip
    assert records(three) == {
        "pipelines.beta": {"entry": "pipelines.beta", "tarball": "dist/bb2-0.1.tar.gz"}
    }


def test_torn_and_foreign_lines_of_the_log_are_skipped(three: Path, cli) -> None:
    """A record torn by a crash or a full disk, and lines that are not whole records of
    ours, are skipped; the record after a torn one is read (each starts on a new line)."""
    rebuilt(cli, three)
    log = three / ".micropkg/package" / LOG_NAME
    hostile = [
        b"[1, 2]", b"\xff\xfe", b'{"entry": 1, "tarball": "dist/bb-0.1.tar.gz"}',
        b'{"entry": "pipelines.beta", "tarball": ""}',
        b'{"entry": "pipelines.beta", "tarball": "dist/x.tar.gz", "root": 3}',
    ]  # fmt: skip
    with log.open("ab") as fh:
        fh.write(b"\n" + b"\n".join(hostile) + b'\n{"entry": "pipelines.beta", "tarb')
    _set_alias(three, "bb2")
    assert cli("package", "--all").code == 0
    assert not (three / "dist/bb-0.1.tar.gz").exists()  # the record before the junk counts
    _set_alias(three, "bb3")
    assert cli("package", "--all").code == 0
    assert not (three / "dist/bb2-0.1.tar.gz").exists()  # and the one after the torn line
    assert records(three)["pipelines.beta"]["tarball"] == "dist/bb3-0.1.tar.gz"
    # a record pointing out of the project through ``..`` is never followed
    outside = three.parent / "bb9-0.1.tar.gz"
    outside.write_bytes(b"")
    with log.open("ab") as fh:
        fh.write(b'\n{"entry": "pipelines.beta", "tarball": "dist/../../bb9-0.1.tar.gz"}')
    _set_alias(three, "bb4")
    assert cli("package", "--all").code == 0
    assert outside.exists()


def test_a_log_of_many_superseded_lines_is_compacted(three: Path, cli) -> None:
    rebuilt(cli, three)
    log = three / ".micropkg/package" / LOG_NAME
    stale = b"".join(
        b'\n{"entry": "pipelines.beta", "tarball": "dist/bb-0.0.%d.tar.gz"}' % i for i in range(300)
    )
    log.write_bytes(stale + log.read_bytes())  # the real records last: they win
    # Loading the tasks reads nothing: listing them, or a run with nothing to build, leaves
    # the log as it is.
    assert cli("init").code == 0
    untouched = log.read_bytes()
    assert _doit(three, "list").returncode == 0
    assert cli("package", "--all").code == 0
    assert log.read_bytes() == untouched
    _set_alias(three, "bb2")
    assert cli("package", "--all").code == 0
    assert not (three / "dist/bb-0.1.tar.gz").exists()
    # compacted to a line per entry when read, then this run's change appended
    assert log.read_bytes().count(b"\n") == 4
    assert b"0.0." not in log.read_bytes()
    assert records(three) == {
        **{e: {"entry": e, "tarball": t} for e, t in TARBALLS.items()},
        "pipelines.beta": {"entry": "pipelines.beta", "tarball": "dist/bb2-0.1.tar.gz"},
    }


@pytest.mark.parametrize("parallel", ["thread", "process"])
def test_parallel_workers_all_append_their_records(three: Path, cli, parallel: str) -> None:
    """Forked doit workers append to the one log: every record lands, whole."""
    _set_alias(three, "bb2")
    for entry in ("alpha", "gamma"):
        pyproject = three / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text()
            .replace(
                f'"pipelines.{entry}" = {{', f'"pipelines.{entry}" = {{alias = "{entry[:2]}x", ', 1
            )
            .replace(", }", "}")
        )
    result = cli("package", "--all", "-n", "2", "-P", parallel)
    assert result.code == 0, result.err
    assert {e: r["tarball"] for e, r in records(three).items()} == {
        "pipelines.alpha": "dist/alx-0.1.tar.gz",
        "pipelines.beta": "dist/bb2-0.1.tar.gz",
        "pipelines.gamma": "dist/gax-0.1.tar.gz",
    }
