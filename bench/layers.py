"""Instructions per request at each layer of the service, counted by callgrind.

    valgrind --tool=callgrind --callgrind-out-file=/tmp/layers.%p.out \\
        .venv/bin/python -m bench.layers --scenario rest_get --requests 200
    (callgrind_control must be on PATH: it comes with valgrind)

On a shared machine CPU times of one process move by 1.4x between runs
(docs/performance.md); the number of instructions the process executes for the same
requests does not. This runs bench.cpu's requests (same database, same app, same
tokens) at every depth of the ASGI stack: the whole app, then each middleware's inner
app down to the router, then the floor. Around each batch it zeroes callgrind's
counters and dumps them (callgrind_control -z / -d), and at the end reads the dumps
and prints instructions per request for each depth, and what each layer adds. The
difference between two depths is what that layer costs a request (its own code and
the response-wrapping it does); the router's figure holds routing, the endpoint, the
resolver and the database client. Counted: this process only (not PostgreSQL, not the
kernel), instructions (not cache misses). Under valgrind a request takes ~50x longer:
200 requests per depth take a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import cpu


def _callgrind(flag: str) -> None:
    subprocess.run(["callgrind_control", flag, str(os.getpid())], capture_output=True, check=False)
    time.sleep(0.5)  # callgrind acts on the request at its next check


def _depths(app: Any) -> list[tuple[str, Any]]:
    """The app, then each layer's inner app, down to the router."""
    depths: list[tuple[str, Any]] = [("app", app)]
    node = app.middleware_stack
    while node is not None:
        depths.append((type(node).__name__, node))
        if type(node).__name__.endswith("Router"):
            break
        node = getattr(node, "app", None)
    return depths


def _caller(app: Any, layer: Any) -> Any:
    async def call(request: cpu.Request) -> None:
        scope = cpu.scope_of(request, app)
        scope["app"] = app

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": request.body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            return None

        await layer(scope, receive, send)

    return call


async def run(args: argparse.Namespace) -> list[str]:
    info = await cpu.prepare_database(args.database_url, reuse=True)
    running = await cpu.start(args.database_url, info, live=True, extra={})
    names = []
    try:
        targets = running.targets
        app = targets.ours
        # Built on the first request: the middleware stack.
        status, body = await cpu.call(app, targets.ours_requests.make(args.scenario))
        cpu.check(args.scenario, status, body)
        floor_scenario = cpu.FLOOR_OF.get(args.scenario, args.scenario)
        runs = [
            (name, _caller(app, layer), targets.ours_requests, args.scenario) for name, layer in _depths(app)
        ]
        runs.append(("floor", lambda r: cpu.call(targets.floor, r), targets.floor_requests, floor_scenario))
        for name, call, requests, scenario in runs:
            for _ in range(50):
                await call(requests.make(scenario))
            batch = [requests.make(scenario) for _ in range(args.requests)]
            gc.collect()
            _callgrind("-z")
            for request in batch:
                await call(request)
            _callgrind("-d")
            names.append(name)
            print(f"measured {name}", file=sys.stderr, flush=True)
    finally:
        await running.stop()
    return names


def _totals(pid: int, out_dir: Path, pattern: str) -> list[int]:
    """Each dump's total instructions, in dump order."""
    prefix = pattern.replace("%p", str(pid))
    dumps = sorted(out_dir.glob(Path(prefix).name + ".*"), key=lambda p: int(p.suffix[1:]))
    totals = []
    for dump in dumps:
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                totals.append(int(line.split()[1]))
                break
    return totals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=cpu.DEFAULT_URL)
    parser.add_argument("--scenario", default="rest_get", choices=cpu.SCENARIOS)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--out", default="/tmp/layers.%p.out", help="the --callgrind-out-file given to valgrind"
    )
    args = parser.parse_args(argv)
    names = asyncio.run(run(args))
    totals = _totals(os.getpid(), Path(args.out).parent, args.out)
    if len(totals) != len(names):
        raise SystemExit(f"expected {len(names)} callgrind dumps, found {len(totals)}: run under valgrind")
    per_request = [t / args.requests / 1000 for t in totals]
    print(f"| {args.scenario}: depth | k instructions / request | this layer adds |")
    print("|---|---:|---:|")
    for i, (name, value) in enumerate(zip(names, per_request, strict=True)):
        inner = per_request[i + 1] if i + 1 < len(names) - 1 else None
        adds = f"{value - inner:.0f}" if inner is not None and name != "floor" else ""
        print(f"| {name} | {value:.0f} | {adds} |")


if __name__ == "__main__":
    main()
