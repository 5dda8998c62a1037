"""The fast paths' own tests: differential tests against the stock path, the switch."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def masked(value: Any, volatile: Collection[str]) -> Any:
    """A JSON value with every key in `volatile`, at any depth, set to "*": what differs
    between two creations of the same task (ids, times), so two paths' bodies compare."""
    if isinstance(value, dict):
        return {k: "*" if k in volatile else masked(v, volatile) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, volatile) for v in value]
    return value
