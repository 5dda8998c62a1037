"""GraphQL behaviour: queries, mutations, errors, limits, the committed schema.

`server` here is the service once on each path (`app_path`: fast, stock); see
tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.support import LiveServer


@pytest.fixture(scope="module")
def server(server_on_both_paths: LiveServer) -> LiveServer:
    return server_on_both_paths
