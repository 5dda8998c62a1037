"""Request logs and metrics: one access line per request (401s and refused CORS
preflights included), X-Request-ID, text and JSON formats, /metrics and its settings."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api import observability
from api.observability import (
    ACCESS_LOGGER,
    MAX_OPERATION_NAMES,
    JSONFormatter,
    TextFormatter,
    configure_logging,
    record_graphql,
)
from api.settings import SettingsError, load_settings
from db.url import DatabaseURL
from tests.support import (
    HS_SECRET,
    JWKSServer,
    LiveServer,
    auth,
    hs_token,
    live_server,
    settings_for,
    unique_user,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
HEX_ID = re.compile(r"[0-9a-f]{32}")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def observed(database: DatabaseURL) -> Iterator[LiveServer]:
    """A service of its own, so that its metrics count only this module's requests."""
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET)) as srv:
        yield srv


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    return caplog


def access_lines(caplog: pytest.LogCaptureFixture, rid: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER and r.getMessage().endswith(f"rid={rid}")]


def one_access_line(caplog: pytest.LogCaptureFixture, rid: str) -> logging.LogRecord:
    # The line is written once the response has gone: it may trail the client a little.
    assert wait_until(lambda: bool(access_lines(caplog, rid)), timeout=5), rid
    [record] = access_lines(caplog, rid)
    return record


