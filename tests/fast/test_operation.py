"""The whole-operation path (schema/fast/operation.py) answers exactly as Strawberry does.

Every request is sent twice to the same live app: once as it comes (plain operations
run by the whole-operation path) and once with that path switched off (planning
returns None: Strawberry's execution through the same view). Status, content type and
body must agree; for creations, everything but the new task's id and timestamps.
Hypothesis generates plain operations and near-misses: aliases, repeated fields,
__typename, variables omitted/null/defaulted/of the wrong type, first/after bounds,
directives and fragments (which go to Strawberry), no token, another user's task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import api.graphql
from db.url import DatabaseURL
from schema.fast import operation
from tests.fast import masked
from tests.support import HS_SECRET, LiveServer, auth, hs_token, live_server, settings_for, unique_user

pytestmark = pytest.mark.skipif(
    __import__("os").environ.get("FAST_PATHS", "true") == "false", reason="compares the fast path"
)

VOLATILE = {"id", "createdAt", "updatedAt", "created", "when"}


@pytest.fixture(scope="module")
def app(database: DatabaseURL) -> Iterator[LiveServer]:
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS="true")) as srv:
        yield srv


@pytest.fixture(scope="module")
def users(app: LiveServer) -> dict[str, Any]:
    """Two users with tasks; the second one's task ids (the first must not see them)."""
    owner, other = unique_user("op"), unique_user("op-other")
    tokens = {"owner": hs_token(owner), "other": hs_token(other)}
    ids: dict[str, list[str]] = {"owner": [], "other": []}
    for who in ("owner", "other"):
        with app.client(tokens[who]) as client:
            for i in range(7):
                body = {
                    "query": "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
                    "variables": {
                        "i": {
                            "title": f"{who} task {i}",
                            "priority": ["LOW", "MEDIUM", "HIGH"][i % 3],
                            "completed": i % 2 == 0,
                            "description": None if i % 3 else f"about {i}",
                            "dueDate": None if i % 2 else f"2030-01-0{i + 1}T00:00:00Z",
                        }
                    },
                }
                response = client.post("/graphql", json=body)
                ids[who].append(response.json()["data"]["createTask"]["id"])
    return {"tokens": tokens, "ids": ids}


taken = {"fast": 0}


def _send(app: LiveServer, body: dict[str, Any], token: str | None, *, fast: bool) -> httpx.Response:
    headers = {"content-type": "application/json", **(auth(token) if token else {})}
    with httpx.Client(base_url=app.url, timeout=30) as client:
        return client.post("/graphql", content=json.dumps(body), headers=headers)


def _stable(value: Any) -> Any:
    return masked(value, VOLATILE)


def compare(
    app: LiveServer, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], token: str | None, *, writes: bool
) -> tuple[int, Any]:
    """(status, body) of the request, the same with and without the whole-operation path."""
    run = operation.Operation.run
    answered = []

    async def counting(self: operation.Operation, *args: Any) -> Any:
        data = await run(self, *args)
        answered.append(data is not None)
        return data

    with monkeypatch.context() as patch:
        patch.setattr(operation.Operation, "run", counting)
        fast = _send(app, body, token, fast=True)
    with monkeypatch.context() as patch:
        patch.setattr(api.graphql, "plan_operation", lambda *args: None)
        stock = _send(app, body, token, fast=False)
    fast_body, stock_body = fast.json(), stock.json()
    if writes:
        fast_body, stock_body = _stable(fast_body), _stable(stock_body)
    assert (fast.status_code, fast.headers["content-type"], fast_body) == (
        stock.status_code,
        stock.headers["content-type"],
        stock_body,
    ), body
    if any(answered):
        taken["fast"] += 1
    return fast.status_code, fast_body


LEAVES = ["id", "title", "description", "completed", "priority", "dueDate", "createdAt", "updatedAt"]


@st.composite
def task_fields(draw: st.DrawFn) -> str:
    fields = draw(st.lists(st.sampled_from([*LEAVES, "__typename"]), min_size=1, max_size=6))
    out = []
    for i, name in enumerate(fields):
        alias = draw(st.sampled_from(["", "", f"a{i}: ", "title: " if name != "title" else ""]))
        if alias == "title: " and name not in ("description",):
            alias = ""  # an alias clashing with another field of another type fails validation
        out.append(alias + name)
    return " ".join(out)


