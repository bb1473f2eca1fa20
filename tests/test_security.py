"""Hostile inputs (issue 8, security items): nothing from a tarball, a lock file or a command line
becomes a line of a file or a path unvalidated; every hostile input gives one ``Error:`` line and
writes nothing."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from kedro_venvs import repo_env as _repo_env
from kedro_venvs import run
from projects import add_pipeline, make_project, tree_snapshot

#: What ``str.splitlines()`` (and so pip's requirements-file reader) splits on.
LINE_BREAKS = ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
SMUGGLED = "foo @ https://example.invalid/f.tar.gz{sep}--extra-index-url=http://evil.invalid/simple"


def write_sdist(path: Path, members: Mapping[str, str | bytes], top: str = "evil-0.1") -> Path:
    """A ``.tar.gz`` with ``members`` (relative to ``top``) as regular files."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, content in members.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def pkg_info(*, name: str = "evil", version: str = "0.1", requires: tuple[str, ...] = ()) -> str:
    deps = "".join(f"Requires-Dist: {r}\n" for r in requires)
    return f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n{deps}"


def toml_basic(value: str) -> str:
    """``value`` as a TOML basic string, every non-ASCII or control character escaped."""
    out = []
    for char in value:
        if char in '"\\' or not (" " <= char <= "~"):
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Kedro project (package ``consumer_pkg``) as the CWD."""
    root = make_project(tmp_path / "consumer", package="consumer_pkg")
    monkeypatch.chdir(root)
    return root


# --------------------------------------------------------------------------- item 1


def test_the_oldest_allowed_packaging_accepts_a_smuggled_option(
    oldest_packaging_python: Path, tmp_path: Path
) -> None:
    """The guard below is ours: the oldest ``packaging`` we allow parses these as one line."""
    code = (
        "import sys\n"
        "from packaging.requirements import Requirement\n"
        f"for sep in {LINE_BREAKS!r}:\n"
        f"    assert sep in str(Requirement({SMUGGLED!r}.format(sep=sep))), repr(sep)\n"
    )
    run([oldest_packaging_python, "-c", code], cwd=tmp_path, env=_repo_env())


def _smuggling_sdist(folder: Path, where: str, sep: str) -> Path:
    requirement = SMUGGLED.format(sep=sep)
    members: dict[str, str | bytes] = {"evil/__init__.py": ""}
    if where == "PKG-INFO":
        members["PKG-INFO"] = pkg_info(requires=(requirement,))
    elif where == "pyproject":
        members["PKG-INFO"] = pkg_info()
        members["pyproject.toml"] = (
            f'[project]\nname = "evil"\nversion = "0.1"\n'
            f"dependencies = [{toml_basic(requirement)}]\n"
        )
    else:  # egg-info requires.txt
        members["PKG-INFO"] = pkg_info()
        members["evil.egg-info/requires.txt"] = requirement + "\n"
    return write_sdist(folder / "evil-0.1.tar.gz", members)


# PKG-INFO is an email header block: \n and \r end the header line there.
SMUGGLING_CASES = [("pyproject", sep) for sep in LINE_BREAKS] + [
    ("PKG-INFO", sep) for sep in LINE_BREAKS if sep not in "\r\n"
]


@pytest.mark.parametrize(
    ("where", "sep"), [*SMUGGLING_CASES, ("requires.txt", "\u2028"), ("requires.txt", "\f")]
)
def test_a_requirement_with_a_line_break_is_refused_with_the_oldest_packaging(
    oldest_packaging_python: Path, consumer: Path, tmp_path: Path, where: str, sep: str
) -> None:
    archive = _smuggling_sdist(tmp_path, where, sep)
    before = tree_snapshot(consumer, with_state=True, folders=True)
    proc = run(
        [oldest_packaging_python, "-m", "micropkg_tasks", "pull", archive],
        cwd=consumer,
        env=_repo_env(),
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = one_error_line(proc.stderr)
    assert "evil.invalid" in error or "requirement" in error.lower()
    assert not (consumer / "requirements.in").exists()
    assert tree_snapshot(consumer, with_state=True, folders=True) == before


def test_a_line_break_in_a_micro_package_requirements_txt_is_refused_at_package_time(
    oldest_packaging_python: Path, consumer: Path
) -> None:
    add_pipeline(consumer, "beta", "consumer_pkg")
    reqs = consumer / "src/consumer_pkg/pipelines/beta/requirements.txt"
    reqs.write_text("pandas\n" + SMUGGLED.format(sep="\u2028") + "\n", encoding="utf-8")
    before = tree_snapshot(consumer, with_state=True, folders=True)
    proc = run(
        [oldest_packaging_python, "-m", "micropkg_tasks", "package", "pipelines.beta"],
        cwd=consumer,
        env=_repo_env(),
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = one_error_line(proc.stderr)
    assert "src/consumer_pkg/pipelines/beta/requirements.txt line 3" in error
    assert tree_snapshot(consumer, with_state=True, folders=True) == before
    assert not (consumer / "dist").exists()


# --------------------------------------------------------------------------- item 2


def _good_members(package: str = "evil", **info: str) -> dict[str, str | bytes]:
    return {"PKG-INFO": pkg_info(requires=("pandas",), **info), f"{package}/__init__.py": ""}


def assert_refused(result, consumer: Path, before: dict[str, bytes], *needles: str) -> str:
    assert result.code == 1, result.out + result.err
    error = one_error_line(result.err)
    for needle in needles:
        assert needle in error, error
    assert tree_snapshot(consumer, with_state=True, folders=True) == before
    return error


@pytest.mark.parametrize(
    ("package", "alias"),
    [
        ("evil\n--trusted-host evil.invalid\nundeclared-dep", "beta"),  # header injection
        ("ab\n", None),  # re.match(r"^\w+$") accepted the trailing newline
        ("ev-il", "beta"),
        ("ev il", "beta"),
        ("class", "beta"),
        ("caf\udce9", "beta"),  # not UTF-8
    ],
)
def test_a_package_folder_that_is_no_identifier_is_refused(
    consumer: Path, tmp_path: Path, cli, package: str, alias: str | None
) -> None:
    archive = write_sdist(tmp_path / "evil-0.1.tar.gz", _good_members(package))
    before = tree_snapshot(consumer, with_state=True, folders=True)
    result = cli("pull", str(archive), *(["--alias", alias] if alias else []))
    assert_refused(result, consumer, before)
    assert not (consumer / "requirements.in").exists()


@pytest.mark.parametrize(
    ("info", "needle"),
    [
        ({"version": "0.1\n --trusted-host evil.invalid"}, "Invalid version"),
        ({"version": "banana"}, "Invalid version 'banana'"),
        ({"name": "evil\n --trusted-host evil.invalid"}, "Invalid name"),
        ({"name": "ev il"}, "Invalid name 'ev il'"),
    ],
)
def test_pkg_info_name_and_version_are_validated(
    consumer: Path, tmp_path: Path, cli, info: dict[str, str], needle: str
) -> None:
    archive = write_sdist(tmp_path / "evil-0.1.tar.gz", _good_members(**info))
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(cli("pull", str(archive)), consumer, before, needle)


@pytest.fixture
def good_sdist(tmp_path: Path) -> Path:
    return write_sdist(tmp_path / "evil-0.1.tar.gz", _good_members())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--alias", "ab\n"], "is not a valid Python package name"),
        (["--alias", "ab\u2028"], "is not a valid Python package name"),
        (["--alias", "class"], "It is a Python keyword."),
        (["--destination", "/etc/cron.d"], "an absolute path"),
        (["--destination", "~/x"], "an absolute path"),
        (["--destination", "class"], "'class' is a Python keyword"),
        (["--destination", "pipelines.import"], "'import' is a Python keyword"),
        (["--destination", "pipelines/class/x"], "'class' is a Python keyword"),
        (["--destination", "pipelines\n"], "a line break (U+000A)"),
        (["--env", "base\n"], "Invalid env 'base\\n'"),
    ],
)
def test_bad_names_on_the_command_line_are_refused(
    consumer: Path, good_sdist: Path, cli, args: list[str], needle: str
) -> None:
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(cli("pull", str(good_sdist), *args), consumer, before, needle)


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        ('alias = "ab\\n"', "is not a valid Python package name"),
        ('alias = "class"', "It is a Python keyword."),
        ('destination = "/etc/cron.d"', "an absolute path"),
        ('destination = "pipelines.class"', "'class' is a Python keyword"),
    ],
)
def test_bad_names_in_the_manifest_are_refused(
    consumer: Path, good_sdist: Path, cli, option: str, needle: str
) -> None:
    with (consumer / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[tool.kedro.micropkg.pull]\n"{good_sdist.as_posix()}" = {{{option}}}\n')
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(cli("pull", "--all"), consumer, before, needle)


def test_a_keyword_alias_is_refused_when_packaging(consumer: Path, cli) -> None:
    add_pipeline(consumer, "beta", "consumer_pkg")
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(
        cli("package", "pipelines.beta", "--alias", "class"),
        consumer,
        before,
        "It is a Python keyword.",
    )


# --------------------------------------------------------------------------- item 3


def _beta(folder: Path, version: str, files: Mapping[str, str]) -> Path:
    members: dict[str, str | bytes] = {
        "PKG-INFO": pkg_info(name="beta", version=version),
        "beta/__init__.py": "",
        **{f"beta/{rel}": text for rel, text in files.items()},
    }
    folder.mkdir(parents=True, exist_ok=True)
    return write_sdist(folder / f"beta-{version}.tar.gz", members, top=f"beta-{version}")


@pytest.fixture
def pulled(consumer: Path, tmp_path: Path, cli) -> tuple[Path, Path]:
    """``beta`` 0.1 pulled into the consumer; returns (the 0.2 sdist, a victim file outside)."""
    assert cli("pull", str(_beta(tmp_path / "v1", "0.1", {"nodes.py": "x = 1\n"}))).code == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    return _beta(tmp_path / "v2", "0.2", {"other.py": "y = 2\n"}), victim


def _add_lock_file(consumer: Path, rel: str, digest: str) -> None:
    lock = consumer / "micropkg.lock"
    text = lock.read_text(encoding="utf-8")
    lock.write_text(text + f'"{rel}" = "{digest}"\n', encoding="utf-8")


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink", "project-file"])
def test_lock_paths_outside_the_pulled_folders_are_refused(
    consumer: Path, pulled: tuple[Path, Path], cli, where: str, force: bool
) -> None:
    new, victim = pulled
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    if where == "dotdot":
        rel = "../victim.txt"
    elif where == "absolute":
        rel = victim.as_posix()
    elif where == "symlink":
        (consumer / "src/consumer_pkg/escape").symlink_to(victim.parent, target_is_directory=True)
        rel = "src/consumer_pkg/escape/victim.txt"
    else:  # inside the project, but not a folder a pull writes to
        victim = consumer / "pyproject.toml"
        digest = hashlib.sha256(victim.read_bytes()).hexdigest()
        rel = "pyproject.toml"
    _add_lock_file(consumer, rel, digest)
    before = tree_snapshot(consumer, with_state=True, folders=True)
    victim_before = victim.read_bytes()
    result = cli("pull", str(new), *(["--force"] if force else []))
    error = assert_refused(result, consumer, before, "entry 'beta'", rel)
    assert "fix or delete" in error
    if where == "symlink":
        assert "leads outside the project's folders through a symbolic link" in error
    assert victim.read_bytes() == victim_before
    # status refuses the same lock (it would otherwise read files outside the project)
    assert_refused(cli("status"), consumer, before, rel)


LOCK_HEAD = 'version = 1\n\n[micropkg."beta"]\nsource = "x.tar.gz"\nsha256 = "' + "a" * 64 + '"\n'


@pytest.mark.parametrize(
    ("lock", "needle"),
    [
        (
            LOCK_HEAD + 'version = 3\npackage = "beta"\n',
            "'version' must be a string, got an integer",
        ),
        (LOCK_HEAD + 'package = "beta"\nfiles = ["a"]\n', "'files' must be a table"),
        (LOCK_HEAD + 'package = "beta"\noptions = "x"\n', "'options' must be a table"),
        (
            LOCK_HEAD + 'package = "beta"\nrequirements = "pandas"\n',
            "'requirements' must be an array of strings, got a string",
        ),
        (LOCK_HEAD + 'package = "beta"\nrequirements = [1]\n', "got an integer"),
        (LOCK_HEAD + "package = 7\n", "'package' must be a string, got an integer"),
        (LOCK_HEAD, "has no 'package'"),
        (
            LOCK_HEAD + 'package = "beta"\n[micropkg."beta".files]\n"src/x.py" = 1\n',
            "'files.src/x.py' must be a string",
        ),
        ("version = 1\n[micropkg]\nbeta = 3\n", "entry 'beta' must be a table, got an integer"),
        ('version = "1"\n', "'version' must be an integer, got a string"),
        ("version = 99\n", "written by a newer micropkg-tasks"),
        ("micropkg = [1]\n", "[micropkg] must be a table, got an array"),
        (
            LOCK_HEAD.replace('"beta"', '"pipelines.class"') + 'package = "beta"\n',
            "is not a module path",
        ),
        (b"version = 1\n# caf\xe9\n", "Cannot read"),
        (
            LOCK_HEAD + 'package = "beta"\noptions = {env = "../../outside"}\n',
            "has an invalid option: Invalid env '../../outside'",
        ),
        (
            LOCK_HEAD + 'package = "beta"\noptions = {alias = "../x"}\n',
            "has an invalid option: '../x' is not a valid Python package name",
        ),
        (
            LOCK_HEAD + 'package = "beta"\noptions = {destination = "/etc/cron.d"}\n',
            "an absolute path",
        ),
    ],
)
def test_a_lock_with_wrong_types_is_a_clean_error(
    consumer: Path, good_sdist: Path, cli, lock: str | bytes, needle: str
) -> None:
    data = lock.encode("utf-8") if isinstance(lock, str) else lock
    (consumer / "micropkg.lock").write_bytes(data)
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(cli("pull", str(good_sdist)), consumer, before, needle)
    assert_refused(cli("status"), consumer, before, needle)


# --------------------------------------------------------------------------- item 4

USER, PASSWORD = "alice", "s3cr3t-Pa55"


def _secret_free(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and f"{USER}:" not in text and f"{USER}@" not in text, text


@pytest.fixture
def basic_server(http_server, tmp_path: Path):
    http_server.basic = (USER, PASSWORD)
    sdist = _beta(tmp_path / "served", "0.1", {"nodes.py": "x = 1\n"})
    http_server.put(sdist.name, sdist.read_bytes())
    return http_server


def _with_credentials(url: str, password: str = PASSWORD) -> str:
    return url.replace("://", f"://{USER}:{password}@", 1)


def test_credentials_in_a_url_are_neither_recorded_nor_printed(
    consumer: Path, basic_server, cli
) -> None:
    url = basic_server.url("beta-0.1.tar.gz")
    dry = cli("pull", _with_credentials(url), "--dry-run")
    assert dry.code == 0, dry.err
    _secret_free(dry.out, dry.err)
    result = cli("pull", _with_credentials(url))
    assert result.code == 0, result.err
    assert (consumer / "src/consumer_pkg/beta/nodes.py").read_text() == "x = 1\n"
    lock = (consumer / "micropkg.lock").read_text(encoding="utf-8")
    assert f'source = "{url}"' in lock
    _secret_free(result.out, result.err, lock)
    status = cli("status")
    _secret_free(status.out, status.err)
    # the server really saw the credentials (Basic auth), so the pull used them
    assert ("GET", "/beta-0.1.tar.gz", 200) in basic_server.log


@pytest.mark.parametrize("case", ["wrong-password", "missing-file", "chained"])
def test_credentials_are_not_printed_in_errors(
    consumer: Path, basic_server, cli, case: str
) -> None:
    url = basic_server.url("beta-0.1.tar.gz")
    if case == "wrong-password":
        source = _with_credentials(url, password=PASSWORD + "-wrong")
    elif case == "missing-file":
        source = _with_credentials(basic_server.url("nothing-0.1.tar.gz"))
    else:
        source = "simplecache::" + _with_credentials(basic_server.url("nothing-0.1.tar.gz"))
    before = tree_snapshot(consumer, with_state=True, folders=True)
    result = cli("pull", source, "-v")  # -v: the traceback must not show them either
    assert result.code == 1
    assert result.err.rstrip().splitlines()[-1].startswith("Error: ")
    _secret_free(result.out, result.err)
    assert tree_snapshot(consumer, with_state=True, folders=True) == before


def test_manifest_source_with_credentials(consumer: Path, basic_server, cli) -> None:
    url = basic_server.url("beta-0.1.tar.gz")
    with (consumer / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[tool.kedro.micropkg.pull]\n"{_with_credentials(url)}" = {{}}\n')
    listing = cli("doit", "list")
    assert listing.code == 0, listing.err
    _secret_free(listing.out, listing.err)
    first = cli("pull", "--all")
    assert first.code == 0, first.err
    _secret_free(first.out, first.err, (consumer / "micropkg.lock").read_text(encoding="utf-8"))
    again = cli("pull", "--all")  # the lock's credential-free source still matches the entry
    assert again.code == 0 and "up to date" in again.out, again.out + again.err


# --------------------------------------------------------------------------- item 11: network


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/status/500/x-0.1.tar.gz", "HTTP error 500 Internal Server Error from http://"),
        ("/status/502/x-0.1.tar.gz", "HTTP error 502 Bad Gateway from http://"),
        ("/status/410/x-0.1.tar.gz", "HTTP error 410 Gone from http://"),
        ("/loop/x-0.1.tar.gz", "Too many redirects from http://"),
        ("/status/404/x-0.1.tar.gz", "/status/404/x-0.1.tar.gz not found"),
    ],
)
def test_http_errors_are_reported_as_such(
    consumer: Path, trouble_server: str, cli, path: str, needle: str
) -> None:
    before = tree_snapshot(consumer, with_state=True, folders=True)
    error = assert_refused(cli("pull", trouble_server + path), consumer, before, needle)
    if "404" not in path:
        assert "not found" not in error


def test_a_server_that_never_answers_times_out(silent_server: str, tmp_path: Path) -> None:
    from micropkg_tasks.errors import SourceError
    from micropkg_tasks.sources import fetch, remote_key

    url = f"{silent_server}/x-0.1.tar.gz"
    with pytest.raises(SourceError, match=r"^No answer from http://.* after 0\.5 s") as info:
        fetch(url, tmp_path / "work", base=tmp_path, timeout=0.5)
    assert "\n" not in str(info.value)
    with pytest.raises(SourceError, match=r"^No answer from .* after 0\.5 s"):
        remote_key(url, timeout=0.5)
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


# --------------------------------------------------------------------------- item 11: archives


def _tar_with(path: Path, fmt: int, extra: tarfile.TarInfo, data: bytes = b"x") -> Path:
    """A good sdist plus the member ``extra``."""
    with tarfile.open(path, "w:gz", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for rel, content in _good_members().items():
            raw = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"evil-0.1/{rel}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        extra.size = len(data)
        tar.addfile(extra, io.BytesIO(data))
    return path


@pytest.mark.parametrize("mtime", ["1e400", "nan", "-1e300", "-inf"])
def test_an_absurd_pax_mtime_is_refused(consumer: Path, tmp_path: Path, cli, mtime: str) -> None:
    info = tarfile.TarInfo("evil-0.1/evil/data.txt")
    info.pax_headers = {"mtime": mtime}
    archive = _tar_with(tmp_path / "evil-0.1.tar.gz", tarfile.PAX_FORMAT, info)
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(cli("pull", str(archive)), consumer, before, "has an invalid modification time")


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_a_member_name_that_is_not_utf8_is_refused(
    consumer: Path, tmp_path: Path, cli, fmt: int
) -> None:
    info = tarfile.TarInfo("evil-0.1/evil/caf\udce9.txt")  # the bytes b"caf\xe9.txt"
    archive = _tar_with(tmp_path / "evil-0.1.tar.gz", fmt, info)
    before = tree_snapshot(consumer, with_state=True, folders=True)
    error = assert_refused(
        cli("pull", str(archive)), consumer, before, "an undecodable byte (U+DCE9)"
    )
    assert "caf\\udce9.txt" in error


def test_status_when_a_pulled_file_became_a_folder(
    consumer: Path, pulled: tuple[Path, Path], cli
) -> None:
    nodes = consumer / "src/consumer_pkg/beta/nodes.py"
    nodes.unlink()
    (nodes / "inside.txt").parent.mkdir()
    (nodes / "inside.txt").write_text("x\n")
    init = consumer / "src/consumer_pkg/beta/__init__.py"
    result = cli("status")
    assert result.code == 0, result.err
    assert "beta  0.1" in result.out and "[modified]" in result.out
    assert "modified: src/consumer_pkg/beta/nodes.py" in result.out
    assert not result.err
    # a parent that became a file: the pulled file is missing
    init.unlink()
    shutil.rmtree(nodes)
    (consumer / "src/consumer_pkg/beta").rename(consumer / "beta-moved")
    (consumer / "src/consumer_pkg/beta").write_text("now a file\n")
    result = cli("status")
    assert result.code == 0, result.err
    assert "missing:  src/consumer_pkg/beta/nodes.py" in result.out


# --------------------------------------------------------------------------- item 11: package


@pytest.mark.parametrize("value", ["yesterday", "-5", "1.5"])
def test_a_bad_source_date_epoch_creates_no_dist_folder(
    consumer: Path, cli, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    add_pipeline(consumer, "beta", "consumer_pkg")
    before = tree_snapshot(consumer, folders=True)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    result = cli("package", "pipelines.beta")
    assert result.code == 1
    assert one_error_line(result.err).startswith("Error: SOURCE_DATE_EPOCH must")
    assert not (consumer / "dist").exists()
    assert tree_snapshot(consumer, folders=True) == before


def test_pull_save_writes_no_credentials_into_the_manifest(
    consumer: Path, basic_server, cli
) -> None:
    url = basic_server.url("beta-0.1.tar.gz")
    result = cli("pull", _with_credentials(url), "--save")
    assert result.code == 0, result.err
    pyproject = (consumer / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"{url}"' in pyproject
    _secret_free(result.out, result.err, pyproject)


# --------------------------------------------------------------------------- item 12


def _beta_requiring(folder: Path, version: str, *requires: str) -> Path:
    members: dict[str, str | bytes] = {
        "PKG-INFO": pkg_info(name="beta", version=version, requires=requires),
        "beta/__init__.py": "",
    }
    folder.mkdir(parents=True, exist_ok=True)
    return write_sdist(folder / f"beta-{version}.tar.gz", members, top=f"beta-{version}")


BLOCK = "# Additional requirements from micro-package `beta`:"


@pytest.mark.parametrize(
    ("original", "appended"),
    [
        # CRLF stays CRLF, and our lines follow it
        ("kedro~=0.19\r\n# mine\r\npandas>=1.0\r\n", f"\r\n{BLOCK}\r\nscipy\r\n"),
        # a form feed, a vertical tab, NEL, U+2028/2029 in a comment do not split the line
        ("kedro\n# page\fbreak\n-r other.txt\n", f"\n{BLOCK}\nscipy\n"),
        ("kedro\n# a\vb\x1cc\x85d\u2028e\u2029f\n", f"\n{BLOCK}\nscipy\n"),
        # a UTF-8 BOM and blank lines at the end are the user's
        ("\ufeffkedro\n\n\n", f"{BLOCK}\nscipy\n"),
        # no final newline: the last line gets one (in the file's style) before our block
        ("kedro\npandas", f"\n\n{BLOCK}\nscipy\n"),
        ("kedro\r\npandas", f"\r\n\r\n{BLOCK}\r\nscipy\r\n"),
    ],
)
def test_requirements_in_is_kept_byte_for_byte_outside_our_block(
    consumer: Path, tmp_path: Path, cli, original: str, appended: str
) -> None:
    req_in = consumer / "requirements.in"
    req_in.write_bytes(original.encode("utf-8"))
    result = cli("pull", str(_beta_requiring(tmp_path / "v1", "0.1", "scipy")))
    assert result.code == 0, result.err
    assert req_in.read_bytes() == (original + appended).encode("utf-8")


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("edited_block", [False, True])
def test_an_upgrade_replaces_only_our_block(
    consumer: Path, tmp_path: Path, cli, eol: str, final_newline: bool, edited_block: bool
) -> None:
    req_in = consumer / "requirements.in"
    head = f"kedro{eol}# page\fbreak{eol}"
    req_in.write_bytes(head.encode())
    assert cli("pull", str(_beta_requiring(tmp_path / "v1", "0.1", "scipy"))).code == 0
    block = f"{eol}{BLOCK}{eol}scipy{eol}"
    assert req_in.read_bytes() == (head + block).encode()
    if edited_block:  # a local edit of our block: the 3-way path
        block = block.replace(f"scipy{eol}", f"requests{eol}scipy{eol}")
    tail = f"{eol}# mine{eol}numpy" + (eol if final_newline else "")
    req_in.write_bytes((head + block + tail).encode())
    result = cli("pull", str(_beta_requiring(tmp_path / "v2", "0.2", "scipy>=1.1")))
    assert result.code == 0, result.err
    new_block = (
        f"{eol}{BLOCK}{eol}" + ("requests" + eol if edited_block else "") + f"scipy>=1.1{eol}"
    )
    assert req_in.read_bytes() == (head + new_block + tail).encode()


def test_a_requirements_in_that_is_not_utf8_is_refused(consumer: Path, tmp_path: Path, cli) -> None:
    (consumer / "requirements.in").write_bytes(b"kedro\n# caf\xe9\n")
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(
        cli("pull", str(_beta_requiring(tmp_path / "v1", "0.1", "scipy"))),
        consumer,
        before,
        "is not UTF-8 (byte 0xe9 on line 2)",
    )


# --------------------------------------------------------------------------- item 11: read-only


def _can_mount_read_only(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind '{folder}' '{folder}' && "
            f"mount -o remount,bind,ro '{folder}' && ! touch '{folder}/.probe'",
        ],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0 and not (folder / ".probe").exists()


def _run_with_read_only(
    project: Path, read_only: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``micropkg <args>`` in ``project`` with ``read_only`` really unwritable.

    As root (permissions not enforced) a read-only bind mount in a private mount namespace
    gives EROFS; otherwise the folders lose their write bits (EACCES).
    """
    command = [sys.executable, "-m", "micropkg_tasks", *args]
    if os.geteuid() == 0:
        if not _can_mount_read_only(read_only):
            pytest.skip("running as root without the right to make a read-only bind mount")
        script = (
            f"mount --bind '{read_only}' '{read_only}' && "
            f"mount -o remount,bind,ro '{read_only}' && exec \"$@\""
        )
        return run(["unshare", "-m", "sh", "-c", script, "sh", *command], cwd=project, check=False)
    folders = [read_only, *(p for p in read_only.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        return run(command, cwd=project, check=False)
    finally:
        for folder in folders:
            folder.chmod(0o755)


@pytest.mark.parametrize("where", ["project", "dist"])
def test_package_in_a_read_only_project(consumer: Path, where: str) -> None:
    add_pipeline(consumer, "beta", "consumer_pkg")
    read_only = consumer if where == "project" else consumer / "dist"
    read_only.mkdir(exist_ok=True)
    before = tree_snapshot(consumer, with_state=where == "project", folders=True)
    proc = _run_with_read_only(consumer, read_only, "package", "pipelines.beta")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = one_error_line(proc.stderr)
    assert "Read-only file system" in error or "Permission denied" in error
    assert tree_snapshot(consumer, with_state=where == "project", folders=True) == before
    dist = consumer / "dist"
    assert not dist.exists() if where == "project" else not any(dist.iterdir())


def test_unsafe_character_is_exactly_line_breaks_controls_and_surrogates() -> None:
    # unsafe_character is one regex search (it runs on every string of the lock); it must
    # agree with its definition on every code point.
    import unicodedata

    from micropkg_tasks.names import LINE_BREAKS, unsafe_character

    for cp in range(0x110000):
        char = chr(cp)
        expected = char in LINE_BREAKS or unicodedata.category(char) in ("Cc", "Cs")
        assert (unsafe_character(f"ok{char}ok") == char) is expected, hex(cp)
    assert unsafe_character("a\tb", allow="\t") is None
    assert unsafe_character("a\tb\n", allow="\t") == "\n"


def test_pull_timeout_option(consumer: Path, silent_server: str, cli) -> None:
    url = f"{silent_server}/x-0.1.tar.gz"
    before = tree_snapshot(consumer, with_state=True, folders=True)
    error = assert_refused(cli("pull", url, "--timeout", "0.5"), consumer, before)
    assert error.startswith(f"Error: No answer from {url} after 0.5 s"), error
    dry = cli("pull", url, "--timeout", "0.5", "--dry-run")
    assert dry.code == 1 and "No answer from" in one_error_line(dry.err)
    with (consumer / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[tool.kedro.micropkg.pull]\n"{url}" = {{}}\n')
    result = cli("pull", "--all", "--timeout", "0.5")
    assert result.code == 1
    assert "No answer from" in one_error_line(result.err)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf", "nan"])
def test_a_bad_timeout_is_refused(consumer: Path, good_sdist: Path, cli, value: str) -> None:
    before = tree_snapshot(consumer, with_state=True, folders=True)
    assert_refused(
        cli("pull", str(good_sdist), "--timeout", value),
        consumer,
        before,
        "--timeout must be a positive number of seconds",
    )