def scrape(client: httpx.Client, **headers: str) -> Samples:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_one_access_line_per_request(observed: LiveServer, access: pytest.LogCaptureFixture) -> None:
    token = hs_token(unique_user("log"))
    cases = [
        ("GET", "/api/tasks", auth(token), 200, "GET /api/tasks 200"),
        ("GET", "/api/tasks/12345", auth(token), 404, "GET /api/tasks/{task_id} 404"),
        ("GET", "/api/tasks", {}, 401, "GET /api/tasks 401"),  # no token
        ("GET", "/api/tasks", auth("not-a-jwt"), 401, "GET /api/tasks 401"),
        ("DELETE", "/healthz", {}, 405, "DELETE /healthz 405"),
        ("GET", "/no/such/path", {}, 404, "GET unmatched 404"),
        # A refused preflight: answered by the CORS layer, before any route.
        (
            "OPTIONS",
            "/api/tasks",
            {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            400,
            "OPTIONS preflight 400",
        ),
    ]
    with observed.client() as c:
        for i, (method, path, headers, status, line) in enumerate(cases):
            rid = f"case-{i}.{unique_user('rid')}"
            r = c.request(method, path, headers={**headers, "X-Request-ID": rid})
            assert r.status_code == status, (path, r.text)
            assert r.headers["x-request-id"] == rid
            record = one_access_line(access, rid)
            assert record.levelno == logging.INFO
            assert re.fullmatch(re.escape(line) + r" \d+\.\dms rid=" + re.escape(rid), record.getMessage())
    assert token not in access.text and "not-a-jwt" not in access.text


def test_request_id_accepted_generated_and_echoed(
    observed: LiveServer, access: pytest.LogCaptureFixture
) -> None:
    with observed.client() as c:
        sane = "Abc-123_x.y" + "z" * 117  # 128 characters
        assert c.get("/healthz", headers={"X-Request-ID": sane}).headers["x-request-id"] == sane
        one_access_line(access, sane)
        generated = {c.get("/healthz").headers["x-request-id"] for _ in range(3)}
        assert len(generated) == 3 and all(HEX_ID.fullmatch(g) for g in generated)
        for rid in generated:
            one_access_line(access, rid)
        for bad in ["a" * 129, "has space", "semi;colon", "new\\nline", "ünïcode".encode().hex() + "/"]:
            echoed = c.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
            assert HEX_ID.fullmatch(echoed), bad
            one_access_line(access, echoed)
        # Browsers may read it (CORS exposes it).
        r = c.get("/healthz", headers={"Origin": "http://localhost:3000"})
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert "x-request-id" in exposed


def test_the_token_never_reaches_the_logs(observed: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = hs_token(unique_user("secret"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(server_side)
    logging.getLogger().addHandler(handler)
    try:
        with observed.client() as c:
            rid = unique_user("tok")
            c.get(f"/api/tasks?access_token={token}", headers={**auth(token), "X-Request-ID": rid})
            c.post("/graphql", json={"query": "{ tasks { totalCount } }"}, headers=auth(token))
            c.get("/api/tasks", headers=auth(token + "x"))  # an invalid one, 401
            one_access_line(caplog, rid)
            # Each line is written once its response has gone: it may trail the client.
            assert wait_until(
                lambda: len([r for r in caplog.records if server_side(r) and r.name == ACCESS_LOGGER]) >= 3,
                timeout=5,
            )
    finally:
        logging.getLogger().removeHandler(handler)
    records = [r for r in caplog.records if server_side(r)]
    assert len([r for r in records if r.name == ACCESS_LOGGER]) >= 3
    assert not [r for r in records if token in r.getMessage() or token in logging.Formatter().format(r)]
    assert token not in stream.getvalue()


def server_side(record: logging.LogRecord) -> bool:
    """Not the test client's own lines (httpx logs the URLs it requests)."""
    return not record.name.startswith(("httpx", "httpcore"))


def test_json_lines(observed: LiveServer, access: pytest.LogCaptureFixture) -> None:
    rid = unique_user("json")
    with observed.client(hs_token(unique_user())) as c:
        assert c.get("/api/tasks/7", headers={"X-Request-ID": rid}).status_code == 404
    line = JSONFormatter().format(one_access_line(access, rid))
    fields = json.loads(line)
    assert fields["level"] == "INFO" and fields["logger"] == ACCESS_LOGGER
    assert fields["method"] == "GET" and fields["route"] == "/api/tasks/{task_id}"
    assert fields["status"] == 404 and fields["request_id"] == rid
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])
    assert fields["message"].startswith("GET /api/tasks/{task_id} 404 ")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uvicorn_state = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
        for n in ("uvicorn", "uvicorn.error")
    }
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, (saved, propagate) in uvicorn_state.items():
            logging.getLogger(name).handlers[:] = saved
            logging.getLogger(name).propagate = propagate


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_json_end_to_end(database: DatabaseURL) -> None:
    """LOG_FORMAT=json: every line of the service is a JSON object, the access lines
    with their fields, the others with the request id of the request they belong to."""
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, LOG_FORMAT="json")
    stream = io.StringIO()
    logging.getLogger().addHandler(logging.StreamHandler())  # what logging.basicConfig adds: replaced
    configure_logging(settings, stream=stream)
    configure_logging(settings, stream=stream)  # e.g. again in a worker: replaces the first
    root_handlers = logging.getLogger().handlers
    assert sum(h.get_name() == "api.observability" for h in root_handlers) == 1
    assert not [h for h in root_handlers if type(h) is logging.StreamHandler and h.stream is sys.stderr]
    rid = unique_user("e2e")
    with live_server(settings) as srv, srv.client() as c:
        assert c.get("/api/tasks", headers={"X-Request-ID": rid}).status_code == 401
        assert wait_until(lambda: rid in stream.getvalue(), timeout=5)
    logging.getLogger("api").warning("outside any request")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [line] = [x for x in lines if x.get("request_id") == rid]
    assert line["route"] == "/api/tasks" and line["status"] == 401 and line["method"] == "GET"
    assert lines[-1]["message"] == "outside any request" and "request_id" not in lines[-1]


@pytest.mark.usefixtures("restore_logging")
def test_text_format_adds_the_request_id_to_other_lines() -> None:
    stream = io.StringIO()
    configure_logging(load_settings({}, dotenv=False), stream=stream)
    assert isinstance(logging.getLogger().handlers[-1].formatter, TextFormatter)
    context = observability.current_request_id.set("abc")
    try:
        logging.getLogger("schema").error("GraphQL resolver failed")
    finally:
        observability.current_request_id.reset(context)
    logging.getLogger("schema").error("later")
    first, second = stream.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR schema: GraphQL resolver failed rid=abc", first
    )
    assert second.endswith("ERROR schema: later")


