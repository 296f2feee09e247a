"""Import the registry's export: a three-way sync that never undoes a decision made here.

Rows come validated from supportdesk.csv_validation. For each row:

- Fields (chalicelib.field_ownership): the account keeps the registry row as last imported.
  A field is applied only where the registry's value changed since then and this service
  did not change it; where both changed it differently nothing is applied and the report
  lists the conflict with both values and dates. The registry's "removed" always wins;
  support's hold ("disabled") is never lifted. Link fields are never touched.
- Addresses (chalicelib.claims): an address on several accounts is shared, never proof of
  identity; when an import leaves one holder, the address stays once-shared until support
  clears it. An address that will be shared by the end of the run is written as shared from
  its first write, so it never proves anyone in between. An address the run moves from one
  account to another (a correction, two accounts swapping) may be contested for a moment
  between their transactions, which is safe; it ends proving its new holder, unless it was
  shared before the run.

Writing: one transaction per account that changes — the account on its version (or absent,
for a new one), every address it gains or loses conditioned on the claim as read, and its
audit event. Unchanged rows cost no write, so re-importing the same file writes nothing. A
failure leaves each account before or after, never between; an account that changed while
the import ran is read again and planned once more; storage trouble stops the run cleanly
(`stopped`), and re-running finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pynamodb.exceptions import PynamoDBException

from chalicelib import claims, clock, store
from chalicelib.audit import audit_event
from chalicelib.claims import AddressClaim
from chalicelib.emails import try_normalize_email
from chalicelib.field_ownership import (
    REGISTRY_FIELDS,
    Merge,
    changed_here,
    effective_status,
    merge,
)
from chalicelib.logs import log_event
from chalicelib.models import AWAITING_LINK, NO_WAVE, Account, Claim, utc_now
from supportdesk.aws_trouble import is_transient
from supportdesk.csv_cells import write_rows
from supportdesk.csv_validation import (
    REJECTED,
    WARNING,
    AccountRow,
    ImportFileError,
    Issue,
    Validation,
    validate_csv,
    validate_file,
    validate_text,
)
from supportdesk.search_keys import name_keys

__all__ = [
    "ImportFileError",
    "ImportResult",
    "import_accounts",
    "validate_csv",
    "validate_file",
    "validate_text",
    "write_reject_report",
]

REPORT_HEADER = ("row", "nr_number", "kind", "reason")
CONFLICT = "conflict"
# Storage trouble (throttling beyond botocore's retries): wait and try the account again
# this many times before stopping the run.
STORAGE_RETRIES = 3


@dataclass
class ImportResult:
    rows_read: int = 0
    imported: int = 0  # new accounts
    updated: int = 0  # existing accounts with a write (fields, addresses or base)
    unchanged: int = 0
    rejected: int = 0  # rows not imported (validation, or changed while importing)
    conflicts: int = 0  # fields both sides changed: nothing applied, reported
    shared_emails: int = 0  # distinct addresses of this file on several accounts
    warnings: int = 0
    older: int = 0  # rows of an older export than the account's: not applied
    claims_written: int = 0  # claim items put or deleted
    transactions: int = 0  # TransactWriteItems commits
    items_read: int = 0  # accounts and claims read to plan
    dry_run: bool = False
    exported_on: str | None = None  # the day the registry produced the file, if given
    stopped: str | None = None  # why the run stopped early (storage trouble): re-run it
    issues: list[Issue] = field(default_factory=list)

    def summary(self) -> dict:
        names = (
            "rows_read",
            "imported",
            "updated",
            "unchanged",
            "rejected",
            "conflicts",
            "shared_emails",
            "warnings",
            "older",
            "claims_written",
            "transactions",
            "items_read",
            "dry_run",
            "exported_on",
            "stopped",
        )
        return {name: getattr(self, name) for name in names}


# --- planning ----------------------------------------------------------------------------------


def _norm(raw: str | None) -> str | None:
    return try_normalize_email(raw) if raw else None


def _row_values(row: AccountRow) -> dict:
    return {
        "first_name": row.first_name,
        "last_name": row.last_name,
        "role": row.role,
        "status": row.status,
        "primary_email": row.primary_email,
        "secondary_email": row.secondary_email,
        "legacy_username": row.legacy_username,
    }


def _current_values(account: Account) -> dict:
    values = {name: getattr(account, name) for name in REGISTRY_FIELDS}
    base = account.imported.as_dict() if account.imported else {}
    # The status the registry gave, not the effective one (support's hold is separate).
    values["status"] = base.get("status", account.status)
    return values


def _comparable(name: str, value: object) -> object:
    if name in ("primary_email", "secondary_email") and (value is None or isinstance(value, str)):
        return _norm(value)
    return value


@dataclass
class AccountPlan:
    """What one row does to its account, decided before anything is written."""

    row: AccountRow
    existing: Account | None
    changes: dict = field(default_factory=dict)  # Account attribute -> new value
    base: dict = field(default_factory=dict)  # the new imported snapshot
    conflicts: list[tuple[str, object, object]] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # normalized, after the import
    file_date: str | None = None  # the export's date (--exported-on), if given
    older_than: str | None = None  # the account's newer export date: nothing applied

    @property
    def nr_number(self) -> str:
        return self.row.nr_number

    @property
    def new_export_date(self) -> str | None:
        """The export date to remember, when this file is newer than the account's."""
        known = self.existing.exported_on if self.existing else None
        return (
            self.file_date if self.file_date and (known is None or self.file_date > known) else None
        )


