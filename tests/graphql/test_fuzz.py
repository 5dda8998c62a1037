"""Property-based GraphQL fuzzing of the live /graphql with hypothesis-graphql.

Queries and mutations generated from schema.graphql, valid ones (they pass schema
validation, with arbitrary argument values: any string, any Int, nulls, the caller's
real task ids and made-up ones) and invalid ones (one schema violation each), sent over
real HTTP with a valid token, as POST or GET, for either response media type. None may
produce an INTERNAL_SERVER_ERROR or an HTTP 5xx; every error carries a code; a valid
document is never refused as invalid. Mutations only ever touch the fuzzing user's rows.

Bounded: TODO_API_FUZZ_EXAMPLES x 10 documents (default 200), a fixed seed
(TODO_API_FUZZ_SEED; `random` for a new one each run), well under a minute here.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import graphql
import httpx
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from tests.support import LiveServer, hs_token, unique_user

ROOT = Path(__file__).resolve().parents[2]
SDL = (ROOT / "schema.graphql").read_text()
EXAMPLES = 10 * int(os.environ.get("TODO_API_FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("TODO_API_FUZZ_SEED", "20261129")
# Request errors: the document does not parse, or does not fit the schema (or the
# service's own limits on it).
DOCUMENT_ERRORS = {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
GET_MAX_DOCUMENT = 4000  # keeps the request line well inside the HTTP server's limits


def _string(value: str) -> graphql.ValueNode:
    return graphql.StringValueNode(value=value)


def date_times(*, parseable: bool) -> st.SearchStrategy[graphql.ValueNode]:
    """DateTime literals: ISO 8601 that the scalar reads, in and out of the accepted
    years, with and without offsets; unless `parseable`, also strings and numbers that
    are not dates at all (a literal the scalar cannot read fails validation)."""
    offsets = st.none() | st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
    instants = st.builds(
        lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        offsets,
    )
    edges = st.sampled_from(["2026-12-01", "20261201", "0999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00"])
    readable = st.one_of(instants, edges).map(_string)
    if parseable:
        return readable
    junk = st.one_of(st.sampled_from(["", "2026-13-01", "tomorrow"]), st.text(max_size=80)).map(_string)
    numbers = st.integers(-(2**40), 2**40).map(lambda n: graphql.IntValueNode(value=str(n)))
    return readable | junk | numbers


def task_ids(real: list[int]) -> st.SearchStrategy[graphql.ValueNode]:
    """ID literals: the caller's real tasks (as strings and as ints), made-up numbers up
    to and past the bigint range, and arbitrary strings."""
    numbers = st.sampled_from(real) | st.integers(-(2**70), 2**70) | st.integers(0, 3)
    as_strings = numbers.map(str) | st.text(max_size=30) | st.sampled_from(["01", " 1", "1_0", "+1", "1e3"])
    return as_strings.map(_string) | numbers.map(lambda n: graphql.IntValueNode(value=str(n)))


def documents(real_ids: list[int]) -> st.SearchStrategy[tuple[str, str]]:
    """(kind, document): `valid` documents pass validation whatever their values;
    `any-dates` ones may hold DateTime literals the scalar cannot read; `invalid` ones
    break one schema rule each."""
    ids = task_ids(real_ids)
    readable = {"DateTime": date_times(parseable=True), "ID": ids}
    anything = {"DateTime": date_times(parseable=False), "ID": ids}
    kinds = [
        (kind.__name__, variant, kind(SDL, custom_scalars=scalars, mode=mode))
        for kind in (queries, mutations)
        for variant, scalars, mode in (
            ("valid", readable, Mode.POSITIVE),
            ("any-dates", anything, Mode.POSITIVE),
            ("invalid", anything, Mode.NEGATIVE),
        )
    ]
    return st.one_of([st.tuples(st.just(f"{name} {variant}"), strategy) for name, variant, strategy in kinds])


def send(client: httpx.Client, document: str, transport: str, accept: str) -> httpx.Response:
    headers = {"accept": accept}
    if transport == "get" and len(document) <= GET_MAX_DOCUMENT:
        return client.get("/graphql", params={"query": document}, headers=headers)
    return client.post("/graphql", json={"query": document}, headers=headers)


def test_generated_documents_never_cause_internal_errors(server: LiveServer) -> None:
    user = unique_user("gqlfuzz")
    seen: Counter[str] = Counter()
    with server.client(hs_token(user, ttl=3600)) as client:
        real_ids = []
        for title in ("fuzz one", "fuzz two", "fuzz three"):
            created = client.post("/api/tasks", json={"title": title})
            assert created.status_code == 201, created.text
            real_ids.append(created.json()["id"])

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
            ],
        )
        @given(
            generated=documents(real_ids),
            transport=st.sampled_from(["post", "get"]),
            accept=st.sampled_from(["application/json", GRAPHQL_RESPONSE_JSON]),
        )
        def fuzz(generated: tuple[str, str], transport: str, accept: str) -> None:
            kind, document = generated
            r = send(client, document, transport, accept)
            seen["requests"] += 1
            seen[kind] += 1
            seen[f"http {r.status_code}"] += 1
            where = (
                f"{kind} over {transport.upper()} ({accept}):\n{document}\n-> {r.status_code} {r.text[:1000]}"
            )
            assert r.status_code < 500, where
            body: dict[str, Any] = r.json()
            if "detail" in body:  # refused before GraphQL: the REST error body
                assert r.status_code in (400, 413, 415), where
                seen[f"transport {body['code']}"] += 1
                return
            codes = [(error.get("extensions") or {}).get("code") for error in body.get("errors", ())]
            seen.update(f"code {code}" for code in codes)
            assert "INTERNAL_SERVER_ERROR" not in codes, where
            assert None not in codes, f"an error without a code: {where}"
            if kind.split()[1] == "valid":
                assert not DOCUMENT_ERRORS & set(codes), f"a valid document refused: {where}"
                if not codes:
                    seen["valid, executed without error"] += 1
            else:
                seen[f"{kind} refused" if DOCUMENT_ERRORS & set(codes) else f"{kind} executed"] += 1

        if SEED != "random":
            fuzz = seed(int(SEED))(fuzz)
        fuzz()
    print(f"graphql fuzz: {dict(sorted(seen.items()))}")
    # The run reached resolvers, not only validation: documents ran without error, and
    # the resolvers' own refusals were met.
    assert seen["valid, executed without error"] > 0, seen
    assert seen["code BAD_USER_INPUT"] > 0, seen
