"""The one clock: every read of the time and every wait in the service goes through here.

Production reads the system clock. Tests install a `FakeClock` (the `clock` fixture) and
move it: nothing sleeps for real, and no test depends on the wall clock (a test that
straddled the top of an hour once failed CI). The local Login.gov stand-in reads this
clock too, so a moved clock moves both sides of a sign-in alike.

- `now()`: seconds since the epoch, as a float (time.time()).
- `epoch_seconds()`: the same, whole seconds (the unit of every expiry stored in DynamoDB).
- `utc_now()`: an aware datetime in UTC (audit keys, export days, ISO times).
- `monotonic()`: for measuring intervals and cache ages (never goes back).
- `sleep(seconds)`: every wait (retry backoffs); a fake clock advances instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to (or when something sleeps on it).

    Thread-safe: the app, the local Login.gov's server thread and the outbox worker may
    read it at once.
    """

    def __init__(self, start: float | datetime) -> None:
        self._lock = threading.Lock()
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._monotonic = 1_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(seconds, 0.0))

    def utc_now(self) -> datetime:
        """Its time as an aware UTC datetime (what `utc_now()` returns while it is installed)."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._monotonic += seconds

    def set(self, when: float | datetime) -> None:
        """Jump to `when` (the monotonic clock moves forward by as much, never back)."""
        target = when.timestamp() if isinstance(when, datetime) else float(when)
        with self._lock:
            self._monotonic += max(target - self._now, 0.0)
            self._now = target


_clock: Clock = SystemClock()


def now() -> float:
    return _clock.time()


def epoch_seconds() -> int:
    return int(_clock.time())


def utc_now() -> datetime:
    return datetime.fromtimestamp(_clock.time(), UTC)


def monotonic() -> float:
    return _clock.monotonic()


def sleep(seconds: float) -> None:
    _clock.sleep(seconds)


def current() -> Clock:
    return _clock


def install(clock: Clock) -> Clock:
    """Use `clock` from now on; returns the one it replaces."""
    global _clock
    previous, _clock = _clock, clock
    return previous


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    previous = install(clock)
    try:
        yield clock
    finally:
        install(previous)
