"""The desk audit stream: every staff change, in the desk table (pk "audit"), written in the
same transaction as the change it records (see models.py for why not the audit table).

`DeskTransaction` is chalicelib's store.Transaction (named items, per-item refusal
reasons, a client request token, a retry of a committed write recognised as done) with
two additions the desk table needs: a condition check on an item with a sort key, and the
desk's own audit record.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from chalicelib import clock, store
from chalicelib.logs import log_event
from supportdesk.console.models import AUDIT_PK, DeskAuditEvent, DeskItem


@dataclass(frozen=True)
class Actor:
    """Who makes a change, as every audit record names them: "staff:<Login.gov sub>" for a
    staff member in the console (their email beside it), "ops:<name>" for manage.py."""

    name: str
    email: str | None = None

    @property
    def kind(self) -> str:
        return self.name.split(":", 1)[0]


class DeskTransaction(store.Transaction):
    def check_item(self, name: str, model_class, hash_key: str, range_key: str, condition) -> None:
        """A condition on an item with a sort key (store.Transaction.check takes a hash key)."""
        self._add(
            "condition_check", name, (model_class, hash_key, range_key), {"condition": condition}
        )

    def desk_audit(self, event: DeskAuditEvent) -> None:
        """The change's desk audit record, in the same transaction. Its key is unique, so if
        its own condition fails, an earlier attempt of this very transaction committed."""
        self.audit_name = f"audit:{event.event}"
        self.put(self.audit_name, event, condition=DeskItem.sk.does_not_exist())


def desk_event(event: str, actor: Actor, **detail: str | None) -> DeskAuditEvent:
    """A DeskAuditEvent to add to a DeskTransaction; the sort key orders and separates."""
    at = clock.utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values = {k: str(v) for k, v in detail.items() if v is not None}
    if actor.email:
        values["actor_email"] = actor.email
    return DeskAuditEvent(
        AUDIT_PK,
        f"{at}#{event}#{secrets.token_hex(4)}",
        event=event,
        actor=actor.name,
        detail=values or None,
    )


def commit_with_desk_audit(
    tx: DeskTransaction, event: DeskAuditEvent, refusal: Exception, **log_fields
) -> None:
    """Commit `tx` with `event` as its desk audit record; log the event once committed (never
    a raw email or sub: callers pass keyed stand-ins). A condition refusing the transaction
    means nothing was written: raise `refusal`."""
    tx.desk_audit(event)
    try:
        tx.commit()
    except store.TransactionRefused:
        raise refusal from None
    log_event(event.event, actor_kind=event.actor.split(":", 1)[0], **log_fields)


def recent_events(limit: int = 20) -> list[DeskAuditEvent]:
    """The newest desk audit records, newest first."""
    return list(
        DeskAuditEvent.query(AUDIT_PK, scan_index_forward=False, limit=limit, consistent_read=True)
    )
