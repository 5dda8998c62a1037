"""schema/cursor.py alone: keyset cursors round-trip, and anything else is refused on `after`."""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.priority import TaskPriority
from schema.cursor import MAX_CURSOR_LENGTH, decode_cursor, encode_cursor
from schema.errors import FieldError, ValidationFailed
from schema.validation import MAX_TASK_ID, TITLE_MAX_LENGTH

NOT_OURS = FieldError("after", "is not a cursor this API issued")
OTHER_LISTING = FieldError("after", "belongs to a listing with another sort or order")
WHEN = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
URL_SAFE = frozenset(string.ascii_letters + string.digits + "-_")


def raw_cursor(payload: Any) -> str:
    """A cursor around any JSON (what a client could forge), in the issued encoding."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def refusal(cursor: str, sort: str, order: str) -> list[FieldError]:
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(cursor, sort, order)
    return refused.value.errors


# ------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("sort", "key", "decoded"),
    [
        ("created", WHEN, WHEN),
        ("updated", WHEN, WHEN),
        ("due_date", WHEN, WHEN),
        ("due_date", None, None),  # tasks without a due date sort last
        # another offset: the same instant, handed back in UTC
        ("created", datetime(2026, 11, 22, 14, 0, tzinfo=timezone(timedelta(hours=2))), WHEN),
        ("title", "Buy milk", "Buy milk"),
        ("title", "", ""),
        ("title", 'caf\u00e9 \U0001f95b "quoted" \\', 'caf\u00e9 \U0001f95b "quoted" \\'),
        ("priority", "high", "high"),
    ],
)
def test_cursors_round_trip(sort: str, key: Any, decoded: Any) -> None:
    for order in ("asc", "desc"):
        cursor = encode_cursor(sort, order, key, 7)
        assert decode_cursor(cursor, sort, order) == (decoded, 7)


def test_a_decoded_time_key_is_in_utc() -> None:
    cursor = encode_cursor("updated", "desc", datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5))), 1)
    key, _ = decode_cursor(cursor, "updated", "desc")
    assert key.utcoffset() == timedelta(0)


def test_cursors_are_url_safe_without_padding() -> None:
    for length in range(1, 8):  # every padding remainder
        cursor = encode_cursor("title", "asc", "t" * length, 1)
        assert set(cursor) <= URL_SAFE


def test_the_longest_title_cursor_fits_the_limit() -> None:
    # Every character JSON-escaped (\uXXXX: 6 bytes), at the largest id.
    cursor = encode_cursor("title", "desc", "\u0001" * TITLE_MAX_LENGTH, MAX_TASK_ID)
    assert len(cursor) <= MAX_CURSOR_LENGTH
    assert decode_cursor(cursor, "title", "desc") == ("\u0001" * TITLE_MAX_LENGTH, MAX_TASK_ID)


TITLES = st.text(max_size=TITLE_MAX_LENGTH).filter(lambda t: "\x00" not in t)
IDS = st.integers(min_value=1, max_value=MAX_TASK_ID)
ORDERS = st.sampled_from(["asc", "desc"])
INSTANTS = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@given(TITLES, IDS, ORDERS)
def test_any_title_cursor_round_trips(title: str, task_id: int, order: str) -> None:
    assert decode_cursor(encode_cursor("title", order, title, task_id), "title", order) == (title, task_id)


@given(st.sampled_from(["created", "updated", "due_date"]), INSTANTS, IDS, ORDERS)
def test_any_time_cursor_round_trips(sort: str, when: datetime, task_id: int, order: str) -> None:
    assert decode_cursor(encode_cursor(sort, order, when, task_id), sort, order) == (when, task_id)


@given(st.sampled_from(list(TaskPriority)), IDS, ORDERS)
def test_any_priority_cursor_round_trips(priority: TaskPriority, task_id: int, order: str) -> None:
    cursor = encode_cursor("priority", order, priority.value, task_id)
    assert decode_cursor(cursor, "priority", order) == (priority.value, task_id)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("sort", "order"),
    [("title", "desc"), ("created", "asc"), ("priority", "asc"), ("updated", "desc")],
)
def test_a_cursor_is_only_for_its_own_sort_and_order(sort: str, order: str) -> None:
    cursor = encode_cursor("created", "desc", WHEN, 1)
    assert refusal(cursor, sort, order) == [OTHER_LISTING]


def test_a_cursor_longer_than_any_issued_is_refused_unread() -> None:
    assert refusal("A" * (MAX_CURSOR_LENGTH + 1), "title", "asc") == [
        FieldError("after", f"is longer than any cursor this API issues ({MAX_CURSOR_LENGTH})")
    ]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "A",  # one base64 character: no whole byte
        "not a cursor",
        "%%%%",
        "0",
        raw_cursor("not json"),
        raw_cursor("\udcff"),  # not UTF-8
        raw_cursor("[" * 100_000 + "]" * 100_000)[:MAX_CURSOR_LENGTH],
        raw_cursor("[" * 1500),  # nested past the parser's recursion limit, within the length
        raw_cursor(1),
        raw_cursor(None),
        raw_cursor({"v": 1}),
        raw_cursor([1, "title", "asc", "k"]),  # too few parts
        raw_cursor([1, "title", "asc", "k", 7, 8]),  # too many
        raw_cursor([2, "title", "asc", "k", 7]),  # another version
    ],
)
def test_what_is_not_a_cursor_is_refused(cursor: str) -> None:
    assert refusal(cursor, "title", "asc") == [NOT_OURS]


@pytest.mark.parametrize("task_id", [0, -1, MAX_TASK_ID + 1, True, 1.0, "7", None, [7]], ids=repr)
def test_a_cursor_with_an_impossible_id_is_refused(task_id: Any) -> None:
    assert refusal(raw_cursor([1, "title", "asc", "k", task_id]), "title", "asc") == [NOT_OURS]


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("created", None),  # only due_date has tasks without a key
        ("created", "yesterday"),
        ("created", "2026-11-22T12:00:00"),  # no offset: not what encode_cursor writes
        ("updated", 1764000000),
        ("due_date", "9999-12-31T23:00:00-14:00"),  # year 10000 in UTC
        ("due_date", ["2026-11-22T12:00:00+00:00"]),
        ("title", None),
        ("title", 42),
        ("title", ["k"]),
        ("title", "a\x00b"),  # the database would refuse it
        ("title", "\ud800"),  # a lone surrogate, JSON-escaped
        ("priority", "urgent"),
        ("priority", "HIGH"),
        ("priority", None),
    ],
)
def test_a_cursor_with_a_key_its_sort_cannot_have_is_refused(sort: str, key: Any) -> None:
    assert refusal(raw_cursor([1, sort, "asc", key, 7]), sort, "asc") == [NOT_OURS]


@given(st.text(alphabet=sorted(URL_SAFE), max_size=60))
def test_arbitrary_text_never_escapes_as_another_error(cursor: str) -> None:
    try:
        key, task_id = decode_cursor(cursor, "title", "asc")
    except ValidationFailed as refused:
        assert refused.errors in ([NOT_OURS], [OTHER_LISTING])
    else:
        assert isinstance(key, str)
        assert 1 <= task_id <= MAX_TASK_ID
