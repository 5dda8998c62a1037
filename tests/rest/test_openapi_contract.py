"""The OpenAPI document against the live server: what /openapi.json says is what the
service accepts and answers.

Every response a test here receives is checked against the document (`Contract.check`):
its status is documented for the operation, its body validates against the documented
schema, its documented required headers are there and valid. Request schemas are checked
in the other direction: a value the schema admits is accepted, one it refuses is refused.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from api.body_limit import MAX_BODY_BYTES
from db.url import DatabaseURL
from schema.validation import MAX_TASK_ID
from tests.support import (
    JWKSServer,
    LiveServer,
    auth,
    hs_token,
    live_server,
    settings_for,
    snapshot,
    unique_user,
)

API_PREFIXES = ("/api", "/api/{user_id}")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BODY_STATUSES_WITHOUT_CONTENT = {204}


class Contract:
    """The served document, and a record of which documented (operation, status) pairs
    real responses have shown."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.seen: set[tuple[str, str, str]] = set()
        self.checked = 0
        self._validators: dict[str, jsonschema_rs.Validator] = {}

    @property
    def paths(self) -> dict[str, dict[str, Any]]:
        paths: dict[str, dict[str, Any]] = self.document["paths"]
        return paths

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.paths.items():
            for method, operation in item.items():
                if method in HTTP_METHODS:
                    yield path, method, operation

    def operation(self, path: str, method: str) -> dict[str, Any]:
        operation: dict[str, Any] = self.paths[path][method]
        return operation

    def validator(self, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for a schema of the
        document, its `#/components/...` references resolved against the document."""
        key = repr(schema)
        if key not in self._validators:
            root = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                **schema,
                "components": self.document["components"],
            }
            self._validators[key] = jsonschema_rs.validator_for(root, validate_formats=True)
        return self._validators[key]

    def body_schema(self, path: str, method: str) -> dict[str, Any]:
        schema: dict[str, Any] = self.operation(path, method)["requestBody"]["content"]["application/json"][
            "schema"
        ]
        return schema

    def parameter_schema(self, path: str, method: str, name: str) -> dict[str, Any]:
        for parameter in self.operation(path, method).get("parameters", ()):
            if parameter["name"] == name:
                schema: dict[str, Any] = parameter["schema"]
                return schema
        raise KeyError(name)

    def check(self, path: str, method: str, response: httpx.Response) -> httpx.Response:
        """Assert that the response is one the document describes for this operation."""
        where = f"{method.upper()} {path} -> {response.status_code}: {response.text[:300]}"
        responses = self.operation(path, method)["responses"]
        status = str(response.status_code)
        assert status in responses, f"undocumented status: {where}"
        documented = responses[status]
        content = documented.get("content")
        if content is None:
            assert response.status_code in BODY_STATUSES_WITHOUT_CONTENT, where
            assert response.content == b"", where
        else:
            assert list(content) == ["application/json"], where
            assert response.headers["content-type"].startswith("application/json"), where
            body = response.json()
            errors = [str(e) for e in self.validator(content["application/json"]["schema"]).iter_errors(body)]
            assert not errors, f"{where}\n" + "\n".join(errors)
            if response.status_code >= 400:
                # ErrorOut: `errors` is there on every 400, absent (never null) otherwise.
                assert ("errors" in body) is (response.status_code == 400), where
        for name, header in documented.get("headers", {}).items():
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required", False), f"missing required header {name}: {where}"
                continue
            schema = header["schema"]
            typed: Any = int(value) if schema.get("type") == "integer" and value.isdigit() else value
            assert self.validator(schema).is_valid(typed), f"header {name}: {value!r}: {where}"
        self.seen.add((path, method, status))
        self.checked += 1
        return response


@pytest.fixture(scope="module")
def contract(server: LiveServer) -> Iterator[Contract]:
    with server.client() as c:
        r = c.get("/openapi.json")
    assert r.status_code == 200
    contract = Contract(r.json())
    yield contract
    print(f"\nopenapi contract: {contract.checked} responses checked against the document")


@pytest.fixture(scope="module")
def user() -> str:
    return unique_user("contract")


@pytest.fixture(scope="module")
def client(server: LiveServer, user: str) -> Iterator[httpx.Client]:
    with server.client(hs_token(user, ttl=3600)) as c:
        yield c


def fill(path: str, user_id: str, task_id: object = 1) -> str:
    return path.replace("{user_id}", user_id).replace("{task_id}", str(task_id))


def api_operations(contract: Contract) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, m, op in contract.operations() if p.startswith("/api/")]


def minimal_body(contract: Contract, path: str, method: str) -> dict[str, Any] | None:
    operation = contract.operation(path, method)
    if "requestBody" not in operation:
        return None
    return {"title": "contract"} if method in ("post", "put") else {}


# --- security ---------------------------------------------------------------------------


def test_bearer_scheme_is_declared_on_every_protected_operation(contract: Contract) -> None:
    document = contract.document
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
        }
    }
    assert "security" not in document  # no global requirement: the probes are open
    operations = list(contract.operations())
    assert len(operations) == 14
    for path, method, operation in operations:
        if path.startswith("/api/"):
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
        else:
            assert path in ("/healthz", "/readyz")
            assert "security" not in operation, path


@pytest.mark.parametrize("credentials", ["none", "not-a-jwt", "bad-signature", "expired", "basic"])
def test_every_protected_operation_answers_the_documented_401_without_a_valid_token(
    server: LiveServer, contract: Contract, database: DatabaseURL, credentials: str
) -> None:
    victim = unique_user("victim")
    headers = {
        "none": {},
        "not-a-jwt": auth("not-a-jwt"),
        "bad-signature": auth(hs_token(victim, secret="another-secret-that-is-long-enough-0123456789")),
        "expired": auth(hs_token(victim, ttl=-3600)),
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    }[credentials]
    with server.client() as c:
        for path, method, _ in api_operations(contract):
            body = minimal_body(contract, path, method)
            r = c.request(method, fill(path, victim), json=body, headers=headers)
            contract.check(path, method, r)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["code"] == "unauthenticated"
            challenge = r.headers["www-authenticate"]
            # As documented: the error is named whenever an Authorization header was sent.
            sent = credentials != "none"
            assert challenge == ('Bearer error="invalid_token"' if sent else "Bearer"), challenge
    assert snapshot(database, victim) == []


# --- every documented status, seen ------------------------------------------------------


@pytest.fixture(scope="module")
def auth_unavailable(database: DatabaseURL, app_path: str) -> Iterator[tuple[LiveServer, str]]:
    """A service whose JWKS endpoint is failing, and a token whose key it must fetch:
    every protected operation answers 503 `auth_unavailable`. On the module's path
    (`app_path`), like `server`."""
    issuer = "http://127.0.0.1:9/contract-issuer"
    jwks = JWKSServer(status=500).start()
    settings = settings_for(
        database,
        BETTER_AUTH_URL=issuer,
        JWT_JWKS_URL=jwks.url,
        JWKS_MIN_REFRESH_SECONDS="0.1",
        JWKS_FETCH_TIMEOUT_SECONDS="1",
    )
    now = int(time.time())
    claims = {"sub": unique_user("jwks"), "iss": issuer, "aud": issuer, "iat": now, "exp": now + 3600}
    token = jwt.encode(
        claims,
        ed25519.Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": f"k-{uuid.uuid4().hex[:8]}"},
    )
    try:
        with live_server(settings) as srv:
            yield srv, token
    finally:
        jwks.stop()


def test_every_documented_status_is_what_the_server_answers(
    server: LiveServer,
    contract: Contract,
    client: httpx.Client,
    user: str,
    auth_unavailable: tuple[LiveServer, str],
) -> None:
    """Drive each operation, on both path forms, into each status its document lists;
    every answer must match the document (status, body schema, headers)."""
    other = unique_user("other")
    oversized = b"x" * (MAX_BODY_BYTES + 1)
    unavailable, jwks_token = auth_unavailable
    with server.client() as anonymous, unavailable.client(jwks_token) as broken:
        for prefix in API_PREFIXES:
            collection = f"{prefix}/tasks"
            item = f"{collection}/{{task_id}}"
            complete = f"{item}/complete"

            def call(path: str, method: str, task_id: object = 1, user_id: str = user, **kw: Any) -> Any:
                return contract.check(
                    path, method, client.request(method, fill(path, user_id, task_id), **kw)
                )

            created = call(collection, "post", json={"title": "contract", "due_date": "2026-12-01"})
            assert created.status_code == 201
            task_id = created.json()["id"]
            assert created.headers["location"] == fill(item, user, task_id)
            call(collection, "post", json={"title": "second"})
            listed = call(collection, "get", params={"limit": 1})
            assert listed.status_code == 200 and "link" in listed.headers
            assert int(listed.headers["x-total-count"]) >= 2
            next_page = re.fullmatch(r'<([^>]+)>; rel="next"', listed.headers["link"])
            assert next_page is not None
            assert contract.check(collection, "get", client.get(next_page.group(1))).status_code == 200
            assert call(item, "get", task_id).status_code == 200
            assert call(item, "put", task_id, json={"priority": "high"}).status_code == 200
            assert call(complete, "patch", task_id).status_code == 200
            assert call(complete, "patch", task_id, json={"completed": False}).status_code == 200

            for params in ({"limit": 0}, {"offset": -1}, {"order": "sideways"}, {"search": "x" * 201}):
                assert call(collection, "get", params=params).status_code == 400
            assert call(collection, "post", json={"title": " "}).status_code == 400
            assert call(item, "get", "0").status_code == 400
            assert call(item, "put", task_id, json={"id": 5}).status_code == 400
            assert call(item, "delete", "x").status_code == 400
            assert call(complete, "patch", task_id, json={"completed": "yes"}).status_code == 400

            for method in ("get", "put", "delete"):
                body = {"title": "x"} if method == "put" else None
                assert call(item, method, MAX_TASK_ID, json=body).status_code == 404
            assert call(complete, "patch", MAX_TASK_ID).status_code == 404

            for path, method, _ in api_operations(contract):
                if not path.startswith(f"{prefix}/tasks"):
                    continue
                url = fill(path, user, task_id)
                if "requestBody" in contract.operation(path, method):
                    r = client.request(
                        method, url, content=b"title=x", headers={"content-type": "text/plain"}
                    )
                    assert contract.check(path, method, r).status_code == 415
                r = client.request(
                    method, url, content=oversized, headers={"content-type": "application/json"}
                )
                assert contract.check(path, method, r).status_code == 413
                body = minimal_body(contract, path, method)
                r = anonymous.request(method, url, json=body)
                assert contract.check(path, method, r).status_code == 401
                r = broken.request(method, url, json=body)
                assert contract.check(path, method, r).status_code == 503
                assert r.json()["code"] == "auth_unavailable"
                if "{user_id}" in path:
                    r = client.request(method, fill(path, other, task_id), json=body)
                    assert contract.check(path, method, r).status_code == 403

            assert call(item, "delete", task_id).status_code == 204
            assert call(item, "get", task_id).status_code == 404

        assert contract.check("/healthz", "get", anonymous.get("/healthz")).status_code == 200
        assert contract.check("/readyz", "get", anonymous.get("/readyz")).status_code == 200

    documented = {(p, m, s) for p, m, op in contract.operations() for s in op["responses"]}
    # /readyz's 503 needs the database down: tests/service/test_outage.py and tests/production cover it.
    unseen = documented - contract.seen - {("/readyz", "get", "503")}
    assert not unseen, sorted(unseen)


def test_unsupported_methods_answer_405_with_the_documented_methods(
    server: LiveServer, contract: Contract, user: str
) -> None:
    """The document's info names this 405; `Allow` lists exactly the documented methods."""
    assert "405" in contract.document["info"]["description"]
    with server.client(hs_token(user)) as c:
        for path, item in contract.paths.items():
            documented = {m.upper() for m in item if m in HTTP_METHODS}
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                if method in documented:
                    continue
                r = c.request(method, fill(path, user))
                assert r.status_code == 405, (method, path, r.text)
                assert r.json()["code"] == "method_not_allowed"
                assert set(r.headers["allow"].split(", ")) == documented, (path, r.headers["allow"])


# --- request schemas: admitted if and only if accepted -----------------------------------

TITLES = [
    "a",
    " a ",
    "x" * 200,
    " \t" + "x" * 200 + "\n ",
    "",
    "   ",
    "\u3000\x1c\x85",  # whitespace to Python's str.strip(), not to ECMA-262's \s
    "x" * 201,
    "a\x00b",
    "\ufeff",  # not whitespace to str.strip(): a title
    "\u00e9t\u00e9 \U0001f600",
]
DUE_DATES_IN_SCHEMA = [
    "2026-12-01T09:00:00Z",
    "2026-12-01T09:00:00.123456+05:30",
    "1000-01-02T00:00:00+23:59",
    "9999-12-30T23:59:59-23:59",
    "",
    None,
]
# ISO 8601 forms the service also reads, which the schema (RFC 3339 date-times, away from
# the two edge days) does not describe: documented in the field's description.
DUE_DATES_BEYOND_SCHEMA = ["2026-12-01", "2026-12-01T09:00:00", "20261201", "1000-01-01T00:00:00Z"]
DUE_DATES_REFUSED = [
    "0999-12-31T23:59:59Z",
    "1000-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00",
    "2026-13-01T00:00:00Z",
    "tomorrow",
    1795950000,
    True,
]


def _create_bodies() -> list[Any]:
    bodies: list[Any] = [{"title": t} for t in TITLES]
    bodies += [{"title": "d", "due_date": d} for d in DUE_DATES_IN_SCHEMA + DUE_DATES_REFUSED]
    bodies += [
        {"title": None},
        {},
        {"title": "t", "completed": None},
        {"title": "t", "priority": None},
        {"title": "t", "priority": "urgent"},
        {"title": "t", "completed": "true"},
        {"title": "t", "description": None},
        {"title": "t", "description": "d" * 1000},
        {"title": "t", "description": "d" * 1001},
        {"title": "t", "description": "  "},
        {"title": "t", "description": "a\x00"},
        {"title": "t", "id": "echoed", "user_id": 5, "unknown": [1]},
        [{"title": "t"}],
        "t",
        None,
    ]
    return bodies


def _update_bodies() -> list[Any]:
    return [
        {},
        {"id": 1, "created_at": "x"},
        {"title": None},
        {"title": "  "},
        {"title": " new "},
        {"completed": None},
        {"completed": True},
        {"priority": None},
        {"priority": "low"},
        {"description": None},
        {"due_date": None},
        {"due_date": ""},
        {"due_date": "2026-12-01T09:00:00Z"},
        {"due_date": "0999-12-31T23:59:59Z"},
        {"title": "ok", "completed": None},
    ]


@pytest.mark.parametrize(("method", "bodies"), [("post", _create_bodies()), ("put", _update_bodies())])
def test_a_body_is_accepted_exactly_when_its_schema_admits_it(
    contract: Contract, client: httpx.Client, user: str, method: str, bodies: list[Any]
) -> None:
    for prefix in API_PREFIXES:
        collection = f"{prefix}/tasks"
        path = collection if method == "post" else f"{collection}/{{task_id}}"
        task_id = client.post(fill(collection, user), json={"title": "target"}).json()["id"]
        schema = contract.validator(contract.body_schema(path, method))
        for body in bodies:
            r = contract.check(path, method, client.request(method, fill(path, user, task_id), json=body))
            admitted = body is not None and schema.is_valid(body)
            assert (r.status_code < 300) is admitted, f"{body!r}: schema admits: {admitted}; {r.text}"
        for due in DUE_DATES_BEYOND_SCHEMA:
            body = {"title": "d", "due_date": due}
            assert not schema.is_valid(body), due
            r = contract.check(path, method, client.request(method, fill(path, user, task_id), json=body))
            assert r.status_code < 300, (due, r.text)


@pytest.mark.parametrize("prefix", API_PREFIXES)
def test_fields_documented_not_nullable_refuse_null(
    contract: Contract, client: httpx.Client, user: str, prefix: str
) -> None:
    """title, completed and priority: documented without null, and null is a 400 naming
    the field; description and due_date: documented nullable, and null is accepted."""
    collection = f"{prefix}/tasks"
    item = f"{collection}/{{task_id}}"
    task_id = client.post(fill(collection, user), json={"title": "nulls"}).json()["id"]
    for path, method in ((collection, "post"), (item, "put")):
        properties = contract.document["components"]["schemas"][
            contract.body_schema(path, method)["$ref"].rsplit("/", 1)[1]
        ]["properties"]
        nullable = {name for name, schema in properties.items() if contract.validator(schema).is_valid(None)}
        assert nullable == {"description", "due_date"}, (method, nullable)
        for name in properties:
            body = {"title": "t", name: None} if name != "title" else {name: None}
            r = contract.check(path, method, client.request(method, fill(path, user, task_id), json=body))
            if name in nullable:
                assert r.status_code < 300, (method, name, r.text)
            else:
                assert r.status_code == 400, (method, name, r.text)
                assert [e["field"] for e in r.json()["errors"]] == [name]


QUERY_VALUES: dict[str, list[str]] = {
    "limit": ["1", "500", "0", "501", "-1", "1.5", "ten", "", str(2**64)],
    "offset": ["0", str(MAX_TASK_ID), "-1", str(MAX_TASK_ID + 1), "x"],
    "search": ["milk", "  ", "x" * 200, " " + "x" * 200 + " ", "x" * 201, "a\x00", "\u00e9"],
    "order": ["asc", "desc", "", "up"],
    "status": ["all", "pending", "completed", "done"],
    "sort": ["created", "updated", "title", "due_date", "priority", "size"],
}


def _as_parameter(value: str, schema: dict[str, Any]) -> Any:
    """A query string or path value as the JSON value a client would have serialized."""
    if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return value


@pytest.mark.parametrize("prefix", API_PREFIXES)
def test_query_and_path_values_are_accepted_exactly_when_documented(
    contract: Contract, client: httpx.Client, user: str, prefix: str
) -> None:
    collection = f"{prefix}/tasks"
    for name, values in QUERY_VALUES.items():
        schema = contract.parameter_schema(collection, "get", name)
        validator = contract.validator(schema)
        for value in values:
            r = contract.check(collection, "get", client.get(fill(collection, user), params={name: value}))
            admitted = validator.is_valid(_as_parameter(value, schema))
            assert (r.status_code == 200) is admitted, f"{name}={value!r}: admits {admitted}: {r.text}"
    item = f"{collection}/{{task_id}}"
    schema = contract.parameter_schema(item, "get", "task_id")
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, MAX_TASK_ID)
    for value in ["1", str(MAX_TASK_ID), "0", str(MAX_TASK_ID + 1), "-1", "1.0", "abc"]:
        r = contract.check(item, "get", client.get(fill(item, user, value)))
        admitted = contract.validator(schema).is_valid(_as_parameter(value, schema))
        # Admitted: found or not (404); refused: 400.
        assert (r.status_code in (200, 404)) is admitted, f"task_id={value!r}: {r.text}"


