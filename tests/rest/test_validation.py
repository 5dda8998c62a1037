"""REST validation: each bad field is a 400 naming it, and changes nothing; the limits
themselves are accepted."""

from __future__ import annotations

import pytest

from db.url import DatabaseURL
from tests.support import LiveServer, hs_token, json_of, snapshot, unique_user

TASK_KEYS = {
    "id", "user_id", "title", "description", "completed", "priority", "due_date",
    "created_at", "updated_at",
}  # fmt: skip


@pytest.mark.parametrize("body", [{}, {"id": 1, "user_id": "x", "colour": "red"}])
def test_empty_update_is_400(token: str, server: LiveServer, body: dict[str, object]) -> None:
    with server.client(token) as c:
        task = c.post("/api/tasks", json={"title": "a"}).json()
        r = c.put(f"/api/tasks/{task['id']}", json=body)
        assert r.status_code == 400
        assert json_of(r)["code"] == "validation_error"
        assert c.get(f"/api/tasks/{task['id']}").json() == task


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": None}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 5}, "title"),
        ({"title": "ok", "description": "d" * 1001}, "description"),
        ({"title": "ok", "priority": "urgent"}, "priority"),
        ({"title": "ok", "priority": None}, "priority"),
        ({"title": "ok", "due_date": "next tuesday"}, "due_date"),
        ({"title": "ok", "due_date": "0999-01-01"}, "due_date"),
        ({"title": "ok", "due_date": "9999-12-31T23:59:59-14:00"}, "due_date"),  # year 10000 in UTC
        ({"title": "ok", "due_date": "1000-01-01T00:00:00+14:00"}, "due_date"),  # year 999 in UTC
        ({"title": "ok", "completed": "yes"}, "completed"),
        ({"title": "bad\u0000title"}, "title"),
    ],
)
def test_create_validation_errors(
    server: LiveServer, database: DatabaseURL, body: dict[str, object], field: str
) -> None:
    user = unique_user()
    with server.client(hs_token(user)) as c:
        r = c.post("/api/tasks", json=body)
    assert r.status_code == 400, r.text
    error = json_of(r)
    assert error["code"] == "validation_error"
    assert field in error["detail"]
    assert [e["field"] for e in error["errors"]] == [field]
    assert snapshot(database, user) == []


def test_title_of_exactly_200_characters_is_accepted(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        r = c.post("/api/tasks", json={"title": "x" * 200, "description": "d" * 1000})
        assert r.status_code == 201


def test_due_dates_at_the_ends_of_the_range_are_accepted(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        for given, stored in [
            ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59+00:00"),
            ("9999-12-31T12:00:00-10:00", "9999-12-31T22:00:00+00:00"),
            ("1000-01-01T00:00:00Z", "1000-01-01T00:00:00+00:00"),
        ]:
            r = c.post("/api/tasks", json={"title": "edge", "due_date": given})
            assert r.status_code == 201, r.text
            assert r.json()["due_date"] == stored
            assert c.get(r.headers["location"]).json()["due_date"] == stored


def test_several_bad_fields_are_all_reported(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        r = c.post("/api/tasks", json={"title": "", "description": "d" * 1001})
    assert {e["field"] for e in r.json()["errors"]} == {"title", "description"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"completed": None}, "completed"),
        ({"priority": "HIGHEST"}, "priority"),
        ({"due_date": "2024-13-01"}, "due_date"),
        ({"due_date": "9999-12-31T23:00:00-01:00"}, "due_date"),
        ({"description": "d" * 1001}, "description"),
    ],
)
def test_update_validation_errors_change_nothing(
    token: str, server: LiveServer, body: dict[str, object], field: str
) -> None:
    with server.client(token) as c:
        task = c.post("/api/tasks", json={"title": "keep"}).json()
        r = c.put(f"/api/tasks/{task['id']}", json={"description": "new", **body})
        assert r.status_code == 400
        assert [e["field"] for e in r.json()["errors"]] == [field]
        assert c.get(f"/api/tasks/{task['id']}").json() == task


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tasks/abc"),
        ("GET", "/api/tasks/1.5"),
        ("GET", "/api/tasks/0"),
        ("GET", "/api/tasks/-3"),
        ("GET", "/api/tasks/99999999999999999999999"),
        ("PUT", "/api/tasks/abc"),
        ("DELETE", "/api/tasks/abc"),
        ("PATCH", "/api/tasks/abc/complete"),
    ],
)
def test_bad_task_ids_are_400(token: str, server: LiveServer, method: str, path: str) -> None:
    with server.client(token) as c:
        r = c.request(method, path, json={"title": "x"} if method == "PUT" else None)
    assert r.status_code == 400
    body = json_of(r)
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "id"


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_unpaired_surrogates_are_a_validation_error(server: LiveServer, text: str) -> None:
    """Valid JSON, but not storable text: a 400, never a 500."""
    with server.client(hs_token(unique_user(), name="x\ud800")) as c:
        r = c.post("/api/tasks", content=f'{{"title": "{ascii(text)[1:-1]}"}}'.encode(),
                   headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "title"
        r = c.post("/api/tasks", json={"title": "ok"})
        assert r.status_code == 201  # an unstorable name claim is dropped, not fatal
        r = c.get("/api/tasks?search=%ED%A0%80")  # a surrogate's bytes: not UTF-8 at all
        assert r.status_code in (200, 400), r.text
