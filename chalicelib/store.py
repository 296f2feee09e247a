"""Storage idioms, written once: account and link look-ups, the registry-number check, the
CSV header, and transactions that say which item refused and why.

- Who holds an address is chalicelib.claims (the rule) on top of this module.
- `Transaction` is one TransactWriteItems whose items have names. When DynamoDB cancels
  it, the reasons are read per named item (DynamoDB lists them in request order, which
  PynamoDB builds as condition checks, deletes, puts, updates), and sorted into:
  a refusal (a condition failed: a lost race, a stale read), a conflict (another
  transaction held an item; retried once here), or trouble (throttling, an outage:
  re-raised as the PynamoDB error, which becomes the storage page).
- Every transaction carries a client request token, and every account change puts its
  audit event on condition that the event does not exist yet. So a retry of a write that
  already committed (botocore retries after a lost answer) is recognised as done — by
  DynamoDB through the token, or by us when the audit event's condition is what failed —
  and never reported as a conflict.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import clients
from chalicelib.logs import log_event
from chalicelib.models import Account, AuditEvent, Claim

if TYPE_CHECKING:
    from pynamodb.attributes import Attribute
    from pynamodb.expressions.condition import Condition
    from pynamodb.expressions.update import Action
    from pynamodb.models import Model

NR_NUMBER = re.compile(r"[0-9]{10}")
# The registry export's columns (the CONTRACT): import, support desk, demo data and tests.
CSV_HEADER = (
    "nr_number",
    "first_name",
    "last_name",
    "role",
    "primary_email",
    "secondary_email",
    "legacy_username",
    "status",
)

CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"


def is_registry_number(text: str | None) -> bool:
    return text is not None and NR_NUMBER.fullmatch(text) is not None


# --- claims ------------------------------------------------------------------------------------


def account_linked_to(sub: str) -> str | None:
    """The registry number linked to this Login.gov identity, if any. One consistent read."""
    claim = identity_claim(sub)
    return claim.nr_number if claim else None


def identity_claim(sub: str) -> Claim | None:
    """The `sub#` item of this Login.gov identity, if any: the account it is linked to
    (`nr_number`, absent when not linked) and Login.gov's disabled/enabled marks, which it
    carries linked or not. One consistent read."""
    try:
        return Claim.get(Claim.sub_key(sub), consistent_read=True)
    except DoesNotExist:
        return None


def get_account(nr_number: str) -> Account | None:
    try:
        return Account.get(nr_number, consistent_read=True)
    except DoesNotExist:
        return None


# --- single writes ------------------------------------------------------------------------------


def condition_failed(exc: Exception) -> bool:
    """True when DynamoDB refused a write because its condition was false (a lost race,
    a replay, a used state), as opposed to throttling or an outage, which callers re-raise."""
    code = getattr(exc, "cause_response_code", None)
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        return any(
            r is not None and r.code == CONDITION_FAILED
            for r in (getattr(exc, "cancellation_reasons", None) or [])
        )
    return False


def as_read(attribute: Attribute[Any], value: object) -> Condition:
    """A condition: the attribute still holds the value read (or is still absent)."""
    return attribute.does_not_exist() if value is None else attribute == value


# --- transactions -------------------------------------------------------------------------------


class TransactionRefused(Exception):
    """DynamoDB cancelled the transaction because of its items, not because of trouble.

    `failed` maps each item's name to DynamoDB's reason (ConditionalCheckFailed, or
    TransactionConflict when another transaction held it). Nothing was written.
    """

    def __init__(self, failed: dict[str, str]):
        super().__init__(f"transaction refused: {failed}")
        self.failed = failed

    def refused(self, name: str) -> bool:
        """True when the named item's condition was false."""
        return self.failed.get(name) == CONDITION_FAILED

    @property
    def conflict_only(self) -> bool:
        return bool(self.failed) and all(
            code == TRANSACTION_CONFLICT for code in self.failed.values()
        )


_KIND_ORDER = ("condition_check", "delete", "save", "update")  # PynamoDB's request order


@dataclass
class Transaction:
    """Named items for one TransactWriteItems; `commit()` writes them all or none."""

    items: list[tuple[str, str, tuple, dict]] = field(default_factory=list)
    audit_name: str | None = None

    def put(self, name: str, item: Model, condition: Condition | None = None) -> None:
        self._add("save", name, (item,), {"condition": condition})

    def update(
        self,
        name: str,
        item: Model,
        actions: Sequence[Action],
        condition: Condition | None = None,
        *,
        add_version_condition: bool = True,
    ) -> None:
        self._add(
            "update",
            name,
            (item,),
            {
                "actions": tuple(actions),
                "condition": condition,
                "add_version_condition": add_version_condition,
            },
        )

    def delete(self, name: str, item: Model, condition: Condition | None = None) -> None:
        self._add("delete", name, (item,), {"condition": condition})

    def check(
        self, name: str, model_class: type[Model], hash_key: str, condition: Condition
    ) -> None:
        self._add("condition_check", name, (model_class, hash_key), {"condition": condition})

    def audit(self, event: AuditEvent) -> None:
        """The change's audit record, in the same transaction. Its key is unique, so if its
        own condition fails, an earlier attempt of this very transaction committed."""
        self.audit_name = f"audit:{event.event}"
        self.put(self.audit_name, event, condition=AuditEvent.at_event.does_not_exist())

    def _add(self, kind: str, name: str, args: tuple, kwargs: dict) -> None:
        if any(existing == name for _, existing, _, _ in self.items):
            raise ValueError(f"two items named {name!r}")
        self.items.append((kind, name, args, kwargs))

    def request_order(self) -> list[str]:
        """Item names in the order DynamoDB sees them (and lists cancellation reasons)."""
        return [name for kind in _KIND_ORDER for k, name, _, _ in self.items if k == kind]

    def commit(self, *, conflict_retries: int = 1) -> None:
        """Write every item or none. Raises TransactionRefused (conditions, conflicts) or
        the PynamoDB error for throttling and outages."""
        # Stable across botocore's own retries of this call: DynamoDB answers a retry of a
        # committed request with success instead of failing its conditions.
        token = str(uuid.uuid4())
        try:
            with TransactWrite(
                connection=clients.dynamodb_transactions(), client_request_token=token
            ) as tx:
                for kind, _, args, kwargs in self.items:
                    if "actions" in kwargs:  # PynamoDB appends the version action in place
                        kwargs = {**kwargs, "actions": list(kwargs["actions"])}
                    getattr(tx, kind)(*args, **kwargs)
        except TransactWriteError as exc:
            refused = self._refusal(exc)
            if refused is None:
                raise  # throttling, an outage, a malformed request: the storage page
            if self.audit_name and refused.refused(self.audit_name):
                log_event("transaction_already_committed", items=len(self.items))
                return
            if refused.conflict_only and conflict_retries > 0:
                # Another transaction held an item for a moment; DynamoDB says retry.
                return self.commit(conflict_retries=conflict_retries - 1)
            raise refused from None

    def _refusal(self, exc: TransactWriteError) -> TransactionRefused | None:
        if getattr(exc, "cause_response_code", None) != "TransactionCanceledException":
            return None
        names = self.request_order()
        failed = {}
        for index, reason in enumerate(exc.cancellation_reasons or []):
            if reason is None or reason.code in (None, "None"):
                continue
            if reason.code not in (CONDITION_FAILED, TRANSACTION_CONFLICT):
                return None  # throttled or invalid: trouble, not a refusal
            failed[names[index] if index < len(names) else f"#{index}"] = reason.code
        return TransactionRefused(failed) if failed else None
