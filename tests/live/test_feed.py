"""The change feed's own rules (db/live.py), without a database: fan-out by owner,
bounded queues and the slow consumer, resume points, limits, shutdown."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from db.announce import pack, unpack
from db.live import (
    Change,
    ChangeFeed,
    End,
    LiveUnavailable,
    Ready,
    Resync,
    Stream,
    TooManyStreams,
    parse_change,
)
from db.queries import MISSED, NOTIFY_PAYLOAD_LIMIT
from db.url import DatabaseURL

NOWHERE = DatabaseURL.parse("postgresql://nobody@127.0.0.1:1/nothing")
_ids = iter(range(1, 10**9))


def change(user: str, kind: str = "created") -> Change:
    event_id = next(_ids)
    return Change(str(event_id), user, kind, datetime.now(UTC), event_id, None)


def feed(**options: Any) -> ChangeFeed:
    return ChangeFeed(NOWHERE, **options)


def drain(stream: Stream) -> list[Any]:
    items = []
    while (item := stream.get_nowait()) is not None:
        items.append(item)
    return items


def test_changes_go_to_their_owners_streams_only() -> None:
    f = feed()
    a1, a2, b = f.open("alice"), f.open("alice"), f.open("bob")
    for stream in (a1, a2, b):
        assert isinstance(stream.get_nowait(), Ready)
    mine = change("alice")
    f.publish(mine)
    f.publish(mine)  # the same announcement twice is delivered once
    assert drain(a1) == [mine] and drain(a2) == [mine]
    assert drain(b) == []


def test_a_slow_consumer_is_dropped_without_holding_up_the_others() -> None:
    f = feed(queue_size=4)
    slow, fast, other = f.open("alice"), f.open("alice"), f.open("bob")
    delivered = []
    for _ in range(10):
        c = change("alice")
        f.publish(c)
        f.publish(change("bob"))
        delivered.append(c)
        got = drain(fast)
        assert got[-1] is c  # the fast reader has every change at once
        drain(other)
    items = drain(slow)
    # The slow one never read: its queue (Ready and 3 changes) was full at the 4th change,
    # and was replaced by a resync (at that change's position) and the end.
    assert len(items) == 2
    assert isinstance(items[0], Resync) and items[0].reason == "overflow"
    assert items[0].id == delivered[3].id
    assert items[1] == End("overflow")
    assert f.open_streams == 2  # its place was freed when it was dropped
    slow.close()  # harmless after the drop
    assert f.open_streams == 2


def test_resume_points() -> None:
    f = feed(replay_events=5, queue_size=3)
    start = f.position
    first = f.open("alice")
    changes = [change("alice"), change("bob"), change("alice")]
    for c in changes:
        f.publish(c)
    resumed = f.open("alice", after=start)
    items = drain(resumed)
    assert items[:2] == [changes[0], changes[2]]  # only Alice's, in order
    assert isinstance(items[2], Ready) and items[2].reason == "resumed"
    assert items[2].id == changes[2].id
    # Too many missed to fit the queue: the client refetches instead.
    for _ in range(3):
        f.publish(change("alice"))
    too_many = drain(f.open("alice", after=start))
    assert len(too_many) == 1 and too_many[0].reason == "resume_unavailable"
    # Older than what is kept (5 entries): unavailable.
    for _ in range(5):
        f.publish(change("bob"))
    gone = drain(f.open("alice", after=changes[0].id))
    assert [type(i) for i in gone] == [Ready] and gone[0].reason == "resume_unavailable"
    # The newest entry is always kept: resuming from it misses nothing.
    assert drain(f.open("alice", after=f.position))[0].reason == "resumed"
    first.close()


def test_a_new_epoch_refuses_old_positions() -> None:
    f = feed()
    c = change("alice")
    f.publish(c)
    old = f.position
    f._new_epoch()  # what reconnecting does
    assert drain(f.open("alice", after=old))[0].reason == "resume_unavailable"
    stream = f.open("alice")
    drain(stream)
    assert f._resync_all("reconnected") == 2
    resync = stream.get_nowait()
    assert isinstance(resync, Resync) and resync.reason == "reconnected" and resync.id == f.position


def test_limits() -> None:
    f = feed(max_streams=3, max_streams_per_user=2)
    a1 = f.open("alice")
    f.open("alice")
    with pytest.raises(TooManyStreams, match="live streams open") as refused:
        f.open("alice")
    assert refused.value.status == 429 and refused.value.code == "too_many_streams"
    f.open("bob")
    with pytest.raises(TooManyStreams, match="This server"):
        f.open("carol")
    a1.close()
    a1.close()  # idempotent
    f.open("carol")
    assert f.open_streams == 3


def test_shutdown_ends_every_stream_after_what_it_has_queued() -> None:
    f = feed()
    stream = f.open("alice")
    c = change("alice")
    f.publish(c)
    assert f.end_streams() == 1
    items = drain(stream)
    assert isinstance(items[0], Ready) and items[1] is c and items[2] == End("shutdown")
    with pytest.raises(LiveUnavailable):
        f.open("alice")
    assert f.open_streams == 0


def test_disabled_feed_refuses_streams() -> None:
    f = ChangeFeed(None, disabled_reason="off here")
    with pytest.raises(LiveUnavailable, match="off here") as refused:
        f.open("alice")
    assert refused.value.status == 503


def test_get_waits_and_times_out() -> None:
    async def run() -> tuple[Any, Any, Any]:
        f = feed()
        stream = f.open("alice")
        ready = await stream.get(0.1)
        nothing = await stream.get(0.05)
        c = change("alice")
        asyncio.get_running_loop().call_later(0.05, f.publish, c)
        later = await stream.get(5)
        return ready, nothing, later is c

    ready, nothing, delivered = asyncio.run(run())
    assert isinstance(ready, Ready) and nothing is None and delivered


def test_parse_change() -> None:
    payload: dict[str, Any] = {
        "id": 7,
        "user_id": "alice",
        "kind": "updated",
        "at": "2026-11-29T12:00:00.5+01:00",
        "task_id": 3,
        "task": {
            "id": 3,
            "title": "t",
            "description": None,
            "completed": False,
            "priority": "high",
            "due_date": None,
            "created_at": "2026-11-29T11:00:00+01:00",
            "updated_at": "2026-11-29T12:00:00.5+01:00",
        },
    }
    parsed = parse_change(json.dumps(payload))
    assert (parsed.id, parsed.user_id, parsed.kind, parsed.task_id) == ("7", "alice", "updated", 3)
    assert parsed.at == datetime(2026, 11, 29, 11, 0, 0, 500000, tzinfo=UTC)
    assert parsed.task is not None
    assert parsed.task[:6] == (3, "alice", "t", None, False, "high")
    assert parsed.task[7] == datetime(2026, 11, 29, 10, tzinfo=UTC)
    # A task this side cannot read is announced without it: the client refetches.
    unreadable = parse_change(json.dumps({**payload, "task": {**payload["task"], "due_date": "infinity"}}))
    assert unreadable.task is None
    no_task = parse_change(json.dumps({k: v for k, v in payload.items() if k != "task"}))
    assert no_task.task is None
    for bad in ("not json", json.dumps({**payload, "kind": "exploded"}), json.dumps({"id": 1})):
        with pytest.raises((ValueError, KeyError, TypeError)):
            parse_change(bad)


def test_an_announcement_older_than_one_already_published_for_its_task_is_dropped() -> None:
    # Announced after commit (db/announce.py), two processes' changes of one task can
    # arrive in the opposite order to their commits; a task's event ids rise in commit
    # order, so the older one is a stale state of the task and is not delivered.
    f = feed(replay_events=3)
    stream = f.open("alice")
    drain(stream)
    newer = Change("20", "alice", "completed", datetime.now(UTC), 7, None)
    older = Change("19", "alice", "updated", datetime.now(UTC), 7, None)
    other_task = Change("18", "alice", "created", datetime.now(UTC), 8, None)
    for c in (newer, older, other_task):
        f.publish(c)
    assert drain(stream) == [newer, other_task]
    # Once the task's newest change has left the replay window, it is forgotten too.
    for i in range(3):
        f.publish(Change(str(30 + i), "bob", "created", datetime.now(UTC), 100 + i, None))
    assert f._newest == {100: 30, 101: 31, 102: 32}


def _announcement(event_id: int, user: str, task_id: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "user_id": user,
        "kind": "created",
        "at": "2026-11-29T12:00:00+00:00",
        "task_id": task_id,
    }


def test_a_packed_notification_is_published_in_order_missed_and_bad_entries_included() -> None:
    """One notification carrying a batch (db/announce.py pack): each change published in
    array order; MISSED inside it resyncs at its place; a malformed entry is skipped,
    not the rest; text that is not JSON is ignored whole."""
    f = feed()
    stream = f.open("alice")
    drain(stream)
    first, second, third = (
        _announcement(41, "alice", 1),
        _announcement(42, "alice", 2),
        _announcement(43, "alice", 3),
    )
    packed = json.dumps([first, {"id": "x"}, second, json.loads(MISSED), third])
    f._on_notify(None, 0, "task_changes", packed)
    items = drain(stream)
    assert [type(i).__name__ for i in items] == ["Change", "Change", "Resync", "Change"]
    assert [i.id for i in items if isinstance(i, Change)] == ["41", "42", "43"]
    assert isinstance(items[2], Resync) and items[2].reason == "missed"
    f._on_notify(None, 0, "task_changes", json.dumps(_announcement(44, "alice", 4)))  # one, alone
    f._on_notify(None, 0, "task_changes", "[not json")
    assert [i.id for i in drain(stream)] == ["44"]


def test_pack_fills_notifications_up_to_the_limit_in_order() -> None:
    # Non-ASCII text: the limit is in bytes, not characters.
    payloads = [json.dumps(_announcement(i, "ü" * (i % 50), i), ensure_ascii=False) for i in range(400)]
    notifications = pack(payloads)
    assert 1 < len(notifications) < 400 / 10
    assert all(len(n.encode()) < NOTIFY_PAYLOAD_LIMIT for n in notifications)
    unpacked = [unpack(n) for n in notifications]
    assert [a for batch in unpacked for a in batch] == [json.loads(p) for p in payloads]
    # Each notification but the last is full: the next payload (and its comma) would not fit.
    for notification, following in zip(notifications, unpacked[1:], strict=False):
        next_payload = json.dumps(following[0], ensure_ascii=False, separators=(", ", ": "))
        assert len(notification.encode()) + 1 + len(next_payload.encode()) >= NOTIFY_PAYLOAD_LIMIT


def test_pack_sends_a_payload_too_large_to_wrap_alone_as_it_is() -> None:
    big = "x" * (NOTIFY_PAYLOAD_LIMIT - 2)  # fits alone (< limit), not inside [ ]
    assert pack(["1", big, "2", "3"]) == ["[1]", big, "[2,3]"]
    assert pack([]) == []
    assert unpack(MISSED) == [json.loads(MISSED)]
