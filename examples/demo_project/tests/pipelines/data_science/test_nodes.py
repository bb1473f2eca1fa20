"""Tests for pipeline 'data_science' (absolute imports and mock.patch targets on purpose)."""

from unittest import mock

import demo_project.pipelines.data_science.nodes as ds_nodes
from demo_project.pipelines.data_science.nodes import evaluate, fit_line, split_data, train

ROWS = [{"engines": e, "passenger_capacity": 2 * e, "price": 10.0 * e} for e in range(1, 11)]
OPTIONS = {"features": ["engines", "passenger_capacity"]}


def test_fit_line_exact():
    assert fit_line([1.0, 2.0, 3.0], [3.0, 5.0, 7.0]) == (2.0, 1.0)


def test_split_is_deterministic():
    params = {"test_size": 0.2, "random_state": 3}
    assert split_data(ROWS, params) == split_data(ROWS, params)
    train_rows, test_rows = split_data(ROWS, params)
    assert (len(train_rows), len(test_rows)) == (8, 2)


def test_train_and_evaluate_perfect_fit():
    model = train(ROWS, OPTIONS, "price")
    assert evaluate(model, ROWS)["mae"] < 1e-9


def test_train_uses_fit_line():
    with mock.patch(
        "demo_project.pipelines.data_science.nodes.fit_line", return_value=(0.0, 1.0)
    ) as fake:
        model = train(ROWS, OPTIONS, "price")
    assert fake.call_count == 2
    assert model["coefficients"]["engines"] == (0.0, 1.0)


def test_schema_is_shipped():
    assert ds_nodes.load_schema()["title"] == "model_input_table"
