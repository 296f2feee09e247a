"""Who holds an email address: the one rule for linking, recovery, email changes, the
registry import and the support desk (docs/design.md, "The account lifecycle").

- An address on one account that was never shared proves identity for that account: its
  claim names it (`nr_number`), it links automatically and it receives recovery codes.
- An address on several accounts is contested. Its claim lists every holder and proves
  nothing: no automatic link, no recovery code, and no email change can take it. Each
  holder can remove or replace it from their own account.
- When only one holder is left, the address stays once-shared: it is still that account's
  address and receives its mail, but it neither links nor receives a code until support
  clears it after verifying the person (`manage.py clear-shared`).
- An address the registry's removal of an account released, and nobody holds since, keeps
  a `removed#` marker naming the removed account(s): a sign-in with it is told the account
  is no longer active instead of "no account found". Any new holder deletes the marker.

Every write goes into the caller's store.Transaction and is conditioned on the claim as it
was read (its revision, or its absence), so a claim that anyone changed meanwhile refuses
the whole transaction instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynamodb.exceptions import DoesNotExist

from chalicelib import store
from chalicelib.models import Account, Claim, utc_now

if TYPE_CHECKING:
    from pynamodb.expressions.condition import Condition


@dataclass(frozen=True)
class AddressClaim:
    """An `email#` claim as read: its holders, whether it is (or was) shared, its revision."""

    address: str
    holders: frozenset[str]
    shared: bool
    revision: int

    @property
    def proves(self) -> str | None:
        """The account this address proves identity for, if any."""
        if len(self.holders) == 1 and not self.shared:
            return next(iter(self.holders))
        return None

    @property
    def contested(self) -> bool:
        return len(self.holders) > 1

    @property
    def once_shared(self) -> bool:
        return len(self.holders) == 1 and self.shared

    def names(self, nr_number: str) -> bool:
        return nr_number in self.holders


def from_item(item: Claim) -> AddressClaim:
    address = item.address
    if address is None:
        raise ValueError(f"not an address claim: {item.claim[:5]}...")  # a caller's bug
    # Claims written before `holders` existed name their one account in nr_number.
    holders = set(item.holders or ()) or ({item.nr_number} if item.nr_number else set())
    return AddressClaim(address, frozenset(holders), bool(item.shared), int(item.revision or 0))


def read(address: str) -> AddressClaim | None:
    """The claim on one normalized address. One consistent GetItem."""
    try:
        return from_item(Claim.get(Claim.email_key(address), consistent_read=True))
    except DoesNotExist:
        return None


def read_many(addresses: Iterable[str | None]) -> dict[str, AddressClaim]:
    """normalized address -> claim, for the addresses that have one (BatchGetItem)."""
    keys = sorted({Claim.email_key(a) for a in addresses if a})
    if not keys:
        return {}
    found = (from_item(item) for item in Claim.batch_get(keys, consistent_read=True))
    return {claim.address: claim for claim in found}


def removed_holders(addresses: Iterable[str | None]) -> frozenset[str]:
    """The removed accounts that last held any of these normalized addresses (markers that
    no claim has replaced). One BatchGetItem; nothing when none was released by a removal."""
    keys = sorted({Claim.removed_key(a) for a in addresses if a})
    if not keys:
        return frozenset()
    named = {
        number
        for item in Claim.batch_get(keys, consistent_read=True)
        for number in item.holders or ()
    }
    if not named:
        return frozenset()
    # A marker is a hint written beside the removal; the account's own status decides. A
    # re-activated account a stale marker still names must never be called removed (the
    # lifecycle machine found imports that leave one: see docs/design.md, removed markers).
    return frozenset(number for number in sorted(named) if _is_removed(number))


def _is_removed(nr_number: str) -> bool:
    # GetItem, as every other read of an account on the sign-in path: a marker names one
    # account, rarely two.
    try:
        return Account.get(nr_number, consistent_read=True).status == "removed"
    except Account.DoesNotExist:
        return False


# --- writes (into a store.Transaction) -------------------------------------------------------


def _item(address: str, holders: frozenset[str], shared: bool, revision: int) -> Claim:
    proves = next(iter(holders)) if len(holders) == 1 and not shared else None
    return Claim(
        Claim.email_key(address),
        nr_number=proves,
        holders=set(holders),
        shared=True if shared else None,
        revision=revision,
    )


def _as_read(current: AddressClaim | None) -> Condition:
    """The claim is still what we read (or still absent): anyone's change refuses the write."""
    if current is None:
        return Claim.claim.does_not_exist()
    if current.revision == 0:
        return Claim.claim.exists() & (Claim.revision.does_not_exist() | (Claim.revision == 0))
    return Claim.revision == current.revision


