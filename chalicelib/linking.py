"""When a Login.gov identity is linked to a registry account, and how.

The rules, in one place:
- A returning user is found by Login.gov `sub`, never by email (email can change).
- A first sign-in links automatically when exactly one registry account has a primary or
  secondary email equal (normalized) to one of the identity's verified emails.
- Only an address that proves one account links (chalicelib.claims): a shared or
  once-shared address never does. The link commits only if the address it matched still
  proves that account.
- An account links to one identity, an identity to one account. The database enforces
  both: the link sets `nr_number` on the identity's `sub#<sub>` item on condition it has
  none, and updates the account on condition it has no linked sub, in one transaction with
  the audit event.
- Only active accounts link. Linking retires the legacy username. An identity Login.gov
  purged never links; one support barred from an account never links to it again; one
  Login.gov disabled (and has not enabled since) links nowhere, by any route: the same
  condition on its `sub#` item, which carries Login.gov's marks whether or not it is
  linked (chalicelib.models.Claim), so a link racing the account-disabled event cannot win
  once the event has committed.
- Unlinking removes `nr_number` from the identity's item and keeps Login.gov's marks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib import claims, store
from chalicelib.audit import audit_event, commit_with_audit, record_committed
from chalicelib.emails import try_normalize_email
from chalicelib.errors import (
    AccountAlreadyLinked,
    AccountInactive,
    AccountRemoved,
    AmbiguousMatch,
    IdentityDisabled,
    IdentityPurged,
    LinkBarred,
    MatchChanged,
    NoMatchingAccount,
    SharedAddress,
    StorageUnavailable,
)
from chalicelib.logs import count, keyed_hash
from chalicelib.models import AWAITING_LINK, NO_WAVE, Account, Claim, utc_now


class LinkOutcome(Enum):
    RETURNING = "returning"  # already linked to this identity
    LINKED = "linked"  # linked just now


class LinkMethod(Enum):
    AUTOMATIC = "automatic"  # a verified Login.gov email matched
    RECOVERY = "recovery"  # the person proved control of a registry email


@dataclass(frozen=True)
class LinkResult:
    outcome: LinkOutcome
    nr_number: str


def find_linked_account(sub: str) -> str | None:
    """The registry number linked to this identity, if any (one read)."""
    return store.account_linked_to(sub)


def account_to_sign_in(sub: str) -> str | None:
    """find_linked_account for a sign-in: IdentityDisabled while Login.gov says the identity
    is disabled, linked or not. The same one read: a sign-in racing the account-disabled
    event is refused once the event has committed (a first link by the link's condition),
    and the event ends what started before (security_events)."""
    claim = store.identity_claim(sub)
    if claim is not None and claim.disabled:
        raise IdentityDisabled(
            "Login.gov disabled this identity", sub=sub, nr_number=claim.nr_number
        )
    return claim.nr_number if claim else None


def link_by_verified_emails(
    sub: str, emails: list[str], *, login_gov_email: str | None = None
) -> LinkResult:
    """First sign-in: link to the one active account that a verified email proves."""
    addresses = {n for n in (try_normalize_email(e) for e in emails) if n}
    found = claims.read_many(addresses)
    proven = {address: claim.proves for address, claim in found.items() if claim.proves}
    numbers = set(proven.values())
    if not numbers:
        if found:
            # Only shared addresses matched: an office mailbox is nobody's proof of identity.
            raise SharedAddress("only shared addresses match", sub=sub)
        removed = claims.removed_holders(addresses)
        if removed:
            # Telling this identity is fine: Login.gov verified it controls the address.
            raise AccountRemoved(
                "only a removed account held these emails",
                sub=sub,
                nr_number=min(removed),
                count=len(removed),
            )
        raise NoMatchingAccount("no registry account has one of these emails", sub=sub)
    if len(numbers) > 1:
        # Two records claim this person; guessing would hand one of them to a stranger.
        raise AmbiguousMatch("emails match several registry accounts", sub=sub, count=len(numbers))
    (nr_number,) = numbers
    matched = min(address for address, holder in proven.items() if holder == nr_number)
    return link_account(
        sub,
        nr_number,
        method=LinkMethod.AUTOMATIC,
        matched=matched,
        login_gov_email=login_gov_email,
    )


def link_account(
    sub: str,
    nr_number: str,
    *,
    method: LinkMethod,
    matched: str | None = None,
    login_gov_email: str | None = None,
    attempts: int = 2,
    add_items: Callable[[store.Transaction], None] | None = None,
) -> LinkResult:
    """Link `sub` to account `nr_number` in one transaction, or raise why not.

    `matched` is the normalized address that proved the account (a verified Login.gov email,
    or the address a recovery code went to): the link commits only if that address still
    proves this account at that moment. `add_items(tx)` puts the caller's own items into
    the link's transaction (they commit with the link or not at all); when one of them is
    what refused it, the store.TransactionRefused is raised to the caller as it is.
    """
    account = store.get_account(nr_number)
    if account is None:
        raise NoMatchingAccount("account vanished", sub=sub)
    _check_linkable(account, sub)
    if account.linked_sub == sub:
        return LinkResult(LinkOutcome.RETURNING, nr_number)

    # Which address proved it (support's person page says how the link was made).
    slots = {account.primary_email_normalized: "primary"}
    if account.secondary_email_normalized:
        slots[account.secondary_email_normalized] = "secondary"
    detail: dict[str, Any] = {"matched": slots[matched]} if matched in slots else {}
    event = audit_event(
        nr_number,
        "identity_linked",
        actor=f"subject:{keyed_hash(sub)}",
        method=method.value,
        **detail,
    )
    tx = store.Transaction()
    # Refuse a second account for the same identity (sharing, or a double submit), and an
    # identity Login.gov disabled (an account-disabled event may commit at this moment).
    # An update: the item may exist already, carrying Login.gov's marks, which stay.
    search_email = try_normalize_email(login_gov_email)  # the console's search by it
    tx.update(
        "sub_claim",
        Claim(Claim.sub_key(sub)),
        [
            Claim.nr_number.set(nr_number),
            Claim.created_at.set(Claim.created_at | utc_now()),
            Claim.login_gov_email.set(search_email)
            if search_email
            else Claim.login_gov_email.remove(),
        ],
        condition=Claim.linkable(),
    )
    # A purge event may be on its way in: a purged identity never holds a link.
    tx.check("not_purged", Claim, Claim.purged_key(sub), condition=Claim.claim.does_not_exist())
    if matched is not None:
        # An import or an email change may have moved the address since we read it.
        claims.still_proves(tx, "matched_claim", matched, nr_number)
    actions = [
        Account.linked_sub.set(sub),
        Account.linked_at.set(utc_now()),
        Account.legacy_username_retired.set(True),
        Account.login_gov_disabled.remove(),
        # Out of the campaign's index at once: a linked person is never mailed again.
        Account.awaiting_link.remove(),
    ]
    actions.append(
        Account.linked_email.set(login_gov_email)
        if login_gov_email
        else Account.linked_email.remove()
    )
    # Refuse an account another identity holds, an inactive one, or one that barred this
    # identity; the database decides races.
    tx.update(
        "account",
        account,
        actions=actions,
        condition=Account.linked_sub.does_not_exist()
        & (Account.status == "active")
        & ~Account.barred_subs.contains(sub),
    )
    tx.audit(event)
    own_items = set(tx.request_order())
    if add_items is not None:
        add_items(tx)
    try:
        tx.commit()
    except store.TransactionRefused as refused:
        if any(refused.refused(name) for name in set(refused.failed) - own_items):
            raise
        if refused.refused("not_purged"):
            raise IdentityPurged("Login.gov purged this identity", sub=sub) from None
        explained = _explain_lost_race(sub, nr_number)
        if explained is not None:
            return explained
        if refused.refused("matched_claim"):
            raise MatchChanged(
                "the matched address no longer proves this account",
                nr_number=nr_number,
                sub=sub,
            ) from None
        if attempts > 1:  # an unrelated edit bumped the version: read again and retry once
            return link_account(
                sub,
                nr_number,
                method=method,
                matched=matched,
                login_gov_email=login_gov_email,
                attempts=attempts - 1,
                add_items=add_items,
            )
        # Not a refusal: the person did nothing wrong; ask them to try again.
        raise StorageUnavailable("account kept changing during linking") from None
    record_committed(event, subject=keyed_hash(sub), method=method.value)
    count("IdentityLinked", method=method.value)
    return LinkResult(LinkOutcome.LINKED, nr_number)


def _check_linkable(account: Account, sub: str) -> None:
    # Refusals are logged and counted once, at the edge, from the error's context.
    if account.status != "active":
        raise AccountInactive(
            f"account is {account.status}",
            status_name=account.status,
            nr_number=account.nr_number,
            sub=sub,
        )
    if account.linked_sub and account.linked_sub != sub:
        raise AccountAlreadyLinked(
            "account is linked to another identity",
            nr_number=account.nr_number,
            sub=sub,
        )
    if sub in (account.barred_subs or ()):
        # Support found this identity is not the account's owner: no route may relink it.
        raise LinkBarred(
            "identity barred from this account",
            nr_number=account.nr_number,
            sub=sub,
        )


def _explain_lost_race(sub: str, nr_number: str) -> LinkResult | None:
    """A transaction condition failed: read back what won and say so (None: nothing did)."""
    identity = store.identity_claim(sub)
    if identity is not None and identity.disabled:
        # Login.gov's account-disabled event committed first: the disabled page, not a conflict.
        raise IdentityDisabled(
            "Login.gov disabled this identity",
            sub=sub,
            nr_number=identity.nr_number,
        )
    linked = identity.nr_number if identity else None
    if linked == nr_number:
        return LinkResult(LinkOutcome.RETURNING, nr_number)  # our own double submit won
    if linked is not None:
        raise AccountAlreadyLinked("this identity already holds another account", sub=sub)
    account = store.get_account(nr_number)
    if account is None:
        raise NoMatchingAccount("account vanished", sub=sub)
    _check_linkable(account, sub)
    return None


class LinkChangeConflict(Exception):
    """A change of a link or a bar (unlink, lift-bar) refused because the account or claim
    changed since it was read (a sign-in or another action); nothing changed."""


def unlink_items(
    tx: store.Transaction,
    account: Account,
    sub: str,
    identity: Claim | None,
    *,
    bar: bool = False,
    purge: bool = False,
) -> None:
    """The writes that end the link between `account` and `sub` (the caller adds the audit
    event and commits). `identity` is the `sub#` item as read; when it names this account it
    loses `nr_number` but keeps Login.gov's marks (the item goes when it carries none, or
    for a `purge`: a purged identity never signs in again). When it names another account or
    none, only the account changes (a repair). `bar` also bars the identity from this
    account."""
    if identity is not None and identity.nr_number == account.nr_number:
        # Only if it still names this account and its marks are as read: a disable or
        # enable committing meanwhile must not be lost (the caller reads again).
        condition = (
            (Claim.nr_number == account.nr_number)
            & store.as_read(Claim.disabled_at, identity.disabled_at)
            & store.as_read(Claim.enabled_at, identity.enabled_at)
        )
        if identity.marked and not purge:
            # A still-disabled identity must not relink at its next sign-in.
            tx.update(
                "sub_claim",
                Claim(identity.claim),
                [Claim.nr_number.remove(), Claim.login_gov_email.remove()],
                condition=condition,
            )
        else:
            tx.delete("sub_claim", Claim(identity.claim), condition=condition)
    actions: list[Action] = [
        Account.linked_sub.remove(),
        Account.linked_at.remove(),
        Account.linked_email.remove(),
        Account.login_gov_disabled.remove(),
        # Back in the campaign's index: the person must link again before the deadline.
        Account.awaiting_link.set(AWAITING_LINK),
        Account.campaign_wave.set(Account.campaign_wave | NO_WAVE),
    ]
    if bar:
        actions.append(Account.barred_subs.add({sub}))
    tx.update("account", account, actions=actions, condition=Account.linked_sub == sub)


def unlink_identity(
    account: Account,
    sub: str,
    identity: Claim | None,
    *,
    event: str,
    actor: str,
    bar: bool = False,
    **detail: str,
) -> None:
    """Remove the link between `account` and `sub` in one transaction with its audit event.

    Used by the support desk: `bar=False` when the person lost their Login.gov account (they
    link again with a new one), `bar=True` when the linked identity is not the account's
    owner (it can never link to this account again until support lifts the bar). The legacy
    username stays retired. The caller ends the identity's sessions afterwards.
    `identity` is the `sub#` item as read (see unlink_items): Login.gov's disabled mark
    stays with the identity, whichever mode.
    """
    audit = audit_event(
        account.nr_number,
        event,
        actor=actor,
        subject=keyed_hash(sub),
        barred="yes" if bar else "no",
        extra=detail,
    )
    tx = store.Transaction()
    unlink_items(tx, account, sub, identity, bar=bar)
    commit_with_audit(
        tx,
        audit,
        LinkChangeConflict("account or claim changed while unlinking"),
        subject=keyed_hash(sub),
    )


def lift_bar(account: Account, sub: str, *, actor: str, reason: str, **detail: str) -> None:
    """Support lifts a bar: the identity may link to this account again."""
    audit = audit_event(
        account.nr_number,
        "identity_bar_lifted",
        actor=actor,
        export=False,
        subject=keyed_hash(sub),
        reason=reason,
        extra=detail,
    )
    tx = store.Transaction()
    tx.update(
        "account",
        account,
        actions=[Account.barred_subs.delete({sub})],
        condition=Account.barred_subs.contains(sub),
    )
    commit_with_audit(
        tx,
        audit,
        LinkChangeConflict("the identity is not barred from this account"),
        subject=keyed_hash(sub),
    )
