"""The served OpenAPI document describes the REST contract."""

from __future__ import annotations

from tests.support import LiveServer


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
