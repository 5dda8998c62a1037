"""Run graphql-http's server audit (Node) against a live endpoint.

``audit.mjs`` next to this file calls ``auditServer({ url, fetchFn })`` from the
``graphql-http`` npm package and prints the results as one JSON line. The npm packages
are installed on demand into ``tests/graphql_http/node_modules`` (never with a
lockfile), the way ``tests/interop/better_auth.py`` installs Better Auth; the same
rule applies when that is impossible: skipped locally, a failure in CI or with
``REQUIRE_INTEROP=1`` (``tests.interop.conftest.interop_required``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

HARNESS_DIR = Path(__file__).resolve().parent
AUDIT_SCRIPT = HARNESS_DIR / "audit.mjs"
NODE_MODULES = HARNESS_DIR / "node_modules"
# package.json pins graphql-http ^1.22: its 1.x audits are the 61 this suite expects.
MIN_GRAPHQL_HTTP = (1, 22)

_NPM_INSTALL = ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock"]
_install_lock = threading.Lock()


class AuditHarnessError(RuntimeError):
    """The audit harness could not be installed or run."""


def node_available() -> str | None:
    """Why node/npm are unusable here, or None (graphql-http's audit needs Node 18+: fetch)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH (needed for the GraphQL-over-HTTP audit)"
    try:
        version = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=15, check=True
        ).stdout.strip()
        major = int(version.lstrip("v").split(".", 1)[0])
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return f"`node --version` failed: {exc}"
    return None if major >= 18 else f"node {version} is too old for graphql-http's audit (need >= 18)"


def installed_version() -> str | None:
    """The graphql-http version in node_modules, when it and graphql-js are both there."""
    package = NODE_MODULES / "graphql-http" / "package.json"
    if not package.is_file() or not (NODE_MODULES / "graphql" / "package.json").is_file():
        return None
    version = json.loads(package.read_text()).get("version")
    return version if isinstance(version, str) else None


def _modules_installed() -> bool:
    version = installed_version()
    if version is None:
        return False
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return major == MIN_GRAPHQL_HTTP[0] and minor >= MIN_GRAPHQL_HTTP[1]


def harness_unavailable() -> str | None:
    """Why the audit cannot run here (no node/npm, npm install failed), or None once
    the packages are installed."""
    reason = node_available()
    if reason is not None:
        return reason
    with _install_lock:
        if _modules_installed():
            return None
        try:
            proc = subprocess.run(
                _NPM_INSTALL, cwd=HARNESS_DIR, capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(_NPM_INSTALL)}` in {HARNESS_DIR} failed: {exc}"
        if proc.returncode != 0 or not _modules_installed():
            return (
                f"`{' '.join(_NPM_INSTALL)}` in {HARNESS_DIR} failed (exit {proc.returncode}), "
                f"graphql-http {installed_version()} installed.\n--- stderr ---\n{proc.stderr[-4000:]}"
            )
    return None


def run_audit(url: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Every audit's result: {id, name, status ("ok", "notice", "warn" or "error"),
    and for the others reason and response {status, contentType, body}}."""
    try:
        proc = subprocess.run(
            ["node", str(AUDIT_SCRIPT), url],
            cwd=HARNESS_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuditHarnessError(f"node {AUDIT_SCRIPT.name} failed: {exc}") from exc
    if proc.returncode != 0:
        raise AuditHarnessError(
            f"node {AUDIT_SCRIPT.name} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}"
            f"\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    results = json.loads(proc.stdout.strip().splitlines()[-1])["results"]
    assert isinstance(results, list)
    return results
