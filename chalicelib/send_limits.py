"""How many one-time codes may be sent: per Login.gov identity and per target address.

Sends are counted in fixed hourly windows, per identity (CODE_SENDS_PER_HOUR) and per
target address (CODE_SENDS_PER_ADDRESS_PER_HOUR): ADD 1 on condition the counter is under
the limit, so the database decides the limit even for two sends at once. A send that
fails is given back (ADD -1), so SES trouble does not burn a person's allowance.
Counters are flow items (`sendcount#...`): they expire with their window and cleanup
removes them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NoReturn

from pynamodb.exceptions import UpdateError

from chalicelib.config import get_settings
from chalicelib.errors import SendLimitReached
from chalicelib.logs import keyed_hash
from chalicelib.models import SendCounter, expiry_bucket
from chalicelib.store import condition_failed

SEND_WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class SendReservation:
    """Sends counted for one code; give_back() returns them if the mail did not go out."""

    identity_counter: str
    address_counter: str


def _counter_id(kind: str, key: str, window: int) -> str:
    return f"sendcount#{kind}-{keyed_hash(key)}#{window}"


def reserve_send(subject: str, target_normalized: str) -> SendReservation:
    """Count one send for the identity and one for the address, or raise SendLimitReached.

    Two UpdateItems (a third, to give the identity's back, when the address is at its limit).
    """
    settings = get_settings()
    now = int(time.time())
    window = now // SEND_WINDOW_SECONDS
    identity = _counter_id("subject", subject, window)
    address = _counter_id("address", target_normalized, window)
    if not _take(identity, settings.code_sends_per_hour, now, window, subject=subject):
        _limited("identity", subject)
    if not _take(address, settings.code_sends_per_address_per_hour, now, window):
        _give(identity)
        _limited("address", subject)
    return SendReservation(identity, address)


def give_back(reservation: SendReservation, *, identity: bool = True,
              address: bool = True) -> None:
    """Return counted sends (ADD -1, never below zero)."""
    if identity:
        _give(reservation.identity_counter)
    if address:
        _give(reservation.address_counter)


def _limited(which: str, subject: str) -> NoReturn:
    # Logged and counted once, at the edge, from the error's context.
    raise SendLimitReached(f"send limit reached for this {which}", limit=which,
                           subject=keyed_hash(subject))


def _take(counter_id: str, limit: int, now: int, window: int, *,
          subject: str | None = None) -> bool:
    expires = (window + 1) * SEND_WINDOW_SECONDS
    actions = [
        SendCounter.sends.add(1),
        SendCounter.kind.set(SendCounter),
        SendCounter.created_at.set(SendCounter.created_at | now),
        SendCounter.expires_at.set(expires),
        SendCounter.expiry_bucket.set(expiry_bucket(expires)),
    ]
    if subject is not None:
        actions.append(SendCounter.subject.set(subject))
    try:
        # The database decides the limit: two sends at once cannot both take the last one.
        SendCounter(counter_id).update(
            actions=actions,
            condition=SendCounter.sends.does_not_exist() | (SendCounter.sends < limit))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True


def _give(counter_id: str) -> None:
    try:
        SendCounter(counter_id).update(actions=[SendCounter.sends.add(-1)],
                                       condition=SendCounter.sends > 0)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
