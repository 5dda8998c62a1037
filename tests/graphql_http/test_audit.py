"""The GraphQL-over-HTTP audit of graphql-http (the spec's own test suite) against the
live service: every one of its audits must pass, the SHOULDs and MAYs included."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.graphql_http.harness import harness_unavailable, installed_version, run_audit
from tests.interop.conftest import interop_required
from tests.support import LiveServer


@pytest.fixture(scope="session")
def audit_harness() -> str:
    """graphql-http installed (``npm install``, no lockfile); its version."""
    reason = harness_unavailable()
    if reason is not None:
        if interop_required():
            required = "The GraphQL-over-HTTP audit is required here (CI / REQUIRE_INTEROP=1)"
            pytest.fail(f"{required} but cannot run: {reason}", pytrace=False)
        pytest.skip(f"GraphQL-over-HTTP audit skipped: {reason} (set REQUIRE_INTEROP=1 to fail instead)")
    return installed_version() or "?"


def test_every_audit_passes(audit_harness: str, server: LiveServer) -> None:
    results = run_audit(f"{server.url}/graphql")
    counts = Counter(result["status"] for result in results)
    summary = f"graphql-http {audit_harness}: {counts['ok']} of {len(results)} ok, " + ", ".join(
        f"{counts[status]} {status}" for status in ("notice", "warn", "error")
    )
    print(summary)
    failed = [result for result in results if result["status"] != "ok"]
    assert not failed, summary + "".join(
        f"\n[{r['status']}] {r['id']} {r['name']}: {r.get('reason')}\n    {r.get('response')}" for r in failed
    )
    # Each audit ran and is counted once (a result per audit, no id twice).
    assert len({result["id"] for result in results}) == len(results) >= 61, summary
