"""Without Node the Better Auth interop suite is skipped locally, and fails in CI and under .ci/run.

Each case runs a real pytest (or .ci/run itself) in a subprocess whose PATH has no node
and no npm, narrowed to one interop test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ONE_INTEROP_TEST = "tests/interop/test_better_auth.py::test_hs256_service_with_only_the_secret"
# The nested pytest runs one test: in its own process, not on parallel workers.
NESTED = ("-p", "no:cacheprovider", "-p", "no:xdist")


def environment(bin_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "REQUIRE_INTEROP", "PATH")}
    return {**env, "PATH": str(bin_dir), **extra}


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def pytest_without_node(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", *NESTED, "-q", "-rs", ONE_INTEROP_TEST]
    return run(command, environment(tmp_path, **extra))


def test_skipped_with_the_reason_locally(tmp_path: Path) -> None:
    result = pytest_without_node(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "node not found on PATH" in result.stdout


def test_fails_in_ci(tmp_path: Path) -> None:
    result = pytest_without_node(tmp_path, CI="true")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "skipped" not in result.stdout
    assert "Better Auth interop tests are required here" in result.stdout
    assert "node not found on PATH" in result.stdout


def test_ci_run_fails_without_node(tmp_path: Path) -> None:
    # .ci/run itself (it sets REQUIRE_INTEROP=1), with only uv and dirname on PATH, CI unset.
    for tool in ("uv", "dirname"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed to run .ci/run here"
        (tmp_path / tool).symlink_to(found)
    result = run(["/bin/bash", ".ci/run", *NESTED, "-q", ONE_INTEROP_TEST], environment(tmp_path))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Better Auth interop tests are required here" in result.stdout
