"""The scenarios, the users each one draws from, and a one-request sanity check per target.

Targets:
  ours          the service; every request carries a real bearer token
  ours_pooled   the same service behind PgBouncer in transaction mode (?pgbouncer=true):
                the same requests, tokens and checks as ours
  floor         bench/floor_app.py; the owner comes from an X-User-Id header, no auth
  postgraphile  PostGraphile v4 over the same database; the owner is a GraphQL condition
  postgraphile5 PostGraphile v5 (amber preset) likewise; its `id` is the global node id,
                so it selects `rowId` where v4 selects `id` (the row's key)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.servers import http_request
from rest_shim.models import TaskOut

TASK_KEYS = set(TaskOut.model_fields)  # the documented REST task shape
LIST_SIZE = 50
NODE_FIELDS = "id title description completed priority dueDate"
# PostGraphile v5 (amber): `id` is the global node id; `rowId` is the column, as v4's `id`.
PG5_NODE_FIELDS = "rowId title description completed priority dueDate"
OURS_LIST = f"{{ tasks(first: {LIST_SIZE}) {{ nodes {{ {NODE_FIELDS} }} }} }}"
PG_LIST_TEMPLATE = (
    '{{{{ allTasks(condition: {{{{userId: "{{user}}"}}}}, first: {size}, orderBy: CREATED_AT_DESC)'
    " {{{{ nodes {{{{ {fields} }}}} }}}} }}}}"
)
PG_LIST = PG_LIST_TEMPLATE.format(size=LIST_SIZE, fields=NODE_FIELDS)
PG5_LIST = PG_LIST_TEMPLATE.format(size=LIST_SIZE, fields=PG5_NODE_FIELDS)
NUMBER = "@@N@@"  # replaced per request by "<thread>-<counter>" in lib.lua
# The title travels as a variable, as real clients send it: the document text stays
# the same from request to request (for both targets).
OURS_CREATE = "mutation Create($title: String!) { createTask(input: {title: $title}) { id } }"
PG_CREATE_TEMPLATE = (
    'mutation Create($title: String!) {{{{ createTask(input: {{{{task: {{{{userId: "{{user}}",'
    " title: $title}}}}}}}}) {{{{ task {{{{ {key} }}}} }}}} }}}}"
)
PG_CREATE = PG_CREATE_TEMPLATE.format(key="id")
PG5_CREATE = PG_CREATE_TEMPLATE.format(key="rowId")
# The GraphQL query texts per (base) target.
LIST_QUERY = {"ours": OURS_LIST, "postgraphile": PG_LIST, "postgraphile5": PG5_LIST}
CREATE_QUERY = {"ours": OURS_CREATE, "postgraphile": PG_CREATE, "postgraphile5": PG5_CREATE}
# The field holding the row's key in each target's task (v5's `id` is a node id).
ROW_KEY = {"ours": "id", "postgraphile": "id", "postgraphile5": "rowId"}
POSTGRAPHILES = ("postgraphile", "postgraphile5")


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    targets: tuple[str, ...]
    writes: bool = False  # draws from the writer users, not the seeded readers
    needs_ids: bool = False
    graphql: bool = False
    auth: str = "hs256"  # which variant of ours serves it
    floor_baseline: str | None = None  # the floor scenario ours is compared with


# Reads first, writes last, so reads always see the freshly seeded, vacuumed table.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("rest_list", "rest_list.lua", ("ours", "floor"), floor_baseline="rest_list"),
    Scenario(
        "rest_list_eddsa",
        "rest_list.lua",
        ("ours",),
        auth="eddsa",
        floor_baseline="rest_list",
    ),
    Scenario("rest_get", "rest_get.lua", ("ours", "floor"), needs_ids=True, floor_baseline="rest_get"),
    Scenario("gql_list", "gql_list.lua", ("ours", *POSTGRAPHILES), graphql=True),
    Scenario(
        "rest_toggle",
        "rest_toggle.lua",
        ("ours", "floor"),
        needs_ids=True,
        floor_baseline="rest_toggle",
    ),
    Scenario(
        "rest_create",
        "rest_create.lua",
        ("ours", "floor"),
        writes=True,
        floor_baseline="rest_create",
    ),
    Scenario("gql_create", "gql_create.lua", ("ours", *POSTGRAPHILES), writes=True, graphql=True),
)
BY_NAME = {s.name: s for s in SCENARIOS}
# Targets that are the service (Scenario.targets names only "ours"); they share its
# scenarios, requests and checks.
OURS_TARGETS = ("ours", "ours_pooled")


def base_target(target: str) -> str:
    """The target whose requests `target` receives: ours for ours_pooled."""
    return "ours" if target in OURS_TARGETS else target


def _query(queries: dict[str, str], target: str, user: str) -> str:
    """The target's query text; PostGraphile's name the owner in a condition / input."""
    return queries[target].format(user=user) if target in POSTGRAPHILES else queries[target]


def _gql_body(query: str) -> str:
    return json.dumps({"query": query}, separators=(",", ":"))


def user_entries(
    scenario: Scenario,
    target: str,
    *,
    readers: dict[str, list[int]],
    writers: list[str],
    token: Callable[[str], str] | None,
) -> list[dict[str, Any]]:
    """The per-user request material the scenario's Lua script picks from."""
    if scenario.writes:
        pool: list[tuple[str, list[int]]] = [(w, []) for w in writers]
    else:
        pool = list(readers.items())
    entries = []
    for uid, ids in pool:
        headers: dict[str, str] = {}
        if target == "ours":
            assert token is not None
            headers["Authorization"] = f"Bearer {token(uid)}"
        elif target == "floor":
            headers["X-User-Id"] = uid
        entry: dict[str, Any] = {"id": uid, "headers": headers}
        if scenario.needs_ids:
            entry["ids"] = ids
        if scenario.name == "gql_list":
            entry["body"] = _gql_body(_query(LIST_QUERY, target, uid))
        if scenario.name in ("rest_create", "gql_create"):
            if scenario.name == "rest_create":
                body = json.dumps({"title": f"bench {NUMBER}"})
            else:
                query = _query(CREATE_QUERY, target, uid)
                body = json.dumps({"query": query, "variables": {"title": f"bench {NUMBER}"}})
            entry["body_prefix"], entry["body_suffix"] = body.split(NUMBER)
        if scenario.graphql or scenario.writes:
            headers["Content-Type"] = "application/json"
        entries.append(entry)
    return entries


