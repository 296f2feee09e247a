"""Windowed counters the database keeps honest: the send limits and the guess caps.

A counter is a flow item (models.SendCounter: `sends` holds the count) whose key names what
it counts and its window; it expires when the window ends, and cleanup removes it. `take`
is one UpdateItem, ADD 1 on condition the count is under the limit, so two requests at
once cannot both take the last unit; `give` is ADD -1, never below zero.
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import clock
from chalicelib.models import SendCounter, expiry_bucket
from chalicelib.store import condition_failed


def window_of(now: int, seconds: int) -> int:
    return now // seconds


def take(counter_id: str, limit: int, *, expires_at: int, subject: str | None = None) -> int | None:
    """Count one; the new count, or None when the counter is already at `limit`."""
    actions = [
        SendCounter.sends.add(1),
        SendCounter.kind.set(SendCounter),
        SendCounter.created_at.set(SendCounter.created_at | clock.epoch_seconds()),
        SendCounter.expires_at.set(expires_at),
        SendCounter.expiry_bucket.set(expiry_bucket(expires_at)),
    ]
    if subject is not None:
        actions.append(SendCounter.subject.set(subject))
    counter = SendCounter(counter_id)
    try:
        # The database decides the limit: two requests at once cannot both take the last one.
        counter.update(
            actions=actions,
            condition=SendCounter.sends.does_not_exist() | (SendCounter.sends < limit),
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        return None
    return int(counter.sends)


def give(counter_id: str) -> None:
    """Give one back (ADD -1), never below zero."""
    try:
        SendCounter(counter_id).update(
            actions=[SendCounter.sends.add(-1)], condition=SendCounter.sends > 0
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def current(counter_id: str) -> int:
    """The count now (0 for a counter that does not exist or has expired). One GetItem."""
    try:
        counter = SendCounter.get(counter_id, consistent_read=True)
    except DoesNotExist:
        return 0
    if not isinstance(counter, SendCounter) or counter.is_expired(clock.epoch_seconds()):
        return 0
    return int(counter.sends or 0)