# --- links ---------------------------------------------------------------------------------


def _resolve(expression: str, request_path: dict[str, str], body: dict[str, Any]) -> str:
    if expression.startswith("$request.path."):
        return request_path[expression.removeprefix("$request.path.")]
    if expression.startswith("$response.body#/"):
        return str(body[expression.removeprefix("$response.body#/")])
    raise AssertionError(f"unexpected runtime expression {expression}")


def _by_operation_id(contract: Contract) -> dict[str, tuple[str, str]]:
    return {op["operationId"]: (path, method) for path, method, op in contract.operations()}


@pytest.mark.parametrize("prefix", API_PREFIXES)
def test_links_lead_from_a_created_task_to_its_operations(
    contract: Contract, client: httpx.Client, user: str, prefix: str
) -> None:
    collection = f"{prefix}/tasks"
    operations = _by_operation_id(contract)
    links = contract.operation(collection, "post")["responses"]["201"]["links"]
    assert set(links) == {"GetTask", "UpdateTask", "DeleteTask", "CompleteTask"}
    created = contract.check(
        collection, "post", client.post(fill(collection, user), json={"title": "linked"})
    )
    task = created.json()
    request_path = {"user_id": user}
    for name in ("GetTask", "UpdateTask", "CompleteTask", "DeleteTask"):
        path, method = operations[links[name]["operationId"]]
        assert path.startswith(collection), (name, path)
        values = {k: _resolve(v, request_path, task) for k, v in links[name]["parameters"].items()}
        assert values["task_id"] == str(task["id"])
        body = {"title": "renamed"} if method == "put" else None
        r = contract.check(
            path, method, client.request(method, fill(path, user, values["task_id"]), json=body)
        )
        assert r.status_code in (200, 204), (name, r.text)
        # Every operation a task leads to leads on to the same set, with the same id.
        if r.status_code == 200:
            follow = contract.operation(path, method)["responses"]["200"]["links"]
            assert {k: v["operationId"] for k, v in follow.items()} == {
                k: v["operationId"] for k, v in links.items()
            }
    deleted_links = contract.operation(f"{collection}/{{task_id}}", "delete")["responses"]["204"]["links"]
    for name, link in deleted_links.items():
        path, method = operations[link["operationId"]]
        values = {
            k: _resolve(v, {"user_id": user, "task_id": str(task["id"])}, {})
            for k, v in link["parameters"].items()
        }
        body = {"title": "gone"} if method == "put" else None
        r = contract.check(
            path, method, client.request(method, fill(path, user, values["task_id"]), json=body)
        )
        assert r.status_code == 404, (name, r.text)
