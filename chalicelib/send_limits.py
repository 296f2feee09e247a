"""How many one-time codes may be sent: per identity, per (identity, address), per address.

Sends are counted in fixed hourly windows (chalicelib.counters):

- per Login.gov identity (CODE_SENDS_PER_HOUR): what one person may ask for in all;
- per identity and target address (CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR): what one
  person may send to one address;
- per target address, all identities together (CODE_SENDS_PER_ADDRESS_PER_HOUR): a larger
  cap on the mail one mailbox receives. Larger than the per-(identity, address) limit, so
  one identity cannot use up an address's allowance and lock its owner out of codes.

Each ADD is conditional, so the database decides the limits even for two sends at once. A
send that fails is given back, so SES trouble does not burn a person's allowance. How many
wrong codes may be guessed is chalicelib.guess_limits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NoReturn

from chalicelib import counters, guess_limits
from chalicelib.config import get_settings
from chalicelib.errors import SendLimitReached
from chalicelib.logs import keyed_hash

SEND_WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class SendReservation:
    """Sends counted for one code; give_back() returns them if the mail did not go out."""

    identity_counter: str
    pair_counter: str
    address_counter: str
    # Recovery codes to this address are paused today (chalicelib.guess_limits): read here,
    # for every send, so a known and an unknown address cost the same requests.
    recovery_paused: bool = False


def _counter_id(kind: str, key: str, window: int) -> str:
    return f"sendcount#{kind}-{keyed_hash(key)}#{window}"


def reserve_send(subject: str, target_normalized: str) -> SendReservation:
    """Count one send for the identity, the (identity, address) pair and the address, or
    raise SendLimitReached having counted none.

    One GetItem (is recovery to this address paused?) and three UpdateItems (and one
    give-back per counter already taken when a later one refuses).
    """
    settings = get_settings()
    paused = guess_limits.address_paused(target_normalized)
    window = counters.window_of(int(time.time()), SEND_WINDOW_SECONDS)
    expires = (window + 1) * SEND_WINDOW_SECONDS
    reservation = SendReservation(
        identity_counter=_counter_id("subject", subject, window),
        pair_counter=_counter_id("pair", f"{subject}\n{target_normalized}", window),
        address_counter=_counter_id("address", target_normalized, window),
        recovery_paused=paused,
    )
    steps = [
        ("identity", reservation.identity_counter, settings.code_sends_per_hour, subject),
        (
            "identity_address",
            reservation.pair_counter,
            settings.code_sends_per_identity_address_per_hour,
            None,
        ),
        ("address", reservation.address_counter, settings.code_sends_per_address_per_hour, None),
    ]
    taken: list[str] = []
    for which, counter_id, limit, counter_subject in steps:
        if counters.take(counter_id, limit, expires_at=expires, subject=counter_subject) is None:
            for earlier in taken:
                counters.give(earlier)
            _limited(which, subject)
        taken.append(counter_id)
    return reservation


def give_back(reservation: SendReservation, *, identity: bool = True, address: bool = True) -> None:
    """Return counted sends (ADD -1, never below zero). `address` returns the address's
    and the (identity, address) pair's; `identity` the identity's."""
    if identity:
        counters.give(reservation.identity_counter)
    if address:
        counters.give(reservation.pair_counter)
        counters.give(reservation.address_counter)


def _limited(which: str, subject: str) -> NoReturn:
    # Logged and counted once, at the edge, from the error's context.
    raise SendLimitReached(
        f"send limit reached for this {which}", limit=which, subject=keyed_hash(subject)
    )
