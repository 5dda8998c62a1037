"""Limits on GraphQL documents: aliases and tokens are bounded, with a clear code."""

from __future__ import annotations

from tests.support import LiveServer


def test_oversized_documents_are_refused(token: str, server: LiveServer) -> None:
    """Aliases could turn one request into hundreds of queries: bounded, with a clear code."""
    many_aliases = "{ " + " ".join(f"a{i}: tasks(first: 100) {{ totalCount }}" for i in range(25)) + " }"
    many_tokens = "{ tasks { nodes { " + " ".join(["id"] * 2000) + " } } }"
    with server.client(token) as c:
        for document, code, says in (
            (many_aliases, "GRAPHQL_VALIDATION_FAILED", "aliases"),
            (many_tokens, "GRAPHQL_PARSE_FAILED", "tokens"),
        ):
            for _ in range(2):  # the second time from the caches
                body = c.post("/graphql", json={"query": document}).json()
                assert body.get("data") is None
                error = body["errors"][0]
                assert error["extensions"]["code"] == code and says in error["message"], body