# ------------------------------------------------------------------------ sanity check


def _one_request(scenario: Scenario, entry: dict[str, Any]) -> tuple[str, str, bytes | None]:
    name = scenario.name
    if name.startswith("rest_list"):
        return "GET", "/api/tasks?limit=50", None
    if name == "rest_get":
        return "GET", f"/api/tasks/{entry['ids'][0]}", None
    if name == "rest_toggle":
        return "PATCH", f"/api/tasks/{entry['ids'][0]}/complete", None
    if name == "gql_list":
        return "POST", "/graphql", entry["body"].encode()
    # creates
    return (
        "POST",
        ("/graphql" if scenario.graphql else "/api/tasks"),
        (entry["body_prefix"] + "check-0" + entry["body_suffix"]).encode(),
    )


def check(
    scenario: Scenario,
    target: str,
    port: int,
    entry: dict[str, Any],
    expected_rows: int | None = None,
) -> tuple[bool, str, Any]:
    """Send one request the way the Lua script would; (ok, message, parsed response).

    For gql_list, `expected_rows` is how many tasks the user's first page must hold
    (min(50, the user's task count)); for gql_create, the new task's key must be there."""
    method, path, body = _one_request(scenario, entry)
    status, raw = http_request(port, method, path, headers=dict(entry["headers"]), body=body)
    try:
        doc = json.loads(raw)
    except ValueError:
        return False, f"HTTP {status}, body is not JSON: {raw[:200]!r}", None
    expected = 201 if scenario.name == "rest_create" else 200
    if status != expected:
        return False, f"HTTP {status} (expected {expected}): {raw[:300]!r}", doc
    if scenario.graphql:
        if doc.get("errors"):
            return False, f"GraphQL errors: {json.dumps(doc['errors'])[:300]}", doc
        data = doc.get("data") or {}
        if scenario.name == "gql_list":
            nodes = data["tasks" if target == "ours" else "allTasks"]["nodes"]
            if not nodes:
                return False, "gql_list returned no nodes", doc
            if expected_rows is not None and len(nodes) != expected_rows:
                return False, f"gql_list returned {len(nodes)} nodes, expected {expected_rows}", doc
            if any(node.get(ROW_KEY[target]) is None for node in nodes):
                return False, f"gql_list nodes lack {ROW_KEY[target]!r}", doc
        else:
            created = data["createTask"]
            task = created if target == "ours" else created["task"]
            if not task or task.get(ROW_KEY[target]) is None:
                return False, f"createTask returned no {ROW_KEY[target]!r}: {doc}", doc
        return True, "ok", doc
    if scenario.name.startswith("rest_list"):
        if not isinstance(doc, list) or not doc:
            return False, f"expected a non-empty JSON array, got {raw[:200]!r}", doc
        item = doc[0]
    else:
        item = doc
    if not isinstance(item, dict) or set(item) != TASK_KEYS:
        keys = sorted(item) if isinstance(item, dict) else type(item).__name__
        return False, f"task keys differ from the REST shape: {keys}", doc
    return True, "ok", doc


def _norm(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def compare_lists(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """Differences between two REST list responses for the same user (values, not spelling)."""
    diffs = []
    if len(a) != len(b):
        diffs.append(f"lengths differ: {len(a)} vs {len(b)}")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        for key in sorted(TASK_KEYS):
            if key in ("completed", "updated_at"):
                continue  # toggles may have run in between
            if _norm(x.get(key)) != _norm(y.get(key)):
                diffs.append(f"[{i}].{key}: {x.get(key)!r} vs {y.get(key)!r}")
        if len(diffs) > 10:
            break
    return diffs
