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
import subprocess
from pathlib import Path
from typing import Any

from tests.node import node_missing, npm_install

HARNESS_DIR = Path(__file__).resolve().parent
AUDIT_SCRIPT = HARNESS_DIR / "audit.mjs"
NODE_MODULES = HARNESS_DIR / "node_modules"
# package.json pins graphql-http ^1.22: its 1.x audits are the 61 this suite expects.
MIN_GRAPHQL_HTTP = (1, 22)


class AuditHarnessError(RuntimeError):
    """The audit harness could not be installed or run."""


def node_available() -> str | None:
    """Why node/npm are unusable here, or None (graphql-http's audit needs Node 18+: fetch)."""
    return node_missing(18, "the GraphQL-over-HTTP audit")


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
    return node_available() or npm_install(HARNESS_DIR, _modules_installed)


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
