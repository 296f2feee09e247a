"""When a Login.gov identity is linked to a registry account, and how.

The rules, in one place:
- A returning user is found by Login.gov `sub`, never by email (email can change).
- A first sign-in links automatically when exactly one registry account has a primary or
  secondary email equal (normalized) to one of the identity's verified emails.
- An account links to one identity, an identity to one account. The database enforces
  both: the link writes `sub#<sub>` with attribute_not_exists and updates the account on
  condition it has no linked sub, in one transaction with the audit event.
- Only active accounts link. Linking retires the legacy username.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.audit import audit_event, record_committed
from chalicelib.emails import try_normalize_email
from chalicelib.errors import (
    AccountAlreadyLinked,
    AccountInactive,
    AmbiguousMatch,
    NoMatchingAccount,
    StorageUnavailable,
)
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import (
    Account,
    Claim,
    condition_failed,
    transaction,
    transaction_conflict,
    utc_now,
)


class LinkOutcome(Enum):
    RETURNING = "returning"      # already linked to this identity
    LINKED = "linked"            # linked just now


class LinkMethod(Enum):
    AUTOMATIC = "automatic"      # a verified Login.gov email matched
    RECOVERY = "recovery"        # the person proved control of a registry email


@dataclass(frozen=True)
class LinkResult:
    outcome: LinkOutcome
    nr_number: str


def find_linked_account(sub: str) -> str | None:
    """The registry number linked to this identity, if any (one read)."""
    try:
        return Claim.get(Claim.sub_key(sub), consistent_read=True).nr_number
    except DoesNotExist:
        return None


def matching_account_numbers(emails: list[str]) -> set[str]:
    """Registry numbers whose primary or secondary email equals one of `emails` (normalized)."""
    keys = {Claim.email_key(n) for n in (try_normalize_email(e) for e in emails) if n}
    if not keys:
        return set()
    return {claim.nr_number for claim in Claim.batch_get(list(keys))}


def link_by_verified_emails(sub: str, emails: list[str]) -> LinkResult:
    """First sign-in: link to the one active account matching a verified email."""
    numbers = matching_account_numbers(emails)
    if not numbers:
        raise NoMatchingAccount("no registry account has one of these emails", sub=sub)
    if len(numbers) > 1:
        # Two records claim this person; guessing would hand one of them to a stranger.
        raise AmbiguousMatch("emails match several registry accounts", sub=sub,
                             count=len(numbers))
    (nr_number,) = numbers
    return link_account(sub, nr_number, method=LinkMethod.AUTOMATIC)


def link_account(sub: str, nr_number: str, *, method: LinkMethod,
                 attempts: int = 2) -> LinkResult:
    """Link `sub` to account `nr_number` in one transaction, or raise why not."""
    try:
        account = Account.get(nr_number, consistent_read=True)
    except DoesNotExist:
        raise NoMatchingAccount("account vanished", sub=sub) from None
    _check_linkable(account, sub)
    if account.linked_sub == sub:
        return LinkResult(LinkOutcome.RETURNING, nr_number)

    event = audit_event(nr_number, "identity_linked", actor=f"subject:{keyed_hash(sub)}",
                        method=method.value)
    try:
        with transaction() as tx:
            # Refuse a second account for the same identity (sharing, or a double submit).
            tx.save(Claim(Claim.sub_key(sub), nr_number=nr_number),
                    condition=Claim.claim.does_not_exist())
            # Refuse an account another identity holds; the database decides races.
            tx.update(account, actions=[
                Account.linked_sub.set(sub),
                Account.linked_at.set(utc_now()),
                Account.legacy_username_retired.set(True),
            ], condition=Account.linked_sub.does_not_exist() & (Account.status == "active"))
            tx.save(event)
    except TransactWriteError as exc:
        if not condition_failed(exc):
            if transaction_conflict(exc) and attempts > 1:
                # Another transaction held an item for a moment; DynamoDB says retry.
                return link_account(sub, nr_number, method=method, attempts=attempts - 1)
            raise  # throttling or an outage: the storage page, nothing written
        explained = _explain_lost_race(sub, nr_number)
        if explained is not None:
            return explained
        if attempts > 1:  # an unrelated edit bumped the version: read again and retry once
            return link_account(sub, nr_number, method=method, attempts=attempts - 1)
        # Not a refusal: the person did nothing wrong; ask them to try again.
        raise StorageUnavailable("account kept changing during linking") from None
    record_committed(event, subject=keyed_hash(sub), method=method.value)
    count("IdentityLinked", method=method.value)
    return LinkResult(LinkOutcome.LINKED, nr_number)


def _check_linkable(account: Account, sub: str) -> None:
    if account.status != "active":
        log_event("link_refused_inactive", nr_number=account.nr_number, status=account.status)
        raise AccountInactive(f"account is {account.status}", status_name=account.status)
    if account.linked_sub and account.linked_sub != sub:
        log_event("link_refused_shared", nr_number=account.nr_number, subject=keyed_hash(sub))
        count("LinkRefusedShared")
        raise AccountAlreadyLinked("account is linked to another identity")


def _explain_lost_race(sub: str, nr_number: str) -> LinkResult | None:
    """A transaction condition failed: read back what won and say so (None: nothing did)."""
    linked = find_linked_account(sub)
    if linked == nr_number:
        return LinkResult(LinkOutcome.RETURNING, nr_number)  # our own double submit won
    if linked is not None:
        log_event("link_refused_identity_taken", logging.WARNING, subject=keyed_hash(sub))
        raise AccountAlreadyLinked("this identity already holds another account")
    account = Account.get(nr_number, consistent_read=True)
    _check_linkable(account, sub)
    return None


class UnlinkConflict(Exception):
    """The account changed while unlinking (a sign-in or another action); nothing changed."""


def unlink_identity(account: Account, sub: str, *, event: str, actor: str,
                    remove_claim: bool = True, **detail: str) -> None:
    """Remove the link between `account` and `sub` in one transaction with its audit event.

    Used by the support desk (lost Login.gov access) and by Login.gov's account-purged
    event. The legacy username stays retired; the person relinks at the next sign-in.
    The caller ends the identity's sessions afterwards. `remove_claim=False` is for the
    support desk repairing an account whose `sub#` claim is already gone or names another.
    """
    audit = audit_event(account.nr_number, event, actor=actor, subject=keyed_hash(sub),
                        **detail)
    try:
        with transaction() as tx:
            if remove_claim:
                # The sub claim goes only if it names this account (never another's link).
                tx.delete(Claim(Claim.sub_key(sub)),
                          condition=Claim.nr_number == account.nr_number)
            tx.update(account, actions=[Account.linked_sub.remove(), Account.linked_at.remove()],
                      condition=Account.linked_sub == sub)
            tx.save(audit)
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        raise UnlinkConflict("account or claim changed while unlinking") from None
    record_committed(audit, subject=keyed_hash(sub))
