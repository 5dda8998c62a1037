"""`python -m bench scale`: does list latency hold as the data grows?

For each dataset (default: the small preset, then the 1.1M-row `million` preset),
in its own database (`<name>_<preset>`), each target is started and probed with
single fixed requests under wrk (1 connection by default, i.e. pure latency):

  normal_list_rest   GET /api/tasks?limit=50 as a normal user (100 tasks)
  normal_list_gql    tasks(first: 50) / allTasks(condition, first: 50) as a normal user
  heavy_first_*      the heavy user's first page of 50
  heavy_deep_gql     the heavy user's page `--deep` rows in (default 90,000; capped at
                     90% of the heavy user's tasks), reached by walking the connection
                     with `after: endCursor` and then requested directly by cursor
  heavy_deep_offset  floor only: the same depth by OFFSET, as a naive reference

Comparisons printed: normal-user list at large vs small (same target/case), and
deep page vs first page for the heavy user (same target/dataset).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench import db, report
from bench.progress import Progress
from bench.run import (
    MEASURE_ERRORS,
    RUNS_DIR,
    int_list,
    log,
    migrate_with_ours,
    pick_targets,
)
from bench.servers import (
    Server,
    ensure_postgraphile,
    graphql,
    http_request,
    make_floor,
    make_ours,
    make_postgraphile,
)
from bench.tokens import HS256Issuer
from bench.wrk import ensure_wrk, run_wrk, write_data, wrk_version

NODE_FIELDS = "id title description completed priority dueDate"
PG_ORDER = "orderBy: CREATED_AT_DESC"
OURS_PAGE_MAX = 100  # GRAPHQL_MAX_FIRST in schema/query.py
PG_PAGE_MAX = 1000


def _gql(query: str) -> str:
    return json.dumps({"query": query}, separators=(",", ":"))


def _ours_page(first: int, after: str | None, fields: str = NODE_FIELDS) -> str:
    args = f"first: {first}" + (f', after: "{after}"' if after else "")
    return f"{{ tasks({args}) {{ nodes {{ {fields} }} pageInfo {{ endCursor hasNextPage }} }} }}"


def _pg_page(user: str, first: int, after: str | None, fields: str = NODE_FIELDS) -> str:
    args = f'condition: {{userId: "{user}"}}, first: {first}, {PG_ORDER}'
    if after:
        args += f', after: "{after}"'
    return f"{{ allTasks({args}) {{ nodes {{ {fields} }} pageInfo {{ endCursor hasNextPage }} }} }}"


def walk_cursor(server: Server, target: str, user: str, headers: dict[str, str], depth: int) -> str:
    """The endCursor after `depth` rows of `user`'s newest-first listing."""
    page = OURS_PAGE_MAX if target == "ours" else PG_PAGE_MAX
    after: str | None = None
    seen = 0
    bar = Progress(depth, f"  walking {target} cursor")
    while seen < depth:
        n = min(page, depth - seen)
        query = _ours_page(n, after, "id") if target == "ours" else _pg_page(user, n, after, "id")
        status, doc = graphql(server.port, query, headers)
        if status != 200 or doc.get("errors"):
            raise RuntimeError(f"cursor walk failed at {seen}: HTTP {status} {str(doc)[:300]}")
        conn = doc["data"]["tasks" if target == "ours" else "allTasks"]
        got = len(conn["nodes"])
        if not got or not conn["pageInfo"]["endCursor"]:
            raise RuntimeError(f"listing ended after {seen} rows, before depth {depth}")
        after = conn["pageInfo"]["endCursor"]
        seen += got
        bar.advance(got)
    bar.close()
    assert after is not None
    return after


def _cases(
    target: str,
    server: Server,
    normal: str,
    deep: int,
    token: Any,
) -> list[dict[str, Any]]:
    """(case name, request) pairs for one target."""
    heavy = db.HEAVY_USER
    cases: list[dict[str, Any]] = []

    def rest(name: str, user: str, path: str) -> None:
        headers = {"Authorization": f"Bearer {token(user)}"} if target == "ours" else {"X-User-Id": user}
        cases.append({"case": name, "method": "GET", "path": path, "headers": headers, "body": None})

    def gql(name: str, user: str, query: str) -> None:
        headers = {"Content-Type": "application/json"}
        if target == "ours":
            headers["Authorization"] = f"Bearer {token(user)}"
        cases.append(
            {
                "case": name,
                "method": "POST",
                "path": "/graphql",
                "headers": headers,
                "body": _gql(query),
                "graphql": True,
            }
        )

    if target in ("ours", "floor"):
        rest("normal_list_rest", normal, "/api/tasks?limit=50")
        rest("heavy_first_rest", heavy, "/api/tasks?limit=50")
    if target == "floor":
        rest("heavy_deep_offset", heavy, f"/api/tasks?limit=50&offset={deep}")
    if target in ("ours", "postgraphile"):

        def q(user: str, after: str | None) -> str:
            return _ours_page(50, after) if target == "ours" else _pg_page(user, 50, after)

        gql("normal_list_gql", normal, q(normal, None))
        gql("heavy_first_gql", heavy, q(heavy, None))
        headers = {"Authorization": f"Bearer {token(heavy)}"} if target == "ours" else {}
        cursor = walk_cursor(server, target, heavy, headers, deep)
        gql("heavy_deep_gql", heavy, q(heavy, cursor))
        cases[-1]["cursor"] = cursor
    return cases


