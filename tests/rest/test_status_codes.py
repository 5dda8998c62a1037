"""REST status codes beyond validation: 401, 403, 404, 405, 413, 415 and malformed bodies,
each with its documented error body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.body_limit import MAX_BODY_BYTES, TOO_LARGE
from db.url import DatabaseURL
from tests.support import LiveServer, hs_token, json_of, snapshot, unique_user

TASK_KEYS = {
    "id", "user_id", "title", "description", "completed", "priority", "due_date",
    "created_at", "updated_at",
}  # fmt: skip


def test_missing_task_is_404_on_every_route(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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


def test_other_namespace_is_403(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        r = c.get("/api/someone-else/tasks")
    assert r.status_code == 403
    assert json_of(r)["code"] == "forbidden"


def test_malformed_json_is_400(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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
    token: str, server: LiveServer, method: str, path: str, allowed: str
) -> None:
    """RFC 9110: a 405 lists all the methods the resource supports, not just one."""
    with server.client(token) as c:
        r = c.request(method, path)
    assert r.status_code == 405, r.text
    assert json_of(r)["code"] == "method_not_allowed"
    assert r.headers["Allow"] == allowed


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


def test_a_body_just_under_the_limit_is_read(token: str, server: LiveServer) -> None:
    description = "d" * 1000
    padding = " " * (MAX_BODY_BYTES - 100 - len(description))
    body = f'{{"title": "ok", "description": "{description}"{padding}}}'.encode()
    assert len(body) <= MAX_BODY_BYTES
    with server.client(token) as c:
        r = c.post("/api/tasks", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
