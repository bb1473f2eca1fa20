"""The per-file 3-way rules of a pull, and the requirements block taking part like a file."""

from __future__ import annotations

from pathlib import Path

from micropkg_tasks.fsutil import sha256_bytes
from micropkg_tasks.merging import (
    FileMerger,
    block_lines,
    merge_requirements_3way,
    replace_block,
)
from micropkg_tasks.pulled import PulledVersion

BASE = b"a\nb\nc\nd\ne\n"
REL = "src/p/x.py"


def merger(known: bool = True, markers: bool = False) -> FileMerger:
    version = PulledVersion({REL: BASE}) if known else PulledVersion(unavailable="gone")
    return FileMerger(lambda: version, old_version="0.1", new_version="0.2", markers=markers)


def decide(local: bytes | None, new: bytes, **kw: bool):  # type: ignore[no-untyped-def]
    return merger(**kw).decide(REL, sha256_bytes(BASE), local, new)


def test_local_unchanged_takes_new() -> None:
    d = decide(BASE, b"new\n")
    assert (d.action, d.data) == ("update", b"new\n")


def test_new_unchanged_keeps_local_silently() -> None:
    d = decide(b"local\n", BASE)
    assert (d.action, d.data) == ("keep", None)


def test_both_changed_apart_merges() -> None:
    d = decide(BASE.replace(b"a", b"A"), BASE.replace(b"e", b"E"))
    assert (d.action, d.data) == ("merge", b"A\nb\nc\nd\nE\n")


def test_both_changed_the_same_line_is_a_conflict_with_hunks() -> None:
    d = decide(
        BASE.replace(b"b", b"B1").replace(b"e", b"E1"),
        BASE.replace(b"b", b"B2").replace(b"e", b"E2"),
    )
    assert (d.action, d.data, d.note, d.marked) == ("conflict", None, "2 conflicting hunks", False)


def test_markers() -> None:
    d = decide(BASE.replace(b"b", b"B1"), BASE.replace(b"b", b"B2"), markers=True)
    assert d.action == "conflict" and d.marked and d.note == "1 conflicting hunk"
    assert d.data == b"a\n<<<<<<< local\nB1\n||||||| 0.1\nb\n=======\nB2\n>>>>>>> 0.2\nc\nd\ne\n"


def test_deleted_locally() -> None:
    assert decide(None, BASE).action == "keep"
    d = decide(None, BASE.replace(b"c", b"C"))
    assert d.action == "conflict" and d.data is None
    assert d.note.startswith("deleted locally, changed by the new version")
    marked = decide(None, BASE.replace(b"c", b"C"), markers=True)
    assert marked.marked and marked.data is not None and b">>>>>>> 0.2\n" in marked.data


def test_unknown_base_is_a_conflict_that_says_why() -> None:
    d = decide(b"local\n", b"new\n", known=False)
    assert (d.action, d.note) == ("conflict", "edited locally; cannot merge: gone")


def test_the_base_is_read_only_when_needed() -> None:
    calls: list[int] = []

    def read() -> PulledVersion:
        calls.append(1)
        return PulledVersion({REL: BASE})

    m = FileMerger(read, old_version="0.1", new_version="0.2")
    m.decide(REL, sha256_bytes(BASE), BASE, b"new\n")
    m.decide(REL, sha256_bytes(BASE), b"x\n", BASE)
    assert calls == []
    m.decide(REL, sha256_bytes(BASE), b"x\n", b"y\n")
    m.decide(REL, sha256_bytes(BASE), b"x\n", b"y\n")
    assert calls == [1]


HEADER = "# Additional requirements from micro-package `ds`:"


def test_block_helpers_keep_the_rest_byte_for_byte() -> None:
    text = f"kedro\r\n\r\n{HEADER}\r\npandas>=1.0\r\npyyaml\r\n\r\n# end\r\n"
    assert block_lines(text, HEADER) == ["pandas>=1.0", "pyyaml"]
    assert (
        replace_block(text, HEADER, ["numpy"]) == f"kedro\r\n\r\n{HEADER}\r\nnumpy\r\n\r\n# end\r\n"
    )
    assert block_lines("kedro\n", HEADER) is None
    assert replace_block("x\n" + HEADER + "\na", HEADER, ["b", "c"]) == f"x\n{HEADER}\nb\nc"


