"""db/url.py alone: DATABASE_URL as pasted from a dashboard, translated for asyncpg (no server)."""

from __future__ import annotations

import string
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.url import DatabaseURL, DatabaseURLError

NEON = (
    "postgresql://neondb_owner:npg_Abc123XYZ@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"
    "/neondb?sslmode=require&channel_binding=require"
)
NEON_DIRECT = NEON.replace("-pooler.", ".")
SUPABASE_TRANSACTION = (
    "postgres://postgres.abcdefghijklmnop:s3cr%23t%40pw@aws-0-eu-central-1.pooler.supabase.com:6543"
    "/postgres?pgbouncer=true"
)
SUPABASE_DIRECT = "postgresql://postgres:pw@db.abcdefghijklmnop.supabase.co:5432/postgres"


@pytest.mark.parametrize(
    ("raw", "dsn", "sslmode", "database", "pooled"),
    [
        (
            NEON,
            "postgresql://neondb_owner:npg_Abc123XYZ@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"
            "/neondb?sslmode=require",  # channel_binding dropped
            "require",
            "neondb",
            True,  # a -pooler host
        ),
        (
            NEON_DIRECT,
            "postgresql://neondb_owner:npg_Abc123XYZ@ep-cool-darkness-123456.us-east-2.aws.neon.tech"
            "/neondb?sslmode=require",
            "require",
            "neondb",
            False,
        ),
        (
            SUPABASE_TRANSACTION,
            "postgresql://postgres.abcdefghijklmnop:s3cr%23t%40pw@aws-0-eu-central-1.pooler.supabase.com:6543"
            "/postgres",  # pgbouncer=true is not sent on; the password stays encoded
            None,
            "postgres",
            True,
        ),
        (SUPABASE_DIRECT, SUPABASE_DIRECT, None, "postgres", False),
        # Prisma's flag on a host that is not a pooler by name
        (
            "postgresql://u:p@db.internal:6432/app?pgbouncer=true",
            "postgresql://u:p@db.internal:6432/app",
            None,
            "app",
            True,
        ),
        (
            "postgresql://u:p@db.internal/app?pgbouncer=1",
            "postgresql://u:p@db.internal/app",
            None,
            "app",
            True,
        ),
        # ... and against one that is
        (
            "postgresql://u:p@aws-0-x.pooler.supabase.com/app?pgbouncer=false",
            "postgresql://u:p@aws-0-x.pooler.supabase.com/app",
            None,
            "app",
            False,
        ),
        (
            "postgresql://u:p@EP-X-POOLER.NEON.TECH/app",
            "postgresql://u:p@EP-X-POOLER.NEON.TECH/app",
            None,
            "app",
            True,
        ),
        # the schemes: all become postgresql://
        ("postgres://u@localhost/app", "postgresql://u@localhost/app", None, "app", False),
        ("postgresql+asyncpg://u@localhost/app", "postgresql://u@localhost/app", None, "app", False),
        # SQLAlchemy/asyncpg's `ssl` is libpq's sslmode
        (
            "postgresql+asyncpg://u@h/app?ssl=require",
            "postgresql://u@h/app?sslmode=require",
            "require",
            "app",
            False,
        ),
        ("  postgresql://h/app\n", "postgresql://h/app", None, "app", False),  # pasted with whitespace
        ("postgresql://u@h?dbname=app", "postgresql://u@h?dbname=app", None, "app", False),
        ("postgresql://u@h", "postgresql://u@h", None, "", False),
        (
            "postgresql://u@h/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=todo",
            "postgresql://u@h/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=todo",
            "verify-full",
            "app",
            False,
        ),
        (
            "postgresql://u@h/app?gssencmode=disable&sslcompression=0&target_session_attrs=read-write",
            "postgresql://u@h/app?target_session_attrs=read-write",
            None,
            "app",
            False,
        ),
    ],
)
def test_pasted_urls(raw: str, dsn: str, sslmode: str | None, database: str, pooled: bool) -> None:
    url = DatabaseURL.parse(raw)
    assert (url.asyncpg_dsn, url.sslmode, url.database, url.pooled) == (dsn, sslmode, database, pooled)


