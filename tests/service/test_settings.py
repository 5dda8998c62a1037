"""Configuration: DATABASE_URL as pasted from hosting dashboards, and one clear error per bad value."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from api.settings import DEFAULT_CORS_ORIGINS, SettingsError, load_settings
from db.url import DatabaseURL, DatabaseURLError

NEON = (
    "postgresql://neondb_owner:npg_secret@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech"
    "/neondb?sslmode=require&channel_binding=require"
)


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:p@db.example:5432/app",
        "postgres://u:p@db.example:5432/app",
        "postgresql+asyncpg://u:p@db.example:5432/app",
    ],
)
def test_accepted_schemes(raw: str) -> None:
    url = DatabaseURL.parse(raw)
    assert url.asyncpg_dsn == "postgresql://u:p@db.example:5432/app"
    assert url.database == "app"


def test_neon_url_works_as_pasted() -> None:
    url = DatabaseURL.parse(NEON)
    query = parse_qs(urlsplit(url.asyncpg_dsn).query)
    assert query == {"sslmode": ["require"]}  # channel_binding is libpq-only: dropped
    assert url.sslmode == "require"
    assert "npg_secret" not in url.redacted


def test_translated_url_connects(server_url: DatabaseURL) -> None:
    """asyncpg refuses channel_binding; the translated URL connects (sslmode=prefer here,
    as the local server has no TLS)."""
    parts = urlsplit(server_url.asyncpg_dsn)
    sep = "&" if parts.query else "?"
    raw = server_url.asyncpg_dsn + f"{sep}sslmode=prefer&channel_binding=require"

    async def connect(dsn: str) -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    assert asyncio.run(connect(DatabaseURL.parse(raw).asyncpg_dsn)) == 1


def test_libpq_connect_timeout_becomes_asyncpgs_timeout(server_url: DatabaseURL) -> None:
    """asyncpg would send connect_timeout to the server as a setting, which the server
    refuses: it is taken out of the URL and passed as asyncpg's timeout."""
    sep = "&" if urlsplit(server_url.asyncpg_dsn).query else "?"
    url = DatabaseURL.parse(server_url.asyncpg_dsn + f"{sep}connect_timeout=10&application_name=x")
    assert "connect_timeout" not in url.asyncpg_dsn
    assert url.connect_args == {"timeout": 10.0}
    assert DatabaseURL.parse(url.url) == url  # survives the hand-over to worker processes

    async def connect() -> str:
        conn = await asyncpg.connect(url.asyncpg_dsn, **url.connect_args)
        try:
            return str(await conn.fetchval("SHOW application_name"))
        finally:
            await conn.close()

    assert asyncio.run(connect()) == "x"
    assert DatabaseURL.parse("postgresql://h/db?connect_timeout=0").connect_args == {}
    with pytest.raises(DatabaseURLError):
        DatabaseURL.parse("postgresql://h/db?connect_timeout=soon")


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://u@h/db",
        "http://h/db",
        "postgresql://h/db?sslmode=sometimes",
        "postgresql://h/db?foo=1",
        "postgresql://h/db?server_settings=x",
    ],
)
def test_bad_database_urls(raw: str) -> None:
    with pytest.raises(DatabaseURLError):
        DatabaseURL.parse(raw)


def test_jwks_without_an_audience_is_refused() -> None:
    """JWKS tokens must carry the expected iss and aud: with no BETTER_AUTH_URL to
    default from, both must be set."""
    with pytest.raises(SettingsError, match="JWT_AUDIENCE"):
        load_settings({"JWT_JWKS_URL": "https://auth.example/jwks", "JWT_ISSUER": "https://auth.example"})
    s = load_settings(
        {
            "JWT_JWKS_URL": "https://auth.example/jwks",
            "JWT_ISSUER": "https://auth.example",
            "JWT_AUDIENCE": "https://auth.example",
        }
    )
    assert s.jwt_audience == "https://auth.example"


def test_defaults_from_better_auth_url() -> None:
    s = load_settings({"BETTER_AUTH_URL": "https://app.example.com/"})
    assert s.jwt_jwks_url == "https://app.example.com/api/auth/jwks"
    assert s.jwt_issuer == s.jwt_audience == "https://app.example.com"
    assert not s.jwt_issuer_explicit and not s.jwt_audience_explicit
    assert s.jwt_leeway_seconds == 30
    assert s.cors_origins == DEFAULT_CORS_ORIGINS


