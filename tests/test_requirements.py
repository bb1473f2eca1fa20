"""requirements.py: Kedro's canonical form and equivalence, parsing, merge, compile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from wheelhouse import build_wheel

from micropkg_tasks.errors import RequirementsError
from micropkg_tasks.requirements import (
    MergeResult,
    block_header,
    canonical,
    compile_requirements,
    merge_requirements,
    parse_package_requirements,
    requirements_stale,
    same_requirement,
)

# Reference §6.3, one per line, including a comment line and an inline comment.
SIMPLE_REQUIREMENTS = """\
A
A.B-C_D
aa
name
name<=1
name>=3
name>=3,<2
name==1.2.3
name!=1.2.3 # inline comment
# whole line comment
name@http://foo.com
name [fred,bar] @ http://foo.com ; python_version=='2.7'
name[quux, strange];python_version<'2.7' and platform_version=='2'
name; os_name=='a' or os_name=='b'
requests [security,tests] >= 2.8.1, == 2.8.* ; python_version < "2.7"
pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ees
"""

SIMPLE_CANONICAL = (
    "A",
    "A.B-C_D",
    "aa",
    "name",
    "name<=1",
    "name>=3",
    "name<2,>=3",
    "name==1.2.3",
    "name!=1.2.3",
    "name@ http://foo.com",
    'name[bar,fred]@ http://foo.com ; python_version == "2.7"',
    'name[quux,strange]; python_version < "2.7" and platform_version == "2"',
    'name; os_name == "a" or os_name == "b"',
    'requests[security,tests]==2.8.*,>=2.8.1; python_version < "2.7"',
    "pip@ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ees",
)

COMPLEX_REQUIREMENTS = (
    "--extra-index-url https://this.wont.work",
    "-r other_requirements.txt",
    "./path/to/package.whl",
    "http://some.website.com/package.whl",
)

HEADER = "# Additional requirements from micro-package `{}`:"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- canonical form


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "name [fred,bar] @ http://foo.com ; python_version=='2.7'",
            'name[bar,fred]@ http://foo.com ; python_version == "2.7"',
        ),
        (
            'requests [security,tests] >= 2.8.1, == 2.8.* ; python_version < "2.7"',
            'requests[security,tests]==2.8.*,>=2.8.1; python_version < "2.7"',
        ),
        ("qux ; python_version>'3'", 'qux; python_version > "3"'),
        ("  indented==1", "indented==1"),
        ("scikit_learn~=1.0", "scikit_learn~=1.0"),
    ],
)
def test_canonical_reference_examples(raw: str, expected: str) -> None:
    assert canonical(raw) == expected


def test_canonical_is_idempotent_on_simple_requirements() -> None:
    for text in SIMPLE_CANONICAL:
        assert canonical(text) == text


def test_canonical_rejects_non_pep508() -> None:
    with pytest.raises(RequirementsError, match=r"Invalid requirement '-r x\.txt'"):
        canonical("-r x.txt")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Foo.Bar", "foo-bar"),
        ("scikit-learn~=1.0", "scikit_learn~=1.0"),
        ("pandas>=1.0,<2", "pandas<2,>=1.0"),
        ("requests[b,a]", "requests[a,b]"),
        ("qux; python_version>'3'", 'qux ; python_version > "3"'),
    ],
)
def test_equivalent(a: str, b: str) -> None:
    assert same_requirement(a, b)
    assert same_requirement(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("pandas", "pandas>=1.0"),
        ("pandas>=1.0", "pandas>=1.1"),
        ("requests[a]", "requests"),
        ("name@http://foo.com", "name@http://bar.com"),
        ("qux; python_version>'3'", "qux"),
    ],
)
def test_not_equivalent(a: str, b: str) -> None:
    assert not same_requirement(a, b)


# --------------------------------------------------------------------------- package side


def test_parse_simple_requirements(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", SIMPLE_REQUIREMENTS)
    assert parse_package_requirements(path) == SIMPLE_CANONICAL


def test_parse_reference_scenario(tmp_path: Path) -> None:
    """Reference §9: the data_proc pipeline's requirements.txt gives these Requires-Dist."""
    text = (
        "pandas>=1.0  # inline\n# comment\n"
        'requests[security]==2.*; python_version>"3.8"\nPyYAML\n\nscikit_learn~=1.0\n'
    )
    path = write(tmp_path / "requirements.txt", text)
    assert parse_package_requirements(path) == (
        "pandas>=1.0",
        'requests[security]==2.*; python_version > "3.8"',
        "PyYAML",
        "scikit_learn~=1.0",
    )


