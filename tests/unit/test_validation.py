"""schema/validation.py alone: the rules of a task's fields, ids, search and paging (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.priority import TaskPriority
from schema.errors import FieldError, ValidationFailed
from schema.validation import (
    DESCRIPTION_MAX_LENGTH,
    MAX_TASK_ID,
    SEARCH_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    check_offset,
    check_page_size,
    clean_new_task,
    clean_search,
    clean_task_changes,
    parse_due_date,
    parse_task_id,
)
from schema.writes import NewTask, TaskChanges

PLAIN_DIGITS = "must be a positive integer in plain decimal digits"
IN_RANGE = f"must be between 1 and {MAX_TASK_ID}"
POSITIVE = "must be a positive integer"
YEAR_RANGE = "year must be between 1000 and 9999 (UTC)"


def refusal(call: Any, *args: Any, **kwargs: Any) -> list[FieldError]:
    with pytest.raises(ValidationFailed) as refused:
        call(*args, **kwargs)
    return refused.value.errors


def new_task(**overrides: Any) -> NewTask:
    values: dict[str, Any] = {
        "title": "Buy milk",
        "description": None,
        "completed": False,
        "priority": TaskPriority.MEDIUM,
        "due_date": None,
    }
    values.update(overrides)
    return NewTask(**values)


# ------------------------------------------------------------------------ parse_task_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("42", 42),
        (str(MAX_TASK_ID), MAX_TASK_ID),
        (1, 1),
        (MAX_TASK_ID, MAX_TASK_ID),
    ],
)
def test_task_ids_accepted(raw: object, expected: int) -> None:
    assert parse_task_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", PLAIN_DIGITS),
        ("0", PLAIN_DIGITS),  # a leading zero, even alone
        ("007", PLAIN_DIGITS),
        (" 1", PLAIN_DIGITS),
        ("1 ", PLAIN_DIGITS),
        ("+1", PLAIN_DIGITS),
        ("-1", PLAIN_DIGITS),
        ("1_000", PLAIN_DIGITS),
        ("1.0", PLAIN_DIGITS),
        ("1e3", PLAIN_DIGITS),
        ("0x10", PLAIN_DIGITS),
        ("\u0661", PLAIN_DIGITS),  # ARABIC-INDIC DIGIT ONE: isdigit(), int() reads it
        ("\u00b2", PLAIN_DIGITS),  # SUPERSCRIPT TWO: isdigit(), not ASCII
        (str(MAX_TASK_ID + 1), IN_RANGE),
        ("9" * 19, IN_RANGE),
        ("1" * 20, IN_RANGE),  # longer than any bigint: refused before int()
        ("1" * 5000, IN_RANGE),  # past Python's int digit limit: still a 400, not a ValueError
        (0, IN_RANGE),
        (-1, IN_RANGE),
        (MAX_TASK_ID + 1, IN_RANGE),
        (True, POSITIVE),
        (False, POSITIVE),
        (1.0, POSITIVE),
        (None, POSITIVE),
        (b"1", POSITIVE),
    ],
)
def test_task_ids_refused(raw: object, message: str) -> None:
    assert refusal(parse_task_id, raw) == [FieldError("id", message)]


def test_task_id_errors_name_the_given_field() -> None:
    assert refusal(parse_task_id, "x", field="taskId") == [FieldError("taskId", PLAIN_DIGITS)]


def test_task_id_error_message_reads_as_a_sentence() -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_task_id("0")
    assert refused.value.message == f"Invalid input: id: {PLAIN_DIGITS}."
    assert refused.value.extensions["field"] == "id"


@given(st.integers(min_value=1, max_value=MAX_TASK_ID))
def test_every_task_id_round_trips_through_its_decimal_text(task_id: int) -> None:
    assert parse_task_id(str(task_id)) == task_id


@given(st.text(max_size=25))
def test_any_text_is_an_id_only_in_its_canonical_spelling(raw: str) -> None:
    try:
        value = parse_task_id(raw)
    except ValidationFailed:
        return
    assert str(value) == raw
    assert 1 <= value <= MAX_TASK_ID


# ----------------------------------------------------------------------- clean_new_task


def test_a_new_task_becomes_column_values() -> None:
    due = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    cleaned = clean_new_task(
        new_task(title="  Buy milk  ", description=" two litres ", priority=TaskPriority.HIGH, due_date=due)
    )
    assert cleaned == {
        "title": "Buy milk",  # trimmed
        "description": " two litres ",  # kept as given
        "completed": False,
        "priority": "high",  # the enum's text, as the column stores it
        "due_date": due,
    }
    assert list(cleaned) == ["title", "description", "completed", "priority", "due_date"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("x", "x"),
        ("t" * TITLE_MAX_LENGTH, "t" * TITLE_MAX_LENGTH),
        ("  " + "t" * TITLE_MAX_LENGTH + "\n", "t" * TITLE_MAX_LENGTH),  # measured after trimming
        ("caf\u00e9 \U0001f95b", "caf\u00e9 \U0001f95b"),
    ],
)
def test_titles_accepted(title: str, expected: str) -> None:
    assert clean_new_task(new_task(title=title))["title"] == expected


@pytest.mark.parametrize(
    ("title", "message"),
    [
        (None, "is required"),
        ("", "must not be blank"),
        (" \t\n ", "must not be blank"),
        ("t" * (TITLE_MAX_LENGTH + 1), f"must be at most {TITLE_MAX_LENGTH} characters"),
        ("a\x00b", "must not contain NUL characters"),
        ("a\ud800b", "must be valid Unicode text (no unpaired surrogates)"),
    ],
)
def test_titles_refused(title: str | None, message: str) -> None:
    assert refusal(clean_new_task, new_task(title=title)) == [FieldError("title", message)]


@pytest.mark.parametrize("description", [None, "", "   ", "d" * DESCRIPTION_MAX_LENGTH, "line one\nline two"])
def test_descriptions_accepted(description: str | None) -> None:
    assert clean_new_task(new_task(description=description))["description"] == description


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("d" * (DESCRIPTION_MAX_LENGTH + 1), f"must be at most {DESCRIPTION_MAX_LENGTH} characters"),
        ("\x00", "must not contain NUL characters"),
        ("\udfff", "must be valid Unicode text (no unpaired surrogates)"),
    ],
)
def test_descriptions_refused(description: str, message: str) -> None:
    assert refusal(clean_new_task, new_task(description=description)) == [FieldError("description", message)]


@pytest.mark.parametrize("priority", list(TaskPriority))
def test_every_priority_is_stored_as_its_text(priority: TaskPriority) -> None:
    assert clean_new_task(new_task(priority=priority))["priority"] == priority.value


@pytest.mark.parametrize("field", ["completed", "priority"])
def test_null_completed_and_priority_are_refused(field: str) -> None:
    assert refusal(clean_new_task, new_task(**{field: None})) == [FieldError(field, "must not be null")]


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (None, None),
        (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        # no offset: read as UTC
        (datetime(2026, 12, 1, 9, 0), datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        # an offset: the same instant, in UTC
        (
            datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
        ),
        (datetime(1000, 1, 1, tzinfo=UTC), datetime(1000, 1, 1, tzinfo=UTC)),
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_due_dates_accepted(due: datetime | None, expected: datetime | None) -> None:
    cleaned = clean_new_task(new_task(due_date=due))["due_date"]
    assert cleaned == expected
    if cleaned is not None:
        assert cleaned.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "due",
    [
        datetime(999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 1),
        # year 1000 locally, 999 in UTC
        datetime(1000, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
        # year 9999 locally, 10000 in UTC: past what Python (and the driver) can hold
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))),
    ],
)
def test_due_dates_refused(due: datetime) -> None:
    assert refusal(clean_new_task, new_task(due_date=due)) == [FieldError("due_date", YEAR_RANGE)]


def test_every_bad_field_is_listed_in_column_order() -> None:
    errors = refusal(
        clean_new_task,
        NewTask(
            title=" ",
            description="d" * (DESCRIPTION_MAX_LENGTH + 1),
            completed=None,
            priority=None,
            due_date=datetime(2, 1, 1, tzinfo=UTC),
        ),
    )
    assert [e.field for e in errors] == ["title", "description", "completed", "priority", "due_date"]


# ------------------------------------------------------------------- clean_task_changes


def test_changes_need_at_least_one_field() -> None:
    assert refusal(clean_task_changes, TaskChanges()) == [
        FieldError("input", "give at least one of title, description, completed, priority, due_date")
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (TaskChanges(title=" New "), {"title": "New"}),
        (TaskChanges(description=None), {"description": None}),  # null clears it
        (TaskChanges(due_date=None), {"due_date": None}),
        (TaskChanges(completed=True), {"completed": True}),
        (TaskChanges(priority=TaskPriority.LOW), {"priority": "low"}),
        (
            TaskChanges(due_date=datetime(2026, 1, 1), title="x"),
            {"title": "x", "due_date": datetime(2026, 1, 1, tzinfo=UTC)},
        ),
    ],
)
def test_only_the_given_changes_are_cleaned(changes: TaskChanges, expected: dict[str, Any]) -> None:
    assert clean_task_changes(changes) == expected


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (TaskChanges(title=None), FieldError("title", "is required")),
        (TaskChanges(completed=None), FieldError("completed", "must not be null")),
        (TaskChanges(priority=None), FieldError("priority", "must not be null")),
        (TaskChanges(title=""), FieldError("title", "must not be blank")),
    ],
)
def test_nulls_the_rules_refuse_are_refused_in_changes_too(changes: TaskChanges, error: FieldError) -> None:
    assert refusal(clean_task_changes, changes) == [error]


# ---------------------------------------------------------------------- parse_due_date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01T09:00:00+02:00", datetime(2026, 12, 1, 7, 0, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1)),
        ("2026-12-01T09:00:00.123456", datetime(2026, 12, 1, 9, 0, 0, 123456)),
    ],
)
def test_due_date_texts_read(raw: str | None, expected: datetime | None) -> None:
    parsed = parse_due_date(raw)
    assert parsed == expected
    if parsed is not None and expected is not None:
        assert (parsed.tzinfo is None) == (expected.tzinfo is None)


def test_a_datetime_is_taken_as_it_is() -> None:
    due = datetime(2026, 12, 1, 9, 0)
    assert parse_due_date(due) is due


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (1764579600, "must be an ISO 8601 date-time string"),  # not a Unix time
        (1764579600.0, "must be an ISO 8601 date-time string"),
        (True, "must be an ISO 8601 date-time string"),
        ("tomorrow", "must be an ISO 8601 date-time string, e.g. 2026-12-01T09:00:00Z"),
        ("", "must be an ISO 8601 date-time string, e.g. 2026-12-01T09:00:00Z"),
        ("2026-13-01", "must be an ISO 8601 date-time string, e.g. 2026-12-01T09:00:00Z"),
        ("2" * 65, "must be an ISO 8601 date-time string (at most 64 characters)"),
    ],
)
def test_due_date_texts_refused(raw: object, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_due_date(raw)
    assert str(refused.value) == message


# Fixed offsets (st.timezones() reads the tz database: slow, and adds nothing here).
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=st.none() | OFFSETS))
def test_an_isoformat_due_date_reads_back_as_the_same_instant(due: datetime) -> None:
    parsed = parse_due_date(due.isoformat())
    assert parsed == due
    assert parsed is not None and parsed.utcoffset() == due.utcoffset()


# ------------------------------------------------------------------ search and paging


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),  # blank: no filter
        ("  milk ", "milk"),
        ("s" * SEARCH_MAX_LENGTH, "s" * SEARCH_MAX_LENGTH),
        (" " + "s" * SEARCH_MAX_LENGTH + " ", "s" * SEARCH_MAX_LENGTH),
        ("100%_done", "100%_done"),  # LIKE wildcards are the query's business, not refused
    ],
)
def test_searches_accepted(raw: str | None, expected: str | None) -> None:
    assert clean_search(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("s" * (SEARCH_MAX_LENGTH + 1), f"must be at most {SEARCH_MAX_LENGTH} characters"),
        ("mi\x00lk", "must not contain NUL characters"),
        ("\ud83e", "must be valid Unicode text (no unpaired surrogates)"),
    ],
)
def test_searches_refused(raw: str, message: str) -> None:
    assert refusal(clean_search, raw) == [FieldError("search", message)]


@pytest.mark.parametrize(
    ("value", "ok"), [(1, True), (50, True), (100, True), (0, False), (-1, False), (101, False)]
)
def test_page_size_bounds(value: int, ok: bool) -> None:
    if ok:
        assert check_page_size(value, field="first", maximum=100) == value
    else:
        assert refusal(check_page_size, value, field="first", maximum=100) == [
            FieldError("first", "must be between 1 and 100")
        ]


@pytest.mark.parametrize(
    ("value", "ok"), [(0, True), (1, True), (MAX_TASK_ID, True), (-1, False), (MAX_TASK_ID + 1, False)]
)
def test_offset_bounds(value: int, ok: bool) -> None:
    if ok:
        assert check_offset(value) == value
    else:
        assert refusal(check_offset, value) == [FieldError("offset", "must be zero or a positive integer")]