def test_explicit_values_win() -> None:
    s = load_settings(
        {
            "BETTER_AUTH_URL": "https://app.example.com",
            "JWT_JWKS_URL": "https://keys.example.com/jwks",
            "JWT_ISSUER": "https://issuer.example.com",
            "JWT_AUDIENCE": "tasks",
            "CORS_ORIGINS": "https://a.example, https://b.example/",
            "JWT_LEEWAY_SECONDS": "5",
        }
    )
    assert s.jwt_jwks_url == "https://keys.example.com/jwks"
    assert (s.jwt_issuer, s.jwt_audience) == ("https://issuer.example.com", "tasks")
    assert s.jwt_issuer_explicit and s.jwt_audience_explicit
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.jwt_leeway_seconds == 5


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "APP_ENV": "staging",
                "DATABASE_URL": "mysql://x",
                "BETTER_AUTH_URL": "not a url",
                "JWT_LEEWAY_SECONDS": "lots",
                "DB_POOL_MAX_SIZE": "0",
                "CORS_ORIGINS": "ftp://x",
            }
        )
    text = "\n".join(caught.value.problems)
    for name in ("APP_ENV", "DATABASE_URL", "BETTER_AUTH_URL", "JWT_LEEWAY_SECONDS", "DB_POOL_MAX_SIZE",
                 "CORS_ORIGINS"):  # fmt: skip
        assert name in text
    assert len(caught.value.problems) == 6


def test_production_requires_auth_and_database() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"APP_ENV": "production"})
    assert len(caught.value.problems) == 2
    with pytest.raises(SettingsError):
        load_settings({"APP_ENV": "production", "BETTER_AUTH_SECRET": "short", "DATABASE_URL": NEON})
    ok = load_settings({"APP_ENV": "production", "BETTER_AUTH_SECRET": "s" * 32, "DATABASE_URL": NEON})
    assert ok.is_production and ok.auth_configured


def test_pooler_mode_from_the_url_or_the_setting() -> None:
    """Prisma's ?pgbouncer=true, Neon's -pooler host and Supabase's pooler host mean a
    transaction-mode pooler; DB_POOLER overrides; the flag is never sent to the server."""
    flagged = DatabaseURL.parse("postgresql://u:p@db.example.com:6432/app?pgbouncer=true&sslmode=require")
    assert flagged.pooled and "pgbouncer" not in flagged.asyncpg_dsn
    assert DatabaseURL.parse(flagged.url) == flagged  # survives the hand-off to workers
    assert DatabaseURL.parse(NEON).pooled
    assert DatabaseURL.parse(
        "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
    ).pooled
    assert not DatabaseURL.parse("postgresql://u@db.ref.supabase.co:5432/postgres").pooled
    unflagged = DatabaseURL.parse(NEON.replace("-pooler", "") + "&pgbouncer=false")
    assert not unflagged.pooled and DatabaseURL.parse(unflagged.url) == unflagged
    with pytest.raises(DatabaseURLError, match="pgbouncer must be true or false"):
        DatabaseURL.parse("postgresql://h/db?pgbouncer=maybe")

    base = {"APP_ENV": "test"}
    assert load_settings({**base, "DATABASE_URL": NEON}).db_pooled
    assert not load_settings({**base, "DATABASE_URL": NEON, "DB_POOLER": "none"}).db_pooled
    assert load_settings({**base, "DATABASE_URL": "postgresql://h/db", "DB_POOLER": "transaction"}).db_pooled
    assert not load_settings({**base, "DATABASE_URL": "postgresql://h/db"}).db_pooled


def test_migrations_prefer_the_direct_url() -> None:
    env = {"APP_ENV": "test", "DATABASE_URL": NEON, "DATABASE_DIRECT_URL": NEON.replace("-pooler", "")}
    settings = load_settings(env)
    assert settings.database_url is not None
    url, pooled = settings.migration_database(settings.database_url)
    assert (url, pooled) == (settings.database_direct_url, False)
    without = load_settings({"APP_ENV": "test", "DATABASE_URL": NEON})
    assert without.database_url is not None
    assert without.migration_database(without.database_url) == (without.database_url, True)


def test_bad_production_settings_are_each_reported() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "APP_ENV": "test",
                "DB_POOLER": "session",
                "DATABASE_DIRECT_URL": NEON,
                "DB_STATEMENT_TIMEOUT_SECONDS": "0",
                "SHUTDOWN_DRAIN_SECONDS": "soon",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "DB_POOLER must be auto, transaction or none (got 'session')" in problems
    assert "DATABASE_DIRECT_URL must not go through a pooler" in problems
    assert "DB_STATEMENT_TIMEOUT_SECONDS must be between 0.1 and 3600.0 (got 0.0)" in problems
    assert "SHUTDOWN_DRAIN_SECONDS must be a number (got 'soon')" in problems


def test_cors_defaults_cover_local_dev_servers_but_not_production() -> None:
    dev = load_settings({"APP_ENV": "development"}).cors_origins
    assert {"http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:5173"} <= set(dev)
    production = load_settings(
        {"APP_ENV": "production", "BETTER_AUTH_SECRET": "s" * 40, "DATABASE_URL": NEON}
    )
    assert production.cors_origins == ()
    explicit = {"APP_ENV": "production", "BETTER_AUTH_SECRET": "s" * 40, "DATABASE_URL": NEON}
    assert load_settings({**explicit, "CORS_ORIGINS": "https://app.example"}).cors_origins == (
        "https://app.example",
    )
