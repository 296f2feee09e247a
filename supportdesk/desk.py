"""Support-desk operations behind `manage.py` and the support console: find, unlink (and
lift a bar), end sessions, disable and enable, correct an email, clear a once-shared
address, export changes for the registry.

These are the cases the FAQ creates: "I lost my Login.gov account" (unlink, lost account),
"someone else's Login.gov account is linked to my record" (unlink, not the owner: that
identity is barred from the account), "someone else is using my account" (disable),
"I no longer read my registry email" (set-email after verifying the person), "which email is
on my record" (find).

One implementation for both doors. Every change takes its actor (`Actor`: "support:<user>"
from manage.py, "staff:<Login.gov sub>" with the staff member's email and role from the
console), a reason, and a ticket reference (required from the console, recorded when
manage.py is given one), and is one transaction holding the change and its audit event
(actor, ticket, reason), conditioned on what support saw and on the account's version, so a
change racing a sign-in fails cleanly instead of undoing it. Each change has a `preview_*`
that runs the same reads and checks and says what the change would do, with a `seen` token;
given that token back, the change refuses (`Stale`) when the account changed in between,
so a confirmation page is never acted on after the account moved under it. A change made
here makes the field this service's (chalicelib.field_ownership): no registry import undoes
it. Functions return plain dicts (JSON-ready); `manage.py` prints them, the console renders
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib import claims, clock, linking, notices, sessions, store
from chalicelib.audit import audit_event, commit_with_audit, recent_events
from chalicelib.emails import (
    InvalidEmail,
    is_institutional,
    normalize_email,
    try_normalize_email,
)
from chalicelib.field_ownership import effective_status, mark_changed_here
from chalicelib.logs import keyed_hash, log_event
from chalicelib.models import Account, AuditEvent, Claim
from supportdesk import aws_trouble

RECENT_EVENTS = 10
MAX_REASON_LENGTH = 500
MAX_TICKET_LENGTH = 64
UNLINK_MODES = ("lost-account", "not-owner")
# How far back a follow-up retry looks for the change it finishes (the account's events).
FOLLOW_UP_EVENTS = 20


class SupportError(Exception):
    """A support command could not do what was asked. exit_code: 1 refused/not found, 2 usage."""

    exit_code = 1


class NotFound(SupportError):
    exit_code = 1


class Refused(SupportError):
    exit_code = 1


class Stale(Refused):
    """The account (or the address) changed since the preview the change was confirmed on:
    nothing was changed; look again."""


class Invalid(SupportError):
    exit_code = 2


# --- who acts, and why ----------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who makes a change. `name` is the audit record's actor, which its log line repeats:
    "support:<user>" for manage.py, "staff:<Login.gov sub>" for a console staff member (a
    sub, never an email: log lines hold no address). A staff member's email and role go into
    the audit record's detail, beside the ticket and the reason."""

    name: str
    email: str | None = None
    role: str | None = None

    @property
    def from_console(self) -> bool:
        return self.name.startswith("staff:")

    def detail(self) -> dict[str, str]:
        return {k: v for k, v in (("actor_email", self.email), ("actor_role", self.role)) if v}


def staff_actor(sub: str, email: str, role: str) -> Actor:
    """A console staff member, as every account's audit trail names them."""
    return Actor(f"staff:{sub}", email, role)


def _check_actor(actor: str | Actor | None) -> Actor:
    if isinstance(actor, Actor):
        if not actor.from_console or not actor.name.removeprefix("staff:").strip():
            raise Invalid("a console actor is staff:<Login.gov sub>")
        return actor
    name = (actor or "").strip()
    if not name:
        raise Invalid("who is acting? set $USER or pass --actor")
    return Actor(f"support:{name}")


def _check_reason(reason: str | None) -> str:
    # Shown escaped wherever it is shown (supportdesk.safe_text): kept as typed, in one line.
    text = " ".join((reason or "").split())
    if not text:
        raise Invalid("--reason is required: say why (it goes into the audit history)")
    if len(text) > MAX_REASON_LENGTH:
        raise Invalid(f"--reason is longer than {MAX_REASON_LENGTH} characters")
    return text


