"""One settings object, read from the environment (and .env) and validated at start-up.

Every bad value is reported, each on its own line, before the service starts.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from dotenv import find_dotenv, load_dotenv
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from db.url import DatabaseURL, DatabaseURLError

N = TypeVar("N", int, float)
AppEnv = Literal["development", "test", "production"]
Pooler = Literal["auto", "transaction", "none"]
LogFormat = Literal["text", "json"]
AnnounceMode = Literal["after_commit", "in_transaction"]
# The usual local dev servers: Next.js (3000) and Vite (5173). Production has no
# default: browser origins are named explicitly there.
DEFAULT_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)
DEV_SECRET_FILE = "dev-jwt-secret"
# Fields worked out from the others, never read from a variable of their own.
_DERIVED = frozenset({"jwt_issuer_explicit", "jwt_audience_explicit", "dev_secret_generated"})


class SettingsError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


# -- One variable's value ------------------------------------------------------------------
# Validators name the variable (the field's name in capitals) in a finished line; lines of
# one error are separate problems.


def _variable(info: ValidationInfo) -> str:
    return (info.field_name or "").upper()


def _problem(*lines: str) -> PydanticCustomError:
    # The line goes in as context: a value's braces are not a template of its own.
    return PydanticCustomError("setting", "{line}", {"line": "\n".join(lines)})


def _production(info: ValidationInfo) -> bool:
    """APP_ENV (validated before the field asking) is production; a bad APP_ENV is not."""
    return info.data.get("app_env") == "production"


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _flag(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str):
        return value
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise _problem(f"{_variable(info)} must be true or false (got {value!r})")


def _between(low: N, high: N) -> AfterValidator:
    def check(value: N, info: ValidationInfo) -> N:
        if not low <= value <= high:
            raise _problem(f"{_variable(info)} must be between {low} and {high} (got {value})")
        return value

    return AfterValidator(check)


def _http_url(value: str, info: ValidationInfo) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _problem(f"{_variable(info)} must be an http(s) URL (got {value!r})")
    return value.rstrip("/")


def _database_url(value: Any, info: ValidationInfo) -> DatabaseURL | None:
    """db/url.py's translation of a pasted URL (Neon, Supabase, Prisma flags)."""
    if value is None or isinstance(value, DatabaseURL):
        return value
    try:
        return DatabaseURL.parse(value)
    except DatabaseURLError as error:
        raise _problem(f"{_variable(info)}: {error}") from None


Flag = Annotated[bool, BeforeValidator(_flag)]
HttpURL = Annotated[str, AfterValidator(_http_url)]
PostgresURL = Annotated[DatabaseURL | None, PlainValidator(_database_url)]


def _from_others() -> Any:
    """The default of a setting whose validator works it out from the settings above it."""
    return Field(default=None, validate_default=True)


