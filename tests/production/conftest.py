"""Fixtures for production-failure tests: servers to break and a transaction pooler.

- `private_postgres`: a started PostgreSQL 15 of this test's own (freeze/restart/stop it).
- `pgbouncer`: one PgBouncer (transaction mode, no prepared-statement support) in front
  of the suite's test server (`server_url`), for the whole run.
- `make_pgbouncer`: more bouncers, in front of any server (e.g. `private_postgres.url`).
- `pooled_database`: a factory of fresh, empty databases as `(direct_url, pooled_url)`.

Without pgbouncer (or PostgreSQL 15's binaries) the tests needing them are skipped; with
``CI`` set (to anything but 0/false/no) or ``REQUIRE_PGBOUNCER=1`` that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from db.url import DatabaseURL
from tests.infra import PgBouncer, PrivatePostgres, find_pgbouncer, postgres_binaries_missing

_FALSY = ("", "0", "false", "no", "off")


def infra_required() -> bool:
    """True when missing infrastructure must fail the run (CI, or REQUIRE_PGBOUNCER=1)."""
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in _FALSY or os.environ.get("REQUIRE_PGBOUNCER", "").strip() == "1"


def _unavailable(reason: str) -> NoReturn:
    if infra_required():
        pytest.fail(
            f"production tests are required here (CI / REQUIRE_PGBOUNCER=1) but cannot run: {reason}",
            pytrace=False,
        )
    pytest.skip(f"production tests skipped: {reason} (set REQUIRE_PGBOUNCER=1 to fail instead)")


def _require_pgbouncer() -> None:
    if find_pgbouncer() is None:
        _unavailable("pgbouncer is not installed (Debian: apt-get install pgbouncer)")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PrivatePostgres; always thawed, stopped and deleted afterwards."""
    missing = postgres_binaries_missing()
    if missing:
        _unavailable(missing)
    with PrivatePostgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def pgbouncer(server_url: DatabaseURL) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the suite's test server."""
    _require_pgbouncer()
    with PgBouncer(server_url) as bouncer:
        yield bouncer


@pytest.fixture
def make_pgbouncer() -> Iterator[Callable[..., PgBouncer]]:
    """A factory: make_pgbouncer(server_url, **PgBouncer options) -> started PgBouncer,
    all stopped at the end of the test."""
    _require_pgbouncer()
    made: list[PgBouncer] = []

    def make(server: DatabaseURL, **options: Any) -> PgBouncer:
        bouncer = PgBouncer(server, **options)
        made.append(bouncer)
        return bouncer.start()

    yield make
    for bouncer in reversed(made):
        bouncer.close()


@pytest.fixture(scope="session")
def pooled_database(
    fresh_database: Callable[[], DatabaseURL], pgbouncer: PgBouncer
) -> Callable[[], tuple[DatabaseURL, DatabaseURL]]:
    """A factory of fresh empty databases on the test server: (direct_url, pooled_url).
    The pooled URL goes through `pgbouncer` and is not marked pooled (see
    PgBouncer.url_for(mark_pooled=True) / dataclasses.replace(url, pooled=True))."""

    def make() -> tuple[DatabaseURL, DatabaseURL]:
        direct = fresh_database()
        return direct, pgbouncer.url_for(direct.database)

    return make
