"""`python -m bench` (run): seed, then every scenario x target x workers x connections."""

from __future__ import annotations

import argparse
import fnmatch
import http.client
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import db, report
from bench.pgbouncer import PgBouncer, ensure_pgbouncer, pgbouncer_version
from bench.scenarios import (
    LIST_SIZE,
    OURS_TARGETS,
    POSTGRAPHILES,
    ROW_KEY,
    SCENARIOS,
    Scenario,
    base_target,
    check,
    compare_lists,
    user_entries,
)
from bench.servers import (
    BENCH_DIR,
    Server,
    ensure_postgraphile,
    ensure_postgraphile5,
    make_floor,
    make_ours,
    make_postgraphile,
    make_postgraphile5,
    node_version,
)
from bench.tokens import EdDSAIssuer, HS256Issuer
from bench.wrk import ensure_wrk, run_wrk, write_data, wrk_version

ALL_TARGETS = ("ours", "ours_pooled", "floor", "postgraphile", "postgraphile5")
# Other names accepted by --targets: postgraphile is v4.
TARGET_ALIASES = {"postgraphile4": "postgraphile"}
# What a single scenario may raise without ending the whole run.
MEASURE_ERRORS = (
    RuntimeError,
    OSError,
    http.client.HTTPException,
    subprocess.SubprocessError,
    KeyError,
    TypeError,
    ValueError,
)
RUNS_DIR = BENCH_DIR / ".runs"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def pick_targets(
    args: argparse.Namespace,
    allowed: tuple[str, ...] = ALL_TARGETS,
    ignored: tuple[str, ...] = (),
) -> list[str]:
    """--targets, in `allowed` order; names in `ignored` (targets this command does not
    run, e.g. postgraphile5 for scale) are dropped with a message instead of refused."""
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    targets = [TARGET_ALIASES.get(t, t) for t in targets]
    for name in sorted(set(targets) & set(ignored)):
        log(f"note: target {name} is not measured by this command; ignored")
    targets = [t for t in targets if t not in ignored]
    unknown = set(targets) - set(allowed)
    if unknown:
        raise SystemExit(f"unknown target(s) {sorted(unknown)}; choose from {allowed}")
    if args.skip_postgraphile:
        targets = [t for t in targets if t not in POSTGRAPHILES]
    return [t for t in allowed if t in targets]


def pick_scenarios(pattern: str | None) -> list[Scenario]:
    if not pattern:
        return list(SCENARIOS)
    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    chosen = [s for s in SCENARIOS if any(fnmatch.fnmatchcase(s.name, p) for p in pats)]
    if not chosen:
        raise SystemExit(f"--scenarios {pattern!r} matches none of {[s.name for s in SCENARIOS]}")
    return chosen


def resolve_spec(args: argparse.Namespace) -> db.SeedSpec:
    base = db.PRESETS[args.preset]
    return db.SeedSpec(
        users=base.users if args.users is None else args.users,
        tasks_per_user=base.tasks_per_user if args.tasks_per_user is None else args.tasks_per_user,
        heavy_tasks=base.heavy_tasks if args.heavy_tasks is None else args.heavy_tasks,
    )


async def vacuum(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE) tasks")
    finally:
        await conn.close()


def migrate_with_ours(url: str, hs: HS256Issuer, log_dir: Path) -> None:
    """Let the service create its schema (it migrates at startup), then stop it."""
    server = make_ours(url, 1, "migrate", hs.env(), log_dir)
    log("starting the service once to apply its migrations ...")
    try:
        server.start(timeout=120)
    except RuntimeError as exc:
        raise SystemExit(
            f"could not start the service to migrate the database: {exc}\n"
            "(to bench without it: --targets floor,postgraphile)"
        ) from None
    finally:
        server.stop()


