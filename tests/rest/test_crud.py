"""The REST endpoints' success paths: create, read, update, toggle, delete, and the user row."""

from __future__ import annotations

from db.url import DatabaseURL
from tests.support import LiveServer, db_fetch, hs_token, json_of, unique_user

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


def test_get_update_toggle_delete(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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
