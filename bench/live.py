"""Live updates bench: delivery latency with 1,000 open subscribers, and what announcing
costs the write scenarios.

    uv run python -m bench.live                 # defaults below, ~5 minutes
    uv run python -m bench.live --rounds 1 --duration 5 --latency-seconds 10

What it does (see bench/README.md, "Live updates"):

1. Recreates the database `todo_bench_live` (on the bench's PostgreSQL, see bench/db.py),
   migrates it and seeds `--users` users with `--tasks` tasks each (plain SQL: nothing
   announced).
2. Starts the service twice (`todo-api serve`, one worker each, HS256 tokens): `off`
   with LIVE_UPDATES=false (writes announce nothing, nobody listens) and `on` (writes
   announce, after their commit by default (LIVE_ANNOUNCE, db/announce.py; the bench
   passes the environment's LIVE_ANNOUNCE on); the process LISTENs).
3. Subscribers: a separate process (`python -m bench.live subscribers`) opens
   `--subscribers` SSE streams to `on`, spread evenly over the users (10 each by
   default), over raw asyncio sockets, and times every change it receives: latency =
   arrival (wall clock) - the change's `at`, the time the writing statement ran, just
   before its commit (same machine, same clock). So: commit -> (after-commit announcing:
   the process's NOTIFY) -> PostgreSQL -> the service's LISTEN connection -> fan-out ->
   SSE -> client.
4. Latency: writes (creates) paced at each `--rates` per second, open loop, to random
   subscribed users, for `--latency-seconds` each; every write reaches that user's 10
   streams. p50/p90/p99/max over all deliveries.
5. Write cost: wrk (`bench/lua/rest_create.lua`, `rest_toggle.lua`) against `off`,
   `on` without subscribers, and `on` with the subscribers connected (each write then
   fans out to 10 streams, and the subscriber process's CPU is on the same 2 cores),
   `--rounds` times in turn; the median round's req/s and latency are reported, and the
   deliveries' latency during the saturating load.

Everything shares one machine: wrk, the service, PostgreSQL and the subscriber process.
Results are printed and written to bench/results/live-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from bench import db
from bench.report import environment, fmt_table, timestamp, write_json
from bench.servers import REPO_ROOT, Server, _proc_children, free_port, http_request
from bench.tokens import HS256Issuer
from bench.wrk import ensure_wrk, run_wrk, write_data

DATABASE = "todo_bench_live"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RUNS_DIR = Path(__file__).resolve().parent / ".runs"


def log(message: str) -> None:
    print(f"[live] {message}", file=sys.stderr, flush=True)


# -- subscribers (a child process) ------------------------------------------------------


class Subscribers:
    """`python -m bench.live subscribers`: many SSE streams, their delivery latencies."""

    def __init__(self, port: int, tokens: list[str], per_user: int) -> None:
        self.port = port
        self.tokens = tokens
        self.per_user = per_user
        self.samples: list[float] = []
        self.resyncs = 0
        self.ended = 0
        self.ready = 0

    async def run(self) -> None:
        streams = [
            asyncio.create_task(self.stream(token)) for token in self.tokens for _ in range(self.per_user)
        ]
        total = len(streams)
        while self.ready < total:
            if any(s.done() for s in streams):
                for s in streams:
                    if s.done() and s.exception():
                        raise s.exception()  # type: ignore[misc]
            await asyncio.sleep(0.05)
        print(json.dumps({"ready": total}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while command := (await reader.readline()).decode().strip():
            if command == "reset":
                self.samples, self.resyncs = [], 0
                print(json.dumps({"reset": True}), flush=True)
            elif command == "report":
                print(json.dumps(self.report()), flush=True)
        for s in streams:
            s.cancel()

    def report(self) -> dict[str, Any]:
        samples = sorted(self.samples)
        n = len(samples)

        def pct(p: float) -> float:
            return round(samples[min(n - 1, int(n * p / 100))] * 1000, 2) if n else 0.0

        return {
            "deliveries": n,
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "max_ms": round(samples[-1] * 1000, 2) if n else 0.0,
            "resyncs": self.resyncs,
            "ended": self.ended,
        }

    async def stream(self, token: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            (
                "GET /api/tasks/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream refused: {status!r} {await reader.read(500)!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        pending = b""
        try:
            while True:
                size_line = await reader.readline()
                if not size_line:
                    break
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    break
                chunk = await reader.readexactly(size + 2)
                arrived = time.time()
                pending += chunk[:-2]
                *events, pending = pending.split(b"\n\n")
                for event in events:
                    self.on_event(event, arrived)
        finally:
            self.ended += 1
            writer.close()

    def on_event(self, event: bytes, arrived: float) -> None:
        kind, data = b"", b""
        for line in event.split(b"\n"):
            if line.startswith(b"event: "):
                kind = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if kind == b"ready":
            self.ready += 1
        elif kind == b"resync":
            self.resyncs += 1
        elif data:
            at = json.loads(data)["at"]
            self.samples.append(arrived - datetime.fromisoformat(at).timestamp())


def subscribers_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.live subscribers")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tokens-file", required=True)
    p.add_argument("--per-user", type=int, default=10)
    args = p.parse_args(argv)
    tokens = json.loads(Path(args.tokens_file).read_text())
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(Subscribers(args.port, tokens, args.per_user).run())


class SubscriberProcess:
    def __init__(self, port: int, tokens: list[str], per_user: int, run_dir: Path) -> None:
        tokens_file = run_dir / "tokens.json"
        tokens_file.write_text(json.dumps(tokens))
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.live", "subscribers", "--port", str(port)),
                *("--tokens-file", str(tokens_file), "--per-user", str(per_user)),
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started = time.monotonic()
        ready = self._read()
        self.count = int(ready["ready"])
        log(f"{self.count} subscribers connected in {time.monotonic() - started:.1f}s")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the subscriber process exited ({self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(self, name: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# -- the orchestration -----------------------------------------------------------------


async def seed(url: str, users: list[str], tasks: int) -> dict[str, list[int]]:
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany("INSERT INTO users (id) VALUES ($1)", [(u,) for u in users])
        rows = [(u, f"seeded {i}") for u in users for i in range(tasks)]
        await conn.copy_records_to_table("tasks", records=rows, columns=["user_id", "title"])
        ids: dict[str, list[int]] = {u: [] for u in users}
        for r in await conn.fetch("SELECT id, user_id FROM tasks ORDER BY id"):
            ids[r["user_id"]].append(r["id"])
        return ids
    finally:
        await conn.close()


ANNOUNCE_MODES = ("off", "in_transaction", "after_commit")


async def statement_throughput(url: str, users: list[str], *, mode: str, conns: int, seconds: float) -> float:
    """Creates per second through db.queries on a pool of `conns` connections, `conns`
    at a time (no service, nobody listening): the database's side of announcing, `mode`
    one of ANNOUNCE_MODES (LIVE_UPDATES=false, or LIVE_ANNOUNCE's two)."""
    from db import queries
    from db.announce import Announcer
    from db.engine import create_database
    from db.url import DatabaseURL

    database = await create_database(
        DatabaseURL.parse(url),
        min_size=conns + 1,
        max_size=conns + 1,  # one more: the announcer's NOTIFY
        pooled=False,
        connect_timeout=10,
        acquire_timeout=10,
        statement_timeout=10,
    )
    database.announce = mode != "off"
    if mode == "after_commit":
        database.announcer = Announcer(database)
    done = 0
    stop = time.monotonic() + seconds
    values = {"title": "db", "description": None, "completed": False, "priority": "low", "due_date": None}

    async def worker(n: int) -> None:
        nonlocal done
        while time.monotonic() < stop:
            await queries.create_task(database, (users[n % len(users)], None, None), values)
            done += 1

    try:
        await asyncio.gather(*(worker(n) for n in range(conns)))
    finally:
        await database.close()
    return done / seconds


def service(name: str, url: str, hs: HS256Issuer, live: bool, run_dir: Path, pool: int) -> Server:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "APP_ENV": "development",
        "DATABASE_URL": url,
        "MIGRATE_ON_START": "false",
        "DB_POOL_MAX_SIZE": str(pool),
        "ACCESS_LOG": "false",
        "LIVE_UPDATES": "true" if live else "false",
        "LIVE_ANNOUNCE": os.environ.get("LIVE_ANNOUNCE", "after_commit"),
        "LIVE_MAX_STREAMS": "100000",
        "LIVE_MAX_STREAMS_PER_USER": "1000",
        "DATA_DIR": str(run_dir / f"data-{name}"),
        **hs.env(),
    }
    cmd = [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return Server(
        name=name,
        variant="",
        workers=1,
        cmd=cmd,
        env=env,
        ready=lambda p: http_request(p, "GET", "/readyz", timeout=2.0)[0] == 200,
        port=port,
        log_path=run_dir / f"{name}.log",
    )


async def paced_writes(port: int, tokens: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Creates at `rate` per second (open loop: the schedule does not wait for answers)."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:

        async def write(i: int) -> None:
            token = random.choice(tokens)
            r = await client.post(
                "/api/tasks", json={"title": f"live {i}"}, headers={"Authorization": f"Bearer {token}"}
            )
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        started = time.monotonic()
        pending = []
        for i in range(int(rate * seconds)):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(write(i)))
        await asyncio.gather(*pending)
    return {"writes": sum(statuses.values()), "statuses": statuses}


def cpu_seconds(root: int | None) -> float:
    """User + system CPU time of `root` and its descendants so far (from /proc)."""
    if root is None:
        return 0.0
    children = _proc_children()
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


def wrk_entries(hs: HS256Issuer, ids: dict[str, list[int]]) -> list[dict[str, Any]]:
    entries = []
    for user, task_ids in ids.items():
        body = json.dumps({"title": "bench NUMBER"})
        prefix, suffix = body.split("NUMBER")
        entries.append(
            {
                "id": user,
                "headers": {"Authorization": f"Bearer {hs.token(user)}", "Content-Type": "application/json"},
                "ids": task_ids,
                "body_prefix": prefix,
                "body_suffix": suffix,
            }
        )
    return entries


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["subscribers"]:
        subscribers_main(argv[1:])
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--tasks", type=int, default=20, help="seeded tasks per user (toggle targets)")
    p.add_argument("--rates", default="20,100", help="paced creates per second for the latency runs")
    p.add_argument("--latency-seconds", type=float, default=15)
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk measurement")
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pool-size", type=int, default=10)
    p.add_argument("--database-url", default=None, help=f"default: the bench server, database {DATABASE}")
    args = p.parse_args(argv)
    if args.subscribers % args.users:
        p.error("--subscribers must be a multiple of --users")
    per_user = args.subscribers // args.users

    wrk = ensure_wrk()
    url = args.database_url or db.with_database(db.default_url(), DATABASE)
    run_dir = RUNS_DIR / f"live-{timestamp()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    log(f"database {urlsplit(url).path.lstrip('/')}: recreating, migrating, seeding")
    db.run(db.recreate_database(url))
    from db.migrations import run_migrations
    from db.url import DatabaseURL

    db.run(run_migrations(DatabaseURL.parse(url)))
    users = [f"live-user-{i:03d}" for i in range(args.users)]
    ids = db.run(seed(url, users, args.tasks))
    hs = HS256Issuer()
    tokens = [hs.token(u) for u in users]
    data_file = write_data(run_dir / "users.lua", wrk_entries(hs, ids), graphql=False)

    # -- the database's side: the same insert with and without its announcement
    result_db: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for mode in ANNOUNCE_MODES if round_no % 2 == 0 else ANNOUNCE_MODES[::-1]:
            for conns in (1, args.pool_size):
                rate = db.run(statement_throughput(url, users, mode=mode, conns=conns, seconds=5))
                result_db.append({"round": round_no, "mode": mode, "conns": conns, "inserts_per_s": rate})
                log(f"round {round_no + 1} statement {mode} conns={conns}: {rate:.0f} inserts/s")

    servers = {
        "off": service("off", url, hs, False, run_dir, args.pool_size),
        "on": service("on", url, hs, True, run_dir, args.pool_size),
    }
    result: dict[str, Any] = {
        "environment": environment(),
        "settings": {k: v for k, v in vars(args).items()},
        "latency": [],
        "throughput": [],
        "statements": result_db,
    }
    subscribers: SubscriberProcess | None = None
    try:
        for server in servers.values():
            server.start()
        on_port = servers["on"].port

        # -- delivery latency at a steady write rate
        subscribers = SubscriberProcess(on_port, tokens, per_user, run_dir)
        for rate in (float(r) for r in args.rates.split(",")):
            subscribers.command("reset")
            writes = db.run(paced_writes(on_port, tokens, rate, args.latency_seconds))
            time.sleep(1.0)  # the last deliveries
            report = {"rate": rate, **writes, **subscribers.command("report")}
            result["latency"].append(report)
            log(f"latency at {rate:g} writes/s: {report}")
        subscribers.stop()
        subscribers = None

        # -- what announcing costs the writes
        configs = ("off", "on_idle", "on_listeners")
        for round_no in range(args.rounds):
            order = configs if round_no % 2 == 0 else tuple(reversed(configs))
            for config in order:
                port = servers["off" if config == "off" else "on"].port
                if config == "on_listeners":
                    subscribers = SubscriberProcess(on_port, tokens, per_user, run_dir)
                for scenario in ("rest_create", "rest_toggle"):
                    target = f"http://127.0.0.1:{port}"

                    def measure(seconds: float, script: str = f"{scenario}.lua", target: str = target) -> Any:
                        return run_wrk(
                            wrk,
                            script=script,
                            data_file=data_file,
                            url=target,
                            conns=args.conns,
                            threads=2,
                            duration=seconds,
                        )

                    measure(args.warmup)
                    if subscribers is not None:
                        subscribers.command("reset")
                    server_pid = servers["off" if config == "off" else "on"].proc
                    server_root = None if server_pid is None else server_pid.pid
                    client_root = None if subscribers is None else subscribers.proc.pid
                    cpu_before = cpu_seconds(server_root), cpu_seconds(client_root)
                    measured = measure(args.duration)
                    cpu_after = cpu_seconds(server_root), cpu_seconds(client_root)
                    per_request = 1000 / max(1, measured["requests"])
                    entry = {
                        "round": round_no,
                        "config": config,
                        "scenario": scenario,
                        **measured,
                        "service_cpu_ms_per_request": (cpu_after[0] - cpu_before[0]) * per_request,
                        "subscribers_cpu_ms_per_request": (cpu_after[1] - cpu_before[1]) * per_request,
                    }
                    if subscribers is not None:
                        time.sleep(1.0)
                        entry["deliveries"] = subscribers.command("report")
                    result["throughput"].append(entry)
                    log(
                        f"round {round_no + 1} {config:12} {scenario:11} {measured['rps']:8.1f} req/s"
                        f" p50 {measured['latency_us']['p50'] / 1000:.1f} ms"
                        f" p99 {measured['latency_us']['p99'] / 1000:.1f} ms"
                        + (f" deliveries {entry['deliveries']}" if "deliveries" in entry else "")
                    )
                if subscribers is not None:
                    subscribers.stop()
                    subscribers = None
    finally:
        if subscribers is not None:
            subscribers.stop()
        for server in servers.values():
            server.stop()

    result["summary"] = summarize(result)
    path = write_json(result, f"live-{timestamp()}")
    print(render(result))
    print(f"\nwritten to {path}")
    return 0


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for scenario in ("rest_create", "rest_toggle"):
        for config in ("off", "on_idle", "on_listeners"):
            runs = [r for r in result["throughput"] if r["scenario"] == scenario and r["config"] == config]
            if not runs:
                continue
            mid = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
            rows.append(
                {
                    "scenario": scenario,
                    "config": config,
                    "rps": round(median(r["rps"] for r in runs), 1),
                    "p50_ms": mid["latency_us"]["p50"] / 1000,
                    "p99_ms": mid["latency_us"]["p99"] / 1000,
                    "errors": sum(r["non2xx"] + sum(r["errors"].values()) for r in runs),
                    "service_cpu_ms": round(median(r["service_cpu_ms_per_request"] for r in runs), 3),
                    "subscribers_cpu_ms": round(median(r["subscribers_cpu_ms_per_request"] for r in runs), 3),
                    "deliveries": mid.get("deliveries"),
                }
            )
    return rows


def render(result: dict[str, Any]) -> str:
    latency = fmt_table(
        ["writes/s", "writes", "deliveries", "p50 ms", "p90 ms", "p99 ms", "max ms", "resyncs"],
        [
            [
                f"{r['rate']:g}",
                str(r["writes"]),
                str(r["deliveries"]),
                f"{r['p50_ms']:.1f}",
                f"{r['p90_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['max_ms']:.1f}",
                str(r["resyncs"]),
            ]
            for r in result["latency"]
        ],
        markdown=True,
    )
    base = {r["scenario"]: r["rps"] for r in result["summary"] if r["config"] == "off"}
    rows = []
    for r in result["summary"]:
        d = r["deliveries"] or {}
        rows.append(
            [
                r["scenario"],
                r["config"],
                f"{r['rps']:.0f}",
                f"{r['rps'] / base[r['scenario']]:.2f}" if base.get(r["scenario"]) else "",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                str(r["errors"]),
                f"{r['service_cpu_ms']:.2f}",
                f"{r['subscribers_cpu_ms']:.2f}" if d else "",
                f"{d.get('p50_ms', 0):.0f} / {d.get('p99_ms', 0):.0f}" if d else "",
            ]
        )
    throughput = fmt_table(
        [
            "scenario",
            "config",
            "req/s",
            "vs off",
            "p50 ms",
            "p99 ms",
            "errors",
            "service CPU ms/write",
            "subscribers CPU ms/write",
            "delivery p50 / p99 ms",
        ],
        rows,
        markdown=True,
    )

    def mode_of(row: dict[str, Any]) -> str:
        # Results from before LIVE_ANNOUNCE record `announce` (inside the write) instead.
        return str(row["mode"]) if "mode" in row else ("in_transaction" if row["announce"] else "off")

    rows_db = result["statements"]
    modes = [m for m in ANNOUNCE_MODES if any(mode_of(r) == m for r in rows_db)]

    def rate(conns: int, mode: str) -> float:
        chosen = [r["inserts_per_s"] for r in rows_db if r["conns"] == conns and mode_of(r) == mode]
        return float(median(chosen))

    statements = fmt_table(
        ["connections", *(f"{m} inserts/s" for m in modes), *(f"{m} / off" for m in modes[1:])],
        [
            [
                str(c),
                *(f"{rate(c, m):.0f}" for m in modes),
                *(f"{rate(c, m) / rate(c, 'off'):.2f}" for m in modes[1:]),
            ]
            for c in sorted({r["conns"] for r in rows_db})
        ],
        markdown=True,
    )
    return (
        f"Delivery latency (commit -> SSE client)\n\n{latency}\n\nWrite throughput\n\n{throughput}"
        "\n\nThe insert alone (db.queries on a pool, no service, nobody listening; median of rounds)"
        f"\n\n{statements}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
