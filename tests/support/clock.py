"""The `clock` fixture: a chalicelib.clock.FakeClock installed for one test.

Everything reads it while the test runs: the app, the local Login.gov (its codes, tokens'
iat and exp), moto's idempotency window, the import's retry backoff. A test moves it
(`clock.advance(seconds)`, `clock.set(datetime)`) instead of sleeping, and a wait the code
makes (`clock.sleep`) advances it at once and is recorded in `clock.slept`.

It starts at a fixed instant, so no test depends on the wall clock: a Tuesday, mid-month,
mid-morning UTC, away from the top of an hour and of a day. A test about a boundary sets
the clock there itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib import clock as clock_module

START = datetime(2026, 6, 9, 9, 30, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    fake = clock_module.FakeClock(START)
    with clock_module.using(fake):
        yield fake
