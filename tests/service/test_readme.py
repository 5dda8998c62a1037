"""The README's shell examples run top to bottom as pasted, against a running service.

The `bash` blocks of "Get a token" (without its `uv run todo-api &`), REST and GraphQL
are joined into one script and run by bash with `localhost:8000` pointing at a live
server; every JSON answer must be free of errors, and the DELETE must say 204."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import HS_SECRET, LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def example_script(readme: str) -> str:
    blocks = [b for b in _BLOCK.findall(readme) if "curl" in b and "localhost:8000" in b]
    assert len(blocks) >= 3, "expected the quick start, REST and GraphQL shell examples"
    lines = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith("uv run todo-api &"):
                continue  # the test's server is already running
            lines.append(line)
    return "\n".join(lines)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's examples use curl")
def test_readme_shell_examples_run_as_pasted(server: LiveServer, tmp_path: Path) -> None:
    script = example_script(README.read_text())
    # `uv run todo-api dev-token` with this server's secret, without uv's own start-up.
    script = script.replace("uv run todo-api", f"{sys.executable} -m api")
    script = script.replace("localhost:8000", server.url.removeprefix("http://"))
    env = {"PATH": "/usr/bin:/bin", "BETTER_AUTH_SECRET": HS_SECRET, "APP_ENV": "test", "HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert "204" in out.splitlines()
    # Every JSON document printed is a success: no error bodies, no GraphQL errors.
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("{", "[")):
            body = json.loads(line)
            assert not (isinstance(body, dict) and ("errors" in body or "code" in body)), line
    assert '"title":"Buy milk"' in out and '"completed":true' in out
