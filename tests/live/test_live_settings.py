"""The live-update settings: defaults, and bad values reported at start-up."""

from __future__ import annotations

import pytest

from api.settings import SettingsError, load_settings


def test_defaults() -> None:
    s = load_settings({}, dotenv=False)
    assert (s.live_updates, s.live_max_streams_per_user, s.live_max_streams) == (True, 10, 1000)
    assert (s.live_queue_size, s.live_replay_events, s.live_keepalive_seconds) == (256, 10_000, 15.0)
    assert s.live_announce == "after_commit"


def test_values() -> None:
    s = load_settings(
        {
            "LIVE_UPDATES": "false",
            "LIVE_MAX_STREAMS_PER_USER": "3",
            "LIVE_MAX_STREAMS": "50",
            "LIVE_QUEUE_SIZE": "16",
            "LIVE_REPLAY_EVENTS": "100",
            "LIVE_KEEPALIVE_SECONDS": "2.5",
            "LIVE_ANNOUNCE": "In_Transaction",
        },
        dotenv=False,
    )
    assert (s.live_updates, s.live_max_streams_per_user, s.live_max_streams) == (False, 3, 50)
    assert (s.live_queue_size, s.live_replay_events, s.live_keepalive_seconds) == (16, 100, 2.5)
    assert s.live_announce == "in_transaction"


def test_bad_values_are_reported() -> None:
    env = {
        "LIVE_UPDATES": "sometimes",
        "LIVE_MAX_STREAMS": "0",
        "LIVE_QUEUE_SIZE": "lots",
        "LIVE_ANNOUNCE": "later",
    }
    with pytest.raises(SettingsError) as refused:
        load_settings(env, dotenv=False)
    problems = "\n".join(refused.value.problems)
    assert "LIVE_UPDATES must be true or false" in problems
    assert "LIVE_MAX_STREAMS must be between 1 and 1000000" in problems
    assert "LIVE_QUEUE_SIZE must be an integer" in problems
    assert any(p.startswith("LIVE_ANNOUNCE") and "'later'" in p for p in refused.value.problems), problems
