"""Tests for the 'utils' micro-package."""

from datetime import date

import pytest
from demo_project.utils import chunked
from demo_project.utils.helpers import parse_date, round_floats


def test_chunked():
    assert list(chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        list(chunked([], 0))


def test_round_floats_nested():
    assert round_floats({"a": [1.23456, (2.0001,)], "b": "x"}, 2) == {"a": [1.23, (2.0,)], "b": "x"}


def test_parse_date():
    assert parse_date("2024-02-29") == date(2024, 2, 29)
