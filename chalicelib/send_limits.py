"""How many one-time codes may be sent: per identity, per (identity, address), per address.

Sends are counted over a sliding hour (chalicelib.counters): at any moment, the sends of
the 60 minutes before count, so no hour of the clock, and no 60 minutes across one, holds
more than the limit (fixed clock hours gave twice the limit to sends at :59 and :00).

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

from dataclasses import dataclass
from typing import NoReturn

from chalicelib import clock, counters, guess_limits
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
    # Recovery codes to this address are paused (chalicelib.guess_limits): read here, for
    # every send, so a known and an unknown address cost the same requests.
    recovery_paused: bool = False
    stamp: str | None = None  # this send's, in each counter (counters.stamp)


def _counter(kind: str, key: str, now: float) -> counters.Sliding:
    return counters.Sliding(f"sendcount#{kind}-{keyed_hash(key)}", SEND_WINDOW_SECONDS, now)


def reserve_send(subject: str, target_normalized: str) -> SendReservation:
    """Count one send for the identity, the (identity, address) pair and the address, or
    raise SendLimitReached having counted none.

    One BatchGetItem (the counters' previous hour, and whether recovery to this address is
    paused) and three UpdateItems (and one give-back per counter already taken when a later
    one refuses).
    """
    settings = get_settings()
    now = clock.now()
    identity = _counter("subject", subject, now)
    pair = _counter("pair", f"{subject}\n{target_normalized}", now)
    address = _counter("address", target_normalized, now)
    marks = guess_limits.address_pause_marks(target_normalized, now)
    found = counters.read([identity, pair, address], also=marks)
    stamp = counters.stamp(now)
    reservation = SendReservation(
        identity_counter=identity.current_id,
        pair_counter=pair.current_id,
        address_counter=address.current_id,
        recovery_paused=guess_limits.any_live(found, marks, now),
        stamp=stamp,
    )
    steps = [
        ("identity", identity, settings.code_sends_per_hour, subject),
        ("identity_address", pair, settings.code_sends_per_identity_address_per_hour, None),
        ("address", address, settings.code_sends_per_address_per_hour, None),
    ]
    taken: list[str] = []
    for which, counter, limit, counter_subject in steps:
        if counter.take(limit, found, stamp=stamp, subject=counter_subject) is None:
            for earlier in taken:
                counters.give(earlier, stamp)
            _limited(which, subject)
        taken.append(counter.current_id)
    return reservation


def give_back(reservation: SendReservation, *, identity: bool = True, address: bool = True) -> None:
    """Return counted sends (ADD -1, never below zero). `address` returns the address's
    and the (identity, address) pair's; `identity` the identity's."""
    stamp = reservation.stamp
    if identity:
        counters.give(reservation.identity_counter, stamp)
    if address:
        counters.give(reservation.pair_counter, stamp)
        counters.give(reservation.address_counter, stamp)


def _limited(which: str, subject: str) -> NoReturn:
    # Logged and counted once, at the edge, from the error's context.
    raise SendLimitReached(f"send limit reached for this {which}", limit=which, sub=subject)
