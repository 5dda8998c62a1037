"""Starting, probing and stopping the servers under test; their memory from /proc.

Every server runs in its own session (process group), so stopping it signals the
group the bench created and nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
POSTGRAPHILE_DIR = BENCH_DIR / ".postgraphile"
POSTGRAPHILE_BIN = POSTGRAPHILE_DIR / "node_modules" / ".bin" / "postgraphile"
# PostGraphile v5 (the amber preset), started by bench/postgraphile5_server.cjs.
POSTGRAPHILE5_DIR = BENCH_DIR / ".postgraphile5"
POSTGRAPHILE5_SCRIPT = BENCH_DIR / "postgraphile5_server.cjs"
POSTGRAPHILE5_SPEC = "postgraphile@^5.1.5"
NODE_MAJOR_FOR_V5 = 22  # postgraphile@5's engines: node >= 22


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def graphql(
    port: int, query: str, headers: dict[str, str] | None = None, variables: Any = None
) -> tuple[int, Any]:
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    status, raw = http_request(
        port,
        "POST",
        "/graphql",
        headers={"Content-Type": "application/json", **(headers or {})},
        body=json.dumps(payload).encode(),
    )
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"raw": raw.decode(errors="replace")}


def _healthz(port: int) -> bool:
    return http_request(port, "GET", "/healthz", timeout=2.0)[0] == 200


def _graphql_up(port: int) -> bool:
    status, body = graphql(port, "{ __typename }")
    return status == 200 and "data" in body


@dataclass
class Server:
    name: str  # ours | ours_pooled | floor | postgraphile (v4) | postgraphile5
    variant: str  # e.g. hs256 / eddsa for ours
    workers: int
    cmd: list[str]
    env: dict[str, str]
    ready: Callable[[int], bool]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    startup_seconds: float = 0.0
    rss: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.variant in ("", "hs256") else f"{self.name}[{self.variant}]"

    def start(self, timeout: float = 90.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with {self.proc.returncode} during startup;"
                    f" see {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.ready(self.port):
                    self.startup_seconds = time.monotonic() - self.started_at
                    if self.workers > 1:
                        # Let the other workers finish booting too.
                        time.sleep(1.5)
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.label} not ready after {timeout}s; see {self.log_path}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Reap stragglers left in the group (e.g. workers of a killed supervisor).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.proc = None

    def measure_rss(self) -> list[dict[str, Any]]:
        if self.proc is None:
            return []
        self.rss = process_tree_rss(self.proc.pid)
        return self.rss


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree_rss(root: int) -> list[dict[str, Any]]:
    """VmRSS of `root` and all its descendants, with a guess at each one's role."""
    children = _proc_children()
    out: list[dict[str, Any]] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        rss_kb = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")),
            0,
        )
        out.append(
            {
                "pid": pid,
                "ppid": next(
                    int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")
                ),
                "rss_mb": round(rss_kb / 1024, 1),
                "cmd": cmdline.strip()[:200],
            }
        )
    for item in out:
        item["role"] = _role(item, out)
    return out


def _role(item: dict[str, Any], tree: list[dict[str, Any]]) -> str:
    cmd = item["cmd"]
    if "resource_tracker" in cmd:
        return "resource_tracker"
    if "multiprocessing" in cmd or "spawn_main" in cmd:
        return "worker"
    has_children = any(other["ppid"] == item["pid"] for other in tree)
    if cmd.startswith(("uv ", "/root/.local/bin/uv")) or os.path.basename(cmd.split(" ")[0]) == "uv":
        return "uv wrapper"
    if "node" in cmd and has_children:
        return "cluster master"
    if "node" in cmd and any(o["pid"] == item["ppid"] and "node" in o["cmd"] for o in tree):
        return "worker"
    return "supervisor" if has_children else "worker"


# --------------------------------------------------------------------------- commands


def ours_command(host: str, port: int, workers: int) -> list[str]:
    """`todo-api serve ...`: the venv's console script when present, else via `uv run`.

    BENCH_OURS_CMD (set by --ours-cmd) replaces it: a command line with {host},
    {port} and {workers} placeholders.
    """
    template = os.environ.get("BENCH_OURS_CMD")
    if template:
        return shlex.split(template.format(host=host, port=port, workers=workers))
    script = Path(sys.executable).parent / "todo-api"
    args = ["serve", "--host", host, "--port", str(port), "--workers", str(workers)]
    if script.exists():
        return [str(script), *args]
    return ["uv", "run", "todo-api", *args]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "DATABASE_DIRECT_URL",
            "DB_POOLER",
            "BETTER_AUTH_SECRET",
            "BETTER_AUTH_URL",
            "JWT_JWKS_URL",
        )
    }
    env.update(extra)
    return env


