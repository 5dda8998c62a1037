"""Without chromium the browser tests (tests/browser) are skipped locally, and fail in CI
and with REQUIRE_BROWSER=1 (which .ci/run exports). Each case runs a real pytest in a
subprocess, pointed at a chromium that does not exist, narrowed to one browser test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.service.test_interop_gate import NESTED

ROOT = Path(__file__).resolve().parents[2]
ONE_BROWSER_TEST = "tests/browser/test_tools.py::test_redoc_renders_the_document"


def pytest_without_chromium(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "REQUIRE_BROWSER")}
    env.update(CHROMIUM=str(tmp_path / "chromium"), **extra)
    command = [sys.executable, "-m", "pytest", *NESTED, "-q", "-rs", ONE_BROWSER_TEST]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_skipped_with_the_reason_locally(tmp_path: Path) -> None:
    result = pytest_without_chromium(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "chromium not found (Debian: apt-get install chromium)" in result.stdout


def test_fails_under_ci_run(tmp_path: Path) -> None:
    # REQUIRE_BROWSER=1 is what .ci/run exports; CI=true is the same rule (conftest.py).
    result = pytest_without_chromium(tmp_path, REQUIRE_BROWSER="1")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "skipped" not in result.stdout
    assert "browser tests are required here (CI / REQUIRE_BROWSER=1)" in result.stdout
    assert "chromium not found" in result.stdout