def test_metrics_count_requests_by_route_and_status(observed: LiveServer) -> None:
    user = unique_user("m")
    token = hs_token(user)
    with observed.client() as c:
        before = scrape(c)
        for _ in range(3):
            assert c.get("/api/tasks", headers=auth(token)).status_code == 200
        for _ in range(2):
            assert c.get("/api/tasks").status_code == 401
        assert c.get(f"/api/{user}/tasks/99999", headers=auth(token)).status_code == 404
        c.options(
            "/api/tasks", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        c.get("/nowhere/1")
        c.get("/nowhere/2")
        c.request("PROPFIND", "/api/tasks")
        after = scrape(c)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "http_requests_total"
    assert delta(requests, method="GET", route="/api/tasks", status="200") == 3
    assert delta(requests, method="GET", route="/api/tasks", status="401") == 2
    assert delta(requests, method="GET", route="/api/{user_id}/tasks/{task_id}", status="404") == 1
    assert delta(requests, method="OPTIONS", route="preflight", status="400") == 1
    assert delta(requests, method="GET", route="unmatched", status="404") == 2
    assert delta(requests, method="other", route="/api/tasks", status="405") == 1
    assert delta(requests, method="GET", route="/metrics", status="200") == 1  # the first scrape
    # No raw path, user id or method name ever becomes a label.
    labels = {v for (_, pairs) in after for _, v in pairs}
    assert user not in labels and "/nowhere/1" not in labels and "PROPFIND" not in labels

    duration = "http_request_duration_seconds"
    assert delta(f"{duration}_count", method="GET", route="/api/tasks") == 5
    assert delta(f"{duration}_bucket", method="GET", route="/api/tasks", le="+Inf") == 5
    assert delta(f"{duration}_sum", method="GET", route="/api/tasks") > 0
    buckets = [
        value(after, f"{duration}_bucket", method="GET", route="/api/tasks", le=le)
        for le in (
            "0.001",
            "0.0025",
            "0.005",
            "0.01",
            "0.025",
            "0.05",
            "0.1",
            "0.25",
            "0.5",
            "1.0",
            "2.5",
            "5.0",
            "+Inf",
        )
    ]
    assert buckets == sorted(buckets)  # cumulative

    assert value(after, "db_pool_size") >= 1
    assert value(after, "db_pool_connections_in_use") == 0  # nothing in flight during a scrape
    assert value(after, "db_pool_acquire_waiting") == 0
    assert ("jwks_fetches_total", frozenset()) in after  # 0 here: HS256 only
    assert ("jwks_fetch_failures_total", frozenset()) in after
    assert ("process_cpu_seconds_total", frozenset()) in after


def test_graphql_operations(observed: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability, "_graphql", observability._GraphQLCounts())
    record_graphql("ListTasks", [])
    record_graphql("ListTasks", [])
    record_graphql("ListTasks", ["UNAUTHENTICATED", "NOT_FOUND"])
    record_graphql(None, ["GRAPHQL_PARSE_FAILED"])
    record_graphql("bad name!", [])
    record_graphql("x" * 65, [])
    record_graphql("Weird", ["not a code"])
    for i in range(MAX_OPERATION_NAMES + 20):
        record_graphql(f"Op{i}")
    with observed.client() as c:
        samples = scrape(c)
    ops = "graphql_operations_total"
    assert value(samples, ops, operation="ListTasks", code="ok") == 2
    assert value(samples, ops, operation="ListTasks", code="UNAUTHENTICATED") == 1
    assert value(samples, ops, operation="anonymous", code="GRAPHQL_PARSE_FAILED") == 1
    assert value(samples, ops, operation="Weird", code="other") == 1
    names = {dict(pairs)["operation"] for (name, pairs) in samples if name == ops}
    # ListTasks, Weird and the first 98 Op names fill the cap; everything else is `other`.
    assert len(names - {"anonymous", "other"}) == MAX_OPERATION_NAMES
    assert value(samples, ops, operation="other", code="ok") == 2 + 22


def test_graphql_operations_over_http_are_counted(
    observed: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema reports each operation it ran (TaskSchema.observe_result)."""
    monkeypatch.setattr(observability, "_graphql", observability._GraphQLCounts())
    with observed.client(hs_token(unique_user("ops"))) as c:
        for _ in range(2):
            c.post(
                "/graphql",
                json={"query": "query CountMine { tasks { totalCount } }", "operationName": "CountMine"},
            )
        c.post("/graphql", json={"query": "{ nope }"})
        samples = scrape(c)
    assert value(samples, "graphql_operations_total", operation="CountMine", code="ok") == 2
    assert (
        value(samples, "graphql_operations_total", operation="anonymous", code="GRAPHQL_VALIDATION_FAILED")
        == 1
    )


def test_jwks_fetches_and_failures(database: DatabaseURL) -> None:
    jwks = JWKSServer(status=500).start()
    try:
        settings = settings_for(database, BETTER_AUTH_URL="http://auth.example", JWT_JWKS_URL=jwks.url)
        with live_server(settings) as srv, srv.client() as c:
            samples = scrape(c)  # the start-up prefetch failed
            assert value(samples, "jwks_fetches_total") == 1
            assert value(samples, "jwks_fetch_failures_total") == 1
    finally:
        jwks.stop()


def test_metrics_token(database: DatabaseURL, access: pytest.LogCaptureFixture) -> None:
    secret = "metrics-" + unique_user("token")
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, METRICS_TOKEN=secret)
    with live_server(settings) as srv, srv.client() as c:
        r = c.get("/metrics")
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert c.get("/metrics", headers=auth("wrong")).status_code == 401
        assert c.get("/metrics", headers={"Authorization": secret}).status_code == 401
        assert ("db_pool_size", frozenset()) in scrape(c, Authorization=f"Bearer {secret}")
        assert "/metrics" not in c.get("/openapi.json").json()["paths"]
        rid = unique_user("scrape")
        c.get("/metrics", headers={**auth(secret), "X-Request-ID": rid})
        one_access_line(access, rid)
    assert secret not in access.text


def test_metrics_disabled(database: DatabaseURL, access: pytest.LogCaptureFixture) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, METRICS_ENABLED="false")
    with live_server(settings) as srv, srv.client() as c:
        assert c.get("/metrics").status_code == 404
        rid = unique_user("nometrics")
        assert c.get("/healthz", headers={"X-Request-ID": rid}).headers["x-request-id"] == rid
        one_access_line(access, rid)


def test_access_log_and_metrics_off(database: DatabaseURL, access: pytest.LogCaptureFixture) -> None:
    settings = settings_for(
        database, BETTER_AUTH_SECRET=HS_SECRET, METRICS_ENABLED="false", ACCESS_LOG="false"
    )
    with live_server(settings) as srv, srv.client() as c:
        r = c.get("/healthz", headers={"X-Request-ID": "quiet"})
        assert r.status_code == 200 and "x-request-id" not in r.headers
        assert c.get("/metrics").status_code == 404
    assert not [r for r in access.records if r.name == ACCESS_LOGGER]


def test_settings() -> None:
    default = load_settings({}, dotenv=False)
    assert (default.log_format, default.access_log, default.metrics_enabled, default.metrics_token) == (
        "text",
        True,
        True,
        None,
    )
    parsed = load_settings({"LOG_FORMAT": "JSON", "ACCESS_LOG": "no", "METRICS_ENABLED": "0"}, dotenv=False)
    assert (parsed.log_format, parsed.access_log, parsed.metrics_enabled) == ("json", False, False)
    production = {
        "APP_ENV": "production",
        "BETTER_AUTH_SECRET": "s" * 32,
        "DATABASE_URL": "postgresql://h/db",
    }
    # Production: /metrics only with a token, or when asked for explicitly.
    assert not load_settings(production, dotenv=False).metrics_enabled
    assert load_settings({**production, "METRICS_TOKEN": "t" * 16}, dotenv=False).metrics_enabled
    assert load_settings({**production, "METRICS_ENABLED": "true"}, dotenv=False).metrics_enabled
    with pytest.raises(SettingsError) as error:
        load_settings(
            {**production, "LOG_FORMAT": "xml", "ACCESS_LOG": "maybe", "METRICS_TOKEN": "short"}, dotenv=False
        )
    assert set(error.value.problems) == {
        "ACCESS_LOG must be true or false (got 'maybe')",
        "LOG_FORMAT must be text or json (got 'xml')",
        "METRICS_TOKEN must be at least 16 characters in production",
    }


MULTIPROCESS_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from types import SimpleNamespace
    from prometheus_client import generate_latest
    from starlette.datastructures import State
    from api import observability
    from api.settings import load_settings

    assert observability.MULTIPROCESS
    state = State()
    state.db = SimpleNamespace(in_use=2, size=3, waiting=1)
    state.jwks = SimpleNamespace(fetch_count=4, failure_count=1)
    metrics = observability.Metrics(load_settings({}, dotenv=False), state)

    async def main() -> None:
        async with observability.running(metrics):
            metrics.observe("GET", "/api/tasks", 200, 0.002)
            metrics.observe("GET", "/api/tasks", 200, 0.2)
            observability.record_graphql("ListTasks", [])
            if sys.argv[1] == "report":
                await asyncio.sleep(0.1)  # the first publication is immediate
                sys.stdout.write(generate_latest(observability._multiprocess_registry()).decode())

    asyncio.run(main())
    """
)


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR: whichever worker answers serves the sum of all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", MULTIPROCESS_WORKER, mode],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("work")  # a worker that has stopped: its counters stay, its gauges go
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(run("report"))
        for s in family.samples
    }
    assert value(samples, "http_requests_total", method="GET", route="/api/tasks", status="200") == 4
    assert value(samples, "http_request_duration_seconds_count", method="GET", route="/api/tasks") == 4
    assert (
        value(samples, "http_request_duration_seconds_bucket", method="GET", route="/api/tasks", le="0.0025")
        == 2
    )
    assert value(samples, "graphql_operations_total", operation="ListTasks", code="ok") == 2
    assert value(samples, "jwks_fetches_total") == 8 and value(samples, "jwks_fetch_failures_total") == 2
    # Gauges: only the worker still running.
    assert value(samples, "db_pool_size") == 3 and value(samples, "db_pool_connections_in_use") == 2
    assert value(samples, "db_pool_acquire_waiting") == 1


