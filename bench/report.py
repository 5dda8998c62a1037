"""Printing the results table, ratios and memory; writing the JSON file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scenarios import BY_NAME, OURS_TARGETS, POSTGRAPHILES

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def errors_of(row: dict[str, Any]) -> int:
    e = row["errors"]
    sockets = e["connect"] + e["read"] + e["write"] + e["timeout"]
    return int(sockets + row["non2xx"] + row["graphql_errors"])


def _numeric(cell: str) -> bool:
    try:
        float(cell.replace(",", "").split(" ")[0])
    except ValueError:
        return False
    return True


def fmt_table(headers: list[str], rows: list[list[str]], *, markdown: bool = False) -> str:
    if markdown:
        numeric = [bool(rows) and all(_numeric(r[i]) for r in rows) for i in range(len(headers))]
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
        ]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    aligns = [">" if rows and all(_numeric(r[i]) for r in rows) else "<" for i in range(len(headers))]
    line = "  ".join(f"{h:{a}{w}}" for h, a, w in zip(headers, aligns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, aligns, widths, strict=True)))
    return "\n".join(out)


def results_table(runs: list[dict[str, Any]], *, markdown: bool = False) -> str:
    rows = [
        [
            r["scenario"],
            r["target"],
            str(r["workers"]),
            str(r["conns"]),
            f"{r['rps']:,.0f}",
            f"{r['latency_us']['p50'] / 1000:.2f}",
            f"{r['latency_us']['p99'] / 1000:.2f}",
            str(errors_of(r)),
        ]
        for r in runs
    ]
    headers = ["scenario", "target", "workers", "conns", "req/s", "p50 ms", "p99 ms", "errors"]
    return fmt_table(headers, rows, markdown=markdown)


def _baselines(target: str, scenario: str) -> list[tuple[str, str]]:
    """(baseline scenario, baseline target) pairs a row of `target` is compared with:
    ours_pooled with ours; ours with the floor (REST) or with both PostGraphiles, v4
    and v5 (GraphQL)."""
    if target == "ours_pooled":
        return [(scenario, "ours")]
    sc = BY_NAME.get(scenario)
    if sc is None:
        return []
    if sc.floor_baseline:
        return [(sc.floor_baseline, "floor")]
    return [(scenario, pg) for pg in POSTGRAPHILES]


def compute_ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ours / floor for REST scenarios, ours / postgraphile (v4) and ours / postgraphile5
    for GraphQL ones, and ours_pooled / ours for every scenario (the cost of the
    service's pooled mode)."""
    index = {(r["scenario"], r["target"], r["workers"], r["conns"]): r for r in runs}
    ratios = []
    for r in runs:
        if r["target"] not in OURS_TARGETS:
            continue
        for base_scenario, against in _baselines(r["target"], r["scenario"]):
            base = index.get((base_scenario, against, r["workers"], r["conns"]))
            if base is not None and base["rps"]:
                ratios.append(_ratio(r, base, against))
    return ratios


def _ratio(r: dict[str, Any], base: dict[str, Any], against: str) -> dict[str, Any]:
    return {
        "scenario": r["scenario"],
        "target": r["target"],
        "against": against,
        "baseline_scenario": base["scenario"],
        "workers": r["workers"],
        "conns": r["conns"],
        "rps_ratio": round(r["rps"] / base["rps"], 3),
        "p50_ratio": round(r["latency_us"]["p50"] / max(base["latency_us"]["p50"], 1), 3),
        "p99_ratio": round(r["latency_us"]["p99"] / max(base["latency_us"]["p99"], 1), 3),
    }


def ratios_table(ratios: list[dict[str, Any]], *, markdown: bool = False) -> str:
    rows = [
        [
            r["scenario"],
            f"{r.get('target', 'ours')}/{r['against']}",
            str(r["workers"]),
            str(r["conns"]),
            f"{r['rps_ratio']:.2f}",
            f"{r['p50_ratio']:.2f}",
            f"{r['p99_ratio']:.2f}",
        ]
        for r in ratios
    ]
    headers = ["scenario", "ratio", "workers", "conns", "req/s", "p50", "p99"]
    return fmt_table(headers, rows, markdown=markdown)


def rss_table(servers: list[dict[str, Any]], *, markdown: bool = False) -> str:
    rows = []
    for s in servers:
        for p in s["rss"]:
            rows.append([s["label"], str(s["workers"]), p["role"], str(p["pid"]), f"{p['rss_mb']:.1f}"])
    return fmt_table(["server", "workers", "process", "pid", "RSS MB"], rows, markdown=markdown)


