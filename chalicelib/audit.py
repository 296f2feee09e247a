"""Audit events: built here, written by the caller in the same transaction as the change."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from chalicelib import store
from chalicelib.logs import log_event
from chalicelib.models import AuditEvent, utc_now


def audit_event(
    nr_number: str,
    event: str,
    actor: str,
    *,
    export: bool = False,
    extra: Mapping[str, str] | None = None,
    **detail: str,
) -> AuditEvent:
    """An AuditEvent to add to a transaction; the sort key makes each one unique.

    `export=True` marks a change made here that the registry should take into its own
    records (an email or status change): `manage.py export-changes` finds it by day.
    `extra`: detail fields a caller gathered in a mapping (kept apart from `export`).
    """
    detail = {**(extra or {}), **detail}
    now = utc_now()
    at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return AuditEvent(
        nr_number=nr_number,
        at_event=f"{at}#{event}#{secrets.token_hex(4)}",
        event=event,
        actor=actor,
        detail={k: str(v) for k, v in detail.items()} or None,
        export_day=now.strftime("%Y-%m-%d") if export else None,
    )


def recent_events(nr_number: str, limit: int = 20) -> list[AuditEvent]:
    return list(AuditEvent.query(nr_number, scan_index_forward=False, limit=limit))


def record_committed(event: AuditEvent, **log_fields: Any) -> None:
    """Log an audit event once its transaction has committed (same name in both places)."""
    log_event(event.event, nr_number=event.nr_number, actor=event.actor, **log_fields)


def commit_with_audit(
    tx: store.Transaction, event: AuditEvent, refusal: Exception, **log_fields: Any
) -> None:
    """Commit `tx` with `event` as its audit record, and log the event once committed. A
    condition refusing the transaction means nothing was written: raise `refusal`."""
    tx.audit(event)
    try:
        tx.commit()
    except store.TransactionRefused:
        raise refusal from None
    record_committed(event, **log_fields)