def check_ticket(ticket: str | None, actor: Actor) -> str | None:
    """The ticket reference: required from the console (every change answers a ticket),
    optional from manage.py (ops' own runs and make run's corrections have none), recorded
    whenever given. One line of visible characters, at most MAX_TICKET_LENGTH."""
    text = " ".join((ticket or "").split())
    if not text:
        if actor.from_console:
            raise Invalid("a ticket reference is required (the desk's ticket for this case)")
        return None
    if len(text) > MAX_TICKET_LENGTH:
        raise Invalid(f"a ticket reference is at most {MAX_TICKET_LENGTH} characters")
    # A reference is looked up, not read: control, bidirectional and invisible characters
    # would make two references look alike or disguise one (refused, not escaped).
    if not text.isprintable():
        raise Invalid("a ticket reference holds only visible characters")
    return text


def _why(actor: Actor, ticket: str | None, reason: str) -> dict[str, str]:
    """What the audit record keeps beside its actor: the reason, the ticket, and a staff
    member's email and role."""
    return {"reason": reason, **({"ticket": ticket} if ticket else {}), **actor.detail()}


def _checked_why(
    actor: str | Actor | None, ticket: str | None, reason: str | None
) -> tuple[Actor, dict[str, str]]:
    reason = _check_reason(reason)
    who = _check_actor(actor)
    return who, _why(who, check_ticket(ticket, who), reason)


# --- helpers --------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _check_number(nr_number: str) -> str:
    number = (nr_number or "").strip()
    if not store.is_registry_number(number):
        raise Invalid("a registry number is exactly 10 digits")
    return number


def _get_account(nr_number: str) -> Account:
    account = store.get_account(_check_number(nr_number))
    if account is None:
        raise NotFound(f"no account {nr_number.strip()}")
    return account


def _who(account: Account) -> dict:
    """Name and primary email, shown with every confirmation so a wrong number is noticed."""
    return {
        "nr_number": account.nr_number,
        "name": account.full_name,
        "primary_email": account.primary_email,
    }


def _seen(account: Account, claim: claims.AddressClaim | None = None) -> str:
    """What a preview saw, as a token: the account's version (every account write moves
    it), and the address claim's revision when the change is about an address."""
    token = f"v{account.version}"
    return token + (f".r{claim.revision}" if claim is not None else "")


def _check_seen(preview: dict, seen: str | None) -> None:
    if seen is not None and seen != preview["seen"]:
        # Acting on a confirmation page the account has moved past would undo or double
        # what happened meanwhile (a sign-in, an import, another desk change).
        raise Stale(
            f"account {preview['nr_number']} changed since the confirmation was shown (a "
            "sign-in, an import or another desk change); nothing was changed: look at it "
            "again and start over"
        )


def _event_view(event: AuditEvent) -> dict:
    return {
        "at": event.at_event.split("#", 1)[0],
        "event": event.event,
        "actor": event.actor,
        "detail": dict(event.detail.as_dict()) if event.detail else {},
    }


def claim_state(claim: claims.AddressClaim | None, nr_number: str, removed: bool = False) -> str:
    """How one address stands for one account, in the desk's words."""
    if removed and (claim is None or not claim.names(nr_number)):
        return "removed: holds no address (free for other accounts; back if re-activated)"
    if claim is None or not claim.names(nr_number):
        others = f" (claim names {', '.join(sorted(claim.holders))})" if claim else ""
        return "MISSING: no claim names this account" + others
    if claim.contested:
        others = ", ".join(sorted(claim.holders - {nr_number}))
        return f"shared with {others}: links nobody, gets no recovery code"
    if claim.once_shared:
        return "once-shared: mail only; no link or code until `clear-shared`"
    return "ok"


def account_view(account: Account, *, events: int = RECENT_EVENTS) -> dict:
    """Everything support needs about one account, JSON-ready."""
    found = claims.read_many(account.normalized_emails())

    def state(email: str | None) -> str | None:
        return (
            claim_state(found.get(email), account.nr_number, account.status == "removed")
            if email
            else None
        )

    marks = account.changed_here.as_dict() if account.changed_here else {}
    return {
        "nr_number": account.nr_number,
        "name": account.full_name,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "role": account.role,
        "status": account.status,
        "support_hold": bool(account.support_hold),
        "registry_status": (account.imported.as_dict().get("status") if account.imported else None),
        "primary_email": account.primary_email,
        "primary_email_claim": state(account.primary_email_normalized),
        "primary_email_institutional": is_institutional(account.primary_email_normalized),
        "secondary_email": account.secondary_email,
        "secondary_email_claim": state(account.secondary_email_normalized),
        "changed_here": {
            name: f"{mark.get('at', '')} by {mark.get('by', '')}"
            for name, mark in sorted(marks.items())
            if isinstance(mark, dict)
        },
        "linked": bool(account.linked_sub),
        # The raw sub: not a secret, and what Login.gov's support asks for to correlate.
        "linked_sub": account.linked_sub,
        "linked_at": _iso(account.linked_at),
        "linked_email": account.linked_email,
        # Login.gov disabled the linked identity (account-disabled, not enabled since).
        "login_gov_disabled": bool(account.login_gov_disabled),
        "barred_subs": sorted(account.barred_subs or ()),
        "legacy_username": account.legacy_username,
        "legacy_username_retired": bool(account.legacy_username_retired),
        "last_reminder_at": _iso(account.last_reminder_at),
        "recent_events": [_event_view(e) for e in recent_events(account.nr_number, events)],
    }


