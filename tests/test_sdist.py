"""The deterministic sdist writer and the safe sdist reader (micropkg_tasks.sdist)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from micropkg_tasks import limits, sdist
from micropkg_tasks._compat import toml_string, tomllib
from micropkg_tasks.errors import MicropkgError, PackageError, PullError
from micropkg_tasks.sdist import (
    SdistSpec,
    render_members,
    sdist_top,
    templates_digest,
    write_sdist,
)
from micropkg_tasks.sdist_reader import SdistContents, SdistFile, read_sdist

REQUIREMENTS = (
    "pandas>=1.0",
    'requests[security]==2.*; python_version > "3.8"',
    "scikit_learn~=1.0",
)
FILES: dict[str, bytes] = {
    "data_proc/__init__.py": b'__version__ = "0.1"\n',
    "data_proc/nodes.py": b"def f(x):\n    return x\n",
    "data_proc/pipeline.py": b"from .nodes import f\n",
    "data_proc/README.md": b"# data_proc\n",
    "data_proc/data.csv": b"a,b\n1,2\n",
    "data_proc/sql/q.sql": b"select 1;\n",
    "data_proc/sql/q.py": b"Q = 1\n",
    "data_proc/utils/__init__.py": b"",
    "data_proc/config/parameters_data_proc.yml": b"data_proc:\n  x: 1\n",
    "data_proc/config/parameters/data_proc/p1.yml": b"p1: 2\n",
    "tests/__init__.py": b"",
    "tests/test_pipeline.py": b"def test_x():\n    assert True\n",
}


def make_spec(
    name: str = "data_proc",
    version: str = "0.1",
    requirements: tuple[str, ...] = REQUIREMENTS,
    files: Mapping[str, bytes] | None = None,
) -> SdistSpec:
    if files is None:
        files = {path.replace("data_proc", name, 1): data for path, data in FILES.items()}
    return SdistSpec(name=name, version=version, requirements=requirements, files=files)


def toml_loads(text: str) -> dict[str, Any]:
    """Parse TOML with tomllib (tomli on Python 3.10)."""
    return tomllib.loads(text)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> list[str]:
    """Every path below ``folder`` (relative, sorted), to prove nothing else was written."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------


def test_sdist_top_is_pep625() -> None:
    assert sdist_top("data_proc", "0.1") == "data_proc-0.1"
    assert sdist_top("MyPipe", "0.1") == "mypipe-0.1"
    assert sdist_top("a.b-c", "1.0.0-alpha") == "a_b_c-1.0.0a0"


def test_pkg_info_is_static_metadata_2_2() -> None:
    members = render_members(make_spec(version="1.0.0-alpha"))
    headers = HeaderParser().parsestr(members["PKG-INFO"].decode())
    assert headers["Metadata-Version"] == "2.2"
    assert headers["Name"] == "data_proc"
    assert headers["Version"] == "1.0.0a0"
    assert headers["Summary"] == "Micro-package `data_proc`"
    assert headers.get_all("Requires-Dist") == list(REQUIREMENTS)
    assert headers.get_all("Dynamic") is None


def test_pkg_info_without_requirements() -> None:
    text = render_members(make_spec(requirements=()))["PKG-INFO"].decode()
    assert "Requires-Dist" not in text
    assert text.endswith("Summary: Micro-package `data_proc`\n")


def test_pyproject_is_static_setuptools_project() -> None:
    data = toml_loads(render_members(make_spec(name="MyPipe"))["pyproject.toml"].decode())
    assert data["build-system"]["build-backend"] == "setuptools.build_meta"
    assert data["build-system"]["requires"][0].startswith("setuptools")
    assert data["project"] == {
        "name": "MyPipe",
        "version": "0.1",
        "description": "Micro-package `MyPipe`",
        "dependencies": list(REQUIREMENTS),
    }
    assert "dynamic" not in data["project"]
    find = data["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["MyPipe", "MyPipe.*"]
    assert find["namespaces"] is True
    assert data["tool"]["setuptools"]["package-data"] == {"MyPipe": ["**/*"]}


def test_pyproject_without_requirements() -> None:
    data = toml_loads(render_members(make_spec(requirements=()))["pyproject.toml"].decode())
    assert data["project"]["dependencies"] == []


@pytest.mark.parametrize(
    "value",
    [
        'a"b',
        "back\\slash",
        "line\nbreak\r\t",
        "\x00\x01\x08\x0b\x0c\x1b\x1f\x7f",
        "é ü 😀 `x`",
        "'single'",
        "",
        "\u2028\u2029\x85 \\u0041 \\n",
        "".join(map(chr, range(0x20))) + "\x7f\x80\x9f",
    ],
)
def test_toml_string_round_trips(value: str) -> None:
    # One escaper for every TOML string we write (the sdist's pyproject.toml, micropkg.lock).
    assert toml_loads(f"v = {toml_string(value)}")["v"] == value
    assert toml_loads(f"{toml_string(value)} = 1") == {value: 1}


def test_manifest_in_grafts_package_and_tests() -> None:
    text = render_members(make_spec())["MANIFEST.in"].decode()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert "graft data_proc" in lines
    assert "graft tests" in lines
    no_tests = {k: v for k, v in FILES.items() if not k.startswith("tests/")}
    text = render_members(make_spec(files=no_tests))["MANIFEST.in"].decode()
    assert "graft tests" not in text


def test_render_keeps_files_and_adds_generated() -> None:
    members = render_members(make_spec())
    assert set(members) == set(FILES) | {"PKG-INFO", "pyproject.toml", "MANIFEST.in"}
    assert all(members[key] == value for key, value in FILES.items())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (make_spec(files={"data_proc/nodes.py": b""}), "has no '__init__.py'"),
        (make_spec(files={**FILES, "../x.py": b""}), "Invalid sdist member '../x.py'"),
        (make_spec(files={**FILES, "/abs.py": b""}), "Invalid sdist member '/abs.py'"),
        (make_spec(files={**FILES, "other/x.py": b""}), "Invalid sdist member 'other/x.py'"),
        (make_spec(files={**FILES, "data_proc/./x": b""}), "Invalid sdist member"),
        (make_spec(files={**FILES, "PKG-INFO": b""}), "Invalid sdist member 'PKG-INFO'"),
        (make_spec(requirements=("a\nRequires-Dist: evil",)), "Invalid requirement"),
        (make_spec(requirements=("  ",)), "Invalid requirement"),
        (make_spec(name="données"), "cannot name a micro-package sdist"),
        (make_spec(name="_private"), "cannot name a micro-package sdist"),
        (make_spec(name="tests"), "reserved"),
        (make_spec(version="not a version"), "not PEP 440"),
    ],
)
def test_invalid_spec_is_refused(tmp_path: Path, spec: SdistSpec, message: str) -> None:
    with pytest.raises(MicropkgError) as info:
        write_sdist(tmp_path / "out.tar.gz", spec)
    assert message in str(info.value)
    assert listing(tmp_path) == []


