"""How many wrong one-time codes may be guessed: per identity, and per registry account.

Every send gives CODE_MAX_ATTEMPTS fresh tries, so per-code limits alone let many
identities times many sends add up to hundreds of thousands of guesses a day across the
registry. Two cumulative caps over a sliding 24 hours (chalicelib.counters: a wrong code
counts for 24 hours after it was entered; fixed UTC days gave twice the cap to guesses just
before and just after midnight):

- per Login.gov identity, both purposes (CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY): bounds
  what any number of sends gives one identity, so an attacker's guesses scale only with
  the Login.gov accounts they hold;
- per registry account, recovery only (RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY):
  bounds what any number of identities gets against one record. It is kept above the
  identity cap (3 times it by default; chalicelib.config refuses less): an identity's
  wrong codes against one account are at most its 24 hours', so no single identity can
  pause someone's recovery, and a pause takes three. When it is reached the account's
  recovery pauses for 24 hours (PAUSE_SECONDS, from the wrong code that filled the cap; a
  UTC day's pause could last seconds): the account is marked, so no code for it verifies,
  and so are its addresses, so a recovery send to them becomes a decoy
  (chalicelib.code_delivery) and the pause never tells a stranger that the address is a
  registry address. Marks are read by every send (send_limits.reserve_send) and every
  recovery guess, known address or not, in the BatchGetItem the counters need anyway, so
  both take the same DynamoDB requests. The account's addresses are told by mail (a rule
  sends none: wrong_guess returns the PauseStarted, which the recovery workflow mails), the
  event is logged (`recovery_guess_cap_reached`) and counted (metric
  RecoveryGuessCapReached, which an alarm watches). No wrong code counts while paused, so
  when the pause ends the account's count is empty.

Threat: an attacker who can pause an account using it to learn whether an address is a
registry address. So a decoy's guesses are counted like a real one's, against a decoy
account of its own (keyed by the address typed): the same requests in the same order, and
when that count fills the cap, the same pause work (the account read, an address mark, an
account mark, a queued message). And a guess while an account is paused is spent and
answered exactly as a wrong code (RecoveryPaused is a WrongCode): the same page as a
decoy's, even for the right code; the owner learns why from the pause mail.

A guess takes its slots before the code is compared (conditional ADD), so parallel
guesses cannot pass a cap; a right code gives its slots back, so only wrong ones count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib import clock, counters, store
from chalicelib.config import get_settings
from chalicelib.errors import GuessLimitReached
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Account

GUESS_WINDOW_SECONDS = 24 * 3600
PAUSE_SECONDS = 24 * 3600
CAP_REACHED_METRIC = "RecoveryGuessCapReached"


@dataclass(frozen=True)
class RecoveryGuess:
    """What a recovery guess counts against: the challenge's account, or for a decoy (no
    account) the address typed, which stands in for one."""

    nr_number: str | None
    address_normalized: str

    @property
    def account_key(self) -> str:
        if self.nr_number:
            # The registry number in clear: no personal data, support can read why it paused.
            return self.nr_number
        return f"{_DECOY_ACCOUNT_PREFIX}{keyed_hash(self.address_normalized)}"


@dataclass(frozen=True)
class PauseStarted:
    """A wrong guess filled an account's cap and paused its recovery: the account's
    addresses are to be told (notices.send_recovery_paused). For a decoy's stand-in account,
    `account` is None and the same mail goes as a decoy to `decoy_to`, which the outbox
    worker drops."""

    account: Account | None
    decoy_to: str | None = None


@dataclass(frozen=True)
class GuessSlots:
    """The slots one guess took; settle them with right_guess or wrong_guess."""

    identity_counter: str
    account_counter: str | None
    recovery: RecoveryGuess | None = None
    account_count: int = 0  # the account's count with this guess in it
    paused: bool = False  # the account's recovery is paused: no code verifies
    stamp: str | None = None  # this guess's, in each counter (counters.stamp)


# Not a registry number (those are 10 digits): a decoy's stand-in account.
_DECOY_ACCOUNT_PREFIX = "decoy-"


def _day(now: float) -> int:
    return counters.window_of(now, GUESS_WINDOW_SECONDS)


def _identity_counter(subject: str, now: float) -> counters.Sliding:
    name = f"sendcount#guess-subject-{keyed_hash(subject)}"
    return counters.Sliding(name, GUESS_WINDOW_SECONDS, now)


def _account_counter(account_key: str, now: float) -> counters.Sliding:
    return counters.Sliding(f"sendcount#guess-account-{account_key}", GUESS_WINDOW_SECONDS, now)


def take_guess(subject: str, *, purpose: str, recovery: RecoveryGuess | None) -> GuessSlots:
    """Count one guess for the identity and, for recovery, the account (or a decoy's
    stand-in); raise GuessLimitReached having counted none when the identity's 24 hours
    are full.

    A recovery guess while the account is paused is counted for the identity like any wrong
    code and returns slots marked `paused`: the caller answers it as a wrong code. One
    BatchGetItem (the counters' previous day, the account's pause marks), then one UpdateItem
    per counter.
    """
    settings = get_settings()
    now = clock.now()
    identity = _identity_counter(subject, now)
    account = _account_counter(recovery.account_key, now) if recovery else None
    marks = _account_pause_marks(recovery.account_key, now) if recovery else []
    found = counters.read([identity, *([account] if account else [])], also=marks)
    stamp = counters.stamp(now)
    if identity.take(settings.code_failed_guesses_per_identity_per_day, found, stamp=stamp) is None:
        raise GuessLimitReached(
            "too many wrong codes in 24 hours for this identity",
            purpose=purpose,
            subject=keyed_hash(subject),
        )
    if recovery is None or account is None:
        return GuessSlots(identity.current_id, None, stamp=stamp)
    # Paused: no code verifies (guessing on). The take is made all the same, with no room,
    # so a paused account's guess costs the requests of any guess (no oracle).
    paused = any_live(found, marks, now)
    cap = 0 if paused else settings.recovery_failed_guesses_per_account_per_day
    taken = account.take(cap, found, stamp=stamp)
    if taken is None:
        return GuessSlots(identity.current_id, None, recovery, paused=True, stamp=stamp)
    return GuessSlots(identity.current_id, account.current_id, recovery, taken, stamp=stamp)


def right_guess(slots: GuessSlots) -> None:
    """A right code is no failed guess: give its slots back."""
    counters.give(slots.identity_counter, slots.stamp)
    if slots.account_counter:
        counters.give(slots.account_counter, slots.stamp)


def wrong_guess(slots: GuessSlots) -> PauseStarted | None:
    """The slots stay spent. The wrong guess that filled an account's cap (exactly one:
    the counter is atomic) pauses its recovery, and returns the pause for the workflow to
    tell; a decoy's does the same work."""
    cap = get_settings().recovery_failed_guesses_per_account_per_day
    if slots.recovery is None or not slots.account_counter or slots.account_count < cap:
        return None
    if slots.recovery.nr_number:
        return _paused(slots.recovery.nr_number, cap)
    return _decoy_paused(slots.recovery, cap)


