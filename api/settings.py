"""One settings object, read from the environment (and .env) and validated at start-up.

Every bad value is reported, each on its own line, before the service starts.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from dotenv import find_dotenv, load_dotenv

from db.url import DatabaseURL, DatabaseURLError

N = TypeVar("N", int, float)
AppEnv = Literal["development", "test", "production"]
Pooler = Literal["auto", "transaction", "none"]
LogFormat = Literal["text", "json"]
# The usual local dev servers: Next.js (3000) and Vite (5173). Production has no
# default: browser origins are named explicitly there.
DEFAULT_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)
DEV_SECRET_FILE = "dev-jwt-secret"


class SettingsError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    app_env: AppEnv = "development"
    database_url: DatabaseURL | None = None
    # A direct (unpooled) URL for migrations, when DATABASE_URL goes through a pooler.
    database_direct_url: DatabaseURL | None = None
    db_pooler: Pooler = "auto"
    data_dir: Path = Path(".data")
    better_auth_url: str | None = None
    better_auth_secret: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # HS256 tokens must carry iss/aud only when these were set explicitly.
    jwt_issuer_explicit: bool = False
    jwt_audience_explicit: bool = False
    jwt_leeway_seconds: int = 30
    jwks_cache_seconds: int = 300
    jwks_min_refresh_seconds: float = 5.0
    jwks_fetch_timeout_seconds: float = 3.0
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    db_connect_timeout_seconds: float = 3.0
    db_acquire_timeout_seconds: float = 3.0
    db_statement_timeout_seconds: float = 5.0
    migrate_on_start: bool = True
    shutdown_drain_seconds: float = 3.0
    shutdown_timeout_seconds: float = 10.0
    # Request logs and metrics (api/observability.py).
    log_format: LogFormat = "text"
    access_log: bool = True
    metrics_enabled: bool = True
    metrics_token: str | None = None
    # Developer tools (api/docs.py; README "GraphiQL and API docs").
    graphql_ide: bool = True
    graphql_introspection: bool = True
    api_docs: bool = True
    # Live updates (db/live.py, README "Live updates"): GraphQL subscriptions and SSE.
    live_updates: bool = True
    live_max_streams: int = 1000
    live_max_streams_per_user: int = 10
    live_queue_size: int = 256
    live_replay_events: int = 10_000
    live_keepalive_seconds: float = 15.0
    # The shortcuts of schema/fast (listed there); false: stock Strawberry/FastAPI/Starlette.
    fast_paths: bool = True
    # Set when no auth is configured outside production: a generated local secret.
    dev_secret_generated: bool = field(default=False)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def db_pooled(self) -> bool:
        """DATABASE_URL goes through a transaction-mode pooler (see db/engine.py)."""
        if self.db_pooler == "auto":
            return self.database_url is not None and self.database_url.pooled
        return self.db_pooler == "transaction"

    def migration_database(self, url: DatabaseURL) -> tuple[DatabaseURL, bool]:
        """Where migrations run, and whether through a pooler: DATABASE_DIRECT_URL when
        set, else `url` (the resolved DATABASE_URL)."""
        if self.database_direct_url is not None:
            return self.database_direct_url, False
        return url, self.db_pooler == "transaction" or (self.db_pooler == "auto" and url.pooled)

    @property
    def auth_configured(self) -> bool:
        return bool(self.better_auth_secret or self.jwt_jwks_url)


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Settings from `env` (default: the process environment plus ./.env)."""
    if env is None:
        if dotenv:
            # usecwd: the .env of the directory the service is started in (or a parent),
            # not one found upwards from wherever this package is installed.
            load_dotenv(find_dotenv(usecwd=True), override=False)
        env = os.environ
    return _parse(env)


