"""The interop suite needs node + npm and the Better Auth npm package.

Locally, without node/npm (or when ``npm install`` fails, e.g. offline) the suite is
skipped with the reason. With ``CI`` set (to anything but 0/false/no) or with
``REQUIRE_INTEROP=1`` the same situation is a failure, so CI can never skip it silently.
"""

from __future__ import annotations

import os

import pytest

from tests.interop.better_auth import BetterAuthError, ensure_node_modules, node_available

_FALSY = ("", "0", "false", "no", "off")


def interop_required() -> bool:
    """True when the interop suite must run (CI, or REQUIRE_INTEROP=1)."""
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in _FALSY or os.environ.get("REQUIRE_INTEROP", "").strip() == "1"


@pytest.fixture(scope="session", autouse=True)
def better_auth_harness() -> None:
    """Node + npm available and `better-auth` installed (``npm install``, no lockfile)."""
    reason = node_available()
    if reason is None:
        try:
            ensure_node_modules()
        except BetterAuthError as error:
            reason = f"installing the Better Auth harness failed: {error}"
    if reason is None:
        return
    if interop_required():
        pytest.fail(
            f"Better Auth interop tests are required here (CI / REQUIRE_INTEROP=1) but cannot run: {reason}",
            pytrace=False,
        )
    pytest.skip(f"Better Auth interop tests skipped: {reason} (set REQUIRE_INTEROP=1 to fail instead)")
