"""The doit side of pull: ``pull --all`` incrementality, remote ETags, ``pull_all`` with an
offline pip-tools compile, ``build-reqs [--check]`` and ``status``."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import plain_doit
from projects import add_pipeline, tree_snapshot, write
from servers import HTTPFileServer, S3Server
from wheelhouse import build_wheel

import micropkg_tasks.sources as sources_module

Cli = Callable[..., Any]

PIPELINES = ("data_proc", "reporting", "cleaning")
DATA_PROC = "../src_proj/dist/data_proc-0.1.tar.gz"
REPORTING = "../src_proj/dist/reporting-0.1.tar.gz"
CLEANING = "../src_proj/dist/cleaning-0.1.tar.gz"
MANIFEST = f"""
[tool.kedro.micropkg.pull]
"{DATA_PROC}" = {{env = "local"}}
"{REPORTING}" = {{alias = "beta", destination = "pipelines"}}
"{CLEANING}" = {{}}
"""
#: Where each entry's parameters file lands (proof of its options).
PLACED = {
    DATA_PROC: ("src/demo_proj/data_proc/pipeline.py", "conf/local/parameters_data_proc.yml"),
    REPORTING: ("src/demo_proj/pipelines/beta/pipeline.py", "conf/base/parameters_beta.yml"),
    CLEANING: ("src/demo_proj/cleaning/pipeline.py", "conf/base/parameters_cleaning.yml"),
}


@pytest.fixture(autouse=True)
def _fresh_filesystems() -> None:
    """Drop fsspec's cached S3 filesystem instances (each test has its own AWS environment)."""
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()


def package(cli: Cli, root: Path, module: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``micropkg package <module>`` run in ``root``; the CWD is restored afterwards."""
    previous = Path.cwd()
    monkeypatch.chdir(root)
    try:
        result = cli("package", module)
    finally:
        monkeypatch.chdir(previous)
    assert result.code == 0, result.err
    return root / "dist" / f"{module.rsplit('.', 1)[-1]}-0.1.tar.gz"


@pytest.fixture
def source(
    project: Path,
    project_factory: Callable[..., Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """``src_proj`` beside ``project`` with three pipelines, each packaged into ``dist/``."""
    root = project_factory("src_proj")
    assert root.parent == project.parent
    for name in PIPELINES:
        add_pipeline(root, name, requirements="alpha>=1.0\n" if name == "data_proc" else None)
        package(cli, root, f"pipelines.{name}", monkeypatch)
    return root


def append(path: Path, text: str) -> None:
    """Append ``text`` to ``path``."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def manifest_project(project: Path, source: Path) -> Path:
    """The consumer with three pull entries (plain, alias+destination, env)."""
    append(project / "pyproject.toml", MANIFEST)
    return project


def stamps(root: Path) -> dict[str, tuple[int, bytes]]:
    """(mtime_ns, content) of every project file outside the doit state."""
    return {
        rel: ((root / rel).stat().st_mtime_ns, data) for rel, data in tree_snapshot(root).items()
    }


def changed(before: dict[str, tuple[int, bytes]], after: dict[str, tuple[int, bytes]]) -> set[str]:
    """Files written, created or removed between two :func:`stamps`."""
    return {rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)}


def pulled_keys(out: str) -> set[str]:
    """The sources of the ``Pulled and unpacked '<source>'!`` lines."""
    prefix = "Pulled and unpacked '"
    return {line[len(prefix) : -2] for line in out.splitlines() if line.startswith(prefix)}


def pull_all(cli: Cli) -> tuple[Any, set[str]]:
    """``micropkg pull --all`` (must succeed) and the entries it pulled."""
    result = cli("pull", "--all")
    assert result.code == 0, result.err
    assert result.err == "", result.err
    return result, pulled_keys(result.out)


def edit_source(root: Path, name: str) -> None:
    """Change a source pipeline's ``nodes.py``."""
    append(root / "src/demo_proj/pipelines" / name / "nodes.py", "\n\nEDITED = True\n")


# --------------------------------------------------------------------------- pull --all


