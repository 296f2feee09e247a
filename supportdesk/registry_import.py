"""Import registry accounts from the registry's CSV export, validated by
`supportdesk.csv_validation`.

`import_accounts` compares the valid rows with the table and writes only what is new or
changed:
   - existing accounts are read with BatchGetItem (100 keys a request), and so are the
     `email#` claims the file needs;
   - new accounts, and claims they (or unchanged accounts missing a claim) need, go out
     through BatchWriteItem in FULL batches of 25 write requests, accounts first, mixing
     both tables in one request so that only the very last request can be short;
   - an existing account whose registry fields changed is updated in its own TransactWrite
     (the account on its version, claims with conditions, an audit event). It never
     touches the link fields (linked_sub, linked_at, legacy_username_retired) or
     last_reminder_at, so re-importing a file cannot undo a sign-in link;
   - once an account is linked, its emails belong to its owner (the email-change flow moves
     them); the file's emails for it are ignored, with a warning if they differ.

Contested emails: an address (normalized) listed for two or more accounts, in the file or
already claimed in the table by an account that keeps it, gets NO new `email#` claim, so
nobody links automatically by it (linking.link_by_verified_emails would otherwise pick one
of two people). The rows still import; each is reported as a warning. A claim an unlinked
account of this file already holds on a contested address is released (deleted, audited);
a linked account keeps its claim, because the claim is also what stops anyone else from
taking that address through an email change.

Known limit: BatchWriteItem cannot carry conditions. Puts of new accounts and claims rely
on the reads made moments before; an email change committed by the live service between
that read and the write could be overwritten. Imports are an operator action; run them in
a quiet hour once the service is live, and re-run: a re-run writes nothing it need not.
"""
from __future__ import annotations

