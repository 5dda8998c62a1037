"""Request logs and Prometheus metrics.

- **Access log**: one line per request on the `api.access` logger (INFO): method,
  route template (`/api/tasks/{task_id}`, never the raw path), status, duration and
  request id; never a header, a query string or a body, so never a token. The layer
  sits outside CORS, so a refused preflight is logged too.
- **Request id**: an incoming `X-Request-ID` of at most 128 characters of
  `[A-Za-z0-9._-]` is kept, anything else is replaced by a new one (32 hex digits);
  either way it is echoed in the response. Other log lines written while a request
  is served carry it too (see `configure_logging`).
- **Metrics** at `/metrics`, in Prometheus' text format (OpenMetrics when asked for):
  HTTP requests and durations by route template, the database pool, JWKS fetches and
  GraphQL operations. The hot path only adds to plain counters; prometheus-client
  turns them into metric families when /metrics is scraped. Every label is bounded:
  routes are templates (`unmatched` and `preflight` for requests that reached none),
  unusual methods are `other`, GraphQL operation names are capped.

Several worker processes: each serves its own /metrics (whichever worker answers a
scrape), unless `PROMETHEUS_MULTIPROC_DIR` names an empty directory, writable by every
worker, when the processes start: then prometheus-client's multiprocess mode is used
and every worker serves the sum of all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.util
import logging
import os
import re
import sys
import time
import weakref
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import IO, Any

import orjson
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.mount import ScopedRoute
from api.settings import Settings
from schema.errors import error_response

ACCESS_LOGGER = "api.access"
access_logger = logging.getLogger(ACCESS_LOGGER)
log = logging.getLogger("api")

# Request durations, in seconds: 1 ms to 5 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BUCKET_LABELS = (*(str(bound) for bound in BUCKETS), "+Inf")  # as Prometheus writes them
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
_LABEL = re.compile(r"[A-Za-z0-9_]{1,64}")
MAX_OPERATION_NAMES = 100  # distinct GraphQL operation names per process; then `other`
MAX_ERROR_CODES = 50
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))  # as prometheus-client decides
SYNC_SECONDS = 1.0  # multiprocess mode: how often a worker publishes its pool and JWKS figures

# The id of the request being served (for the other log lines written meanwhile).
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

Observe = Callable[[str, str, int, float], None]


# ------------------------------------------------------------------------ OpenTelemetry

_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def fastapi_telemetry() -> TelemetryConfig | None:
    """FastAPI's `telemetry=` argument. FastAPI asks the global OpenTelemetry providers
    on every request whether someone configured them (a few µs a request). Nobody can
    without an SDK (opentelemetry-api alone, which FastAPI installs, only has no-op
    providers) or with `OTEL_SDK_DISABLED=true`: then its telemetry is off and costs
    nothing. Otherwise (the SDK installed, e.g. by `opentelemetry-instrument` or a
    vendor's distro) FastAPI's defaults: spans and metrics once providers are set."""
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    if disabled or importlib.util.find_spec("opentelemetry.sdk") is None:
        return _TELEMETRY_OFF
    return None


# --------------------------------------------------------------------------- middleware


class RequestLogAndMetrics:
    """The access log, the request id and the HTTP metrics: a pure ASGI middleware,
    added outside CORS so that every answer (401s, refused preflights, 413s) is seen."""

    def __init__(self, app: ASGIApp, *, access_log: bool, observe: Observe | None) -> None:
        self.app = app
        self.log = access_log
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _REQUEST_ID.fullmatch(value):
                    request_id = value
                break
        rid = request_id.decode() if request_id else os.urandom(16).hex()
        header = (b"x-request-id", request_id or rid.encode())
        status = 500  # what the server answers when the app fails before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        context = current_request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template: str = getattr(route, "path", None) or _unrouted(scope)
            method: str = scope["method"]
            if self.observe is not None:
                self.observe(method if method in _METHODS else "other", template, status, elapsed)
            if self.log:
                handler = _batching_access_handler()
                if handler is not None:
                    handler.access(time.time(), (method, template, status, elapsed * 1000, rid))
                elif access_logger.isEnabledFor(logging.INFO):
                    access_logger.handle(_access_record(method, template, status, elapsed, rid))
            current_request_id.reset(context)


def _unrouted(scope: Scope) -> str:
    """The route label of a request no route took: a CORS preflight (answered by the
    CORS layer) or a path that matches nothing."""
    if scope["method"] == "OPTIONS" and any(
        n == b"access-control-request-method" for n, _ in scope["headers"]
    ):
        return "preflight"
    return "unmatched"


# ---------------------------------------------------------------------------- logging

ACCESS_FORMAT = "%s %s %d %.1fms rid=%s"
_record_template: dict[str, Any] | None = None
_logging_start = 0.0  # logging's start time, which relativeCreated counts from


AccessFields = tuple[str, str, int, float, str]  # method, route, status, duration in ms, request id


def _msecs(created: float) -> float:
    return int((created - int(created)) * 1000) + 0.0  # as LogRecord.__init__


def _access_record(method: str, route: str, status: int, seconds: float, rid: str) -> logging.LogRecord:
    """The access log record, made from a per-process template: LogRecord.__init__
    (caller lookup, thread and process names, ...) costs several µs a request."""
    global _record_template, _logging_start
    if _record_template is None:
        first = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, "", (), None)
        _logging_start = first.created - first.relativeCreated / 1000
        _record_template = vars(first)
        _record_template["funcName"] = "access"
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__ = _record_template.copy()
    now = time.time()
    record.created = now
    record.msecs = _msecs(now)
    record.relativeCreated = (now - _logging_start) * 1000
    duration_ms = seconds * 1000
    record.msg = ACCESS_FORMAT
    record.args = (method, route, status, duration_ms, rid)
    record.access = record.args  # for the JSON formatter
    return record


def _reset_template() -> None:
    global _record_template
    _record_template = None


os.register_at_fork(after_in_child=_reset_template)  # the template holds the pid

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "api.observability"


class TextFormatter(logging.Formatter):
    """The service's text lines; lines written while a request is served (other than
    its access line, which has it already) end with its `rid=`."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        return self._time(record.created, record.msecs)

    def _time(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once a second, not once a line
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._stamp},{int(msecs):03d}"

    @property
    def writes_access_lines(self) -> bool:
        """Whether access_line() is this formatter's line (TEXT_FORMAT)."""
        return self._fmt == TEXT_FORMAT

    def format(self, record: logging.LogRecord) -> str:
        if self._fmt != TEXT_FORMAT or record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)  # calls formatMessage below
        # TEXT_FORMAT, in one f-string: most lines take this path.
        return f"{self.formatTime(record)} {record.levelname} {record.name}: {self._message(record)}"

    def access_line(self, created: float, access: AccessFields) -> str:
        """The line format() makes of _access_record's record for `access` at `created`."""
        return f"{self._time(created, _msecs(created))} INFO {ACCESS_LOGGER}: {ACCESS_FORMAT % access}"

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        if not hasattr(record, "access") and (rid := current_request_id.get()) is not None:
            line = f"{line} rid={rid}"
        return line

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not hasattr(record, "access") and (rid := current_request_id.get()) is not None:
            message = f"{message} rid={rid}"
        return message


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message; access lines add
    method, route, status, duration_ms and request_id, other lines written while a
    request is served add its request_id; exceptions come as `exception`."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    writes_access_lines = True

    def _time(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(msecs):03d}Z"

    def access_line(self, created: float, access: AccessFields) -> str:
        """The line format() makes of _access_record's record for `access` at `created`."""
        method, route, status, duration_ms, rid = access
        out = {
            "time": self._time(created, _msecs(created)),
            "level": "INFO",
            "logger": ACCESS_LOGGER,
            "message": ACCESS_FORMAT % access,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration_ms, 3),
            "request_id": rid,
        }
        return orjson.dumps(out).decode()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self._time(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if access is not None:
            method, route, status, duration_ms, rid = access
            out.update(method=method, route=route, status=status, duration_ms=round(duration_ms, 3))
            out["request_id"] = rid
        elif (rid := current_request_id.get()) is not None:
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str).decode()


