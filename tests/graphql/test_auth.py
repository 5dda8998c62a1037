"""GraphQL: `me`, and what every operation answers without a valid token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from db.url import DatabaseURL
from tests.graphql.operations import (
    CREATE,
    DELETE,
    TOGGLE,
    UPDATE,
    gql,
    ok,
    rows_of,
    the_error,
)
from tests.support import LiveServer, db_fetch, hs_token, unique_user


def test_me_reflects_token_claims(server: LiveServer) -> None:
    user = unique_user("me")
    with server.client(hs_token(user, email="ada@example.com", name="Ada Lovelace")) as c:
        assert ok(c, "{ me { id email name } }")["me"] == {
            "id": user,
            "email": "ada@example.com",
            "name": "Ada Lovelace",
        }


def test_me_without_profile_claims(server: LiveServer) -> None:
    user = unique_user("me")
    with server.client(hs_token(user)) as c:
        assert ok(c, "{ me { id email name } }")["me"] == {"id": user, "email": None, "name": None}


def test_typename_needs_no_token(server: LiveServer) -> None:
    with server.client() as c:
        assert gql(c, "{ __typename }") == {"data": {"__typename": "Query"}}


BAD_TOKENS: dict[str, Callable[[str], str | None]] = {
    "none": lambda _: None,
    "wrong-secret": lambda u: hs_token(u, secret="another-secret-that-is-long-enough-for-hs256-xx"),
    "garbage": lambda _: "not.a.jwt",
    "expired": lambda u: hs_token(u, ttl=-3600),
}
UNAUTH_OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "me": ("{ me { id } }", {}),
    "tasks": ("{ tasks { totalCount } }", {}),
    "task": ('{ task(id: "1") { id } }', {}),
    "createTask": (CREATE, {"input": {"title": "sneaky"}}),
    "updateTask": (UPDATE, {"id": "1", "input": {"title": "sneaky"}}),
    "deleteTask": (DELETE, {"id": "1"}),
    "toggleTaskCompletion": (TOGGLE, {"id": "1"}),
}


@pytest.mark.parametrize("operation", UNAUTH_OPERATIONS)
@pytest.mark.parametrize("token_kind", BAD_TOKENS)
def test_unauthenticated(server: LiveServer, database: DatabaseURL, token_kind: str, operation: str) -> None:
    user = unique_user("anon")
    query, variables = UNAUTH_OPERATIONS[operation]
    with server.client(BAD_TOKENS[token_kind](user)) as c:
        body = gql(c, query, variables)
    the_error(body, "UNAUTHENTICATED")
    assert not (body.get("data") or {}).get(operation), body
    # Nothing was written for the subject the bad token names.
    assert db_fetch(database, "SELECT id FROM users WHERE id = $1", user) == []
    assert rows_of(database, user) == []