def prepare_database(
    url: str, spec: db.SeedSpec, targets: list[str], args: argparse.Namespace, log_dir: Path
) -> db.SeedInfo:
    hs = HS256Issuer()
    if args.reuse_db and db.run(db.database_exists(url)) and db.run(db.has_tasks_table(url)):
        log(f"reusing {url} as seeded (--reuse-db)")
        return db.run(db.load_existing(url, spec))  # type: ignore[no-any-return]
    log(f"recreating database {db.database_name(url)} ...")
    db.run(db.recreate_database(url, force=args.force_drop))
    if any(t in OURS_TARGETS for t in targets):
        migrate_with_ours(url, hs, log_dir)
    else:
        db.run(db.create_bench_schema(url))
    log(
        f"seeding {spec.users:,} users x {spec.tasks_per_user:,} tasks"
        f" + 1 heavy user x {spec.heavy_tasks:,} = {spec.total_tasks:,} tasks"
    )
    info: db.SeedInfo = db.run(db.seed(url, spec))
    log(f"seeded {info.task_count:,} tasks in {info.seconds:.1f}s")
    return info


def _participants(scenario: Scenario, targets: list[str]) -> list[tuple[str, str]]:
    """(target, variant) pairs that serve the scenario, in target order."""
    return [
        (t, scenario.auth if t in OURS_TARGETS else "") for t in targets if base_target(t) in scenario.targets
    ]