def add_holder(
    tx: store.Transaction,
    name: str,
    address: str,
    nr_number: str,
    current: AddressClaim | None,
    *,
    shared: bool = False,
) -> AddressClaim:
    """Put `nr_number` among the address's holders. A second holder makes it contested;
    `shared=True` marks it shared even with one holder (an import that knows another holder
    is coming, so the address never proves anything in between)."""
    holders = (current.holders if current else frozenset()) | {nr_number}
    now_shared = shared or len(holders) > 1 or bool(current and current.shared)
    after = AddressClaim(address, holders, now_shared, (current.revision if current else 0) + 1)
    tx.put(
        name,
        _item(address, after.holders, after.shared, after.revision),
        condition=_as_read(current),
    )
    if current is None:
        # Held again: a removed account's marker no longer describes who holds it.
        tx.delete(f"{name}:removed", Claim(Claim.removed_key(address)))
    return after


def mark_removed(
    tx: store.Transaction, name: str, address: str, nr_number: str, *, absent: bool
) -> None:
    """Record that removed account `nr_number` held `address`, which nobody holds now.
    `absent`: the caller read no claim on it and writes none here, so check that none
    appeared meanwhile (a caller deleting the claim in `tx` has its condition already)."""
    tx.update(
        name,
        Claim(Claim.removed_key(address)),
        [Claim.holders.add({nr_number}), Claim.created_at.set(Claim.created_at | utc_now())],
        add_version_condition=False,
    )
    if absent:
        tx.check(
            f"{name}:free", Claim, Claim.email_key(address), condition=Claim.claim.does_not_exist()
        )


def remove_holder(
    tx: store.Transaction,
    name: str,
    address: str,
    nr_number: str,
    current: AddressClaim,
    *,
    keep_shared: bool = True,
) -> AddressClaim | None:
    """Take `nr_number` off the address. The last holder's removal deletes the claim; a
    contested address left with one holder stays shared (once-shared).

    `keep_shared=False` is for the registry import only: an address it moves from one
    account to another in one run is contested for a moment (the new holder was added
    first) but was never on two accounts in the registry's eyes, so the holder it leaves
    is proven by it. Email changes and support always keep it shared."""
    holders = current.holders - {nr_number}
    if not holders:
        tx.delete(name, Claim(Claim.email_key(address)), condition=_as_read(current))
        return None
    shared = keep_shared or len(holders) > 1
    after = AddressClaim(address, holders, shared, current.revision + 1)
    tx.put(
        name,
        _item(address, after.holders, after.shared, after.revision),
        condition=_as_read(current),
    )
    return after


def release_if_sole(tx: store.Transaction, name: str, address: str, nr_number: str) -> None:
    """Delete an address that proves `nr_number` alone, without reading it first (the
    common case of an email change). If the address is shared the transaction is refused
    at `name`; the caller then reads it and uses remove_holder."""
    tx.delete(name, Claim(Claim.email_key(address)), condition=Claim.nr_number == nr_number)


def clear_shared(tx: store.Transaction, name: str, current: AddressClaim) -> AddressClaim:
    """Support verified the one holder left: the address proves identity again."""
    if current.contested or not current.shared:
        raise ValueError("only a once-shared address can be cleared")
    after = AddressClaim(current.address, current.holders, False, current.revision + 1)
    tx.put(
        name,
        _item(after.address, after.holders, False, after.revision),
        condition=_as_read(current),
    )
    return after


def still_proves(tx: store.Transaction, name: str, address: str, nr_number: str) -> None:
    """Check, inside the transaction, that the address still proves `nr_number`: what a
    link matched must still hold when the link commits."""
    tx.check(name, Claim, Claim.email_key(address), condition=Claim.nr_number == nr_number)


def commit_releasing(
    address: str | None, nr_number: str, build: Callable[[store.Transaction], None]
) -> None:
    """Commit a transaction (`build` adds its items) that also lets go of `address` for
    `nr_number` (item "old_claim"; no address: nothing to let go). First as its only
    holder, without reading it (release_if_sole, the common case); if it turns out to be
    shared, read it and commit once more, removing only our share. store.TransactionRefused
    when that is not what refused, or the address is no longer ours."""
    current: AddressClaim | None = None
    for attempt in (1, 2):
        tx = store.Transaction()
        build(tx)
        if address:
            if current is None:
                release_if_sole(tx, "old_claim", address, nr_number)
            else:
                remove_holder(tx, "old_claim", address, nr_number, current)
        try:
            tx.commit()
            return
        except store.TransactionRefused as refused:
            if attempt == 1 and address and set(refused.failed) == {"old_claim"}:
                current = read(address)
                if current is not None and current.names(nr_number):
                    continue
            raise
