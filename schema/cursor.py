"""Opaque keyset cursors: the sort key and id of the last task a client saw.

A cursor is only valid for the sort and order it was made for, so a client
cannot resume one listing with another listing's position.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from db.priority import TaskPriority
from schema.errors import ValidationFailed
from schema.validation import MAX_TASK_ID

_VERSION = 1
_TIME_SORTS = frozenset({"created", "updated", "due_date"})
_PRIORITIES = frozenset(p.value for p in TaskPriority)


def encode_cursor(sort: str, order: str, key: Any, task_id: int) -> str:
    if isinstance(key, datetime):
        key = key.isoformat()
    raw = json.dumps([_VERSION, sort, order, key, task_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# The longest cursor this API issues (a 200-character title key, JSON-escaped, in
# base64) is well under this; anything longer is refused before it is decoded.
MAX_CURSOR_LENGTH = 2048


def decode_cursor(cursor: str, sort: str, order: str) -> tuple[Any, int]:
    """The (sort key, id) a cursor points at, or BAD_USER_INPUT on field `after`."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise ValidationFailed.single(
            "after", f"is longer than any cursor this API issues ({MAX_CURSOR_LENGTH})"
        )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, c_sort, c_order, key, task_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        # RecursionError: JSON nested deeper than the parser's recursion limit.
        raise ValidationFailed.single("after", "is not a cursor this API issued") from None
    if (
        version != _VERSION
        or not isinstance(task_id, int)
        or isinstance(task_id, bool)
        or not 1 <= task_id <= MAX_TASK_ID
    ):
        raise ValidationFailed.single("after", "is not a cursor this API issued")
    if (c_sort, c_order) != (sort, order):
        raise ValidationFailed.single("after", "belongs to a listing with another sort or order")
    try:
        if key is None and sort == "due_date":
            pass  # tasks without a due date sort last
        elif sort in _TIME_SORTS:
            key = datetime.fromisoformat(key)
            if key.tzinfo is None:
                raise ValueError
            key = key.astimezone(UTC)  # OverflowError when the instant is out of range
        elif not isinstance(key, str):
            raise TypeError
        elif "\x00" in key or (sort == "priority" and key not in _PRIORITIES):
            raise ValueError  # the database would reject it
        else:
            key.encode()  # lone surrogates: UnicodeEncodeError, a ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed.single("after", "is not a cursor this API issued") from None
    return key, task_id
