"""Generic helpers (no Kedro dependency)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any, TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items."""
    if size < 1:
        raise ValueError("size must be >= 1")
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def round_floats(value: Any, precision: int = 3) -> Any:
    """Round every float inside nested dicts/lists/tuples."""
    if isinstance(value, float):
        return round(value, precision)
    if isinstance(value, dict):
        return {key: round_floats(item, precision) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(round_floats(item, precision) for item in value)
    return value


def parse_date(text: str, date_format: str = "%Y-%m-%d") -> date:
    """Parse a date with the configured format."""
    return datetime.strptime(text, date_format).date()