@pytest.mark.parametrize("sslmode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"])
def test_every_libpq_sslmode_is_kept(sslmode: str) -> None:
    url = DatabaseURL.parse(f"postgresql://h/app?sslmode={sslmode}")
    assert url.sslmode == sslmode
    assert url.asyncpg_dsn.endswith(f"?sslmode={sslmode}")


@pytest.mark.parametrize(
    ("query", "timeout"),
    [
        ("connect_timeout=10", 10.0),
        ("connect_timeout=2.5", 2.5),
        ("connect_timeout=0", None),
        ("connect_timeout=-1", None),
    ],
)
def test_connect_timeout_becomes_asyncpgs_timeout(query: str, timeout: float | None) -> None:
    url = DatabaseURL.parse(f"postgresql://h/app?{query}")
    assert url.connect_timeout == timeout
    assert url.asyncpg_dsn == "postgresql://h/app"  # the server would refuse it as a setting
    assert url.connect_args == ({} if timeout is None else {"timeout": timeout})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "mysql://u@h/app",
            "scheme must be one of postgresql://, postgres://, postgresql+asyncpg:// (got mysql://)",
        ),
        ("postgresql+psycopg://u@h/app", "(got postgresql+psycopg://)"),
        ("localhost:5432/app", "(got localhost://)"),
        ("", "(got none://)"),
        ("h/app", "(got none://)"),
        (
            "postgresql://h/app?sslmode=true",
            "sslmode must be one of ['allow', 'disable', 'prefer', 'require',",
        ),
        ("postgresql://h/app?ssl=on", "sslmode must be one of"),
        ("postgresql://h/app?pgbouncer=yes", "pgbouncer must be true or false"),
        ("postgresql://h/app?pgbouncer=", "pgbouncer must be true or false"),
        ("postgresql://h/app?connect_timeout=ten", "connect_timeout must be a number of seconds"),
        ("postgresql://h/app?connect_timeout=", "connect_timeout must be a number of seconds"),
        ("postgresql://h/app?schema=public", "unsupported connection parameter 'schema'"),  # Prisma's
        ("postgresql://h/app?connection_limit=1", "unsupported connection parameter 'connection_limit'"),
    ],
)
def test_urls_refused(raw: str, message: str) -> None:
    with pytest.raises(DatabaseURLError) as refused:
        DatabaseURL.parse(raw)
    assert message in str(refused.value)


def test_a_database_url_error_is_a_value_error() -> None:
    assert issubclass(DatabaseURLError, ValueError)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_connect_timeout_that_is_not_finite_is_refused(value: str) -> None:
    with pytest.raises(DatabaseURLError, match="connect_timeout"):
        DatabaseURL.parse(f"postgresql://h/app?connect_timeout={value}")


def test_a_password_with_an_unencoded_hash_is_not_silently_truncated() -> None:
    with pytest.raises(DatabaseURLError, match="%23"):
        DatabaseURL.parse("postgresql://u:pa#ss@db.example.com/app")


# ------------------------------------------------------------------ special characters


@pytest.mark.parametrize("password", ["p@ss", "p:ss", "p/ss", "p#ss", "p?ss", "p%ss", "p ss", "pä§", "a&b=c"])
def test_a_percent_encoded_password_passes_through_untouched(password: str) -> None:
    raw = f"postgresql://user:{quote(password, safe='')}@db.example.com:5432/app?sslmode=require"
    url = DatabaseURL.parse(raw)
    parts = urlsplit(url.asyncpg_dsn)
    assert parts.hostname == "db.example.com"
    assert parts.port == 5432
    assert parts.password is not None and unquote(parts.password) == password
    assert url.database == "app"
    assert password not in url.redacted
    assert url.redacted == "postgresql://user:***@db.example.com:5432/app"


