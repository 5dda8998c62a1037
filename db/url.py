"""DATABASE_URL as pasted from a hosting dashboard, translated for asyncpg and SQLAlchemy.

Accepts postgresql://, postgres:// and postgresql+asyncpg://. libpq-only query
parameters that asyncpg does not understand (channel_binding, and friends) are
dropped; sslmode is kept because asyncpg understands it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
_SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
# libpq parameters asyncpg would otherwise forward to the server as settings and fail on.
_DROPPED = {"channel_binding", "gssencmode", "sslcompression", "target_session_attrs_libpq"}
_KEPT = {
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "host", "port",
    "user", "password", "dbname", "database", "connect_timeout", "application_name",
    "target_session_attrs", "options", "passfile", "server_settings",
}  # fmt: skip


class DatabaseURLError(ValueError):
    pass


@dataclass(frozen=True)
class DatabaseURL:
    asyncpg_dsn: str
    sslmode: str | None
    database: str

    @classmethod
    def parse(cls, raw: str) -> DatabaseURL:
        parts = urlsplit(raw.strip())
        if parts.scheme not in _SCHEMES:
            raise DatabaseURLError(
                f"scheme must be one of postgresql://, postgres://, postgresql+asyncpg://"
                f" (got {parts.scheme or 'none'}://)"
            )
        params: list[tuple[str, str]] = []
        sslmode: str | None = None
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _DROPPED:
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
        return cls(asyncpg_dsn=dsn, sslmode=sslmode, database=database)

    def with_database(self, name: str) -> DatabaseURL:
        parts = urlsplit(self.asyncpg_dsn)
        dsn = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
        return DatabaseURL(asyncpg_dsn=dsn, sslmode=self.sslmode, database=name)

    @property
    def redacted(self) -> str:
        parts = urlsplit(self.asyncpg_dsn)
        netloc = parts.netloc
        if "@" in netloc:
            creds, host = netloc.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in creds else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
