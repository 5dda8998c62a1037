"""Content negotiation on /graphql (GraphQL over HTTP), over real HTTP.

`Accept` preferring application/graphql-response+json gets that media type: a request
error (parse, validation, variable coercion: nothing executed) is then a 400 without
`data`. Everyone else gets application/json, where every GraphQL result is a 200 and a
request error also leaves `data` out. Field errors (raised while executing) are 200
with `data` under both. Every POST is sent twice, once by the view's short path
(`Content-Type: application/json`) and once by Strawberry's full run() (with a
charset): the two answers must be the same.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import GraphQLError, GraphQLSyntaxError, Source
from strawberry.types import ExecutionResult

from api.graphql import GRAPHQL_RESPONSE_JSON, is_request_error, response_media_type
from schema.errors import with_code
from tests.support import LiveServer, hs_token, unique_user

JSON = "application/json"
GRAPHQL_RESPONSE_CONTENT_TYPE = "application/graphql-response+json; charset=utf-8"

# Accept headers answered with application/json (None: no Accept header at all).
JSON_ACCEPTS: dict[str, str | None] = {
    "no-accept": None,
    "any": "*/*",
    "json": "application/json",
    "json-listed-first": "application/json, application/graphql-response+json",
    "json-preferred-by-q": "application/graphql-response+json;q=0.5, application/json",
    "nothing-we-produce": "text/html",
}
# Accept headers answered with application/graphql-response+json.
GRAPHQL_RESPONSE_ACCEPTS: dict[str, str | None] = {
    "graphql-response": "application/graphql-response+json",
    "graphql-response-then-json": "application/graphql-response+json, application/json;q=0.9",
    "named-beats-wildcard": "*/*, application/graphql-response+json",
}
ACCEPTS = {**JSON_ACCEPTS, **GRAPHQL_RESPONSE_ACCEPTS}

# Six lists of 100 tasks, each with nodes and edges: a cost of 1,200 (the limit is 1,000).
_BIG_LIST = "tasks(first: 100) { nodes { id } edges { cursor } }"
COST_OVER_LIMIT = "{ " + " ".join(f"a{i}: {_BIG_LIST}" for i in range(6)) + " }"
SEVERAL_OPERATIONS = "query A { __typename } query B { me { id } }"


class Case:
    def __init__(
        self,
        body: dict[str, Any],
        *,
        codes: list[str] | None = None,
        data: dict[str, Any] | None = None,
        request_error: bool = False,
        signed_in: bool = True,
    ) -> None:
        self.body, self.codes, self.data = body, codes, data
        self.request_error, self.signed_in = request_error, signed_in


CASES = {
    "success": Case({"query": "{ __typename }"}, data={"__typename": "Query"}),
    "parse-error": Case({"query": "{ me { id } "}, codes=["GRAPHQL_PARSE_FAILED"], request_error=True),
    "validation-error": Case({"query": "{ nope }"}, codes=["GRAPHQL_VALIDATION_FAILED"], request_error=True),
    "variables-coercion-error": Case(
        {"query": "query Q($n: Int) { tasks(first: $n) { totalCount } }", "variables": {"n": "x"}},
        codes=["BAD_USER_INPUT"],
        request_error=True,
    ),
    "cost-limit": Case({"query": COST_OVER_LIMIT}, codes=["COST_LIMIT_EXCEEDED"], request_error=True),
    "several-operations-without-operationName": Case(
        {"query": SEVERAL_OPERATIONS}, codes=["GRAPHQL_VALIDATION_FAILED"], request_error=True
    ),
    "several-operations-with-operationName": Case(
        {"query": SEVERAL_OPERATIONS, "operationName": "A"}, data={"__typename": "Query"}
    ),
    # Field errors: raised by a resolver while executing, so `data` is there.
    "field-error-nulling-data": Case(
        {"query": "{ tasks { totalCount } }"}, codes=["UNAUTHENTICATED"], signed_in=False
    ),
    "field-error-partial-data": Case(
        {"query": '{ __typename task(id: "1") { id } }'},
        codes=["UNAUTHENTICATED"],
        data={"__typename": "Query", "task": None},
        signed_in=False,
    ),
}


def send(c: httpx.Client, method: str, accept: str | None, **kwargs: Any) -> httpx.Response:
    request = c.build_request(method, "/graphql", **kwargs)
    if accept is None:
        del request.headers["accept"]  # httpx sends `Accept: */*` by default
    else:
        request.headers["accept"] = accept
    return c.send(request)


def check(response: httpx.Response, case: Case, accept: str | None) -> None:
    graphql_response = response_media_type(accept) == GRAPHQL_RESPONSE_JSON
    status = 400 if graphql_response and case.request_error else 200
    content_type = GRAPHQL_RESPONSE_CONTENT_TYPE if graphql_response else JSON
    assert (response.status_code, response.headers["content-type"]) == (status, content_type), response.text
    body = response.json()
    if case.request_error:
        assert "data" not in body, body  # the request failed before execution
    else:
        assert "data" in body and body["data"] == case.data, body
    if case.codes is None:
        assert "errors" not in body, body
        return
    assert [error["extensions"]["code"] for error in body["errors"]] == case.codes, body
    for error in body["errors"]:
        assert error["message"], error
        assert ("path" in error) is not case.request_error, error  # field errors have a path


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("case", CASES)
def test_post(server: LiveServer, case: str, accept: str) -> None:
    spec, header = CASES[case], ACCEPTS[accept]
    with server.client(hs_token(unique_user("negotiate")) if spec.signed_in else None) as c:
        short = send(c, "POST", header, json=spec.body)
        full = send(c, "POST", header, json=spec.body, headers={"content-type": f"{JSON}; charset=utf-8"})
    check(short, spec, header)
    assert (short.status_code, short.headers["content-type"], short.json()) == (
        full.status_code,
        full.headers["content-type"],
        full.json(),
    )


GET_CASES = (
    "success",
    "parse-error",
    "validation-error",
    "variables-coercion-error",
    "field-error-partial-data",
)


@pytest.mark.parametrize("accept", ["no-accept", "json", "graphql-response", "graphql-response-then-json"])
@pytest.mark.parametrize("case", GET_CASES)
def test_get(server: LiveServer, case: str, accept: str) -> None:
    spec, header = CASES[case], ACCEPTS[accept]
    params = {"query": spec.body["query"]}
    if "variables" in spec.body:
        params["variables"] = httpx.Request("GET", "/", json=spec.body["variables"]).content.decode()
    with server.client(hs_token(unique_user("negotiate")) if spec.signed_in else None) as c:
        check(send(c, "GET", header, params=params), spec, header)


def test_a_mutation_whose_variables_do_not_fit_runs_nothing(server: LiveServer) -> None:
    mutation = "mutation C($input: CreateTaskInput!) { createTask(input: $input) { id } }"
    with server.client(hs_token(unique_user("negotiate"))) as c:
        body = {"query": mutation, "variables": {"input": {"title": 5}}}
        r = send(c, "POST", GRAPHQL_RESPONSE_JSON, json=body)
        assert r.status_code == 400 and "data" not in r.json(), r.text
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        listed = send(c, "POST", GRAPHQL_RESPONSE_JSON, json={"query": "{ tasks { totalCount } }"})
    assert listed.json() == {"data": {"tasks": {"totalCount": 0}}}


@pytest.mark.parametrize("accept", ["json", "graphql-response"])
@pytest.mark.parametrize(
    "body", [b'{"query": "{ __typename }"', b'{"query": "{ __typename }", "operationName": "Nope"}']
)
def test_refusals_before_graphql_stay_json_error_bodies(server: LiveServer, accept: str, body: bytes) -> None:
    """A body that is not a GraphQL request gets the REST error body, labelled
    application/json whatever was asked for: it is not a GraphQL response."""
    with server.client(hs_token(unique_user("negotiate"))) as c:
        r = send(c, "POST", ACCEPTS[accept], content=body, headers={"content-type": JSON})
    assert (r.status_code, r.headers["content-type"]) == (400, JSON), r.text
    assert r.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        *((header, JSON) for header in JSON_ACCEPTS.values()),
        *((header, GRAPHQL_RESPONSE_JSON) for header in GRAPHQL_RESPONSE_ACCEPTS.values()),
        ("", JSON),
        ("application/*", JSON),
        ("application/graphql-response+json;q=0", JSON),
        ("application/graphql-response+json;q=nonsense", JSON),
        ("application/graphql-response+json;q=2", JSON),
        ("application/graphql-response+json;q=0.5, */*", JSON),
        ("application/json;q=0.9, application/graphql-response+json;q=0.9", JSON),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON; charset=utf-8", GRAPHQL_RESPONSE_JSON),
        ("application/json;q=0, application/graphql-response+json;q=0.1", GRAPHQL_RESPONSE_JSON),
        ("text/html, application/graphql-response+json;q=0.9, */*;q=0.8", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json, application/*;q=0.5", GRAPHQL_RESPONSE_JSON),
    ],
)
def test_response_media_type(accept: str | None, expected: str) -> None:
    assert response_media_type(accept) == expected


def test_request_errors_are_those_without_a_path() -> None:
    syntax = with_code(GraphQLSyntaxError(Source("{"), 1, "Expected Name"))
    field = GraphQLError("Sign in.", path=["me"], extensions={"code": "UNAUTHENTICATED"})
    internal = GraphQLError("Internal server error.", extensions={"code": "INTERNAL_SERVER_ERROR"})
    assert is_request_error(ExecutionResult(data=None, errors=[syntax]))
    assert not is_request_error(ExecutionResult(data=None, errors=[field]))
    assert not is_request_error(ExecutionResult(data=None, errors=[syntax, field]))
    assert not is_request_error(ExecutionResult(data={"me": None}, errors=[field]))
    assert not is_request_error(ExecutionResult(data=None, errors=[internal]))
    assert not is_request_error(ExecutionResult(data={"__typename": "Query"}, errors=None))