def _median_run(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median req/s (its latencies go with it), plus every round's req/s."""
    ordered = sorted(samples, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rounds_rps"] = [r["rps"] for r in samples]
    return chosen


def cmd_run(args: argparse.Namespace) -> int:
    wrk = ensure_wrk()
    targets = pick_targets(args)
    scenarios = pick_scenarios(args.scenarios)
    workers = int_list(args.workers)
    conns_list = int_list(args.conns)
    spec = resolve_spec(args)
    url = args.database_url or db.default_url()
    stamp = report.timestamp()
    run_dir = RUNS_DIR / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []

    pg_version = ""
    if "postgraphile" in targets:
        try:
            pg_version = ensure_postgraphile()
        except Exception as exc:  # npm missing, offline, ...
            notes.append(f"postgraphile skipped: {exc}")
            log(f"WARNING: {notes[-1]}")
            targets.remove("postgraphile")
    pg5_version = pg5_node = ""
    if "postgraphile5" in targets:
        try:
            pg5_version, pg5_node = ensure_postgraphile5()
        except Exception as exc:  # npm missing, offline, no Node 22 for this platform ...
            notes.append(f"postgraphile5 skipped: {exc}")
            log(f"WARNING: {notes[-1]}")
            targets.remove("postgraphile5")
    pgbouncer_bin = ""
    if "ours_pooled" in targets:
        try:
            pgbouncer_bin = ensure_pgbouncer()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            notes.append(f"ours_pooled skipped: {exc}")
            log(f"WARNING: {notes[-1]}")
            targets.remove("ours_pooled")

    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        notes.append(
            f"1-minute load average was {load1:.2f} at start: other work on this machine"
            " will skew the numbers"
        )
        log(f"WARNING: {notes[-1]}")
    env_at_start = report.environment()
    info = prepare_database(url, spec, targets, args, run_dir)
    hs = HS256Issuer()
    has_ours = any(t in OURS_TARGETS for t in targets)
    eddsa = EdDSAIssuer() if any(s.auth == "eddsa" for s in scenarios) and has_ours else None
    issuers: dict[str, Any] = {"hs256": hs, "eddsa": eddsa}
    urls = {t: url for t in targets}
    bouncer: PgBouncer | None = None
    if "ours_pooled" in targets:
        bouncer = _start_pgbouncer(pgbouncer_bin, url, scenarios, workers, args, run_dir)
        if bouncer is None:
            notes.append(f"ours_pooled skipped: pgbouncer did not start (see {run_dir / 'pgbouncer.log'})")
            targets.remove("ours_pooled")
        else:
            urls["ours_pooled"] = bouncer.pooled_url(url)
    pooler: dict[str, Any] = {}

    runs: list[dict[str, Any]] = []
    servers_out: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    first_pages: dict[str, Any] = {}
    started = time.monotonic()
    try:
        for w in workers:
            _measure_workers(
                w,
                targets=targets,
                scenarios=scenarios,
                conns_list=conns_list,
                args=args,
                wrk=wrk,
                url=url,
                urls=urls,
                info=info,
                issuers=issuers,
                run_dir=run_dir,
                out=_Out(runs, servers_out, checks, first_pages, notes),
                node5=pg5_node,
            )
    except KeyboardInterrupt:
        notes.append("interrupted: partial results")
        log("\ninterrupted; reporting what was measured")
    finally:
        if eddsa is not None:
            eddsa.close()
        if bouncer is not None:
            pooler = {
                "pgbouncer": pgbouncer_version(bouncer.binary),
                "settings": bouncer.settings,
                "ours_pooled_url": urls["ours_pooled"],
                "rss": bouncer.rss(),
                "log": str(bouncer.log_path),
            }
            bouncer.stop()

    consistency: list[str] = []
    if "ours" in first_pages and "floor" in first_pages:
        (u1, a), (u2, b) = first_pages["ours"], first_pages["floor"]
        if u1 == u2:
            consistency = compare_lists(a, b)
            if consistency:
                notes.append(f"ours and floor list responses differ: {consistency[:3]}")
    if "ours" in first_pages and "ours_pooled" in first_pages:
        (u1, a), (u2, b) = first_pages["ours"], first_pages["ours_pooled"]
        pooled_diff = compare_lists(a, b) if u1 == u2 else []
        if pooled_diff:
            notes.append(f"ours and ours_pooled list responses differ: {pooled_diff[:3]}")
    if "gql:postgraphile" in first_pages and "gql:postgraphile5" in first_pages:
        (u1, a), (u2, b) = first_pages["gql:postgraphile"], first_pages["gql:postgraphile5"]
        if u1 == u2 and a != b:
            notes.append(f"PostGraphile v4 and v5 list different tasks for {u1}: {a[:5]} vs {b[:5]}")

    ratios = report.compute_ratios(runs)
    latency = report.latency_rows(runs)
    print()
    print(report.text_report(runs, ratios, servers_out))
    for note in notes:
        print(f"note: {note}")

    doc = {
        "timestamp": stamp,
        "elapsed_s": round(time.monotonic() - started, 1),
        "environment": {
            **env_at_start,
            "wrk": wrk_version(wrk),
            "postgraphile": pg_version,
            "postgraphile5": pg5_version,
            "postgraphile5_node": node_version(pg5_node) if pg5_node else "",
            "pgbouncer": pooler.get("pgbouncer", ""),
        },
        "settings": {
            "database_url": url,
            "targets": targets,
            "scenarios": [s.name for s in scenarios],
            "workers": workers,
            "conns": conns_list,
            "threads": args.threads,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "pool_size": args.pool_size,
            "ours_cmd": os.environ.get("BENCH_OURS_CMD", ""),
            "seed": {
                "users": spec.users,
                "tasks_per_user": spec.tasks_per_user,
                "heavy_tasks": spec.heavy_tasks,
                "task_count": info.task_count,
                "seed_seconds": round(info.seconds, 1),
                "sampled_users": len(info.sample),
                "writers": len(info.writers),
            },
        },
        "runs": runs,
        "ratios": ratios,
        "graphql_ratios": report.graphql_ratio_rows(ratios),
        "latency": latency,
        "servers": servers_out,
        "pooler": pooler,
        "checks": checks,
        "consistency_ours_vs_floor": consistency,
        "notes": notes,
    }
    path = report.write_json(doc, stamp, Path(args.results_dir))
    print(f"\nresults: {path}")
    return 0


def _start_pgbouncer(
    binary: str,
    url: str,
    scenarios: list[Scenario],
    workers: list[int],
    args: argparse.Namespace,
    run_dir: Path,
) -> PgBouncer | None:
    """PgBouncer (transaction mode) for ours_pooled, once for the whole run. Its server
    pool covers every ours_pooled server at once (one per auth variant), so requests
    never queue in the pooler for want of a PostgreSQL connection."""
    variants = {sc.auth for sc in scenarios if "ours" in sc.targets} or {"hs256"}
    pool = max(workers) * args.pool_size * len(variants)
    bouncer = PgBouncer(binary, url, pool_size=pool, log_path=run_dir / "pgbouncer.log")
    try:
        bouncer.start()
    except RuntimeError as exc:
        log(f"ERROR: pgbouncer: {exc}")
        return None
    log(f"pgbouncer (transaction mode, default_pool_size {pool}) on 127.0.0.1:{bouncer.port}")
    return bouncer


def _make_server(
    target: str,
    variant: str,
    workers: int,
    url: str,
    issuers: dict[str, Any],
    run_dir: Path,
    pool_size: int,
    node5: str = "",
) -> Server:
    """`url` is the target's database URL (for ours_pooled: through PgBouncer); `node5`
    the Node 22+ binary PostGraphile v5 runs on."""
    if target in OURS_TARGETS:
        return make_ours(url, workers, variant, issuers[variant].env(), run_dir, pool_size, name=target)
    if target == "floor":
        return make_floor(url, workers, run_dir, pool_size)
    if target == "postgraphile5":
        return make_postgraphile5(url, workers, run_dir, node5, pool_size)
    return make_postgraphile(url, workers, run_dir, pool_size)


@dataclass
class _Out:
    runs: list[dict[str, Any]]
    servers: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    first_pages: dict[str, Any]
    notes: list[str]


def _measure_workers(
    w: int,
    *,
    targets: list[str],
    scenarios: list[Scenario],
    conns_list: list[int],
    args: argparse.Namespace,
    wrk: str,
    url: str,
    urls: dict[str, str],
    info: db.SeedInfo,
    issuers: dict[str, Any],
    run_dir: Path,
    out: _Out,
    node5: str = "",
) -> None:
    """Every scenario at `w` workers. The servers a scenario needs run side by side (an
    idle one costs no CPU) and each measurement alternates between them, round after
    round, so that a ratio compares figures taken minutes, not a quarter of an hour,
    apart: this machine's speed drifts by more than the differences being measured.

    A server starts before the first scenario that needs it and stops (after its memory
    is read) once the last one has run: each holds up to workers x --pool-size
    PostgreSQL connections, and all of them at once (ours, ours[eddsa], floor, both
    PostGraphiles: 100 at 2 workers) would exceed a default max_connections of 100."""
    db.run(vacuum(url))
    plan = [_participants(sc, targets) for sc in scenarios]
    last_use = {p: i for i, parts in enumerate(plan) for p in parts}
    _check_connections(url, plan, w, args.pool_size, out)
    log(f"\n== workers={w}")
    servers: dict[tuple[str, str], Server] = {}  # running
    started: dict[tuple[str, str], Server] = {}  # every server that started, for the report
    failed: set[tuple[str, str]] = set()
    try:
        for i, sc in enumerate(scenarios):
            for target, variant in plan[i]:
                if (target, variant) in started or (target, variant) in failed:
                    continue
                server = _make_server(
                    target, variant, w, urls[target], issuers, run_dir, args.pool_size, node5
                )
                try:
                    server.start()
                except RuntimeError as exc:
                    failed.add((target, variant))
                    out.notes.append(f"{server.label} w={w} failed to start: {exc}")
                    log(f"ERROR: {out.notes[-1]}")
                    continue
                log(f"  started {server.label} ({server.startup_seconds:.1f}s)")
                servers[(target, variant)] = started[(target, variant)] = server
            _run_scenario(sc, w, targets, servers, conns_list, args, wrk, info, issuers, run_dir, out)
            for key in [k for k in servers if last_use[k] <= i]:
                server = servers.pop(key)
                server.measure_rss()
                server.stop()
    finally:
        for server in servers.values():
            server.stop()
    for (target, variant), server in started.items():
        out.servers.append(
            {
                "label": server.label,
                "target": target,
                "variant": variant,
                "workers": w,
                "startup_s": round(server.startup_seconds, 2),
                "rss": server.rss,
                "log": str(server.log_path),
            }
        )


def _check_connections(
    url: str, plan: list[list[tuple[str, str]]], w: int, pool_size: int, out: _Out
) -> None:
    """Warn when the servers running together may need more connections than PostgreSQL
    has free: the overflow fails requests ('too many clients'), not just slows them."""
    peak = 0
    alive: set[tuple[str, str]] = set()
    last_use = {p: i for i, parts in enumerate(plan) for p in parts}
    for i, parts in enumerate(plan):
        alive |= set(parts)
        peak = max(peak, len(alive) * w * pool_size)
        alive = {p for p in alive if last_use[p] > i}
    try:
        free = db.run(db.free_connections(url))
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"could not read max_connections: {exc}")
        return
    if peak > free:
        out.notes.append(
            f"w={w}: the servers running together may open {peak} PostgreSQL connections,"
            f" {free} are free (max_connections less reserved and in use): expect"
            " 'too many clients' errors; lower --pool-size or --workers"
        )
        log(f"WARNING: {out.notes[-1]}")


def _run_scenario(
    sc: Scenario,
    w: int,
    targets: list[str],
    servers: dict[tuple[str, str], Server],
    conns_list: list[int],
    args: argparse.Namespace,
    wrk: str,
    info: db.SeedInfo,
    issuers: dict[str, Any],
    run_dir: Path,
    out: _Out,
) -> None:
    """One scenario's measurements: warm-up, then --rounds alternating rounds per
    connection count; each target's median round goes into out.runs."""
    ready: list[tuple[Server, str, Path]] = []
    for target, variant in _participants(sc, targets):
        serving = servers.get((target, variant))
        if serving is None:
            continue
        prepared = _prepare(sc, target, serving, w, info, issuers, run_dir, out)
        if prepared is not None:
            ready.append((serving, target, prepared))
    if not ready:
        return
    try:
        for server, _, data_file in ready:
            if args.warmup > 0:
                run_wrk(
                    wrk,
                    script=sc.script,
                    data_file=data_file,
                    url=f"http://127.0.0.1:{server.port}",
                    conns=max(conns_list),
                    threads=args.threads,
                    duration=args.warmup,
                )
        for c in conns_list:
            samples: dict[str, list[dict[str, Any]]] = {target: [] for _, target, _ in ready}
            for r in range(args.rounds):
                for server, target, data_file in ready if r % 2 == 0 else ready[::-1]:
                    res = run_wrk(
                        wrk,
                        script=sc.script,
                        data_file=data_file,
                        url=f"http://127.0.0.1:{server.port}",
                        conns=c,
                        threads=args.threads,
                        duration=args.duration,
                    )
                    samples[target].append(res)
            for server, target, _ in ready:
                row = {
                    "scenario": sc.name,
                    "target": target,
                    "variant": server.variant,
                    "workers": w,
                    **_median_run(samples[target]),
                }
                out.runs.append(row)
                log(
                    f"  {sc.name:<16} {server.label:<18} c={c:<3} {row['rps']:>9,.0f} req/s"
                    f"  p50 {row['latency_us']['p50'] / 1000:7.2f} ms"
                    f"  p99 {row['latency_us']['p99'] / 1000:7.2f} ms"
                    f"  errors {report.errors_of(row)}"
                    f"  (rounds: {', '.join(f'{x:,.0f}' for x in row['rounds_rps'])})"
                )
    except MEASURE_ERRORS as exc:  # wrk failure, server died, odd response
        out.notes.append(f"{sc.name} w={w} failed: {exc}")
        log(f"  ERROR {sc.name}: {exc}")


def _prepare(
    sc: Scenario,
    target: str,
    server: Server,
    w: int,
    info: db.SeedInfo,
    issuers: dict[str, Any],
    run_dir: Path,
    out: _Out,
) -> Path | None:
    """The scenario's Lua data file for this target, after one request checked its answer."""
    try:
        issuer = issuers.get(sc.auth)
        entries = user_entries(
            sc,
            base_target(target),
            readers=info.sample,
            writers=info.writers,
            token=issuer.token if issuer else None,
        )
        expected_rows = None
        if sc.name == "gql_list":
            expected_rows = min(LIST_SIZE, len(info.sample.get(entries[0]["id"], [])))
        ok, msg, doc = check(sc, base_target(target), server.port, entries[0], expected_rows)
    except MEASURE_ERRORS as exc:
        ok, msg, doc = False, f"check failed: {exc}", None
    out.checks.append({"scenario": sc.name, "target": target, "workers": w, "ok": ok, "detail": msg})
    if not ok:
        out.notes.append(f"{sc.name} on {server.label} w={w} skipped: {msg}")
        log(f"  SKIP {sc.name} on {server.label}: {msg}")
        return None
    if sc.name == "rest_list":
        out.first_pages.setdefault(target, (entries[0]["id"], doc))
    if sc.name == "gql_list" and target in POSTGRAPHILES:
        keys = [str(n[ROW_KEY[target]]) for n in doc["data"]["allTasks"]["nodes"]]
        out.first_pages.setdefault(f"gql:{target}", (entries[0]["id"], keys))
    return write_data(run_dir / f"{sc.name}-{target}-w{w}.lua", entries, graphql=sc.graphql)
