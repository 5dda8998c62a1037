"""Each run creates its own database on a real PostgreSQL and drops it afterwards.

TEST_DATABASE_URL names the server to use (CI: the machine's PostgreSQL);
without it the embedded PostgreSQL (pgserver) under .data/test/postgres is used.

The suite runs in parallel by default (pytest-xdist, `--dist loadgroup`, WORKERS
workers; see pytest_cmdline_main): every worker is its own pytest session, so every
session-scoped fixture below (databases, the live server, pgbouncer, Node harnesses) is
per worker. Databases have unique names; the embedded PostgreSQL is one server that all
workers share (pgserver counts the processes using it, under its own file lock).
`-n 0` or `-p no:xdist` runs serially (for debugging, `--pdb`).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from db.embedded import start_embedded_postgres
from db.migrations import run_migrations
from db.url import DatabaseURL
from tests.support import HS_SECRET, LiveServer, auth, hs_token, live_server, settings_for, unique_user

ROOT = Path(__file__).resolve().parent.parent

# Workers when none are asked for. Many tests wait on servers, Node or PostgreSQL rather
# than compute, so more workers than a 2-core machine has cores keep it busy (2 and 3
# workers have not been timed against 4 yet).
WORKERS = 4

# How tests are shared out (--dist loadgroup): a module's tests run on one worker, in
# order, so its module-scoped fixtures (live servers, browsers, Node servers, code
# generation) are set up once, and a worker holds one module's database connections at a
# time. These directories are one group each: their tests own PostgreSQL servers and
# pgbouncers, or measure time and load (drain, outage, slow consumers), and must not
# overlap one another. Paths relative to tests/.
GROUPED_DIRECTORIES = ("live/", "production/")

# Scheduled first, slowest first (xdist hands groups out in this order), so no worker is
# left with a long one at the end; the rest keep collection order.
SLOW_FIRST = (
    "fast/test_execution.py",
    "interop/",
    "production/",
    "service/test_embedded.py",
    "graphql_http/test_audit_gate.py",
    "service/test_browser_gate.py",
    "service/test_interop_gate.py",
    "rest/test_schemathesis.py",  # twice: fast and stock (app_path)
    "browser/",
    "typed_clients/",
    "live/",
    "service/test_cli.py",
    "graphql/test_fuzz.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Parallel unless told otherwise: `-n WORKERS --dist loadgroup` when no `-n` was
    given, xdist is loaded (`-p no:xdist` turns it off) and nothing needs one process
    (--pdb, --collect-only). Not in the workers themselves."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    if config.option.numprocesses is not None or config.option.usepdb or config.option.collectonly:
        return
    config.option.numprocesses = WORKERS
    if config.option.dist == "no":
        config.option.dist = "loadgroup"
        config.option.loadscopereorder = False  # keep SLOW_FIRST's order


def _relative_id(item: pytest.Item) -> str:
    return item.nodeid.removeprefix("tests/")


def _rank(item: pytest.Item) -> int:
    relative = _relative_id(item)
    return next((i for i, prefix in enumerate(SLOW_FIRST) if relative.startswith(prefix)), len(SLOW_FIRST))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable
    if not config.pluginmanager.hasplugin("xdist"):
        return  # -p no:xdist: the marker is not even registered
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = _relative_id(item).split("::", 1)[0]
        group = next((d for d in GROUPED_DIRECTORIES if module.startswith(d)), module)
        callspec = getattr(item, "callspec", None)
        path = callspec.params.get("app_path") if callspec is not None else None
        if path and group == module:
            # One group per module and path (see app_path): the fast and the stock half of
            # a module share no fixtures, so they can run on two workers at once.
            group = f"{module}[{path}]"
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def server_url() -> DatabaseURL:
    """The PostgreSQL server tests create their databases on."""
    raw = os.environ.get("TEST_DATABASE_URL")
    if raw:
        return DatabaseURL.parse(raw)
    return start_embedded_postgres(ROOT / ".data" / "test")


async def _admin(server: DatabaseURL, sql: str) -> None:
    conn = await asyncpg.connect(server.with_database("postgres").asyncpg_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def fresh_database(server_url: DatabaseURL) -> Iterator[Callable[[], DatabaseURL]]:
    """A factory of empty databases, all dropped at the end of the run."""
    created: list[str] = []

    def make() -> DatabaseURL:
        name = f"todo_test_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
        created.append(name)
        return server_url.with_database(name)

    yield make
    for name in created:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database(fresh_database: Callable[[], DatabaseURL]) -> DatabaseURL:
    """The shared test database, migrated to head. Tests isolate by user id."""
    url = fresh_database()
    asyncio.run(run_migrations(url))
    return url


@pytest.fixture(scope="session")
def server(database: DatabaseURL) -> Iterator[LiveServer]:
    """The service with HS256 auth (no issuer/audience configured)."""
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET)) as srv:
        yield srv


@pytest.fixture(scope="module", params=["fast", "stock"])
def app_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which implementation a behaviour test runs against: `fast` (FAST_PATHS=true, the
    shortcuts in schema/fast/ and rest_shim/fast.py) or `stock` (FAST_PATHS=false). Set in
    the environment for the module, so every settings_for() in it honours it: the
    `server` below and any app a test builds itself. Module-scoped: pytest runs a
    module's tests on one path, then on the other, and each server starts once per
    module and path. The test ids say which (`test_x[fast-...]`)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FAST_PATHS", "true" if request.param == "fast" else "false")
        yield str(request.param)


@pytest.fixture(scope="module")
def server_on_both_paths(app_path: str, database: DatabaseURL) -> Iterator[LiveServer]:
    """The `server` of tests/rest/, tests/graphql/ and tests/listing/ (their conftest.py):
    the same service as `server`, once per path (`app_path`)."""
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET)) as srv:
        yield srv


@pytest.fixture
def user() -> str:
    """A user id no other test uses: tests isolate by user, not by database."""
    return unique_user()


@pytest.fixture
def token(user: str) -> str:
    """An HS256 token for `user`, signed with the `server` fixture's secret."""
    return hs_token(user)


@pytest.fixture
def auth_headers(token: str) -> dict[str, str]:
    return auth(token)