ACCESS_FLUSH_SECONDS = 0.2  # the longest an access line waits to be written
WRITE_CHUNK = 4096  # bytes per write: whole lines, within a pipe's atomic write (PIPE_BUF)


class ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The service's handler (configure_logging): a StreamHandler that writes access
    lines in batches.

    Why: a line written and flushed per request, through logging's record machinery,
    took ~11-16% of a REST get-one's py-spy samples; batched, ~6% (docs/performance.md).
    When nothing else would see the record (_batching_access_handler), the access layer
    hands the line's fields straight to this handler, which formats them as its
    formatter would the record (access_line, tested equal) and queues the line. Queued
    lines are written, in order, before any other line, once WRITE_CHUNK bytes wait, and
    ACCESS_FLUSH_SECONDS after the first of them (a timer on the serving loop); each
    write holds whole lines only, so several workers sharing one stdout never split a
    line. At exit logging.shutdown writes what is left (uvicorn's workers exit through
    sys.exit); a process killed at once loses at most ACCESS_FLUSH_SECONDS of access
    lines. A failed write never reaches the request:
    it is reported on stderr when possible, as logging does."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self._queued: list[str] = []
        self._queued_size = 0
        # The loop whose timer will write the queue; only that loop touches the timer
        # (emit may run on any thread: it writes, it never cancels).
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        _handlers.add(self)

    def access(self, created: float, fields: AccessFields) -> None:
        formatter = self.formatter
        assert isinstance(formatter, TextFormatter | JSONFormatter)
        with self.lock:  # type: ignore[union-attr]
            line = formatter.access_line(created, fields) + self.terminator  # its time cache is shared
            length = len(line) if line.isascii() else len(line.encode())
            if self._queued and self._queued_size + length > WRITE_CHUNK:
                self._write_queued()  # a full chunk, then this line starts the next
            self._queued.append(line)
            self._queued_size += length
            if self._queued_size >= WRITE_CHUNK:
                self._write_queued()
                return
            loop = asyncio.get_running_loop()
            if self._timer_loop is not loop:  # none armed here (or only on a loop now gone)
                self._timer_loop = loop
                loop.call_later(ACCESS_FLUSH_SECONDS, self._on_timer)

    def _on_timer(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._timer_loop = None
            self._write_queued()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        self._queued.append(line)  # behind the access lines queued before it
        self._write_queued()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_queued()

    def _forget_queue(self) -> None:
        """In a forked child: the queue is the parent's to write, its timer the parent's."""
        self._queued, self._queued_size, self._timer_loop = [], 0, None

    def _write_queued(self) -> None:
        lines, self._queued, self._queued_size = self._queued, [], 0
        if not lines:
            return
        try:
            chunk: list[str] = []
            size = 0
            for line in lines:
                length = len(line) if line.isascii() else len(line.encode())
                if chunk and size + length > WRITE_CHUNK:
                    self.stream.write("".join(chunk))
                    chunk, size = [], 0
                chunk.append(line)
                size += length
            self.stream.write("".join(chunk))
            if hasattr(self.stream, "flush"):
                self.stream.flush()
        except Exception as error:  # as logging's handleError: never fail the caller (a request)
            if logging.raiseExceptions and sys.stderr is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.write(f"--- Logging error: {len(lines)} line(s) not written: {error!r}\n")


_handlers: weakref.WeakSet[ServiceHandler] = weakref.WeakSet()


def _forget_queues_in_child() -> None:
    for handler in list(_handlers):
        handler._forget_queue()


os.register_at_fork(after_in_child=_forget_queues_in_child)


_api_logger = logging.getLogger("api")


def _batching_access_handler() -> ServiceHandler | None:
    """The service's handler, when an access record would reach it alone and unchanged:
    no handler or filter on api.access, api or the root but it, nothing disabled, INFO
    enabled, and its formatter one with access_line (the text format or JSON). Anything
    else (a test's capture handler, another handler added by a user) gets the record."""
    root = logging.root
    handlers = root.handlers
    if len(handlers) != 1 or root.filters:
        return None
    handler = handlers[0]
    if type(handler) is not ServiceHandler or handler.filters or handler.level > logging.INFO:
        return None
    for logger in (access_logger, _api_logger):
        if logger.handlers or logger.filters or not logger.propagate or logger.disabled:
            return None
    formatter = handler.formatter
    if not (isinstance(formatter, TextFormatter | JSONFormatter) and formatter.writes_access_lines):
        return None
    return handler if access_logger.isEnabledFor(logging.INFO) else None


def configure_logging(
    settings: Settings, *, stream: IO[str] | None = None, level: int = logging.INFO
) -> None:
    """The service's logging: one handler on the root logger (stderr), in LOG_FORMAT
    (text or JSON), at INFO. Uvicorn's own lines go through it too. It replaces the
    console handler logging.basicConfig installs and the one a previous call installed
    (so it may be called again, e.g. in each worker process); other handlers stay."""
    formatter = JSONFormatter() if settings.log_format == "json" else TextFormatter()
    handler = ServiceHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        console = type(old) is logging.StreamHandler and old.stream in (sys.stderr, sys.stdout)
        if old.get_name() == _HANDLER_NAME or console:
            old.flush()  # what it still queues
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Uvicorn's start-up and error lines: through the same handler and format. (Its
    # access log is off: `todo-api serve` passes access_log=False.)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


# ---------------------------------------------------------------------------- metrics


class HTTPMetrics:
    """Requests by (method, route, status): bucket counts, then the sum of durations.
    Plain lists, no locks: requests and scrapes run on the same event loop."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(BUCKETS) + 2)
        series[bisect_left(BUCKETS, seconds)] += 1
        series[-1] += seconds


class _GraphQLCounts:
    """GraphQL operations by (operation, code), for this process (all apps in it)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.names: dict[str, str] = {}  # operation name -> label, at most MAX_OPERATION_NAMES
        self.codes: dict[str, str] = {}


_graphql = _GraphQLCounts()


def record_graphql(operation_name: str | None, codes: Sequence[str | None] = ()) -> None:
    """Count one GraphQL operation: `codes` are its errors' codes (none: `ok`).

    Labels are bounded: an operation without a name is `anonymous`; names outside
    [A-Za-z0-9_]{1,64}, and every new name after the first MAX_OPERATION_NAMES, are
    `other`; so are codes outside that pattern or past MAX_ERROR_CODES."""
    counts = _graphql
    if operation_name is None:
        operation = "anonymous"
    else:
        operation = counts.names.get(operation_name) or _new_label(
            counts.names, operation_name, MAX_OPERATION_NAMES
        )
    if not codes:
        code = "ok"
    else:
        first = codes[0] or ""
        code = counts.codes.get(first) or _new_label(counts.codes, first, MAX_ERROR_CODES)
    key = (operation, code)
    counts.counts[key] = counts.counts.get(key, 0) + 1
    if _shared is not None:
        _shared.graphql.labels(operation, code).inc()


def _new_label(known: dict[str, str], value: str, limit: int) -> str:
    if len(known) < limit and _LABEL.fullmatch(value):
        known[value] = value
        return value
    return "other"


class _AppCollector(Collector):
    """This process's figures for one app, as metric families, at scrape time."""

    def __init__(self, http: HTTPMetrics, state: State) -> None:
        self._http = http
        self._state = state

    def collect(self) -> Iterator[Metric]:
        yield from _http_families(self._http)
        yield from _pool_families(getattr(self._state, "db", None))
        yield from _jwks_families(getattr(self._state, "jwks", None))
        operations = CounterMetricFamily("graphql_operations", _GRAPHQL_HELP, labels=("operation", "code"))
        for (operation, code), count in _graphql.counts.items():
            operations.add_metric((operation, code), count)
        yield operations


_REQUESTS_HELP = "HTTP requests answered, by method, route template and status."
_DURATION_HELP = "Time from the request's arrival to the end of its response, by method and route template."
_GRAPHQL_HELP = "GraphQL operations, by operation name and outcome (ok, or the first error's code)."
_IN_USE_HELP = "Database connections lent out."
_SIZE_HELP = "Database connections open (idle and lent out)."
_MAX_HELP = "Largest number of database connections the pool opens (DB_POOL_MAX_SIZE)."
_WAITING_HELP = "Requests waiting for a database connection (one to be free or to open)."
_FETCHES_HELP = "JWKS fetches started (successful or not)."
_FAILURES_HELP = "JWKS fetches that failed."


def _http_families(http: HTTPMetrics) -> Iterator[Metric]:
    requests = CounterMetricFamily("http_requests", _REQUESTS_HELP, labels=("method", "route", "status"))
    durations = HistogramMetricFamily(
        "http_request_duration_seconds", _DURATION_HELP, labels=("method", "route")
    )
    by_route: dict[tuple[str, str], list[float]] = {}
    for (method, route, status), series in http.series.items():
        requests.add_metric((method, route, str(status)), sum(series[:-1]))
        merged = by_route.get((method, route))
        if merged is None:
            by_route[(method, route)] = list(series)
        else:
            for i, value in enumerate(series):
                merged[i] += value
    for labels, series in by_route.items():
        cumulative, buckets = 0.0, []
        for bound, count in zip(_BUCKET_LABELS, series, strict=False):
            cumulative += count
            buckets.append((bound, cumulative))
        durations.add_metric(labels, buckets, series[-1])
    yield requests
    yield durations


def _pool_families(db: Any) -> Iterator[Metric]:
    yield GaugeMetricFamily("db_pool_connections_in_use", _IN_USE_HELP, value=db.in_use if db else 0)
    yield GaugeMetricFamily("db_pool_size", _SIZE_HELP, value=db.size if db else 0)
    yield GaugeMetricFamily("db_pool_acquire_waiting", _WAITING_HELP, value=getattr(db, "waiting", 0))


def _jwks_families(jwks: Any) -> Iterator[Metric]:
    yield CounterMetricFamily("jwks_fetches", _FETCHES_HELP, value=getattr(jwks, "fetch_count", 0))
    yield CounterMetricFamily("jwks_fetch_failures", _FAILURES_HELP, value=getattr(jwks, "failure_count", 0))


class _SharedMetrics:
    """Multiprocess mode: prometheus-client's own metrics, whose values live in
    PROMETHEUS_MULTIPROC_DIR, one set per process (created once)."""

    def __init__(self) -> None:
        self.requests = Counter("http_requests", _REQUESTS_HELP, ("method", "route", "status"), registry=None)
        self.durations = Histogram(
            "http_request_duration_seconds",
            _DURATION_HELP,
            ("method", "route"),
            buckets=BUCKETS,
            registry=None,
        )
        self.graphql = Counter("graphql_operations", _GRAPHQL_HELP, ("operation", "code"), registry=None)
        self.in_use = Gauge(
            "db_pool_connections_in_use", _IN_USE_HELP, registry=None, multiprocess_mode="livesum"
        )
        self.size = Gauge("db_pool_size", _SIZE_HELP, registry=None, multiprocess_mode="livesum")
        self.waiting = Gauge(
            "db_pool_acquire_waiting", _WAITING_HELP, registry=None, multiprocess_mode="livesum"
        )
        self.fetches = Counter("jwks_fetches", _FETCHES_HELP, registry=None)
        self.failures = Counter("jwks_fetch_failures", _FAILURES_HELP, registry=None)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.durations.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


_shared = _SharedMetrics() if MULTIPROCESS else None


class Metrics:
    """One app's metrics: what the middleware records into and /metrics serves."""

    def __init__(self, settings: Settings, state: State) -> None:
        self._state = state
        self._token = settings.metrics_token.encode() if settings.metrics_token else None
        if self._token is None and settings.is_production:
            log.warning("METRICS_ENABLED=true without METRICS_TOKEN: keep /metrics off the public network")
        self.http = HTTPMetrics()
        self.observe: Observe = _shared.observe if _shared is not None else self.http.observe
        self._registry: CollectorRegistry | None = None
        if _shared is None:
            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(_AppCollector(self.http, state))
            ProcessCollector(registry=self._registry)
            PlatformCollector(registry=self._registry)
            GCCollector(registry=self._registry)

    def route(self, path: str = "/metrics") -> Route:
        return ScopedRoute(path, self.endpoint, methods=["GET"], include_in_schema=False)

    async def endpoint(self, request: Request) -> Response:
        if self._token is not None and not self._authorized(request.headers.get("authorization", "")):
            return error_response(
                401,
                "unauthenticated",
                "GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        registry = self._registry or _multiprocess_registry()
        return Response(encode(registry), headers={"Content-Type": content_type})

    def _authorized(self, authorization: str) -> bool:
        assert self._token is not None
        scheme, _, credentials = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the app's lifespan. Multiprocess mode: this worker publishes its pool
        and JWKS figures every SYNC_SECONDS, and its gauges go when it stops."""
        if _shared is None:  # figures are read when /metrics is scraped
            yield
            return
        shared = _shared
        published = {"fetch_count": 0, "failure_count": 0}  # JWKS figures counted so far

        def publish() -> None:
            db = getattr(self._state, "db", None)
            if db is not None:
                shared.in_use.set(db.in_use)
                shared.size.set(db.size)
                shared.waiting.set(db.waiting)
            jwks = getattr(self._state, "jwks", None)
            for attribute, counter in (("fetch_count", shared.fetches), ("failure_count", shared.failures)):
                now = getattr(jwks, attribute, 0)
                if now > published[attribute]:
                    counter.inc(now - published[attribute])
                    published[attribute] = now

        async def loop() -> None:
            while True:
                publish()
                await asyncio.sleep(SYNC_SECONDS)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            publish()  # the last counts
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@contextlib.asynccontextmanager
async def running(metrics: Metrics | None) -> AsyncIterator[None]:
    """`metrics.running()`, or nothing when metrics are off."""
    if metrics is None:
        yield
        return
    async with metrics.running():
        yield


def _multiprocess_registry() -> CollectorRegistry:
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
