"""Task rows to Task field values, derived from db.queries.TASK_COLUMN_NAMES.

Each column becomes the field of the same name; `id` becomes text (a GraphQL ID)
and `priority` the TaskPriority member (asyncpg returns the enum's text). Rows are
asyncpg records, or tuples in the same order (db/live.py's announced tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from db.priority import TaskPriority
from db.queries import TASK_COLUMN_NAMES

# Columns whose value needs converting; every other one is stored as it is.
CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "id": str,
    "priority": {p.value: p for p in TaskPriority}.__getitem__,
}


def _compile() -> Callable[[Any], dict[str, Any]]:
    """One dict display indexing the row by each column's position, generated once:
    listing decodes 50 rows a request, and dict(zip(names, row)) or a loop takes about
    1.5 times as long per row."""
    namespace: dict[str, Any] = {f"convert_{name}": convert for name, convert in CONVERSIONS.items()}
    items = ", ".join(
        f"{name!r}: convert_{name}(row[{i}])" if name in CONVERSIONS else f"{name!r}: row[{i}]"
        for i, name in enumerate(TASK_COLUMN_NAMES)
    )
    exec(f"def decode(row):\n    return {{{items}}}\n", namespace)
    return cast(Callable[[Any], dict[str, Any]], namespace["decode"])


decode_task_row = _compile()
"""The field values of the task in a row whose first columns are TASK_COLUMN_NAMES."""
