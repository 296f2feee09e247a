"""The staff list: who may use the support console, and with which role.

One implementation for both doors: `manage.py staff add|remove|list` (ops: the first
supervisor is added this way) and the console's staff page (supervisors). Every change is
one DeskTransaction with its desk audit record (supportdesk.console.desk_audit).

- A staff member is known by their Login.gov sub, never by an email (an email can move
  between Login.gov accounts). Someone who has never signed in is added by email as a
  *pending* entry; at their first console sign-in, when one of their verified Login.gov
  emails is that entry's, the entry becomes their staff record, in one conditional
  transaction: a pending entry binds once, and of two identities racing for it, one wins.
- Removal deletes the record and ends the person's console sessions at once; even before
  that, every console request reads the record again, so their next click is refused.
- The console never leaves the desk without a supervisor: a change that removes or demotes
  a supervisor commits only with a condition check that another staff member is still a
  supervisor (DynamoDB transactions are serializable, so two supervisors demoting each
  other at once cannot both succeed). manage.py, the root of trust that adds the first
  supervisor, may (it says so).

Functions return plain values or models; manage.py and the console's routes render them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from chalicelib import clock
from chalicelib.emails import InvalidEmail, normalize_email, try_normalize_email
from chalicelib.logs import keyed_hash, log_event
from supportdesk.console import sessions
from supportdesk.console.desk_audit import (
    Actor,
    DeskTransaction,
    commit_with_desk_audit,
    desk_event,
)
from supportdesk.console.errors import NotOnStaffList, StaffChangeInvalid, StaffChangeRefused
from supportdesk.console.models import PENDING_PK, STAFF_PK, DeskItem, PendingStaff, StaffMember
from supportdesk.console.permissions import ROLES, is_role

SUPERVISOR = "supervisor"
MAX_REASON_LENGTH = 500
# Login.gov subs are UUIDs (pairwise per agency, case-sensitive: never case-folded here).
SUB = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# Login.gov accounts hold a handful of emails; more than this is not a person's list.
MAX_EMAILS_LOOKED_UP = 20


def operator(name: str | None) -> Actor:
    """manage.py's actor: the operator's name ($USER or --actor)."""
    text = (name or "").strip()
    if not text:
        raise StaffChangeInvalid("who is acting? set $USER or pass --actor", reason="actor")
    return Actor(f"ops:{text}")


def staff_actor(member: StaffMember) -> Actor:
    """A staff member acting in the console, as every audit record names them."""
    return Actor(f"staff:{member.sub}", member.email)


# --- checks -------------------------------------------------------------------------------------


def check_role(role: str | None) -> str:
    value = (role or "").strip().lower()
    if not is_role(value):
        raise StaffChangeInvalid(f"a role is one of {', '.join(ROLES)}", reason="role")
    return value


def check_email(email: str | None) -> tuple[str, str]:
    """(the address as given, its normalized key)."""
    given = (email or "").strip()
    try:
        return given, normalize_email(given)
    except InvalidEmail:
        raise StaffChangeInvalid("that is not a usable email address", reason="email") from None


def check_reason(reason: str | None, *, required: bool) -> str | None:
    text = " ".join((reason or "").split())
    if not text:
        if required:
            raise StaffChangeInvalid("say why (it goes into the desk audit trail)", reason="reason")
        return None
    if len(text) > MAX_REASON_LENGTH:
        raise StaffChangeInvalid(
            f"the reason is longer than {MAX_REASON_LENGTH} characters", reason="reason"
        )
    return text


def check_sub(sub: str | None) -> str:
    value = (sub or "").strip()
    if not SUB.fullmatch(value):
        raise StaffChangeInvalid("a Login.gov sub is a UUID", reason="sub")
    return value


# --- reading ------------------------------------------------------------------------------------


def get(sub: str | None) -> StaffMember | None:
    """The staff record of a Login.gov identity, or None. One consistent GetItem."""
    if not sub:
        return None
    try:
        return StaffMember.get(STAFF_PK, sub, consistent_read=True)
    except DoesNotExist:
        return None


def list_staff() -> list[StaffMember]:
    members = StaffMember.query(STAFF_PK, consistent_read=True)
    return sorted(members, key=lambda m: (m.email_normalized, m.sub))


def list_pending() -> list[PendingStaff]:
    return sorted(PendingStaff.query(PENDING_PK, consistent_read=True), key=lambda p: p.sk)


def get_pending(normalized_email: str) -> PendingStaff | None:
    try:
        return PendingStaff.get(PENDING_PK, normalized_email, consistent_read=True)
    except DoesNotExist:
        return None


@dataclass(frozen=True)
class Found:
    """What `find` found: a staff member or a pending entry (one of them)."""

    member: StaffMember | None = None
    pending: PendingStaff | None = None


def find(email_or_sub: str) -> Found:
    """A staff member by sub or email, else a pending entry by email (manage.py remove)."""
    text = (email_or_sub or "").strip()
    if SUB.fullmatch(text):
        member = get(text)
        if member is None:
            raise StaffChangeRefused("no staff member has that Login.gov sub", reason="not_found")
        return Found(member=member)
    _, normalized = check_email(text)
    members = [m for m in list_staff() if m.email_normalized == normalized]
    if len(members) > 1:
        raise StaffChangeRefused(
            "several staff members have that email: name the one to remove by its sub",
            reason="ambiguous",
        )
    if members:
        return Found(member=members[0])
    pending = get_pending(normalized)
    if pending is None:
        raise StaffChangeRefused("nobody on the staff list has that email", reason="not_found")
    return Found(pending=pending)


def member_view(member: StaffMember) -> dict:
    return {
        "sub": member.sub,
        "email": member.email,
        "role": member.role,
        "status": "active",
        "added_by": member.added_by,
        "added_at": _iso(member.added_at),
        "updated_by": member.updated_by,
        "updated_at": _iso(member.updated_at),
    }


def pending_view(entry: PendingStaff) -> dict:
    return {
        "sub": None,
        "email": entry.email,
        "role": entry.role,
        "status": "pending",
        "added_by": entry.added_by,
        "added_at": _iso(entry.added_at),
        "updated_by": None,
        "updated_at": None,
    }


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# --- changes ------------------------------------------------------------------------------------


def add(
    email: str | None,
    role: str | None,
    *,
    actor: Actor,
    reason: str | None = None,
    sub: str | None = None,
    reason_required: bool = False,
) -> StaffMember | PendingStaff:
    """Put someone on the staff list: by email, pending until their first sign-in, or (with
    `sub`) bound to that Login.gov identity at once."""
    given, normalized = check_email(email)
    role = check_role(role)
    reason = check_reason(reason, required=reason_required)
    bound_sub = check_sub(sub) if sub else None
    if any(m.email_normalized == normalized for m in list_staff()):
        raise StaffChangeRefused(f"{given} is already on the staff list", reason="already_staff")
    pending = get_pending(normalized)
    if pending is not None:
        raise StaffChangeRefused(
            f"{given} is already on the staff list, pending its first sign-in ({pending.role})",
            reason="already_pending",
        )
    now = clock.utc_now()
    tx = DeskTransaction()
    item: StaffMember | PendingStaff
    if bound_sub:
        if get(bound_sub) is not None:
            raise StaffChangeRefused(
                "that Login.gov identity is already on the staff list", reason="already_staff"
            )
        item = StaffMember(
            STAFF_PK,
            bound_sub,
            email=given,
            email_normalized=normalized,
            role=role,
            added_by=actor.name,
            added_at=now,
        )
        event = desk_event(
            "staff_added", actor, sub=bound_sub, email=given, role=role, reason=reason
        )
    else:
        item = PendingStaff(
            PENDING_PK, normalized, email=given, role=role, added_by=actor.name, added_at=now
        )
        event = desk_event("staff_added_pending", actor, email=given, role=role, reason=reason)
    tx.put("entry", item, condition=DeskItem.sk.does_not_exist())
    commit_with_desk_audit(
        tx,
        event,
        StaffChangeRefused(f"{given} was added meanwhile", reason="already_staff"),
        role=role,
        email=keyed_hash(normalized),
    )
    return item


def change_role(
    sub: str, role: str | None, *, actor: Actor, reason: str | None, keep_a_supervisor: bool = True
) -> StaffMember:
    """Give a staff member another role (they see it at their next click)."""
    member = _existing(sub)
    role = check_role(role)
    text = check_reason(reason, required=True)
    if member.role == role:
        raise StaffChangeRefused(f"{member.email} is already {role}", reason="unchanged")
    tx = DeskTransaction()
    now = clock.utc_now()
    tx.update(
        "member",
        member,
        actions=[
            StaffMember.role.set(role),
            StaffMember.updated_by.set(actor.name),
            StaffMember.updated_at.set(now),
        ],
        condition=StaffMember.role == member.role,
    )
    if member.role == SUPERVISOR and keep_a_supervisor:
        _keep_another_supervisor(tx, member)
    event = desk_event(
        "staff_role_changed",
        actor,
        sub=member.sub,
        email=member.email,
        previous_role=member.role,
        role=role,
        reason=text,
    )
    commit_with_desk_audit(
        tx, event, _changed_meanwhile(member), subject=keyed_hash(member.sub), role=role
    )
    log_if_no_supervisor(keep_a_supervisor)
    return _existing(member.sub)


def remove(
    sub: str,
    *,
    actor: Actor,
    reason: str | None,
    keep_a_supervisor: bool = True,
    reason_required: bool = True,
) -> dict:
    """Take a staff member off the list and end their console sessions at once. Returns
    {"member": view, "sessions_ended": n, "sessions_error": None or what failed}."""
    member = _existing(sub)
    text = check_reason(reason, required=reason_required)
    tx = DeskTransaction()
    tx.delete(
        "member",
        member,
        condition=StaffMember.role == member.role,  # and its version, added by PynamoDB
    )
    if member.role == SUPERVISOR and keep_a_supervisor:
        _keep_another_supervisor(tx, member)
    event = desk_event(
        "staff_removed", actor, sub=member.sub, email=member.email, role=member.role, reason=text
    )
    commit_with_desk_audit(
        tx, event, _changed_meanwhile(member), subject=keyed_hash(member.sub), role=member.role
    )
    log_if_no_supervisor(keep_a_supervisor)
    # After the commit: the record is gone, so even if ending them fails here, every one of
    # the person's sessions is refused at its next request (edge reads the record).
    try:
        ended, problem = sessions.end_all(member.sub), None
    except PynamoDBException as exc:
        ended, problem = 0, exc.__class__.__name__
        log_event("staff_sessions_not_ended", logging.ERROR, subject=keyed_hash(member.sub))
    return {"member": member_view(member), "sessions_ended": ended, "sessions_error": problem}


def remove_pending(
    email: str, *, actor: Actor, reason: str | None, reason_required: bool = True
) -> PendingStaff:
    """Take a pending entry (never signed in) off the list."""
    given, normalized = check_email(email)
    text = check_reason(reason, required=reason_required)
    entry = get_pending(normalized)
    if entry is None:
        raise StaffChangeRefused(f"{given} is not pending", reason="not_found")
    tx = DeskTransaction()
    tx.delete("entry", entry, condition=PendingStaff.role == entry.role)
    event = desk_event(
        "staff_pending_removed", actor, email=entry.email, role=entry.role, reason=text
    )
    commit_with_desk_audit(
        tx,
        event,
        StaffChangeRefused(f"{entry.email} changed meanwhile", reason="changed"),
        email=keyed_hash(normalized),
    )
    return entry


def bind_at_signin(sub: str, verified_emails: list[str], *, shown_email: str | None) -> StaffMember:
    """The staff record of an identity not on the list by sub: its pending entry, bound now.

    The entry is the one whose email is one of the identity's verified Login.gov emails.
    Deleting the entry (on condition that it is still there, as read), writing the staff
    record (on condition that the identity has none) and the audit record are one
    transaction: a pending entry binds once; two identities racing for it, one wins, and
    the other is refused as not on the list. Raises NotOnStaffList.
    """
    keys = list(
        dict.fromkeys(
            key for key in (try_normalize_email(e) for e in verified_emails) if key is not None
        )
    )[:MAX_EMAILS_LOOKED_UP]
    found = (
        list(PendingStaff.batch_get([(PENDING_PK, key) for key in keys], consistent_read=True))
        if keys
        else []
    )
    found = [entry for entry in found if isinstance(entry, PendingStaff)]
    if len(found) != 1:
        # Two entries for one identity (two of its emails added separately) name two roles:
        # refuse rather than choose; a supervisor removes one.
        raise NotOnStaffList(
            "no pending entry" if not found else "several pending entries",
            login_gov_email=shown_email,
            reason="not_listed" if not found else "several_pending",
            sub=sub,
        )
    entry = found[0]
    member = StaffMember(
        STAFF_PK,
        sub,
        email=entry.email,
        email_normalized=entry.sk,
        role=entry.role,
        added_by=entry.added_by,
        added_at=entry.added_at,
    )
    tx = DeskTransaction()
    tx.delete("pending", entry, condition=PendingStaff.role == entry.role)
    tx.put("member", member, condition=DeskItem.sk.does_not_exist())
    event = desk_event(
        "staff_bound",
        Actor(f"staff:{sub}", entry.email),
        sub=sub,
        email=entry.email,
        role=entry.role,
        added_by=entry.added_by,
    )
    try:
        commit_with_desk_audit(
            tx,
            event,
            NotOnStaffList(
                "the pending entry was bound or changed meanwhile",
                login_gov_email=shown_email,
                reason="pending_taken",
                sub=sub,
            ),
            subject=keyed_hash(sub),
            role=entry.role,
        )
    except NotOnStaffList:
        # This identity's other tab may have bound it a moment ago: that is not a refusal.
        again = get(sub)
        if again is not None:
            return again
        raise
    return get(sub) or member


# --- helpers ------------------------------------------------------------------------------------


def _existing(sub: str) -> StaffMember:
    member = get((sub or "").strip())
    if member is None:
        raise StaffChangeRefused("no staff member has that Login.gov sub", reason="not_found")
    return member


def _keep_another_supervisor(tx: DeskTransaction, member: StaffMember) -> None:
    """The change commits only if another staff member is still a supervisor then."""
    others = [m for m in list_staff() if m.role == SUPERVISOR and m.sub != member.sub]
    if not others:
        raise StaffChangeRefused(
            f"{member.email} is the last supervisor: make someone else a supervisor first",
            reason="last_supervisor",
        )
    tx.check_item(
        "another supervisor",
        StaffMember,
        STAFF_PK,
        others[0].sub,
        condition=StaffMember.role == SUPERVISOR,
    )


def _changed_meanwhile(member: StaffMember) -> StaffChangeRefused:
    return StaffChangeRefused(
        f"{member.email}'s record, or the supervisors, changed meanwhile: look again and retry",
        reason="changed",
    )


def log_if_no_supervisor(kept: bool) -> None:
    if not kept and not any(m.role == SUPERVISOR for m in list_staff()):
        log_event("staff_no_supervisor_left", logging.WARNING)


def any_supervisor() -> bool:
    return any(m.role == SUPERVISOR for m in list_staff())
