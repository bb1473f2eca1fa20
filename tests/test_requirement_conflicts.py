"""Requirements with no version in common (the warning a pull prints)."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet

from micropkg_tasks.requirement_conflicts import disjoint, find_conflicts


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (">=2", "<2"),
        ("==1.5.*", ">=1.6"),
        ("~=1.4", ">=2"),
        ("~=1.4.2", "<1.4.2"),
        ("==1.0", "==1.1"),
        ("==1.0", "!=1.0"),
        (">1,<2", ">=2"),
        ("<1.0", ">1.0"),
        ("==2.*", "!=2.*"),
        ("<=1.0", ">1.0"),
        (">=1.0rc1", "<1.0"),  # PEP 440: "<1.0" excludes 1.0's pre-releases
    ],
)
def test_disjoint(a: str, b: str) -> None:
    assert disjoint(SpecifierSet(a), SpecifierSet(b))
    assert disjoint(SpecifierSet(b), SpecifierSet(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (">=2", "<2.1"),
        (">=2", ""),
        ("==1.5.*", ">=1.5.3"),
        ("~=1.4", "<1.5"),
        (">1.0", "<1.0.1"),
        ("<=1.0", ">=1.0"),
        ("!=1.0", "!=1.1"),
        ("<2", ">1.9999"),
        (">=1.0rc1", "<=1.0"),
        ("===weird", ">=1"),
        (">=1!1.0", ">=2.0"),
    ],
)
def test_overlapping(a: str, b: str) -> None:
    assert not disjoint(SpecifierSet(a), SpecifierSet(b))
    assert not disjoint(SpecifierSet(b), SpecifierSet(a))


def test_find_conflicts_names_both_lines_and_their_owners() -> None:
    lines = [
        "kedro~=0.19.15",
        "pandas<2",
        "",
        "# Additional requirements from micro-package `alpha`:",
        "numpy>=1.26",
        "scikit-learn>=1.4  # pinned for the model",
    ]
    owners = {"numpy>=1.26": ["pipelines.alpha"]}
    found = find_conflicts(
        lines,
        ["pandas>=2", "Numpy<1.20", "scikit_learn>=1.0", "requests"],
        "pipelines.beta",
        owners,
    )
    assert [(c.new, c.existing, c.existing_owners) for c in found] == [
        ("pandas>=2", "pandas<2", ()),
        ("Numpy<1.20", "numpy>=1.26", ("pipelines.alpha",)),
    ]
    assert found[1].message("requirements.in") == (
        "requirement 'Numpy<1.20' of micro-package 'pipelines.beta' has no version in common "
        "with 'numpy>=1.26' in requirements.in (from micro-package 'pipelines.alpha'); the "
        "compile will fail until one of them changes."
    )
    assert "(from the project)" in found[0].message("requirements.in")


def test_lines_with_other_markers_options_or_urls_are_not_compared() -> None:
    lines = [
        'pandas<2; python_version < "3.9"',
        "-r base.txt",
        "--index-url https://example.com/simple",
        "pandas @ https://example.com/pandas-1.0.tar.gz",
        "./local/path",
    ]
    assert find_conflicts(lines, ["pandas>=2"], "m", {}) == []