T = TypeVar("T")


def _after_commit(
    result: dict, step: str, command: str, run: Callable[[], T], **about: str
) -> T | None:
    """Run a step that follows a committed change (ending sessions). If AWS fails it, the
    result says so — the step, why, and the desk command that does it (`command`, safe to
    run again; the console's retry button does the same) — and the change is still reported
    as made: a desk told "nothing was written" would run it again or escalate a change that
    is done. None when it failed."""
    try:
        return run()
    except (PynamoDBException, BotoCoreError, ClientError) as exc:
        result.setdefault("follow_up_failed", []).append(
            {"step": step, "error": aws_trouble.cause(exc), "command": command, **about}
        )
        return None


def _end_sessions_after(result: dict, sub: str) -> None:
    result["sessions_ended"] = _after_commit(
        result,
        "end-sessions",
        f"end-sessions {sub}",
        lambda: sessions.end_sessions_for_subject(sub),
        sub=sub,  # what the console's retry button sends back
    )


def end_sessions(sub: str) -> dict:
    """End every session of one Login.gov identity (idempotent: run it again at will)."""
    subject = (sub or "").strip()
    if not subject:
        raise Invalid("give the Login.gov sub whose sessions to end")
    ended = sessions.end_sessions_for_subject(subject)
    log_event("sessions_ended_by_support", subject=keyed_hash(subject), ended=ended)
    return {"sub": subject, "sessions_ended": ended}


# --- find -----------------------------------------------------------------------------------