def plan_account(
    row: AccountRow, account: Account | None, file_date: str | None = None
) -> AccountPlan:
    """The three-way merge of one row with its account (pure: no reads).

    With `file_date` (the day the registry produced the export), a row from an export
    older than the one the account was last changed from is not applied: re-running an
    old file must not undo a newer registry decision. Its account keeps what it holds."""
    theirs = _row_values(row)
    if (
        account is not None
        and file_date
        and account.exported_on
        and file_date < account.exported_on
    ):
        plan = AccountPlan(row, account, file_date=file_date, older_than=account.exported_on)
        plan.addresses = account.normalized_emails() if account.status != "removed" else []
        return plan
    if account is None:
        plan = AccountPlan(row, None, base=dict(theirs), file_date=file_date)
        plan.changes = {
            **{k: v for k, v in theirs.items()},
            "primary_email_normalized": row.primary_email_normalized,
            "secondary_email_normalized": row.secondary_email_normalized,
            "status": effective_status(row.status, False),
        }
        plan.addresses = [
            a for a in (row.primary_email_normalized, row.secondary_email_normalized) if a
        ]
        if plan.changes["status"] == "removed":
            plan.addresses = []  # a removed account holds no address
        return plan
    ours = _current_values(account)
    base = account.imported.as_dict() if account.imported else dict(ours)
    plan = AccountPlan(row, account, base=dict(base), file_date=file_date)
    for name in REGISTRY_FIELDS:
        outcome = merge(
            _comparable(name, base.get(name)),
            _comparable(name, ours[name]),
            _comparable(name, theirs[name]),
        )
        if outcome is Merge.APPLY:
            plan.base[name] = theirs[name]
            if name == "status":
                continue  # the effective status is decided below
            plan.changes[name] = theirs[name]
            if name in ("primary_email", "secondary_email"):
                plan.changes[f"{name}_normalized"] = _norm(theirs[name])
        elif outcome is Merge.CONVERGED:
            plan.base[name] = theirs[name]
        elif outcome is Merge.CONFLICT:
            plan.conflicts.append((name, theirs[name], ours[name]))
        elif _comparable(name, theirs[name]) == _comparable(name, base.get(name)) and theirs[
            name
        ] != base.get(name):
            plan.base[name] = theirs[name]  # same address, new spelling: the base follows
    status = effective_status(plan.base.get("status", "active"), bool(account.support_hold))
    if status != account.status:
        plan.changes["status"] = status
    primary, secondary = _slots_after(plan, account)
    for name in ("secondary_email", "primary_email"):
        if secondary != primary:
            break
        # One side moved an address into the slot the other side keeps (a swap here, a
        # change there): never two slots for one address. Undo the registry's change to
        # this slot and report it; the account's own slots are always distinct.
        if name in plan.changes:
            del plan.changes[name], plan.changes[f"{name}_normalized"]
            plan.base[name] = base.get(name)  # not applied: reported again next import
            plan.conflicts.append((name, theirs[name], ours[name]))
            primary, secondary = _slots_after(plan, account)
    if plan.base == (account.imported.as_dict() if account.imported else None):
        plan.base = {}  # nothing new to remember
    # The registry decides who is certified: a removed account holds no address (they are
    # free for whoever the registry gives them to), and takes them back if re-activated.
    plan.addresses = [a for a in (primary, secondary) if a] if status != "removed" else []
    return plan