@st.composite
def tasks_query(draw: st.DrawFn) -> tuple[str, dict[str, Any] | None]:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["nodes", "edges", "pageInfo", "totalCount", "__typename"]))
        if kind == "nodes":
            parts.append(f"nodes {{ {draw(task_fields())} }}")
        elif kind == "edges":
            parts.append(f"edges {{ cursor node {{ {draw(task_fields())} }} }}")
        elif kind == "pageInfo":
            fields = draw(
                st.lists(
                    st.sampled_from(["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]),
                    min_size=1,
                    max_size=4,
                )
            )
            parts.append(f"pageInfo {{ {' '.join(fields)} }}")
        else:
            parts.append(kind)
    args = []
    definitions = []
    variables: dict[str, Any] = {}
    first = draw(st.sampled_from([None, "lit", "var", "var-null", "var-omitted", "var-bad"]))
    value = draw(st.sampled_from([0, 1, 2, 3, 7, 100, 101, -1]))
    if first == "lit":
        args.append(f"first: {value}")
    elif first is not None:
        default = draw(st.sampled_from(["", " = 2", " = null"]))
        definitions.append(f"$first: Int{default}")
        args.append("first: $first")
        if first == "var":
            variables["first"] = value
        elif first == "var-null":
            variables["first"] = None
        elif first == "var-bad":
            variables["first"] = draw(st.sampled_from(["two", 2.5, True]))
    if draw(st.booleans()):
        args.append(f"status: {draw(st.sampled_from(['ALL', 'PENDING', 'COMPLETED']))}")
    if draw(st.booleans()):
        args.append(f"sort: {draw(st.sampled_from(['CREATED', 'TITLE', 'DUE_DATE', 'PRIORITY']))}")
    if draw(st.booleans()):
        definitions.append("$order: SortOrder")
        args.append("order: $order")
        variables["order"] = draw(st.sampled_from(["ASC", "DESC", None, "UP"]))
    if draw(st.booleans()):
        args.append(f"search: {json.dumps(draw(st.sampled_from(['task', 'owner', '', 'nothing'])))}")
    if draw(st.booleans()):
        args.append(f"after: {json.dumps(draw(st.sampled_from(['bogus', ''])))}")
    near_miss = draw(st.sampled_from(["", "", "", "directive", "fragment"]))
    selection = " ".join(parts)
    if near_miss == "directive":
        selection += " __typename @include(if: true)"
    elif near_miss == "fragment":
        selection += " ... on TaskConnection { __typename }"
    alias = draw(st.sampled_from(["", "list: "]))
    arguments = f"({', '.join(args)})" if args else ""
    header = f"query Q({', '.join(definitions)})" if definitions else draw(st.sampled_from(["", "query"]))
    root_extra = draw(st.sampled_from(["", "", " __typename", " me { id }"]))
    return f"{header} {{ {alias}tasks{arguments} {{ {selection} }}{root_extra} }}", variables or None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=tasks_query(), who=st.sampled_from(["owner", "owner", "owner", "none", "bad"]))
def test_generated_lists_match_stock(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, generated: Any, who: str
) -> None:
    query, variables = generated
    token = {"none": None, "bad": "not-a-token"}.get(who, users["tokens"]["owner"])
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    compare(app, monkeypatch, body, token, writes=False)


def test_the_fast_path_is_taken(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = taken["fast"]
    token = users["tokens"]["owner"]
    status, body = compare(
        app,
        monkeypatch,
        {"query": "{ tasks(first: 3) { totalCount nodes { id title priority } pageInfo { hasNextPage } } }"},
        token,
        writes=False,
    )
    assert status == 200 and len(body["data"]["tasks"]["nodes"]) == 3
    assert taken["fast"] == before + 1


def test_single_tasks_and_me_match_stock(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = users["tokens"]["owner"]
    mine, theirs = users["ids"]["owner"][0], users["ids"]["other"][0]
    for task_id in (mine, theirs, "0", "nope", "99999999999999999999"):
        compare(
            app,
            monkeypatch,
            {"query": f'{{ task(id: "{task_id}") {{ id title __typename }} }}'},
            token,
            writes=False,
        )
        compare(
            app,
            monkeypatch,
            {
                "query": "query T($id: ID!) { t: task(id: $id) { title dueDate } }",
                "variables": {"id": task_id},
            },
            token,
            writes=False,
        )
    for who in (token, None):
        compare(app, monkeypatch, {"query": "{ me { id email name __typename } }"}, who, writes=False)
    compare(app, monkeypatch, {"query": "query T($id: ID!) { task(id: $id) { id } }"}, token, writes=False)


CREATE = (
    "mutation Create($title: String!) { createTask(input: {title: $title}) { id title priority completed } }"
)


@pytest.mark.parametrize(
    ("body", "who"),
    [
        ({"query": CREATE, "variables": {"title": "made"}}, "owner"),
        ({"query": CREATE, "variables": {"title": ""}}, "owner"),
        ({"query": CREATE, "variables": {"title": None}}, "owner"),
        ({"query": CREATE, "variables": {"title": 5}}, "owner"),
        ({"query": CREATE, "variables": {}}, "owner"),
        ({"query": CREATE, "variables": {"title": "x" * 1000}}, "owner"),
        ({"query": CREATE, "variables": {"title": "made"}}, "none"),
        ({"query": CREATE, "variables": {"title": "made"}, "operationName": "Create"}, "owner"),
        ({"query": CREATE, "variables": {"title": "made"}, "operationName": "Other"}, "owner"),
        (
            {
                "query": "mutation($i: CreateTaskInput!) { a: createTask(input: $i) { __typename id t: title"
                " title dueDate description } }",
                "variables": {"i": {"title": "full", "priority": "HIGH", "dueDate": "2031-02-03T04:05:06Z"}},
            },
            "owner",
        ),
        (
            {
                "query": "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
                "variables": {"i": {"title": "bad", "priority": "URGENT"}},
            },
            "owner",
        ),
        (
            {"query": 'mutation { createTask(input: {title: "lit", completed: true}) { title completed } }'},
            "owner",
        ),
    ],
)
def test_creations_match_stock(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], who: str
) -> None:
    token = users["tokens"]["owner"] if who == "owner" else None
    compare(app, monkeypatch, body, token, writes=True)


def test_a_failing_mutation_runs_once(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, database: DatabaseURL
) -> None:
    """A resolver that raises on the fast path is not run again by the fallback: its
    outcome is replayed (the error is Strawberry's, from the one call)."""
    from schema import resolvers

    calls = []
    real = resolvers.create_task

    async def failing(ctx: Any, data: Any) -> Any:
        calls.append(data)
        raise RuntimeError("boom")

    monkeypatch.setattr(resolvers, "create_task", failing)
    token = users["tokens"]["owner"]
    response = _send(app, {"query": CREATE, "variables": {"title": "once"}}, token, fast=True)
    monkeypatch.setattr(resolvers, "create_task", real)
    body = response.json()
    assert len(calls) == 1
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert body["errors"][0]["path"] == ["createTask"]


# Every CreateTaskInput field missing, null, of each value, of a wrong type: the
# directly called resolver (schema/fast/arguments.py) gets what Strawberry's would.
INPUT_VALUES: dict[str, list[Any]] = {
    "description": ["MISSING", None, "", "words"],
    "completed": ["MISSING", None, True, False, "yes"],
    "priority": ["MISSING", None, "LOW", "MEDIUM", "HIGH", "URGENT", "low", 1],
    "dueDate": ["MISSING", None, "2031-02-03T04:05:06Z", "2031-02-03T04:05:06+02:00", "tomorrow", 5],
}
ALL_FIELDS = "title description completed priority dueDate"
CREATE_ALL = f"mutation($i: CreateTaskInput!) {{ createTask(input: $i) {{ {ALL_FIELDS} }} }}"


@st.composite
def task_inputs(draw: st.DrawFn) -> dict[str, Any]:
    value: dict[str, Any] = {"title": draw(st.sampled_from(["t", "", None, "MISSING", 3]))}
    for name, choices in INPUT_VALUES.items():
        value[name] = draw(st.sampled_from(choices))
    return {k: v for k, v in value.items() if v != "MISSING"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=task_inputs(), literal=st.booleans())
def test_generated_creations_match_stock(
    app: LiveServer,
    users: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    value: dict[str, Any],
    literal: bool,
) -> None:
    if literal:
        # the same input written in the document (enum names bare, other values as JSON)
        parts = [
            f"{k}: {v}"
            if k == "priority" and isinstance(v, str) and v.isidentifier()
            else f"{k}: {json.dumps(v)}"
            for k, v in value.items()
        ]
        query = f"mutation {{ createTask(input: {{{', '.join(parts)}}}) {{ {ALL_FIELDS} }} }}"
        body: dict[str, Any] = {"query": query}
    else:
        body = {"query": CREATE_ALL, "variables": {"i": value}}
    compare(app, monkeypatch, body, users["tokens"]["owner"], writes=True)


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"title": "renamed"},
        {"title": None},
        {"description": None},
        {"description": "d"},
        {"completed": None},
        {"completed": True},
        {"priority": None},
        {"priority": "HIGH"},
        {"priority": "NOPE"},
        {"dueDate": None},
        {"dueDate": "2032-01-01T00:00:00Z"},
        {"title": "all", "description": "x", "completed": False, "priority": "LOW", "dueDate": None},
    ],
)
def test_updates_match_stock(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, value: dict[str, Any]
) -> None:
    """UpdateTaskInput's left-out fields stay UNSET on both paths (each path updates its
    own task, created alike)."""
    token = users["tokens"]["owner"]
    for fast in (True, False):
        created = _send(
            app,
            {"query": 'mutation { createTask(input: {title: "u", description: "keep"}) { id } }'},
            token,
            fast=True,
        ).json()["data"]["createTask"]["id"]
        body = {
            "query": "mutation U($id: ID!, $i: UpdateTaskInput!) { updateTask(id: $id, input: $i)"
            " { title description completed priority dueDate } }",
            "variables": {"id": created, "i": value},
        }
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(api.graphql, "plan_operation", lambda *args: None)
            response = _send(app, body, token, fast=fast)
        if fast:
            fast_answer = (response.status_code, response.json())
        else:
            assert (response.status_code, response.json()) == fast_answer, value