def graphql_ratio_rows(ratios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The GraphQL ratios side by side: one row per scenario, target, workers and
    connections with ours / v4 and ours / v5 (None where that baseline did not run)."""
    rows: dict[tuple[str, str, int, int], dict[str, Any]] = {}
    for r in ratios:
        if r["against"] not in POSTGRAPHILES:
            continue
        key = (r["scenario"], r.get("target", "ours"), r["workers"], r["conns"])
        row = rows.setdefault(
            key,
            {
                "scenario": key[0],
                "target": key[1],
                "workers": key[2],
                "conns": key[3],
                **{f"{m}_vs_{pg}": None for pg in POSTGRAPHILES for m in ("rps", "p50", "p99")},
            },
        )
        for m in ("rps", "p50", "p99"):
            row[f"{m}_vs_{r['against']}"] = r[f"{m}_ratio"]
    return list(rows.values())


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def graphql_ratios_table(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    headers = [
        "scenario",
        "target",
        "workers",
        "conns",
        "req/s vs v4",
        "req/s vs v5",
        "p99 vs v4",
        "p99 vs v5",
    ]
    body = [
        [
            r["scenario"],
            r["target"],
            str(r["workers"]),
            str(r["conns"]),
            _cell(r["rps_vs_postgraphile"]),
            _cell(r["rps_vs_postgraphile5"]),
            _cell(r["p99_vs_postgraphile"]),
            _cell(r["p99_vs_postgraphile5"]),
        ]
        for r in rows
    ]
    return fmt_table(headers, body, markdown=markdown)


def _latency_baseline(scenario: str) -> tuple[str, str] | None:
    """What our p99 is held against: the floor's (REST) or PostGraphile v5's (GraphQL)."""
    sc = BY_NAME.get(scenario)
    if sc is None:
        return None
    if sc.floor_baseline:
        return sc.floor_baseline, "floor"
    return scenario, "postgraphile5"


def latency_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """p50/p90/p99/p99.9 of every measured row, ordered by connections; rows of the
    service also carry p99 / the baseline's p99 (floor for REST, PostGraphile v5 for
    GraphQL) at the same workers and connections."""
    index = {(r["scenario"], r["target"], r["workers"], r["conns"]): r for r in runs}
    out = []
    for r in sorted(runs, key=lambda r: r["conns"]):  # stable: scenario order kept
        lat = r["latency_us"]
        row: dict[str, Any] = {
            "conns": r["conns"],
            "scenario": r["scenario"],
            "target": r["target"],
            "workers": r["workers"],
            "rps": r["rps"],
            **{f"{p}_ms": round(lat[p] / 1000, 3) for p in ("p50", "p90", "p99", "p999")},
            "baseline": None,
            "p99_vs_baseline": None,
        }
        found = _latency_baseline(r["scenario"]) if r["target"] in OURS_TARGETS else None
        if found is not None:
            base = index.get((found[0], found[1], r["workers"], r["conns"]))
            if base is not None:
                row["baseline"] = found[1]
                row["p99_vs_baseline"] = round(lat["p99"] / max(base["latency_us"]["p99"], 1), 3)
        out.append(row)
    return out


def latency_tables(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """One table per connection count."""
    parts = []
    for conns in sorted({r["conns"] for r in rows}):
        body = [
            [
                r["scenario"],
                r["target"],
                str(r["workers"]),
                f"{r['rps']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['p999_ms']:.2f}",
                "-" if r["p99_vs_baseline"] is None else f"{r['p99_vs_baseline']:.2f}",
                r["baseline"] or "",
            ]
            for r in rows
            if r["conns"] == conns
        ]
        headers = [
            "scenario",
            "target",
            "workers",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "p99 / base",
            "base",
        ]
        parts.append(f"latency at {conns} connection(s)\n\n" + fmt_table(headers, body, markdown=markdown))
    return "\n\n".join(parts)


def rss_summary_table(servers: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """Per server: its worker processes' mean VmRSS and the whole tree's."""
    rows = []
    for s in servers:
        procs = s["rss"]
        if not procs:
            continue
        workers = [p["rss_mb"] for p in procs if p["role"] == "worker"] or [p["rss_mb"] for p in procs]
        rows.append(
            [
                s["label"],
                str(s["workers"]),
                str(len(workers)),
                f"{sum(workers) / len(workers):.1f}",
                f"{sum(p['rss_mb'] for p in procs):.1f}",
            ]
        )
    headers = ["server", "workers", "worker procs", "RSS MB / worker", "RSS MB total"]
    return fmt_table(headers, rows, markdown=markdown)


def text_report(
    runs: list[dict[str, Any]],
    ratios: list[dict[str, Any]],
    servers: list[dict[str, Any]],
    *,
    markdown: bool = False,
) -> str:
    """Every table of a run: results, ratios, GraphQL ours/v4 and ours/v5 side by side,
    latency per connection count, memory."""
    parts = [results_table(runs, markdown=markdown)]
    if ratios:
        parts.append(
            "ratios (target / baseline; req/s > 1 is faster, latency < 1 is faster)\n\n"
            + ratios_table(ratios, markdown=markdown)
        )
    gql = graphql_ratio_rows(ratios)
    if gql:
        parts.append(
            "GraphQL: ours / PostGraphile v4 and ours / PostGraphile v5\n\n"
            + graphql_ratios_table(gql, markdown=markdown)
        )
    if runs:
        parts.append(
            "latency (p99 / base: ours' p99 over the floor's for REST, PostGraphile v5's for GraphQL)\n\n"
            + latency_tables(latency_rows(runs), markdown=markdown)
        )
    if servers:
        parts.append("memory after the runs (VmRSS)\n\n" + rss_table(servers, markdown=markdown))
        parts.append("memory per worker (VmRSS)\n\n" + rss_summary_table(servers, markdown=markdown))
    return "\n\n".join(parts)


def _version(cmd: list[str]) -> str:
    if not shutil.which(cmd[0]):
        return ""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


def environment() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "node": _version(["node", "--version"]),
        "wrk": _version(["wrk", "--version"]),
    }


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_json(doc: dict[str, Any], name: str, results_dir: Path = RESULTS_DIR) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path
