"""The account lifecycle's invariants (docs/design.md, "The five invariants"), checked on the
tables as they are: after every lifecycle test and after every step of the state machine.

1. Every address of every account that is not removed has exactly one claim, and it names
   that account; no claim names an account that does not hold the address, nor a removed
   account (the registry decides who is certified: a removed account's addresses are
   free); a claim proves an account (`nr_number`) exactly when it has one holder and was
   never shared. A `removed#` marker is on an address no account holds and names accounts
   that exist; a sign-in is told only of those still removed (claims.removed_holders).
2. `sub#` claims and accounts' linked subs agree both ways; one sub, at most one account;
   a purged identity holds no link; a barred identity is not linked to that account. A
   `sub#` item without an account exists only to carry Login.gov's marks (an identity's
   disabled/enabled times outlive its link); a linked account mirrors its identity's
   disabled mark (`login_gov_disabled`), and an unlinked one carries none. An account is in
   the campaign's sparse index (`awaiting_link` and `campaign_wave`) exactly when unlinked.
3. Every link and unlink has its audit record: per account, links minus unlinks in the
   audit trail is 1 when linked and 0 when not; every field changed here has an audit event
   that changed it.
"""

from __future__ import annotations

from collections import Counter

from chalicelib import claims
from chalicelib.logs import keyed_hash
from chalicelib.models import AWAITING_LINK, Account, AuditEvent, Claim

LINK_EVENTS = {"identity_linked"}
UNLINK_EVENTS = {"identity_unlinked", "identity_unlinked_purged"}
FIELD_EVENTS = {"email_changed", "email_set_by_support", "account_disabled", "account_enabled"}


def snapshot() -> tuple[dict, list]:
    return {a.nr_number: a for a in Account.scan(consistent_read=True)}, list(
        Claim.scan(consistent_read=True)
    )


def assert_invariants() -> None:
    accounts, items = snapshot()
    problems: list[str] = []
    by_address = {item.address: item for item in items if item.address is not None}

    # 1. addresses and their claims
    for account in accounts.values():
        emails = account.normalized_emails()
        if len(emails) != len(set(emails)):
            problems.append(f"{account.nr_number} lists one address twice")
        if account.status == "removed":
            continue  # holds no address (checked below: no claim names it)
        for address in emails:
            item = by_address.get(address)
            if item is None or not claims.from_item(item).names(account.nr_number):
                problems.append(f"{account.nr_number}: {address} has no claim naming it")
    for address, item in by_address.items():
        claim = claims.from_item(item)
        if not claim.holders:
            problems.append(f"claim on {address} names nobody")
        for number in claim.holders:
            account = accounts.get(number)
            if account is None or address not in account.normalized_emails():
                problems.append(f"claim on {address} names {number}, which does not hold it")
            elif account.status == "removed":
                problems.append(f"claim on {address} names {number}, which is removed")
        if item.nr_number != claim.proves:
            problems.append(
                f"claim on {address}: proves {item.nr_number!r}, "
                f"holders {sorted(claim.holders)} shared={claim.shared}"
            )
        if claim.contested and not claim.shared:
            problems.append(f"claim on {address} has several holders but is not shared")
    for item in items:
        if not item.claim.startswith(Claim.REMOVED_PREFIX):
            continue
        address = item.claim[len(Claim.REMOVED_PREFIX) :]
        if address in by_address:
            problems.append(f"removed marker on {address}, which a claim holds")
        # A marker may still name an account the registry re-activated since (a known gap
        # of the import's tidy-up): harmless, because claims.removed_holders reads the named
        # accounts and keeps only the removed ones. What must hold is what a person is told.
        for number in item.holders or ():
            if number not in accounts:
                problems.append(f"removed marker on {address} names {number}, no account")

    # 2. links
    identities = {
        i.claim[len(Claim.SUB_PREFIX) :]: i for i in items if i.claim.startswith(Claim.SUB_PREFIX)
    }
    subs = {sub: i.nr_number for sub, i in identities.items() if i.nr_number}
    for sub, item in identities.items():
        if not item.nr_number and not item.marked:
            problems.append(f"sub item {sub[:8]} names no account and carries no mark")
    purged = {
        i.claim[len(Claim.PURGED_PREFIX) :]
        for i in items
        if i.claim.startswith(Claim.PURGED_PREFIX)
    }
    for sub, number in subs.items():
        if number not in accounts or accounts[number].linked_sub != sub:
            problems.append(f"sub claim {sub[:8]} -> {number} without the link")
    for account in accounts.values():
        if account.linked_sub:
            if subs.get(account.linked_sub) != account.nr_number:
                problems.append(f"{account.nr_number} linked without its sub claim")
            if account.linked_sub in purged:
                problems.append(f"{account.nr_number} linked to a purged identity")
            if account.linked_sub in (account.barred_subs or ()):
                problems.append(f"{account.nr_number} linked to an identity it barred")
            claim = identities.get(account.linked_sub)
            if claim is not None and bool(account.login_gov_disabled) != claim.disabled:
                problems.append(
                    f"{account.nr_number}: Login.gov disabled mark differs from its sub claim's"
                )
        elif account.login_gov_disabled:
            problems.append(f"{account.nr_number}: unlinked but marked disabled by Login.gov")
        # The campaign's sparse index (chalicelib.campaign) holds exactly the unlinked ones.
        in_index = account.awaiting_link == AWAITING_LINK and account.campaign_wave is not None
        if in_index == bool(account.linked_sub):
            problems.append(
                f"{account.nr_number}: linked={bool(account.linked_sub)} but "
                f"{'in' if in_index else 'not in'} the campaign's index"
            )

    # 3. audit
    for account in accounts.values():
        events = list(AuditEvent.query(account.nr_number, consistent_read=True))
        names = Counter(e.event for e in events)
        links = sum(names[n] for n in LINK_EVENTS)
        unlinks = sum(names[n] for n in UNLINK_EVENTS)
        if links - unlinks != (1 if account.linked_sub else 0):
            problems.append(
                f"{account.nr_number}: {links} links, {unlinks} unlinks in the "
                f"audit trail, linked={bool(account.linked_sub)}"
            )
        if account.linked_sub:
            last = max(
                (e for e in events if e.event in LINK_EVENTS),
                key=lambda e: e.at_event,
                default=None,
            )
            if last is None or last.actor != f"subject:{keyed_hash(account.linked_sub)}":
                problems.append(f"{account.nr_number}: last link event is not its identity's")
        marks = account.changed_here.as_dict() if account.changed_here else {}
        if marks and not any(names[n] for n in FIELD_EVENTS):
            problems.append(f"{account.nr_number}: fields changed here without an audit event")
    assert not problems, "\n".join(problems)