def _parse(env: Mapping[str, str]) -> Settings:
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def number(name: str, default: N, low: N, high: N) -> N:
        """An int or float setting (the type of `default`), within [low, high]."""
        raw = get(name)
        if raw is None:
            return default
        kind = type(default)
        try:
            value = kind(raw)
        except ValueError:
            article = "an integer" if kind is int else "a number"
            problems.append(f"{name} must be {article} (got {raw!r})")
            return default
        if not low <= value <= high:
            problems.append(f"{name} must be between {low} and {high} (got {value})")
        return value

    def http_url(name: str) -> str | None:
        raw = get(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"{name} must be an http(s) URL (got {raw!r})")
            return None
        return raw.rstrip("/")

    app_env = (get("APP_ENV") or "development").lower()
    if app_env not in ("development", "test", "production"):
        problems.append(f"APP_ENV must be development, test or production (got {app_env!r})")
        app_env = "development"

    def database(name: str) -> DatabaseURL | None:
        raw = get(name)
        if raw is None:
            return None
        try:
            return DatabaseURL.parse(raw)
        except DatabaseURLError as error:
            problems.append(f"{name}: {error}")
            return None

    database_url = database("DATABASE_URL")
    direct_url = database("DATABASE_DIRECT_URL")
    if direct_url is not None and direct_url.pooled:
        problems.append(
            "DATABASE_DIRECT_URL must not go through a pooler (it has pgbouncer=true or a pooler host)"
        )
    pooler = (get("DB_POOLER") or "auto").lower()
    if pooler not in ("auto", "transaction", "none"):
        problems.append(f"DB_POOLER must be auto, transaction or none (got {pooler!r})")
        pooler = "auto"

    better_auth_url = http_url("BETTER_AUTH_URL")
    secret = get("BETTER_AUTH_SECRET")
    if secret is not None and app_env == "production" and len(secret) < 32:
        problems.append("BETTER_AUTH_SECRET must be at least 32 characters in production")
    jwks_url = http_url("JWT_JWKS_URL")
    if jwks_url is None and better_auth_url is not None and get("JWT_JWKS_URL") is None:
        jwks_url = f"{better_auth_url}/api/auth/jwks"
    issuer, audience = get("JWT_ISSUER"), get("JWT_AUDIENCE")

    origins_raw = get("CORS_ORIGINS")
    origins: tuple[str, ...] = () if app_env == "production" else DEFAULT_CORS_ORIGINS
    if origins_raw is not None:
        origins = tuple(o.strip().rstrip("/") for o in origins_raw.split(",") if o.strip())
        for origin in origins:
            if origin != "*" and urlsplit(origin).scheme not in ("http", "https"):
                problems.append(f"CORS_ORIGINS entries must be http(s) origins or * (got {origin!r})")

    n_problems_before_pool = len(problems)
    pool_min = number("DB_POOL_MIN_SIZE", 1, 0, 100)
    pool_max = number("DB_POOL_MAX_SIZE", 10, 1, 200)
    if len(problems) == n_problems_before_pool and pool_min > pool_max:
        problems.append(f"DB_POOL_MIN_SIZE ({pool_min}) must not exceed DB_POOL_MAX_SIZE ({pool_max})")

    def flag(name: str) -> bool | None:
        """A true/false setting; None when unset."""
        raw = get(name)
        if raw is None:
            return None
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        problems.append(f"{name} must be true or false (got {raw!r})")
        return None

    log_format = (get("LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        problems.append(f"LOG_FORMAT must be text or json (got {log_format!r})")
        log_format = "text"
    metrics_token = get("METRICS_TOKEN")
    if metrics_token is not None and app_env == "production" and len(metrics_token) < 16:
        problems.append("METRICS_TOKEN must be at least 16 characters in production")
    # In production /metrics is served without a token only when asked for explicitly.
    metrics_enabled = flag("METRICS_ENABLED")
    if metrics_enabled is None:
        metrics_enabled = app_env != "production" or metrics_token is not None
    # GraphiQL and /docs, /redoc are off in production unless asked for; introspection
    # stays on everywhere (README "GraphiQL and API docs" says why).
    graphql_introspection = flag("GRAPHQL_INTROSPECTION") is not False
    graphql_ide = flag("GRAPHQL_IDE")
    if graphql_ide and not graphql_introspection:
        problems.append(
            "GRAPHQL_IDE=true needs GRAPHQL_INTROSPECTION=true (GraphiQL reads the schema by introspection)"
        )
    if graphql_ide is None:
        graphql_ide = app_env != "production" and graphql_introspection
    api_docs = flag("API_DOCS")

    migrate_raw = (get("MIGRATE_ON_START") or "true").lower()
    if migrate_raw not in ("true", "false", "1", "0", "yes", "no"):
        problems.append(f"MIGRATE_ON_START must be true or false (got {migrate_raw!r})")

    live_raw = (get("LIVE_UPDATES") or "true").lower()
    if live_raw not in ("true", "false", "1", "0", "yes", "no"):
        problems.append(f"LIVE_UPDATES must be true or false (got {live_raw!r})")

    settings = Settings(
        app_env=app_env,  # type: ignore[arg-type]
        database_url=database_url,
        data_dir=Path(get("DATA_DIR") or ".data"),
        better_auth_url=better_auth_url,
        better_auth_secret=secret,
        jwt_jwks_url=jwks_url,
        jwt_issuer=issuer or better_auth_url,
        jwt_audience=audience or better_auth_url,
        jwt_issuer_explicit=issuer is not None,
        jwt_audience_explicit=audience is not None,
        jwt_leeway_seconds=number("JWT_LEEWAY_SECONDS", 30, 0, 600),
        jwks_cache_seconds=number("JWKS_CACHE_SECONDS", 300, 1, 86400),
        jwks_min_refresh_seconds=number("JWKS_MIN_REFRESH_SECONDS", 5.0, 0.0, 3600.0),
        jwks_fetch_timeout_seconds=number("JWKS_FETCH_TIMEOUT_SECONDS", 3.0, 0.1, 60.0),
        cors_origins=origins,
        db_pool_min_size=pool_min,
        db_pool_max_size=pool_max,
        database_direct_url=direct_url,
        db_pooler=pooler,  # type: ignore[arg-type]
        db_connect_timeout_seconds=number("DB_CONNECT_TIMEOUT_SECONDS", 3.0, 0.1, 300.0),
        db_acquire_timeout_seconds=number("DB_ACQUIRE_TIMEOUT_SECONDS", 3.0, 0.1, 300.0),
        db_statement_timeout_seconds=number("DB_STATEMENT_TIMEOUT_SECONDS", 5.0, 0.1, 3600.0),
        migrate_on_start=migrate_raw in ("true", "1", "yes"),
        shutdown_drain_seconds=number("SHUTDOWN_DRAIN_SECONDS", 3.0, 0.0, 600.0),
        shutdown_timeout_seconds=number("SHUTDOWN_TIMEOUT_SECONDS", 10.0, 0.0, 3600.0),
        live_updates=live_raw not in ("false", "0", "no"),
        live_max_streams=number("LIVE_MAX_STREAMS", 1000, 1, 1_000_000),
        live_max_streams_per_user=number("LIVE_MAX_STREAMS_PER_USER", 10, 1, 10_000),
        live_queue_size=number("LIVE_QUEUE_SIZE", 256, 1, 100_000),
        live_replay_events=number("LIVE_REPLAY_EVENTS", 10_000, 1, 1_000_000),
        live_keepalive_seconds=number("LIVE_KEEPALIVE_SECONDS", 15.0, 1.0, 3600.0),
        log_format=log_format,  # type: ignore[arg-type]
        access_log=flag("ACCESS_LOG") is not False,
        metrics_enabled=metrics_enabled,
        metrics_token=metrics_token,
        graphql_ide=graphql_ide,
        graphql_introspection=graphql_introspection,
        api_docs=app_env != "production" if api_docs is None else api_docs,
        fast_paths=flag("FAST_PATHS") is not False,
    )
    if settings.jwt_jwks_url is not None and (settings.jwt_issuer is None or settings.jwt_audience is None):
        problems.append("JWT_JWKS_URL is set: also set BETTER_AUTH_URL or JWT_ISSUER and JWT_AUDIENCE")
    if settings.is_production:
        if not settings.auth_configured:
            problems.append(
                "APP_ENV=production needs BETTER_AUTH_URL (JWKS) or BETTER_AUTH_SECRET (HS256):"
                " refusing to start without a way to verify tokens"
            )
        if settings.database_url is None:
            problems.append(
                "APP_ENV=production needs DATABASE_URL (the embedded database is for development)"
            )
    if problems:
        raise SettingsError(problems)
    return settings


def with_dev_secret(settings: Settings) -> Settings:
    """Outside production with no auth configured: a local HS256 secret kept in the
    data directory, so `todo-api dev-token` and the running service agree."""
    if settings.auth_configured or settings.is_production:
        return settings
    path = settings.data_dir / DEV_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)

    return replace(settings, better_auth_secret=path.read_text().strip(), dev_secret_generated=True)
