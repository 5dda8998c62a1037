"""Benchmark suite CLI.

    uv run python -m bench [run] [options]    throughput/latency matrix (default)
    uv run python -m bench scale [options]    list latency at small vs 1M rows, deep pages
    uv run python -m bench seed [options]     only (re)create and seed the database

See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import db
from bench.report import RESULTS_DIR


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=None,
        help="database the bench DROPS and recreates (default "
        f"{db.DEFAULT_SERVER}/{db.DEFAULT_DB}, or on the embedded PostgreSQL under"
        " .data/bench when no server answers there; its name must contain 'bench' unless"
        " --force-drop). For `scale`, the base name of its two databases.",
    )
    p.add_argument("--force-drop", action="store_true", help="allow dropping a non-bench db")
    p.add_argument(
        "--reuse-db",
        action="store_true",
        help="keep an existing, already seeded database instead of recreating it",
    )
    p.add_argument(
        "--targets",
        default="ours,floor,postgraphile,postgraphile5",
        help="comma list of ours,ours_pooled,floor,postgraphile,postgraphile5 (default"
        " ours,floor,postgraphile,postgraphile5; postgraphile is v4 (alias postgraphile4),"
        " postgraphile5 is v5 on Node 22+; ours_pooled is the service behind PgBouncer in"
        " transaction mode, run only; scale takes ours, floor and postgraphile, and ignores"
        " postgraphile5)",
    )
    p.add_argument("--skip-postgraphile", action="store_true", help="drop both PostGraphiles")
    p.add_argument("--workers", default=None, help="comma list of worker counts (run: 1,2; scale: 1)")
    p.add_argument(
        "--ours-cmd",
        default=None,
        help="command that starts the service, with {host} {port} {workers} placeholders"
        " (default: todo-api serve --host {host} --port {port} --workers {workers})",
    )
    p.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=2, help="seconds of discarded warmup")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (capped at conns)")
    p.add_argument(
        "--pool-size",
        type=int,
        default=10,
        help="DB pool size per worker for floor and PostGraphile (default 10)",
    )
    p.add_argument("--results-dir", default=str(RESULTS_DIR))


def _seed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        choices=sorted(db.PRESETS),
        default="default",
        help="default: 100 users x 100 + heavy 10,000; "
        "million: 10,000 users x 100 + heavy 100,000 (1.1M tasks)",
    )
    p.add_argument("--users", type=int, default=None, help="normal users (default 100)")
    p.add_argument("--tasks-per-user", type=int, default=None, help="default 100")
    p.add_argument("--heavy-tasks", type=int, default=None, help="heavy user's tasks (10,000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="the scenario matrix (default command)")
    _common(run)
    _seed_args(run)
    run.add_argument(
        "--conns",
        default="1,64",
        help="comma list of connection counts (default 1,64); the latency sweep is"
        " --conns 1,64,256, with a latency table per count",
    )
    run.add_argument(
        "--scenarios",
        default=None,
        help="comma list of scenario names or globs, e.g. 'rest_*,gql_list'",
    )
    run.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measurements per scenario, target and connection count, alternating between"
        " the targets; the median-req/s round is reported (default 3)",
    )
    # Shorter measurements, repeated: --rounds x --duration seconds per figure.
    run.set_defaults(workers_default="1,2", duration=5, warmup=5)

    scale = sub.add_parser("scale", help="latency at scale: small vs 1M rows, deep pages")
    _common(scale)
    scale.add_argument("--conns", default="1", help="comma list of connection counts (default 1)")
    scale.add_argument("--small-preset", choices=sorted(db.PRESETS), default="default")
    scale.add_argument("--large-preset", choices=sorted(db.PRESETS), default="million")
    scale.add_argument("--deep", type=int, default=90_000, help="rows deep for the heavy user's deep page")
    scale.add_argument("--sizes", default="small,large", help="which datasets to measure (small,large)")
    scale.set_defaults(workers_default="1")

    seed = sub.add_parser("seed", help="only recreate and seed the database")
    _seed_args(seed)
    seed.add_argument("--database-url", default=None)
    seed.add_argument("--force-drop", action="store_true")
    seed.add_argument("--ours-cmd", default=None, help="as for run")
    seed.add_argument(
        "--schema",
        choices=("ours", "bench"),
        default="ours",
        help="ours: start the service once so its migrations create the schema (default);"
        " bench: the bench's own copy of the DDL (for floor/PostGraphile-only runs)",
    )
    report = sub.add_parser("report", help="print the tables of a results file again")
    report.add_argument("file", help="bench/results/<timestamp>.json or scale-<timestamp>.json")
    report.add_argument("--markdown", action="store_true", help="as Markdown (docs/performance.md)")
    return parser


def cmd_report(path: str, *, markdown: bool) -> int:
    import json

    from bench import report, scale

    doc = json.loads(Path(path).read_text())
    if doc.get("kind") == "scale":
        print(scale.tables(doc["runs"], doc["comparisons"], markdown=markdown))
    else:
        print(report.text_report(doc["runs"], doc["ratios"], doc["servers"], markdown=markdown))
    for note in doc.get("notes", []):
        print(f"\nnote: {note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "scale", "seed", "report", "-h", "--help"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", "unset") is None:
        args.workers = args.workers_default
    if getattr(args, "ours_cmd", None):
        os.environ["BENCH_OURS_CMD"] = args.ours_cmd
    if args.command == "run":
        from bench.run import cmd_run

        return cmd_run(args)
    if args.command == "scale":
        from bench.scale import cmd_scale

        return cmd_scale(args)
    if args.command == "report":
        return cmd_report(args.file, markdown=args.markdown)
    from bench.report import timestamp
    from bench.run import RUNS_DIR, migrate_with_ours, resolve_spec
    from bench.tokens import HS256Issuer

    url = args.database_url or db.default_url()
    db.run(db.recreate_database(url, force=args.force_drop))
    if args.schema == "bench":
        db.run(db.create_bench_schema(url))
    else:
        migrate_with_ours(url, HS256Issuer(), RUNS_DIR / timestamp())
    info = db.run(db.seed(url, resolve_spec(args)))
    print(f"seeded {info.task_count:,} tasks in {info.seconds:.1f}s into {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