def _removed(plan: AccountPlan) -> bool:
    status = plan.changes.get("status", plan.existing.status if plan.existing else None)
    return status == "removed"


def _row_addresses(plan: AccountPlan) -> list[str]:
    """The normalized addresses the registry's row gives the account (held or not)."""
    row = plan.row
    return list(
        dict.fromkeys(
            a for a in (row.primary_email_normalized, row.secondary_email_normalized) if a
        )
    )


def _slots_after(plan: AccountPlan, account: Account) -> tuple[str | None, str | None]:
    """The account's normalized primary and secondary once `plan` is applied."""
    return (
        plan.changes.get("primary_email_normalized", account.primary_email_normalized),
        plan.changes.get("secondary_email_normalized", account.secondary_email_normalized),
    )


def holders_after(
    plans: list[AccountPlan], current: dict[str, AddressClaim]
) -> dict[str, frozenset[str]]:
    """For every address the run touches: the accounts that will hold it when it ends."""
    in_file = {plan.nr_number: plan for plan in plans}
    holders: dict[str, set[str]] = {}
    for address, claim in current.items():
        holders[address] = {n for n in claim.holders if n not in in_file}
    for plan in plans:
        for address in plan.addresses:
            holders.setdefault(address, set()).add(plan.nr_number)
    return {address: frozenset(numbers) for address, numbers in holders.items()}


def shared_after(
    plans: list[AccountPlan],
    current: dict[str, AddressClaim],
    holders: dict[str, frozenset[str]] | None = None,
) -> dict[str, bool]:
    """For every address the run touches: will it be on several accounts (or stay shared)?

    False means the run's final state is "one holder, not shared": the address was not
    shared before the run and ends on one account, even if it is contested for a moment
    while the run moves it from one account to another."""
    holders = holders_after(plans, current) if holders is None else holders
    return {
        address: len(numbers) > 1 or bool(current.get(address) and current[address].shared)
        for address, numbers in holders.items()
    }


# --- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outlook:
    """Where the run leaves each address it touches: its holders, and whether it is shared."""

    holders: dict[str, frozenset[str]]
    shared: dict[str, bool]

    def keep_shared(self, address: str, left: frozenset[str]) -> bool:
        """Removing a holder leaves `left`: does the address stay (once-)shared? Only an
        address the run leaves unshared, on exactly the account(s) the run expects, is
        freed; anything else (shared before, someone else in between) stays shared."""
        return self.shared.get(address, True) or left != self.holders.get(address)