def find(query: str, *, scan: bool = False) -> list[dict]:
    """Accounts for a registry number or an email (any case/spacing). Raises NotFound.

    By email, the address's claim answers in one read, shared addresses included (it lists
    every holder). `scan=True` also searches every account's emails — a full table scan, for
    the desk only: it finds an address whose claim is missing (which the invariants forbid).
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
    claim = claims.read(email)
    numbers = set(claim.holders) if claim else set()
    if scan:
        condition = (Account.primary_email_normalized == email) | (
            Account.secondary_email_normalized == email
        )
        numbers |= {a.nr_number for a in Account.scan(filter_condition=condition)}
    if not numbers:
        raise NotFound(
            "no account lists this email"
            if scan
            else "no account lists this email (a removed account holds no address: "
            "`find --scan` also searches every account's addresses)"
        )
    return [account_view(_get_account(n)) for n in sorted(numbers)]


# --- unlink, and bars -----------------------------------------------------------------------


@dataclass
class _Unlink:
    account: Account
    sub: str
    identity: Claim | None
    preview: dict


def _plan_unlink(nr_number: str, mode: str) -> _Unlink:
    if mode not in UNLINK_MODES:
        raise Invalid(f"--mode must be one of {', '.join(UNLINK_MODES)}")
    account = _get_account(nr_number)
    sub = account.linked_sub
    if not sub:
        raise Refused(f"account {account.nr_number} is not linked")
    identity = store.identity_claim(sub)
    preview = {
        **_who(account),
        "seen": _seen(account),
        "mode": mode,
        "sub": sub,
        "linked_email": account.linked_email,
        "linked_at": _iso(account.linked_at),
        "barred": mode == "not-owner",
        "login_gov_disabled": bool(identity and identity.disabled),
    }
    return _Unlink(account, sub, identity, preview)


def preview_unlink(nr_number: str, mode: str) -> dict:
    """What `unlink` would do (nothing is changed): the identity, the mode, its `seen`."""
    return _plan_unlink(nr_number, mode).preview


def unlink(
    nr_number: str,
    *,
    reason: str,
    actor: str | Actor,
    mode: str,
    ticket: str | None = None,
    seen: str | None = None,
) -> dict:
    """Remove an account's Login.gov link; then end that identity's sessions.

    mode "lost-account": the person lost their Login.gov account; they link again with a
    new one. mode "not-owner": the linked identity is not the account's owner; it is barred
    from this account (by any route) until support lifts the bar. One transaction: the
    `sub#` claim (if it names this account), the link, the bar, the audit event. Either way
    Login.gov's disabled mark stays with the identity (`login_gov_disabled` in the result):
    a disabled identity links nowhere until Login.gov enables it.
    """
    if mode not in UNLINK_MODES:
        raise Invalid(f"--mode must be one of {', '.join(UNLINK_MODES)}")
    who, why = _checked_why(actor, ticket, reason)
    plan = _plan_unlink(nr_number, mode)
    _check_seen(plan.preview, seen)
    account, sub, identity = plan.account, plan.sub, plan.identity
    claim_removed = identity is not None and identity.nr_number == account.nr_number
    try:
        linking.unlink_identity(
            account,
            sub,
            identity,
            event="identity_unlinked",
            actor=who.name,
            bar=mode == "not-owner",
            mode=mode,
            **why,
        )
    except linking.UnlinkConflict:
        raise Refused(
            "the account changed while unlinking (a sign-in or another support "
            "action); nothing was changed: look again with `find`"
        ) from None
    result = {
        **_who(account),
        "unlinked_sub": sub,
        "mode": mode,
        "barred": mode == "not-owner",
        "sub_claim_removed": claim_removed,
        "login_gov_disabled": bool(identity and identity.disabled),
        "legacy_username_retired": bool(account.legacy_username_retired),
        "ticket": why.get("ticket"),
    }
    _end_sessions_after(result, sub)
    return result


def _plan_lift_bar(nr_number: str, sub: str | None) -> tuple[Account, str, dict]:
    account = _get_account(nr_number)
    subject = (sub or "").strip()
    if not subject or subject not in (account.barred_subs or ()):
        raise Refused(f"Login.gov sub {subject} is not barred from account {account.nr_number}")
    return account, subject, {**_who(account), "seen": _seen(account), "sub": subject}


def preview_lift_bar(nr_number: str, sub: str | None) -> dict:
    return _plan_lift_bar(nr_number, sub)[2]


def lift_bar(
    nr_number: str,
    sub: str,
    *,
    reason: str,
    actor: str | Actor,
    ticket: str | None = None,
    seen: str | None = None,
) -> dict:
    """Let a barred identity link to the account again (supervisors only, in the console)."""
    who, why = _checked_why(actor, ticket, reason)
    account, subject, preview = _plan_lift_bar(nr_number, sub)
    _check_seen(preview, seen)
    try:
        linking.lift_bar(account, subject, actor=who.name, **why)
    except linking.UnlinkConflict:
        raise Refused("the account changed at the same moment; nothing was changed") from None
    return {**_who(account), "bar_lifted_for": subject, "ticket": why.get("ticket")}


# --- ending the linked identity's sessions, audited (the console) ------------------------------


def _plan_end_sessions(nr_number: str) -> tuple[Account, str, dict]:
    account = _get_account(nr_number)
    sub = account.linked_sub
    if not sub:
        raise Refused(f"account {account.nr_number} is not linked: no sessions to end")
    return account, sub, {**_who(account), "seen": _seen(account), "sub": sub}


def preview_end_account_sessions(nr_number: str) -> dict:
    return _plan_end_sessions(nr_number)[2]


def end_account_sessions(
    nr_number: str,
    *,
    reason: str,
    actor: str | Actor,
    ticket: str | None = None,
    seen: str | None = None,
) -> dict:
    """End the sessions of the identity linked to an account, audited on the account.

    The audit record commits first, in one transaction with a check that the account is
    still linked to that identity (so the record never names sessions of an identity that
    was unlinked meanwhile); ending the sessions follows (many items: not one transaction)
    and is safe to repeat: a failure there is a follow-up, like after unlink. manage.py's
    `end-sessions SUB` is that follow-up, unaudited as before."""
    who, why = _checked_why(actor, ticket, reason)
    account, sub, preview = _plan_end_sessions(nr_number)
    _check_seen(preview, seen)
    tx = store.Transaction()
    tx.check("account", Account, account.nr_number, condition=Account.linked_sub == sub)
    commit_with_audit(
        tx,
        audit_event(
            account.nr_number,
            "sessions_ended_by_support",
            actor=who.name,
            export=False,
            subject=keyed_hash(sub) or "",
            extra=why,
        ),
        Stale(f"account {account.nr_number} was unlinked meanwhile; nothing was changed"),
        subject=keyed_hash(sub),
    )
    result = {**_who(account), "sub": sub, "ticket": why.get("ticket")}
    _end_sessions_after(result, sub)
    return result


def retry_end_sessions(nr_number: str, sub: str | None, *, actor: str | Actor) -> dict:
    """The console's retry of a failed "end sessions" follow-up: for an identity this
    account is linked to, bars, or was unlinked from lately (its recent audit events), so a
    forged form cannot sign out an unrelated identity."""
    who = _check_actor(actor)
    account = _get_account(nr_number)
    subject = (sub or "").strip()
    related = {account.linked_sub, *(account.barred_subs or ())}
    if subject not in related:
        hashed = keyed_hash(subject) if subject else None
        unlinked = {
            (e.detail.as_dict() if e.detail else {}).get("subject")
            for e in recent_events(account.nr_number, FOLLOW_UP_EVENTS)
            if e.event == "identity_unlinked"
        }
        if not subject or hashed not in unlinked:
            raise Refused(
                f"that Login.gov identity is not linked to, barred from or lately unlinked "
                f"from account {account.nr_number}: nothing to end here"
            )
    ended = sessions.end_sessions_for_subject(subject)
    log_event(
        "sessions_ended_by_support",
        subject=keyed_hash(subject),
        ended=ended,
        nr_number=account.nr_number,
        actor=who.name,
    )
    return {**_who(account), "sub": subject, "sessions_ended": ended}


# --- disable / enable -----------------------------------------------------------------------


def _plan_status(nr_number: str, status: str) -> tuple[Account, dict]:
    if status not in ("active", "disabled"):
        raise Invalid("status must be active or disabled")
    account = _get_account(nr_number)
    previous = account.status
    if previous == "removed":
        raise Refused(
            f"account {account.nr_number} is removed by the registry; support does not change it"
        )
    hold = status == "disabled"
    had_hold = bool(account.support_hold)
    registry_status = (
        account.imported.as_dict().get("status", "active") if account.imported else previous
    )
    if not hold and not had_hold and registry_status == "disabled":
        raise Refused(
            f"account {account.nr_number} is disabled because the registry says "
            "disabled; support has no hold to lift (the registry re-activates it "
            "in its export)"
        )
    preview = {
        **_who(account),
        "seen": _seen(account),
        "status": effective_status(registry_status, hold),
        "previous_status": previous,
        "changed": had_hold != hold,
        "support_hold": hold,
        "previous_support_hold": had_hold,
        "registry_status": registry_status,
        "linked_sub": account.linked_sub,
    }
    return account, preview


def preview_set_status(nr_number: str, status: str) -> dict:
    return _plan_status(nr_number, status)[1]


def set_status(
    nr_number: str,
    status: str,
    *,
    reason: str,
    actor: str | Actor,
    ticket: str | None = None,
    seen: str | None = None,
) -> dict:
    """Disable (put support's hold on) or enable (lift it): one transaction with its audit.

    The hold is support's own, a field of its own (`support_hold`), never the registry's
    status: a registry import never lifts it, and `export-changes` hands it to the
    registry as `support_hold`, so the registry never records our hold as its "disabled"
    (which no `enable` could then undo). Enabling lifts the hold only; the account is then
    what the registry says. `enable` on an account that only the registry disabled is
    refused: there is nothing of support's to lift. A removed account is the registry's
    decision: support changes nothing there. Disabling ends the linked identity's sessions
    (again, when the hold was already on: harmless, and it finishes an interrupted run).
    """
    if status not in ("active", "disabled"):
        raise Invalid("status must be active or disabled")
    who, why = _checked_why(actor, ticket, reason)
    account, preview = _plan_status(nr_number, status)
    _check_seen(preview, seen)
    previous, hold, new_status = (
        preview["previous_status"],
        preview["support_hold"],
        preview["status"],
    )
    result = {k: v for k, v in preview.items() if k not in ("seen", "linked_sub")}
    result.update(sessions_ended=0, ticket=why.get("ticket"))
    if result["changed"]:
        event = audit_event(
            account.nr_number,
            "account_disabled" if hold else "account_enabled",
            actor=who.name,
            export=True,
            previous_status=previous,
            status=new_status,
            fields="support_hold",
            hold="on" if hold else "off",
            extra=why,
        )
        tx = store.Transaction()
        tx.update(
            "account",
            account,
            actions=[
                Account.status.set(new_status),
                Account.support_hold.set(hold),
                mark_changed_here(account, ["support_hold"], who.name),
            ],
            condition=Account.status == previous,
        )
        commit_with_audit(
            tx,
            event,
            Refused(
                "the account changed at the same moment; nothing "
                "was changed: look again with `find`"
            ),
            previous_status=previous,
        )
    if hold and account.linked_sub:
        _end_sessions_after(result, account.linked_sub)
    return result


# --- email corrections and shared addresses ---------------------------------------------------


@dataclass
class _EmailChange:
    account: Account
    slot: str
    field_name: str
    address: str | None
    normalized: str | None
    old_address: str | None
    old_normalized: str | None
    rekey: bool
    found: dict
    preview: dict


def _plan_set_email(nr_number: str, slot: str, address: str | None) -> _EmailChange:
    if slot not in ("primary", "secondary"):
        raise Invalid("choose --primary or --secondary")
    account = _get_account(nr_number)
    if account.status == "removed":
        # A removed account holds no address: the registry re-activates it first.
        raise Refused(
            f"account {account.nr_number} is removed by the registry; its "
            "addresses are free and support does not change them"
        )
    normalized = None
    if address is not None:
        try:
            normalized = normalize_email(address)
        except InvalidEmail:
            raise Invalid("not a usable email address") from None
        address = address.strip()
    elif slot == "primary":
        raise Invalid("the primary email cannot be removed")
    field_name = f"{slot}_email"
    old_address = getattr(account, field_name)
    old_normalized = getattr(account, f"{field_name}_normalized")
    other = (
        account.secondary_email_normalized
        if slot == "primary"
        else account.primary_email_normalized
    )
    if normalized is not None and normalized == other:
        raise Refused(
            f"{address} is already this account's other address: use a swap "
            "(the person can do it on the account page)"
        )
    if normalized is None and old_normalized is None:
        raise Refused(
            f"there is no secondary email on account {account.nr_number}; nothing to remove"
        )
    if normalized == old_normalized:
        raise Refused(f"the {slot} email is already {old_address}")
    rekey = normalized is not None and try_normalize_email(old_address) == normalized
    found = claims.read_many([a for a in (normalized, old_normalized) if a])
    new_claim = found.get(normalized) if normalized else None
    if new_claim is not None and not new_claim.names(account.nr_number):
        holders = ", ".join(sorted(new_claim.holders))
        raise Refused(
            f"{address} is on another registry account ({holders}): correct that account first"
        )
    new = old_address if rekey else address
    preview = {
        **_who(account),
        "seen": _seen(account),
        "field": field_name,
        "old": old_address,
        "new": new,
        "rekeyed": rekey,
        "notify": [] if rekey else [to for to, _ in _notices_of(account, slot, old_address, new)],
    }
    return _EmailChange(
        account, slot, field_name, address, normalized, old_address, old_normalized, rekey,
        found, preview,
    )  # fmt: skip


def preview_set_email(nr_number: str, *, slot: str, address: str | None) -> dict:
    return _plan_set_email(nr_number, slot, address).preview


def set_email(
    nr_number: str,
    *,
    slot: str,
    address: str | None,
    reason: str,
    actor: str | Actor,
    ticket: str | None = None,
    seen: str | None = None,
) -> dict:
    """Support corrects the primary or secondary address (None removes the secondary) after
    verifying the person by its usual process. The field is then owned here.

    The replaced address hears of it as after a person's own change (and the primary too,
    when the secondary changes): a wrong correction is noticed by the owner. Giving the
    address the account already has, whose stored key an older normalization rule made
    (`check-email-keys`), re-keys it: the claim moves to today's key, the address and its
    owner are unchanged, so nobody is told, nothing is exported and the field stays the
    registry's."""
    if slot not in ("primary", "secondary"):
        raise Invalid("choose --primary or --secondary")
    who, why = _checked_why(actor, ticket, reason)
    plan = _plan_set_email(nr_number, slot, address)
    _check_seen(plan.preview, seen)
    account, field_name, normalized = plan.account, plan.field_name, plan.normalized
    old_address, old_normalized, rekey = plan.old_address, plan.old_normalized, plan.rekey
    address = plan.preview["new"]  # a re-key keeps the registry's spelling
    if rekey:
        event = audit_event(
            account.nr_number,
            "email_rekeyed_by_support",
            actor=who.name,
            export=False,
            fields=field_name,
            old_key=old_normalized or "",
            new_key=normalized or "",
            extra=why,
        )
    else:
        event = audit_event(
            account.nr_number,
            "email_set_by_support",
            actor=who.name,
            export=True,
            fields=field_name,
            old_email=old_address or "",
            new_email=address or "",
            extra=why,
        )
    tx = store.Transaction()
    if normalized is not None:
        claims.add_holder(tx, "new_claim", normalized, account.nr_number, None)
    if old_normalized:
        old_claim = plan.found.get(old_normalized)
        if old_claim is not None and old_claim.names(account.nr_number):
            claims.remove_holder(tx, "old_claim", old_normalized, account.nr_number, old_claim)
    raw, norm = getattr(Account, field_name), getattr(Account, f"{field_name}_normalized")
    actions = [
        raw.set(address) if address else raw.remove(),
        norm.set(normalized) if normalized else norm.remove(),
    ]
    if not rekey:
        actions.append(mark_changed_here(account, [field_name], who.name))
    tx.update("account", account, actions=actions)
    commit_with_audit(
        tx,
        event,
        Refused(
            "the account or the address changed at the same "
            "moment; nothing was changed: look again with `find`"
        ),
        fields=field_name,
    )
    result = {
        **_who(account),
        "field": field_name,
        "old": old_address,
        "new": address,
        "rekeyed": rekey,
        "old_key": old_normalized,
        "new_key": normalized,
        "notified": [],
        "not_notified": [],
        "ticket": why.get("ticket"),
    }
    if plan.slot == "primary" and not rekey:
        result["primary_email"] = address
    if not rekey:
        _tell_of_change(account, _notices_of(account, plan.slot, old_address, address), result)
    return result


