"""Send limits for one-time codes (chalicelib.send_limits): per identity, per address."""
from __future__ import annotations

import threading
import time

import pytest

from chalicelib import send_limits
from chalicelib.errors import SendLimitReached
from chalicelib.models import Flow, SendCounter


def test_sends_are_limited_per_identity(app_client):
    for i in range(3):
        send_limits.reserve_send("sub-a", f"a{i}@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-a", "a9@example.com")
    send_limits.reserve_send("sub-b", "a9@example.com")  # another identity is not limited


def test_sends_are_limited_per_address_and_a_refusal_costs_the_identity_nothing(app_client):
    for i in range(3):
        send_limits.reserve_send(f"sub-{i}", "victim@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-x", "victim@example.com")
    for i in range(3):  # sub-x still has its whole allowance
        send_limits.reserve_send("sub-x", f"other{i}@example.com")


def test_a_given_back_send_can_be_used_again(app_client):
    reservations = [send_limits.reserve_send("sub-a", "a@example.com") for _ in range(3)]
    send_limits.give_back(reservations[-1])
    send_limits.reserve_send("sub-a", "a@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-a", "a@example.com")


def test_the_limits_are_settings(app_client, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("CODE_SENDS_PER_HOUR", "1")
    config.reset_settings()
    send_limits.reserve_send("sub-a", "a@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-a", "b@example.com")
    monkeypatch.delenv("CODE_SENDS_PER_HOUR")
    config.reset_settings()


def test_parallel_sends_cannot_exceed_the_limit(app_client):
    barrier = threading.Barrier(12)
    taken: list[bool] = []

    def send(i):
        barrier.wait()
        try:
            send_limits.reserve_send("sub-a", f"a{i}@example.com")
            taken.append(True)
        except SendLimitReached:
            taken.append(False)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert taken.count(True) == 3
    counters = [f for f in Flow.scan() if isinstance(f, SendCounter) and f.subject == "sub-a"]
    assert [c.sends for c in counters] == [3]


def test_counters_are_flow_items_cleanup_can_find(app_client):
    send_limits.reserve_send("sub-a", "a@example.com")
    counters = [f for f in Flow.scan() if isinstance(f, SendCounter)]
    assert len(counters) == 2  # one for the identity, one for the address
    for counter in counters:
        assert counter.expires_at > time.time() and counter.expires_at % 3600 == 0
        assert counter.expiry_bucket and counter.created_at and counter.sends == 1
        assert "a@example.com" not in counter.flow_id and "sub-a" not in counter.flow_id
    assert sorted(str(c.subject) for c in counters) == ["None", "sub-a"]
