"""How many wrong one-time codes may be guessed: per identity, and per registry account.

Every send gives CODE_MAX_ATTEMPTS fresh tries, so per-code limits alone let many
identities times many sends add up to hundreds of thousands of guesses a day across the
registry. Two cumulative caps, per UTC day (chalicelib.counters):

- per Login.gov identity, both purposes (CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY): bounds
  what any number of sends gives one identity, so an attacker's guesses scale only with
  the Login.gov accounts they hold;
- per registry account, recovery only (RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY):
  bounds what any number of identities gets against one record. It is kept above the
  identity cap (3 times it by default; chalicelib.config refuses less): an identity's
  wrong codes against one account are at most its day's, so no single identity can pause
  someone's recovery, and a pause takes three. When it is reached the
  account's recovery pauses for the rest of the day: no code for it is checked, and its
  addresses are marked paused, so a recovery send to them becomes a decoy
  (chalicelib.code_delivery) and the pause never tells a stranger that the address is a
  registry address. The mark is read by every send (send_limits.reserve_send), known
  address or not, so both take the same DynamoDB requests. The account's addresses are
  told by mail, the event is logged (`recovery_guess_cap_reached`) and counted (metric
  RecoveryGuessCapReached, which an alarm watches).

A guess takes its slots before the code is compared (conditional ADD), so parallel
guesses cannot pass a cap; a right code gives its slots back, so only wrong ones count.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from chalicelib import counters, notices, store
from chalicelib.config import get_settings
from chalicelib.errors import GuessLimitReached, RecoveryPaused
from chalicelib.logs import count, keyed_hash, log_event

GUESS_WINDOW_SECONDS = 24 * 3600
CAP_REACHED_METRIC = "RecoveryGuessCapReached"


@dataclass(frozen=True)
class GuessSlots:
    """The slots one guess took; settle them with right_guess or wrong_guess."""

    identity_counter: str
    account_counter: str | None
    nr_number: str | None
    account_count: int = 0      # the account's count with this guess in it


def _window() -> int:
    return counters.window_of(int(time.time()), GUESS_WINDOW_SECONDS)


def _identity_counter(subject: str, window: int) -> str:
    return f"sendcount#guess-subject-{keyed_hash(subject)}#{window}"


def _account_counter(nr_number: str, window: int) -> str:
    # The registry number in clear: no personal data, and support can read why it paused.
    return f"sendcount#guess-account-{nr_number}#{window}"


def take_guess(subject: str, *, purpose: str, recovery_account: str | None) -> GuessSlots:
    """Count one guess for the identity and, for recovery, the registry account; or raise
    GuessLimitReached / RecoveryPaused having counted none."""
    settings = get_settings()
    window = _window()
    expires = (window + 1) * GUESS_WINDOW_SECONDS
    identity = _identity_counter(subject, window)
    if counters.take(identity, settings.code_failed_guesses_per_identity_per_day,
                     expires_at=expires) is None:
        raise GuessLimitReached("too many wrong codes today for this identity",
                                purpose=purpose, subject=keyed_hash(subject))
    account, taken = None, 0
    if recovery_account:
        account = _account_counter(recovery_account, window)
        taken = counters.take(account, settings.recovery_failed_guesses_per_account_per_day,
                              expires_at=expires)
        if taken is None:
            counters.give(identity)
            raise RecoveryPaused("recovery paused for this account today", purpose=purpose,
                                 nr_number=recovery_account, subject=keyed_hash(subject))
    return GuessSlots(identity, account, recovery_account, taken)


def right_guess(slots: GuessSlots) -> None:
    """A right code is no failed guess: give its slots back."""
    counters.give(slots.identity_counter)
    if slots.account_counter:
        counters.give(slots.account_counter)


def wrong_guess(slots: GuessSlots) -> None:
    """The slots stay spent. The wrong guess that filled an account's cap (exactly one:
    the counter is atomic) pauses its recovery."""
    cap = get_settings().recovery_failed_guesses_per_account_per_day
    if slots.account_counter and slots.account_count >= cap:
        _paused(slots.nr_number, cap)


def address_paused(target_normalized: str) -> bool:
    """True while recovery codes to this address are paused (its account's cap reached
    today). One GetItem, whether or not the address is a registry address."""
    return counters.current(_paused_address_marker(target_normalized, _window())) > 0


def _paused_address_marker(normalized: str, window: int) -> str:
    return f"sendcount#recovery-paused-{keyed_hash(normalized)}#{window}"


def _paused(nr_number: str, cap: int) -> None:
    log_event("recovery_guess_cap_reached", logging.WARNING, nr_number=nr_number, cap=cap)
    count(CAP_REACHED_METRIC)
    window = _window()
    account = store.get_account(nr_number)
    for address in account.normalized_emails() if account else []:
        counters.take(_paused_address_marker(address, window), 1,
                      expires_at=(window + 1) * GUESS_WINDOW_SECONDS)
    if account is not None:
        notices.send_recovery_paused_notice(account)  # best-effort: never fails the request
