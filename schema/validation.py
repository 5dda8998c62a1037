"""Every rule about what a task may contain, in one place, for both interfaces."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from db.priority import TaskPriority
from schema.errors import FieldError, ValidationFailed
from schema.writes import NewTask, TaskChanges

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 1000
SEARCH_MAX_LENGTH = 200
MAX_TASK_ID = 2**63 - 1  # bigint
EARLIEST_DUE_YEAR = 1000
LATEST_DUE_YEAR = 9999


_ID_DIGITS = len(str(MAX_TASK_ID))


def parse_task_id(raw: object, field: str = "id") -> int:
    """Task ids are positive bigints, written as plain decimal numbers (no sign, spaces,
    underscores or leading zeros) in REST paths and GraphQL `ID`s alike."""
    if isinstance(raw, bool):
        raise ValidationFailed.single(field, "must be a positive integer")
    if isinstance(raw, str):
        # Checked before int(): it would accept " 1", "+1", "1_0", and take a long time
        # (or refuse, past 4,300 digits) on a huge number.
        if not (raw.isascii() and raw.isdigit() and raw[:1] != "0"):
            raise ValidationFailed.single(field, "must be a positive integer in plain decimal digits")
        if len(raw) > _ID_DIGITS:
            raise ValidationFailed.single(field, f"must be between 1 and {MAX_TASK_ID}")
        value = int(raw)
    elif isinstance(raw, int):
        value = raw
    else:
        raise ValidationFailed.single(field, "must be a positive integer")
    if not 1 <= value <= MAX_TASK_ID:
        raise ValidationFailed.single(field, f"must be between 1 and {MAX_TASK_ID}")
    return value


def clean_new_task(data: NewTask) -> dict[str, Any]:
    """Column values for a new task, or ValidationFailed listing every bad field."""
    return _clean({name: getattr(data, name) for name in _CLEANERS})


def clean_task_changes(data: TaskChanges) -> dict[str, Any]:
    """Only the columns the caller gave; at least one is required."""
    given = data.given()
    if not given:
        raise ValidationFailed.single("input", f"give at least one of {', '.join(_CLEANERS)}")
    return _clean(given)


def _clean(given: Mapping[str, Any]) -> dict[str, Any]:
    """Each field's column value, or ValidationFailed listing every bad field."""
    errors: list[FieldError] = []
    values = {name: _CLEANERS[name](value, errors) for name, value in given.items()}
    if errors:
        raise ValidationFailed(errors)
    return values


def parse_due_date(raw: object) -> datetime | None:
    """The one reading of a due date for both interfaces: an ISO 8601 string (Python's
    `datetime.fromisoformat`, which is also what the GraphQL `DateTime` scalar uses), or
    null. Numbers are refused, not read as Unix times. Range checks follow in
    clean_new_task / clean_task_changes."""
    if raw is None or isinstance(raw, datetime):
        return raw
    if not isinstance(raw, str):
        raise ValueError("must be an ISO 8601 date-time string")
    if len(raw) > 64:
        raise ValueError("must be an ISO 8601 date-time string (at most 64 characters)")
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time string, e.g. 2026-12-01T09:00:00Z") from None


def clean_search(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = raw.strip()
    if (problem := _unstorable(text)) is not None:
        raise ValidationFailed.single("search", problem)
    if len(text) > SEARCH_MAX_LENGTH:
        raise ValidationFailed.single("search", f"must be at most {SEARCH_MAX_LENGTH} characters")
    return text or None


def check_page_size(value: int, *, field: str, maximum: int) -> int:
    if not 1 <= value <= maximum:
        raise ValidationFailed.single(field, f"must be between 1 and {maximum}")
    return value


def check_offset(value: int) -> int:
    if not 0 <= value <= MAX_TASK_ID:
        raise ValidationFailed.single("offset", "must be zero or a positive integer")
    return value


def _unstorable(text: str) -> str | None:
    """PostgreSQL text holds neither NUL nor unpaired UTF-16 surrogates (valid in JSON)."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no unpaired surrogates)"
    return None


def _completed(value: bool | None, errors: list[FieldError]) -> bool | None:
    if value is None:
        errors.append(FieldError("completed", "must not be null"))
    return value


def _title(value: str | None, errors: list[FieldError]) -> str | None:
    if value is None:
        errors.append(FieldError("title", "is required"))
        return None
    title = value.strip()
    if not title:
        errors.append(FieldError("title", "must not be blank"))
    elif len(title) > TITLE_MAX_LENGTH:
        errors.append(FieldError("title", f"must be at most {TITLE_MAX_LENGTH} characters"))
    elif (problem := _unstorable(title)) is not None:
        errors.append(FieldError("title", problem))
    return title


def _description(value: str | None, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if len(value) > DESCRIPTION_MAX_LENGTH:
        errors.append(FieldError("description", f"must be at most {DESCRIPTION_MAX_LENGTH} characters"))
    elif (problem := _unstorable(value)) is not None:
        errors.append(FieldError("description", problem))
    return value


def _priority(value: TaskPriority | None, errors: list[FieldError]) -> str | None:
    if value is None:
        errors.append(FieldError("priority", "must not be null"))
        return None
    return value.value


def _due_date(value: datetime | None, errors: list[FieldError]) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # no offset given: read it as UTC
    try:
        # Checked in UTC, as the driver sends it: 9999-12-31T23:00-14:00 is in year 10000
        # there, which Python (and so the driver) cannot represent.
        utc: datetime | None = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_DUE_YEAR <= utc.year <= LATEST_DUE_YEAR:
        errors.append(
            FieldError("due_date", f"year must be between {EARLIEST_DUE_YEAR} and {LATEST_DUE_YEAR} (UTC)")
        )
        return None
    return utc


# The rule of each writable column (db.queries.WRITABLE_COLUMNS, in its order: errors
# are listed in this order).
_CLEANERS: dict[str, Callable[[Any, list[FieldError]], Any]] = {
    "title": _title,
    "description": _description,
    "completed": _completed,
    "priority": _priority,
    "due_date": _due_date,
}
