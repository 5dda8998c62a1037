"""Without Node the audit is skipped locally and fails in CI (the interop suite's rule):
a real pytest in a subprocess whose PATH has no node and no npm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.service.test_interop_gate import NESTED, ROOT, environment

AUDIT_TEST = "tests/graphql_http/test_audit.py"


def pytest_without_node(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", *NESTED, "-q", "-rs", AUDIT_TEST]
    env = environment(tmp_path, **extra)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_skipped_with_the_reason_locally(tmp_path: Path) -> None:
    result = pytest_without_node(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "GraphQL-over-HTTP audit skipped: node not found on PATH" in result.stdout


def test_fails_when_required(tmp_path: Path) -> None:
    # REQUIRE_INTEROP=1 (what .ci/run sets); CI=true goes through the same
    # interop_required(), covered by tests/service/test_interop_gate.py.
    result = pytest_without_node(tmp_path, REQUIRE_INTEROP="1")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "skipped" not in result.stdout
    assert "The GraphQL-over-HTTP audit is required here" in result.stdout
    assert "node not found on PATH" in result.stdout