@pytest.mark.parametrize(
    "arguments",
    [
        "",
        "(status: null, sort: null, order: null, search: null, first: null, after: null)",
        '(status: ALL, sort: TITLE, order: ASC, search: "task", first: 2)',
        "(status: PENDING, sort: DUE_DATE, order: DESC, first: 3)",
        "(status: COMPLETED, sort: PRIORITY)",
        "(sort: UPDATED, order: null)",
        "(first: 0)",
        "(first: 101)",
        "(after: null, first: 1)",
    ],
)
def test_list_arguments_null_or_missing_match_stock(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, arguments: str
) -> None:
    selection = "totalCount nodes { title priority completed } pageInfo { hasNextPage }"
    query = f"{{ tasks{arguments} {{ {selection} }} }}"
    compare(app, monkeypatch, {"query": query}, users["tokens"]["owner"], writes=False)


@st.composite
def literal_with_variables(draw: st.DrawFn) -> dict[str, Any]:
    """createTask(input: {...}) whose fields are variables (declared nullable or not,
    with or without a default), constants or left out; variables sent, null or omitted."""
    types = {
        "title": "String",
        "description": "String",
        "completed": "Boolean",
        "priority": "TaskPriority",
        "dueDate": "DateTime",
    }
    values: dict[str, list[Any]] = {"title": ["t", "", None, 3], **INPUT_VALUES}
    definitions, fields, variables = [], [], {}
    for name, type_name in types.items():
        how = draw(
            st.sampled_from(
                ["variable", "variable", "constant", "absent"]
                if name != "title"
                else ["variable", "constant"]
            )
        )
        if how == "absent":
            continue
        value = draw(st.sampled_from([v for v in values[name] if v != "MISSING"]))
        if how == "constant":
            literal = (
                value
                if name == "priority" and isinstance(value, str) and value.isidentifier()
                else json.dumps(value)
            )
            fields.append(f"{name}: {literal}")
            continue
        bang = draw(st.sampled_from(["", "!"]))
        default = draw(st.sampled_from(["", "", " = null"])) if not bang else ""
        definitions.append(f"${name}: {type_name}{bang}{default}")
        fields.append(f"{name}: ${name}")
        sent = draw(st.sampled_from(["value", "value", "null", "omitted"]))
        if sent == "value":
            variables[name] = value
        elif sent == "null":
            variables[name] = None
    header = f"mutation({', '.join(definitions)})" if definitions else "mutation"
    query = f"{header} {{ createTask(input: {{{', '.join(fields)}}}) {{ {ALL_FIELDS} }} }}"
    return {"query": query, "variables": variables}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=literal_with_variables())
