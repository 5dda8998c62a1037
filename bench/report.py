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

from bench.scenarios import BY_NAME

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


def compute_ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ours / floor for REST scenarios, ours / postgraphile for GraphQL ones, and
    ours_pooled / ours for every scenario (the cost of the service's pooled mode)."""
    index = {(r["scenario"], r["target"], r["workers"], r["conns"]): r for r in runs}
    ratios = []
    for r in runs:
        if r["target"] not in ("ours", "ours_pooled"):
            continue
        sc = BY_NAME[r["scenario"]]
        if r["target"] == "ours_pooled":
            base = index.get((r["scenario"], "ours", r["workers"], r["conns"]))
            against = "ours"
        elif sc.floor_baseline:
            base = index.get((sc.floor_baseline, "floor", r["workers"], r["conns"]))
            against = "floor"
        else:
            base = index.get((r["scenario"], "postgraphile", r["workers"], r["conns"]))
            against = "postgraphile"
        if base is None or not base["rps"]:
            continue
        ratios.append(
            {
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
        )
    return ratios


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
