"""Recovering a link with a registry email: the FAQ's "your National Registry account primary
or secondary email address can be used to help you recover your account".

A person signed in with Login.gov whose emails matched no registry account types their
registry primary or secondary email; we mail a one-time code there; the right code links
the two exactly as automatic linking does (chalicelib.linking.link_account: same
transaction, same no-sharing rules, same audit event, method "recovery"). The code is
spent inside that transaction: a link that fails (throttled) leaves it usable, a second
use of it is refused by the database, and a link refused for a reason spends it.

The reply never tells whether an address belongs to a registry account, nor whether it is
shared. Every address takes the same path through the database (claim read, account read,
the send counters, a challenge written) and queues one message: a code for an address that
proves one account; for an unknown address a decoy challenge that can never verify and a
decoy message the outbox worker drops; for a shared or once-shared address
(chalicelib.claims), which proves nobody, a decoy challenge too and a mail to that mailbox
saying why no code can link it and to call the support desk. A wrong guess on a decoy
counts against a stand-in account of its own (chalicelib.guess_limits), so guessing costs
the same requests too. Inactive or already-linked accounts are mailed a code too: the
refusal comes after the code, to someone who proved control of the address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import PynamoDBException

from chalicelib import (
    claims,
    code_delivery,
    guess_limits,
    linking,
    notices,
    onetime_codes,
    send_limits,
    sessions,
    signin,
    store,
)
from chalicelib.emails import typed_address
from chalicelib.errors import CodeError, LinkRefused, NoPendingCode, RecoveryEmailInvalid
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Session
from chalicelib.onetime_codes import Binding, Purpose

if TYPE_CHECKING:
    from chalicelib.models import Challenge

# Not a registry number (those are 10 digits): the unknown-address read finds nothing.
_DECOY_ACCOUNT_KEY = "decoy"


def _binding(session: Session) -> Binding:
    return Binding(Purpose.RECOVERY, session.subject, sessions.session_hash(session))


def _registry_address(claim: claims.AddressClaim | None, normalized: str) -> tuple[str, str] | None:
    """(registry number, the address as the registry holds it) for an address on a registry
    account: the account it proves or, shared or once-shared, one of its holders (they hold
    the same mailbox). Two reads (claim, account) whether or not the address is known, so
    every path does the same work.
    """
    holder = (claim.proves or min(claim.holders, default=None)) if claim else None
    account = store.get_account(holder or _DECOY_ACCOUNT_KEY)
    if account is None:
        return None
    # Mail the address on the record, not the text typed: normalization may fold two
    # mailboxes into one key, and the mail must reach the registry's own address.
    if account.primary_email_normalized == normalized:
        return account.nr_number, account.primary_email
    if account.secondary_email_normalized == normalized:
        return account.nr_number, account.secondary_email
    return None


def send_recovery_code(session: Session, typed_email: str | None) -> None:
    """Mail a code to a registry address, or pretend to; raises only for what the typer
    may know: an unusable address, the send limit, or the outbox failing."""
    text, normalized = typed_address(
        typed_email, lambda text: RecoveryEmailInvalid("not an email address", email=text)
    )
    binding = _binding(session)
    # Every mail names the Login.gov account asking (a decoy's too: the same message).
    login_gov_email = sessions.session_login_gov_email(session)
    claim = claims.read(normalized)
    found = _registry_address(claim, normalized)
    reservation = send_limits.reserve_send(session.subject, normalized)
    # target_email is what was typed, whatever the path: pages show it, and showing the
    # registry's spelling would tell that the address is known.
    if found is None:
        # The same requests, and time, as a real code's mail (code_delivery.send_code).
        code_delivery.send_without_code(
            binding,
            reservation,
            to=text,
            template="recovery_code",
            target_email=text,
            target_normalized=normalized,
            login_gov_email=login_gov_email,
        )
        _requested(session, normalized, known=False)
        return
    nr_number, address = found
    if claim is not None and claim.proves is None:
        # Never a code to a shared mailbox: whoever reads it is not proven to be anyone.
        # Why is told to that mailbox, never on the page: the page must not tell a stranger
        # that the address is in the registry (it answers as for any address).
        code_delivery.send_without_code(
            binding,
            reservation,
            to=address,
            template="recovery_code",
            target_email=text,
            target_normalized=normalized,
            notice=notices.SHARED_ADDRESS_NOTICE,
            login_gov_email=login_gov_email,
        )
        _requested(session, normalized, known=True, shared=True, nr_number=nr_number)
        return
    code_delivery.send_code(
        binding,
        reservation,
        to=address,
        template="recovery_code",
        nr_number=nr_number,
        target_email=text,
        target_normalized=normalized,
        login_gov_email=login_gov_email,
    )
    _requested(session, normalized, known=True, nr_number=nr_number)


def _requested(
    session: Session, normalized: str, *, known: bool, shared: bool = False, **fields: Any
) -> None:
    log_event(
        "recovery_code_requested",
        subject=keyed_hash(session.subject),
        target=keyed_hash(normalized),
        known=known,
        shared=shared,
        **fields,
    )
    count("RecoveryCodeRequested", known="shared" if shared else str(known).lower())


def pending_target(session: Session) -> str | None:
    """The address the person typed for the live recovery code (for the code page)."""
    challenge = onetime_codes.pending(_binding(session))
    return challenge.target_email if challenge else None


@dataclass(frozen=True)
class RecoveredLink:
    nr_number: str
    session_token: str  # a new session holding the account; the old one is ended


def complete_recovery(session: Session, session_token: str, code: str | None) -> RecoveredLink:
    """Check the code and link; raises a CodeError or a LinkRefused error otherwise."""
    binding = _binding(session)
    try:
        challenge = onetime_codes.verify(binding, code)
    except CodeError as refused:
        if isinstance(refused.pause, guess_limits.PauseStarted):
            # Best-effort: never fails the request.
            notices.send_recovery_paused(refused.pause.account, refused.pause.decoy_to)
        raise
    if not challenge.nr_number:  # unreachable: a decoy's hash matches no code
        raise NoPendingCode("decoy challenge", purpose=Purpose.RECOVERY.value)
    try:
        # The address the code went to must still prove that account when the link commits
        # (a registry correction may have moved it since the code was sent). The code is
        # spent in the link's own transaction: one use gets through (the database decides),
        # and a transaction that fails (throttled) leaves the code usable.
        result = linking.link_account(
            session.subject,
            challenge.nr_number,
            method=linking.LinkMethod.RECOVERY,
            matched=challenge.target_email_normalized,
            login_gov_email=sessions.session_login_gov_email(session),
            add_items=lambda tx: onetime_codes.consume_in(tx, challenge),
        )
    except store.TransactionRefused:
        # Only our own item is raised this way: another use of this code came first.
        raise NoPendingCode("code already used", purpose=Purpose.RECOVERY.value) from None
    except LinkRefused:
        # Spent all the same: a refused link must not leave a code to replay once the
        # reason is gone (a bar lifted, the account re-activated) by whoever holds it.
        _spend(challenge)
        raise
    if result.outcome is linking.LinkOutcome.RETURNING:
        # Already linked to this identity, so no link was written: spent on its own, and
        # a second use refused all the same.
        onetime_codes.consume(challenge)
    else:
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


def _spend(challenge: Challenge) -> None:
    try:
        onetime_codes.consume(challenge)
    except NoPendingCode:
        pass  # a racing use spent it first: spent either way