def test_templates_digest_is_stable_and_does_not_import_jinja2() -> None:
    digest = templates_digest()
    assert len(digest) == 64
    assert digest == templates_digest()
    code = (
        "import sys, micropkg_tasks.sdist as s; d = s.templates_digest(); "
        "assert 'jinja2' not in sys.modules, 'jinja2 imported'; print(d)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == digest


def test_templates_digest_follows_template_contents(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sdist._template_sources()
    changed = {**original, "PKG-INFO.j2": original["PKG-INFO.j2"] + "X-Extra: 1\n"}
    before = templates_digest()
    monkeypatch.setattr(sdist, "_template_sources", lambda: changed)
    assert templates_digest() != before


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def test_tarball_layout_and_normalised_headers(tmp_path: Path) -> None:
    path = tmp_path / "data_proc-0.1.tar.gz"
    write_sdist(path, make_spec())
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    top = "data_proc-0.1"
    assert names[0] == top
    assert names == sorted(names, key=lambda n: n.split("/"))
    expected_files = {f"{top}/{p}" for p in [*FILES, "PKG-INFO", "pyproject.toml", "MANIFEST.in"]}
    assert {m.name for m in members if m.isfile()} == expected_files
    assert {m.name for m in members if m.isdir()} == {
        top,
        f"{top}/data_proc",
        f"{top}/data_proc/sql",
        f"{top}/data_proc/utils",
        f"{top}/data_proc/config",
        f"{top}/data_proc/config/parameters",
        f"{top}/data_proc/config/parameters/data_proc",
        f"{top}/tests",
    }
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        assert m.mtime == 315532800
        assert m.mode == (0o755 if m.isdir() else 0o644)
        assert m.isdir() or m.isfile()
    raw = path.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[3] & 0x08 == 0, "gzip header must not carry a file name"
    assert raw[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
    assert gzip.decompress(raw)[257:265] == b"ustar\x0000", "POSIX (pax) format expected"


def _tarfile_archive(top: str, members: Mapping[str, bytes], mtime: int) -> bytes:
    """What tarfile writes (PAX format, ``addfile``) for the sdist's entries: the reference
    our own header writer must match byte for byte."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for arcname, data, size in sdist._entries(top, members):
            info = sdist._tar_info(arcname, size=size, is_dir=data is None, mtime=mtime)
            assert not isinstance(data, Path)
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    "names",
    [
        ["x.py", "a/b/c.py", "empty.txt"],
        ["n" * 85 + ".py"],  # with "abcdefg-0.1/": exactly 100 characters, one ustar block
        ["n" * 86 + ".py"],  # 101: a pax header first
        ["d" * 87 + "/x.py"],  # a folder of 100 characters with its slash: ustar
        ["d" * 88 + "/x.py"],  # 101 with its slash: pax
        ["dé/ünïcödé.py", "tab\tand space.txt"],  # not ASCII: pax
    ],
)
@pytest.mark.parametrize("mtime", [315532800, 0, 8**11 - 1, 8**11])
def test_headers_are_tarfiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str], mtime: int
) -> None:
    """Headers are written by hand for short ASCII names (tarfile's were a fifth of a
    package run): the archive is still, byte for byte, the one tarfile writes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(mtime))
    sizes = [0, 1, 511, 512, 513, 10240, 70001]
    members = {
        name: bytes(range(256)) * (sizes[i % len(sizes)] // 256) + b"x" * (sizes[i % 7] % 256)
        for i, name in enumerate(names)
    }
    top = "abcdefg-0.1"
    pax = any(len(f"{top}/{n}") > 100 or not n.isascii() for n in names)
    pax = pax or any(len(f"{top}/{n.rpartition('/')[0]}/") > 100 for n in names)
    ours = io.BytesIO()
    length = sdist._write_tar_gz(ours, top, sdist._entries(top, members))
    expected = _tarfile_archive(top, members, mtime)
    assert gzip.decompress(ours.getvalue()) == expected
    assert length == len(expected)
    assert len(expected) % tarfile.RECORDSIZE == 0
    assert (b" path=" in expected) == pax  # both of tarfile's forms are covered
    assert (b" mtime=" in expected) == (mtime >= 8**11)


def test_write_is_byte_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "x.tar.gz", tmp_path / "b" / "y.tar.gz"
    write_sdist(first, make_spec())
    reversed_files = dict(reversed(list(FILES.items())))
    write_sdist(second, make_spec(files=reversed_files))
    assert sha256(first) == sha256(second)
    write_sdist(second, make_spec(requirements=REQUIREMENTS[:1]))
    assert sha256(first) != sha256(second)


def test_source_date_epoch_sets_mtimes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    path = tmp_path / "x.tar.gz"
    write_sdist(path, make_spec())
    with tarfile.open(path, "r:gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(PackageError, match="SOURCE_DATE_EPOCH"):
        write_sdist(tmp_path / "y.tar.gz", make_spec())


def test_written_file_has_ordinary_permissions(tmp_path: Path) -> None:
    path = tmp_path / "x.tar.gz"
    write_sdist(path, make_spec())
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(28, "No space left on device"), PackageError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_failed_write_leaves_no_partial_tarball(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    expected: type[BaseException],
) -> None:
    old = tmp_path / "data_proc-0.1.tar.gz"
    old.write_bytes(b"previous build")
    calls = 0
    real_header = sdist._header

    def failing_header(*args: Any, **kwargs: Any) -> bytes:  # the 5th member fails
        nonlocal calls
        calls += 1
        if calls == 5:
            raise error
        return real_header(*args, **kwargs)

    monkeypatch.setattr(sdist, "_header", failing_header)
    with pytest.raises(expected) as info:
        write_sdist(old, make_spec())
    if expected is PackageError:
        assert str(info.value) == f"Cannot write sdist '{old}': No space left on device"
    assert calls == 5
    assert listing(tmp_path) == ["data_proc-0.1.tar.gz"]
    assert old.read_bytes() == b"previous build"
    monkeypatch.undo()
    write_sdist(tmp_path / "new" / "n.tar.gz", make_spec())
    assert listing(tmp_path / "new") == ["n.tar.gz"]


class ExplodingFiles(Mapping[str, bytes]):
    """A files mapping whose last value cannot be read."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self._files = dict(files)

    def __getitem__(self, key: str) -> bytes:
        if key == "tests/test_pipeline.py":
            raise OSError("read error")
        return self._files[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def test_unwritable_destination(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(PackageError, match="Cannot write sdist"):
        write_sdist(tmp_path / "file" / "x.tar.gz", make_spec())


def test_unreadable_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="read error"):
        write_sdist(tmp_path / "x.tar.gz", make_spec(files=ExplodingFiles(FILES)))
    assert listing(tmp_path) == []


# ------------------------------------------------------------------------------------------
# setuptools can build what we write (the sdist must stay buildable for Kedro's puller)
# ------------------------------------------------------------------------------------------


def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="session")
def setuptools_wheelhouse() -> Path:
    """A folder holding a recent setuptools wheel (cached across sessions; fetched once)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    wheelhouse = cache / "micropkg-tasks" / "wheelhouse"
    # setuptools >= 70.1 builds wheels without the separate `wheel` package.
    if not any(_is_recent_setuptools(p) for p in wheelhouse.glob("setuptools-*.whl")):
        wheelhouse.mkdir(parents=True, exist_ok=True)
        staging = wheelhouse / f".download-{os.getpid()}"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
        cmd += ["--dest", str(staging), "setuptools>=70.1"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=_pip_env(), check=False)
        if done.returncode != 0:
            pytest.skip(f"no setuptools wheel cached in {wheelhouse} and download failed")
        for wheel in staging.glob("*.whl"):
            os.replace(wheel, wheelhouse / wheel.name)
        staging.rmdir()
    return wheelhouse


def _is_recent_setuptools(wheel: Path) -> bool:
    major, minor = (int(x) for x in wheel.name.split("-")[1].split(".")[:2])
    return (major, minor) >= (70, 1)


def test_pip_installs_only_the_package_into_a_fresh_venv(
    tmp_path: Path, setuptools_wheelhouse: Path
) -> None:
    tarball = tmp_path / "dist" / "data_proc-0.1.tar.gz"
    write_sdist(tarball, make_spec())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir"]
    pip += ["--no-index", "--quiet"]
    env = _pip_env()
    subprocess.run(
        [*pip, "--find-links", str(setuptools_wheelhouse), "setuptools"], check=True, env=env
    )
    subprocess.run([*pip, "--no-build-isolation", "--no-deps", str(tarball)], check=True, env=env)

    probe = (
        "import json, sysconfig, importlib.metadata as m; "
        "print(json.dumps([sysconfig.get_paths()['purelib'], m.requires('data_proc')]))"
    )
    out = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout
    purelib, requires = json.loads(out)
    site = Path(purelib)
    installed = {
        str(p.relative_to(site / "data_proc")).replace(os.sep, "/")
        for p in (site / "data_proc").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert installed == {p.split("/", 1)[1] for p in FILES if p.startswith("data_proc/")}
    assert not (site / "tests").exists()
    assert requires == list(REQUIREMENTS)


def test_setuptools_from_the_dev_env_builds_the_wheel(tmp_path: Path) -> None:
    """Offline: this environment's (possibly old) setuptools builds a complete wheel."""
    tarball = tmp_path / "mypipe-0.1.tar.gz"
    files = {p.replace("data_proc", "MyPipe", 1): d for p, d in FILES.items()}
    write_sdist(tarball, make_spec(name="MyPipe", files=files))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    cmd += ["--no-index", "--no-cache-dir", "--quiet", "-w", str(tmp_path / "wh"), str(tarball)]
    subprocess.run(cmd, check=True, env=_pip_env())
    (wheel,) = (tmp_path / "wh").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(zf.read(metadata).decode())
    packaged = {n for n in names if ".dist-info/" not in n}
    assert packaged == {p for p in files if p.startswith("MyPipe/")}
    # Older setuptools reorders requirements and normalises names: compare them as sets.
    assert _req_set(headers.get_all("Requires-Dist") or []) == _req_set(REQUIREMENTS)


def _req_set(requirements: Sequence[str]) -> set[tuple[str, str, frozenset[str], str]]:
    parsed = (Requirement(r) for r in requirements)
    return {
        (canonicalize_name(r.name), str(r.specifier), frozenset(r.extras), str(r.marker))
        for r in parsed
    }


# ------------------------------------------------------------------------------------------
# Reading: round trip and metadata sources
# ------------------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    tarball = tmp_path / "dist" / "data_proc-0.1.tar.gz"
    write_sdist(tarball, make_spec())
    contents = read_sdist(tarball, tmp_path / "out")
    assert contents == SdistContents(
        top="data_proc-0.1",
        package="data_proc",
        version="0.1",
        requirements=REQUIREMENTS,
    )
    for rel, data in FILES.items():
        assert contents.files[rel] == SdistFile(data, executable=False)
    assert "PKG-INFO" in contents.files
    assert {"data_proc", "data_proc/sql", "tests"} <= contents.folders
    assert [rel for rel, _ in contents.under("tests")] == ["__init__.py", "test_pipeline.py"]
    assert not (tmp_path / "out").exists()  # small files are held in memory


def test_alias_package_name_is_not_normalised(tmp_path: Path) -> None:
    files = {p.replace("data_proc", "MyPipe", 1): d for p, d in FILES.items()}
    tarball = tmp_path / "mypipe-0.1.tar.gz"
    write_sdist(tarball, make_spec(name="MyPipe", files=files))
    contents = read_sdist(tarball, tmp_path / "out")
    assert contents.top == "mypipe-0.1"
    assert contents.package == "MyPipe"


Entry = tuple[tarfile.TarInfo, bytes | None]


def _file(name: str, data: bytes = b"") -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _dir(name: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def _special(name: str, kind: bytes, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def make_tarball(path: Path, entries: list[Entry], fmt: int = tarfile.PAX_FORMAT) -> Path:
    """Write ``entries`` as they are (no normalisation): hostile archives are built here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return path


def kedro_style_entries(top: str = "data_proc-0.1", requires_dist: bool = True) -> list[Entry]:
    """An sdist shaped like Kedro 0.19.15's output (reference §2.9)."""
    pkg_info = (
        "Metadata-Version: 2.4\nName: data_proc\nVersion: 0.1\nSummary: Micro-package `data_proc`\n"
    )
    if requires_dist:
        pkg_info += (
            'Requires-Dist: pandas>=1.0\nRequires-Dist: requests==2.*; python_version > "3.8"\n'
        )
    pyproject = (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "data_proc"\nversion = "0.1"\n'
        'description = "Micro-package `data_proc`"\n'
        "dependencies = ['pandas>=1.0', 'requests==2.*; python_version > \"3.8\"']\n\n"
        "[tool.setuptools.packages]\nfind = {}\n"
    )
    manifest = "\n".join(
        f"        global-include {p}"
        for p in [
            "README.md",
            "config/parameters*",
            "config/**/parameters*",
            "config/parameters*/**",
            "config/parameters*/**/*",
        ]
    )
    egg = f"{top}/data_proc.egg-info"
    return [
        _dir(top),
        _file(f"{top}/MANIFEST.in", manifest.encode()),
        _file(f"{top}/PKG-INFO", pkg_info.encode()),
        _file(f"{top}/pyproject.toml", pyproject.encode()),
        _file(f"{top}/setup.cfg", b"[egg_info]\ntag_build = \ntag_date = 0\n\n"),
        _dir(egg),
        _file(f"{egg}/PKG-INFO", pkg_info.encode()),
        _file(f"{egg}/SOURCES.txt", b"MANIFEST.in\npyproject.toml\n"),
        _file(f"{egg}/dependency_links.txt", b"\n"),
        _file(f"{egg}/requires.txt", b'pandas>=1.0\n\n[:python_version > "3.8"]\nrequests==2.*\n'),
        _file(f"{egg}/top_level.txt", b"data_proc\ntests\n"),
        _dir(f"{top}/data_proc"),
        _file(f"{top}/data_proc/__init__.py", b'__version__ = "0.1"\n'),
        _file(f"{top}/data_proc/nodes.py", b"X = 1\n"),
        _file(f"{top}/data_proc/README.md", b"# dp\n"),
        _file(f"{top}/data_proc/sql/q.py", b"Q = 1\n"),
        _file(f"{top}/data_proc/config/parameters_data_proc.yml", b"a: 1\n"),
        _file(f"{top}/tests/__init__.py"),
        _file(f"{top}/tests/test_pipeline.py", b"def test(): pass\n"),
    ]


KEDRO_REQUIREMENTS = ("pandas>=1.0", 'requests==2.*; python_version > "3.8"')


def test_reads_a_kedro_0_19_sdist(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "data_proc-0.1.tar.gz", kedro_style_entries())
    contents = read_sdist(tarball, tmp_path / "out")
    assert contents.package == "data_proc"
    assert contents.version == "0.1"
    assert contents.requirements == KEDRO_REQUIREMENTS
    assert contents.files["data_proc/sql/q.py"].read() == b"Q = 1\n"
    assert "tests/test_pipeline.py" in contents.files


def _replace(entries: list[Entry], suffix: str, data: bytes | None) -> list[Entry]:
    """``entries`` with the member ending in ``suffix`` replaced (or dropped when None)."""
    out = [e for e in entries if not e[0].name.endswith(suffix)]
    if data is not None:
        name = next(e[0].name for e in entries if e[0].name.endswith(suffix))
        out.append(_file(name, data))
    return out


def test_requires_txt_fallback_converts_marker_sections(tmp_path: Path) -> None:
    requires = (
        b"pandas>=1.0\n\n"
        b'[:python_version > "3.8"]\nrequests==2.*\nnumpy>=1; os_name == "posix"\n\n'
        b"[security]\ncryptography\n\n"
        b'[plot:sys_platform == "win32"]\nmatplotlib\n'
    )
    entries = kedro_style_entries(requires_dist=False)
    entries = _replace(entries, "egg-info/requires.txt", requires)
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    assert read_sdist(tarball, tmp_path / "out").requirements == (
        "pandas>=1.0",
        'requests==2.*; python_version > "3.8"',
        'numpy>=1; (os_name == "posix") and (python_version > "3.8")',
    )


def test_dynamic_requires_dist_is_not_trusted(tmp_path: Path) -> None:
    pkg_info = b"Metadata-Version: 2.2\nName: data_proc\nVersion: 0.1\nDynamic: Requires-Dist\n"
    pkg_info += b"Requires-Dist: stale\n"
    entries = _replace(kedro_style_entries(), "0.1/PKG-INFO", pkg_info)
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    assert read_sdist(tarball, tmp_path / "out").requirements == KEDRO_REQUIREMENTS


def test_pyproject_fallback(tmp_path: Path) -> None:
    entries = _replace(kedro_style_entries(), "0.1/PKG-INFO", None)
    entries = [e for e in entries if ".egg-info" not in e[0].name]
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    contents = read_sdist(tarball, tmp_path / "out")
    assert contents.requirements == KEDRO_REQUIREMENTS
    assert contents.version == "0.1"


def test_dynamic_pyproject_dependencies_give_nothing(tmp_path: Path) -> None:
    pyproject = b'[project]\nname = "data_proc"\ndynamic = ["version", "dependencies"]\n'
    entries = _replace(kedro_style_entries(), "0.1/PKG-INFO", None)
    entries = [e for e in entries if ".egg-info" not in e[0].name]
    entries = _replace(entries, "pyproject.toml", pyproject)
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    contents = read_sdist(tarball, tmp_path / "out")
    assert contents.requirements == ()
    assert contents.version is None


def test_dot_slash_members_are_accepted(tmp_path: Path) -> None:
    entries = [(info, data) for info, data in kedro_style_entries()]
    for info, _ in entries:
        info.name = "./" + info.name
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    assert read_sdist(tarball, tmp_path / "out").package == "data_proc"


def test_reads_beside_an_existing_download(tmp_path: Path) -> None:
    """``pip download`` leaves the tarball in the work folder; reading it writes nothing."""
    dest = tmp_path / "dl"
    tarball = make_tarball(dest / "data_proc-0.1.tar.gz", kedro_style_entries())
    contents = read_sdist(tarball, dest)
    assert contents.top == "data_proc-0.1"
    assert sorted(p.name for p in dest.iterdir()) == ["data_proc-0.1.tar.gz"]


def test_large_members_are_streamed_to_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "LARGE_FILE", 100)
    big = os.urandom(1000)
    info, _ = _file(f"{TOP}/pkg/run.bin", big)
    info.mode = 0o755
    tarball = make_tarball(tmp_path / "x.tar.gz", [*_fresh_good(), (info, big)])
    contents = read_sdist(tarball, tmp_path / "work")
    item = contents.files["pkg/run.bin"]
    assert isinstance(item.data, Path) and item.data.parent == tmp_path / "work"
    assert item.data.read_bytes() == big and item.read() == big and item.executable
    assert contents.files["pkg/__init__.py"] == SdistFile(b"")


def test_a_failure_after_a_large_member_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "LARGE_FILE", 100)
    entries = [*_fresh_good(), _file(f"{TOP}/pkg/a.bin", b"a" * 1000), _file("../evil", b"x")]
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    with pytest.raises(PullError, match="escapes the target folder"):
        read_sdist(tarball, tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_writing_a_large_member_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "LARGE_FILE", 100)
    tarball = make_tarball(
        tmp_path / "x.tar.gz", [*_fresh_good(), _file(f"{TOP}/pkg/a.bin", b"a" * 1000)]
    )
    (tmp_path / "work").write_text("a file where the work folder must go")
    with pytest.raises(PullError, match=r"^Cannot extract 'x\.tar\.gz' into '.*work': "):
        read_sdist(tarball, tmp_path / "work")
    assert listing(tmp_path) == ["work", "x.tar.gz"]


# ------------------------------------------------------------------------------------------
# Reading: hostile and invalid archives
# ------------------------------------------------------------------------------------------

TOP = "pkg-0.1"
GOOD: list[Entry] = [
    _dir(TOP),
    _file(f"{TOP}/PKG-INFO", b"Metadata-Version: 2.2\nName: pkg\nVersion: 0.1\n"),
    _file(f"{TOP}/pkg/__init__.py"),
]


def _fresh_good() -> list[Entry]:
    return [(_copy(info), data) for info, data in GOOD]


def _copy(info: tarfile.TarInfo) -> tarfile.TarInfo:
    clone = tarfile.TarInfo(info.name)
    clone.type, clone.size, clone.mode = info.type, info.size, info.mode
    return clone


HOSTILE: dict[str, tuple[list[Entry], str]] = {
    "dotdot": ([_file("../evil", b"x")], "member '../evil' escapes the target folder."),
    "dotdot-inner": (
        [_file(f"{TOP}/pkg/../../evil", b"x")],
        f"member '{TOP}/pkg/../../evil' escapes the target folder.",
    ),
    "absolute": ([_file("/tmp/evil", b"x")], "member '/tmp/evil' has an absolute path."),
    "dot": ([_dir(".")], "member '.' resolves to the target folder itself."),
    "dot-slash": ([_dir("./")], "member '.' resolves to the target folder itself."),
    "backslash": (
        [_file(f"{TOP}\\..\\evil", b"x")],
        f"member '{TOP}\\..\\evil' has an unsafe name.",
    ),
    "symlink": (
        [_special(f"{TOP}/pkg/link", tarfile.SYMTYPE, "/etc/passwd")],
        f"member '{TOP}/pkg/link' is a symbolic link.",
    ),
    "symlink-inside": (
        [_special(f"{TOP}/pkg/link", tarfile.SYMTYPE, "__init__.py")],
        f"member '{TOP}/pkg/link' is a symbolic link.",
    ),
    "hardlink": (
        [_special(f"{TOP}/pkg/hard", tarfile.LNKTYPE, f"{TOP}/PKG-INFO")],
        f"member '{TOP}/pkg/hard' is a hard link.",
    ),
    "chardev": ([_special(f"{TOP}/dev", tarfile.CHRTYPE)], f"member '{TOP}/dev' is a device file."),
    "blockdev": (
        [_special(f"{TOP}/dev", tarfile.BLKTYPE)],
        f"member '{TOP}/dev' is a device file.",
    ),
    "fifo": ([_special(f"{TOP}/fifo", tarfile.FIFOTYPE)], f"member '{TOP}/fifo' is a FIFO."),
    "duplicate": (
        [_file(f"{TOP}/pkg/__init__.py", b"evil = 1\n")],
        f"member '{TOP}/pkg/__init__.py' appears more than once.",
    ),
    "duplicate-dot-slash": (
        [_file(f"./{TOP}/PKG-INFO", b"x")],
        f"member './{TOP}/PKG-INFO' appears more than once.",
    ),
    "inside-a-file": (
        [_file(f"{TOP}/PKG-INFO/x", b"x")],
        f"member '{TOP}/PKG-INFO/x' would be written inside the file '{TOP}/PKG-INFO'.",
    ),
    "file-over-folder": (
        [_file(f"{TOP}/pkg", b"x")],
        f"member '{TOP}/pkg' is a file but other members are inside it.",
    ),
}


@pytest.mark.parametrize("position", ["last", "first"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_before_anything_is_written(
    tmp_path: Path, case: str, position: str
) -> None:
    bad, message = HOSTILE[case]
    entries = [*_fresh_good(), *bad] if position == "last" else [*bad, *_fresh_good()]
    work = tmp_path / "work"
    tarball = make_tarball(work / "x.tar.gz", entries)
    dest = work / "dest"
    before = listing(tmp_path)
    with pytest.raises(PullError) as info:
        read_sdist(tarball, dest)
    if position == "last":
        assert str(info.value) == f"Refusing to extract 'x.tar.gz': {message}"
    else:  # a clash then names the good member that comes second
        assert str(info.value).startswith("Refusing to extract 'x.tar.gz': member '")
    assert "\n" not in str(info.value)
    assert listing(tmp_path) == before
    assert not dest.exists()


def test_too_many_members(tmp_path: Path) -> None:
    entries = [*_fresh_good(), *(_file(f"{TOP}/pkg/m{i}.py") for i in range(10))]
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    with pytest.raises(PullError, match="it has more than 5 members"):
        read_sdist(tarball, tmp_path / "dest", max_members=5)
    assert not (tmp_path / "dest").exists()
    assert read_sdist(tarball, tmp_path / "ok", max_members=13).package == "pkg"


def test_too_large(tmp_path: Path) -> None:
    entries = [*_fresh_good(), _file(f"{TOP}/pkg/big.bin", b"\0" * 5000)]
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    with pytest.raises(
        PullError, match=rf"exceed 4096 bytes uncompressed \(at member '{TOP}/pkg/big.bin'\)"
    ):
        read_sdist(tarball, tmp_path / "dest", max_bytes=4096)
    assert not (tmp_path / "dest").exists()


def test_huge_pax_header_is_a_bomb_too(tmp_path: Path) -> None:
    """Header data is not a member size, but decompressing it is still bounded."""
    info, data = _file(f"{TOP}/pkg/x.py", b"")
    info.pax_headers = {"comment": "x" * 3_000_000}
    tarball = make_tarball(tmp_path / "x.tar.gz", [*_fresh_good(), (info, data)])
    assert tarball.stat().st_size < 50_000
    with pytest.raises(PullError, match="exceed 1000 bytes uncompressed"):
        read_sdist(tarball, tmp_path / "dest", max_bytes=1000, max_members=10)
    assert not (tmp_path / "dest").exists()


def test_trailing_gzip_garbage_is_bounded(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "x.tar.gz", _fresh_good())
    with tarball.open("ab") as fh:
        fh.write(gzip.compress(b"\0" * 2_000_000))
    with pytest.raises(PullError, match="exceed"):
        read_sdist(tarball, tmp_path / "dest", max_bytes=1000, max_members=10)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a tarball at all",
        b"PK\x03\x04" + b"\0" * 100,
        gzip.compress(b"plain text, not a tar"),
    ],
    ids=["empty", "text", "zip", "gzip-not-tar"],
)
def test_not_a_tar_gz(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(content)
    with pytest.raises(PullError, match=r"^'bad.tar.gz' is not a valid \.tar\.gz sdist: "):
        read_sdist(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_uncompressed_tar_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "plain.tar.gz"
    with tarfile.open(bad, "w") as tar:
        tar.addfile(tarfile.TarInfo(f"{TOP}/pkg/__init__.py"), io.BytesIO(b""))
    with pytest.raises(PullError, match=r"is not a valid \.tar\.gz sdist"):
        read_sdist(bad, tmp_path / "dest")


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_archive(tmp_path: Path, cut: float) -> None:
    good = tmp_path / "good.tar.gz"
    write_sdist(good, make_spec())
    bad = tmp_path / "bad.tar.gz"
    raw = good.read_bytes()
    bad.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(PullError, match=r"is not a valid \.tar\.gz sdist"):
        read_sdist(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_corrupt_crc(tmp_path: Path) -> None:
    good = tmp_path / "good.tar.gz"
    write_sdist(good, make_spec())
    raw = bytearray(good.read_bytes())
    raw[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(PullError, match=r"is not a valid \.tar\.gz sdist"):
        read_sdist(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def _two_members(raw: bytes) -> bytes:
    """The same tar stream as two concatenated gzip members (GzipFile reads both)."""
    stream = gzip.decompress(raw)
    half = len(stream) // 2
    return gzip.compress(stream[:half], mtime=0) + gzip.compress(stream[half:], mtime=0)


def _header_crc(raw: bytes) -> bytes:
    """The FHCRC flag set, with a header CRC that is wrong (GzipFile skips it, zlib checks it)."""
    assert raw[3] == 0  # no optional header fields
    return raw[:3] + b"\x02" + raw[4:10] + b"\x00\x00" + raw[10:]


def _flip(raw: bytes, at: int) -> bytes:
    out = bytearray(raw)
    out[at] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    ("variant", "whole", "valid"),
    [
        ("plain", True, True),
        ("two-members", False, True),
        ("zero-padding", False, True),
        ("header-crc", False, True),
        ("stream-over-whole", False, True),
        ("archive-over-whole", False, True),
        ("bad-crc", False, False),
        ("bad-length", False, False),
        ("truncated", False, False),
        ("over-the-stream-limit", False, False),
        ("over-the-size-cap", True, False),  # refused by the member checks, as streamed
    ],
)
def test_a_small_archive_read_whole_reads_as_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str, whole: bool, valid: bool
) -> None:
    """A small archive is decompressed in one call, and only when that gives exactly what the
    streaming path gives; anything unusual is left to the streaming path, with its errors."""
    from micropkg_tasks import sdist_reader

    good = tmp_path / "good.tar.gz"
    write_sdist(good, make_spec())
    raw = good.read_bytes()
    data = {
        "two-members": _two_members(raw),
        "zero-padding": raw + b"\0" * 16,
        "bad-crc": _flip(raw, -8),
        "bad-length": _flip(raw, -1),
        "header-crc": _header_crc(raw),
        "truncated": raw[: len(raw) // 2],
    }.get(variant, raw)
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(data)
    if variant == "stream-over-whole":
        monkeypatch.setattr(sdist_reader, "WHOLE_STREAM", 1000)
    if variant == "archive-over-whole":
        monkeypatch.setattr(sdist_reader, "WHOLE_ARCHIVE", len(data) - 1)
    if variant == "over-the-stream-limit":  # a gzip bomb's limit: the archive's own size
        monkeypatch.setattr(limits, "BOMB_FLOOR", 1)
        monkeypatch.setattr(limits, "BOMB_RATIO", 1)
    max_bytes = 1000 if variant == "over-the-size-cap" else limits.DEFAULT_MAX_SIZE

    def outcome(given: bytes | None) -> object:
        try:
            got = read_sdist(archive, tmp_path / "work", max_bytes=max_bytes, archive_data=given)
        except PullError as exc:
            return str(exc)
        return got, {rel: f.read() for rel, f in got.files.items()}, got.folders

    real = sdist_reader._inflate_whole
    used: list[bool] = []

    def spy(*args: Any) -> bytes | None:
        stream = real(*args)
        used.append(stream is not None)
        return stream

    monkeypatch.setattr(sdist_reader, "_inflate_whole", spy)
    fast = [outcome(None), outcome(data)]
    assert used == [whole, whole]
    monkeypatch.setattr(sdist_reader, "_inflate_whole", lambda *args: None)
    streamed = [outcome(None), outcome(data)]
    assert fast == streamed
    if valid:
        assert isinstance(fast[0], tuple)
        assert len(fast[0][1]) == len(FILES) + 3  # and PKG-INFO, pyproject.toml, MANIFEST.in
    else:
        assert isinstance(fast[0], str) and "x.tar.gz" in fast[0]


@pytest.mark.parametrize(("appended", "valid"), [(b"\0", True), (b"x", False)])
def test_an_archive_grown_after_its_size_was_read_is_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, appended: bytes, valid: bool
) -> None:
    """The size that picks the one-call path is read before the archive: grown past
    WHOLE_ARCHIVE in between, it is read by the streaming path, which judges what was added
    (zero padding is allowed after a gzip member, anything else is not)."""
    from micropkg_tasks import sdist_reader

    good = tmp_path / "good.tar.gz"
    write_sdist(good, make_spec())
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(good.read_bytes())
    expected = read_sdist(good, tmp_path / "work")
    # (GzipFile skips zero padding a byte at a time: a small limit keeps the test quick.)
    monkeypatch.setattr(sdist_reader, "WHOLE_ARCHIVE", archive.stat().st_size + 10)
    real = sdist_reader._inflate_whole
    used: list[bool] = []

    def grow_then_read(source: Any, size: int, limit: int) -> bytes | None:
        with archive.open("ab") as grown:
            grown.write(appended * 64)
        stream = real(source, size, limit)
        used.append(stream is not None)
        return stream

    monkeypatch.setattr(sdist_reader, "_inflate_whole", grow_then_read)
    if valid:
        got = read_sdist(archive, tmp_path / "work")
        assert {rel: f.read() for rel, f in got.files.items()} == {
            rel: f.read() for rel, f in expected.files.items()
        }
        assert (got.top, got.version, got.folders) == (
            expected.top, expected.version, expected.folders,
        )  # fmt: skip
    else:
        with pytest.raises(PullError, match=r"^'x\.tar\.gz' is not a valid \.tar\.gz sdist"):
            read_sdist(archive, tmp_path / "work")
    assert used == [False]


def test_a_read_error_is_reported_alike_read_whole_or_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error while the archive is read in one call is reported as the streaming path
    reports it, and nothing is left behind."""
    import errno

    from micropkg_tasks import sdist_reader

    archive = tmp_path / "x.tar.gz"
    write_sdist(archive, make_spec())
    real_open = Path.open

    class Failing(io.FileIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

        def readinto(self, buffer: Any) -> int:
            raise OSError(errno.EIO, "Input/output error")

    def failing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        return Failing(str(self), "rb") if self == archive else real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", failing_open)
    errors = []
    for inflate in (sdist_reader._inflate_whole, lambda *args: None):
        monkeypatch.setattr(sdist_reader, "_inflate_whole", inflate)
        with pytest.raises(PullError) as info:
            read_sdist(archive, tmp_path / "work")
        errors.append(str(info.value))
    assert errors == ["'x.tar.gz' is not a valid .tar.gz sdist: [Errno 5] Input/output error"] * 2
    assert not (tmp_path / "work").exists()


def test_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(PullError, match="Cannot read sdist"):
        read_sdist(tmp_path / "nope.tar.gz", tmp_path / "dest")


def test_two_top_level_folders(tmp_path: Path) -> None:
    entries = [*kedro_style_entries(), _dir("data_proc-0.1_extra")]
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    dest = tmp_path / "dest"
    with pytest.raises(PullError) as info:
        read_sdist(tarball, dest)
    assert str(info.value) == (
        "Invalid sdist was extracted: exactly one directory was expected, got "
        f"{[Path('data_proc-0.1'), Path('data_proc-0.1_extra')]}"
    )
    assert not dest.exists()


def test_no_top_level_folder(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "x.tar.gz", [_file("PKG-INFO", b"")])
    with pytest.raises(PullError, match=r"exactly one directory was expected, got \[\]$"):
        read_sdist(tarball, tmp_path / "dest")


def test_two_packages(tmp_path: Path) -> None:
    entries = [*kedro_style_entries(), _file("data_proc-0.1/data_proc_extra/__init__.py")]
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    with pytest.raises(PullError) as info:
        read_sdist(tarball, tmp_path / "dest")
    assert str(info.value) == (
        "Invalid package contents: exactly one package was expected, "
        "got ['data_proc', 'data_proc_extra']"
    )
    assert not (tmp_path / "dest").exists()


def test_only_tests_is_not_a_package(tmp_path: Path) -> None:
    entries = [_file(f"{TOP}/tests/__init__.py"), _file(f"{TOP}/lib/x.py")]
    tarball = make_tarball(tmp_path / "x.tar.gz", entries)
    with pytest.raises(PullError, match=r"exactly one package was expected, got \[\]$"):
        read_sdist(tarball, tmp_path / "dest")


@pytest.mark.parametrize(
    ("mode", "executable"), [(0o4777, True), (0o755, True), (0o644, False), (0o011, False)]
)
def test_only_the_owners_executable_bit_counts(tmp_path: Path, mode: int, executable: bool) -> None:
    """What tarfile's ``data`` filter keeps of a member's mode: the owner's executable bit."""
    info, data = _file(f"{TOP}/pkg/run.sh", b"#!/bin/sh\n")
    info.mode = mode
    tarball = make_tarball(tmp_path / "x.tar.gz", [*_fresh_good(), (info, data)])
    assert read_sdist(tarball, tmp_path / "dest").files["pkg/run.sh"].executable is executable