def test_parse_fixes_kedro_whitespace_bugs_and_keeps_duplicates(tmp_path: Path) -> None:
    text = "   \n  # indented comment\n\tpandas>=1.0\t# tab comment\npandas>=1.0\n\n"
    path = write(tmp_path / "requirements.txt", text)
    assert parse_package_requirements(path) == ("pandas>=1.0", "pandas>=1.0")


def test_parse_missing_or_empty_file(tmp_path: Path) -> None:
    assert parse_package_requirements(tmp_path / "nope.txt") == ()
    assert parse_package_requirements(write(tmp_path / "empty.txt", "")) == ()


@pytest.mark.parametrize("line", COMPLEX_REQUIREMENTS)
def test_parse_complex_requirement_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "src/demo/pipelines/x/requirements.txt", f"pandas\n# comment\n{line}\n")
    with pytest.raises(RequirementsError) as info:
        parse_package_requirements(path)
    assert str(info.value) == (
        f"Invalid requirement in src/demo/pipelines/x/requirements.txt line 3: '{line}' is not "
        "a PEP 508 requirement (options, file references and URLs to wheels cannot go into "
        "package metadata)."
    )


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("-e git+https://github.com/x/y.git#egg=y", "options, file references"),
        ("-c constraints.txt", "options, file references"),
        ("pandas>=1.0 \\", "line continuations are not supported"),
        ("x==1#c", "is not a PEP 508 requirement: Expected"),
        ("pandas>=", "is not a PEP 508 requirement: Expected"),
    ],
)
def test_parse_other_invalid_lines(tmp_path: Path, line: str, fragment: str) -> None:
    path = write(tmp_path / "pkg" / "requirements.txt", f"{line}\n")
    with pytest.raises(RequirementsError, match="line 1: ") as info:
        parse_package_requirements(path, relative_to=tmp_path)
    message = str(info.value)
    assert message.startswith(f"Invalid requirement in pkg/requirements.txt line 1: '{line}'")
    assert fragment in message
    assert "\n" not in message


# --------------------------------------------------------------------------- merge

PROJECT_REQS = "ipython>=8.10\njupyterlab>=3.0\nkedro~=0.19.15\nnotebook\n"
REFERENCE_NEW = (
    "pandas>=1.0",
    'requests[security]==2.*; python_version > "3.8"',
    "PyYAML",
    "scikit_learn~=1.0",
)


def merge(
    tmp_path: Path, new: tuple[str, ...] | list[str], name: str = "dp_alias", **kw: tuple[str, ...]
) -> MergeResult:
    return merge_requirements(
        tmp_path / "requirements.in", tmp_path / "requirements.txt", name, new, **kw
    )


def test_merge_reference_scenario(tmp_path: Path) -> None:
    """Reference §4.6's observed file, on requirements.in, with one trailing newline."""
    write(tmp_path / "requirements.in", PROJECT_REQS)
    result = merge(tmp_path, REFERENCE_NEW)
    expected_added = (
        "PyYAML",
        "pandas>=1.0",
        'requests[security]==2.*; python_version > "3.8"',
        "scikit_learn~=1.0",
    )
    assert result.added == expected_added
    assert result.created_from is None
    assert result.text == (
        PROJECT_REQS + "\n" + HEADER.format("dp_alias") + "\n" + "\n".join(expected_added) + "\n"
    )
    # Pure: nothing written.
    assert (tmp_path / "requirements.in").read_text() == PROJECT_REQS
    assert not (tmp_path / "requirements.txt").exists()


def test_merge_header_helper() -> None:
    assert block_header("dp") == HEADER.format("dp")


def test_merge_skips_equivalent_requirements(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "scikit-learn~=1.0\npandas>=1.0,<2  # pinned\n")
    result = merge(tmp_path, ["scikit_learn~=1.0", "pandas<2,>=1.0", "numpy", "NumPy"])
    assert result.added == ("numpy",)
    assert result.text is not None
    assert result.text.endswith(HEADER.format("dp_alias") + "\nnumpy\n")


