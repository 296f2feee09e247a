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

from dataclasses import dataclass
from enum import Enum

from chalicelib.audit import audit_event, record_committed
from chalicelib.emails import try_normalize_email
from chalicelib.errors import (
    AccountAlreadyLinked,
    AccountInactive,
    AmbiguousMatch,
    NoMatchingAccount,
    StorageUnavailable,
)
from chalicelib import store
from chalicelib.logs import count, keyed_hash
from chalicelib.models import Account, Claim, utc_now


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
    return store.account_linked_to(sub)


def matching_account_numbers(emails: list[str]) -> set[str]:
    """Registry numbers whose primary or secondary email equals one of `emails` (normalized)."""
    normalized = {n for n in (try_normalize_email(e) for e in emails) if n}
    return set(store.holders_of(normalized).values())


def link_by_verified_emails(sub: str, emails: list[str], *,
                            login_gov_email: str | None = None) -> LinkResult:
    """First sign-in: link to the one active account matching a verified email."""
    numbers = matching_account_numbers(emails)
    if not numbers:
        raise NoMatchingAccount("no registry account has one of these emails",
                                subject=keyed_hash(sub))
    if len(numbers) > 1:
        # Two records claim this person; guessing would hand one of them to a stranger.
        raise AmbiguousMatch("emails match several registry accounts", subject=keyed_hash(sub),
                             count=len(numbers))
    (nr_number,) = numbers
    return link_account(sub, nr_number, method=LinkMethod.AUTOMATIC,
                        login_gov_email=login_gov_email)


def link_account(sub: str, nr_number: str, *, method: LinkMethod,
                 login_gov_email: str | None = None, attempts: int = 2) -> LinkResult:
    """Link `sub` to account `nr_number` in one transaction, or raise why not."""
    account = store.get_account(nr_number)
    if account is None:
        raise NoMatchingAccount("account vanished", subject=keyed_hash(sub))
    _check_linkable(account, sub)
    if account.linked_sub == sub:
        return LinkResult(LinkOutcome.RETURNING, nr_number)

    event = audit_event(nr_number, "identity_linked", actor=f"subject:{keyed_hash(sub)}",
                        method=method.value)
    tx = store.Transaction()
    # Refuse a second account for the same identity (sharing, or a double submit).
    tx.put("sub_claim", Claim(Claim.sub_key(sub), nr_number=nr_number),
           condition=Claim.claim.does_not_exist())
    # Refuse an account another identity holds; the database decides races.
    actions = [Account.linked_sub.set(sub), Account.linked_at.set(utc_now()),
               Account.legacy_username_retired.set(True)]
    actions.append(Account.linked_email.set(login_gov_email) if login_gov_email
                   else Account.linked_email.remove())
    tx.update("account", account, actions=actions, condition=Account.linked_sub.does_not_exist() & (Account.status == "active"))
    tx.audit(event)
    try:
        tx.commit()
    except store.TransactionRefused:
        explained = _explain_lost_race(sub, nr_number)
        if explained is not None:
            return explained
        if attempts > 1:  # an unrelated edit bumped the version: read again and retry once
            return link_account(sub, nr_number, method=method,
                                login_gov_email=login_gov_email, attempts=attempts - 1)
        # Not a refusal: the person did nothing wrong; ask them to try again.
        raise StorageUnavailable("account kept changing during linking") from None
    record_committed(event, subject=keyed_hash(sub), method=method.value)
    count("IdentityLinked", method=method.value)
    return LinkResult(LinkOutcome.LINKED, nr_number)


def _check_linkable(account: Account, sub: str) -> None:
    # Refusals are logged and counted once, at the edge, from the error's context.
    if account.status != "active":
        raise AccountInactive(f"account is {account.status}", status_name=account.status,
                              nr_number=account.nr_number, subject=keyed_hash(sub))
    if account.linked_sub and account.linked_sub != sub:
        raise AccountAlreadyLinked("account is linked to another identity",
                                   nr_number=account.nr_number, subject=keyed_hash(sub))


def _explain_lost_race(sub: str, nr_number: str) -> LinkResult | None:
    """A transaction condition failed: read back what won and say so (None: nothing did)."""
    linked = find_linked_account(sub)
    if linked == nr_number:
        return LinkResult(LinkOutcome.RETURNING, nr_number)  # our own double submit won
    if linked is not None:
        raise AccountAlreadyLinked("this identity already holds another account",
                                   subject=keyed_hash(sub))
    account = store.get_account(nr_number)
    if account is None:
        raise NoMatchingAccount("account vanished", subject=keyed_hash(sub))
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
    tx = store.Transaction()
    if remove_claim:
        # The sub claim goes only if it names this account (never another's link).
        tx.delete("sub_claim", Claim(Claim.sub_key(sub)),
                  condition=Claim.nr_number == account.nr_number)
    tx.update("account", account, actions=[Account.linked_sub.remove(),
                                           Account.linked_at.remove(),
                                           Account.linked_email.remove()],
              condition=Account.linked_sub == sub)
    tx.audit(audit)
    try:
        tx.commit()
    except store.TransactionRefused:
        raise UnlinkConflict("account or claim changed while unlinking") from None
    record_committed(audit, subject=keyed_hash(sub))