def _transaction_for(
    plan: AccountPlan, claim_state: dict[str, AddressClaim | None], outlook: Outlook, actor: str
) -> tuple[store.Transaction | None, dict, int]:
    """The account's one transaction, and the claims as it leaves them (None: no write)."""
    tx = store.Transaction()
    after = dict(claim_state)
    number = plan.nr_number
    before = set(plan.existing.normalized_emails()) if plan.existing else set()
    writes = 0
    for address in sorted(set(plan.addresses) | before):
        claim = after.get(address)
        holds = claim is not None and claim.names(number)
        if address in plan.addresses and not holds:
            after[address] = claims.add_holder(
                tx,
                f"claim:{address}",
                address,
                number,
                claim,
                shared=outlook.shared.get(address, False),
            )
            writes += 1
        elif address not in plan.addresses and holds and claim is not None:
            keep = outlook.keep_shared(address, claim.holders - {number})
            after[address] = claims.remove_holder(
                tx, f"claim:{address}", address, number, claim, keep_shared=keep
            )
            writes += 1
            if after[address] is None and _removed(plan):
                # Released by the removal and held by nobody: a sign-in with it is told
                # the account is no longer active (not "no account found").
                claims.mark_removed(tx, f"removed:{address}", address, number, absent=False)
    if plan.existing is not None and plan.existing.status == "removed":
        # Re-activated, or given other addresses while removed: an address it no longer
        # lists no longer belongs to a removed account (one it takes back loses its marker
        # in claims.add_holder). The marker goes whole: another removed holder of it then
        # reads as unknown, never wrongly as removed.
        slots = {a for a in _slots_after(plan, plan.existing) if a}
        for address in sorted(before - slots - set(plan.addresses)):
            tx.delete(f"removed:{address}", Claim(Claim.removed_key(address)))
    if plan.existing is None and _removed(plan):
        # A row that arrives removed held its addresses in the registry, never here.
        for address in _row_addresses(plan):
            if after.get(address) is None:
                claims.mark_removed(tx, f"removed:{address}", address, number, absent=True)
    if not (plan.changes or plan.base or writes):
        return None, after, 0
    now = utc_now()
    fields = sorted(set(plan.changes) | ({"claims"} if writes else set()))
    if plan.existing is None:
        keys = name_keys(plan.changes.get("first_name"), plan.changes.get("last_name"), number)
        account = Account(
            number,
            **plan.changes,
            imported=plan.base,
            imported_at=now,
            exported_on=plan.file_date,
            # Never linked: in the campaign's index (chalicelib.campaign) until it links.
            awaiting_link=AWAITING_LINK,
            campaign_wave=NO_WAVE,
            name_prefix=keys.prefix,
            name_key=keys.key,
        )
        tx.put("account", account, condition=Account.nr_number.does_not_exist())
        event = audit_event(number, "account_imported", actor=actor)
    else:
        actions = [
            getattr(Account, name).set(value)
            if value is not None
            else getattr(Account, name).remove()
            for name, value in sorted(plan.changes.items())
        ]
        if plan.base:
            actions += [Account.imported.set(plan.base), Account.imported_at.set(now)]
        if plan.new_export_date:  # only with a write: re-running a file stays free
            actions.append(Account.exported_on.set(plan.new_export_date))
        actions += _name_key_actions(plan.existing, plan.changes)
        # The version condition (added by PynamoDB) refuses an account that changed since it
        # was read (a link, an email change, support); link fields are never in `actions`.
        tx.update("account", plan.existing, actions=actions)
        event = audit_event(
            number, "account_updated_by_import", actor=actor, fields=",".join(fields)
        )
    tx.audit(event)
    return tx, after, writes


def _name_key_actions(account: Account, changes: dict) -> list:
    """The console's name-search keys, kept with the names in the same write (and given to
    an older account without them whenever the import writes it anyway)."""
    keys = name_keys(
        changes.get("first_name", account.first_name),
        changes.get("last_name", account.last_name),
        account.nr_number,
    )
    if (keys.prefix, keys.key) == (account.name_prefix, account.name_key):
        return []
    return keys.actions(Account)


class StorageStopped(Exception):
    """DynamoDB kept refusing (throttled or unavailable) after STORAGE_RETRIES waits."""


T = TypeVar("T")


def _with_storage_retries(call: Callable[[], T], sleep: Callable[[float], None]) -> T:
    """`call()`, waiting and trying again while DynamoDB is throttled or unavailable.
    Other failures (no credentials, no permission) are raised at once: waiting won't help."""
    failures = 0
    while True:
        try:
            return call()
        except PynamoDBException as exc:
            if not is_transient(exc):
                raise
            failures += 1
            if failures > STORAGE_RETRIES:
                log_event("import_stopped", error=exc.__class__.__name__)
                raise StorageStopped(exc.__class__.__name__) from None
            sleep(min(2.0**failures, 10.0))


def _fresh(plan: AccountPlan) -> tuple[AccountPlan, dict[str, AddressClaim | None]]:
    """Read the account and its addresses again and plan the row once more."""
    account = store.get_account(plan.nr_number)
    fresh = plan_account(plan.row, account, plan.file_date)
    addresses = set(fresh.addresses) | set(account.normalized_emails() if account else ())
    if account is None and _removed(fresh):
        addresses |= set(_row_addresses(fresh))
    found = claims.read_many(addresses)
    return fresh, {address: found.get(address) for address in addresses}


