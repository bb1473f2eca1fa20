"""Edits of the pull manifest with tomlkit: comments, order and the other tables stay."""

from __future__ import annotations

import textwrap

from micropkg_tasks._compat import tomllib
from micropkg_tasks.manifest_edit import (
    entry_options,
    remove_pull_entry,
    rename_pull_entry,
    set_pull_entry,
)

HEAD = textwrap.dedent(
    """\
    [project]
    name = "demo"  # the distribution

    [tool.kedro]
    package_name = "demo_proj"
    """
)


def test_a_new_manifest_goes_to_tool_micropkg() -> None:
    text = set_pull_entry(HEAD, "dist/a-0.1.tar.gz", entry_options(alias="a", env="base"))
    assert text.startswith(HEAD)
    assert tomllib.loads(text)["tool"]["micropkg"]["pull"] == {"dist/a-0.1.tar.gz": {"alias": "a"}}


def test_a_kedro_manifest_is_kept_where_it_is() -> None:
    text = HEAD + '\n[tool.kedro.micropkg.package]\n"pipelines.x" = {}\n'
    out = set_pull_entry(text, "dist/a-0.1.tar.gz", {})
    data = tomllib.loads(out)
    assert "micropkg" not in {k for k in data["tool"] if k != "kedro"}
    assert data["tool"]["kedro"]["micropkg"]["pull"] == {"dist/a-0.1.tar.gz": {}}
    assert data["tool"]["kedro"]["micropkg"]["package"] == {"pipelines.x": {}}


MANIFEST = HEAD + textwrap.dedent(
    """
    [tool.micropkg.pull]
    # Shared pipelines, upgraded with `micropkg upgrade`.
    "dist/a-0.1.tar.gz" = {alias = "a"}  # the first one
    "s3://bucket/b-0.3.tar.gz" = {fs-args = "conf/s3.yml", sha256 = "00"}  # the second

    [tool.other]
    keep = true  # untouched
    """
)


def test_an_existing_entry_for_the_same_module_is_replaced_in_place() -> None:
    out = set_pull_entry(
        MANIFEST,
        "dist/a-0.2.tar.gz",
        {"alias": "a", "destination": "pipelines"},
        replaces=["dist/a-0.1.tar.gz"],
    )
    assert out == MANIFEST.replace(
        '"dist/a-0.1.tar.gz" = {alias = "a"}',
        '"dist/a-0.2.tar.gz" = {alias = "a", destination = "pipelines"}',
    )


def test_rename_keeps_position_comments_and_options() -> None:
    out = rename_pull_entry(
        MANIFEST, "s3://bucket/b-0.3.tar.gz", "s3://bucket/b-0.4.tar.gz", changes={"sha256": "11"}
    )
    assert out == MANIFEST.replace("b-0.3", "b-0.4").replace('sha256 = "00"', 'sha256 = "11"')
    assert rename_pull_entry(MANIFEST, "dist/missing.tar.gz", "x") is None


def test_remove_drops_only_that_entry() -> None:
    out = remove_pull_entry(MANIFEST, "dist/a-0.1.tar.gz")
    assert out == MANIFEST.replace('"dist/a-0.1.tar.gz" = {alias = "a"}  # the first one\n', "")
    assert remove_pull_entry(HEAD, "dist/a-0.1.tar.gz") is None
