"""An account's audit trail as a timeline in words, newest first, for the support console.

"dana@desk.example.gov (agent, ticket 42) changed the primary email from a@x to b@y." Each
event is one sentence: who (`actor`), then what, then the reason when one was given. Who:

- `subject:<keyed hash>`: a Login.gov identity. The one linked now is "The person (their
  Login.gov account)"; any other, "Another Login.gov account".
- `staff:<sub>` (also after `support:`): a console staff member, shown by email and role
  from the staff list (`staff`), else by the email the event carries, else "A former
  staff member"; `support:<name>`: "<name> (support)"; `ops:<name>`: "<name> (operations)".
- `import`, `import:<name>`: the registry import; `login.gov:risc`: Login.gov; `service`:
  the sign-in service.

An event this module does not know is shown by its name and details, never dropped. Values
are the stored text: the console's templates escape them (HTML, and safe_text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chalicelib.logs import keyed_hash
from chalicelib.models import AuditEvent
from supportdesk.diagnosis import refusal_meaning
from supportdesk.person import Person, when


@dataclass(frozen=True)
class StaffName:
    email: str
    role: str  # as shown: "agent"


@dataclass(frozen=True)
class Entry:
    at: str  # as shown
    text: str
    event: str
    at_event: str  # the sort key (the next page starts below it)


FIELDS = {
    "first_name": "the first name",
    "last_name": "the last name",
    "role": "the role",
    "status": "the status",
    "primary_email": "the primary email",
    "secondary_email": "the secondary email",
    "legacy_username": "the legacy username",
    "claims": "which addresses it holds",
}


def actor_phrase(actor: str, detail: Mapping[str, str], person: Person, staff: Mapping) -> str:
    kind, _, name = actor.partition(":")
    ticket = detail.get("ticket")
    if kind == "subject":
        current = person.link is not None and name == keyed_hash(person.link.sub)
        return "The person (their Login.gov account)" if current else "Another Login.gov account"
    if kind == "support" and name.startswith("staff:"):
        kind, _, name = name.partition(":")
    if kind == "staff":
        known = staff.get(f"staff:{name}")
        email = known.email if known else detail.get("actor_email")
        role = (known.role if known else None) or detail.get("actor_role") or "staff"
        extras = ", ".join(x for x in (role, f"ticket {ticket}" if ticket else None) if x)
        return f"{email} ({extras})" if email else f"A former staff member ({extras})"
    if kind == "support":
        extras = ", ".join(x for x in ("support", f"ticket {ticket}" if ticket else None) if x)
        return f"{name or 'Support'} ({extras})"
    if kind == "ops":
        return f"{name} (operations)"
    if kind == "import":
        return "The registry import" + (f" (run by {name})" if name else "")
    if kind == "login.gov":
        return "Login.gov"
    if kind == "service":
        return "The sign-in service"
    return actor


def _email_change(detail: Mapping[str, str], *, verified: bool) -> str:
    old, new = detail.get("old_email") or "", detail.get("new_email") or ""
    change = detail.get("change") or {
        "primary_email": "primary",
        "secondary_email": "secondary",
    }.get(detail.get("fields", ""), "")
    suffix = " (verified by a code)" if verified and new else ""
    if change == "swap":
        return f"swapped the addresses: the primary is now {new}, the secondary {old}"
    if change == "remove_secondary" or (change == "secondary" and not new):
        return f"removed the secondary email {old}"
    slot = "primary" if change == "primary" else "secondary"
    if not old:
        return f"added the {slot} email {new}{suffix}"
    return f"changed the {slot} email from {old} to {new}{suffix}"


def _linked(detail: Mapping[str, str], person: Person, event: AuditEvent) -> str:
    current = person.link is not None and event.actor == f"subject:{keyed_hash(person.link.sub)}"
    account = (
        f"the Login.gov account {person.link.login_gov_email}"
        if current and person.link and person.link.login_gov_email
        else "a Login.gov account"
    )
    method, matched = detail.get("method", ""), detail.get("matched", "")
    how = {
        "automatic": f"by its {matched} email" if matched else "automatically (an email matched)",
        "recovery": f"by a recovery code sent to its {matched} email"
        if matched
        else "by a recovery code",
        "support": "by support",
    }.get(method, "")
    return f"linked {account}" + (f" {how}" if how else "")


def _unlinked(detail: Mapping[str, str]) -> str:
    if detail.get("mode") == "not-owner" or detail.get("barred") == "yes":
        return "unlinked the Login.gov account and barred it from this record (not the owner's)"
    if detail.get("mode") == "lost-account":
        return "unlinked the Login.gov account (the person lost it)"
    return "unlinked the Login.gov account"


Phrase = Callable[[Mapping[str, str], Person, AuditEvent], str]

PHRASES: dict[str, Phrase] = {
    "account_imported": lambda d, p, e: "created the account from the registry's file",
    "account_updated_by_import": lambda d, p, e: (
        "changed "
        + (
            ", ".join(FIELDS[f] for f in d.get("fields", "").split(",") if f in FIELDS)
            or "the record"
        )
    ),
    "identity_linked": lambda d, p, e: _linked(d, p, e),
    "identity_unlinked": lambda d, p, e: _unlinked(d),
    "identity_unlinked_purged": lambda d, p, e: (
        "deleted the linked Login.gov account: the record was unlinked"
    ),
    "identity_bar_lifted": lambda d, p, e: (
        "lifted the bar on a Login.gov account (it may link to this record again)"
    ),
    "account_disabled": lambda d, p, e: "put a hold on the account (disabled it)",
    "account_enabled": lambda d, p, e: "lifted the hold on the account",
    "email_set_by_support": lambda d, p, e: _email_change(d, verified=False),
    "email_rekeyed_by_support": lambda d, p, e: (
        "re-keyed an email (the same address, stored under today's matching rule)"
    ),
    "email_changed": lambda d, p, e: _email_change(d, verified=True),
    "shared_address_cleared": lambda d, p, e: (
        "cleared a once-shared address (it links this account again)"
    ),
    "signin_refused": lambda d, p, e: (
        "was refused: "
        + refusal_meaning(d.get("reason", ""))
        + (f" (reference {d['reference']})" if d.get("reference") else "")
    ),
    "login_gov_account_disabled": lambda d, p, e: (
        "disabled the identity (the Login.gov account linked here)"
    ),
    "login_gov_account_suspended": lambda d, p, e: "suspended the identity",
    "login_gov_account_enabled": lambda d, p, e: "enabled the identity again",
    "login_gov_account_reinstated": lambda d, p, e: "reinstated the identity",
    "login_gov_password_reset": lambda d, p, e: (
        "reported that the person reset their Login.gov password"
    ),
    "login_gov_recovery_activated": lambda d, p, e: "reported an account recovery at Login.gov",
    "login_gov_recovery_information_changed": lambda d, p, e: (
        "reported a change of the recovery information at Login.gov"
    ),
    "login_gov_reproof_completed": lambda d, p, e: (
        "reported that the person proved their identity again"
    ),
    "login_gov_mfa_limit_account_locked": lambda d, p, e: (
        "locked the Login.gov account (too many two-factor attempts)"
    ),
    "login_gov_identifier_changed": lambda d, p, e: (
        "reported that a Login.gov account added or "
        f"removed this record's {d.get('address', '')} address"
    ),
    "login_gov_identifier_recycled": lambda d, p, e: (
        "reported that this record's "
        f"{d.get('address', '')} address was freed at Login.gov (another Login.gov account may "
        "add it)"
    ),
}
# Details already said by the sentence (never repeated as "k=v").
SAID = {"reason", "ticket", "actor_email", "actor_role"}


def sentence(event: AuditEvent, person: Person, staff: Mapping) -> str:
    detail = dict(event.detail.as_dict()) if event.detail else {}
    who = actor_phrase(event.actor, detail, person, staff)
    phrase = PHRASES.get(event.event)
    if phrase is None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if k not in SAID)
        text = f"{who}: {event.event}" + (f" ({shown})" if shown else "")
    else:
        text = f"{who} {phrase(detail, person, event)}"
    reason = detail.get("reason") if event.event != "signin_refused" else None
    return text + "." + (f" Reason: {reason}" if reason else "")


def entries(person: Person, staff: Mapping | None = None) -> list[Entry]:
    """The person's audit page as sentences, newest first."""
    return [
        Entry(
            at=when(e.at_event.split("#", 1)[0]) or "",
            text=sentence(e, person, staff or {}),
            event=e.event,
            at_event=e.at_event,
        )
        for e in person.events
    ]


def staff_subjects(person: Person) -> bool:
    """Does any event name a console staff member (the staff list is then read once)?"""
    return any("staff:" in e.actor for e in person.events)
