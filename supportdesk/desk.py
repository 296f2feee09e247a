"""Support-desk operations behind `manage.py`: find, unlink, disable/enable.

These are the cases the FAQ creates: "I signed in with the wrong Login.gov account" (unlink,
the person relinks at the next sign-in), "someone else is using my account" (disable, which
also ends the linked identity's sessions), "which email is on my record" (find).

Every change is one TransactWrite holding the change and its audit event, conditioned on
what support saw (the linked sub, the status) and on the account's version, so a change
racing a sign-in fails cleanly instead of undoing it. Functions return plain dicts (JSON-
ready); `manage.py` prints them.
"""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib import linking, sessions, store
from chalicelib.audit import audit_event, recent_events, record_committed
from chalicelib.emails import InvalidEmail, is_institutional, normalize_email
from chalicelib.models import Account, AuditEvent

RECENT_EVENTS = 10
MAX_REASON_LENGTH = 500


class SupportError(Exception):
    """A support command could not do what was asked. exit_code: 1 refused/not found, 2 usage."""

    exit_code = 1


class NotFound(SupportError):
    exit_code = 1


class Refused(SupportError):
    exit_code = 1


class Invalid(SupportError):
    exit_code = 2


# --- helpers --------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _check_number(nr_number: str) -> str:
    number = (nr_number or "").strip()
    if not store.is_registry_number(number):
        raise Invalid("a registry number is exactly 10 digits")
    return number


def _check_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise Invalid("--reason is required: say why (it goes into the audit history)")
    if len(text) > MAX_REASON_LENGTH:
        raise Invalid(f"--reason is longer than {MAX_REASON_LENGTH} characters")
    return text


def _check_actor(actor: str | None) -> str:
    name = (actor or "").strip()
    if not name:
        raise Invalid("who is acting? set $USER or pass --actor")
    return f"support:{name}"


def _get_account(nr_number: str) -> Account:
    account = store.get_account(_check_number(nr_number))
    if account is None:
        raise NotFound(f"no account {nr_number.strip()}")
    return account


def _event_view(event: AuditEvent) -> dict:
    return {
        "at": event.at_event.split("#", 1)[0],
        "event": event.event,
        "actor": event.actor,
        "detail": dict(event.detail.as_dict()) if event.detail else {},
    }


def account_view(account: Account, *, events: int = RECENT_EVENTS) -> dict:
    """Everything support needs about one account, JSON-ready."""
    holders = store.holders_of(account.normalized_emails())

    def claim_state(email: str | None) -> str | None:
        if not email:
            return None
        holder = holders.get(email)
        if holder == account.nr_number:
            return "ok"
        if holder is None:
            return "none (contested or missing: no automatic linking by this email)"
        return f"held by {holder}"

    return {
        "nr_number": account.nr_number,
        "name": account.full_name,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "role": account.role,
        "status": account.status,
        "primary_email": account.primary_email,
        "primary_email_claim": claim_state(account.primary_email_normalized),
        "primary_email_institutional": is_institutional(account.primary_email_normalized),
        "secondary_email": account.secondary_email,
        "secondary_email_claim": claim_state(account.secondary_email_normalized),
        "linked": bool(account.linked_sub),
        # The raw sub: not a secret, and what Login.gov's support asks for to correlate.
        "linked_sub": account.linked_sub,
        "linked_at": _iso(account.linked_at),
        "linked_email": account.linked_email,
        "legacy_username": account.legacy_username,
        "legacy_username_retired": bool(account.legacy_username_retired),
        "last_reminder_at": _iso(account.last_reminder_at),
        "recent_events": [_event_view(e) for e in recent_events(account.nr_number, events)],
    }


# --- find -----------------------------------------------------------------------------------

def find(query: str, *, scan: bool = False) -> list[dict]:
    """Accounts for a registry number or an email (any case/spacing). Raises NotFound.

    By email, the claims table answers in one read. A contested address has no claim by
    design (see account_import); `scan=True` then searches every account's emails — a full
    table scan, for the support desk only, never for the service.
    """
    text = (query or "").strip()
    if store.is_registry_number(text):
        return [account_view(_get_account(text))]
    if text.isdigit():
        raise Invalid("a registry number is exactly 10 digits")
    try:
        email = normalize_email(text)
    except InvalidEmail:
        raise Invalid("give a 10-digit registry number or an email address") from None
    holder = store.holder_of(email)
    if holder is not None:
        return [account_view(_get_account(holder))]
    if not scan:
        raise NotFound("no account claims this email; it may be unknown or contested "
                       "(listed on several accounts): re-run with --scan to search all accounts")
    condition = (Account.primary_email_normalized == email) | \
        (Account.secondary_email_normalized == email)
    accounts = sorted(Account.scan(filter_condition=condition), key=lambda a: a.nr_number)
    if not accounts:
        raise NotFound("no account lists this email")
    return [account_view(account) for account in accounts]


# --- unlink ---------------------------------------------------------------------------------

def unlink(nr_number: str, *, reason: str, actor: str) -> dict:
    """Remove an account's Login.gov link; the person relinks at the next sign-in.

    One transaction: delete `sub#<sub>` (if it names this account), remove linked_sub and
    linked_at on condition linked_sub is still the sub support saw, and the audit event.
    The legacy username stays retired. Then the identity's sessions end.
    """
    reason, actor = _check_reason(reason), _check_actor(actor)
    account = _get_account(nr_number)
    sub = account.linked_sub
    if not sub:
        raise Refused(f"account {account.nr_number} is not linked")
    claim_removed = store.account_linked_to(sub) == account.nr_number
    try:
        linking.unlink_identity(account, sub, event="identity_unlinked", actor=actor,
                                remove_claim=claim_removed, reason=reason)
    except linking.UnlinkConflict:
        raise Refused("the account changed while unlinking (a sign-in or another support "
                      "action); nothing was changed: look again with `find`") from None
    ended = sessions.end_sessions_for_subject(sub)
    return {"nr_number": account.nr_number, "unlinked_sub": sub,
            "sub_claim_removed": claim_removed, "sessions_ended": ended,
            "legacy_username_retired": bool(account.legacy_username_retired)}


# --- disable / enable -----------------------------------------------------------------------

def set_status(nr_number: str, status: str, *, reason: str, actor: str) -> dict:
    """Disable or enable an account: status and audit event in one transaction.

    Disabling ends the sessions of the linked identity. A removed account is the registry's
    decision: it is neither disabled nor enabled here (re-import it with status active).
    """
    if status not in ("active", "disabled"):
        raise Invalid("status must be active or disabled")
    reason, actor = _check_reason(reason), _check_actor(actor)
    account = _get_account(nr_number)
    previous = account.status
    if previous == "removed":
        raise Refused(f"account {account.nr_number} is removed by the registry; "
                      "support does not change it")
    result = {"nr_number": account.nr_number, "status": status, "previous_status": previous,
              "changed": previous != status, "sessions_ended": 0}
    if previous == status:
        return result
    event = audit_event(account.nr_number,
                        "account_disabled" if status == "disabled" else "account_enabled",
                        actor=actor, reason=reason, previous_status=previous)
    tx = store.Transaction()
    tx.update("account", account, actions=[Account.status.set(status)],
              condition=Account.status == previous)
    tx.audit(event)
    try:
        tx.commit()
    except store.TransactionRefused:
        raise Refused("the account changed at the same moment; nothing was changed: "
                      "look again with `find`") from None
    record_committed(event, previous_status=previous)
    if status == "disabled" and account.linked_sub:
        result["sessions_ended"] = sessions.end_sessions_for_subject(account.linked_sub)
    return result
