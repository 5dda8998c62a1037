"""`todo-api` on the command line: serve by default, migrate, dev-token, and .env files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest

from api import cli
from db.url import DatabaseURL
from tests.support import db_fetch, free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-secret-from-the-dotenv-file-0123456789abcdef"


def _clean_env(**extra: str) -> dict[str, str]:
    """The process environment without this service's settings (they would leak in)."""
    names = (
        "DATABASE_URL", "DATABASE_DIRECT_URL", "BETTER_AUTH", "JWT_", "JWKS_", "CORS_", "APP_ENV",
        "DB_POOL", "DATA_DIR", "MIGRATE_ON_START", "LOG_",
    )  # fmt: skip
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


# ------------------------------------------------------------- start-up failures: one line


def _one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """A refused start: non-zero, no traceback, one line (stderr), nothing claiming it started."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for claim in ("started", "complete", "Listening", "Using the database"):
        assert claim not in output, output
    assert len(output.strip().splitlines()) == 1, output
    return output.strip()


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # No DATABASE_URL: had anything started, the embedded PostgreSQL would have.
        result = _todo_api(tmp_path, "serve", "--port", str(port), DATA_DIR=str(tmp_path / "data"))
    line = _one_line_failure(result)
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in line
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("migrate_on_start", ["true", "false"])
def test_an_unreachable_database_is_one_line(tmp_path: Path, migrate_on_start: str) -> None:
    url = f"postgresql://todo:secret@127.0.0.1:{free_port()}/todo"
    result = _todo_api(
        tmp_path, "serve", "--port", str(free_port()), DATABASE_URL=url, MIGRATE_ON_START=migrate_on_start
    )
    line = _one_line_failure(result)
    assert result.returncode == 1
    assert line.startswith("Cannot reach the database at postgresql://todo:***@127.0.0.1:"), line
    assert "connection refused" in line and "Check DATABASE_URL" in line
    assert "secret" not in line


def test_a_database_that_does_not_answer_is_one_line_within_the_connect_timeout(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"postgresql://todo@127.0.0.1:{silent.getsockname()[1]}/todo?connect_timeout=1"
        started = time.monotonic()
        result = _todo_api(tmp_path, "migrate", DATABASE_URL=url)
        took = time.monotonic() - started
    line = _one_line_failure(result)
    assert "no answer within 1 s" in line, line
    assert took < 20


@pytest.mark.parametrize("migrate_on_start", ["true", "false"])
def test_a_missing_database_is_one_line(
    tmp_path: Path, server_url: DatabaseURL, migrate_on_start: str
) -> None:
    url = server_url.with_database("todo_no_such_database")
    result = _todo_api(
        tmp_path,
        "serve",
        "--port",
        str(free_port()),
        DATABASE_URL=url.url,
        MIGRATE_ON_START=migrate_on_start,
    )
    line = _one_line_failure(result)
    assert line.startswith("Database 'todo_no_such_database' does not exist on "), line
    assert line.endswith(": create it (createdb todo_no_such_database) or fix DATABASE_URL."), line


def test_migrate_failures_are_one_line_too(tmp_path: Path, server_url: DatabaseURL) -> None:
    result = _todo_api(tmp_path, "migrate", DATABASE_URL=server_url.with_database("todo_nowhere").url)
    assert "does not exist" in _one_line_failure(result)


def _wrapped(error: BaseException) -> BaseException:
    """`error` as SQLAlchemy and Alembic hand it on: the cause of another exception."""
    try:
        try:
            raise error
        except BaseException as inner:
            raise RuntimeError("while migrating") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            asyncpg.InvalidPasswordError('password authentication failed for user "todo"'),
            "The database at postgresql://todo:***@db.example:5432 refused the password for user"
            " 'todo': fix it in DATABASE_URL.",
        ),
        (
            asyncpg.InvalidCatalogNameError('database "tasks" does not exist'),
            "Database 'tasks' does not exist on postgresql://todo:***@db.example:5432:"
            " create it (createdb tasks) or fix DATABASE_URL.",
        ),
        (
            asyncpg.InvalidAuthorizationSpecificationError('role "todo" does not exist'),
            "The database at postgresql://todo:***@db.example:5432 refused user 'todo': role \"todo\""
            " does not exist. Fix the user in DATABASE_URL (or the server's pg_hba.conf).",
        ),
        (
            ConnectionRefusedError(111, "Connect call failed ('10.0.0.1', 5432)"),
            "Cannot reach the database at postgresql://todo:***@db.example:5432/tasks: connection refused"
            " (nothing listens there). Check DATABASE_URL and that the server is running.",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "Cannot reach the database at postgresql://todo:***@db.example:5432/tasks: unknown host"
            " (Name or service not known). Check DATABASE_URL and that the server is running.",
        ),
        (
            TimeoutError(),
            "Cannot reach the database at postgresql://todo:***@db.example:5432/tasks: no answer within"
            " 3 s. Check DATABASE_URL and that the server is running.",
        ),
    ],
)
def test_database_problems_name_the_cause_and_what_to_do(error: BaseException, expected: str) -> None:
    url = DatabaseURL.parse("postgresql://todo:hunter2@db.example:5432/tasks")
    assert cli.database_problem(_wrapped(error), url, "DATABASE_URL", 3.0) == expected
    assert cli.database_problem(_wrapped(ValueError("a bug")), url, "DATABASE_URL") is None


# ---------------------------------------------------------------------------- dev-token


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", ""], "argument --user: must not be empty"),
        (["--user", "   "], "argument --user: must not be empty"),
        (["--user", "dora", "--ttl", "0"], "argument --ttl: must be a positive number of seconds (got 0)"),
        (["--user", "dora", "--ttl", "-60"], "argument --ttl: must be a positive number of seconds"),
        (["--user", "dora", "--ttl", "1h"], "argument --ttl: must be a whole number of seconds"),
    ],
)
def test_dev_token_refuses_an_empty_user_and_a_lifetime_that_is_not_positive(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = _todo_api(tmp_path, "dev-token", *args, BETTER_AUTH_SECRET=SECRET)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_dev_token_lives_an_hour_by_default(tmp_path: Path) -> None:
    result = _todo_api(tmp_path, "dev-token", "--user", "dora", BETTER_AUTH_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600
    assert "(default 3600)" in _todo_api(tmp_path, "dev-token", "--help").stdout