def test_input_literals_with_variables_match_stock(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> None:
    compare(app, monkeypatch, body, users["tokens"]["owner"], writes=True)


@pytest.mark.parametrize(
    "body",
    [
        {"query": "query($f: Int) { tasks(first: $f) { totalCount } }", "variables": {}},
        {"query": "query($f: Int) { tasks(first: $f) { totalCount } }", "variables": {"f": None}},
        {"query": "query($f: Int = 1) { tasks(first: $f) { nodes { id } } }", "variables": {}},
        {"query": "query($f: Int!) { tasks(first: $f) { nodes { id } } }", "variables": {}},
        {"query": "query($f: Int!) { tasks(first: $f) { nodes { id } } }", "variables": {"f": "1"}},
        {"query": "query($s: String) { tasks(search: $s) { totalCount } }", "variables": {"s": 5}},
        {"query": "query($a: String) { tasks(after: $a) { totalCount } }", "variables": {"a": None}},
        {"query": "query($id: ID!) { task(id: $id) { id } }", "variables": {"id": 7}},
        {"query": "query($id: ID!) { task(id: $id) { id } }", "variables": {"id": 7.5}},
        {"query": "query($id: ID!) { task(id: $id) { id } }", "variables": {"id": None}},
    ],
)
def test_variables_match_stock(
    app: LiveServer, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> None:
    compare(app, monkeypatch, body, users["tokens"]["owner"], writes=False)
