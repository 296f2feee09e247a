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
  account's recovery pauses for the rest of the day: no code for it verifies, and its
  addresses are marked paused, so a recovery send to them becomes a decoy
  (chalicelib.code_delivery) and the pause never tells a stranger that the address is a
  registry address. The mark is read by every send (send_limits.reserve_send), known
  address or not, so both take the same DynamoDB requests. The account's addresses are
  told by mail, the event is logged (`recovery_guess_cap_reached`) and counted (metric
  RecoveryGuessCapReached, which an alarm watches).

Threat: an attacker who can pause an account using it to learn whether an address is a
registry address. So a decoy's guesses are counted like a real one's, against a decoy
account of its own (keyed by the address typed): the same requests in the same order, and
when that count fills the cap, the same pause work (the account read, a mark, a queued
message). And a guess while an account is paused is spent and answered exactly as a wrong
code (RecoveryPaused is a WrongCode): the same page as a decoy's, even for the right code;
the owner learns why from the pause mail.

A guess takes its slots before the code is compared (conditional ADD), so parallel
guesses cannot pass a cap; a right code gives its slots back, so only wrong ones count.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from chalicelib import counters, notices, outbox, store
from chalicelib.config import get_settings
from chalicelib.errors import GuessLimitReached, MailNotQueued
from chalicelib.logs import count, keyed_hash, log_event

GUESS_WINDOW_SECONDS = 24 * 3600
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
class GuessSlots:
    """The slots one guess took; settle them with right_guess or wrong_guess."""

    identity_counter: str
    account_counter: str | None
    recovery: RecoveryGuess | None = None
    account_count: int = 0  # the account's count with this guess in it
    paused: bool = False  # the account's cap was already reached: no code verifies


# Not a registry number (those are 10 digits): a decoy's stand-in account.
_DECOY_ACCOUNT_PREFIX = "decoy-"


def _window() -> int:
    return counters.window_of(int(time.time()), GUESS_WINDOW_SECONDS)


def _identity_counter(subject: str, window: int) -> str:
    return f"sendcount#guess-subject-{keyed_hash(subject)}#{window}"


def _account_counter(account_key: str, window: int) -> str:
    return f"sendcount#guess-account-{account_key}#{window}"


def take_guess(subject: str, *, purpose: str, recovery: RecoveryGuess | None) -> GuessSlots:
    """Count one guess for the identity and, for recovery, the account (or a decoy's
    stand-in); raise GuessLimitReached having counted none when the identity's day is over.

    A recovery guess while the account is paused is counted for the identity like any wrong
    code and returns slots marked `paused`: the caller answers it as a wrong code.
    """
    settings = get_settings()
    window = _window()
    expires = (window + 1) * GUESS_WINDOW_SECONDS
    identity = _identity_counter(subject, window)
    if (
        counters.take(
            identity, settings.code_failed_guesses_per_identity_per_day, expires_at=expires
        )
        is None
    ):
        raise GuessLimitReached(
            "too many wrong codes today for this identity",
            purpose=purpose,
            subject=keyed_hash(subject),
        )
    if recovery is None:
        return GuessSlots(identity, None)
    account = _account_counter(recovery.account_key, window)
    taken = counters.take(
        account, settings.recovery_failed_guesses_per_account_per_day, expires_at=expires
    )
    if taken is None:
        return GuessSlots(identity, None, recovery, paused=True)
    return GuessSlots(identity, account, recovery, taken)


def right_guess(slots: GuessSlots) -> None:
    """A right code is no failed guess: give its slots back."""
    counters.give(slots.identity_counter)
    if slots.account_counter:
        counters.give(slots.account_counter)


def wrong_guess(slots: GuessSlots) -> None:
    """The slots stay spent. The wrong guess that filled an account's cap (exactly one:
    the counter is atomic) pauses its recovery; a decoy's does the same work."""
    cap = get_settings().recovery_failed_guesses_per_account_per_day
    if slots.recovery is None or not slots.account_counter or slots.account_count < cap:
        return
    if slots.recovery.nr_number:
        _paused(slots.recovery.nr_number, cap)
    else:
        _decoy_paused(slots.recovery, cap)


def address_paused(target_normalized: str) -> bool:
    """True while recovery codes to this address are paused (its account's cap reached
    today). One GetItem, whether or not the address is a registry address."""
    return counters.current(_paused_address_marker(target_normalized, _window())) > 0


def _paused_address_marker(normalized: str, window: int) -> str:
    return f"sendcount#recovery-paused-{keyed_hash(normalized)}#{window}"


def _mark_paused(key: str, window: int) -> None:
    counters.take(
        _paused_address_marker(key, window), 1, expires_at=(window + 1) * GUESS_WINDOW_SECONDS
    )


def _paused(nr_number: str, cap: int) -> None:
    log_event("recovery_guess_cap_reached", logging.WARNING, nr_number=nr_number, cap=cap)
    count(CAP_REACHED_METRIC)
    window = _window()
    account = store.get_account(nr_number)
    for address in account.normalized_emails() if account else []:
        _mark_paused(address, window)
    if account is not None:
        notices.send_recovery_paused_notice(account)  # best-effort: never fails the request


def _decoy_paused(recovery: RecoveryGuess, cap: int) -> None:
    """The requests _paused makes for a one-address account: an account read (that finds
    nothing), a mark no send reads, and a message the outbox worker drops."""
    log_event(
        "recovery_decoy_guess_cap_reached", target=keyed_hash(recovery.address_normalized), cap=cap
    )
    window = _window()
    store.get_account(recovery.account_key)
    _mark_paused(f"{_DECOY_ACCOUNT_PREFIX}{recovery.address_normalized}", window)
    try:
        outbox.enqueue_decoy(
            notices.RECOVERY_PAUSED_NOTICE,
            recovery.address_normalized,
            account={"nr_number": "0" * 10, "first_name": ""},
            cap=cap,
        )
    except MailNotQueued:
        pass  # as for a real pause notice: nothing to tell anyone, nothing to undo