def _reqs(tmp_path: Path, block: str) -> Path:
    path = tmp_path / "requirements.in"
    path.write_text(f"kedro~=0.19\n\n{HEADER}\n{block}")
    return path


def test_an_unedited_block_is_replaced(tmp_path: Path) -> None:
    path = _reqs(tmp_path, "pandas>=1.0\npyyaml\n")
    merged = merge_requirements_3way(
        path,
        tmp_path / "requirements.txt",
        "ds",
        ["pandas>=2.0", "pyyaml"],
        ["pandas>=1.0", "pyyaml"],
    )
    assert merged.text == f"kedro~=0.19\n\n{HEADER}\npandas>=2.0\npyyaml\n"
    assert not merged.edited and merged.conflicts == 0


def test_a_local_edit_of_the_block_is_kept_when_the_new_version_did_not_touch_it(
    tmp_path: Path,
) -> None:
    path = _reqs(tmp_path, "pandas>=1.5\npyyaml\n")  # the user raised pandas
    merged = merge_requirements_3way(
        path,
        tmp_path / "requirements.txt",
        "ds",
        ["pandas>=1.0", "pyyaml", "scikit-learn~=1.4"],
        ["pandas>=1.0", "pyyaml"],
    )
    assert merged.text == f"kedro~=0.19\n\n{HEADER}\npandas>=1.5\npyyaml\nscikit-learn~=1.4\n"
    assert merged.added == ("pandas>=1.0", "pyyaml", "scikit-learn~=1.4")
    assert merged.edited and merged.conflicts == 0


def test_a_line_deleted_locally_stays_deleted(tmp_path: Path) -> None:
    path = _reqs(tmp_path, "pyyaml\n")
    merged = merge_requirements_3way(
        path,
        tmp_path / "requirements.txt",
        "ds",
        ["pandas>=1.0", "pyyaml"],
        ["pandas>=1.0", "pyyaml"],
    )
    assert merged.text is None and merged.conflicts == 0


def test_the_same_line_changed_on_both_sides_conflicts(tmp_path: Path) -> None:
    path = _reqs(tmp_path, "pandas>=1.5\npyyaml\n")
    args = (
        path,
        tmp_path / "requirements.txt",
        "ds",
        ["pandas>=2.0", "pyyaml"],
        ["pandas>=1.0", "pyyaml"],
    )
    merged = merge_requirements_3way(*args)
    assert (merged.text, merged.conflicts) == (None, 1)
    marked = merge_requirements_3way(*args, markers=True, old_version="0.1", new_version="0.2")
    assert marked.marked and marked.text == (
        f"kedro~=0.19\n\n{HEADER}\n<<<<<<< local\npandas>=1.5\n||||||| 0.1\npandas>=1.0\n"
        "=======\npandas>=2.0\n>>>>>>> 0.2\npyyaml\n"
    )
    forced = merge_requirements_3way(*args, force=True)
    assert forced.text is not None and "pandas>=1.5" in forced.text and forced.conflicts == 0


def test_neighbouring_requirements_changed_on_each_side_merge_cleanly() -> None:
    from micropkg_tasks.merging import merge_requirement_lines

    lines, conflicts = merge_requirement_lines(
        ["numpy>=1.26", "scipy"],
        ["numpy>=1.26,<3", "requests", "scipy"],  # edited numpy, added requests
        ["PyYAML", "numpy>=1.26", "scipy>=1.11"],  # added PyYAML, raised scipy
        base_label="0.1",
        new_label="0.2",
    )
    assert (lines, conflicts) == (["PyYAML", "numpy>=1.26,<3", "requests", "scipy>=1.11"], 0)
