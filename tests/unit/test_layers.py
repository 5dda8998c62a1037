"""Imports point down (api > rest_shim > schema > db) and only api.app imports rest_shim:
the contracts in pyproject.toml's [tool.importlinter], checked by lint-imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The venv's own lint-imports, next to the interpreter running the suite.
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_contracts_are_kept() -> None:
    # --no-cache: nothing written into the checkout.
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"lint-imports found broken contracts:\n{result.stdout}{result.stderr}", pytrace=False)
    assert "0 broken" in result.stdout