def test_pull_all_then_nothing(manifest_project: Path, cli: Cli) -> None:
    root = manifest_project
    result, keys = pull_all(cli)
    assert keys == set(PLACED)
    assert result.out.splitlines()[-1] == "Micro-packages pulled and unpacked!"
    for code, params in PLACED.values():
        assert (root / code).is_file(), code
        assert (root / params).is_file(), params
    beta = (root / "src/demo_proj/pipelines/beta/pipeline.py").read_text()
    assert "from demo_proj.pipelines.beta.nodes import helper" in beta
    assert (root / "tests/pipelines/beta/test_pipeline.py").is_file()
    assert (root / "tests/cleaning/test_pipeline.py").is_file()
    assert not (root / "conf/base/parameters_data_proc.yml").exists()

    before = tree_snapshot(root)  # doit re-saves its group task 'pull' in .micropkg/
    again, keys = pull_all(cli)
    assert keys == set()
    assert again.out == "All micro-packages are up to date.\n"
    assert tree_snapshot(root) == before

    status = cli("status")
    assert status.out.splitlines() == [
        f"cleaning  0.1  {CLEANING}  [clean]",
        f"data_proc  0.1  {DATA_PROC}  [clean]",
        f"pipelines.beta  0.1  {REPORTING}  [clean]",
    ]


@pytest.fixture
def lock_parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every parse of ``micropkg.lock`` (the path read), in order."""
    import micropkg_tasks.lockfile as lockfile

    calls: list[Path] = []
    real = lockfile.read_lock

    def counting(path: Path) -> Any:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(lockfile, "read_lock", counting)
    return calls


def test_pull_all_parses_the_lock_once_per_run(
    manifest_project: Path,
    source: Path,
    cli: Cli,
    lock_parses: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 9: the lock was parsed twice per pulled entry and once per up-to-date check.
    _, keys = pull_all(cli)
    assert keys == set(PLACED)
    assert len(lock_parses) == 1
    lock_parses.clear()
    _, keys = pull_all(cli)  # nothing to do: the checks read the sources kept with the lock
    assert keys == set()
    assert len(lock_parses) == 0
    (manifest_project / ".micropkg" / "lock-sources.json").unlink()
    _, keys = pull_all(cli)  # without them, every check reads the same parsed lock
    assert keys == set()
    assert len(lock_parses) == 1
    lock_parses.clear()
    for name in PIPELINES:
        edit_source(source, name)
        package(cli, source, f"pipelines.{name}", monkeypatch)
    _, keys = pull_all(cli)  # three upgrades, one parse
    assert keys == set(PLACED)
    assert len(lock_parses) == 1
    lock = (manifest_project / "micropkg.lock").read_text()
    assert all(f'source = "{src}"' in lock for src in PLACED)


def test_pull_all_in_threads_records_every_entry(manifest_project: Path, cli: Cli) -> None:
    from micropkg_tasks.lockfile import read_lock

    result = cli("pull", "--all", "-n", "3", "-P", "thread")
    assert result.code == 0, result.err
    lock = read_lock(manifest_project / "micropkg.lock")
    assert sorted(e.source for e in lock.entries.values()) == sorted(PLACED)
    _, keys = pull_all(cli)
    assert keys == set()


def test_rebuilding_one_tarball_repulls_exactly_that_entry(
    manifest_project: Path, source: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = manifest_project
    pull_all(cli)
    edit_source(source, "cleaning")
    package(cli, source, "pipelines.cleaning", monkeypatch)

    before = stamps(root)
    result, keys = pull_all(cli)
    assert keys == {CLEANING}
    assert result.out.splitlines()[-1] == "Micro-packages pulled and unpacked!"
    assert changed(before, stamps(root)) == {"src/demo_proj/cleaning/nodes.py", "micropkg.lock"}
    assert "EDITED = True" in (root / "src/demo_proj/cleaning/nodes.py").read_text()
    assert pull_all(cli)[1] == set()


def test_repackaging_unchanged_source_pulls_nothing(
    manifest_project: Path, source: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-running ``micropkg package`` with no change keeps the tarball: nothing to pull."""
    pull_all(cli)
    tarball = source / "dist/reporting-0.1.tar.gz"
    later = tarball.stat().st_mtime + 5
    os.utime(tarball, (later, later))  # a newer mtime alone is not a change (md5 check)
    package(cli, source, "pipelines.reporting", monkeypatch)
    assert pull_all(cli)[1] == set()


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        (
            '{alias = "beta", destination = "pipelines"}',
            '{alias = "gamma", destination = "pipelines"}',
            REPORTING,
            {"src/demo_proj/pipelines/gamma/pipeline.py", "conf/base/parameters_gamma.yml"},
        ),
        (
            '{env = "local"}',
            '{env = "base"}',
            DATA_PROC,
            {"conf/base/parameters_data_proc.yml"},
        ),
        (
            f'"{CLEANING}" = {{}}',
            f'"{CLEANING}" = {{destination = "pipelines"}}',
            CLEANING,
            {
                "src/demo_proj/pipelines/cleaning/pipeline.py",
                "tests/pipelines/cleaning/__init__.py",
            },
        ),
    ],
    ids=["alias", "env", "destination"],
)
def test_changing_one_option_repulls_that_entry_only(
    manifest_project: Path, cli: Cli, old: str, new: str, key: str, expected: set[str]
) -> None:
    root = manifest_project
    pull_all(cli)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert text.count(old) == 1
    pyproject.write_text(text.replace(old, new))

    before = stamps(root)
    _, keys = pull_all(cli)
    assert keys == {key}
    writes = changed(before, stamps(root)) - {"pyproject.toml", "micropkg.lock"}
    assert expected <= writes
    others = {path for k, paths in PLACED.items() if k != key for path in paths}
    assert not writes & others
    assert pull_all(cli)[1] == set()


