"""Recovering a link with a registry email: the FAQ's "your National Registry account primary
or secondary email address can be used to help you recover your account".

A person signed in with Login.gov whose emails matched no registry account types their
registry primary or secondary email; we mail a one-time code there; the right code links
the two exactly as automatic linking does (chalicelib.linking.link_account: same
transaction, same no-sharing rules, same audit event, method "recovery").

A shared or once-shared address (chalicelib.claims) gets no code: it proves nobody, so the
person is sent to support. Otherwise the reply never tells whether an address belongs to a
registry account. An unknown address takes the same path through the database (claim
read, account read, the send counters, a challenge written) with a decoy challenge that can
never verify, and queues a decoy message the outbox worker drops: the same requests in the
same order, and no mail. A wrong guess on a decoy counts against a stand-in account of its
own (chalicelib.guess_limits), so guessing costs the same requests too. Inactive or
already-linked accounts are mailed a code too: the refusal comes after the code, to
someone who proved control of the address.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from pynamodb.exceptions import PynamoDBException

from chalicelib import (
    claims,
    code_delivery,
    linking,
    notices,
    onetime_codes,
    outbox,
    send_limits,
    sessions,
    signin,
    store,
)
from chalicelib.config import get_settings
from chalicelib.emails import InvalidEmail, normalize_email
from chalicelib.errors import NoPendingCode, RecoveryEmailInvalid, SharedAddress
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Session
from chalicelib.onetime_codes import Binding, Purpose

# Not a registry number (those are 10 digits): the unknown-address read finds nothing.
_DECOY_ACCOUNT_KEY = "decoy"
MAX_EMAIL_INPUT_LENGTH = 320


def _binding(session: Session) -> Binding:
    return Binding(Purpose.RECOVERY, session.subject, sessions.session_hash(session))


def _registry_address(claim: claims.AddressClaim | None,
                      normalized: str) -> tuple[str, str] | None:
    """(registry number, the address as the registry holds it) for an address that proves
    one account. Two reads (claim, account) whether or not the address is known, so both
    paths do the same work.
    """
    account = store.get_account((claim.proves if claim else None) or _DECOY_ACCOUNT_KEY)
    if account is None:
        return None
    # Mail the address on the record, not the text typed: normalization may fold two
    # mailboxes into one key, and the code must reach the registry's own address.
    if account.primary_email_normalized == normalized:
        return account.nr_number, account.primary_email
    if account.secondary_email_normalized == normalized:
        return account.nr_number, account.secondary_email
    return None


def send_recovery_code(session: Session, typed_email: str | None) -> None:
    """Mail a code to a registry address, or pretend to; raises only for what the typer
    may know: an unusable address, the send limit, or SES failing."""
    text = (typed_email or "").strip()[:MAX_EMAIL_INPUT_LENGTH]
    try:
        normalized = normalize_email(text)
    except InvalidEmail:
        raise RecoveryEmailInvalid("not an email address", email=text) from None
    binding = _binding(session)
    # The mail names the Login.gov account asking, real or decoy alike (the same message).
    login_gov_email = sessions.session_login_gov_email(session)
    claim = claims.read(normalized)
    found = _registry_address(claim, normalized)
    reservation = send_limits.reserve_send(session.subject, normalized)
    if claim is not None and claim.proves is None:
        # Never a code to a shared mailbox: whoever reads it is not proven to be anyone.
        # The identity's send stays spent, as for any probe; the address's comes back.
        send_limits.give_back(reservation, identity=False)
        raise SharedAddress("recovery code asked at a shared address",
                            subject=keyed_hash(session.subject))
    if found is None:
        onetime_codes.create_challenge(binding, nr_number=None, target_email=text,
                                       target_normalized=normalized, decoy=True)
        # The same requests, and time, as a real code's mail (code_delivery.send_code).
        outbox.enqueue_decoy("recovery_code", text, code="0" * onetime_codes.CODE_DIGITS,
                             minutes=get_settings().challenge_ttl // 60,
                             login_gov_email=login_gov_email)
        log_event("recovery_code_requested", subject=keyed_hash(session.subject),
                  target=keyed_hash(normalized), known=False)
        count("RecoveryCodeRequested", known="false")
        return
    nr_number, address = found
    # target_email is what was typed, as for a decoy: pages show it, and showing the
    # registry's spelling would tell that the address is known.
    code_delivery.send_code(binding, reservation, to=address, template="recovery_code",
                            nr_number=nr_number, target_email=text,
                            target_normalized=normalized, login_gov_email=login_gov_email)
    log_event("recovery_code_requested", subject=keyed_hash(session.subject),
              target=keyed_hash(normalized), known=True, nr_number=nr_number)
    count("RecoveryCodeRequested", known="true")


def pending_target(session: Session) -> str | None:
    """The address the person typed for the live recovery code (for the code page)."""
    challenge = onetime_codes.pending(_binding(session))
    return challenge.target_email if challenge else None


@dataclass(frozen=True)
class RecoveredLink:
    nr_number: str
    session_token: str       # a new session holding the account; the old one is ended


def complete_recovery(session: Session, session_token: str, code: str | None) -> RecoveredLink:
    """Check the code and link; raises a CodeError or a LinkRefused error otherwise."""
    binding = _binding(session)
    challenge = onetime_codes.verify(binding, code)
    # Single use before anything else: a replayed code fails even if linking is refused.
    onetime_codes.consume(challenge)
    if not challenge.nr_number:  # unreachable: a decoy's hash matches no code
        raise NoPendingCode("decoy challenge", purpose=Purpose.RECOVERY.value)
    # The address the code went to must still prove that account when the link commits
    # (a registry correction may have moved it since the code was sent).
    result = linking.link_account(session.subject, challenge.nr_number,
                                  method=linking.LinkMethod.RECOVERY,
                                  matched=challenge.target_email_normalized,
                                  login_gov_email=sessions.session_login_gov_email(session))
    if result.outcome is linking.LinkOutcome.LINKED:
        notices.send_link_notice(result.nr_number)
    # A new session for the linked identity (and no reuse of the pre-link one).
    token = signin.start_linked_session(session.subject, result.nr_number, notice="linked")
    try:
        sessions.end_session(session_token)
    except PynamoDBException:
        # The old, unlinked session: it holds no account, and expires on its own.
        log_event("old_session_not_ended", logging.WARNING, nr_number=result.nr_number)
    count("SignIn", outcome="recovered")
    return RecoveredLink(result.nr_number, token)
