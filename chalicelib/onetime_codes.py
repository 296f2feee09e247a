"""One-time codes: issuing and checking the 6-digit codes we mail.

Not a mailer (chalicelib.mail sends), not a rate limiter (chalicelib.send_limits), and not
a workflow (chalicelib.recovery and chalicelib.email_change decide what a code proves;
chalicelib.code_delivery joins a code, its send allowance and its mail). The rules:

- A code is 6 digits from a fresh random pyotp HOTP secret per challenge; the secret is
  discarded at once, and the code itself is never stored or logged. The challenge keeps
  HMAC-SHA256(server key, salt | challenge id | code) with a random per-challenge salt, so a
  copy of the table does not give codes away (6 digits are one million guesses offline).
- A challenge is bound to its purpose, the Login.gov `sub`, the registry account, the
  target address and the browser session. Its key is derived from (purpose, session), so a
  code is only ever looked for in the challenge of the session and purpose presenting it; a
  new send in the same session and purpose replaces the old challenge (and its code).
- Every guess is counted before it is compared: one conditional ADD that also requires the
  challenge to be live, bound to this identity and session, and under CODE_MAX_ATTEMPTS.
  Parallel guesses cannot exceed the limit, and a dead challenge stays dead for the right
  code too. Each guess also takes a slot under the day's caps on wrong codes per identity
  and, for recovery, per registry account (chalicelib.guess_limits); a right code gives
  them back. While an account's recovery is paused no code verifies, and a guess is
  answered as a wrong one. A code that matches is single-use: the caller deletes the
  challenge on condition it still exists (alone, or inside the transaction that applies
  the change).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import pyotp
from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError

from chalicelib import clock, guess_limits
from chalicelib.config import get_settings
from chalicelib.digests import ONE_TIME_CODES, derived_key
from chalicelib.errors import (
    CodeError,
    CodeExpired,
    CodeMalformed,
    NoPendingCode,
    RecoveryPaused,
    TooManyAttempts,
    WrongCode,
)
from chalicelib.logs import keyed_hash, log_event
from chalicelib.models import Challenge, Flow, expiry_bucket
from chalicelib.store import condition_failed

if TYPE_CHECKING:
    from pynamodb.expressions.condition import Condition

    from chalicelib import store

CODE_DIGITS = 6
MAX_CODE_INPUT_LENGTH = 32


class Purpose(Enum):
    RECOVERY = "recovery"  # prove control of a registry email to link it
    EMAIL_CHANGE = "email_change"  # prove control of a new registry email


@dataclass(frozen=True)
class Binding:
    """Who may use a challenge: this purpose, this Login.gov identity, this browser session."""

    purpose: Purpose
    subject: str
    session_hash: str

    @property
    def challenge_id(self) -> str:
        digest = hashlib.sha256(f"{self.purpose.value}:{self.session_hash}".encode()).hexdigest()
        return f"challenge#{digest}"


# --- codes ------------------------------------------------------------------------------------


def _code_digest(salt: str, challenge_id: str, code: str) -> str:
    # A key of its own, derived from the stage's root secret (SSM in AWS).
    message = f"{salt}|{challenge_id}|{code}".encode()
    return hmac.new(derived_key(ONE_TIME_CODES), message, hashlib.sha256).hexdigest()


def _new_code() -> str:
    return pyotp.HOTP(pyotp.random_base32(), digits=CODE_DIGITS).at(0)


# Separators people type or paste inside a code: spaces (NFKC folds no-break spaces to
# them) and hyphens/dashes.
_SEPARATORS = frozenset(" \t\r\n-\u2010\u2011\u2012\u2013\u2014\u2212")


def _clean_code(submitted: str | None) -> str:
    """What a person typed, without separators; full-width digits folded to ASCII (NFKC)."""
    text = unicodedata.normalize("NFKC", (submitted or "")[:MAX_CODE_INPUT_LENGTH])
    return "".join(ch for ch in text if ch not in _SEPARATORS)


def _well_formed(code: str) -> bool:
    return len(code) == CODE_DIGITS and all("0" <= ch <= "9" for ch in code)


def create_challenge(
    binding: Binding,
    *,
    nr_number: str | None,
    target_email: str,
    target_normalized: str,
    details: dict | None = None,
    decoy: bool = False,
) -> str | None:
    """Store a live challenge for `binding` (replacing any earlier one); return its code.

    A decoy (decoy=True) has the same shape and lifetime but a code hash no code can
    produce and no account: it never verifies, and its code is None, so nothing is mailed.
    One PutItem.
    """
    settings = get_settings()
    now = clock.epoch_seconds()
    expires = now + settings.challenge_ttl
    salt = secrets.token_hex(16)
    # A decoy makes and digests a code too, only to cost what a real one costs (its
    # timing must not tell the two apart), then stores a random hash that no code matches.
    made = _new_code()
    code_hash = _code_digest(salt, binding.challenge_id, made)
    code = None if decoy else made
    if decoy:
        code_hash = secrets.token_hex(32)
    Challenge(
        binding.challenge_id,
        subject=binding.subject,
        purpose=binding.purpose.value,
        session_hash=binding.session_hash,
        nr_number=None if decoy else nr_number,
        target_email=target_email,
        target_email_normalized=target_normalized,
        code_hash=code_hash,
        code_salt=salt,
        attempts=0,
        details=details or None,
        created_at=now,
        expires_at=expires,
        expiry_bucket=expiry_bucket(expires),
    ).save()
    log_event(
        "code_issued",
        purpose=binding.purpose.value,
        subject=keyed_hash(binding.subject),
        target=keyed_hash(target_normalized),
    )
    return code


def verify(binding: Binding, submitted: str | None) -> Challenge:
    """Count one try and compare; the live, matching challenge, or a typed CodeError.

    One UpdateItem on the way in (plus one GetItem only to explain a refusal). Text that
    cannot be a code (a letter, a digit too many) is a typo, not a guess: it is refused
    before the try is counted.
    """
    settings = get_settings()
    now = clock.epoch_seconds()
    code = _clean_code(submitted)
    if not _well_formed(code):
        raise _malformed(binding, now)
    challenge = Challenge(binding.challenge_id)
    try:
        # The try is counted before the comparison, atomically with every check that makes
        # the challenge usable: parallel guesses cannot exceed the limit (brute force).
        challenge.update(
            actions=[Challenge.attempts.add(1)],
            condition=(
                Flow.flow_id.exists()
                & (Flow.kind == Challenge)
                & (Flow.expires_at > now)
                & (Challenge.attempts < settings.code_max_attempts)
                & (Challenge.purpose == binding.purpose.value)
                & (Flow.subject == binding.subject)
                & (Challenge.session_hash == binding.session_hash)
            ),
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        raise _why_refused(binding, now) from None
    # The day's caps on wrong codes (guessing at scale), also before the comparison. A
    # recovery guess counts against the challenge's account, or a decoy's stand-in for one.
    recovery = (
        guess_limits.RecoveryGuess(challenge.nr_number, challenge.target_email_normalized)
        if binding.purpose is Purpose.RECOVERY
        else None
    )
    slots = guess_limits.take_guess(
        binding.subject, purpose=binding.purpose.value, recovery=recovery
    )
    salt = challenge.code_salt or ""
    matches = hmac.compare_digest(
        _code_digest(salt, binding.challenge_id, code), challenge.code_hash
    )
    if matches and not slots.paused:
        guess_limits.right_guess(slots)
        return challenge
    pause = guess_limits.wrong_guess(slots)
    # Logged and counted once, at the edge (code_wrong, recovery_paused,
    # code_attempts_exhausted). Paused or not, the person sees the same wrong-code page: a
    # pause must not tell that the address is a registry address (chalicelib.guess_limits).
    remaining = settings.code_max_attempts - challenge.attempts
    subject = keyed_hash(binding.subject)
    refusal: CodeError
    if remaining <= 0:
        refusal = TooManyAttempts(
            "that was the last try", purpose=binding.purpose.value, subject=subject
        )
    elif slots.paused and challenge.nr_number:
        refusal = RecoveryPaused(
            "recovery paused for this account today",
            remaining=remaining,
            purpose=binding.purpose.value,
            target_email=challenge.target_email,
            nr_number=challenge.nr_number,
            subject=subject,
        )
    else:
        refusal = WrongCode(
            "code does not match",
            remaining=remaining,
            purpose=binding.purpose.value,
            target_email=challenge.target_email,
            subject=subject,
        )
    refusal.pause = pause  # the workflow tells of it (a rule sends no mail)
    raise refusal


def _malformed(binding: Binding, now: int) -> Exception:
    """Not a code at all: the code page again (for the address of the live code), or why
    there is no live code. Nothing is counted: a typo costs no try."""
    live = pending(binding)
    if live is None:
        return _why_refused(binding, now)
    return CodeMalformed(
        "not 6 digits", purpose=binding.purpose.value, target_email=live.target_email
    )


def _why_refused(binding: Binding, now: int) -> Exception:
    """The conditional update failed: read once to say why (the answer changes nothing)."""
    purpose = binding.purpose.value
    try:
        found = Challenge.get(binding.challenge_id, consistent_read=True)
    except DoesNotExist:
        return NoPendingCode("no challenge for this session and purpose", purpose=purpose)
    if (
        not isinstance(found, Challenge)
        or found.purpose != purpose
        or found.subject != binding.subject
        or found.session_hash != binding.session_hash
    ):
        return NoPendingCode(
            "challenge bound to another purpose, identity or session", purpose=purpose
        )
    if found.is_expired(now):
        return CodeExpired("challenge expired", purpose=purpose)
    if found.attempts >= get_settings().code_max_attempts:
        return TooManyAttempts("no tries left", purpose=purpose)
    return NoPendingCode("challenge replaced while this try was made", purpose=purpose)


def _same_challenge(challenge: Challenge) -> Condition:
    # The very challenge that was verified: not one a new send put under the same key since.
    return Flow.flow_id.exists() & (Challenge.code_hash == challenge.code_hash)


def consume(challenge: Challenge) -> None:
    """Delete a verified challenge; exactly one of two racing uses gets past this."""
    try:
        challenge.delete(condition=_same_challenge(challenge))
    except DeleteError as exc:
        if not condition_failed(exc):
            raise
        raise NoPendingCode("code already used", purpose=challenge.purpose) from None


def consume_in(tx: store.Transaction, challenge: Challenge) -> None:
    """Add the single-use delete of `challenge` to a store.Transaction, named "challenge"."""
    tx.delete("challenge", challenge, condition=_same_challenge(challenge))


def pending(binding: Binding) -> Challenge | None:
    """The live (unexpired, tries left) challenge for this binding, if any. One GetItem."""
    try:
        found = Challenge.get(binding.challenge_id, consistent_read=True)
    except DoesNotExist:
        return None
    if (
        not isinstance(found, Challenge)
        or found.is_expired(clock.epoch_seconds())
        or found.attempts >= get_settings().code_max_attempts
        or found.subject != binding.subject
        or found.session_hash != binding.session_hash
    ):
        return None
    return found


def discard(binding: Binding) -> bool:
    """Delete the challenge for this binding (cancel, or a send that failed)."""
    try:
        Challenge(binding.challenge_id).delete(
            condition=Flow.flow_id.exists()
            & (Flow.subject == binding.subject)
            & (Challenge.session_hash == binding.session_hash)
        )
    except DeleteError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True
