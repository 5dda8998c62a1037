"""wrk: make sure it is installed, write the per-run Lua data file, run it, parse its JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"


def ensure_wrk() -> str:
    """Path to wrk; installs the Debian package when running as root and it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() == 0 and apt:
        print("wrk not found; installing it with apt-get ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=env)
        subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "wrk is required but not installed.\n"
        "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk\n"
        "  macOS:         brew install wrk\n"
        "  from source:   https://github.com/wg/wrk (make; put ./wrk on PATH)"
    )


def wrk_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else ""


def lua_literal(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        items = (f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot express {type(value).__name__} in Lua")


def write_data(path: Path, users: list[dict[str, Any]], *, graphql: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["return {", f"  graphql = {lua_literal(graphql)},", "  users = {"]
    lines.extend(f"    {lua_literal(u)}," for u in users)
    lines += ["  },", "}", ""]
    path.write_text("\n".join(lines))
    return path


def run_wrk(
    wrk: str,
    *,
    script: str,
    data_file: Path,
    url: str,
    conns: int,
    threads: int,
    duration: float,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """Run one wrk measurement; return the parsed BENCH_JSON plus the command line."""
    threads = max(1, min(threads, conns))  # wrk needs connections >= threads
    cmd = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(conns),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), "BENCH_DATA": str(data_file)}
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        )
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    result["threads"] = threads
    # Other work on the machine skews results; keep the 1-minute load average with each run.
    result["load1_before"] = round(load_before, 2)
    result["load1_after"] = round(os.getloadavg()[0], 2)
    result["conns"] = conns
    return result
