"""Through a real PgBouncer in transaction mode (Debian's 1.18: no prepared-statement
support, the hard case), as on Neon's `-pooler` URLs or Supabase's port 6543.

Two instances start at the same moment on an empty database, both migrating through
the pooler; then a concurrent mixed load over both must see no 5xx, every answer must
belong to its caller and match what was written, and the database must hold exactly
what was acknowledged."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from db.url import DatabaseURL
from tests.infra import PgBouncer
from tests.production.service import ServiceProcess
from tests.support import HS_SECRET, db_fetch, hs_token

USERS = 8
ROUNDS = 12
GQL_CREATE = "mutation($t: String!) { createTask(input: {title: $t}) { id title completed } }"
GQL_READ = (
    "query($id: ID!) { me { id } task(id: $id) { id title completed } tasks(first: 100) { nodes { id } } }"
)


class Load:
    """Counts every answer by status; records what the load believes is stored."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.problems: list[str] = []
        self.expected: dict[str, dict[int, tuple[str, bool]]] = {}
        self.lock = threading.Lock()

    def check(self, response: httpx.Response, expected_status: int, what: str) -> Any:
        with self.lock:
            self.statuses[response.status_code] += 1
        if response.status_code != expected_status:
            with self.lock:
                self.problems.append(f"{what}: {response.status_code} {response.text[:200]}")
            return None
        return response.json() if response.content else None

    def fail(self, message: str) -> None:
        with self.lock:
            self.problems.append(message)


def _user_session(load: Load, user: str, a: httpx.Client, b: httpx.Client) -> None:
    mine: dict[int, tuple[str, bool]] = {}
    for i in range(ROUNDS):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        title = f"{user} task {i} {uuid.uuid4().hex[:6]}"
        task = load.check(first.post("/api/tasks", json={"title": title}), 201, "create")
        if task is None:
            continue
        if task["user_id"] != user or task["title"] != title:
            load.fail(f"create answered someone else's task: {task}")
        tid = task["id"]
        got = load.check(second.get(f"/api/tasks/{tid}"), 200, "read back")
        if got is not None and (got["title"] != title or got["user_id"] != user):
            load.fail(f"read back {got} for {title}")
        listed = load.check(first.get("/api/tasks", params={"limit": 100}), 200, "list")
        if listed is not None:
            if any(t["user_id"] != user for t in listed):
                load.fail("list holds another user's task")
            if tid not in {t["id"] for t in listed}:
                load.fail(f"list misses {tid}")
        toggled = load.check(second.patch(f"/api/tasks/{tid}/complete"), 200, "toggle")
        if toggled is not None and toggled["completed"] is not True:
            load.fail(f"toggle gave {toggled}")
        new_title = title + " (edited)"
        updated = load.check(first.put(f"/api/tasks/{tid}", json={"title": new_title}), 200, "update")
        if updated is not None and (updated["title"] != new_title or updated["completed"] is not True):
            load.fail(f"update gave {updated}")
        if i % 3 == 0:
            load.check(second.delete(f"/api/tasks/{tid}"), 204, "delete")
            load.check(first.get(f"/api/tasks/{tid}"), 404, "read deleted")
        else:
            mine[tid] = (new_title, True)
        gql_title = f"{user} graphql {i}"
        body = load.check(
            second.post("/graphql", json={"query": GQL_CREATE, "variables": {"t": gql_title}}),
            200,
            "gql create",
        )
        created = (body or {}).get("data") or {}
        if "createTask" not in created:
            load.fail(f"gql create: {body}")
            continue
        gid = created["createTask"]["id"]
        mine[int(gid)] = (gql_title, False)
        body = load.check(
            first.post("/graphql", json={"query": GQL_READ, "variables": {"id": gid}}), 200, "gql read"
        )
        data = (body or {}).get("data") or {}
        if data.get("me", {}).get("id") != user or (data.get("task") or {}).get("title") != gql_title:
            load.fail(f"gql read: {body}")
        elif gid not in {n["id"] for n in data["tasks"]["nodes"]}:
            load.fail(f"gql list misses {gid}")
    with load.lock:
        load.expected[user] = mine