def _sanity(server: Server, case: dict[str, Any]) -> str | None:
    body = case["body"].encode() if case["body"] else None
    status, raw = http_request(server.port, case["method"], case["path"], headers=case["headers"], body=body)
    if status != 200:
        return f"HTTP {status}: {raw[:200]!r}"
    doc = json.loads(raw)
    if case.get("graphql"):
        if doc.get("errors"):
            return f"GraphQL errors: {str(doc['errors'])[:200]}"
        conn = next(iter(doc["data"].values()))
        if not conn["nodes"]:
            return "no nodes"
    elif not doc:
        return "empty list"
    return None


def cmd_scale(args: argparse.Namespace) -> int:
    wrk = ensure_wrk()
    # PostGraphile v5 is not in the scale comparison (its deep-page walk is v4's).
    targets = pick_targets(args, allowed=("ours", "floor", "postgraphile"), ignored=("postgraphile5",))
    workers = int_list(args.workers)
    conns_list = int_list(args.conns)
    base = args.database_url or db.default_url()
    base_name = db.database_name(base)
    stamp = report.timestamp()
    run_dir = RUNS_DIR / f"scale-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    pg_version = ""
    if "postgraphile" in targets:
        try:
            pg_version = ensure_postgraphile()
        except Exception as exc:
            notes.append(f"postgraphile skipped: {exc}")
            targets.remove("postgraphile")
    hs = HS256Issuer()

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    presets = {"small": args.small_preset, "large": args.large_preset}
    rows: list[dict[str, Any]] = []
    datasets: list[dict[str, Any]] = []
    for size in sizes:
        preset = presets[size]
        spec = db.PRESETS[preset]
        url = db.with_database(base, f"{base_name}_{preset}")
        if args.reuse_db and db.run(db.database_exists(url)) and db.run(db.has_tasks_table(url)):
            log(f"reusing {url}")
            info = db.run(db.load_existing(url, spec, sample_users=1))
        else:
            log(f"\n### dataset {size} ({preset}): {spec.total_tasks:,} tasks into {url}")
            db.run(db.recreate_database(url, force=args.force_drop))
            if "ours" in targets:
                migrate_with_ours(url, hs, run_dir)
            else:
                db.run(db.create_bench_schema(url))
            info = db.run(db.seed(url, spec, sample_users=1))
            log(f"seeded {info.task_count:,} tasks in {info.seconds:.1f}s")
        deep = min(args.deep, int(spec.heavy_tasks * 0.9))
        datasets.append(
            {
                "size": size,
                "preset": preset,
                "database_url": url,
                "task_count": info.task_count,
                "heavy_tasks": spec.heavy_tasks,
                "deep": deep,
                "seed_seconds": round(info.seconds, 1),
            }
        )
        normal = next(iter(info.sample))
        for target in targets:
            for w in workers:
                if target == "ours":
                    server = make_ours(url, w, "hs256", hs.env(), run_dir, args.pool_size)
                elif target == "floor":
                    server = make_floor(url, w, run_dir, args.pool_size)
                else:
                    server = make_postgraphile(url, w, run_dir, args.pool_size)
                log(f"== {size}: {server.label} workers={w}")
                try:
                    server.start()
                except RuntimeError as exc:
                    notes.append(f"{size}: {server.label} failed to start: {exc}")
                    log(f"ERROR: {notes[-1]}")
                    continue
                try:
                    for case in _cases(target, server, normal, deep, hs.token):
                        problem = _sanity(server, case)
                        if problem:
                            notes.append(f"{size} {target} {case['case']}: {problem}")
                            log(f"  SKIP {case['case']}: {problem}")
                            continue
                        data = write_data(
                            run_dir / f"{size}-{target}-w{w}-{case['case']}.lua",
                            [case],
                            graphql=bool(case.get("graphql")),
                        )
                        target_url = f"http://127.0.0.1:{server.port}"
                        if args.warmup > 0:
                            run_wrk(
                                wrk,
                                script="fixed.lua",
                                data_file=data,
                                url=target_url,
                                conns=max(conns_list),
                                threads=args.threads,
                                duration=args.warmup,
                            )
                        for c in conns_list:
                            res = run_wrk(
                                wrk,
                                script="fixed.lua",
                                data_file=data,
                                url=target_url,
                                conns=c,
                                threads=args.threads,
                                duration=args.duration,
                            )
                            row = {
                                "dataset": size,
                                "tasks": info.task_count,
                                "target": target,
                                "workers": w,
                                "case": case["case"],
                                "depth": deep if "deep" in case["case"] else 0,
                                **res,
                            }
                            rows.append(row)
                            log(
                                f"  {case['case']:<18} c={c:<3} {res['rps']:>8,.0f} req/s"
                                f"  p50 {res['latency_us']['p50'] / 1000:7.2f} ms"
                                f"  p99 {res['latency_us']['p99'] / 1000:7.2f} ms"
                            )
                except MEASURE_ERRORS as exc:
                    notes.append(f"{size} {target}: {exc}")
                    log(f"ERROR: {notes[-1]}")
                finally:
                    server.stop()

    comparisons = _comparisons(rows)
    print()
    print(tables(rows, comparisons))
    for note in notes:
        print(f"note: {note}")
    doc = {
        "kind": "scale",
        "timestamp": stamp,
        "environment": {**report.environment(), "wrk": wrk_version(wrk), "postgraphile": pg_version},
        "settings": {
            "targets": targets,
            "workers": workers,
            "conns": conns_list,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "threads": args.threads,
        },
        "datasets": datasets,
        "runs": rows,
        "comparisons": comparisons,
        "notes": notes,
    }
    path = report.write_json(doc, f"scale-{stamp}", Path(args.results_dir))
    print(f"\nresults: {path}")
    return 0


