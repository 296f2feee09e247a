"""Scheduled clean-up: reads only expired flows, bounded runs, refreshed sessions survive."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib import cleanup
from chalicelib.cleanup import LOOKBACK_HOURS, cleanup_expired_flows, expiry_buckets
from chalicelib.models import Flow, Session, expiry_bucket
from tests.support.accounts import flow_exists, make_flow

NOW = float(int(time.time()) // 3600 * 3600 + 1800)  # half past an hour: buckets are clear
HOUR = 3600


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(
        cleanup, "log_event", lambda event, level=None, **fields: lines.append((event, fields))
    )
    return lines


def test_buckets_cover_the_lookback_window_oldest_first():
    buckets = expiry_buckets(NOW)
    assert len(buckets) == LOOKBACK_HOURS + 1
    assert buckets[0] == expiry_bucket(int(NOW) - LOOKBACK_HOURS * HOUR)
    assert buckets[-1] == expiry_bucket(int(NOW))
    assert buckets == sorted(buckets)


def test_only_expired_items_are_read_and_deleted(aws, logged):
    expired = [make_flow(f"old{i}", NOW - i * 2000 - 1) for i in range(10)]  # up to ~5 h ago
    expired.append(make_flow("just-now", NOW - 60))  # this hour, already expired
    alive = [
        make_flow("later-this-hour", NOW + 600),  # same bucket, not expired
        make_flow("tomorrow", NOW + 24 * HOUR),
    ]
    summary = cleanup_expired_flows(now=NOW, batch_size=100)
    assert summary.items_read == len(expired) == summary.deleted == 11
    assert summary.skipped == 0 and summary.more_remaining is False
    assert not any(flow_exists(f.flow_id) for f in expired)
    assert all(flow_exists(f.flow_id) for f in alive)
    assert logged == [
        ("cleanup_finished", {"read": 11, "deleted": 11, "skipped": 0, "more": False})
    ]


def test_cleanup_queries_the_index_and_never_scans(aws, calls):
    make_flow("a", NOW - 10)
    cleanup_expired_flows(now=NOW, batch_size=10)
    names = {c.operation for c in calls.calls}
    assert "Scan" not in names
    queries = calls.params("Query")
    assert queries and all(q["IndexName"] == "by_expiry" for q in queries)
    assert all("<=" in q["KeyConditionExpression"] for q in queries)
    deletes = calls.params("DeleteItem")
    assert len(deletes) == 1 and "<=" in deletes[0]["ConditionExpression"]


def test_a_bounded_run_stops_and_the_next_run_continues(aws, logged):
    for i in range(12):
        make_flow(f"x{i}", NOW - (i + 1) * 1000)
    keep = make_flow("future", NOW + HOUR)
    first = cleanup_expired_flows(now=NOW, batch_size=5)
    # Oldest first: the first run took the five oldest (x7..x11).
    assert [flow_exists(f"sendcount#x{i}") for i in range(12)] == [True] * 7 + [False] * 5
    runs = [first] + [cleanup_expired_flows(now=NOW, batch_size=5) for _ in range(2)]
    assert [(r.items_read, r.deleted, r.more_remaining) for r in runs] == [
        (5, 5, True),
        (5, 5, True),
        (2, 2, False),
    ]
    assert [line[1]["more"] for line in logged] == [True, True, False]
    assert flow_exists(keep.flow_id)
    assert cleanup_expired_flows(now=NOW, batch_size=5).items_read == 0


def test_items_older_than_the_window_are_left_to_ttl(aws):
    ancient = make_flow("ancient", NOW - (LOOKBACK_HOURS + 5) * HOUR)
    summary = cleanup_expired_flows(now=NOW, batch_size=10)
    assert summary.items_read == 0 and flow_exists(ancient.flow_id)


def test_a_session_refreshed_after_the_read_survives(aws, calls):
    from chalicelib import sessions

    token, session = sessions.create_session("sub-refresh", "1000000001")
    # Make it look expired in the index, as an idle session does just before a request.
    session.update(
        actions=[
            Session.expires_at.set(int(NOW) - 30),
            Session.expiry_bucket.set(expiry_bucket(int(NOW) - 30)),
        ]
    )
    other = make_flow("plain", NOW - 30)

    def refresh():
        # The user clicks between our read and our delete: sessions.py moves both.
        session.update(
            actions=[
                Session.expires_at.set(int(NOW) + 1800),
                Session.expiry_bucket.set(expiry_bucket(int(NOW) + 1800)),
            ]
        )

    calls.interleave("DeleteItem", refresh, key_prefix="session#")
    summary = cleanup_expired_flows(now=NOW, batch_size=10)
    assert (summary.items_read, summary.deleted, summary.skipped) == (2, 1, 1)
    assert flow_exists(session.flow_id) and not flow_exists(other.flow_id)


def test_two_runs_at_once_delete_each_item_once_without_errors(aws):
    for i in range(40):
        make_flow(f"c{i}", NOW - 1 - i * 300)
    start = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            start.wait()
            results.append(cleanup_expired_flows(now=NOW, batch_size=100))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(r.deleted for r in results) == 40
    assert sum(r.skipped for r in results) == sum(r.items_read for r in results) - 40
    assert cleanup_expired_flows(now=NOW, batch_size=100).items_read == 0
    assert Flow.count() == 0


def test_unexpected_errors_are_logged_once_and_raised(aws, logged, monkeypatch):
    make_flow("boom", NOW - 10)

    def failing(*args, **kwargs):
        raise RuntimeError("throttled")

    monkeypatch.setattr(cleanup, "_delete_if_expired", failing)
    with pytest.raises(RuntimeError):
        cleanup_expired_flows(now=NOW, batch_size=10)
    assert logged == [
        (
            "cleanup_finished",
            {"read": 1, "deleted": 0, "skipped": 0, "more": True, "error": "RuntimeError"},
        )
    ]


def test_default_batch_size_comes_from_settings(aws, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("CLEANUP_BATCH_SIZE", "3")
    config.reset_settings()
    for i in range(5):
        make_flow(f"d{i}", NOW - 10 - i)
    summary = cleanup_expired_flows(now=NOW)
    assert (summary.deleted, summary.more_remaining) == (3, True)


def test_batch_size_must_be_positive(aws):
    with pytest.raises(ValueError):
        cleanup_expired_flows(now=NOW, batch_size=0)
