"""`todo-api` on the command line: serve by default, migrate, dev-token, and .env files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from api import cli
from db.url import DatabaseURL
from tests.support import db_fetch

ROOT = Path(__file__).resolve().parent.parent
SECRET = "a-secret-from-the-dotenv-file-0123456789abcdef"


def _clean_env(**extra: str) -> dict[str, str]:
    """The process environment without this service's settings (they would leak in)."""
    names = ("DATABASE_URL", "BETTER_AUTH", "JWT_", "JWKS_", "CORS_", "APP_ENV", "DB_POOL", "DATA_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _todo_api(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ("127.0.0.1", 8000, 1)),
        (["serve"], ("127.0.0.1", 8000, 1)),
        (["--port", "9000"], ("127.0.0.1", 9000, 1)),
        (["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "4"], ("0.0.0.0", 8080, 4)),
    ],
)
def test_todo_api_alone_means_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], expected: tuple[str, int, int]
) -> None:
    """Only the final uvicorn.run is replaced: the real argument parsing and settings run."""
    for name in list(os.environ):
        if name.startswith(("DATABASE_URL", "BETTER_AUTH", "JWT_", "APP_ENV")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        cli, "serve", lambda settings, *, host, port, workers: calls.append((host, port, workers))
    )
    cli.main(argv)
    assert calls == [expected]


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"BETTER_AUTH_SECRET={SECRET}\nJWT_ISSUER=https://from-dotenv.example\nJWT_AUDIENCE=tasks\n"
    )
    result = _todo_api(tmp_path, "dev-token", "--user", "dora", JWT_AUDIENCE="from-env")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"], audience="from-env")
    assert (claims["sub"], claims["iss"]) == ("dora", "https://from-dotenv.example")
    assert not (tmp_path / ".data").exists()  # a configured secret needs no development secret


def test_every_bad_value_stops_start_up_with_one_line_each(tmp_path: Path) -> None:
    result = _todo_api(
        tmp_path, "serve", DB_POOL_MAX_SIZE="many", JWT_LEEWAY_SECONDS="-1", DATABASE_URL="mysql://x/y"
    )
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stderr
    for name in ("DB_POOL_MAX_SIZE", "JWT_LEEWAY_SECONDS", "DATABASE_URL"):
        assert sum(name in line for line in problems) == 1, (name, result.stderr)


def test_migrate_upgrades_the_configured_database(
    tmp_path: Path, fresh_database: Callable[[], DatabaseURL]
) -> None:
    url = fresh_database()
    result = _todo_api(tmp_path, "migrate", DATABASE_URL=url.asyncpg_dsn)
    assert result.returncode == 0, result.stderr
    assert "Database is at the latest migration." in result.stdout
    tables = db_fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert [t["tablename"] for t in tables] == ["alembic_version", "tasks", "users"]
    again = _todo_api(tmp_path, "migrate", DATABASE_URL=url.asyncpg_dsn)
    assert again.returncode == 0, again.stderr


def test_schema_needs_no_configuration(tmp_path: Path) -> None:
    """Printing the SDL reads no settings: a broken .env does not stop it."""
    (tmp_path / ".env").write_text("DB_POOL_MAX_SIZE=many\nAPP_ENV=production\n")
    result = _todo_api(tmp_path, "schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema.graphql").read_text()
    assert not (tmp_path / ".data").exists()
