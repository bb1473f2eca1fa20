"""
Nodes of pipeline 'data_science': a tiny least-squares model in plain Python.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

Row = dict[str, Any]

SCHEMA_FILE = Path(__file__).with_name("schema.json")


def load_schema() -> dict[str, Any]:
    """Return the model input schema shipped as ``schema.json``."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def split_data(rows: list[Row], parameters: dict[str, Any]) -> tuple[list[Row], list[Row]]:
    """Shuffle deterministically and split into (train, test)."""
    shuffled = list(rows)
    random.Random(parameters.get("random_state", 0)).shuffle(shuffled)
    n_test = round(len(shuffled) * float(parameters.get("test_size", 0.2)))
    return shuffled[n_test:], shuffled[:n_test]


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Ordinary least squares for one feature: return (slope, intercept)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if not var:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
    return slope, mean_y - slope * mean_x


def train(train_rows: list[Row], model_options: dict[str, Any], target: str) -> dict[str, Any]:
    """Fit one line per feature and keep the average prediction as the model."""
    ys = [float(row[target]) for row in train_rows]
    coefficients = {
        feature: fit_line([float(row[feature]) for row in train_rows], ys)
        for feature in model_options["features"]
    }
    return {"target": target, "coefficients": coefficients}


def predict(model: dict[str, Any], row: Row) -> float:
    """Average of the per-feature predictions."""
    preds = [slope * float(row[f]) + icpt for f, (slope, icpt) in model["coefficients"].items()]
    return sum(preds) / len(preds)


def evaluate(model: dict[str, Any], test_rows: list[Row]) -> dict[str, float]:
    """Mean absolute error on the test rows."""
    errors = [abs(predict(model, row) - float(row[model["target"]])) for row in test_rows]
    return {"mae": sum(errors) / len(errors) if errors else 0.0}
