"""The pull transaction's guarantees besides crashes (those are in test_faults.py): re-pulls
change nothing, ownership across micro-packages, file modes, a file where a folder must go,
``config/`` code packages, recovery messages and the litter of interrupted runs."""

from __future__ import annotations

import fcntl
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from projects import add_pipeline, make_project, tree_snapshot, write

from micropkg_tasks.lockfile import LOCK_NAME, read_lock

Cli = Callable[..., object]


def make_sdist(
    folder: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes | str],
    *,
    requires: tuple[str, ...] = (),
    modes: Mapping[str, int] | None = None,
) -> Path:
    """A hand-made sdist ``<name>-<version>.tar.gz``: ``files`` are relative to its top folder
    (``<name>/nodes.py``, ``tests/test_x.py``); ``PKG-INFO`` and ``<name>/__init__.py`` are
    added."""
    top = f"{name}-{version}"
    metadata = f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    members: dict[str, bytes] = {"PKG-INFO": metadata.encode(), f"{name}/__init__.py": b""}
    members.update({k: v.encode() if isinstance(v, str) else v for k, v in files.items()})
    path = folder / f"{top}.tar.gz"
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for rel, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = len(data)
            info.mode = (modes or {}).get(rel, 0o644)
            tar.addfile(info, io.BytesIO(data))
    return path


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project (package ``consumer_pkg``) as the CWD."""
    root = make_project(tmp_path / "consumer", package="consumer_pkg")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def data_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> Path:
    """``data_proc-0.1.tar.gz`` packaged by us from a source project (with utils/, tests,
    parameters)."""
    root = make_project(tmp_path / "source")
    code = add_pipeline(root, "data_proc", requirements="pandas>=1.0\n")
    write(code / "utils/__init__.py", "")
    write(code / "utils/tools.py", "X = 1\n")
    write(root / "conf/base/parameters/data_proc/p1.yml", "p1: 1\n")
    previous = Path.cwd()
    monkeypatch.chdir(root)
    assert cli("package", "pipelines.data_proc").code == 0
    monkeypatch.chdir(previous)
    return root / "dist/data_proc-0.1.tar.gz"


def mtimes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if ".micropkg" not in p.parts
    }


# --------------------------------------------------------------------------- issue 7 item 4


def test_repull_into_a_project_without_the_folders_changes_no_byte(
    tmp_path: Path, data_proc: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """The first pull creates pipelines/ and tests/ with their __init__.py; pulling the same
    tarball again keeps them, changes nothing, and --dry-run says there is nothing to do."""
    root = make_project(tmp_path / "bare", package="consumer_pkg")
    for folder in ("src/consumer_pkg/pipelines", "tests"):
        for path in sorted((root / folder).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (root / folder).rmdir()
    monkeypatch.chdir(root)
    args = ("pull", str(data_proc), "-d", "pipelines")
    assert cli(*args).code == 0
    created = [
        "src/consumer_pkg/pipelines/__init__.py",
        "tests/__init__.py",
        "tests/pipelines/__init__.py",
    ]
    for rel in created:
        assert (root / rel).is_file(), rel
    before, stamps = tree_snapshot(root), mtimes(root)

    dry = cli(*args, "--dry-run")
    assert dry.code == 0, dry.err
    assert [line for line in dry.out.splitlines() if line.startswith("  ")] == []
    assert "0 to write (0 merged), 0 to remove" in dry.out

    assert cli(*args).code == 0
    assert tree_snapshot(root) == before
    assert mtimes(root) == stamps
    status = cli("status")
    assert status.out.splitlines() == [f"pipelines.data_proc  0.1  {_rel(data_proc)}  [clean]"]
    lock = read_lock(root / LOCK_NAME).entries["pipelines.data_proc"]
    assert set(created) <= set(lock.files)


def _rel(path: Path) -> str:
    return os.path.relpath(path, Path.cwd())


def test_upgrade_keeps_an_init_whose_folder_has_other_files(
    tmp_path: Path, consumer: Path, cli
) -> None:
    """0.2 drops utils/ (utils/__init__.py and utils/tools.py); the user added utils/mine.py:
    tools.py goes, __init__.py stays (utils/ is still a package). Without the user's file the
    whole folder goes."""
    files = {"xmod/nodes.py": "", "xmod/utils/__init__.py": "", "xmod/utils/tools.py": "T = 1\n"}
    v1 = make_sdist(tmp_path / "d1", "xmod", "0.1", files)
    v2 = make_sdist(tmp_path / "d2", "xmod", "0.2", {"xmod/nodes.py": "N = 2\n"})
    assert cli("pull", str(v1)).code == 0
    utils = consumer / "src/consumer_pkg/xmod/utils"
    write(utils / "mine.py", "M = 1\n")
    result = cli("pull", str(v2))
    assert result.code == 0, result.err
    assert sorted(p.name for p in utils.iterdir()) == ["__init__.py", "mine.py"]

    (utils / "mine.py").unlink()
    assert cli("pull", str(v1)).code == 0
    assert cli("pull", str(v2)).code == 0
    assert not utils.exists()


# --------------------------------------------------------------------------- issue 8 item 8


def test_upgrading_one_micropackage_keeps_what_another_needs(
    tmp_path: Path, consumer: Path, cli
) -> None:
    """A and B need ``shared>=1.0`` (B's line is skipped as a duplicate) and ship the same
    parameter file. A 0.2 drops both: they stay, because B still needs them."""
    shared = {"config/parameters/shared.yml": "rate: 1\n"}
    a1 = make_sdist(
        tmp_path / "a1", "alpha_mp", "0.1", _prefixed("alpha_mp", shared), requires=("shared>=1.0",)
    )
    b1 = make_sdist(
        tmp_path / "b1", "beta_mp", "0.1", _prefixed("beta_mp", shared), requires=("shared>=1.0",)
    )
    a2 = make_sdist(tmp_path / "a2", "alpha_mp", "0.2", {}, requires=("other",))
    assert cli("pull", str(a1)).code == 0
    assert cli("pull", str(b1)).code == 0
    requirements = consumer / "requirements.in"
    assert requirements.read_text().count("shared>=1.0") == 1
    params = consumer / "conf/base/parameters/shared.yml"

    result = cli("pull", str(a2))
    assert result.code == 0, result.err
    assert "shared>=1.0" in requirements.read_text().splitlines()
    assert params.read_text() == "rate: 1\n"
    assert "beta_mp  0.1" in cli("status").out.split("[clean]")[1]
    lock = read_lock(consumer / LOCK_NAME).entries
    assert "conf/base/parameters/shared.yml" not in lock["alpha_mp"].files
    assert lock["alpha_mp"].requirements == ("other", "shared>=1.0")  # still in its block
    assert lock["beta_mp"].requires == ("shared>=1.0",)

    # Once B no longer needs it either, A's next pull removes its line.
    b2 = make_sdist(tmp_path / "b2", "beta_mp", "0.2", {})
    assert cli("pull", str(b2)).code == 0
    assert not params.exists()
    assert cli("pull", str(a2)).code == 0
    assert "shared>=1.0" not in requirements.read_text()


def test_removing_one_micropackage_keeps_what_another_needs(
    tmp_path: Path, consumer: Path, cli
) -> None:
    shared = {"config/parameters/shared.yml": "rate: 1\n"}
    for name in ("alpha_mp", "beta_mp"):
        files = _prefixed(name, shared)
        sdist = make_sdist(tmp_path / name, name, "0.1", files, requires=("shared>=1.0",))
        assert cli("pull", str(sdist)).code == 0
    result = cli("remove", "alpha_mp")
    assert result.code == 0, result.err
    assert "shared>=1.0" in (consumer / "requirements.in").read_text().splitlines()
    assert (consumer / "conf/base/parameters/shared.yml").read_text() == "rate: 1\n"
    assert "[clean]" in cli("status").out


def test_changing_a_file_another_micropackage_needs_is_a_conflict(
    tmp_path: Path, consumer: Path, cli
) -> None:
    shared = {"config/parameters/shared.yml": "rate: 1\n"}
    assert (
        cli(
            "pull",
            str(make_sdist(tmp_path / "a1", "alpha_mp", "0.1", _prefixed("alpha_mp", shared))),
        ).code
        == 0
    )
    assert (
        cli(
            "pull", str(make_sdist(tmp_path / "b1", "beta_mp", "0.1", _prefixed("beta_mp", shared)))
        ).code
        == 0
    )
    changed = {"config/parameters/shared.yml": "rate: 2\n"}
    a2 = make_sdist(tmp_path / "a2", "alpha_mp", "0.2", _prefixed("alpha_mp", changed))
    before = tree_snapshot(consumer)
    result = cli("pull", str(a2))
    assert result.code == 1
    assert "conf/base/parameters/shared.yml (pulled by 'beta_mp' too, which needs it as it is)" in (
        result.err
    )
    assert tree_snapshot(consumer) == before


def _prefixed(package: str, files: Mapping[str, str]) -> dict[str, str]:
    return {f"{package}/{rel}": text for rel, text in files.items()}


# --------------------------------------------------------------------------- issue 7 item 5


@pytest.mark.parametrize(
    ("mask", "plain", "executable"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_written_files_get_the_umask_mode_and_keep_theirs_on_update(
    tmp_path: Path, consumer: Path, cli, mask: int, plain: int, executable: int
) -> None:
    files = {"xmod/nodes.py": "N = 1\n", "xmod/run.sh": "#!/bin/sh\n", "tests/test_x.py": ""}
    run = {"xmod/run.sh": 0o755}
    v1 = make_sdist(tmp_path / "d1", "xmod", "0.1", files, requires=("pandas",), modes=run)
    with umask(mask):
        assert cli("pull", str(v1)).code == 0
    code = consumer / "src/consumer_pkg/xmod"
    for path in (code / "nodes.py", code / "__init__.py", consumer / "tests/xmod/test_x.py"):
        assert mode(path) == plain, path
    assert mode(code / "run.sh") == executable
    assert mode(consumer / LOCK_NAME) == plain
    assert mode(consumer / "requirements.in") == plain

    # An updated file keeps its mode (also the lock and requirements.in).
    (code / "nodes.py").chmod(0o600)
    (consumer / LOCK_NAME).chmod(0o664)
    (consumer / "requirements.in").chmod(0o600)
    updated = {**files, "xmod/nodes.py": "N = 2\n", "xmod/run.sh": "#!/bin/sh\nexit 0\n"}
    v2 = make_sdist(tmp_path / "d2", "xmod", "0.2", updated, requires=("numpy",), modes=run)
    with umask(mask):
        assert cli("pull", str(v2)).code == 0
    assert (code / "nodes.py").read_text() == "N = 2\n"
    assert mode(code / "nodes.py") == 0o600
    assert mode(code / "run.sh") == executable
    assert mode(consumer / LOCK_NAME) == 0o664
    assert mode(consumer / "requirements.in") == 0o600


# --------------------------------------------------------------------------- issue 7 item 6


@pytest.mark.parametrize(
    "in_the_way",
    ["tests/data_proc", "conf/base/parameters", "src/consumer_pkg/data_proc", "tests"],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_file_where_a_folder_must_go_is_one_error(
    consumer: Path, data_proc: Path, cli, in_the_way: str, dry_run: bool
) -> None:
    if in_the_way == "tests":
        for path in sorted((consumer / "tests").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (consumer / "tests").rmdir()
    write(consumer / in_the_way, "mine\n")
    before = tree_snapshot(consumer, with_state=True)
    result = cli("pull", str(data_proc), *(["--dry-run"] if dry_run else []))
    assert result.code == 1
    assert result.err.splitlines() == [f"Error: '{in_the_way}' is a file where a folder must go."]
    assert tree_snapshot(consumer, with_state=True) == before
    assert not (consumer / ".micropkg").exists()


# --------------------------------------------------------------------------- issue 7 item 8


def test_a_config_code_package_is_installed_as_code_with_a_warning(
    tmp_path: Path, consumer: Path, cli
) -> None:
    files = {
        "cfg/nodes.py": "",
        "cfg/config/__init__.py": "",
        "cfg/config/settings.py": "from cfg.nodes import *\n",
        "cfg/config/parameters_cfg.yml": "rate: 1\n",
    }
    result = cli("pull", str(make_sdist(tmp_path, "cfg", "0.1", files)))
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        "Warning: 'cfg/config/' holds Python files; they were installed as code in "
        "src/consumer_pkg/cfg/config/, never into conf/base/ (where the other files of "
        "config/ go): config/__init__.py, config/settings.py"
    ]
    code = consumer / "src/consumer_pkg/cfg/config"
    assert (code / "settings.py").read_text() == "from consumer_pkg.cfg.nodes import *\n"
    assert (code / "__init__.py").is_file()
    assert (consumer / "conf/base/parameters_cfg.yml").read_text() == "rate: 1\n"
    assert not list((consumer / "conf").rglob("*.py"))


def test_config_code_package_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, consumer: Path, cli
) -> None:
    """Package warns (as before), pull warns and keeps the code: packaging it again gives the
    same files."""
    root = make_project(tmp_path / "source")
    code = add_pipeline(root, "ds")
    write(code / "config/__init__.py", "")
    write(code / "config/defaults.py", "import demo_proj.pipelines.ds.nodes\n")
    monkeypatch.chdir(root)
    packaged = cli("package", "pipelines.ds")
    assert packaged.code == 0 and "config/" in packaged.err
    monkeypatch.chdir(consumer)
    pulled = cli("pull", str(root / "dist/ds-0.1.tar.gz"))
    assert pulled.code == 0
    assert "config/__init__.py, config/defaults.py" in pulled.err
    defaults = consumer / "src/consumer_pkg/ds/config/defaults.py"
    assert defaults.read_text() == "import consumer_pkg.ds.nodes\n"


# --------------------------------------------------------------------------- litter, recovery


def test_package_skips_our_temporary_and_backup_files(project: Path, cli) -> None:
    code = add_pipeline(project, "data_proc")
    for name in (
        ".nodes.py.micropkg-tmp",
        ".nodes.py.micropkg-bak",
        ".nodes.py.a1b2c3.micropkg-tmp",
    ):
        write(code / name, "stray\n")
    assert cli("package", "pipelines.data_proc").code == 0
    with tarfile.open(project / "dist/data_proc-0.1.tar.gz") as tar:
        names = tar.getnames()
    assert not [n for n in names if "micropkg-" in n], names


def test_next_run_removes_partial_tarballs_of_ours_only(project: Path, cli) -> None:
    (project / ".micropkg").mkdir()  # the killed `package` had made the state folder
    dist = project / "dist"
    ours = [
        write(dist / ".data_proc-0.1.tar.gz.0a1b2c3d.tmp", "partial"),
        write(dist / ".x-0.2.tar.gz.ffffffff.tmp", ""),
    ]
    theirs = [
        write(dist / "alpha-backup.tar.gz", "mine"),
        write(dist / ".notes.tar.gz.tmp", "mine"),
        write(dist / ".data_proc-0.1.tar.gz.NOTHEX00.tmp", "mine"),
        write(dist / "data_proc-0.1.tar.gz.0a1b2c3d.tmp", "mine"),
    ]
    live = write(dist / ".live-0.1.tar.gz.01234567.tmp", "being written")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer that is still running holds its file
    try:
        result = cli("status")
    finally:
        os.close(fd)
    assert result.code == 0
    assert result.err.splitlines() == [
        "Recovered: removed what an interrupted run left: "
        + ", ".join(sorted(p.relative_to(project).as_posix() for p in ours))
        + "."
    ]
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)
    assert live.exists()


@pytest.mark.parametrize(
    ("journal", "message"),
    [
        ("{not json", "Cannot read the journal of an interrupted pull"),
        (
            '{"format": 1, "what": "x", "created": [], "prune": [], "files": [{"target": '
            '"../victim.txt", "staged": "../.victim.txt.micropkg-tmp", "backup": '
            '"../.victim.txt.micropkg-bak", "existed": true, "sha256": null}]}',
            "Cannot read the journal of an interrupted pull",
        ),
        (
            '{"format": 1, "what": "x", "created": [], "prune": [], "files": [{"target": '
            '"a.txt", "staged": "b.txt", "backup": ".a.txt.micropkg-bak", "existed": true, '
            '"sha256": null}]}',
            "is not one micropkg wrote",
        ),
    ],
)
def test_a_journal_we_did_not_write_is_refused(
    tmp_path: Path, project: Path, cli, journal: str, message: str
) -> None:
    write(project / ".micropkg/journal.json", journal)
    victim = write(tmp_path / "victim.txt", "keep me\n")
    write(tmp_path / ".victim.txt.micropkg-bak", "attacker\n")
    write(project / "b.txt", "mine\n")
    result = cli("status")
    assert result.code == 1
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert victim.read_text() == "keep me\n"
    assert (project / "b.txt").read_text() == "mine\n"


@pytest.mark.parametrize("fsync", ["", "1"])
def test_fsync_only_when_asked(
    tmp_path: Path, consumer: Path, cli, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    """``MICROPKG_FSYNC=1``: every staged file, the journal and each touched folder are
    flushed before the commit point; by default nothing is (a pull stays fast)."""
    import micropkg_tasks.journal as journal_module

    files = {f"xmod/f{i}.py": f"X = {i}\n" for i in range(5)}
    sdist = make_sdist(tmp_path, "xmod", "0.1", files)
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(journal_module.os, "fsync", counting)
    monkeypatch.setenv("MICROPKG_FSYNC", fsync)
    assert cli("pull", str(sdist)).code == 0
    staged = len(files) + 2  # and xmod/__init__.py and micropkg.lock
    if fsync:  # each staged file, the journal, the code folder, the state folder at the commit
        assert len(synced) >= staged + 3
    else:
        assert synced == []
