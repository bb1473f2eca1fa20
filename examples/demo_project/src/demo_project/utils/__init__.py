"""Small helpers shared by the project's pipelines."""

from .helpers import chunked, round_floats

__all__ = ["chunked", "round_floats"]
