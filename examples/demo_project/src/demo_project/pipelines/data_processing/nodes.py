"""
Nodes of pipeline 'data_processing': clean raw shuttle rows.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

Row = dict[str, Any]


def load_query() -> str:
    """Return the SQL that extracts the raw rows (shipped as ``sql/query.sql``)."""
    return resources.files(__package__).joinpath("sql", "query.sql").read_text(encoding="utf-8")


def _to_float(value: Any) -> float:
    """Parse ``"1,234.5"``-style prices and plain numbers."""
    if isinstance(value, str):
        value = value.replace(",", "").strip()
    return float(value)


def clean_rows(rows: list[Row], parameters: dict[str, Any]) -> list[Row]:
    """Drop unwanted columns, parse prices and drop rows below ``min_price``."""
    drop = set(parameters.get("drop_columns", []))
    min_price = float(parameters.get("min_price", 0.0))
    cleaned: list[Row] = []
    for row in rows:
        new = {key: value for key, value in row.items() if key not in drop}
        new["price"] = _to_float(new["price"])
        if new["price"] >= min_price:
            cleaned.append(new)
    return cleaned


def add_price_per_seat(rows: list[Row]) -> list[Row]:
    """Add ``price_per_seat``; rows without seats get ``None``."""
    out: list[Row] = []
    for row in rows:
        seats = row.get("passenger_capacity") or 0
        out.append({**row, "price_per_seat": row["price"] / seats if seats else None})
    return out
