"""DATABASE_URL as pasted from a hosting dashboard, translated for asyncpg and SQLAlchemy.

Accepts postgresql://, postgres:// and postgresql+asyncpg://. libpq-only query
parameters that asyncpg does not understand (channel_binding, and friends) are
dropped; sslmode is kept because asyncpg understands it; libpq's connect_timeout
becomes asyncpg's connection timeout (asyncpg would otherwise send it to the
server as a setting, which the server refuses). Prisma's `pgbouncer=true` marks a
transaction-mode pooler (see db/engine.py) and is not sent on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
_SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
# libpq parameters asyncpg would otherwise forward to the server as settings and fail on.
_DROPPED = {"channel_binding", "gssencmode", "sslcompression", "target_session_attrs_libpq"}
_KEPT = {
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "host", "port",
    "user", "password", "dbname", "database", "application_name",
    "target_session_attrs", "options", "passfile", "sslnegotiation",
}  # fmt: skip


class DatabaseURLError(ValueError):
    pass


@dataclass(frozen=True)
class DatabaseURL:
    asyncpg_dsn: str
    sslmode: str | None
    database: str
    connect_timeout: float | None = None
    # A transaction-mode pooler in front of the server (PgBouncer, Neon's -pooler host,
    # Supabase's Supavisor): said by Prisma's `?pgbouncer=true`, or known from the host.
    pooled: bool = False

    @classmethod
    def parse(cls, raw: str) -> DatabaseURL:
        parts = urlsplit(raw.strip())
        if parts.fragment:
            # A `#` in a pasted password starts a fragment: the host, database and
            # options after it would be silently lost.
            raise DatabaseURLError("contains '#': percent-encode it (%23) if it is part of the password")
        if parts.scheme not in _SCHEMES:
            raise DatabaseURLError(
                f"scheme must be one of postgresql://, postgres://, postgresql+asyncpg://"
                f" (got {parts.scheme or 'none'}://)"
            )
        params: list[tuple[str, str]] = []
        sslmode: str | None = None
        connect_timeout: float | None = None
        pooled = _pooler_host(parts.hostname or "")
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _DROPPED:
                continue
            if key == "pgbouncer":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise DatabaseURLError("pgbouncer must be true or false")
                pooled = value.lower() in ("true", "1")
                continue
            if key == "connect_timeout":
                try:
                    connect_timeout = float(value)
                except ValueError:
                    raise DatabaseURLError("connect_timeout must be a number of seconds") from None
                if not math.isfinite(connect_timeout):
                    raise DatabaseURLError("connect_timeout must be a number of seconds")
                if connect_timeout <= 0:  # libpq: 0 or less means wait forever
                    connect_timeout = None
                continue
            if key == "ssl":  # SQLAlchemy/asyncpg spelling
                key = "sslmode"
            if key == "sslmode":
                if value not in _SSLMODES:
                    raise DatabaseURLError(f"sslmode must be one of {sorted(_SSLMODES)}")
                sslmode = value
            elif key not in _KEPT:
                raise DatabaseURLError(f"unsupported connection parameter {key!r}")
            params.append((key, value))
        database = parts.path.lstrip("/") or dict(params).get("dbname", "")
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(params), ""))
        return cls(
            asyncpg_dsn=dsn,
            sslmode=sslmode,
            database=database,
            connect_timeout=connect_timeout,
            pooled=pooled,
        )

    def with_database(self, name: str) -> DatabaseURL:
        parts = urlsplit(self.asyncpg_dsn)
        dsn = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
        return replace(self, asyncpg_dsn=dsn, database=name)

    @property
    def url(self) -> str:
        """This URL in a form parse() reads back unchanged (for handing to workers)."""
        extra = []
        if self.connect_timeout is not None:
            extra.append(f"connect_timeout={self.connect_timeout:g}")
        if self.pooled != _pooler_host(urlsplit(self.asyncpg_dsn).hostname or ""):
            extra.append(f"pgbouncer={'true' if self.pooled else 'false'}")
        if not extra:
            return self.asyncpg_dsn
        separator = "&" if urlsplit(self.asyncpg_dsn).query else "?"
        return self.asyncpg_dsn + separator + "&".join(extra)

    @property
    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for asyncpg.connect / create_pool."""
        return {} if self.connect_timeout is None else {"timeout": self.connect_timeout}

    @property
    def redacted(self) -> str:
        parts = urlsplit(self.asyncpg_dsn)
        netloc = parts.netloc
        if "@" in netloc:
            creds, host = netloc.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in creds else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _pooler_host(host: str) -> bool:
    """Hosts that are transaction-mode poolers by name: Neon's `-pooler` endpoints and
    Supabase's Supavisor (whose session mode on port 5432 is safe either way)."""
    host = host.lower()
    return "-pooler." in host or host.endswith(".pooler.supabase.com")