def tables(rows: list[dict[str, Any]], comparisons: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """The measurements, then the comparisons (ratios of latency)."""
    out = _table(rows, markdown=markdown)
    if comparisons:
        out += "\n\ncomparisons (ratio of p50 / p99 latency; 1.0 = no slowdown)\n\n" + report.fmt_table(
            ["what", "target", "workers", "conns", "p50 x", "p99 x", "p50 ms a->b"],
            [
                [
                    c["what"],
                    c["target"],
                    str(c["workers"]),
                    str(c["conns"]),
                    f"{c['p50_ratio']:.2f}",
                    f"{c['p99_ratio']:.2f}",
                    f"{c['p50_a_ms']:.2f} -> {c['p50_b_ms']:.2f}",
                ]
                for c in comparisons
            ],
            markdown=markdown,
        )
    return out


def _table(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    return report.fmt_table(
        ["dataset", "target", "tasks", "case", "workers", "conns", "req/s", "p50 ms", "p99 ms", "errors"],
        [
            [
                r["dataset"],
                r["target"],
                f"{r['tasks']:,}",
                r["case"],
                str(r["workers"]),
                str(r["conns"]),
                f"{r['rps']:,.0f}",
                f"{r['latency_us']['p50'] / 1000:.2f}",
                f"{r['latency_us']['p99'] / 1000:.2f}",
                str(report.errors_of(r)),
            ]
            for r in rows
        ],
        markdown=markdown,
    )


def _comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    idx = {(r["dataset"], r["target"], r["workers"], r["conns"], r["case"]): r for r in rows}
    out = []

    def add(what: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> None:
        if not a or not b:
            return
        la, lb = a["latency_us"], b["latency_us"]
        out.append(
            {
                "what": what,
                "target": b["target"],
                "workers": b["workers"],
                "conns": b["conns"],
                "p50_a_ms": la["p50"] / 1000,
                "p50_b_ms": lb["p50"] / 1000,
                "p50_ratio": lb["p50"] / max(la["p50"], 1),
                "p99_ratio": lb["p99"] / max(la["p99"], 1),
            }
        )

    for (ds, t, w, c, case), r in idx.items():
        if ds == "large" and case.startswith("normal_list"):
            add(f"{case}: small -> large", idx.get(("small", t, w, c, case)), r)
        if case in ("heavy_deep_gql", "heavy_deep_offset"):
            first = "heavy_first_gql" if case == "heavy_deep_gql" else "heavy_first_rest"
            add(f"{ds}: {first} -> {case} ({r['depth']:,} deep)", idx.get((ds, t, w, c, first)), r)
    return out
