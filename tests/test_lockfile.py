"""micropkg.lock: written by hand, read with tomllib; the round trip is exact."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from micropkg_tasks import lockfile
from micropkg_tasks.errors import PullError
from micropkg_tasks.lockfile import Lock, LockEntry, read_lock, render_lock
from micropkg_tasks.project import Project


def test_render_and_read_round_trip(tmp_path: Path) -> None:
    entry = LockEntry(
        module="pipelines.beta",
        source='s3://bucket/odd "name"\\x.tar.gz',
        sha256="a" * 64,
        version="0.2",
        package="data_proc",
        options={"alias": "beta", "destination": "pipelines", "env": "base"},
        requirements=("pandas>=1.0", 'requests; python_version > "3.8"'),
        files={"src/p/pipelines/beta/nodes.py": "b" * 64, "conf/base/é ü.yml": "c" * 64},
    )
    bare = LockEntry("utils", "dist/utils-0.1.tar.gz", "d" * 64, None, "utils")
    lock = Lock({entry.module: entry, bare.module: bare})
    path = tmp_path / "micropkg.lock"
    text = render_lock(lock)
    path.write_text(text, encoding="utf-8")
    assert read_lock(path) == lock
    assert render_lock(read_lock(path)) == text
    assert text.index('[micropkg."pipelines.beta"]') < text.index('[micropkg."utils"]')


def test_missing_lock_is_empty_and_broken_lock_is_an_error(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "micropkg.lock") == Lock()
    (tmp_path / "micropkg.lock").write_text("[micropkg\n")
    with pytest.raises(PullError, match="Cannot read"):
        read_lock(tmp_path / "micropkg.lock")


def test_render_reuses_unchanged_blocks_and_renders_replaced_entries(tmp_path: Path) -> None:
    one = LockEntry("a", "dist/a-0.1.tar.gz", "1" * 64, "0.1", "a", files={"src/p/a.py": "2" * 64})
    two = LockEntry("b", "dist/b-0.1.tar.gz", "3" * 64, "0.1", "b")
    lock = Lock({"a": one}).with_entry(two)
    assert render_lock(lock) == render_lock(Lock({"b": two, "a": one}))
    newer = LockEntry("a", "dist/a-0.2.tar.gz", "4" * 64, "0.2", "a")
    text = render_lock(lock.with_entry(newer))
    path = tmp_path / "micropkg.lock"
    path.write_text(text, encoding="utf-8")
    assert read_lock(path) == Lock({"a": newer, "b": two})
    assert "a-0.1" not in text


def test_render_after_each_change_equals_a_fresh_render() -> None:
    # render_lock keeps its last rendering and re-renders only what changed: every sequence of
    # adds, replacements and removals gives the text a from-scratch render gives.
    rng = random.Random(7)
    lock = Lock()
    for step in range(300):
        module = f"m{rng.randrange(40):02d}"
        if lock.entries and rng.random() < 0.1:
            lock = Lock({m: e for m, e in lock.entries.items() if m != module})
        else:
            entry = LockEntry(module, f"dist/{module}-{step}.tar.gz", "5" * 64, str(step), module)
            lock = lock.with_entry(entry)
        blocks = [lockfile._render_entry(lock.entries[m]) for m in sorted(lock.entries)]
        assert render_lock(lock) == lockfile._HEADER + "".join(blocks)


def _odd_entry(rng: random.Random, i: int) -> LockEntry:
    alphabet = "abcxyz_-./ é中😀'#=[]{},\\\"\t\x7f"
    text = lambda: "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))  # noqa: E731
    return LockEntry(
        module=f"pipelines.m{i}" if rng.random() < 0.8 else text() or "x",
        source=text(),
        sha256=f"{i:064x}",
        version=text() if rng.random() < 0.7 else None,
        package=text(),
        options={rng.choice(["alias", "env", "destination", "x-y"]): text() for _ in range(3)},
        requirements=tuple(text() for _ in range(rng.randrange(0, 3))),
        files={text(): f"{j:064x}" for j in range(rng.randrange(0, 4))},
    )


def test_fast_lock_parse_agrees_with_tomllib_or_defers_to_it() -> None:
    # The written lock is read without tomllib when it has exactly render_lock's shape; the
    # result must be what tomllib gives, and anything else must be left to tomllib.
    import micropkg_tasks.lockfile as lockfile
    from micropkg_tasks._compat import tomllib

    rng = random.Random(7)
    fast_hits = 0
    for round_ in range(300):
        entries = [_odd_entry(rng, i) for i in range(rng.randrange(0, 5))]
        text = render_lock(Lock({e.module: e for e in entries}))
        if round_ % 3 == 1:  # damage it: a line changed, duplicated, reordered or dropped
            lines = text.split("\n")
            k = rng.randrange(len(lines))
            choice = rng.randrange(4)
            if choice == 0:
                lines[k] = lines[k].replace(" = ", "=", 1)
            elif choice == 1:
                lines.insert(k, lines[k])
            elif choice == 2:
                lines.insert(rng.randrange(len(lines)), lines.pop(k))
            else:
                del lines[k]
            text = "\n".join(lines)
        fast = lockfile._parse_written(text)
        try:
            expected = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            assert fast is None, text
            continue
        if fast is not None:
            fast_hits += 1
            assert fast == expected, text
    assert fast_hits > 50
    plain = LockEntry(
        "pipelines.ds",
        "dist/ds-0.1.tar.gz",
        "a" * 64,
        "0.1",
        "ds",
        {"alias": "ds"},
        ("pandas>=1.0",),
        {"src/p/pipelines/ds/a.py": "b" * 64},
    )
    assert lockfile._parse_written(render_lock(Lock({"pipelines.ds": plain}))) is not None


@pytest.mark.parametrize(
    "text",
    [
        "version = 01\n",
        'version = 1\nother = "x"\n',
        'version = 1\n[micropkg."a".files]\n"x" = "y"\n',
        'version = 1\n[micropkg."a"]\nsource = "x\\\\y"\n',
        'version = 1\n[micropkg."a"]\nsource = "x" # comment\n',
        'version = 1\r\n[micropkg."a"]\r\nsource = "x"\r\n',
        'version = 1\n[micropkg."a"]\noptions = {a = "1",b = "2"}\n',
        'version = 1\n[micropkg."a"]\nrequirements = [\n    "x",\n',
    ],
)
def test_fast_lock_parse_leaves_anything_unusual_to_tomllib(text: str) -> None:
    import micropkg_tasks.lockfile as lockfile

    assert lockfile._parse_written(text) is None


def test_file_owners_carried_over_by_with_entry_equals_a_fresh_index() -> None:
    a = LockEntry("a", "s", "1" * 64, "0.1", "a", files={"x": "1" * 64, "shared": "2" * 64})
    b = LockEntry("b", "s", "3" * 64, "0.1", "b", files={"shared": "2" * 64, "y": "4" * 64})
    lock = Lock({"a": a, "b": b})
    assert lock.file_owners["shared"] == {"a": "2" * 64, "b": "2" * 64}
    newer_a = LockEntry("a", "s", "5" * 64, "0.2", "a", files={"z": "6" * 64})
    c = LockEntry("c", "s", "7" * 64, "0.1", "c", files={"y": "8" * 64})
    carried = lock.with_entry(newer_a).with_entry(c)
    fresh = Lock(dict(carried.entries))
    assert carried.file_owners == fresh.file_owners
    assert carried.file_owners["shared"] == {"b": "2" * 64}
    assert "x" not in carried.file_owners
    assert lock.file_owners["shared"] == {"a": "2" * 64, "b": "2" * 64}  # the old one unchanged


@pytest.mark.parametrize(
    "rel",
    [
        "src/pkg/a.py",
        "conf/base/parameters_x.yml",
        "src/pkg/données/é.csv",
        "src/pkg/.hidden",
        "src/pkg/..x/a",
        "src/pkg/a..",
        "~/x",
        "a~/x",
        "/etc/passwd",
        "\\\\server\\share",
        "C:/x",
        "C:x",
        "c:",
        "x:y/z",
        "ab:c/d",
        "src//a",
        "src/./a",
        "src/../a",
        ".",
        "..",
        "./a",
        "a/.",
        "a/..",
        "a/",
        "",
        "src/a\\b",
        "src/a\nb",
        "src/a\x7fb",
        "src/a\u2028b",
        "src/a\udcffb",
        "src/a\x85b",
    ],
)
def test_lock_path_fast_check_agrees_with_the_full_rules(rel: str) -> None:
    from micropkg_tasks.lockfile import _path_problem, _path_problem_detail

    assert _path_problem(rel) == _path_problem_detail(rel)


def _project(root: Path) -> Project:
    """A project at ``root`` with nothing in it."""
    return Project(
        root=root,
        package_name="p",
        source_dir=root / "src",
        conf_root=root / "conf",
        tests_dir=root / "tests",
        requirements_txt=root / "requirements.txt",
        pyproject={},
    )


def test_lock_file_sources_follow_each_written_entry(tmp_path: Path) -> None:
    from micropkg_tasks.lockfile import LockFile

    project = _project(tmp_path)
    lock_file = LockFile(project)
    assert not lock_file.has_source("dist/s.tar.gz")  # no lock yet: an empty one
    # Two entries pulled from the same sdist (two aliases), then one of them upgraded.
    a = LockEntry("a", "dist/s.tar.gz", "1" * 64, "0.1", "s")
    b = LockEntry("b", "dist/s.tar.gz", "1" * 64, "0.1", "s")
    lock = lock_file.written(lock_file.current(), a)
    lock = lock_file.written(lock, b)
    assert lock_file.has_source("dist/s.tar.gz")
    lock = lock_file.written(lock, LockEntry("a", "dist/s-0.2.tar.gz", "2" * 64, "0.2", "s"))
    assert lock_file.has_source("dist/s.tar.gz")  # b still pulls it
    assert lock_file.has_source("dist/s-0.2.tar.gz")
    lock_file.written(lock, LockEntry("b", "dist/s-0.2.tar.gz", "2" * 64, "0.2", "s"))
    assert not lock_file.has_source("dist/s.tar.gz")
    assert lock_file.has_source("dist/s-0.2.tar.gz")
    assert set(lock_file.current().entries) == {"a", "b"}


def test_a_bad_pending_line_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    """Whether the log is read whole or, mid-run, from where this run last read it (another
    process appended the bad line since): the message names the line an editor shows."""
    from micropkg_tasks.lockfile import LockFile, pending_line

    project = _project(tmp_path)
    project.state_dir.mkdir()
    log = project.state_dir / lockfile.PENDING_NAME
    a = LockEntry("a", "dist/a.tar.gz", "1" * 64, "0.1", "a")
    b = LockEntry("b", "dist/b.tar.gz", "2" * 64, "0.1", "b")
    c = LockEntry("c", "dist/c.tar.gz", "3" * 64, "0.1", "c")
    log.write_bytes(pending_line(a) + pending_line(b))
    # Lines 1-3 are read; this run appends line 4 itself, another process line 5.
    running = LockFile(project, deferred=True)
    base = running.current()
    assert set(base.entries) == {"a", "b"}
    with log.open("ab") as stream:
        stream.write(pending_line(c))
    running.written(base, c, pending_line(c))
    with log.open("ab") as stream:
        stream.write(b"\n[1, 2]")
    message = "Cannot read 'lock.pending.jsonl': line 5 is not a pulled entry; fix or delete it."
    for reader in (running, LockFile(project, deferred=True)):
        with pytest.raises(PullError) as info:
            reader.current()
        assert str(info.value) == message