def run_mixed_load(a: ServiceProcess, b: ServiceProcess, users: int = USERS) -> Load:
    load = Load()
    names = [f"pooled-{i}-{uuid.uuid4().hex[:8]}" for i in range(users)]
    clients = [(a.client(hs_token(n, ttl=900)), b.client(hs_token(n, ttl=900))) for n in names]
    threads = [
        threading.Thread(target=_user_session, args=(load, n, ca, cb))
        for n, (ca, cb) in zip(names, clients, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for ca, cb in clients:
        ca.close()
        cb.close()
    return load


def stored(direct: DatabaseURL, user: str) -> dict[int, tuple[str, bool]]:
    rows = db_fetch(direct, "SELECT id, title, completed FROM tasks WHERE user_id = $1", user)
    return {r["id"]: (r["title"], r["completed"]) for r in rows}


def test_two_instances_start_together_and_serve_a_mixed_load_through_pgbouncer(
    pooled_database: Callable[[], tuple[DatabaseURL, DatabaseURL]], pgbouncer: PgBouncer
) -> None:
    direct, pooled = pooled_database()
    # Prisma's flag marks the pooler; the service must then migrate and serve through it.
    env = {"DATABASE_URL": replace(pooled, pooled=True).url, "MIGRATE_ON_START": "true"}
    a, b = ServiceProcess(env, name="pooled-a"), ServiceProcess(env, name="pooled-b")
    try:
        a.start()
        b.start()
        a.wait_ready()
        b.wait_ready()
        load = run_mixed_load(a, b)
        outputs = a.output() + b.output()
    finally:
        a.stop()
        b.stop()
    total = sum(load.statuses.values())
    print(f"pooled load: {total} requests, by status {dict(sorted(load.statuses.items()))}")
    assert not load.problems, load.problems[:10]
    # Seven requests a round, two more every third round (delete, then read it back).
    assert total == USERS * (ROUNDS * 7 + 2 * len(range(0, ROUNDS, 3)))
    assert not any(status >= 500 for status in load.statuses), load.statuses
    assert set(load.statuses) <= {200, 201, 204, 404}
    for user, expected in load.expected.items():
        assert stored(direct, user) == expected
    # Both instances ran migrations through the pooler; one did the work.
    for sign_of_trouble in ("__asyncpg_stmt", "Traceback", "ERROR"):
        assert sign_of_trouble not in outputs, outputs[-3000:]
    assert db_fetch(direct, "SELECT version_num FROM alembic_version") != []
    assert "prepared statement" not in pgbouncer.log_text()


def test_migrations_use_the_direct_url_when_given(
    pooled_database: Callable[[], tuple[DatabaseURL, DatabaseURL]],
) -> None:
    """DATABASE_DIRECT_URL is where migrations run: with DATABASE_URL pointing nowhere,
    `todo-api migrate` still succeeds."""
    direct, _ = pooled_database()
    env = {
        "PATH": "",
        "APP_ENV": "test",
        "BETTER_AUTH_SECRET": HS_SECRET,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/nowhere?pgbouncer=true",
        "DATABASE_DIRECT_URL": direct.url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "api", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert db_fetch(direct, "SELECT count(*) AS n FROM alembic_version") == [{"n": 1}]


def test_several_migrations_at_once_through_the_pooler(
    pooled_database: Callable[[], tuple[DatabaseURL, DatabaseURL]],
) -> None:
    """Four `todo-api migrate` at the same moment through PgBouncer 1.18: all succeed,
    the schema is created once (the transaction-scoped advisory lock)."""
    direct, pooled = pooled_database()
    env = {
        "PATH": "",
        "APP_ENV": "test",
        "BETTER_AUTH_SECRET": HS_SECRET,
        "DATABASE_URL": replace(pooled, pooled=True).url,
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "api", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0, 0], outputs
    assert sum("Running upgrade  -> 0001" in out for out in outputs) == 1, outputs
    assert db_fetch(direct, "SELECT count(*) AS n FROM tasks") == [{"n": 0}]
