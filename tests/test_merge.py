"""The 3-way merge of one file (merge3): clean merges, conflicts, markers, binary files."""

from __future__ import annotations

from micropkg_tasks.merge import has_conflict_markers, is_binary, merge_file

BASE = b"a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n"


def merge(local: bytes, new: bytes, *, markers: bool = False, base: bytes = BASE):  # type: ignore[no-untyped-def]
    return merge_file(base, local, new, base_label="0.1", new_label="0.2", markers=markers)


def test_changes_on_both_sides_in_different_places_merge_cleanly() -> None:
    local = BASE.replace(b"a = 1", b"a = 10")
    new = BASE.replace(b"e = 5", b"e = 50")
    outcome = merge(local, new)
    assert outcome.conflicts == 0
    assert outcome.data == b"a = 10\nb = 2\nc = 3\nd = 4\ne = 50\n"


def test_the_same_change_on_both_sides_is_taken_once() -> None:
    both = BASE.replace(b"c = 3", b"c = 30")
    outcome = merge(both, both)
    assert (outcome.conflicts, outcome.data) == (0, both)


def test_overlapping_changes_are_counted_as_hunks_without_markers() -> None:
    local = BASE.replace(b"b = 2", b"b = 20").replace(b"e = 5", b"e = 55")
    new = BASE.replace(b"b = 2", b"b = 21").replace(b"e = 5", b"e = 56")
    outcome = merge(local, new)
    assert outcome.conflicts == 2
    assert outcome.data is None


def test_markers_are_git_style_with_the_base() -> None:
    local = BASE.replace(b"b = 2", b"b = 20")
    new = BASE.replace(b"b = 2", b"b = 21").replace(b"e = 5", b"e = 50")
    outcome = merge(local, new, markers=True)
    assert outcome.conflicts == 1
    assert outcome.data == (
        b"a = 1\n"
        b"<<<<<<< local\nb = 20\n"
        b"||||||| 0.1\nb = 2\n"
        b"=======\nb = 21\n"
        b">>>>>>> 0.2\n"
        b"c = 3\nd = 4\ne = 50\n"
    )
    assert has_conflict_markers(outcome.data)


def test_a_last_line_without_newline_does_not_swallow_a_marker() -> None:
    base = b"x\ny"
    outcome = merge_file(
        base, b"x\nlocal", b"x\nnew", base_label="0.1", new_label="0.2", markers=True
    )
    assert outcome.data == b"x\n<<<<<<< local\nlocal\n||||||| 0.1\ny\n=======\nnew\n>>>>>>> 0.2\n"


def test_crlf_files_keep_crlf_markers() -> None:
    base = b"one\r\ntwo\r\n"
    outcome = merge_file(
        base, b"one\r\nTWO\r\n", b"one\r\n2\r\n", base_label="0.1", new_label="0.2", markers=True
    )
    assert outcome.data is not None
    assert b"<<<<<<< local\r\n" in outcome.data
    assert b"\n" not in outcome.data.replace(b"\r\n", b"")


def test_binary_files_are_never_merged() -> None:
    assert is_binary(b"\x00\x01") and is_binary(b"\xff\xfe") and not is_binary(b"caf\xc3\xa9\n")
    outcome = merge_file(b"\x00a", b"\x00b", b"\x00c", base_label="0.1", new_label="0.2")
    assert (outcome.conflicts, outcome.data, outcome.binary) == (1, None, True)


def test_marker_detection_ignores_rst_underlines() -> None:
    assert not has_conflict_markers(b"Title\n=======\n\ntext\n")
    assert has_conflict_markers(b"x\n>>>>>>> 0.2\n")
    assert has_conflict_markers(b"x\r\n<<<<<<< local\r\n")
    assert not has_conflict_markers(b"x <<<<<<< local\n")
