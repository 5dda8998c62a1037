"""`todo-api`: serve (the default), migrate, dev-token, schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time

import jwt
import uvicorn

from api.embedded import start_embedded_postgres
from api.settings import Settings, SettingsError, load_settings, with_dev_secret
from db.url import DatabaseURL

log = logging.getLogger("api")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    command = args.command or "serve"
    if command == "schema":  # needs no configuration
        from schema.schema import schema

        print(schema.as_str())
        return
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    if command == "migrate":
        from db.migrations import run_migrations  # serving processes never load Alembic

        url, pooled = settings.migration_database(_database_url(settings))
        asyncio.run(run_migrations(url, pooled=pooled))
        print("Database is at the latest migration.")
    elif command == "dev-token":
        print(dev_token(settings, args.user, email=args.email, name=args.name, ttl=args.ttl))
    else:
        serve(settings, host=args.host, port=args.port, workers=args.workers)


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    # Resolve the database and the dev secret once here, so every worker agrees.
    os.environ["DATABASE_URL"] = _database_url(settings).url
    with_dev_secret(settings)
    if settings.migrate_on_start:
        # Once, before the workers start, and in a child process so that the serving
        # processes never load Alembic and SQLAlchemy (about 26 MB each).
        subprocess.run([sys.executable, "-m", "api", "migrate"], check=True)
        os.environ["MIGRATE_ON_START"] = "false"
    uvicorn.run(
        "api.main:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        server_header=False,
        log_level="info",
        access_log=False,
        # After the SIGTERM drain (api/drain.py): how long requests in flight may take.
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
    )


def dev_token(
    settings: Settings,
    user: str,
    *,
    email: str | None = None,
    name: str | None = None,
    ttl: int = 3600,
) -> str:
    """An HS256 token the running service accepts (shared or development secret)."""
    settings = with_dev_secret(settings)
    if settings.better_auth_secret is None:
        raise SystemExit(
            "dev-token signs with BETTER_AUTH_SECRET, which is not set; this deployment"
            " verifies Better Auth's JWKS tokens, so get one from GET /api/auth/token."
        )
    now = int(time.time())
    claims: dict[str, object] = {"sub": user, "iat": now, "exp": now + ttl}
    if email or not name:
        claims["email"] = email or f"{user}@example.com"
    claims["name"] = name or user.capitalize()
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.better_auth_secret, algorithm="HS256")


def _database_url(settings: Settings) -> DatabaseURL:
    if settings.database_url is not None:
        mode = " (through a transaction-mode pooler)" if settings.db_pooled else ""
        log.info("Using the database at %s%s", settings.database_url.redacted, mode)
        return settings.database_url
    url = start_embedded_postgres(settings.data_dir)
    log.info(
        "No DATABASE_URL set: using the embedded PostgreSQL in %s/postgres",
        settings.data_dir,
    )
    return url


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the HTTP service (the default)")
    for target in (parser, serve):
        target.add_argument("--host", default="127.0.0.1")
        target.add_argument("--port", type=int, default=8000)
        target.add_argument("--workers", type=int, default=1)
    sub.add_parser("migrate", help="upgrade the database to the latest migration")
    token = sub.add_parser("dev-token", help="print a bearer token for local use")
    token.add_argument("--user", required=True, help="the user id (token sub)")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    return parser