# A pause is marked under the day it began and lasts PAUSE_SECONDS: it is found under
# today's key or yesterday's. (A mark of a UTC day, as written before, ends at midnight.)


def address_pause_marks(target_normalized: str, now: float) -> list[str]:
    """The items that say recovery codes to this address are paused."""
    day = _day(now)
    return [_address_mark(target_normalized, day), _address_mark(target_normalized, day - 1)]


def _account_pause_marks(account_key: str, now: float) -> list[str]:
    day = _day(now)
    return [_account_mark(account_key, day), _account_mark(account_key, day - 1)]


def any_live(found: dict, mark_ids: Sequence[str], now: float) -> bool:
    """Whether any of these marks, as `counters.read` found them, holds at `now`."""
    return any(counters.is_live(found.get(mark_id), now) for mark_id in mark_ids)


def _address_mark(normalized: str, day: int) -> str:
    return f"sendcount#recovery-paused-{keyed_hash(normalized)}#{day}"


def _account_mark(account_key: str, day: int) -> str:
    return f"sendcount#recovery-paused-account-{account_key}#{day}"


def _paused(nr_number: str, cap: int) -> PauseStarted | None:
    log_event("recovery_guess_cap_reached", logging.WARNING, nr_number=nr_number, cap=cap)
    count(CAP_REACHED_METRIC)
    now = clock.now()
    day, until = _day(now), int(now) + PAUSE_SECONDS
    account = store.get_account(nr_number)
    for address in account.normalized_emails() if account else []:
        counters.mark(_address_mark(address, day), until)
    counters.mark(_account_mark(nr_number, day), until)
    return PauseStarted(account) if account is not None else None


def _decoy_paused(recovery: RecoveryGuess, cap: int) -> PauseStarted:
    """The requests _paused makes for a one-address account: an account read (that finds
    nothing), a mark no send reads, the stand-in account's mark; and a pause whose mail is
    a message the outbox worker drops."""
    log_event(
        "recovery_decoy_guess_cap_reached", target=keyed_hash(recovery.address_normalized), cap=cap
    )
    now = clock.now()
    day, until = _day(now), int(now) + PAUSE_SECONDS
    store.get_account(recovery.account_key)
    counters.mark(
        _address_mark(f"{_DECOY_ACCOUNT_PREFIX}{recovery.address_normalized}", day), until
    )
    counters.mark(_account_mark(recovery.account_key, day), until)
    return PauseStarted(None, decoy_to=recovery.address_normalized)