import csv
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from chalicelib import store
from chalicelib.audit import audit_event
from chalicelib.logs import log_event
from chalicelib.models import Account, Claim
from supportdesk.csv_validation import (
    EMAIL_FIELDS,
    IMPORTED_FIELDS,
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

__all__ = ["ImportFileError", "ImportResult", "import_accounts", "validate_csv",
           "validate_file", "validate_text", "write_reject_report"]

REPORT_HEADER = ("row", "nr_number", "kind", "reason")
BATCH_WRITE_LIMIT = 25          # DynamoDB's BatchWriteItem maximum


class BatchWriteIncomplete(RuntimeError):
    """DynamoDB kept returning unprocessed items after every retry."""


@dataclass
class ImportResult:
    rows_read: int = 0
    imported: int = 0           # new accounts
    updated: int = 0            # existing accounts whose registry fields changed
    unchanged: int = 0
    rejected: int = 0           # rows not imported (validation, or a conflict while writing)
    contested_emails: int = 0   # distinct addresses that got no claim
    warnings: int = 0
    claims_written: int = 0
    claims_released: int = 0
    items_written: int = 0      # items sent through BatchWriteItem
    write_requests: int = 0     # BatchWriteItem calls (retries of unprocessed items included)
    transactions: int = 0       # TransactWriteItems calls (updates and claim releases)
    dry_run: bool = False
    issues: list[Issue] = field(default_factory=list)

    @property
    def batch_efficiency(self) -> float:
        """write_requests ÷ ceil(items_written ÷ 25): 1.0 means every batch but the last was full."""
        if not self.items_written:
            return 1.0 if not self.write_requests else math.inf
        return self.write_requests / math.ceil(self.items_written / BATCH_WRITE_LIMIT)

    def summary(self) -> dict:
        names = ("rows_read", "imported", "updated", "unchanged", "rejected",
                 "contested_emails", "warnings", "claims_written", "claims_released",
                 "items_written", "write_requests", "transactions", "dry_run")
        data = {name: getattr(self, name) for name in names}
        data["batch_efficiency"] = round(self.batch_efficiency, 4)
        return data


# --- writing ---------------------------------------------------------------------------------

class _Boto3Dispatch:
    """BatchWriteItem across tables through boto3's public client (PynamoDB's is per table)."""

    def __init__(self):
        import boto3

        self._client = boto3.client("dynamodb")

    def dispatch(self, operation: str, params: dict) -> dict:
        assert operation == "BatchWriteItem"
        return self._client.batch_write_item(**params)


class BatchWriter:
    """Puts through BatchWriteItem, 25 write requests per call across any tables.

    PynamoDB's Model.batch_write() is per table: with accounts and claims that leaves two
    short final batches, and it retries unprocessed items in short batches of their own.
    Here unprocessed items go back to the front of the queue, so every call except the
    last carries 25 items unless DynamoDB is actively throttling.
    """

    def __init__(self, connection=None, *, max_attempts: int = 8,
                 sleep: Callable[[float], None] = time.sleep):
        self._connection = connection
        self._pending: list[tuple[str, dict]] = []
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._failures = 0
        self.write_requests = 0
        self.items_written = 0

    @property
    def connection(self):
        if self._connection is None:
            self._connection = _Boto3Dispatch()
        return self._connection

    def put(self, item) -> None:
        table = type(item).Meta.table_name
        self._pending.append((table, {"PutRequest": {"Item": item.serialize()}}))
        while len(self._pending) >= BATCH_WRITE_LIMIT:
            self._send()

    def flush(self) -> None:
        while self._pending:
            self._send()

    def _send(self) -> None:
        batch = self._pending[:BATCH_WRITE_LIMIT]
        del self._pending[:BATCH_WRITE_LIMIT]
        request_items: dict[str, list[dict]] = {}  # a plain dict: botocore type-checks it
        for table, request in batch:
            request_items.setdefault(table, []).append(request)
        response = self.connection.dispatch("BatchWriteItem", {"RequestItems": request_items})
        self.write_requests += 1
        unprocessed = [(table, request)
                       for table, requests in (response.get("UnprocessedItems") or {}).items()
                       for request in requests]
        self.items_written += len(batch) - len(unprocessed)
        if unprocessed:
            self._failures += 1
            if self._failures >= self._max_attempts:
                raise BatchWriteIncomplete(
                    f"{len(unprocessed) + len(self._pending)} items still unwritten after "
                    f"{self._failures} throttled batches; re-run the import")
            self._pending[:0] = unprocessed
            self._sleep(min(0.05 * 2 ** self._failures, 5.0))
        else:
            self._failures = 0


@dataclass
class _Plan:
    """What one account needs, decided before anything is written."""

    row: AccountRow
    existing: Account | None
    effective_emails: list[str]             # normalized addresses the account will carry
    changes: dict                           # field -> new value (existing accounts)
    claims_to_put: list[str] = field(default_factory=list)      # normalized addresses
    claims_to_release: list[str] = field(default_factory=list)  # held by this account


def _existing_accounts(numbers: list[str]) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for account in Account.batch_get(numbers, consistent_read=True):  # 100 keys a request
        found[account.nr_number] = account
    return found


def _existing_claims(emails: Iterable[str]) -> dict[str, str]:
    """normalized email -> nr_number of the account holding its claim."""
    return store.holders_of(emails)


def _account_values(account: Account) -> dict:
    return {name: getattr(account, name) for name in IMPORTED_FIELDS + EMAIL_FIELDS}


def _plan_accounts(rows: list[AccountRow], existing: dict[str, Account],
                   issues: list[Issue]) -> list[_Plan]:
    plans = []
    for row in rows:
        account = existing.get(row.nr_number)
        if account is None:
            plans.append(_Plan(row, None, [e for e in (row.primary_email_normalized,
                                                       row.secondary_email_normalized) if e],
                               changes={}))
            continue
        wanted = row.values()
        current = _account_values(account)
        if account.linked_sub:
            # The owner manages a linked account's emails; the file's may be out of date.
            file_emails = {e for e in (row.primary_email_normalized,
                                       row.secondary_email_normalized) if e}
            if file_emails != set(account.normalized_emails()):
                issues.append(Issue(row.row, row.nr_number, WARNING,
                                    "account is linked: its emails are managed by its owner; "
                                    "the file's emails were not applied"))
            for name in EMAIL_FIELDS:
                wanted[name] = current[name]
        changes = {name: value for name, value in wanted.items() if current[name] != value}
        emails = [e for e in (wanted["primary_email_normalized"],
                              wanted["secondary_email_normalized"]) if e]
        plans.append(_Plan(row, account, emails, changes))
    return plans


def _plan_claims(plans: list[_Plan], issues: list[Issue]) -> tuple[set[str], dict[str, str]]:
    """Decide every claim. Returns (contested emails, existing claims)."""
    holders: dict[str, set[str]] = defaultdict(set)
    for plan in plans:
        for email in plan.effective_emails:
            holders[email].add(plan.row.nr_number)
    in_file = {plan.row.nr_number for plan in plans}
    owned_before: dict[str, set[str]] = defaultdict(set)  # nr_number -> emails it held
    for plan in plans:
        if plan.existing is not None:
            owned_before[plan.row.nr_number] = set(plan.existing.normalized_emails())
    claims = _existing_claims(set(holders) | {e for s in owned_before.values() for e in s})
    for email, holder in claims.items():
        if holder not in in_file:
            # An account this file does not mention keeps its claim: it counts as a holder.
            holders[email].add(holder)
    contested = {email for email, numbers in holders.items() if len(numbers) > 1}

    linked = {plan.row.nr_number for plan in plans
              if plan.existing is not None and plan.existing.linked_sub}
    for plan in plans:
        number = plan.row.nr_number
        for email in plan.effective_emails:
            holder = claims.get(email)
            if email in contested:
                others = sorted(holders[email] - {number})
                which = "primary" if email == _primary_of(plan) else "secondary"
                kept = holder == number and number in linked
                issues.append(Issue(
                    plan.row.row, number, WARNING,
                    f"{which} email is also listed for account(s) {', '.join(others)}: "
                    + ("this linked account keeps its existing claim"
                       if kept else "no email claim, so nobody links automatically by it")))
                if holder == number and not kept:
                    plan.claims_to_release.append(email)
            elif holder is None:
                plan.claims_to_put.append(email)
        # Addresses this account held a claim on but no longer carries.
        for email in owned_before.get(number, ()):
            if email not in plan.effective_emails and claims.get(email) == number:
                plan.claims_to_release.append(email)
    return contested, claims


def _primary_of(plan: _Plan) -> str:
    if plan.existing is not None and plan.existing.linked_sub:
        return plan.existing.primary_email_normalized
    return plan.row.primary_email_normalized


def _new_account(row: AccountRow) -> Account:
    return Account(row.nr_number, **row.values())


def _apply_existing(plan: _Plan, actor: str) -> None:
    """One transaction: the account's changed registry fields, its claims, an audit event."""
    account = plan.existing
    number = plan.row.nr_number
    details = {}
    if plan.changes:
        details["fields"] = ",".join(sorted(plan.changes))
    if plan.claims_to_release:
        details["claims_released"] = str(len(plan.claims_to_release))
    event = audit_event(number, "account_updated_by_import" if plan.changes
                        else "email_claim_released", actor=actor, **details)
    tx = store.Transaction()
    if plan.changes:
        actions = [getattr(Account, name).set(value) if value is not None
                   else getattr(Account, name).remove()
                   for name, value in sorted(plan.changes.items())]
        # The version condition (added by PynamoDB) refuses a concurrent link or edit;
        # the link fields are not in `actions`, so they stay as they are.
        tx.update("account", account, actions=actions)
    for email in plan.claims_to_release:
        tx.delete(f"release:{email}", Claim(Claim.email_key(email)),
                  condition=Claim.nr_number == number)
    if plan.changes:
        # Claims an updated account gains go in its transaction, with a condition.
        for email in plan.claims_to_put:
            tx.put(f"claim:{email}", Claim(Claim.email_key(email), nr_number=number),
                   condition=Claim.claim.does_not_exist())
    tx.audit(event)
    tx.commit()


def import_accounts(validation: Validation, *, actor: str = "import",
                    dry_run: bool = False, writer: BatchWriter | None = None) -> ImportResult:
    """Write the valid rows of `validation`. Idempotent: a re-run writes only differences."""
    issues = list(validation.issues)
    result = ImportResult(rows_read=validation.rows_read, dry_run=dry_run)
    rows = validation.rows
    existing = _existing_accounts([row.nr_number for row in rows]) if rows else {}
    plans = _plan_accounts(rows, existing, issues)
    contested, _ = _plan_claims(plans, issues)
    result.contested_emails = len(contested)

    writer = writer or BatchWriter()
    failed: set[str] = set()
    # Existing accounts first: their transactions release claims before new ones are put.
    for plan in plans:
        if plan.existing is None or not (plan.changes or plan.claims_to_release):
            continue
        if dry_run:
            continue
        try:
            _apply_existing(plan, actor)
            result.transactions += 1
        except store.TransactionRefused:
            failed.add(plan.row.nr_number)
            issues.append(Issue(plan.row.row, plan.row.nr_number, REJECTED,
                                "account changed while importing (linked or edited at the "
                                "same moment); nothing written for it: re-run the import"))
    # Then the batch: every new account, then every claim written outside a transaction.
    live = [plan for plan in plans if plan.row.nr_number not in failed]
    if not dry_run:
        for plan in live:
            if plan.existing is None:
                writer.put(_new_account(plan.row))
        for plan in live:
            if plan.existing is not None and plan.changes:
                continue  # its claims went in the account's transaction
            for email in plan.claims_to_put:
                writer.put(Claim(Claim.email_key(email), nr_number=plan.row.nr_number))
        writer.flush()

    for plan in live:
        if plan.existing is None:
            result.imported += 1
        elif plan.changes:
            result.updated += 1
        else:
            result.unchanged += 1
        result.claims_written += len(plan.claims_to_put)
        result.claims_released += len(plan.claims_to_release)
    result.items_written = writer.items_written
    result.write_requests = writer.write_requests
    issues.sort(key=lambda issue: (issue.row, issue.kind))
    result.issues = issues
    result.rejected = sum(1 for issue in issues if issue.kind == REJECTED)
    result.warnings = sum(1 for issue in issues if issue.kind == WARNING)
    log_event("accounts_imported", **{k: v for k, v in result.summary().items()})
    return result


# --- the reject report -----------------------------------------------------------------------

def _cell(value: object) -> str:
    """Keep a spreadsheet from running a cell as a formula (CSV injection)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_reject_report(path: str | Path, issues: list[Issue]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(REPORT_HEADER)
        for issue in issues:
            writer.writerow([issue.row, _cell(issue.nr_number), issue.kind, _cell(issue.reason)])