def test_an_unencoded_at_sign_in_the_password_still_finds_the_host() -> None:
    url = DatabaseURL.parse("postgresql://user:p@ss@db.example.com/app")
    assert urlsplit(url.asyncpg_dsn).hostname == "db.example.com"
    assert url.redacted == "postgresql://user:***@db.example.com/app"


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        ("postgresql://u:secret@h:5432/app?sslmode=require", "postgresql://u:***@h:5432/app"),
        ("postgresql://u@h/app", "postgresql://u@h/app"),
        ("postgresql://h/app", "postgresql://h/app"),
        ("postgresql://u:@h/app", "postgresql://u:***@h/app"),
    ],
)
def test_redacted_hides_only_the_password(raw: str, redacted: str) -> None:
    assert DatabaseURL.parse(raw).redacted == redacted


# ----------------------------------------------------------------------- with_database


def test_with_database_changes_only_the_database() -> None:
    url = DatabaseURL.parse("postgres://u:p%40ss@h:6543/app?sslmode=require&connect_timeout=3&pgbouncer=true")
    other = url.with_database("todo_test_1")
    assert other.asyncpg_dsn == "postgresql://u:p%40ss@h:6543/todo_test_1?sslmode=require"
    assert other.database == "todo_test_1"
    assert (other.sslmode, other.connect_timeout, other.pooled) == ("require", 3.0, True)
    assert url.database == "app"  # the original is unchanged (frozen)


def test_with_database_on_a_url_without_one() -> None:
    assert (
        DatabaseURL.parse("postgresql://u@h").with_database("postgres").asyncpg_dsn
        == "postgresql://u@h/postgres"
    )


# ----------------------------------------------------------------- url reads back as is


@pytest.mark.parametrize(
    "raw",
    [
        NEON,
        NEON_DIRECT,
        SUPABASE_TRANSACTION,
        SUPABASE_DIRECT,
        "postgresql://u@db.internal/app?pgbouncer=true",
        "postgresql://u@aws-0-x.pooler.supabase.com/app?pgbouncer=false",
        "postgresql://u@h/app?connect_timeout=2.5",
        "postgresql://u@h/app?sslmode=require&connect_timeout=10&pgbouncer=true",
    ],
)
def test_url_reads_back_unchanged(raw: str) -> None:
    url = DatabaseURL.parse(raw)
    assert DatabaseURL.parse(url.url) == url


HOSTS = st.sampled_from(
    ["localhost", "db.internal", "ep-x-pooler.eu-central-1.aws.neon.tech", "aws-0-x.pooler.supabase.com"]
)
NAMES = st.text(alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=20)


@given(
    host=HOSTS,
    password=st.text(min_size=1, max_size=20),
    database=NAMES,
    sslmode=st.none() | st.sampled_from(["disable", "require", "verify-full"]),
    timeout=st.none() | st.integers(min_value=1, max_value=600),
    pgbouncer=st.none() | st.booleans(),
)
def test_any_url_reads_back_unchanged(
    host: str, password: str, database: str, sslmode: str | None, timeout: int | None, pgbouncer: bool | None
) -> None:
    query = []
    if sslmode is not None:
        query.append(f"sslmode={sslmode}")
    if timeout is not None:
        query.append(f"connect_timeout={timeout}")
    if pgbouncer is not None:
        query.append(f"pgbouncer={str(pgbouncer).lower()}")
    raw = (
        f"postgres://user:{quote(password, safe='')}@{host}:5432/{database}"
        + "?" * bool(query)
        + "&".join(query)
    )
    url = DatabaseURL.parse(raw)
    assert DatabaseURL.parse(url.url) == url
    assert url.database == database
    assert url.sslmode == sslmode
    assert url.connect_timeout == timeout
    assert url.pooled == (pgbouncer if pgbouncer is not None else "pooler" in host)
    assert unquote(urlsplit(url.asyncpg_dsn).password or "") == password