class Settings(BaseSettings):
    """The service's settings: one field per variable (its name in capitals).

    Fields are validated in this order, and a validator sees the fields above it:
    APP_ENV comes first, and a setting defaulting from another comes after it.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    app_env: Annotated[AppEnv, BeforeValidator(_lower)] = "development"
    database_url: PostgresURL = _from_others()
    # A direct (unpooled) URL for migrations, when DATABASE_URL goes through a pooler.
    database_direct_url: PostgresURL = None
    db_pooler: Annotated[Pooler, BeforeValidator(_lower)] = "auto"
    data_dir: Path = Path(".data")
    better_auth_url: HttpURL | None = None
    jwt_jwks_url: HttpURL | None = _from_others()
    better_auth_secret: str | None = _from_others()
    jwt_issuer: str | None = _from_others()
    jwt_audience: str | None = _from_others()
    # HS256 tokens must carry iss/aud only when these were set explicitly.
    jwt_issuer_explicit: bool = False
    jwt_audience_explicit: bool = False
    jwt_leeway_seconds: Annotated[int, _between(0, 600)] = 30
    jwks_cache_seconds: Annotated[int, _between(1, 86400)] = 300
    jwks_min_refresh_seconds: Annotated[float, _between(0.0, 3600.0)] = 5.0
    jwks_fetch_timeout_seconds: Annotated[float, _between(0.1, 60.0)] = 3.0
    cors_origins: tuple[str, ...] = _from_others()
    db_pool_min_size: Annotated[int, _between(0, 100)] = 1
    db_pool_max_size: Annotated[int, _between(1, 200)] = 10
    db_connect_timeout_seconds: Annotated[float, _between(0.1, 300.0)] = 3.0
    db_acquire_timeout_seconds: Annotated[float, _between(0.1, 300.0)] = 3.0
    db_statement_timeout_seconds: Annotated[float, _between(0.1, 3600.0)] = 5.0
    migrate_on_start: Flag = True
    shutdown_drain_seconds: Annotated[float, _between(0.0, 600.0)] = 3.0
    shutdown_timeout_seconds: Annotated[float, _between(0.0, 3600.0)] = 10.0
    # Request logs and metrics (api/observability.py).
    log_format: Annotated[LogFormat, BeforeValidator(_lower)] = "text"
    access_log: Flag = True
    metrics_token: str | None = None
    metrics_enabled: Flag = _from_others()
    # Developer tools (api/docs.py; README "GraphiQL and API docs").
    graphql_introspection: Flag = True
    graphql_ide: Flag = _from_others()
    api_docs: Flag = _from_others()
    # Live updates (db/live.py, README "Live updates"): GraphQL subscriptions and SSE.
    live_updates: Flag = True
    # When a write's announcement is sent (db/announce.py): after its commit, batched
    # (faster), or in its own transaction (atomic with it).
    live_announce: Annotated[AnnounceMode, BeforeValidator(_lower)] = "after_commit"
    live_max_streams: Annotated[int, _between(1, 1_000_000)] = 1000
    live_max_streams_per_user: Annotated[int, _between(1, 10_000)] = 10
    live_queue_size: Annotated[int, _between(1, 100_000)] = 256
    live_replay_events: Annotated[int, _between(1, 1_000_000)] = 10_000
    live_keepalive_seconds: Annotated[float, _between(1.0, 3600.0)] = 15.0
    # Build the fast paths (schema/fast/); false builds the stock Strawberry/graphql-core/
    # FastAPI path instead, to try a new library release or to rule the shortcuts out.
    fast_paths: Flag = True
    # Set when no auth is configured outside production: a generated local secret.
    dev_secret_generated: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() reads the variables, from the environment (.env loaded into it)
        # or from a given mapping, and passes them in by field name.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _note_explicit_claims(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {
                **data,
                "jwt_issuer_explicit": data.get("jwt_issuer") is not None,
                "jwt_audience_explicit": data.get("jwt_audience") is not None,
            }
        return data

    @field_validator("database_url")
    @classmethod
    def _production_needs_a_database(
        cls, url: DatabaseURL | None, info: ValidationInfo
    ) -> DatabaseURL | None:
        if url is None and _production(info):
            raise _problem("APP_ENV=production needs DATABASE_URL (the embedded database is for development)")
        return url

    @field_validator("database_direct_url")
    @classmethod
    def _direct_means_unpooled(cls, url: DatabaseURL | None) -> DatabaseURL | None:
        if url is not None and url.pooled:
            raise _problem(
                "DATABASE_DIRECT_URL must not go through a pooler (it has pgbouncer=true or a pooler host)"
            )
        return url

    @field_validator("jwt_jwks_url", mode="before")
    @classmethod
    def _jwks_from_better_auth(cls, url: str | None, info: ValidationInfo) -> str | None:
        base = info.data.get("better_auth_url")
        return f"{base}/api/auth/jwks" if url is None and base is not None else url

    @field_validator("better_auth_secret")
    @classmethod
    def _production_needs_auth(cls, secret: str | None, info: ValidationInfo) -> str | None:
        if _production(info) and secret is not None and len(secret) < 32:
            raise _problem("BETTER_AUTH_SECRET must be at least 32 characters in production")
        if _production(info) and secret is None and info.data.get("jwt_jwks_url") is None:
            raise _problem(
                "APP_ENV=production needs BETTER_AUTH_URL (JWKS) or BETTER_AUTH_SECRET (HS256):"
                " refusing to start without a way to verify tokens"
            )
        return secret

    @field_validator("jwt_issuer", "jwt_audience")
    @classmethod
    def _claims_from_better_auth(cls, claim: str | None, info: ValidationInfo) -> str | None:
        claim = claim or info.data.get("better_auth_url")
        jwks_needs_both = info.field_name == "jwt_audience" and info.data.get("jwt_jwks_url")
        if jwks_needs_both and (claim is None or info.data.get("jwt_issuer") is None):
            raise _problem("JWT_JWKS_URL is set: also set BETTER_AUTH_URL or JWT_ISSUER and JWT_AUDIENCE")
        return claim

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, raw: Any, info: ValidationInfo) -> Any:
        if raw is None:
            return () if _production(info) else DEFAULT_CORS_ORIGINS
        if not isinstance(raw, str):
            return raw
        origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
        bad = [o for o in origins if o != "*" and urlsplit(o).scheme not in ("http", "https")]
        if bad:
            raise _problem(*(f"CORS_ORIGINS entries must be http(s) origins or * (got {o!r})" for o in bad))
        return origins

    @field_validator("db_pool_max_size")
    @classmethod
    def _pool_sizes_in_order(cls, largest: int, info: ValidationInfo) -> int:
        smallest = info.data.get("db_pool_min_size")
        if smallest is not None and smallest > largest:
            raise _problem(f"DB_POOL_MIN_SIZE ({smallest}) must not exceed DB_POOL_MAX_SIZE ({largest})")
        return largest

    @field_validator("metrics_token")
    @classmethod
    def _long_token_in_production(cls, token: str | None, info: ValidationInfo) -> str | None:
        if token is not None and _production(info) and len(token) < 16:
            raise _problem("METRICS_TOKEN must be at least 16 characters in production")
        return token

    @field_validator("metrics_enabled", mode="before")
    @classmethod
    def _metrics_by_default(cls, enabled: Any, info: ValidationInfo) -> Any:
        # In production /metrics is served without a token only when asked for explicitly.
        if enabled is None:
            return not _production(info) or info.data.get("metrics_token") is not None
        return enabled

    @field_validator("graphql_ide", "api_docs", mode="before")
    @classmethod
    def _tools_outside_production(cls, on: Any, info: ValidationInfo) -> Any:
        # GraphiQL and /docs, /redoc are off in production unless asked for; introspection
        # stays on everywhere (README "GraphiQL and API docs" says why). GraphiQL also
        # follows introspection, which it reads the schema by.
        if on is None:
            follows = info.field_name != "graphql_ide" or info.data.get("graphql_introspection", True)
            return not _production(info) and follows
        return on

    @field_validator("graphql_ide")
    @classmethod
    def _ide_needs_introspection(cls, on: bool, info: ValidationInfo) -> bool:
        if on and info.data.get("graphql_introspection") is False:
            raise _problem(
                "GRAPHQL_IDE=true needs GRAPHQL_INTROSPECTION=true"
                " (GraphiQL reads the schema by introspection)"
            )
        return on

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
    """Settings from `env` (default: the process environment plus ./.env).

    A variable that is unset, empty or blank takes its default.
    """
    if env is None:
        if dotenv:
            # usecwd: the .env of the directory the service is started in (or a parent),
            # not one found upwards from wherever this package is installed. Loaded into
            # the environment (which wins), as worker processes and prometheus-client's
            # PROMETHEUS_MULTIPROC_DIR read it there.
            load_dotenv(find_dotenv(usecwd=True), override=False)
        env = os.environ
    variables = (name for name in Settings.model_fields if name not in _DERIVED)
    given = {name: env.get(name.upper(), "").strip() for name in variables}
    try:
        return Settings.model_validate({name: value for name, value in given.items() if value})
    except ValidationError as error:
        raise SettingsError([line for e in error.errors() for line in _lines(e)]) from None


def _lines(error: ErrorDetails) -> list[str]:
    """Pydantic's error as the project's lines: `VARIABLE must be ... (got ...)`."""
    variable = str(error["loc"][0]).upper() if error["loc"] else ""
    got = error["input"]
    kind = error["type"]
    if kind == "setting":
        return str(error["msg"]).split("\n")
    if kind in ("int_parsing", "int_from_float"):
        return [f"{variable} must be an integer (got {got!r})"]
    if kind == "float_parsing":
        return [f"{variable} must be a number (got {got!r})"]
    if kind == "literal_error":
        choices = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        return [f"{variable} must be {choices} (got {got!r})"]
    return [f"{variable}: {error['msg']} (got {got!r})"]


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

    update = {"better_auth_secret": path.read_text().strip(), "dev_secret_generated": True}
    return settings.model_copy(update=update)