def test_env_change_moves_the_parameters(manifest_project: Path, cli: Cli) -> None:
    """An upgrade, not a copy: the file of the old env (written by the last pull) is removed."""
    root = manifest_project
    pull_all(cli)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('{env = "local"}', '{env = "base"}'))
    pull_all(cli)
    assert (root / "conf/base/parameters_data_proc.yml").is_file()
    assert not (root / "conf/local/parameters_data_proc.yml").exists()


def test_failed_single_pull_does_not_invalidate_manifest_entry(
    manifest_project: Path, cli: Cli, tmp_path: Path
) -> None:
    pull_all(cli)
    failed = cli("pull", str(tmp_path / "elsewhere" / "data_proc-0.1.tar.gz"))
    assert failed.code == 1
    result, keys = pull_all(cli)
    assert keys == set()
    assert result.out == "All micro-packages are up to date.\n"


# --------------------------------------------------------------------------- remote source


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every source that ``sources.fetch`` downloads, in order."""
    calls: list[str] = []
    real = sources_module.fetch

    def spy(source: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(sources_module, "fetch", spy)
    return calls


def test_remote_s3_source_compares_etag(
    project: Path,
    source: Path,
    cli: Cli,
    s3: S3Server,
    s3_bucket: str,
    fetches: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = project
    tarball = source / "dist/data_proc-0.1.tar.gz"
    url = s3.put(s3_bucket, "pkgs/data_proc-0.1.tar.gz", tarball.read_bytes())
    append(root / "pyproject.toml", f'\n[tool.kedro.micropkg.pull]\n"{url}" = {{}}\n')

    assert pull_all(cli)[1] == {url}
    assert fetches == [url]

    before = stamps(root)
    result, keys = pull_all(cli)
    assert (keys, result.out) == (set(), "All micro-packages are up to date.\n")
    assert fetches == [url], "an unchanged object was downloaded again"
    assert changed(before, stamps(root)) == set()

    s3.put(s3_bucket, "pkgs/data_proc-0.1.tar.gz", tarball.read_bytes())  # same bytes, same ETag
    assert pull_all(cli)[1] == set()
    assert fetches == [url]

    edit_source(source, "data_proc")
    s3.put(
        s3_bucket,
        "pkgs/data_proc-0.1.tar.gz",
        package(cli, source, "pipelines.data_proc", monkeypatch).read_bytes(),
    )
    assert pull_all(cli)[1] == {url}
    assert fetches == [url, url]
    assert changed(before, stamps(root)) == {"src/demo_proj/data_proc/nodes.py", "micropkg.lock"}
    assert pull_all(cli)[1] == set()


def test_remote_http_source_compares_etag(
    project: Path,
    source: Path,
    cli: Cli,
    http_server: HTTPFileServer,
    fetches: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same over HTTP with ``fs-args`` in the manifest: an unchanged ETag means no GET."""
    root = project
    tarball = source / "dist/data_proc-0.1.tar.gz"
    url = http_server.put("data_proc-0.1.tar.gz", tarball.read_bytes())
    http_server.write_fs_args(root / "http.yml")
    append(
        root / "pyproject.toml",
        f'\n[tool.kedro.micropkg.pull]\n"{url}" = {{fs-args = "http.yml"}}\n',
    )

    assert pull_all(cli)[1] == {url}
    http_server.log.clear()
    assert pull_all(cli)[1] == set()
    assert fetches == [url]
    assert [method for method, _, _ in http_server.log if method == "GET"] == []

    edit_source(source, "data_proc")
    package(cli, source, "pipelines.data_proc", monkeypatch)
    http_server.put("data_proc-0.1.tar.gz", tarball.read_bytes())
    assert pull_all(cli)[1] == {url}
    assert "EDITED = True" in (root / "src/demo_proj/data_proc/nodes.py").read_text()


