"""Changing a linked account's emails: the FAQ's "change it AFTER you have created your
account" for .gov/.mil/.edu primaries, and every other change of primary or secondary.

The changes: replace the primary, add or replace the secondary (both confirmed with a code
mailed to the new address), remove the secondary, swap primary and secondary (no new
address, so no code). The rules:

- The new address is normalized and must not be on another registry account; the refusal
  is the same whichever account holds it. Checking costs a send from the identity's
  hourly allowance, so the form is no fast way to test which addresses are registered.
- A .gov/.mil/.edu address gets the FAQ's advice before any code is sent.
- Confirmation is ONE TransactWrite: put the new `email#` claim (attribute_not_exists),
  delete the replaced claim (only if this account holds it), update the account (its
  version keeps optimistic locking), write the audit event, and delete the challenge (only
  if it still exists: single use). Two accounts racing for one address: one commits, the
  other's claim condition fails and it is told the address cannot be used. The old
  address stays claimed until that transaction commits.
- After the change, the address that was replaced (or the primary, when a secondary is
  added) gets a notice.
- Every change (primary, secondary, remove, swap) needs a Login.gov sign-in within
  EMAIL_CHANGE_RECENT_SIGNIN_SECONDS (past it, the person signs in again and comes back to
  the form). The secondary too: it links automatically and receives recovery codes, so a
  stolen session that planted its own mailbox there would link the record to the thief
  after any unlink (a Login.gov purge, support's lost-account).
- Changes without a code (remove, swap) are limited per account per hour
  (EMAIL_CHANGES_WITHOUT_CODE_PER_HOUR): each mails a notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from chalicelib import (
    accounts,
    claims,
    clock,
    code_delivery,
    counters,
    notices,
    onetime_codes,
    send_limits,
    sessions,
    store,
)
from chalicelib.audit import audit_event, record_committed
from chalicelib.config import get_settings
from chalicelib.emails import is_institutional, typed_address
from chalicelib.errors import (
    EmailAddressTaken,
    EmailChangeConflict,
    EmailChangeLimitReached,
    NewEmailInvalid,
    NoPendingCode,
    RecentSignInRequired,
)
from chalicelib.field_ownership import mark_changed_here
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Account, Session
from chalicelib.onetime_codes import Binding, Purpose

if TYPE_CHECKING:
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.expressions.condition import Condition

    from chalicelib.models import AuditEvent

_PURPOSE = Purpose.EMAIL_CHANGE.value


class Change(Enum):
    PRIMARY = "primary"  # replace the primary (code to the new address)
    SECONDARY = "secondary"  # add or replace the secondary (code)
    REMOVE_SECONDARY = "remove_secondary"  # no new address, no code
    SWAP = "swap"  # no new address, no code; moves no claims


CODED_CHANGES = (Change.PRIMARY, Change.SECONDARY)


class Requested(Enum):
    ADVICE = "advice"  # institutional address: show the FAQ's advice first
    CODE_SENT = "code_sent"
    CONFIRM = "confirm"  # remove or swap: ask "are you sure?" before acting


@dataclass(frozen=True)
class Applied:
    change: Change
    old_email: str | None
    new_email: str | None
    notified: str | None = None  # where the notice went (None: it could not be sent)


@dataclass(frozen=True)
class PendingChange:
    change: Change
    new_email: str
    expires_at: int


def _binding(session: Session) -> Binding:
    return Binding(Purpose.EMAIL_CHANGE, session.subject, sessions.session_hash(session))


def _fields(change: Change) -> tuple[UnicodeAttribute, UnicodeAttribute]:
    if change is Change.PRIMARY:
        return Account.primary_email, Account.primary_email_normalized
    return Account.secondary_email, Account.secondary_email_normalized


def _actor(session: Session) -> str:
    return f"subject:{keyed_hash(session.subject)}"


def parse_change(value: str | None) -> Change:
    try:
        return Change(value or "")
    except ValueError:
        raise NewEmailInvalid("unknown change", reason="unknown_change") from None


def submit(
    session: Session,
    account: Account,
    *,
    change: str | None,
    email: str | None,
    acknowledged: bool,
    confirmed: bool = False,
) -> Requested | Applied:
    """The email form's one entry point: apply a change that needs no code once confirmed
    (CONFIRM first), or start one that does (ADVICE first for .gov/.mil/.edu, then
    CODE_SENT)."""
    parsed = parse_change(change)
    require_recent_signin(session, parsed)  # before any page, advice or confirmation
    if parsed in (Change.REMOVE_SECONDARY, Change.SWAP):
        if not account.secondary_email_normalized:
            raise NewEmailInvalid("no secondary email", reason="no_secondary")
        if not confirmed:
            # One click must not move where we write: a second POST says "yes".
            return Requested.CONFIRM
        if parsed is Change.REMOVE_SECONDARY:
            return remove_secondary(session, account)
        return swap(session, account)
    return request_change(session, account, parsed, email, acknowledged=acknowledged)


def require_recent_signin(session: Session, change: Change) -> None:
    """Any email change needs a fresh Login.gov sign-in: a session left open on a shared
    computer, or stolen, must not redirect the account's mail, recovery codes or links."""
    age = clock.epoch_seconds() - int(session.created_at)
    if age > get_settings().email_change_recent_signin_seconds:
        log_event(
            "email_change_needs_recent_signin",
            subject=keyed_hash(session.subject),
            nr_number=session.nr_number,
            change=change.value,
            age=age,
        )
        raise RecentSignInRequired(
            "sign in again to change an email address",
            change=change.value,
            nr_number=session.nr_number,
        )


