"""CPU per request, in process: the service's ASGI app and the floor, no HTTP.

    uv run python -m bench.cpu                      # every scenario, ours and the floor
    uv run python -m bench.cpu --scenarios rest_get,gql_list --requests 5000
    uv run python -m bench.cpu --profile gql_list   # cProfile top 30, cumulative and tottime

It seeds a database the way the bench does (bench/db.py: `todo_cpu_bench` by default,
dropped and recreated; `--reuse-db` keeps it), builds the service with api.app.create_app
(production settings as the bench starts it: HS256 secret, access log on, metrics off,
live updates on, a pool of 10) and runs its lifespan, builds the floor
(bench/floor_app.py) on the same database, then sends each scenario's requests
(the ones bench/scenarios.py sends, real HS256 bearer tokens included) straight to
`await app(scope, receive, send)`, one after another, and reports the process CPU time
(time.process_time) per request for each, and their ratio. Targets are measured in
alternating rounds (`--rounds`): the medians are reported, with the minimum (the
least disturbed round) and the median of the rounds' floor/ours ratios, which carry
less of a shared machine's drift than figures taken minutes apart.

What this leaves out: uvicorn (HTTP parsing, its protocol objects and socket writes,
the same for every app it serves). What it includes: everything in the app, the
asyncpg protocol work and the event loop's share; and, where this machine's /proc shows
PostgreSQL's processes (PostgreSQL on the same machine, readable: root or its user),
their CPU over the same requests, reported beside it with the ratio of the sums (what
a machine PostgreSQL shares pays).
The GraphQL scenarios have no floor (the bench compares them with PostGraphile); their
"floor" column is the floor's REST scenario doing the same SQL (list-50, create), as a
yardstick only.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import io
import itertools
import json
import logging
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import db as benchdb
from bench import floor_app
from bench.scenarios import OURS_CREATE, OURS_LIST
from bench.tokens import HS256Issuer

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGI = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
DEFAULT_URL = benchdb.with_database(benchdb.DEFAULT_SERVER, "todo_cpu_bench")
SPEC = benchdb.SeedSpec(users=50, tasks_per_user=100, heavy_tasks=0)
SCENARIOS = ("rest_list", "rest_get", "rest_toggle", "rest_create", "gql_list", "gql_create")
# The floor scenario each one is compared with.
FLOOR_OF = {"gql_list": "rest_list", "gql_create": "rest_create"}
EXPECTED_STATUS = {"rest_create": 201}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Requests:
    """Each scenario's requests for one target, cycling over users (and their tasks)."""

    def __init__(self, target: str, readers: dict[str, list[int]], writers: list[str], issuer: HS256Issuer):
        self.target = target
        self.readers = list(readers.items())
        self.writers = writers
        self.issuer = issuer
        self._tokens: dict[str, str] = {}
        self._n = itertools.count()

    def _who(self, user: str) -> list[tuple[bytes, bytes]]:
        base = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
        if self.target == "floor":
            return [*base, (b"x-user-id", user.encode())]
        token = self._tokens.get(user)
        if token is None:
            token = self._tokens[user] = self.issuer.token(user)
        return [*base, (b"authorization", f"Bearer {token}".encode())]

    def make(self, scenario: str) -> Request:
        n = next(self._n)
        if scenario in ("rest_create", "gql_create"):
            user = self.writers[n % len(self.writers)]
            headers = [*self._who(user), (b"content-type", b"application/json")]
            if scenario == "rest_create":
                body = json.dumps({"title": f"bench {n}"}).encode()
                return Request("POST", "/api/tasks", b"", headers, _with_length(headers, body))
            body = json.dumps({"query": OURS_CREATE, "variables": {"title": f"bench {n}"}}).encode()
            return Request("POST", "/graphql", b"", headers, _with_length(headers, body))
        user, ids = self.readers[n % len(self.readers)]
        headers = self._who(user)
        if scenario == "rest_list":
            return Request("GET", "/api/tasks", b"limit=50", headers, b"")
        task = ids[(n // len(self.readers)) % len(ids)]
        if scenario == "rest_get":
            return Request("GET", f"/api/tasks/{task}", b"", headers, b"")
        if scenario == "rest_toggle":
            return Request("PATCH", f"/api/tasks/{task}/complete", b"", headers, b"")
        if scenario == "gql_list":
            headers = [*headers, (b"content-type", b"application/json")]
            body = json.dumps({"query": OURS_LIST}, separators=(",", ":")).encode()
            return Request("POST", "/graphql", b"", headers, _with_length(headers, body))
        raise ValueError(scenario)


def _with_length(headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    headers.append((b"content-length", str(len(body)).encode()))
    return body


def scope_of(request: Request, app: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": request.method,
        "root_path": "",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": request.query,
        "headers": list(request.headers),
        "state": {},
    }


_never: asyncio.Future[Any] | None = None


async def call(app: ASGI, request: Request) -> tuple[int, bytes]:
    """One request through the app: (status, body)."""
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        # As uvicorn: nothing more until the client goes away (it never does here).
        global _never
        if _never is None:
            _never = asyncio.get_running_loop().create_future()
        return dict(await _never)

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope_of(request, app), receive, send)
    return status, b"".join(chunks)


def check(scenario: str, status: int, body: bytes) -> None:
    expected = EXPECTED_STATUS.get(scenario, 200)
    if status != expected:
        raise SystemExit(f"{scenario}: HTTP {status}, expected {expected}: {body[:300]!r}")
    doc = json.loads(body)
    if scenario.startswith("gql") and doc.get("errors"):
        raise SystemExit(f"{scenario}: GraphQL errors {doc['errors']}")
    if scenario == "gql_list" and len(doc["data"]["tasks"]["nodes"]) != 50:
        raise SystemExit(f"{scenario}: expected 50 nodes: {body[:300]!r}")
    if scenario == "rest_list" and len(doc) != 50:
        raise SystemExit(f"{scenario}: expected 50 tasks: {body[:300]!r}")


async def measure(app: ASGI, requests: Requests, scenario: str, n: int) -> tuple[float, float, float | None]:
    """(CPU µs, wall µs, PostgreSQL's CPU µs or None) per request over n sequential requests."""
    batch = [requests.make(scenario) for _ in range(n)]
    pg = postgres_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    for request in batch:
        await call(app, request)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    pg_us = None if pg is None else postgres_cpu_since(pg) / n / 1e3
    return cpu / n * 1e6, wall / n * 1e6, pg_us


def postgres_cpu() -> dict[int, int] | None:
    """The CPU time so far (ns, /proc/PID/schedstat) of every PostgreSQL process on this
    machine (/proc/PID/comm `postgres`); None where none can be read (another OS, a
    remote server, no permission). The service and the floor spend PostgreSQL's CPU
    differently (ours has it announce writes, for one): on a machine PostgreSQL shares,
    the sum is what counts. Background processes are included, the same for both."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    times: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            times[int(entry.name)] = int((entry / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return times or None


def postgres_cpu_since(before: dict[int, int]) -> float:
    """ns of PostgreSQL CPU since `before`: per process (one started meanwhile counts
    whole; one that ended meanwhile is lost, as its last figures are)."""
    after = postgres_cpu() or {}
    return float(sum(ns - before.get(pid, 0) for pid, ns in after.items()))


@dataclass
class Targets:
    ours: ASGI
    floor: ASGI
    ours_requests: Requests
    floor_requests: Requests

    def of(self, target: str) -> tuple[ASGI, Requests]:
        if target == "ours":
            return self.ours, self.ours_requests
        return self.floor, self.floor_requests


async def prepare_database(url: str, reuse: bool) -> benchdb.SeedInfo:
    from db.migrations import run_migrations
    from db.url import DatabaseURL

    if reuse and await benchdb.database_exists(url) and await benchdb.has_tasks_table(url):
        return await benchdb.load_existing(url, SPEC)
    await benchdb.recreate_database(url)
    await run_migrations(DatabaseURL.parse(url), pooled=False)
    return await benchdb.seed(url, SPEC)


@dataclasses.dataclass
class Running:
    targets: Targets
    stop: Callable[[], Awaitable[None]]


async def start(url: str, info: benchdb.SeedInfo, live: bool, extra: dict[str, str]) -> Running:
    from api.app import create_app
    from api.observability import configure_logging
    from api.settings import load_settings

    issuer = HS256Issuer()
    env = {
        "APP_ENV": "production",
        "DATABASE_URL": url,
        "DB_POOL_MIN_SIZE": "10",
        "DB_POOL_MAX_SIZE": "10",
        "MIGRATE_ON_START": "false",
        "LIVE_UPDATES": "true" if live else "false",
        **issuer.env(),
        **extra,  # --set NAME=VALUE
    }
    settings = load_settings(env, dotenv=False)
    # As `todo-api serve`: the access log is written (here to /dev/null) at INFO.
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - closed in stop(); never blocks
    configure_logging(settings, stream=devnull)
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()

    floor_app._pool = await asyncpg.create_pool(url, min_size=10, max_size=10, reset=floor_app._no_reset)

    async def stop() -> None:
        assert floor_app._pool is not None
        await floor_app._pool.close()
        await lifespan.__aexit__(None, None, None)
        for handler in logging.getLogger().handlers:
            handler.flush()  # queued access lines, before their stream closes
        devnull.close()

    targets = Targets(
        ours=app,
        floor=floor_app.app,
        ours_requests=Requests("ours", info.sample, info.writers, issuer),
        floor_requests=Requests("floor", info.sample, info.writers, issuer),
    )
    return Running(targets, stop)


async def warm_up(targets: Targets, scenario: str, n: int) -> None:
    for target in ("ours", "floor"):
        app, requests = targets.of(target)
        name = scenario if target == "ours" else FLOOR_OF.get(scenario, scenario)
        for _ in range(n):
            status, body = await call(app, requests.make(name))
            check(name, status, body)


async def run_scenarios(targets: Targets, scenarios: list[str], n: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for scenario in scenarios:
        await warm_up(targets, scenario, max(50, n // 10))
        samples: dict[str, list[float]] = {"ours": [], "floor": []}
        walls: dict[str, list[float]] = {"ours": [], "floor": []}
        pgs: dict[str, list[float]] = {"ours": [], "floor": []}
        for r in range(rounds):
            order = ("ours", "floor") if r % 2 == 0 else ("floor", "ours")
            for target in order:
                app, requests = targets.of(target)
                name = scenario if target == "ours" else FLOOR_OF.get(scenario, scenario)
                gc.collect()
                cpu, wall, pg = await measure(app, requests, name, n)
                samples[target].append(cpu)
                walls[target].append(wall)
                if pg is not None:
                    pgs[target].append(pg)
        ours, floor = statistics.median(samples["ours"]), statistics.median(samples["floor"])
        # Each round's pair ran seconds apart: their ratio carries less of the machine's drift.
        ratios = [f / o for o, f in zip(samples["ours"], samples["floor"], strict=True)]
        row = {
            "scenario": scenario,
            "ours_cpu_us": ours,
            "floor_cpu_us": floor,
            "ours_min_us": min(samples["ours"]),
            "floor_min_us": min(samples["floor"]),
            "floor_of": FLOOR_OF.get(scenario, scenario),
            "floor_over_ours": statistics.median(ratios),
            "ours_rounds": samples["ours"],
            "floor_rounds": samples["floor"],
            "ours_wall_us": statistics.median(walls["ours"]),
            "floor_wall_us": statistics.median(walls["floor"]),
        }
        if len(pgs["ours"]) == len(pgs["floor"]) == rounds:
            # With PostgreSQL's CPU: each round's pair again, (floor + its PG) / (ours + its PG).
            pairs = zip(samples["ours"], pgs["ours"], samples["floor"], pgs["floor"], strict=True)
            totals = [(f + fp) / (o + op) for o, op, f, fp in pairs]
            row.update(
                ours_pg_us=statistics.median(pgs["ours"]),
                floor_pg_us=statistics.median(pgs["floor"]),
                total_floor_over_ours=statistics.median(totals),
            )
        rows.append(row)
        print(_line(row), file=sys.stderr, flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    floor_name = "" if row["floor_of"] == row["scenario"] else f" ({row['floor_of']})"
    line = (
        f"{row['scenario']:<12} ours {row['ours_cpu_us']:7.1f} µs (min {row['ours_min_us']:.0f})"
        f"  floor{floor_name} {row['floor_cpu_us']:6.1f} µs (min {row['floor_min_us']:.0f})"
        f"  floor/ours {row['floor_over_ours']:.2f}"
    )
    if "total_floor_over_ours" in row:
        line += (
            f"  | + PostgreSQL: ours {row['ours_pg_us']:.0f}, floor {row['floor_pg_us']:.0f} µs;"
            f" floor/ours {row['total_floor_over_ours']:.2f}"
        )
    return line


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | ours CPU µs/req (min) | floor CPU µs/req (min) | floor / ours | ours wall µs |"
        " floor wall µs | + PostgreSQL's CPU µs: ours, floor | floor / ours with it |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        floor_name = "" if row["floor_of"] == row["scenario"] else f" ({row['floor_of']})"
        pg = (
            f"{row['ours_pg_us']:.0f}, {row['floor_pg_us']:.0f} | {row['total_floor_over_ours']:.2f}"
            if "total_floor_over_ours" in row
            else "- | -"
        )
        lines.append(
            f"| {row['scenario']} | {row['ours_cpu_us']:.0f} ({row['ours_min_us']:.0f})"
            f" | {row['floor_cpu_us']:.0f} ({row['floor_min_us']:.0f}){floor_name}"
            f" | {row['floor_over_ours']:.2f} | {row['ours_wall_us']:.0f} | {row['floor_wall_us']:.0f}"
            f" | {pg} |"
        )
    return "\n".join(lines)


async def profile(targets: Targets, scenario: str, n: int, target: str) -> str:
    app, requests = targets.of(target)
    name = scenario if target == "ours" else FLOOR_OF.get(scenario, scenario)
    await warm_up(targets, scenario, 200)
    batch = [requests.make(name) for _ in range(n)]
    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
    profiler.enable()
    for request in batch:
        await call(app, request)
    profiler.disable()
    out = io.StringIO()
    for order in ("cumulative", "tottime"):
        print(f"\n=== {target} {name}: {n} requests, top 30 by {order} ===", file=out)
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(30)
    return out.getvalue()


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        name: version(name)
        for name in ("fastapi", "starlette", "pydantic", "strawberry-graphql", "graphql-core", "asyncpg")
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    info = await prepare_database(args.database_url, args.reuse_db)
    running = await start(args.database_url, info, live=not args.no_live, extra=dict(args.set))
    try:
        print(" ".join(f"{k} {v}" for k, v in _versions().items()), file=sys.stderr)
        if args.profile:
            print(await profile(running.targets, args.profile, args.requests, args.target))
            return []
        rows = await run_scenarios(running.targets, args.scenarios, args.requests, args.rounds)
        print(table(rows))
        return rows
    finally:
        await running.stop()
        if args.drop:
            admin = await asyncpg.connect(benchdb.with_database(args.database_url, "postgres"))
            try:
                name = benchdb.database_name(args.database_url)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


def _setting(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {raw!r}")
    return name, value


def _scenario_list(raw: str) -> list[str]:
    names = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="dropped and recreated")
    parser.add_argument("--reuse-db", action="store_true", help="keep an already seeded database")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--scenarios", type=_scenario_list, default=list(SCENARIOS))
    parser.add_argument("--requests", type=int, default=500, help="per round and target")
    parser.add_argument("--rounds", type=int, default=8, help="alternating ours/floor; medians reported")
    parser.add_argument("--no-live", action="store_true", help="LIVE_UPDATES=false (bench: on)")
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a service setting for ours, e.g. --set ACCESS_LOG=false (repeatable)",
    )
    parser.add_argument("--profile", choices=SCENARIOS, help="cProfile one scenario instead")
    parser.add_argument("--target", choices=("ours", "floor"), default="ours", help="for --profile")
    parser.add_argument("--json", help="also write the rows here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    args = parse_args(argv)
    rows = asyncio.run(main_async(args))
    if args.json and rows:
        document = {"versions": _versions(), "requests": args.requests, "rows": rows}
        Path(args.json).write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
