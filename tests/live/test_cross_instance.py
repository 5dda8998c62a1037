"""Two instances of the service (`python -m api serve`, real processes) on one
database: a change made through REST on instance A reaches a GraphQL subscriber and an
SSE client on instance B, and never another user's streams on either."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from db.url import DatabaseURL
from tests.live.clients import GraphQLSocket, SSEStream, subscribed
from tests.production.service import ServiceProcess
from tests.support import hs_token, unique_user

TOGGLE = "mutation Toggle($id: ID!) { toggleTaskCompletion(id: $id) { id completed } }"


@pytest.fixture(scope="module")
def instances(database: DatabaseURL) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    env = {"DATABASE_URL": database.url, "MIGRATE_ON_START": "false"}
    a, b = ServiceProcess(env, name="live-a"), ServiceProcess(env, name="live-b")
    try:
        a.start()
        b.start()
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_a_change_on_one_instance_reaches_subscribers_on_another(
    instances: tuple[ServiceProcess, ServiceProcess],
) -> None:
    a, b = instances
    alice, bob = unique_user("alice"), unique_user("bob")
    ta, tb = hs_token(alice), hs_token(bob)
    with (
        SSEStream(b.url, ta) as alice_sse_b,
        subscribed(b.url, ta) as alice_ws_b,
        SSEStream(b.url, tb) as bob_sse_b,
        subscribed(a.url, tb) as bob_ws_a,
        SSEStream(a.url, tb) as bob_sse_a,
    ):
        for stream in (alice_sse_b, bob_sse_b, bob_sse_a):
            assert stream.get().event == "ready"
        with a.client(ta) as c:
            written_at = time.time()
            task = c.post("/api/tasks", json={"title": "made on A"}).json()
            toggled = c.post("/graphql", json={"query": TOGGLE, "variables": {"id": str(task["id"])}}).json()[
                "data"
            ]["toggleTaskCompletion"]
            assert toggled["completed"] is True
        with b.client(ta) as c:
            assert c.delete(f"/api/tasks/{task['id']}").status_code == 204

        sse = [alice_sse_b.get() for _ in range(3)]
        assert [e.event for e in sse] == ["created", "completed", "deleted"]
        assert sse[0].data["task"] == task
        assert sse[0].received_at - written_at < 5
        ws = [alice_ws_b.next_change() for _ in range(3)]
        assert [(c["kind"], c["taskId"]) for c in ws] == [
            ("CREATED", str(task["id"])),
            ("COMPLETED", str(task["id"])),
            ("DELETED", str(task["id"])),
        ]
        assert [c["eventId"] for c in ws] == [e.id for e in sse]  # the same ids everywhere

        # Bob, on both instances and both interfaces, never saw any of it.
        with b.client(tb) as c:
            marker = c.post("/api/tasks", json={"title": "bob's"}).json()
        assert bob_sse_b.get().data["task"] == marker
        assert bob_sse_a.get().data["task"] == marker
        assert bob_ws_a.next_change()["taskId"] == str(marker["id"])
        assert alice_sse_b.quiet(0.5) == []


def test_resume_on_another_instance(instances: tuple[ServiceProcess, ServiceProcess]) -> None:
    a, b = instances
    token = hs_token(unique_user("roaming"))
    with SSEStream(a.url, token) as on_a:
        on_a.get()
        with a.client(token) as c:
            c.post("/api/tasks", json={"title": "seen on A"})
        last = on_a.get().id
    # Instance A went away; the client reconnects through the load balancer to B.
    # B hears of a change through its LISTEN connection, shortly after the write's response
    # (even a write made through B): a stream already open on B shows when it has, so the
    # resume below finds it among the changes to replay rather than arriving live later.
    with SSEStream(b.url, token) as watching_b:
        assert watching_b.get().event == "ready"
        with b.client(token) as c:
            missed = c.post("/api/tasks", json={"title": "missed"}).json()
        assert watching_b.get().data["task"] == missed
    with SSEStream(b.url, token, last_event_id=last) as on_b:
        assert on_b.get().data["task"] == missed
        assert on_b.get().data["reason"] == "resumed"
    with GraphQLSocket(b.url) as socket:
        socket.sign_in(token)
        socket.subscribe(after=last)
        assert socket.next_change()["taskId"] == str(missed["id"])
        assert socket.next_change()["reason"] == "resumed"