# --- request: check the address and mail a code ---------------------------------------------


def request_change(
    session: Session,
    account: Account,
    change: Change,
    typed_email: str | None,
    *,
    acknowledged: bool = False,
) -> Requested:
    """Start a primary or secondary change: advice first for .gov/.mil/.edu, then a code."""
    if change not in CODED_CHANGES:
        raise NewEmailInvalid("this change takes no new address", reason="unknown_change")
    text, normalized = typed_address(
        typed_email,
        lambda text: NewEmailInvalid(
            "not an email address", reason="invalid", email=text, change=change.value
        ),
    )
    if normalized in account.normalized_emails():
        raise NewEmailInvalid(
            "already on this account", reason="already_yours", email=text, change=change.value
        )
    if is_institutional(normalized) and not acknowledged:
        return Requested.ADVICE

    reservation = send_limits.reserve_send(session.subject, normalized)
    held = claims.read(normalized)
    if held is not None and not held.names(account.nr_number):
        # Any claim refuses, a shared address's too: an email change never takes an address
        # that is, or was, on another account.
        # The identity's send stays spent (a probe costs like a send); the address's comes
        # back, so probing cannot block that address's owner from getting codes.
        send_limits.give_back(reservation, identity=False)
        raise EmailAddressTaken(
            "address is on another registry account",
            subject=keyed_hash(session.subject),
            nr_number=account.nr_number,
        )

    binding = _binding(session)
    replaces = getattr(account, _fields(change)[1].attr_name) or ""
    code_delivery.send_code(
        binding,
        reservation,
        to=text,
        template="email_change_code",
        nr_number=account.nr_number,
        target_email=text,
        target_normalized=normalized,
        details={"change": change.value, "replaces": replaces},
        change=change.value,
    )
    log_event(
        "email_change_requested",
        subject=keyed_hash(session.subject),
        nr_number=account.nr_number,
        change=change.value,
        target=keyed_hash(normalized),
    )
    count("EmailChangeRequested", change=change.value)
    return Requested.CODE_SENT


def email_page_context(session: Session, account: Account) -> dict:
    """What the account page and the email page show: the account, and a change waiting
    for its code."""
    return {
        "signed_in": True,
        "csrf_token": session.csrf_token,
        "pending": pending_change(session),
        **accounts.account_page_context(account),
    }


def pending_change(session: Session) -> PendingChange | None:
    """The change waiting for its code in this session, if any. One GetItem."""
    challenge = onetime_codes.pending(_binding(session))
    if challenge is None or challenge.nr_number != session.nr_number:
        return None
    return PendingChange(
        Change(challenge.details.as_dict()["change"]),
        challenge.target_email,
        int(challenge.expires_at),
    )


def cancel(session: Session) -> bool:
    cancelled = onetime_codes.discard(_binding(session))
    if cancelled:
        log_event(
            "email_change_cancelled",
            subject=keyed_hash(session.subject),
            nr_number=session.nr_number,
        )
    return cancelled


# --- confirm: the code, then one transaction ---------------------------------------------------


def confirm_change(session: Session, account: Account, code: str | None) -> Applied:
    binding = _binding(session)
    challenge = onetime_codes.verify(binding, code)
    if challenge.nr_number != account.nr_number:
        onetime_codes.discard(binding)
        raise NoPendingCode("challenge is for another account", purpose=_PURPOSE)
    details = challenge.details.as_dict()
    change = Change(details["change"])
    replaces = details.get("replaces") or None
    email_attr, normalized_attr = _fields(change)
    old_email = getattr(account, email_attr.attr_name)
    if (getattr(account, normalized_attr.attr_name) or None) != replaces:
        # Changed since the code was sent (a swap, another change): do not guess.
        onetime_codes.discard(binding)
        raise EmailChangeConflict("the address to replace changed since the code was sent")
    new_email, new_normalized = challenge.target_email, challenge.target_email_normalized

    event = audit_event(
        account.nr_number,
        "email_changed",
        actor=_actor(session),
        change=change.value,
        old_email=old_email or "",
        new_email=new_email,
        export=True,
    )

    def apply_change(tx: store.Transaction) -> None:
        # The database decides who gets an address: no claim may exist on it yet.
        claims.add_holder(tx, "new_claim", new_normalized, account.nr_number, None)
        tx.update(
            "account",
            account,
            actions=[
                email_attr.set(new_email),
                normalized_attr.set(new_normalized),
                mark_changed_here(account, [email_attr.attr_name], "person"),
            ],
            condition=_still_ours(session),
        )
        tx.audit(event)
        onetime_codes.consume_in(tx, challenge)

    try:
        # The old address is released only with the change, and only if it is ours.
        claims.commit_releasing(replaces, account.nr_number, apply_change)
    except store.TransactionRefused as refused:
        raise _lost(refused, binding) from None

    record_committed(event, subject=keyed_hash(session.subject), change=change.value)
    count("EmailChanged", change=change.value)
    notify = old_email or account.primary_email  # an added secondary: tell the primary
    sent = notices.send_email_changed_notice(
        notify, account, change=change.value, old_email=old_email, new_email=new_email
    )
    return Applied(change, old_email, new_email, notify if sent else None)


