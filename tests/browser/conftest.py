"""Browser tests: Debian's chromium (/usr/bin/chromium, or $CHROMIUM) driven by
Playwright's Python package, which launches that binary and never downloads a browser.

The service runs as in development (GraphiQL and the API docs on), with GraphiQL's files
installed by `npm pack` (api/docs.py; from npm's cache when it has them). Every request
the page makes to anything but the service is aborted and recorded: the tests assert
there were none.

Locally, without chromium (or without npm, or the registry, for GraphiQL's files) the
tests are skipped with the reason; with `CI` set (to anything but 0/false/no) or
`REQUIRE_BROWSER=1` (.ci/run exports it) that is a failure. A failing test leaves a
screenshot of its page in test-artifacts/browser/ (`BROWSER_SCREENSHOTS=always`: every
test does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Route, expect, sync_playwright

from api.docs import AssetsError, install_graphiql
from db.url import DatabaseURL
from tests.support import HS_SECRET, LiveServer, live_server, settings_for

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
DATA_DIR = ROOT / ".data"  # GraphiQL's files go to .data/graphiql, as for `todo-api assets`
_FALSY = ("", "0", "false", "no", "off")
# Playwright downloads browsers only on `playwright install`; this says never, to anything
# started from here.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
# What a page may take to show what a test expects: the same bound as every other page
# action (visit's set_default_timeout), not expect()'s 5 s, which ReDoc's client-side
# rendering overran on a loaded 2-core machine running the suite in parallel.
PAGE_TIMEOUT_MS = 20_000
expect.set_options(timeout=PAGE_TIMEOUT_MS)


def browser_required() -> bool:
    """True when these tests must run: CI, or REQUIRE_BROWSER=1."""
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in _FALSY or os.environ.get("REQUIRE_BROWSER", "").strip() == "1"


def unavailable(reason: str) -> None:
    if browser_required():
        pytest.fail(f"browser tests are required here (CI / REQUIRE_BROWSER=1) but cannot run: {reason}")
    pytest.skip(f"browser tests skipped: {reason} (set REQUIRE_BROWSER=1 to fail instead)")


@pytest.fixture(scope="session", autouse=True)
def browser_prerequisites() -> None:
    """Chromium, and GraphiQL's files: checked before anything else (a database) starts."""
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} not found (Debian: apt-get install chromium)")
    try:
        install_graphiql(DATA_DIR)
    except (AssetsError, OSError) as error:
        unavailable(f"GraphiQL's files could not be installed: {error}")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--disable-dev-shm-usage", "--disable-gpu"],
        timeout=60_000,
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def tools_server(database: DatabaseURL) -> Iterator[LiveServer]:
    """The service as in development (GraphiQL, /docs, /redoc on), HS256 tokens."""
    settings = settings_for(
        database, BETTER_AUTH_SECRET=HS_SECRET, APP_ENV="development", DATA_DIR=str(DATA_DIR)
    )
    with live_server(settings) as server:
        yield server


@dataclass
class Visit:
    """A page in its own browser context, offline but for the service."""

    page: Page
    origin: str
    # Requests to anything but the service (all aborted).
    blocked: list[str] = field(default_factory=list)
    # Console errors (CSP violations among them) and uncaught exceptions.
    problems: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        if url == self.origin or url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        item.stash[_FAILED] = True


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def visit(chromium: Browser, tools_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Visit]:
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, service_workers="block")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    seen = Visit(page, tools_server.url)
    context.route("**/*", seen.route)
    page.on("console", seen.console)
    page.on("pageerror", lambda error: seen.problems.append(f"uncaught: {error}"))
    try:
        yield seen
    finally:
        if request.node.stash.get(_FAILED, False) or os.environ.get("BROWSER_SCREENSHOTS") == "always":
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
        context.close()
