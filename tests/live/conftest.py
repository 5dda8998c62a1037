"""Fixtures for the live-update tests: the service on a real port (keep-alives every
second), and every event stream a test opened closed after it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from db.url import DatabaseURL
from tests.infra import PrivatePostgres, postgres_binaries_missing
from tests.live.clients import close_all_streams
from tests.support import HS_SECRET, LiveServer, live_server, settings_for

_FALSY = ("", "0", "false", "no", "off")


@pytest.fixture(autouse=True)
def _close_streams() -> Iterator[None]:
    yield
    close_all_streams()


@pytest.fixture(scope="module")
def live(database: DatabaseURL) -> Iterator[LiveServer]:
    """The service, HS256 tokens, keep-alive comments every second."""
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, LIVE_KEEPALIVE_SECONDS="1")
    with live_server(settings) as server:
        yield server


def _unavailable(reason: str) -> NoReturn:
    required = os.environ.get("CI", "").strip().lower() not in _FALSY or (
        os.environ.get("REQUIRE_PGBOUNCER", "").strip() == "1"
    )
    if required:
        pytest.fail(f"live-update restart tests must run here but cannot: {reason}", pytrace=False)
    pytest.skip(f"live-update restart tests skipped: {reason}")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL 15 of the test's own (see tests/infra.py), to restart at will."""
    missing = postgres_binaries_missing()
    if missing:
        _unavailable(missing)
    # Commits durable when acknowledged, as in production (the infra default is off, for
    # speed): a crash must not lose a committed change, nor reissue its event id.
    with PrivatePostgres(settings={"synchronous_commit": "on"}) as pg:
        yield pg