def _still_ours(session: Session) -> Condition:
    # Unlinked (support, a Login.gov purge) or disabled since the page loaded: change nothing.
    return (Account.linked_sub == session.subject) & (Account.status == "active")


def _lost(refused: store.TransactionRefused, binding: Binding) -> Exception:
    """Name what made the transaction fail, from DynamoDB's reasons per item."""
    log_event("email_change_transaction_failed", failed=refused.failed)
    if refused.refused("new_claim"):
        onetime_codes.discard(binding)  # it can never succeed now
        count("EmailChangeLostRace")
        return EmailAddressTaken("another account took the address first")
    if refused.refused("challenge"):
        return NoPendingCode("code already used", purpose=_PURPOSE)
    if not refused.conflict_only:
        onetime_codes.discard(binding)
    # Otherwise (a conflict that outlasted the retry) the challenge stays: try again.
    return EmailChangeConflict("the account changed during the email change")


def _count_change_without_code(account: Account, change: Change) -> str:
    """Count one remove or swap for the account this hour, or refuse (notice flood)."""
    window = counters.window_of(clock.epoch_seconds(), 3600)
    counter = f"sendcount#nocode-change-{account.nr_number}#{window}"
    if (
        counters.take(
            counter,
            get_settings().email_changes_without_code_per_hour,
            expires_at=(window + 1) * 3600,
        )
        is None
    ):
        raise EmailChangeLimitReached(
            "too many changes without a code this hour",
            nr_number=account.nr_number,
            change=change.value,
        )
    return counter


# --- changes without a new address --------------------------------------------------------------


def remove_secondary(session: Session, account: Account) -> Applied:
    if not account.secondary_email_normalized:
        raise NewEmailInvalid("no secondary email", reason="no_secondary")
    counter = _count_change_without_code(account, Change.REMOVE_SECONDARY)
    old_email = account.secondary_email
    event = audit_event(
        account.nr_number,
        "email_changed",
        actor=_actor(session),
        change=Change.REMOVE_SECONDARY.value,
        old_email=old_email or "",
        new_email="",
        export=True,
    )

    def removal(tx: store.Transaction) -> None:
        tx.update(
            "account",
            account,
            actions=[
                Account.secondary_email.remove(),
                Account.secondary_email_normalized.remove(),
                mark_changed_here(account, ["secondary_email"], "person"),
            ],
            condition=_still_ours(session),
        )
        tx.audit(event)

    try:
        claims.commit_releasing(account.secondary_email_normalized, account.nr_number, removal)
    except store.TransactionRefused:
        counters.give(counter)  # nothing changed, no notice: not a change to count
        raise EmailChangeConflict("the account changed during the removal") from None
    return _applied_without_code(
        session, account, event, Change.REMOVE_SECONDARY, old_email, None, notify=old_email
    )


def swap(session: Session, account: Account) -> Applied:
    """Make the secondary the primary and the primary the secondary. Moves no claims."""
    if not account.secondary_email_normalized:
        raise NewEmailInvalid("no secondary email", reason="no_secondary")
    counter = _count_change_without_code(account, Change.SWAP)
    old_primary, new_primary = account.primary_email, account.secondary_email
    event = audit_event(
        account.nr_number,
        "email_changed",
        actor=_actor(session),
        change=Change.SWAP.value,
        old_email=old_primary,
        new_email=new_primary,
        export=True,
    )
    tx = store.Transaction()
    tx.update(
        "account",
        account,
        actions=[
            Account.primary_email.set(account.secondary_email),
            Account.primary_email_normalized.set(account.secondary_email_normalized),
            Account.secondary_email.set(account.primary_email),
            Account.secondary_email_normalized.set(account.primary_email_normalized),
            mark_changed_here(account, ["primary_email", "secondary_email"], "person"),
        ],
        condition=_still_ours(session),
    )
    tx.audit(event)
    try:
        tx.commit()
    except store.TransactionRefused:
        counters.give(counter)
        raise EmailChangeConflict("the account changed during the swap") from None
    return _applied_without_code(
        session, account, event, Change.SWAP, old_primary, new_primary, notify=old_primary
    )


def _applied_without_code(
    session: Session,
    account: Account,
    event: AuditEvent,
    change: Change,
    old_email: str | None,
    new_email: str | None,
    *,
    notify: str,
) -> Applied:
    record_committed(event, subject=keyed_hash(session.subject), change=change.value)
    count("EmailChanged", change=change.value)
    sent = notices.send_email_changed_notice(
        notify, account, change=change.value, old_email=old_email, new_email=new_email
    )
    return Applied(change, old_email, new_email, notify if sent else None)
