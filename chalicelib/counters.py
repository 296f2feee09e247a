"""Counters the database keeps honest: the send limits and the guess caps, over sliding windows.

A counter is a flow item per fixed window (models.WindowCounter: `sends` holds the count,
`stamps` each event's time with a random tag) whose key names what it counts and its window.
`take` is one UpdateItem, ADD 1 on condition the count is under what is left of the limit,
so two requests at once cannot both take the last unit; `give` is ADD -1 (never below zero)
and removes the event's stamp.

A limit holds over a sliding window (`Sliding`): at time t it counts the events after
t - window, which are all of the current fixed window's and those of the previous one whose
stamps are after t - window. The previous window is closed (only give-backs change it), so
one BatchGetItem before the takes (`read`) tells each take how much room is left, and the
condition on the current window's item decides. Exact, where the usual two-window estimate
(previous count x the share of it still inside) would allow one more at the top of the
window: the whole allowance spent at 12:59:59.9 weighs 9.9997 at 13:00:00.1, under a limit
of 10. Fixed windows allowed twice the limit across a boundary (spend it at :59, again at
:00).

One race is left: a take whose time was read just before the top of the window and whose
write lands after another request read that window as its previous one is missed by that
request alone (at most the takes in flight at that instant).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib import clock
from chalicelib.models import WindowCounter, expiry_bucket
from chalicelib.store import condition_failed


def window_of(now: float, seconds: int) -> int:
    return int(now // seconds)


def stamp(now: float) -> str:
    """An event's time (ms) and a random tag: unique within a counter, so a give-back
    removes exactly its own event."""
    return f"{int(now * 1000)}-{secrets.token_hex(4)}"


def _stamp_time(value: str) -> float:
    ms, _, _ = value.partition("-")
    return int(ms) / 1000 if ms.isdigit() else 0.0


@dataclass(frozen=True)
class Sliding:
    """One counter at one instant: `name` (what it counts), over `seconds`, at `now`."""

    name: str
    seconds: int
    now: float

    @property
    def window(self) -> int:
        return window_of(self.now, self.seconds)

    @property
    def current_id(self) -> str:
        return f"{self.name}#{self.window}"

    @property
    def previous_id(self) -> str:
        return f"{self.name}#{self.window - 1}"

    @property
    def expires_at(self) -> int:
        # Read as the previous window until the next one ends.
        return (self.window + 2) * self.seconds

    def earlier(self, found: dict[str, WindowCounter]) -> int:
        """The previous window's events still inside the sliding window."""
        return events_after(found.get(self.previous_id), self.now - self.seconds)

    def take(
        self, limit: int, found: dict[str, WindowCounter], *, stamp: str, subject: str | None = None
    ) -> int | None:
        """Count one event if fewer than `limit` are inside the sliding window: the count
        with it, or None (nothing counted). `found`: what `read` returned."""
        return take(
            self.current_id,
            limit,
            earlier=self.earlier(found),
            expires_at=self.expires_at,
            subject=subject,
            stamp=stamp,
        )


def read(counters: Iterable[Sliding], also: Sequence[str] = ()) -> dict[str, WindowCounter]:
    """The previous windows of `counters`, and the items `also` names, by id: one
    BatchGetItem (consistent), whatever was found."""
    ids = list(dict.fromkeys([c.previous_id for c in counters] + list(also)))
    return {item.flow_id: item for item in WindowCounter.batch_get(ids, consistent_read=True)}


def events_after(item: WindowCounter | None, start: float) -> int:
    """How many of `item`'s events happened after `start`. An item written before events
    were stamped counts whole (it can only err towards refusing)."""
    if item is None:
        return 0
    if not item.stamps:
        return max(int(item.sends or 0), 0)
    return sum(1 for value in item.stamps if _stamp_time(value) > start)


def take(
    counter_id: str,
    limit: int,
    *,
    expires_at: int,
    subject: str | None = None,
    earlier: int = 0,
    stamp: str | None = None,
) -> int | None:
    """Count one; the new count (with `earlier`, events counted elsewhere), or None when
    `earlier` and this item's count together are already at `limit`."""
    room = limit - earlier
    actions: list[Action] = [
        WindowCounter.sends.add(1),
        WindowCounter.kind.set(WindowCounter),
        WindowCounter.created_at.set(WindowCounter.created_at | clock.epoch_seconds()),
        WindowCounter.expires_at.set(expires_at),
        WindowCounter.expiry_bucket.set(expiry_bucket(expires_at)),
    ]
    if stamp is not None:
        actions.append(WindowCounter.stamps.add({stamp}))
    if subject is not None:
        actions.append(WindowCounter.subject.set(subject))
    # No room: a condition no item meets (not even a missing one), so the request and its
    # cost are those of any refusal.
    condition = WindowCounter.sends < room
    if room > 0:
        condition = WindowCounter.sends.does_not_exist() | condition
    counter = WindowCounter(counter_id)
    try:
        # The database decides the limit: two requests at once cannot both take the last one.
        counter.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        return None
    return earlier + int(counter.sends)


def give(counter_id: str, stamp: str | None = None) -> None:
    """Give one back (ADD -1, never below zero), and its stamp."""
    actions: list[Action] = [WindowCounter.sends.add(-1)]
    if stamp is not None:
        actions.append(WindowCounter.stamps.delete({stamp}))
    try:
        WindowCounter(counter_id).update(actions=actions, condition=WindowCounter.sends > 0)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def mark(counter_id: str, until: int) -> None:
    """Set a mark that holds until `until` (epoch seconds), whatever it held before.
    One UpdateItem."""
    WindowCounter(counter_id).update(
        actions=[
            WindowCounter.sends.set(1),
            WindowCounter.kind.set(WindowCounter),
            WindowCounter.created_at.set(WindowCounter.created_at | clock.epoch_seconds()),
            WindowCounter.expires_at.set(until),
            WindowCounter.expiry_bucket.set(expiry_bucket(until)),
        ]
    )


def is_live(item: WindowCounter | None, now: float) -> bool:
    """A mark (or count) that is there and has not expired."""
    return item is not None and not item.is_expired(now) and int(item.sends or 0) > 0
