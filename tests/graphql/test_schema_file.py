"""The committed schema.graphql is what the code serves: schema changes are reviewed diffs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_todo_api_schema() -> None:
    printed = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main(['schema'])"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "APP_ENV": "test"},
    ).stdout
    committed = (ROOT / "schema.graphql").read_text()
    assert printed == committed, "schema changed: run `uv run todo-api schema > schema.graphql`"