def _notices_of(
    account: Account, slot: str, old: str | None, new: str | None
) -> list[tuple[str, str]]:
    """Who hears of a support correction, and what kind of change each is told of."""
    if slot == "primary":
        return [(old, "primary")] if old else []  # an account always has a primary
    if old is None:
        return [(account.primary_email, "secondary")]  # a secondary added
    if new is None:
        return [(old, "remove_secondary"), (account.primary_email, "secondary_removed")]
    return [(old, "secondary"), (account.primary_email, "secondary_changed")]


def _tell_of_change(account: Account, sends: list[tuple[str, str]], result: dict) -> None:
    """The email-changed notices of a support correction (best-effort, as for a person's
    own change: the correction has committed whatever the mail does)."""
    old, new = result["old"], result["new"]
    for to, change in sends:
        sent = notices.send_email_changed_notice(
            to, account, change=change, old_email=old, new_email=new
        )
        result["notified" if sent else "not_notified"].append(to)


def retry_notices(nr_number: str, addresses: list[str], *, actor: str | Actor) -> dict:
    """The console's retry of email-changed notices that could not be queued: the notices of
    the account's latest support correction, to those of its recipients asked for (a forged
    form can pick among them, never add an address)."""
    who = _check_actor(actor)
    account = _get_account(nr_number)
    latest = next(
        (
            e
            for e in recent_events(account.nr_number, FOLLOW_UP_EVENTS)
            if e.event == "email_set_by_support"
        ),
        None,
    )
    if latest is None:
        raise Refused(f"account {account.nr_number} has no recent email correction to tell of")
    detail = latest.detail.as_dict() if latest.detail else {}
    slot = "primary" if detail.get("fields") == "primary_email" else "secondary"
    old, new = detail.get("old_email") or None, detail.get("new_email") or None
    asked = {try_normalize_email(a) for a in addresses}
    sends = [
        (to, kind)
        for to, kind in _notices_of(account, slot, old, new)
        if try_normalize_email(to) in asked
    ]
    if not sends:
        raise Refused("none of those addresses hears of the latest correction")
    result = {**_who(account), "old": old, "new": new, "notified": [], "not_notified": []}
    _tell_of_change(account, sends, result)
    log_event(
        "email_notice_retried",
        nr_number=account.nr_number,
        actor=who.name,
        sent=len(result["notified"]),
        failed=len(result["not_notified"]),
    )
    return result


