"""The six REST endpoints: success paths, every documented status code, error bodies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.body_limit import MAX_BODY_BYTES, TOO_LARGE
from db.url import DatabaseURL
from tests.support import LiveServer, db_fetch, hs_token, json_of, snapshot, unique_user

TASK_KEYS = {
    "id", "user_id", "title", "description", "completed", "priority", "due_date",
    "created_at", "updated_at",
}  # fmt: skip


def test_create_returns_201_location_and_the_task(server: LiveServer) -> None:
    user = unique_user()
    with server.client(hs_token(user, email="a@example.com", name="Ann")) as c:
        r = c.post(
            "/api/tasks",
            json={
                "title": "  Buy milk  ",
                "description": "2 litres",
                "priority": "high",
                "due_date": "2030-01-02T03:04:05+02:00",
            },
        )
        assert r.status_code == 201
        task = json_of(r)
        assert set(task) == TASK_KEYS
        assert task["title"] == "Buy milk"
        assert task["user_id"] == user
        assert task["completed"] is False
        assert task["priority"] == "high"
        assert task["due_date"] == "2030-01-02T01:04:05+00:00"
        assert task["created_at"].endswith("+00:00")
        assert r.headers["location"] == f"/api/tasks/{task['id']}"
        assert c.get(r.headers["location"]).json() == task


def test_create_defaults_and_user_row(server: LiveServer, database: DatabaseURL) -> None:
    user = unique_user()
    with server.client(hs_token(user, email="b@example.com", name="Bo")) as c:
        task = c.post("/api/tasks", json={"title": "t"}).json()
    assert (task["description"], task["priority"], task["due_date"]) == (None, "medium", None)
    rows = db_fetch(database, "SELECT id, email, name FROM users WHERE id = $1", user)
    assert rows == [{"id": user, "email": "b@example.com", "name": "Bo"}]


def test_user_row_refreshed_from_new_claims(server: LiveServer, database: DatabaseURL) -> None:
    user = unique_user()
    with server.client(hs_token(user, email="old@example.com", name="Old")) as c:
        c.post("/api/tasks", json={"title": "t"}).raise_for_status()
    with server.client(hs_token(user, email="new@example.com", name="New")) as c:
        c.post("/api/tasks", json={"title": "t"}).raise_for_status()
    rows = db_fetch(database, "SELECT email, name FROM users WHERE id = $1", user)
    assert rows == [{"email": "new@example.com", "name": "New"}]


def test_namespaced_routes_work_for_the_owner(server: LiveServer) -> None:
    user = unique_user()
    with server.client(hs_token(user)) as c:
        r = c.post(f"/api/{user}/tasks", json={"title": "mine"})
        assert r.status_code == 201
        task_id = r.json()["id"]
        assert r.headers["location"] == f"/api/{user}/tasks/{task_id}"
        assert c.get(f"/api/{user}/tasks").json()[0]["id"] == task_id
        assert c.get(f"/api/{user}/tasks/{task_id}").json()["title"] == "mine"
        assert c.put(f"/api/{user}/tasks/{task_id}", json={"title": "x"}).json()["title"] == "x"
        assert c.patch(f"/api/{user}/tasks/{task_id}/complete").json()["completed"] is True
        assert c.delete(f"/api/{user}/tasks/{task_id}").status_code == 204
        assert c.get(f"/api/{user}/tasks/{task_id}").status_code == 404


def test_get_update_toggle_delete(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        task = c.post("/api/tasks", json={"title": "a", "description": "d"}).json()
        url = f"/api/tasks/{task['id']}"
        assert c.get(url).json() == task

        updated = c.put(url, json={"priority": "low"}).json()
        assert updated["priority"] == "low"
        assert updated["title"] == "a" and updated["description"] == "d"
        assert updated["updated_at"] >= task["updated_at"]

        cleared = c.put(url, json={"description": None, "due_date": "2031-05-06"}).json()
        assert cleared["description"] is None
        assert cleared["due_date"] == "2031-05-06T00:00:00+00:00"

        assert c.patch(url + "/complete").json()["completed"] is True
        assert c.patch(url + "/complete").json()["completed"] is False
        assert c.patch(url + "/complete", json={"completed": True}).json()["completed"] is True
        assert c.patch(url + "/complete", json={"completed": True}).json()["completed"] is True
        assert c.patch(url + "/complete", json={}).json()["completed"] is False

        r = c.delete(url)
        assert r.status_code == 204 and r.content == b""
        assert c.get(url).status_code == 404
        assert c.delete(url).status_code == 404


def test_put_ignores_read_only_and_unknown_fields(server: LiveServer) -> None:
    user = unique_user()
    with server.client(hs_token(user)) as c:
        task = c.post("/api/tasks", json={"title": "a"}).json()
        echoed = {**task, "title": "b", "id": 999999, "user_id": "someone-else",
                  "created_at": "2000-01-01T00:00:00Z", "colour": "red"}  # fmt: skip
        updated = c.put(f"/api/tasks/{task['id']}", json=echoed).json()
        assert updated["id"] == task["id"]
        assert updated["user_id"] == user
        assert updated["created_at"] == task["created_at"]
        assert updated["title"] == "b"


@pytest.mark.parametrize("body", [{}, {"id": 1, "user_id": "x", "colour": "red"}])
def test_empty_update_is_400(server: LiveServer, body: dict[str, object]) -> None:
    with server.client(hs_token(unique_user())) as c:
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


def test_title_of_exactly_200_characters_is_accepted(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        r = c.post("/api/tasks", json={"title": "x" * 200, "description": "d" * 1000})
        assert r.status_code == 201


def test_due_dates_at_the_ends_of_the_range_are_accepted(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        for given, stored in [
            ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59+00:00"),
            ("9999-12-31T12:00:00-10:00", "9999-12-31T22:00:00+00:00"),
            ("1000-01-01T00:00:00Z", "1000-01-01T00:00:00+00:00"),
        ]:
            r = c.post("/api/tasks", json={"title": "edge", "due_date": given})
            assert r.status_code == 201, r.text
            assert r.json()["due_date"] == stored
            assert c.get(r.headers["location"]).json()["due_date"] == stored


def test_several_bad_fields_are_all_reported(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
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
    server: LiveServer, body: dict[str, object], field: str
) -> None:
    with server.client(hs_token(unique_user())) as c:
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
def test_bad_task_ids_are_400(server: LiveServer, method: str, path: str) -> None:
    with server.client(hs_token(unique_user())) as c:
        r = c.request(method, path, json={"title": "x"} if method == "PUT" else None)
    assert r.status_code == 400
    body = json_of(r)
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "id"


def test_missing_task_is_404_on_every_route(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        for method, path in [
            ("GET", "/api/tasks/987654321"),
            ("PUT", "/api/tasks/987654321"),
            ("DELETE", "/api/tasks/987654321"),
            ("PATCH", "/api/tasks/987654321/complete"),
        ]:
            r = c.request(method, path, json={"title": "x"} if method == "PUT" else None)
            assert r.status_code == 404, (method, path)
            assert json_of(r) == {"detail": "Task not found.", "code": "not_found"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/tasks", None),
        ("POST", "/api/tasks", {"title": "x"}),
        ("GET", "/api/tasks/1", None),
        ("PUT", "/api/tasks/1", {"title": "x"}),
        ("DELETE", "/api/tasks/1", None),
        ("PATCH", "/api/tasks/1/complete", None),
    ],
)
def test_every_route_needs_a_token(
    server: LiveServer, method: str, path: str, body: dict[str, str] | None
) -> None:
    with server.client() as c:
        r = c.request(method, path, json=body)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert json_of(r)["code"] == "unauthenticated"
        r = c.request(method, path, json=body, headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        r = c.request(method, path, json=body, headers={"Authorization": "Basic dXNlcjpwdw=="})
        assert r.status_code == 401


def test_other_namespace_is_403(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        r = c.get("/api/someone-else/tasks")
    assert r.status_code == 403
    assert json_of(r)["code"] == "forbidden"


def test_malformed_json_is_400(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        for body in (b"{not json", b"[1, 2]", b'"title"'):
            r = c.post("/api/tasks", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, body
            assert json_of(r)["code"] == "validation_error"


def test_the_token_is_checked_before_the_body(server: LiveServer) -> None:
    """No token, a bad one, or someone else's namespace: refused as such, even when
    the body is malformed (FastAPI would otherwise parse it first and answer 400)."""
    json_header = {"content-type": "application/json"}
    with server.client() as c:
        r = c.post("/api/tasks", content=b"{not json", headers=json_header)
        assert (r.status_code, json_of(r)["code"]) == (401, "unauthenticated")
        r = c.put(
            "/api/tasks/1", content=b"{not json", headers={**json_header, "authorization": "Bearer x.y.z"}
        )
        assert (r.status_code, json_of(r)["code"]) == (401, "unauthenticated")
    with server.client(hs_token(unique_user())) as c:
        r = c.post("/api/someone-else/tasks", content=b"{not json", headers=json_header)
        assert (r.status_code, json_of(r)["code"]) == (403, "forbidden")
        r = c.patch("/api/tasks/1/complete", content=b"[", headers=json_header)
        assert (r.status_code, json_of(r)["code"]) == (400, "validation_error")


def test_deeply_nested_json_is_400(server: LiveServer, database: DatabaseURL) -> None:
    user = unique_user()
    # 60 KB: deep enough to exhaust the JSON parser, small enough to pass the body limit.
    deep = b'{"title": "x", "description": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    with server.client(hs_token(user)) as c:
        r = c.post("/api/tasks", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert json_of(r)["code"] == "validation_error"
    assert r.json()["errors"][0]["field"] == "body"
    assert snapshot(database, user) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "", b'{"title": "sent as text"}'),
        ("PUT", "/{id}", b'{"title": "sent as text"}'),
        ("PATCH", "/{id}/complete", b'{"completed": true}'),
    ],
)
def test_a_body_not_sent_as_json_is_415(
    server: LiveServer, database: DatabaseURL, method: str, suffix: str, body: bytes, content_type: str | None
) -> None:
    user = unique_user()
    with server.client(hs_token(user)) as c:
        task = c.post("/api/tasks", json={"title": "keep"}).json()
        before = snapshot(database, user)
        headers = {"content-type": content_type} if content_type else {}
        path = "/api/tasks" + suffix.format(id=task["id"])
        r = c.request(method, path, content=body, headers=headers)
    assert r.status_code == 415, r.text
    assert json_of(r) == {
        "detail": "Send the body as JSON, with Content-Type: application/json.",
        "code": "unsupported_media_type",
    }
    assert snapshot(database, user) == before


def test_unknown_route_and_method(server: LiveServer) -> None:
    with server.client() as c:
        r = c.get("/nope")
        assert r.status_code == 404
        assert json_of(r)["code"] == "not_found"
        r = c.post("/healthz")
        assert r.status_code == 405
        assert json_of(r)["code"] == "method_not_allowed"
        assert r.headers["Allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/tasks", "GET, POST"),
        ("POST", "/api/tasks/1", "DELETE, GET, PUT"),
        ("GET", "/api/tasks/1/complete", "PATCH"),
        ("PATCH", "/api/someone/tasks", "GET, POST"),
    ],
)
def test_method_not_allowed_names_every_allowed_method(
    server: LiveServer, method: str, path: str, allowed: str
) -> None:
    """RFC 9110: a 405 lists all the methods the resource supports, not just one."""
    with server.client(hs_token(unique_user("allow"))) as c:
        r = c.request(method, path)
    assert r.status_code == 405, r.text
    assert json_of(r)["code"] == "method_not_allowed"
    assert r.headers["Allow"] == allowed


def test_list_filters_headers_and_limits(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        ids = [c.post("/api/tasks", json={"title": f"t{i}"}).json()["id"] for i in range(5)]
        for task_id in ids[:2]:
            c.patch(f"/api/tasks/{task_id}/complete").raise_for_status()
        r = c.get("/api/tasks")
        assert r.status_code == 200
        assert [t["id"] for t in r.json()] == ids[::-1]
        assert r.headers["x-total-count"] == "5"
        assert "link" not in r.headers
        pending = c.get("/api/tasks", params={"status": "pending"})
        assert [t["id"] for t in pending.json()] == ids[:1:-1]
        assert pending.headers["x-total-count"] == "3"
        done = c.get("/api/tasks", params={"status": "completed", "order": "asc"})
        assert [t["id"] for t in done.json()] == ids[:2]
        page = c.get("/api/tasks", params={"limit": 2, "offset": 1})
        assert [t["id"] for t in page.json()] == [ids[3], ids[2]]
        assert page.headers["x-total-count"] == "5"
        assert 'rel="next"' in page.headers["link"] and "offset=3" in page.headers["link"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
        ({"sort": "colour"}, "sort"),
        ({"order": "up"}, "order"),
        ({"search": "x" * 201}, "search"),
    ],
)
def test_list_query_validation(server: LiveServer, params: dict[str, str | int], field: str) -> None:
    with server.client(hs_token(unique_user())) as c:
        r = c.get("/api/tasks", params=params)
    assert r.status_code == 400
    assert json_of(r)["errors"][0]["field"] == field


def test_cors_preflight_allows_the_frontend(server: LiveServer) -> None:
    with server.client() as c:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            r = c.options(
                "/api/tasks/1",
                headers={
                    "Origin": "http://localhost:3000",
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert r.status_code == 200, method
            assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
            assert method in r.headers["access-control-allow-methods"]
            assert "authorization" in r.headers["access-control-allow-headers"].lower()
        for path, method in [
            ("/api/u/tasks/1/complete", "PATCH"),
            ("/api/tasks", "POST"),
            ("/graphql", "POST"),
        ]:
            r = c.options(
                path,
                headers={
                    "Origin": "http://localhost:3000",
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert r.status_code == 200, (path, method)
            assert method in r.headers["access-control-allow-methods"]
        # The browser may read the headers the API documents, even on a 401.
        r = c.get("/api/tasks", headers={"Origin": "http://localhost:3000"})
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"x-total-count", "link", "location", "www-authenticate"} <= exposed
        r = c.options(
            "/api/tasks",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in r.headers


def test_every_answer_varies_by_origin(server: LiveServer) -> None:
    """With or without an Origin, a cache must not hand one caller's CORS answer to
    another: `Vary: Origin` on both kinds (the no-Origin path skips Starlette's CORS)."""
    with server.client(hs_token(unique_user())) as c:
        for path in ("/api/tasks", "/api/tasks/1", "/graphql?query=%7B__typename%7D", "/healthz", "/nope"):
            plain = c.get(path)
            assert plain.headers.get("vary") == "Origin", (path, plain.headers)
            assert "access-control-allow-origin" not in plain.headers
            browser = c.get(path, headers={"Origin": "http://localhost:3000"})
            assert "Origin" in browser.headers.get("vary", ""), (path, browser.headers)
            assert browser.headers["access-control-allow-origin"] == "http://localhost:3000"
            assert (plain.status_code, plain.content) == (browser.status_code, browser.content)


def test_health_and_readiness(server: LiveServer) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ready"}


def test_openapi_documents_the_contract(server: LiveServer) -> None:
    with server.client() as c:
        spec = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
    paths = spec["paths"]
    for prefix in ("/api", "/api/{user_id}"):
        assert set(paths[f"{prefix}/tasks"]) == {"get", "post"}
        assert set(paths[f"{prefix}/tasks/{{task_id}}"]) == {"get", "put", "delete"}
        assert set(paths[f"{prefix}/tasks/{{task_id}}/complete"]) == {"patch"}
    create = paths["/api/tasks"]["post"]["responses"]
    assert {"201", "400", "401"} <= set(create)
    assert "Location" in create["201"]["headers"]
    listing = paths["/api/tasks"]["get"]["responses"]["200"]
    assert {"X-Total-Count", "Link"} <= set(listing["headers"])
    for prefix in ("/api", "/api/{user_id}"):
        query = {
            p["name"]: p["schema"]
            for p in paths[f"{prefix}/tasks"]["get"]["parameters"]
            if p["in"] == "query"
        }
        assert set(query) == {"status", "sort", "order", "search", "limit", "offset", "page"}
        assert query["status"]["enum"] == ["all", "pending", "completed"]
        fields = ["created", "updated", "title", "due_date", "priority"]
        assert query["sort"]["enum"] == fields + [f"{f}:{o}" for f in fields for o in ("asc", "desc")]
        assert (query["limit"]["minimum"], query["limit"]["maximum"], query["limit"]["default"]) == (
            1,
            500,
            100,
        )
    assert "404" in paths["/api/tasks/{task_id}"]["get"]["responses"]
    assert "204" in paths["/api/tasks/{task_id}"]["delete"]["responses"]
    error = spec["components"]["schemas"]["ErrorOut"]
    assert set(error["properties"]) == {"detail", "code", "errors"}
    assert set(error["required"]) == {"detail", "code"}
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            # Only what the service really answers: never FastAPI's default 422.
            assert "422" not in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == error_ref, (path, status)
            if not path.startswith("/api/"):
                continue
            assert {"400", "401", "503"} <= set(responses), (method, path)
            assert "Retry-After" in responses["503"]["headers"]
            assert "WWW-Authenticate" in responses["401"]["headers"]
            # 403 only where a {user_id} can name someone else.
            assert ("403" in responses) is ("{user_id}" in path), (method, path)
            assert ("415" in responses) is ("requestBody" in operation), (method, path)
            assert ("404" in responses) is ("{task_id}" in path), (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_total_count_on_last_and_past_the_end_pages(server: LiveServer) -> None:
    with server.client(hs_token(unique_user())) as c:
        for i in range(5):
            c.post("/api/tasks", json={"title": f"t{i}", "completed": i % 2 == 0}).raise_for_status()
        last = c.get("/api/tasks", params={"limit": 10, "offset": 3})
        assert len(last.json()) == 2 and last.headers["x-total-count"] == "5"
        beyond = c.get("/api/tasks", params={"limit": 10, "offset": 50})
        assert beyond.json() == [] and beyond.headers["x-total-count"] == "5"
        done = c.get("/api/tasks", params={"status": "completed", "limit": 2, "offset": 2})
        assert len(done.json()) == 1 and done.headers["x-total-count"] == "3"
        assert "link" not in done.headers


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


def _oversized_title_body() -> bytes:
    return b'{"title": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/api/tasks", "/graphql"])
def test_oversized_bodies_are_refused_and_change_nothing(
    server: LiveServer, database: DatabaseURL, path: str, chunked: bool
) -> None:
    """Over 64 KiB is a 413 whether the size is declared or only seen while reading."""
    user = unique_user("big")
    body = _oversized_title_body()

    def stream() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    with server.client(hs_token(user)) as c:
        r = c.post(
            path,
            content=stream() if chunked else body,
            headers={"Content-Type": "application/json", "Origin": "http://localhost:3000"},
        )
    assert r.status_code == 413, r.text
    assert json_of(r) == {"detail": TOO_LARGE, "code": "payload_too_large"}
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert snapshot(database, user) == []


def test_a_body_just_under_the_limit_is_read(server: LiveServer) -> None:
    description = "d" * 1000
    padding = " " * (MAX_BODY_BYTES - 100 - len(description))
    body = f'{{"title": "ok", "description": "{description}"{padding}}}'.encode()
    assert len(body) <= MAX_BODY_BYTES
    with server.client(hs_token(unique_user("fits"))) as c:
        r = c.post("/api/tasks", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