# --------------------------------------------------------------------------- pull_all + build_reqs


@pytest.fixture
def offline_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A wheelhouse (alpha 1.0 → beta 2.0) and pip configured to use only it."""
    house = tmp_path / "wheelhouse"
    build_wheel(house, "alpha", "1.0", requires=["beta>=2"])
    build_wheel(house, "beta", "2.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return house


@pytest.fixture
def consumer(
    project_factory: Callable[..., Path],
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """A consumer without requirements.txt, pulling ``data_proc`` (needs ``alpha>=1.0``)."""
    root = project_factory("consumer", requirements="")
    append(root / "pyproject.toml", f'\n[tool.kedro.micropkg.pull]\n"{DATA_PROC}" = {{}}\n')
    monkeypatch.chdir(root)
    yield root


def assert_compiled(root: Path, tmp_path: Path) -> str:
    """requirements.txt pins alpha and beta, records the input's hash, and leaks no paths."""
    text = (root / "requirements.txt").read_text()
    lines = text.splitlines()
    assert "alpha==1.0" in lines
    assert "beta==2.0" in lines
    digest = hashlib.sha256((root / "requirements.in").read_bytes()).hexdigest()
    assert f"# micropkg: requirements.in sha256={digest}" in lines
    assert "micropkg build-reqs" in text
    assert "--find-links" not in text
    assert "--no-index" not in text
    assert str(tmp_path) not in text
    assert "/tmp" not in text
    return text


def mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


@pytest.mark.parametrize("upgrade", [False, True], ids=["first-pull", "upgrade"])
def test_doit_pull_all_compiles_what_its_pull_added(
    consumer: Path,
    source: Path,
    offline_pip: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upgrade: bool,
) -> None:
    root = consumer
    if upgrade:
        build_wheel(offline_pip, "gamma", "0.5")
        cli("doit", "pull_all")
        cli("doit", "build_reqs")
        write(source / "src/demo_proj/pipelines/data_proc/requirements.txt", "alpha>=1.0\ngamma\n")
        package(cli, source, "pipelines.data_proc", monkeypatch)
    result = cli("doit", "pull_all")
    assert result.code == 0, result.err
    assert pulled_keys(result.out) == {DATA_PROC}
    assert "Compiled requirements.in into requirements.txt." in result.out
    text = assert_compiled(root, tmp_path)
    assert ("gamma==0.5" in text.splitlines()) is upgrade


def test_doit_pull_all_offline_compile_then_only_when_requirements_in_changes(
    consumer: Path, offline_pip: Path, cli: Cli, tmp_path: Path
) -> None:
    root = consumer
    result = cli("doit", "pull_all")
    assert result.code == 0, result.err
    assert pulled_keys(result.out) == {DATA_PROC}
    assert (root / "src/demo_proj/data_proc/pipeline.py").is_file()
    assert "alpha>=1.0" in (root / "requirements.in").read_text().splitlines()
    result = cli("doit", "build_reqs")
    assert result.code == 0, result.err
    assert_compiled(root, tmp_path)

    stamp = mtime(root / "requirements.txt")
    before = tree_snapshot(root)
    again = cli("doit", "pull_all")  # doit's own lines: nothing ran, everything up to date
    assert (again.code, again.out, again.err) == (0, "-- pull:data_proc\n-- pull_all\n", "")
    assert mtime(root / "requirements.txt") == stamp
    assert tree_snapshot(root) == before

    # A hand edit of requirements.in: build_reqs (alone or through pull_all) recompiles once.
    append(root / "requirements.in", "beta>=1.5\n")
    result = cli("doit", "build_reqs")
    assert result.code == 0, result.err
    assert result.out == ".  build_reqs\nCompiled requirements.in into requirements.txt.\n"
    assert mtime(root / "requirements.txt") != stamp
    assert_compiled(root, tmp_path)
    stamp = mtime(root / "requirements.txt")
    assert cli("doit", "build_reqs").out == "-- build_reqs\n"
    assert mtime(root / "requirements.txt") == stamp

    append(root / "requirements.in", "# a comment changes the input too\n")
    result = cli("doit", "pull_all")
    assert result.code == 0, result.err
    assert result.out == (
        "-- pull:data_proc\n.  pull_all\nCompiled requirements.in into requirements.txt.\n"
    )
    assert_compiled(root, tmp_path)
    stamp = mtime(root / "requirements.txt")
    assert cli("doit", "pull_all").out == "-- pull:data_proc\n-- pull_all\n"
    assert mtime(root / "requirements.txt") == stamp