def _plan_clear_shared(
    address: str, nr_number: str | None
) -> tuple[Account, claims.AddressClaim, str, dict]:
    try:
        normalized = normalize_email(address)
    except InvalidEmail:
        raise Invalid("not a usable email address") from None
    claim = claims.read(normalized)
    if claim is None:
        raise NotFound("no account lists this email")
    if claim.contested:
        raise Refused(
            f"still on several accounts ({', '.join(sorted(claim.holders))}): "
            "correct their addresses first"
        )
    if not claim.shared:
        raise Refused("this address is not marked shared; nothing to clear")
    (holder,) = claim.holders
    if nr_number is not None and holder != _check_number(nr_number):
        raise Refused(f"{address.strip()} is on account {holder}, not {nr_number.strip()}")
    account = _get_account(holder)
    preview = {**_who(account), "seen": _seen(account, claim), "address": address.strip()}
    return account, claim, normalized, preview


def preview_clear_shared(address: str, *, nr_number: str | None = None) -> dict:
    return _plan_clear_shared(address, nr_number)[3]


def clear_shared(
    address: str,
    *,
    reason: str,
    actor: str | Actor,
    ticket: str | None = None,
    nr_number: str | None = None,
    seen: str | None = None,
) -> dict:
    """Support verified the one account left on a once-shared address: it proves that
    account again (links, recovery codes). Audited on that account. `nr_number`: the
    account the desk expects to be that one (the console's page names it)."""
    who, why = _checked_why(actor, ticket, reason)
    account, claim, normalized, preview = _plan_clear_shared(address, nr_number)
    _check_seen(preview, seen)
    event = audit_event(
        account.nr_number, "shared_address_cleared", actor=who.name, export=False, extra=why
    )
    tx = store.Transaction()
    claims.clear_shared(tx, "claim", claim)
    # The account must still hold the address when the claim clears.
    tx.check(
        "account",
        Account,
        account.nr_number,
        condition=(Account.primary_email_normalized == normalized)
        | (Account.secondary_email_normalized == normalized),
    )
    commit_with_audit(
        tx, event, Refused("the address changed at the same moment; nothing was changed")
    )
    return {
        **_who(account),
        "address": preview["address"],
        "cleared": True,
        "ticket": why.get("ticket"),
    }


