"""CORS for the frontend, Vary: Origin on every answer, and the health endpoints."""

from __future__ import annotations

from tests.support import LiveServer


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


def test_every_answer_varies_by_origin(token: str, server: LiveServer) -> None:
    """With or without an Origin, a cache must not hand one caller's CORS answer to
    another: `Vary: Origin` on both kinds (the no-Origin path skips Starlette's CORS)."""
    with server.client(token) as c:
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