def import_accounts(
    validation: Validation,
    *,
    actor: str = "import",
    dry_run: bool = False,
    exported_on: str | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ImportResult:
    """Sync the valid rows of `validation` into the tables. Idempotent.

    `exported_on` (YYYY-MM-DD): the day the registry produced the file. Each account
    remembers the newest export it was changed from; a row of an older export is not
    applied (a warning). Without it, rows are applied whatever their age (as before)."""
    sleep = sleep or clock.sleep
    issues = list(validation.issues)
    result = ImportResult(rows_read=validation.rows_read, dry_run=dry_run, exported_on=exported_on)
    rows = validation.rows

    def read_accounts() -> dict[str, Account]:
        return {
            a.nr_number: a
            for a in Account.batch_get([r.nr_number for r in rows], consistent_read=True)
        }

    try:
        existing = _with_storage_retries(read_accounts, sleep) if rows else {}
        plans = [plan_account(row, existing.get(row.nr_number), exported_on) for row in rows]
        addresses = (
            {a for plan in plans for a in plan.addresses}
            | {a for account in existing.values() for a in account.normalized_emails()}
            # A new removed account's addresses: marked if nobody holds them (claims.py).
            | {
                a
                for plan in plans
                if plan.existing is None and _removed(plan)
                for a in _row_addresses(plan)
            }
        )
        current = _with_storage_retries(lambda: claims.read_many(addresses), sleep)
    except StorageStopped:
        result.stopped = (
            "DynamoDB kept refusing reads (throttled or unavailable) before "
            "anything was written; nothing was written: re-run the import"
        )
        result.issues = list(validation.issues)
        result.rejected = validation.rejected
        log_event("accounts_imported", **result.summary())
        return result
    result.items_read = len(existing) + len(current)
    final = holders_after(plans, current)
    shared = shared_after(plans, current, final)
    outlook = Outlook(final, shared)
    result.shared_emails = sum(
        1 for plan_address in {a for p in plans for a in p.addresses} if shared.get(plan_address)
    )
    claim_state: dict[str, AddressClaim | None] = {a: current.get(a) for a in addresses}
    # Who "says" a value in a conflict: the file, when its date is known; else this run.
    stamp = (
        f"the registry's file of {exported_on}"
        if exported_on
        else f"this import (run on {utc_now().strftime('%Y-%m-%d')})"
    )

    for index, plan in enumerate(plans):
        if result.stopped:
            break
        if plan.older_than:
            result.older += 1
            issues.append(_older_issue(plan))
            continue
        for name, theirs, ours in plan.conflicts:
            issues.append(_conflict_issue(plan, name, theirs, ours, stamp))
        result.conflicts += len(plan.conflicts)
        for address in plan.addresses:
            if shared.get(address):
                issues.append(
                    Issue(
                        plan.row.row,
                        plan.nr_number,
                        WARNING,
                        _shared_warning(plan, address, final[address]),
                    )
                )
        outcome = _write(plan, claim_state, outlook, actor, dry_run, result, sleep)
        if outcome == "older":  # a newer export was imported while this one ran
            result.older += 1
            issues.append(_older_issue(plan))
        elif outcome == "changed":
            issues.append(
                Issue(
                    plan.row.row,
                    plan.nr_number,
                    REJECTED,
                    "account changed while importing (linked or edited at the "
                    "same moment) twice; nothing written for it: re-run the "
                    "import",
                )
            )
        elif outcome == "stopped":
            remaining = len(plans) - index
            result.stopped = (
                f"DynamoDB kept refusing writes (throttled or unavailable) at "
                f"line {plan.row.row}; {remaining} rows not written: re-run "
                "the import to finish (rows already written are skipped)"
            )
    issues.sort(key=lambda issue: (issue.row, issue.kind))
    result.issues = issues
    result.rejected = sum(1 for issue in issues if issue.kind == REJECTED)
    result.warnings = sum(1 for issue in issues if issue.kind == WARNING)
    log_event("accounts_imported", **result.summary())
    return result


def _write(
    plan: AccountPlan,
    claim_state: dict,
    outlook: Outlook,
    actor: str,
    dry_run: bool,
    result: ImportResult,
    sleep: Callable[[float], None],
) -> str:
    """Write one account; returns "written", "unchanged", "changed", "older" or "stopped"."""
    retried_fresh = False
    storage_failures = 0
    while True:
        tx, after, claim_writes = _transaction_for(plan, claim_state, outlook, actor)
        if tx is None:
            result.unchanged += 1
            return "unchanged"
        if dry_run:
            # As if committed: later rows see the claims this one leaves, so a dry run's
            # counts are the real run's (transactions: those it would commit).
            claim_state.update(after)
            result.transactions += 1
            _count(plan, result, claim_writes)
            return "written"
        try:
            tx.commit()
        except store.TransactionRefused:
            if retried_fresh:
                return "changed"
            # Someone changed the account or one of its addresses since we read them.
            retried_fresh = True
            try:
                plan_fresh, fresh_claims = _with_storage_retries(lambda: _fresh(plan), sleep)
            except StorageStopped:
                return "stopped"
            plan.changes, plan.base, plan.addresses = (
                plan_fresh.changes,
                plan_fresh.base,
                plan_fresh.addresses,
            )
            plan.existing = plan_fresh.existing
            claim_state.update(fresh_claims)
            if plan_fresh.older_than:
                plan.older_than = plan_fresh.older_than
                return "older"
            continue
        except PynamoDBException as exc:
            if not is_transient(exc):
                raise  # no credentials, no permission: waiting won't help
            storage_failures += 1
            if storage_failures > STORAGE_RETRIES:
                log_event("import_stopped", nr_number=plan.nr_number, error=exc.__class__.__name__)
                return "stopped"
            sleep(min(2.0**storage_failures, 10.0))
            continue
        claim_state.update(after)
        result.transactions += 1
        _count(plan, result, claim_writes)
        return "written"


def _count(plan: AccountPlan, result: ImportResult, claim_writes: int) -> None:
    result.claims_written += claim_writes
    if plan.existing is None:
        result.imported += 1
    else:
        result.updated += 1


def _slot(plan: AccountPlan, address: str) -> str:
    return "primary" if plan.addresses and plan.addresses[0] == address else "secondary"


def _shared_warning(plan: AccountPlan, address: str, holders: frozenset[str]) -> str:
    others = sorted(holders - {plan.nr_number})
    slot = _slot(plan, address)
    if others:
        return (
            f"{slot} email {address} is also on registry "
            f"account{'s' if len(others) > 1 else ''} {', '.join(others)}: it links none "
            "of them and gets no recovery code until the accounts are corrected and "
            "support clears it (manage.py find, clear-shared)"
        )
    return (
        f"{slot} email {address} was on several registry accounts (once-shared): it "
        "links nobody and gets no recovery code until support verifies the person and "
        "clears it (manage.py clear-shared)"
    )


def _older_issue(plan: AccountPlan) -> Issue:
    return Issue(
        plan.row.row,
        plan.nr_number,
        WARNING,
        f"not applied: this file (exported on {plan.file_date}) is older than the "
        f"export of {plan.older_than} already imported for this account",
    )


def _conflict_issue(
    plan: AccountPlan, name: str, theirs: object, ours: object, stamp: str
) -> Issue:
    marks = changed_here(plan.existing) if plan.existing else {}
    mark = marks.get(name)
    here = f"changed here on {mark.at[:10]} by {mark.by}" if mark else "changed here"
    return Issue(
        plan.row.row,
        plan.nr_number,
        CONFLICT,
        f"{name}: {stamp} says {theirs or '(none)'}; "
        f"this service has {ours or '(none)'} ({here}); nothing applied — "
        "the registry should take this service's value (manage.py export-changes), "
        "or support corrects it (manage.py set-email)",
    )


# --- the reject report -----------------------------------------------------------------------


def write_reject_report(path: str | Path, issues: list[Issue]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        write_rows(
            stream,
            REPORT_HEADER,
            ([issue.row, issue.nr_number, issue.kind, issue.reason] for issue in issues),
        )