# --- changes for the registry ------------------------------------------------------------------

EXPORT_COLUMNS = ("at", "nr_number", "field", "old", "new", "event", "actor")
# Support's hold is exported as its own field, never as the registry's status (older
# events recorded it as "status": they are exported the same way).
HOLD_EVENTS = {"account_disabled": ("off", "on"), "account_enabled": ("on", "off")}
# The fields each kind of email change (chalicelib.email_change.Change) touches.
CHANGE_FIELDS = {
    "primary": "primary_email",
    "secondary": "secondary_email",
    "remove_secondary": "secondary_email",
    "swap": "primary_email,secondary_email",
}


def export_changes(since: str) -> list[dict]:
    """Every email and status change made here since `since` (YYYY-MM-DD), oldest first,
    from the audit trail: what the registry should take into its own records."""
    try:
        start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise Invalid("--since takes a date: YYYY-MM-DD") from None
    today = clock.utc_now()
    if start > today:
        raise Invalid("--since is in the future")
    rows = []
    day = start
    while day.date() <= today.date():
        for event in AuditEvent.by_export_day.query(day.strftime("%Y-%m-%d")):
            detail = event.detail.as_dict() if event.detail else {}
            fields = detail.get("fields") or CHANGE_FIELDS.get(detail.get("change", ""), "")
            if event.event in HOLD_EVENTS:
                fields = "support_hold"
            for field_name in fields.split(","):
                if not field_name:
                    continue
                old, new = _export_values(event.event, field_name, detail)
                rows.append(
                    {
                        "at": event.at_event.split("#", 1)[0],
                        "nr_number": event.nr_number,
                        "field": field_name,
                        "old": old,
                        "new": new,
                        "event": event.event,
                        "actor": event.actor,
                    }
                )
        day += timedelta(days=1)
    return rows


def _export_values(event: str, field_name: str, detail: dict) -> tuple[str, str]:
    if field_name == "support_hold":
        return HOLD_EVENTS[event]
    if detail.get("change") == "swap":
        old, new = detail.get("old_email", ""), detail.get("new_email", "")
        return (old, new) if field_name == "primary_email" else (new, old)
    return detail.get("old_email", ""), detail.get("new_email", "")