def test_plain_doit_after_init_shares_state(
    consumer: Path, offline_pip: Path, cli: Cli, tmp_path: Path
) -> None:
    """``python -m doit pull_all`` with the one-line dodo.py of ``micropkg init``."""
    root = consumer
    result = cli("init")
    assert result.code == 0, result.err
    assert (root / "dodo.py").read_text() == "from micropkg_tasks.tasks import *  # noqa: F403\n"
    assert ".micropkg/" in (root / ".gitignore").read_text().splitlines()

    def doit(*args: str) -> str:
        proc = plain_doit(root, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stderr == "", proc.stderr
        return proc.stdout

    first = doit("pull_all")
    assert pulled_keys(first) == {DATA_PROC}, first
    # The compile happens in this run or, with the pull_all ordering bug, in the next one.
    second = doit("pull_all")
    assert pulled_keys(second) == set()
    assert (first + second).count("Compiled requirements.in into requirements.txt.") == 1
    assert_compiled(root, tmp_path)

    stamp = mtime(root / "requirements.txt")
    again = cli("doit", "pull_all")  # the micropkg CLI sees plain doit's state
    assert (again.code, again.out) == (0, "-- pull:data_proc\n-- pull_all\n")
    assert doit("pull_all") == "-- pull:data_proc\n-- pull_all\n"
    assert mtime(root / "requirements.txt") == stamp


# --------------------------------------------------------------------------- build-reqs


@pytest.fixture
def broken_resolver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip can find nothing (no index, an empty find-links folder): a real compile fails."""
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return empty


def fresh_requirements(root: Path) -> None:
    """requirements.in and a requirements.txt marked as compiled from it (no resolver run)."""
    req_in = write(root / "requirements.in", "alpha>=1.0\n")
    digest = hashlib.sha256(req_in.read_bytes()).hexdigest()
    write(
        root / "requirements.txt",
        f"# compiled\n# micropkg: requirements.in sha256={digest}\nalpha==1.0\nbeta==2.0\n",
    )


def test_build_reqs_check_and_up_to_date_start_no_resolver(
    project: Path, cli: Cli, broken_resolver: Path, no_processes: list[Any]
) -> None:
    root = project
    fresh_requirements(root)
    txt_before = (root / "requirements.txt").read_bytes()

    started = time.monotonic()
    result = cli("build-reqs", "--check")
    assert (result.code, result.out, result.err) == (0, "", "")
    result = cli("build-reqs")
    assert (result.code, result.err) == (0, "")
    assert result.out == "requirements.txt is up to date.\n"

    append(root / "requirements.in", "beta\n")
    result = cli("build-reqs", "--check")
    assert result.code == 1
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    assert "requirements.txt is out of date with requirements.in" in lines[0]
    assert time.monotonic() - started < 2
    assert (root / "requirements.txt").read_bytes() == txt_before


def test_broken_resolver_fixture_really_breaks_a_compile(
    project: Path, cli: Cli, broken_resolver: Path
) -> None:
    """Control for the test above: with that environment a real compile fails (and keeps the
    old requirements.txt)."""
    root = project
    fresh_requirements(root)
    append(root / "requirements.in", "beta\n")
    txt_before = (root / "requirements.txt").read_bytes()
    result = cli("build-reqs")
    assert result.code == 1
    assert result.err.startswith("Error: Compiling requirements.in with pip-tools failed")
    assert (root / "requirements.txt").read_bytes() == txt_before


# --------------------------------------------------------------------------- status


def test_status_clean_then_modified(project: Path, source: Path, cli: Cli) -> None:
    root = project
    assert cli("status").out == "No micro-package pulled yet (no micropkg.lock).\n"
    assert cli("pull", DATA_PROC).code == 0
    result = cli("status")
    assert result.code == 0, result.err
    assert result.out == f"data_proc  0.1  {DATA_PROC}  [clean]\n"

    append(root / "src/demo_proj/data_proc/nodes.py", "# local edit\n")
    (root / "tests/data_proc/test_pipeline.py").unlink()
    result = cli("status")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"data_proc  0.1  {DATA_PROC}  [modified]",
        "  modified: src/demo_proj/data_proc/nodes.py",
        "  missing:  tests/data_proc/test_pipeline.py",
    ]


# --------------------------------------------------------------------------- the lock, once per run


def _pending(root: Path) -> Path:
    from micropkg_tasks.lockfile import PENDING_NAME

    return root / ".micropkg" / PENDING_NAME


def test_pull_all_writes_the_lock_once_when_the_run_ends(
    manifest_project: Path,
    project_factory: Callable[..., Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 9: each pull's transaction appends its entry to the pending log; the lock is
    written once, at the end, the same bytes as pulling one entry at a time writes."""
    import micropkg_tasks.lockfile as lockfile
    import micropkg_tasks.pull as pull_module
    from micropkg_tasks.lockfile import read_lock, render_lock

    root = manifest_project
    lock_path = root / "micropkg.lock"
    written: list[Path] = []
    real_write = lockfile.atomic_write

    def counting(path: Path, data: bytes | str, **kwargs: Any) -> None:
        written.append(path)
        real_write(path, data, **kwargs)

    monkeypatch.setattr(lockfile, "atomic_write", counting)
    commits: list[tuple[bool, bool, int]] = []  # (writes the lock, appends, pending lines)
    real_commit = pull_module.commit

    def spy(project: Any, writes: Any, removals: Any, **kwargs: Any) -> None:
        log = _pending(root)
        lines = log.read_bytes().count(b"\n") if log.exists() else 0
        commits.append((lock_path in writes, kwargs.get("append") is not None, lines))
        real_commit(project, writes, removals, **kwargs)

    monkeypatch.setattr(pull_module, "commit", spy)
    _, keys = pull_all(cli)
    assert keys == set(PLACED)
    assert commits == [(False, True, 0), (False, True, 1), (False, True, 2)]
    assert written == [lock_path, root / ".micropkg" / "lock-sources.json"]
    assert not _pending(root).exists()
    lock = read_lock(lock_path)
    assert sorted(e.source for e in lock.entries.values()) == sorted(PLACED)
    assert lock_path.read_text(encoding="utf-8") == render_lock(lock)

    # One pull at a time (each rewrites the lock in its transaction): the same lock.
    monkeypatch.undo()
    other = project_factory("proj2")
    monkeypatch.chdir(other)
    for args in (
        (DATA_PROC, "--env", "local"),
        (REPORTING, "--alias", "beta", "--destination", "pipelines"),
        (CLEANING,),
    ):
        result = cli("pull", *args)
        assert result.code == 0, result.err
    assert (other / "micropkg.lock").read_bytes() == lock_path.read_bytes()
    assert (other / "requirements.in").read_bytes() == (root / "requirements.in").read_bytes()


def test_the_next_command_writes_what_a_killed_run_left_pending(
    manifest_project: Path, cli: Cli
) -> None:
    from micropkg_tasks.lockfile import Lock, pending_line, read_lock, render_lock_bytes

    root = manifest_project
    pull_all(cli)
    lock_path = root / "micropkg.lock"
    whole = lock_path.read_bytes()
    first, second, third = sorted(read_lock(lock_path).entries.values(), key=lambda e: e.module)
    # Killed after three commits, before its lock: one line torn by a full disk, one appended
    # again by the recovery of its journal.
    lock_path.write_bytes(render_lock_bytes(Lock({first.module: first})))
    log = _pending(root)
    two, three = pending_line(second), pending_line(third)
    log.write_bytes(two + three[:40] + three + two)
    result = cli("status")
    assert result.code == 0, result.err
    assert (
        "Recovered: wrote the 2 micro-package(s) the interrupted pull had pulled to "
        "micropkg.lock." in result.err_lines
    )
    assert lock_path.read_bytes() == whole
    assert not log.exists()
    assert cli("status").err == ""  # nothing more to recover
    _, keys = pull_all(cli)
    assert keys == set()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[1, 2]", "Cannot read 'lock.pending.jsonl': line 2 is not a pulled entry"),
        (b"[" * 100_000, "Cannot read 'lock.pending.jsonl': line 2 is not a pulled entry"),
        (
            b'{"module": "evil", "entry": {"source": "x.tar.gz", "sha256": "'
            + b"0" * 64
            + b'", "package": "evil", "files": {"../../outside.py": "'
            + b"0" * 64
            + b'"}}}',
            "Cannot read 'lock.pending.jsonl': entry 'evil' lists the file '../../outside.py'",
        ),
        (
            b'{"module": "evil", "entry": {"source": "x.tar.gz", "sha256": "'
            + b"0" * 64
            + b'", "package": "evil", "files": {"pyproject.toml": "'
            + b"0" * 64
            + b'"}}}',
            "Cannot use 'micropkg.lock': entry 'evil' lists the file 'pyproject.toml': it is "
            "outside the folders a pull writes to",
        ),
    ],
)
def test_a_hostile_pending_log_is_refused(
    manifest_project: Path, cli: Cli, line: bytes, message: str
) -> None:
    root = manifest_project
    pull_all(cli)
    lock = (root / "micropkg.lock").read_bytes()
    _pending(root).write_bytes(b"\n" + line)
    result = cli("status")
    assert result.code == 1
    assert result.err.startswith(f"Error: {message}"), result.err
    assert len(result.err.splitlines()) == 1
    assert (root / "micropkg.lock").read_bytes() == lock
    assert (root / "outside.py").exists() is False


