"""Support-desk operations behind `manage.py`: find, unlink, disable/enable, report data.

These are the cases the FAQ creates: "I signed in with the wrong Login.gov account" (unlink,
the person relinks at the next sign-in), "someone else is using my account" (disable, which
also ends the linked identity's sessions), "which email is on my record" (find).

Every change is one TransactWrite holding the change and its audit event, conditioned on
what support saw (the linked sub, the status) and on the account's version, so a change
racing a sign-in fails cleanly instead of undoing it. Functions return plain dicts (JSON-
ready); `manage.py` prints them.
"""
from __future__ import annotations

import html
import math
import re
import time
from collections import Counter
from datetime import datetime, timezone

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib import linking, sessions
from chalicelib.audit import audit_event, recent_events, record_committed
from chalicelib.emails import InvalidEmail, is_institutional, normalize_email
from chalicelib.models import Account, AuditEvent, Challenge, Claim, Flow, transaction

NR_NUMBER = re.compile(r"[0-9]{10}")
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
    if not NR_NUMBER.fullmatch(number):
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
    try:
        return Account.get(_check_number(nr_number), consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"no account {nr_number.strip()}") from None


def _event_view(event: AuditEvent) -> dict:
    return {
        "at": event.at_event.split("#", 1)[0],
        "event": event.event,
        "actor": event.actor,
        "detail": dict(event.detail.as_dict()) if event.detail else {},
    }


def _claim_holders(emails: list[str]) -> dict[str, str]:
    if not emails:
        return {}
    return {claim.claim.split("#", 1)[1]: claim.nr_number
            for claim in Claim.batch_get([Claim.email_key(e) for e in emails],
                                         consistent_read=True)}


def account_view(account: Account, *, events: int = RECENT_EVENTS) -> dict:
    """Everything support needs about one account, JSON-ready."""
    holders = _claim_holders(account.normalized_emails())

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
    if NR_NUMBER.fullmatch(text):
        return [account_view(_get_account(text))]
    if text.isdigit():
        raise Invalid("a registry number is exactly 10 digits")
    try:
        email = normalize_email(text)
    except InvalidEmail:
        raise Invalid("give a 10-digit registry number or an email address") from None
    try:
        claim = Claim.get(Claim.email_key(email), consistent_read=True)
    except DoesNotExist:
        claim = None
    if claim is not None:
        return [account_view(_get_account(claim.nr_number))]
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
    try:
        sub_claim = Claim.get(Claim.sub_key(sub), consistent_read=True)
    except DoesNotExist:
        sub_claim = None
    claim_removed = sub_claim is not None and sub_claim.nr_number == account.nr_number
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
    try:
        with transaction() as tx:
            tx.update(account, actions=[Account.status.set(status)],
                      condition=Account.status == previous)
            tx.save(event)
    except TransactWriteError:
        raise Refused("the account changed at the same moment; nothing was changed: "
                      "look again with `find`") from None
    record_committed(event, previous_status=previous)
    if status == "disabled" and account.linked_sub:
        result["sessions_ended"] = sessions.end_sessions_for_subject(account.linked_sub)
    return result


# --- report ---------------------------------------------------------------------------------

def build_report(now: float | None = None) -> dict:
    """Migration progress. Offline only: it scans accounts and flows (never run by the app)."""
    now = time.time() if now is None else now
    total = linked = institutional = institutional_linked = 0
    by_status: Counter[str] = Counter()
    by_role: Counter[str] = Counter()
    per_day: Counter[str] = Counter()
    attributes = ["nr_number", "status", "role", "primary_email_normalized", "linked_sub",
                  "linked_at"]
    for account in Account.scan(attributes_to_get=attributes):
        total += 1
        by_status[account.status] += 1
        by_role[account.role] += 1
        if account.linked_sub:
            linked += 1
        if account.linked_at:
            per_day[account.linked_at.astimezone(timezone.utc).strftime("%Y-%m-%d")] += 1
        if is_institutional(account.primary_email_normalized):
            institutional += 1
            institutional_linked += bool(account.linked_sub)
    # A scan of the flows table is acceptable here only: this is an offline report, and
    # challenges have no index by purpose. The service itself never scans.
    pending = sum(1 for _ in Challenge.scan(
        filter_condition=Challenge.purpose.startswith("email_change") & (Flow.expires_at > now),
        attributes_to_get=["flow_id", "kind"]))
    return {
        "generated_at": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "total": total,
        "linked": linked,
        "unlinked": total - linked,
        "by_status": dict(sorted(by_status.items())),
        "by_role": dict(sorted(by_role.items())),
        "institutional_primary": institutional,
        "institutional_primary_linked": institutional_linked,
        "pending_email_changes": pending,
        "links_per_day": dict(sorted(per_day.items())),
    }


def _table(title: str, rows: dict) -> str:
    cells = "".join(f"<tr><th scope=\"row\">{html.escape(str(k))}</th>"
                    f"<td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<h2>{html.escape(title)}</h2><table>{cells or '<tr><td>none</td></tr>'}</table>"


def _bar_chart(per_day: dict[str, int]) -> str:
    """An inline SVG bar chart of links per day (no script, no external assets)."""
    if not per_day:
        return "<p>No links yet.</p>"
    bar, gap, height, top, bottom, left = 18, 4, 200, 20, 70, 40
    peak = max(per_day.values())
    width = left + len(per_day) * (bar + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height + top + bottom}" viewBox="0 0 {width} {height + top + bottom}">',
             "<title>Accounts linked per day</title>",
             f'<line x1="{left}" y1="{top + height}" x2="{width}" y2="{top + height}" '
             'stroke="#444"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">'
             f'{peak}</text>',
             f'<text x="{left - 6}" y="{top + height}" text-anchor="end" font-size="11">0</text>']
    for i, (day, n) in enumerate(per_day.items()):
        x = left + gap + i * (bar + gap)
        h = max(1, math.ceil(height * n / peak)) if n else 0
        label = html.escape(day)
        parts.append(f'<rect x="{x}" y="{top + height - h}" width="{bar}" height="{h}" '
                     f'fill="#005ea2"><title>{label}: {int(n)}</title></rect>')
        parts.append(f'<text x="{x + bar / 2}" y="{top + height + 8}" font-size="10" '
                     f'transform="rotate(60 {x + bar / 2} {top + height + 8})">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_report_html(report: dict) -> str:
    """A self-contained page: inline CSS and SVG, every value escaped."""
    totals = {
        "Accounts": report["total"],
        "Linked to Login.gov": report["linked"],
        "Not linked yet": report["unlinked"],
        "Institutional (.gov/.mil/.edu) primary email": report["institutional_primary"],
        "… of which linked": report["institutional_primary_linked"],
        "Email changes pending": report["pending_email_changes"],
    }
    return "".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>NRCME Login.gov migration report</title>",
        "<style>body{font-family:sans-serif;margin:2em;color:#1b1b1b}"
        "table{border-collapse:collapse;margin-bottom:1em}"
        "th,td{border:1px solid #ccc;padding:.3em .8em;text-align:left}"
        "td{text-align:right}</style></head><body>",
        "<h1>NRCME Login.gov migration report</h1>",
        f"<p>Generated {html.escape(report['generated_at'])} (UTC).</p>",
        _table("Totals", totals),
        _table("By status", report["by_status"]),
        _table("By role", report["by_role"]),
        "<h2>Links per day</h2>",
        _bar_chart(report["links_per_day"]),
        _table("Links per day (table)", report["links_per_day"]),
        "</body></html>",
    ])
