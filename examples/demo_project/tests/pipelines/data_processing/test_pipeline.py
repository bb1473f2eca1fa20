"""Tests for pipeline 'data_processing'."""

from demo_project.pipelines.data_processing.nodes import add_price_per_seat, clean_rows, load_query

PARAMS = {"min_price": 10.0, "drop_columns": ["internal_id"]}


def test_clean_rows_drops_columns_and_cheap_rows():
    rows = [
        {"internal_id": 1, "price": "1,200.5", "passenger_capacity": 4},
        {"internal_id": 2, "price": 3, "passenger_capacity": 2},
    ]
    assert clean_rows(rows, PARAMS) == [{"price": 1200.5, "passenger_capacity": 4}]


def test_add_price_per_seat_handles_zero_seats():
    rows = [{"price": 100.0, "passenger_capacity": 4}, {"price": 5.0, "passenger_capacity": 0}]
    out = add_price_per_seat(rows)
    assert [row["price_per_seat"] for row in out] == [25.0, None]


def test_query_file_is_shipped():
    assert "FROM shuttles" in load_query()