def test_merge_keeps_unparseable_lines_verbatim(tmp_path: Path) -> None:
    existing = (
        "--index-url https://example.com/simple\n"
        "-r other_requirements.txt\n"
        "-c constraints.txt\n"
        "-e git+https://github.com/x/pandas.git#egg=pandas\n"
        "./path/to/package.whl\n"
        "http://some.website.com/package.whl\n"
        "kedro~=0.19.15\n"
    )
    write(tmp_path / "requirements.in", existing)
    result = merge(tmp_path, ["pandas", "kedro~=0.19.15"])
    assert result.added == ("pandas",)
    assert result.text == existing + "\n" + HEADER.format("dp_alias") + "\npandas\n"


def test_merge_counts_requirements_with_options_and_continuations(tmp_path: Path) -> None:
    write(
        tmp_path / "requirements.in",
        "pandas==2.0 --hash=sha256:abc\nrequests \\\n    >=2.0\n",
    )
    assert merge(tmp_path, ["pandas==2.0", "requests>=2.0"]) == MergeResult(None, (), None)


def test_merge_creates_requirements_in_from_requirements_txt(tmp_path: Path) -> None:
    write(tmp_path / "requirements.txt", "kedro~=0.19.15\npandas>=1.0")  # no final newline
    result = merge(tmp_path, ["pandas>=1.0", "numpy"])
    assert result.created_from == tmp_path / "requirements.txt"
    assert (
        result.text == "kedro~=0.19.15\npandas>=1.0\n\n" + HEADER.format("dp_alias") + "\nnumpy\n"
    )


def test_merge_without_any_project_file(tmp_path: Path) -> None:
    result = merge(tmp_path, ["b", "a"])
    assert result == MergeResult(HEADER.format("dp_alias") + "\na\nb\n", ("a", "b"), None)