def make_ours(
    database_url: str,
    workers: int,
    variant: str,
    auth_env: dict[str, str],
    log_dir: Path,
    pool_size: int = 10,
    name: str = "ours",
) -> Server:
    """The service on `database_url`; `name` ours_pooled when that URL goes through
    PgBouncer (with ?pgbouncer=true: the service's pooled mode)."""
    port = free_port()
    return Server(
        name=name,
        variant=variant,
        workers=workers,
        cmd=ours_command("127.0.0.1", port, workers),
        env=clean_env(
            {
                "DATABASE_URL": database_url,
                # The same pool as the floor's: min = max = pool_size per worker.
                "DB_POOL_MIN_SIZE": str(pool_size),
                "DB_POOL_MAX_SIZE": str(pool_size),
                "APP_ENV": "production",
                **auth_env,
            }
        ),
        ready=_healthz,
        port=port,
        log_path=log_dir / f"{name}-{variant}-w{workers}.log",
    )


def make_floor(database_url: str, workers: int, log_dir: Path, pool_size: int = 10) -> Server:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.floor_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(
        name="floor",
        variant="",
        workers=workers,
        cmd=cmd,
        env=clean_env({"FLOOR_DATABASE_URL": database_url, "FLOOR_POOL_SIZE": str(pool_size)}),
        ready=_healthz,
        port=port,
        log_path=log_dir / f"floor-w{workers}.log",
    )


def make_postgraphile(database_url: str, workers: int, log_dir: Path, pool_size: int = 10) -> Server:
    port = free_port()
    cmd = [
        str(POSTGRAPHILE_BIN),
        "-c",
        database_url,
        "--schema",
        "public",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-graphiql",
        "--disable-query-log",
        "--max-pool-size",
        str(pool_size),
    ]
    if workers > 1:
        cmd += ["--cluster-workers", str(workers)]
    env = clean_env({"NODE_ENV": "production"})
    return Server(
        name="postgraphile",
        variant="",
        workers=workers,
        cmd=cmd,
        env=env,
        ready=_graphql_up,
        port=port,
        log_path=log_dir / f"postgraphile-w{workers}.log",
    )


def make_postgraphile5(
    database_url: str, workers: int, log_dir: Path, node: str, pool_size: int = 10
) -> Server:
    """PostGraphile v5, amber preset, `workers` Node processes (a cluster primary forks
    them when workers > 1, as v4's --cluster-workers does), `pool_size` connections each."""
    port = free_port()
    env = clean_env(
        {
            "NODE_ENV": "production",
            "BENCH_PG5_DIR": str(POSTGRAPHILE5_DIR),
            "BENCH_PG5_DB_URL": database_url,
            "BENCH_PG5_HOST": "127.0.0.1",
            "BENCH_PG5_PORT": str(port),
            "BENCH_PG5_WORKERS": str(workers),
            "BENCH_PG5_POOL_SIZE": str(pool_size),
        }
    )
    return Server(
        name="postgraphile5",
        variant="",
        workers=workers,
        cmd=[node, str(POSTGRAPHILE5_SCRIPT)],
        env=env,
        ready=_graphql_up,
        port=port,
        log_path=log_dir / f"postgraphile5-w{workers}.log",
    )


def _node_major(node: str) -> int:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    version = out.stdout.strip().lstrip("v")
    return int(version.split(".")[0]) if version[:1].isdigit() else 0


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js 18+ or pass --skip-postgraphile")
    return npm


def _npm_install(directory: Path, name: str, *specs: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pkg = directory / "package.json"
    if not pkg.exists():
        pkg.write_text(f'{{"name": "{name}", "private": true}}\n')
    rel = directory.relative_to(REPO_ROOT)
    print(f"installing {' '.join(specs)} with npm into {rel} ...", file=sys.stderr)
    subprocess.run(
        [_npm(), "install", *specs, "--no-package-lock", "--no-audit", "--no-fund"],
        cwd=directory,
        check=True,
    )


def ensure_postgraphile5() -> tuple[str, str]:
    """Install PostGraphile v5 into bench/.postgraphile5 (once), plus a Node 22 binary
    (the npm package node-linux-<arch>@22) when the machine's node is older than v5
    needs. Returns (PostGraphile version, path of the node binary to run it with)."""
    installed = POSTGRAPHILE5_DIR / "node_modules" / "postgraphile" / "package.json"
    if not installed.exists():
        _npm_install(POSTGRAPHILE5_DIR, "bench-postgraphile5", POSTGRAPHILE5_SPEC)
    node = shutil.which("node") or ""
    if not node or _node_major(node) < NODE_MAJOR_FOR_V5:
        arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
            platform.machine().lower(), "x64"
        )
        package = f"node-linux-{arch}"
        node = str(POSTGRAPHILE5_DIR / "node_modules" / package / "bin" / "node")
        if not Path(node).exists():
            _npm_install(POSTGRAPHILE5_DIR, "bench-postgraphile5", f"{package}@{NODE_MAJOR_FOR_V5}")
        if _node_major(node) < NODE_MAJOR_FOR_V5:
            raise RuntimeError(f"{node} is not Node {NODE_MAJOR_FOR_V5}+; PostGraphile v5 needs it")
    version = json.loads(installed.read_text())["version"]
    return str(version), node


def node_version(node: str) -> str:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def ensure_postgraphile() -> str:
    """Install PostGraphile v4 into bench/.postgraphile (once); return its version."""
    if not POSTGRAPHILE_BIN.exists():
        _npm_install(POSTGRAPHILE_DIR, "bench-postgraphile", "postgraphile@4")
    out = subprocess.run([str(POSTGRAPHILE_BIN), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()