# ------------------------------------------------- access lines written in batches


class Writes(io.StringIO):
    """A stream that keeps each write() call's text."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


@pytest.mark.parametrize("formatter", [TextFormatter(), JSONFormatter()], ids=["text", "json"])
@pytest.mark.parametrize(
    "created", [1_764_400_000.0, 1_764_400_000.0009, 1_764_400_000.9996, 1_764_400_001.5]
)
def test_an_access_line_is_what_the_formatter_makes_of_the_record(
    formatter: logging.Formatter, created: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batching path formats the fields itself: the same line as the record path."""
    monkeypatch.setattr("api.observability.time.time", lambda: created)
    fields = ("PATCH", "/api/tasks/{task_id}/complete", 200, 1.23456, "rid-1")
    record = observability._access_record(fields[0], fields[1], fields[2], fields[3] / 1000, fields[4])
    assert isinstance(formatter, TextFormatter | JSONFormatter)
    assert formatter.access_line(created, fields) == formatter.format(record)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_lines_are_written_in_batches_of_whole_lines_in_order(
    database: DatabaseURL, log_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the service's handler alone on the root logger (as in `todo-api serve`), access
    lines skip logging's records: each write whole lines within WRITE_CHUNK, every line
    once and in order, before any other line, and written when no more come (the timer)."""
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, LOG_FORMAT=log_format)
    stream = Writes()
    configure_logging(settings, stream=stream)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() == "api.observability"]  # pytest's out
    assert observability._batching_access_handler() is root.handlers[0]
    # The test's own HTTP client logs each request at INFO, which would write the queue each time.
    monkeypatch.setattr(logging.getLogger("httpx"), "propagate", False)
    rids = [unique_user("batched") for _ in range(80)]
    with live_server(settings) as srv, srv.client() as c:
        stream.calls.clear()
        for rid in rids:
            assert c.get("/api/tasks", headers={"X-Request-ID": rid}).status_code == 401
        # The last lines wait for the timer: never longer than it (plus a loaded machine's delay).
        assert wait_until(lambda: rids[-1] in stream.getvalue(), timeout=5)
        calls = list(stream.calls)
        logging.getLogger("api").warning("after the requests")
    assert all(call.endswith("\n") and len(call.encode()) <= observability.WRITE_CHUNK for call in calls)
    lines = stream.getvalue().splitlines()
    mine = [line for line in lines if any(rid in line for rid in rids[:1])]
    assert len(mine) == 1
    order = [next(i for i, rid in enumerate(rids) if rid in line) for line in lines if "batched" in line]
    assert order == list(range(len(rids)))  # every line once, in request order
    assert "after the requests" in lines[-1]
    if log_format == "json":
        parsed = [json.loads(line) for line in lines]
        assert {p["request_id"] for p in parsed if "request_id" in p} >= set(rids)


@pytest.mark.usefixtures("restore_logging")
def test_another_line_writes_the_queued_access_lines_first(database: DatabaseURL) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET)
    stream = Writes()
    configure_logging(settings, stream=stream)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() == "api.observability"]
    handler = root.handlers[0]
    assert isinstance(handler, observability.ServiceHandler)

    async def go() -> None:
        handler.access(1_764_400_000.0, ("GET", "/api/tasks", 200, 1.0, "first"))
        handler.access(1_764_400_000.0, ("GET", "/api/tasks", 200, 1.0, "second"))
        assert stream.getvalue() == ""  # queued
        logging.getLogger("api").error("something failed")

    asyncio.run(go())
    first, second, error = stream.getvalue().splitlines()
    assert "rid=first" in first and "rid=second" in second and error.endswith("ERROR api: something failed")
    assert len(stream.calls) == 1


@pytest.mark.usefixtures("restore_logging")
def test_any_other_handler_gets_the_record_instead(database: DatabaseURL) -> None:
    """A capture handler (pytest's caplog, a user's own) or a filter anywhere on the way
    makes the access layer hand over a record as before (the other tests here see it)."""
    configure_logging(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET), stream=io.StringIO())
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == "api.observability"]
    root.handlers[:] = ours
    assert observability._batching_access_handler() is ours[0]
    changes: list[Iterator[None]] = []

    def extra_handler() -> Iterator[None]:
        root.addHandler(other := logging.NullHandler())
        yield
        root.removeHandler(other)

    def access_filter() -> Iterator[None]:
        logging.getLogger(ACCESS_LOGGER).addFilter(f := logging.Filter("x"))
        yield
        logging.getLogger(ACCESS_LOGGER).removeFilter(f)

    def api_handler() -> Iterator[None]:
        logging.getLogger("api").addHandler(h := logging.NullHandler())
        yield
        logging.getLogger("api").removeHandler(h)

    def custom_text_format() -> Iterator[None]:
        formatter = ours[0].formatter
        ours[0].setFormatter(TextFormatter("%(message)s"))
        yield
        ours[0].setFormatter(formatter)

    def access_off() -> Iterator[None]:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
        yield
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET)

    for change in (extra_handler, access_filter, api_handler, custom_text_format, access_off):
        changes.append(steps := change())
        next(steps)
        assert observability._batching_access_handler() is None, change.__name__
        next(steps, None)
        assert observability._batching_access_handler() is ours[0], change.__name__


@pytest.mark.usefixtures("restore_logging")
def test_queued_access_lines_go_out_by_the_chunk_then_by_the_timer() -> None:
    """Lines queued in one turn of the loop: written in writes of whole lines up to
    WRITE_CHUNK bytes (non-ASCII counted in bytes), the rest by the timer."""
    stream = Writes()
    configure_logging(load_settings({}, dotenv=False), stream=stream)
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "api.observability"]
    assert isinstance(handler, observability.ServiceHandler)
    lines = 80

    async def go() -> None:
        for i in range(lines):
            handler.access(1_764_400_000.0, ("GET", "/api/tasks/{task_id}", 200, 1.0, f"r{i:03d}" + "é" * 20))
        by_chunk = stream.getvalue().count("\n")
        assert 0 < by_chunk < lines  # full chunks went out at once, the rest waits
        await asyncio.sleep(observability.ACCESS_FLUSH_SECONDS * 3)

    asyncio.run(go())
    written = stream.getvalue().splitlines()
    assert [line.split("rid=r")[1][:3] for line in written] == [f"{i:03d}" for i in range(lines)]
    sizes = [len(call.encode()) for call in stream.calls]
    assert all(size <= observability.WRITE_CHUNK for size in sizes) and all(
        c.endswith("\n") for c in stream.calls
    )
    assert len(stream.calls) <= sum(sizes) // (observability.WRITE_CHUNK - 200) + 2  # few, full writes