def test_merge_nothing_to_add(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", SIMPLE_REQUIREMENTS.rstrip("\n"))
    assert merge(tmp_path, SIMPLE_CANONICAL) == MergeResult(None, (), None)
    assert merge(tmp_path, []) == MergeResult(None, (), None)
    # Seeding from requirements.txt only happens when something is written.
    (tmp_path / "requirements.in").rename(tmp_path / "requirements.txt")
    assert merge(tmp_path, SIMPLE_CANONICAL) == MergeResult(None, (), None)


def test_merge_sorts_case_sensitively(tmp_path: Path) -> None:
    result = merge(tmp_path, ["pandas", "PyYAML", "Zeta", "alpha"])
    assert result.added == ("PyYAML", "Zeta", "alpha", "pandas")


def test_merge_rejects_invalid_incoming(tmp_path: Path) -> None:
    with pytest.raises(RequirementsError, match=r"-r x.*micro-package 'dp_alias'"):
        merge(tmp_path, ["-r x"])


def test_merge_adds_lines_dropped_elsewhere_but_not_block_twice(tmp_path: Path) -> None:
    """A Kedro-written block (not in ``previous``) counts as present and is left alone."""
    kedro_file = PROJECT_REQS + "\n\n" + HEADER.format("dp_alias") + "\nPyYAML\npandas>=1.0"
    write(tmp_path / "requirements.in", kedro_file)
    result = merge(tmp_path, ["PyYAML", "pandas>=1.0", "numpy"])
    assert result.added == ("numpy",)
    assert result.text == kedro_file + "\n\n" + HEADER.format("dp_alias") + "\nnumpy\n"


def test_merge_upgrade_replaces_block_in_place(tmp_path: Path) -> None:
    other = HEADER.format("other") + "\nrequests\n"
    before = (
        PROJECT_REQS
        + "\n"
        + HEADER.format("dp")
        + "\nPyYAML\npandas>=1.0\nscikit_learn~=1.0\n\n"
        + other
    )
    write(tmp_path / "requirements.in", before)
    result = merge(
        tmp_path,
        ["pandas>=2.0", "PyYAML", "numpy"],
        name="dp",
        previous=("PyYAML", "pandas>=1.0", "scikit_learn~=1.0"),
    )
    assert result.added == ("PyYAML", "numpy", "pandas>=2.0")
    assert result.text == (
        PROJECT_REQS + "\n" + HEADER.format("dp") + "\nPyYAML\nnumpy\npandas>=2.0\n\n" + other
    )


def test_merge_upgrade_keeps_user_lines(tmp_path: Path) -> None:
    """Lines the user added (inside the block or elsewhere) survive; ``previous`` lines go."""
    before = (
        "kedro\npandas>=1.0\n\n"  # the user's own pandas line, outside the block
        + HEADER.format("dp")
        + "\npandas>=1.0\nmy-extra-lib\nscikit_learn~=1.0\n"
    )
    write(tmp_path / "requirements.in", before)
    result = merge(
        tmp_path,
        ["pandas>=1.0", "polars"],
        name="dp",
        previous=("pandas>=1.0", "scikit_learn~=1.0"),
    )
    assert result.added == ("polars",)  # pandas>=1.0 is still present (the user's line)
    assert result.text == (
        "kedro\npandas>=1.0\n\n" + HEADER.format("dp") + "\npolars\nmy-extra-lib\n"
    )


def test_merge_upgrade_removes_block_when_nothing_left(tmp_path: Path) -> None:
    before = "kedro\n\n" + HEADER.format("dp") + "\npandas>=1.0\n\n" + HEADER.format("x") + "\nb\n"
    write(tmp_path / "requirements.in", before)
    result = merge(tmp_path, ["kedro"], name="dp", previous=("pandas>=1.0",))
    assert result == MergeResult("kedro\n\n" + HEADER.format("x") + "\nb\n", (), None)
    # The same when the block was the last thing in the file, or the first.
    write(tmp_path / "requirements.in", "kedro\n\n" + HEADER.format("dp") + "\npandas>=1.0\n")
    assert merge(tmp_path, [], name="dp", previous=("pandas>=1.0",)).text == "kedro\n"
    write(tmp_path / "requirements.in", HEADER.format("dp") + "\npandas>=1.0\n\nkedro\n")
    assert merge(tmp_path, [], name="dp", previous=("pandas>=1.0",)).text == "kedro\n"


def test_merge_repull_same_requirements_is_a_no_op(tmp_path: Path) -> None:
    first = merge(tmp_path, REFERENCE_NEW)
    assert first.text is not None
    write(tmp_path / "requirements.in", first.text)
    again = merge(tmp_path, REFERENCE_NEW, previous=first.added)
    assert again.text is None
    assert again.added == first.added  # still this micro-package's lines, for the lock


def test_merge_previous_only_matches_exact_lines_under_its_header(tmp_path: Path) -> None:
    before = "pandas>=1.0\n\n" + HEADER.format("other") + "\nnumpy\n"
    write(tmp_path / "requirements.in", before)
    result = merge(tmp_path, ["scipy"], name="dp", previous=("pandas>=1.0", "numpy"))
    assert result.text == before + "\n" + HEADER.format("dp") + "\nscipy\n"


def test_merge_keeps_trailing_blank_lines(tmp_path: Path) -> None:
    """They are the user's bytes: the block goes after them, with no extra separator."""
    write(tmp_path / "requirements.in", "kedro\n\n\n\n")
    assert merge(tmp_path, ["a"]).text == "kedro\n\n\n\n" + HEADER.format("dp_alias") + "\na\n"


# --------------------------------------------------------------------------- compile


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    house = tmp_path / "wheelhouse"
    build_wheel(house, "alpha", "1.0", requires=["beta>=2"])
    build_wheel(house, "beta", "2.0")
    build_wheel(house, "gamma", "0.5", requires=['alpha; python_version < "3"'])
    return house


def offline(wheelhouse: Path, tmp_path: Path) -> tuple[str, ...]:
    return (
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "--cache-dir",
        str(tmp_path / "pip-tools-cache"),
    )


def test_wheelhouse_wheels_install_metadata(tmp_path: Path, wheelhouse: Path) -> None:
    """The hand-written wheels are valid for pip (sanity check of the builder)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--target",
            str(tmp_path / "target"),
            "alpha",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "target" / "beta" / "__init__.py").is_file()


def test_compile_pins_and_records_hash(tmp_path: Path, wheelhouse: Path) -> None:
    root = tmp_path / "proj"
    req_in = write(root / "requirements.in", "alpha\ngamma\n")
    req_txt = root / "requirements.txt"
    assert requirements_stale(req_in, req_txt)

    compile_requirements(root, req_in, req_txt, extra_args=offline(wheelhouse, tmp_path))

    text = req_txt.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert "alpha==1.0" in lines
    assert "beta==2.0" in lines
    assert "gamma==0.5" in lines
    assert "micropkg build-reqs" in text
    assert "    # via -r requirements.in" in lines
    assert "--find-links" not in text
    assert "--index-url" not in text
    assert "--no-index" not in text
    assert str(tmp_path) not in text
    hash_lines = [line for line in lines if line.startswith("# micropkg: requirements.in sha256=")]
    assert len(hash_lines) == 1
    # Right after pip-compile's header block, before the first pin.
    first_pin = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert lines[first_pin - 1] == hash_lines[0]
    assert text.endswith("\n")
    assert not requirements_stale(req_in, req_txt)

    # Editing requirements.in makes it stale; recompiling keeps a single hash line.
    write(req_in, "alpha\n")
    assert requirements_stale(req_in, req_txt)
    compile_requirements(root, req_in, req_txt, extra_args=offline(wheelhouse, tmp_path))
    text = req_txt.read_text(encoding="utf-8")
    assert "gamma" not in text
    assert text.count("# micropkg: requirements.in sha256=") == 1
    assert not requirements_stale(req_in, req_txt)

    req_txt.unlink()
    assert requirements_stale(req_in, req_txt)


def test_compile_in_src_layout(tmp_path: Path, wheelhouse: Path) -> None:
    """Kedro 0.18: requirements live in src/; paths stay relative to the project root."""
    root = tmp_path / "proj"
    req_in = write(root / "src" / "requirements.in", "beta\n")
    req_txt = root / "src" / "requirements.txt"
    compile_requirements(root, req_in, req_txt, extra_args=offline(wheelhouse, tmp_path))
    text = req_txt.read_text(encoding="utf-8")
    assert "beta==2.0" in text
    assert "# via -r src/requirements.in" in text
    assert str(tmp_path) not in text


def test_compile_failure_raises_and_keeps_old_file(tmp_path: Path, wheelhouse: Path) -> None:
    root = tmp_path / "proj"
    req_in = write(root / "requirements.in", "no-such-package-xyz\n")
    req_txt = write(root / "requirements.txt", "old\n")
    with pytest.raises(RequirementsError) as info:
        compile_requirements(root, req_in, req_txt, extra_args=offline(wheelhouse, tmp_path))
    message = str(info.value)
    assert message.startswith("Compiling requirements.in with pip-tools failed")
    assert "no-such-package-xyz" in message
    assert "Traceback" not in message
    assert 'File "' not in message
    assert req_txt.read_text(encoding="utf-8") == "old\n"
    assert requirements_stale(req_in, req_txt)


def test_compile_missing_input_and_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(RequirementsError, match=r"'requirements\.in' does not exist"):
        compile_requirements(tmp_path, tmp_path / "requirements.in", tmp_path / "requirements.txt")
    write(tmp_path / "requirements.in", "")
    with pytest.raises(RequirementsError, match="Unknown compile backend 'poetry'"):
        compile_requirements(
            tmp_path, tmp_path / "requirements.in", tmp_path / "requirements.txt", backend="poetry"
        )


def test_compile_with_uv(tmp_path: Path, wheelhouse: Path) -> None:
    root = tmp_path / "proj"
    req_in = write(root / "requirements.in", "alpha\n")
    req_txt = root / "requirements.txt"
    compile_requirements(
        root,
        req_in,
        req_txt,
        extra_args=("--no-index", "--find-links", str(wheelhouse)),
        backend="uv",
    )
    text = req_txt.read_text(encoding="utf-8")
    assert "alpha==1.0" in text and "beta==2.0" in text
    assert "micropkg build-reqs" in text
    assert str(tmp_path) not in text
    assert not requirements_stale(req_in, req_txt)


def test_stale_without_hash_line_or_input(tmp_path: Path) -> None:
    req_in = write(tmp_path / "requirements.in", "alpha\n")
    req_txt = write(tmp_path / "requirements.txt", "alpha==1.0\n")
    assert requirements_stale(req_in, req_txt)
    req_in.unlink()
    assert requirements_stale(req_in, req_txt)


def test_stale_check_imports_nothing_heavy() -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from micropkg_tasks.requirements import requirements_stale\n"
        "requirements_stale(Path('a.in'), Path('a.txt'))\n"
        "heavy = [m for m in ('packaging', 'piptools', 'pip') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