def test_a_pending_log_that_cannot_be_read_is_one_error_line(
    manifest_project: Path, cli: Cli
) -> None:
    root = manifest_project
    pull_all(cli)
    lock = (root / "micropkg.lock").read_bytes()
    _pending(root).mkdir()  # reading it fails
    result = cli("status")
    assert result.code == 1
    assert result.err_lines == [
        "Error: Cannot read '.micropkg/lock.pending.jsonl': Is a directory; fix or delete it."
    ]
    assert (root / "micropkg.lock").read_bytes() == lock
    _pending(root).rmdir()
    assert cli("status").code == 0


def test_a_lock_that_cannot_be_written_when_the_run_ends(
    manifest_project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk when the lock is written: one ``Error:`` line, exit code 1; the pulled
    files stay, their entries in the pending log, which the next command writes."""
    import micropkg_tasks.faults as faults
    from micropkg_tasks.lockfile import read_lock

    root = manifest_project
    monkeypatch.setattr(faults, "_seen", {})
    monkeypatch.setenv("MICROPKG_TEST_FAULT", "lock-write:ENOSPC")
    result = cli("pull", "--all")
    assert result.code == 1
    assert result.err_lines == [
        "Error: Cannot write 'micropkg.lock' ([Errno 28] No space left on device); what was "
        "pulled is recorded in '.micropkg/lock.pending.jsonl', which the next micropkg "
        "command writes to it."
    ]
    assert not (root / "micropkg.lock").exists()
    assert _pending(root).read_bytes().count(b"\n") == 3
    assert all((root / rel).is_file() for placed in PLACED.values() for rel in placed)
    monkeypatch.delenv("MICROPKG_TEST_FAULT")
    result = cli("status")
    assert result.code == 0, result.err
    assert result.err.startswith("Recovered: wrote the 3 micro-package(s)")
    lock = read_lock(root / "micropkg.lock")
    assert sorted(e.source for e in lock.entries.values()) == sorted(PLACED)
    _, keys = pull_all(cli)
    assert keys == set()


def test_plain_doit_reports_a_lock_it_cannot_write_once(manifest_project: Path, cli: Cli) -> None:
    """``doit pull`` writes the lock in its pull tasks' teardown: a failure there is one
    ``Error:`` line, however many entries were pulled."""
    root = manifest_project
    assert cli("init").code == 0
    env = {**os.environ, "MICROPKG_TEST_FAULT": "lock-write:ENOSPC"}
    result = plain_doit(root, "pull", env=env)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: Cannot write 'micropkg.lock' ([Errno 28] No space left on device); what was "
        "pulled is recorded in '.micropkg/lock.pending.jsonl', which the next micropkg "
        "command writes to it."
    ], result.stderr
    assert not (root / "micropkg.lock").exists()
    result = plain_doit(root, "pull")  # every entry is up to date: the log is written first
    assert result.returncode == 0, result.stderr
    assert "Recovered: wrote the 3 micro-package(s)" in result.stderr
    assert not _pending(root).exists()
    assert (root / "micropkg.lock").is_file()


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_parallel_plain_doit_records_every_entry(
    manifest_project: Path, cli: Cli, mode: str
) -> None:
    """``-P process``: each process appends to the pending log and writes the lock at its
    end, after the others' entries (read from the log)."""
    from micropkg_tasks.lockfile import read_lock, render_lock

    root = manifest_project
    assert cli("init").code == 0
    result = plain_doit(root, "-n", "3", "-P", mode, "pull")
    assert result.returncode == 0, result.stderr
    lock = read_lock(root / "micropkg.lock")
    assert sorted(e.source for e in lock.entries.values()) == sorted(PLACED)
    assert (root / "micropkg.lock").read_text(encoding="utf-8") == render_lock(lock)
    assert not _pending(root).exists()
    _, keys = pull_all(cli)
    assert keys == set()


def test_the_sources_kept_with_the_lock_are_used_only_for_that_lock(
    manifest_project: Path, cli: Cli, lock_parses: list[Path]
) -> None:
    """``.micropkg/lock-sources.json`` spares a nothing-to-pull run the parse of the lock,
    only while it was written for the lock file on disk: an edited lock is read again."""
    import json

    from micropkg_tasks.lockfile import Lock, read_lock, render_lock

    root = manifest_project
    pull_all(cli)
    kept = root / ".micropkg" / "lock-sources.json"
    data = json.loads(kept.read_text())
    assert sorted(data["sources"]) == sorted(PLACED)
    lock_path = root / "micropkg.lock"
    st = lock_path.stat()
    assert data["lock"] == [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    lock_parses.clear()
    assert pull_all(cli)[1] == set()
    assert lock_parses == []

    # The lock edited by hand (an entry deleted): read again, and that entry pulled again.
    lock = read_lock(lock_path)
    kept_entries = {m: e for m, e in lock.entries.items() if e.source != CLEANING}
    lock_path.write_text(render_lock(Lock(kept_entries)))
    assert pull_all(cli)[1] == {CLEANING}
    assert json.loads(kept.read_text())["sources"] == sorted(PLACED)

    # Not what we write, or written for another lock: ignored.
    for garbage in ("[", '{"lock": [1, 2, 3, 4], "sources": []}', '{"lock": 1}', "[" * 100_000):
        kept.write_text(garbage)
        lock_parses.clear()
        assert pull_all(cli)[1] == set()
        assert len(lock_parses) == 1
    forged = dict(json.loads(kept.read_text()), sources=[])  # rewritten for this lock
    kept.write_text(json.dumps(forged))
    # A forged file can only make pulls run: the first entry's (its pull then reads the
    # lock, which the next checks use).
    assert pull_all(cli)[1] == {DATA_PROC}


@pytest.mark.parametrize("keep_going", [False, True])
def test_an_entry_written_but_not_recorded_is_recorded_by_the_next_transaction_or_command(
    manifest_project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, keep_going: bool
) -> None:
    """A full disk after an entry's commit, when its line is appended to the pending log: one
    ``Error:`` line; its committed journal stays, and the next transaction of the run
    (``--keep-going``) or the next command records the entry before anything else."""
    import micropkg_tasks.faults as faults
    from micropkg_tasks.lockfile import read_lock

    root = manifest_project
    monkeypatch.setattr(faults, "_seen", {})
    monkeypatch.setenv("MICROPKG_TEST_FAULT", "append#2:ENOSPC")
    result = cli("pull", "--all", *(["--keep-going"] if keep_going else []))
    assert result.code == 1
    errors = [line for line in result.err_lines if "could not be recorded" in line]
    assert len(errors) == 1, result.err
    assert errors[0].startswith("Error: The pull of '")
    assert errors[0].endswith(
        "' was written but could not be recorded ([Errno 28] No space left on device); the "
        "next micropkg command in this project records it."
    )
    committed = root / ".micropkg" / "journal.committed.json"
    assert committed.exists() is not keep_going
    recorded = read_lock(root / "micropkg.lock").entries
    assert len(recorded) == (3 if keep_going else 1)
    monkeypatch.delenv("MICROPKG_TEST_FAULT")
    result = cli("status")
    assert result.code == 0, result.err
    assert ("Recovered: completed the interrupted pull of '" in result.err) is not keep_going
    assert not committed.exists() and not _pending(root).exists()
    lock = read_lock(root / "micropkg.lock")
    assert len(lock.entries) == (3 if keep_going else 2)
    assert all((root / rel).is_file() for entry in lock.entries.values() for rel in entry.files)
