"""Why can't they get in? The answer in plain words for a help-desk agent, with the next step.

`diagnose(person)` reads the facts of supportdesk.person and returns findings, most urgent
first: what stops the person (a blocker), what may stop them soon or explains a failure (a
warning), and what the agent should know (information). Each finding says what is so and
what to do next, naming the console's operation (or manage.py command) when there is one.
Each rule is one function below, in the order the desk should read them; `RULES` lists them.
The support console's person page shows the findings; `manage.py find` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum

from supportdesk.person import Address, AddressState, Link, Person, Refusal, Usage, when


class Severity(IntEnum):
    BLOCKER = 0  # stops the person signing in or linking
    WARNING = 1  # may stop them soon, or explains a failure they saw
    INFO = 2  # worth knowing on the call

    @property
    def label(self) -> str:
        return {0: "Blocks sign-in", 1: "Warning", 2: "Information"}[self.value]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    what: str
    next_step: str | None = None
    rule: str = ""  # the rule's name (tests, and the page's anchors)


# What each recorded refusal (`signin_refused`, reason = the error's event) meant, and what
# to do about it. Unknown reasons say the event name and point at the reference.
REFUSALS: dict[str, tuple[str, str]] = {
    "link_refused_inactive": (
        "the account was not active (disabled or removed)",
        "See the account's status above.",
    ),
    "link_refused_shared": (
        "another Login.gov account is already linked to this record",
        "If the linked Login.gov account is not the caller's: unlink it as not-owner. If they "
        "lost it: unlink it as lost-account; their new one links at their next sign-in.",
    ),
    "link_refused_barred": (
        "their Login.gov account is barred from this record (support found it was not the owner's)",
        "If that was a mistake, a supervisor lifts the bar after verifying the person.",
    ),
    "link_refused_match_changed": (
        "the address that matched changed while linking (a correction at that moment)",
        "Ask them to sign in again.",
    ),
    "link_refused_purged": (
        "Login.gov deleted that Login.gov account",
        "They sign in with a new Login.gov account.",
    ),
    "signin_refused_disabled": (
        "Login.gov has disabled their Login.gov account",
        "They must contact Login.gov to have it enabled; nothing can be done here.",
    ),
    "linked_but_not_signed_in": (
        "the link was made, but the sign-in did not finish",
        "Ask them to sign in again: they are linked.",
    ),
    "email_change_refused_taken": (
        "an email change was refused: the new address is on another registry account",
        "If the address is really theirs, search it to find the other account and correct "
        "that one first.",
    ),
}


def refusal_meaning(reason: str) -> str:
    meaning = REFUSALS.get(reason)
    return meaning[0] if meaning else f"refused ({reason})"


def _who(address: Address) -> str:
    return ", ".join(f"{h.nr_number} ({h.name})" if h.name else h.nr_number for h in address.others)


# --- the rules, in reading order ----------------------------------------------------------------


def removed(person: Person) -> list[Finding]:
    if person.status != "removed":
        return []
    return [
        Finding(
            Severity.BLOCKER,
            "The registry removed this account: nobody can sign in to it, and it holds no "
            "email address any more.",
            "Only the registry can re-activate it: the person contacts the registry about "
            "their certification. Support changes nothing here.",
        )
    ]


def disabled_by_registry(person: Person) -> list[Finding]:
    if person.status != "disabled" or person.registry_status != "disabled":
        return []
    return [
        Finding(
            Severity.BLOCKER,
            "The registry disabled this account: nobody can sign in to it.",
            "The registry re-activates it in its export; support cannot lift it.",
        )
    ]


def support_hold(person: Person) -> list[Finding]:
    if not person.support_hold or person.status == "removed":
        return []
    hold = person.hold
    since = f" since {when(hold.at)}" if hold and hold.at else ""
    why = f" Reason given: {hold.reason}" if hold and hold.reason else ""
    return [
        Finding(
            Severity.BLOCKER,
            f"Support put a hold on this account (disabled){since}: nobody can sign in.{why}",
            "If what caused the hold is resolved, an agent lifts it (enable).",
        )
    ]


def login_gov_disabled(person: Person) -> list[Finding]:
    link = person.link
    if link is None or not link.disabled:
        return []
    since = f" (since {when(link.disabled_at)})" if link.disabled_at else ""
    return [
        Finding(
            Severity.BLOCKER,
            f"Login.gov disabled the Login.gov account linked to this record{since}.",
            "The person must contact Login.gov to have their Login.gov account enabled; nothing "
            "can be done here. If they made a new Login.gov account instead: unlink as "
            "lost-account.",
        )
    ]


def recovery_paused(person: Person) -> list[Finding]:
    caps = person.caps
    paused = caps is not None and caps.recovery_paused
    marked = [a.paused_until for a in person.addresses if a.paused_until]
    if not paused and not marked:
        return []
    until = (caps.paused_until if caps else None) or (max(marked) if marked else None)
    ends = f" It resumes at {when(until)}." if until else ""
    counted = (
        f" ({caps.account_guesses.used} wrong codes in 24 hours, the limit is "
        f"{caps.account_guesses.limit})"
        if caps and caps.account_guesses.used
        else ""
    )
    return [
        Finding(
            Severity.BLOCKER if person.link is None else Severity.WARNING,
            "Linking by a code is paused: too many wrong codes were tried for this "
            f"account{counted}. No code works until then, even the right one.{ends}",
            "Meanwhile the person can still link by signing in at Login.gov with a registry "
            "email that links. If the caller did not try those codes, someone else did: "
            "consider a hold (disable).",
        )
    ]


def shared_addresses(person: Person) -> list[Finding]:
    findings = []
    for address in person.addresses:
        if address.state is not AddressState.SHARED:
            continue
        stops = person.link is None and not _another_address_links(person, address)
        findings.append(
            Finding(
                Severity.BLOCKER if stops else Severity.WARNING,
                f"The {address.slot} address {address.email} is shared with {_who(address)}: "
                "it links nobody and receives no code.",
                "Ask which person this is, then give each account its own address "
                f"(set-email on this account or on {_who(address)}).",
            )
        )
    return findings


def once_shared_addresses(person: Person) -> list[Finding]:
    findings = []
    for address in person.addresses:
        if address.state is not AddressState.ONCE_SHARED:
            continue
        stops = person.link is None and not _another_address_links(person, address)
        findings.append(
            Finding(
                Severity.BLOCKER if stops else Severity.WARNING,
                f"The {address.slot} address {address.email} was shared with another account "
                "(it is on this one only now): it still receives mail, but links nobody and "
                "receives no code.",
                "Verify the person, then a supervisor clears it (clear-shared).",
            )
        )
    return findings


def undeliverable_addresses(person: Person) -> list[Finding]:
    """Never linked, and SES bounced every address: no invitation and no code can reach them."""
    if person.link is not None or person.status == "removed" or not person.addresses:
        return []
    if not all(a.mail and a.mail.undeliverable_at for a in person.addresses):
        return []
    return [
        Finding(
            Severity.BLOCKER,
            "None of this person's registry addresses can receive mail (SES reported them "
            "undeliverable).",
            "Verify the caller, then set-email to an address they read.",
        )
    ]


def missing_claims(person: Person) -> list[Finding]:
    broken = [a for a in person.addresses if a.state is AddressState.MISSING]
    return [
        Finding(
            Severity.WARNING,
            f"The {a.slot} address {a.email} is not in the address index: it links nobody.",
            "Tell an engineer (manage.py find --scan shows it); this should never happen.",
        )
        for a in broken
    ]


def bars(person: Person) -> list[Finding]:
    findings = []
    for bar in person.bars:
        since = f" on {when(bar.by.at)}" if bar.by and bar.by.at else ""
        findings.append(
            Finding(
                Severity.INFO,
                f"A Login.gov account is barred from this record: support found{since} it was "
                f"not the owner's (Login.gov sub {bar.sub}). It can never link to this record.",
                "If that was a mistake, a supervisor lifts the bar after verifying the person.",
            )
        )
    return findings


def how_linked(link: Link) -> str:
    """How a link was made, in words ("by a code sent to its secondary email")."""
    slot = f"its {link.matched} email" if link.matched else "a registry email"
    return {
        "automatic": f"by {slot}" if link.matched else "automatically (an email matched)",
        "recovery": f"by a code sent to {slot}",
        "support": "by support",
    }.get(link.method or "", "not in the events read")


def linked(person: Person) -> list[Finding]:
    link = person.link
    if link is None:
        return []
    since = f" since {when(link.linked_at)}" if link.linked_at else ""
    email = link.login_gov_email or "(no email recorded)"
    how = f", {how_linked(link)}" if link.method else ""
    return [
        Finding(
            Severity.INFO,
            f"Linked to the Login.gov account {email}{since}{how}.",
            "If the caller says this Login.gov account is not theirs: unlink as not-owner (it "
            "is then barred from this record). If they lost it: unlink as lost-account.",
        )
    ]


def not_linked(person: Person) -> list[Finding]:
    if person.link is not None or person.status == "removed":
        return []
    usable = [a for a in person.addresses if a.state is AddressState.PROVES]
    emails = " or ".join(a.email for a in usable)
    if not person.ever_linked and not person.refusals and not person.sessions:
        what = "Not linked, and nobody has signed in to it yet."
    else:
        what = "Not linked to any Login.gov account."
    if usable:
        step = (
            f"The person signs in at Login.gov with {emails} (their Login.gov account must "
            "have it as a verified email), or links by a code sent there."
        )
    else:
        step = "No address of this account links by itself: resolve the addresses above first."
    return [Finding(Severity.INFO, what, step)]


def _again(usage: Usage) -> str:
    return f"after {when(usage.frees_at)}" if usage.frees_at else "within the hour"


def codes_near_cap(person: Person) -> list[Finding]:
    caps = person.caps
    if caps is None:
        return []
    findings = []
    for address in person.addresses:
        sends = address.sends
        if sends is not None and sends.near:
            findings.append(
                Finding(
                    Severity.WARNING,
                    f"{sends.used} codes were sent to {address.email} in the last hour (the "
                    f"limit is {sends.limit}).",
                    f"Another code can be sent {_again(sends)}; ask them to use the newest code "
                    "and to look in their spam folder.",
                )
            )
    for identity in caps.identities:
        who = "The linked Login.gov account" if identity.linked_identity else "A Login.gov account"
        if identity.sends.near:
            findings.append(
                Finding(
                    Severity.WARNING,
                    f"{who} asked for {identity.sends.used} codes in the last hour (the limit "
                    f"is {identity.sends.limit}).",
                    f"It can ask again {_again(identity.sends)}.",
                )
            )
        if identity.guesses.near:
            findings.append(
                Finding(
                    Severity.WARNING,
                    f"{who} entered {identity.guesses.used} wrong codes in the last 24 hours "
                    f"(the limit is {identity.guesses.limit}).",
                    f"It can try again {_again(identity.guesses)}.",
                )
            )
    return findings


def pending_codes(person: Person) -> list[Finding]:
    findings = []
    for code in person.pending_codes:
        kind = "A recovery code" if code.purpose == "recovery" else "An email-change code"
        findings.append(
            Finding(
                Severity.INFO,
                f"{kind} was sent to {code.target_email} at {when(code.sent_at)}; it works "
                f"until {when(code.expires_at)} ({code.attempts} wrong tries so far).",
                "Ask them to look for it (and in their spam folder), in the browser where "
                "they asked for it.",
            )
        )
    return findings


def _linked_after(person: Person, refusal: Refusal) -> bool:
    return any(
        e.event == "identity_linked" and e.at_event.split("#", 1)[0] > refusal.at
        for e in person.events
    )


def _refused_for_the_link(person: Person) -> Refusal | None:
    """The newest refusal because another Login.gov account is linked, while that link is
    still the one there (no link made since)."""
    if person.link is None:
        return None
    return next(
        (
            r
            for r in person.refusals
            if r.reason == "link_refused_shared" and not _linked_after(person, r)
        ),
        None,
    )


def refused_while_linked(person: Person) -> list[Finding]:
    # Someone with this record's address was turned away by the link: perhaps its owner,
    # locked out by a stranger's Login.gov account. Never "nothing stops them".
    refusal = _refused_for_the_link(person)
    if refusal is None:
        return []
    reference = f" (reference {refusal.reference})" if refusal.reference else ""
    return [
        Finding(
            Severity.WARNING,
            "Another Login.gov account is linked to this record, and someone was refused at "
            f"{when(refusal.at)}{reference}.",
            "If the caller is the owner, verify them, then unlink as not-owner.",
        )
    ]


def last_refusal(person: Person) -> list[Finding]:
    if not person.refusals:
        return []
    refusal = person.refusals[0]
    if _linked_after(person, refusal):
        return []  # an old refusal, since solved by a link
    if refusal is _refused_for_the_link(person):
        return []  # refused_while_linked says it
    meaning, step = REFUSALS.get(
        refusal.reason, (refusal_meaning(refusal.reason), "Look the reference up (trace).")
    )
    reference = f" (reference {refusal.reference})" if refusal.reference else ""
    return [
        Finding(
            Severity.WARNING,
            f"The last refusal, at {when(refusal.at)}{reference}: {meaning}.",
            step,
        )
    ]


def institutional_primary(person: Person) -> list[Finding]:
    primary = person.address("primary")
    if primary is None or not primary.institutional or person.status == "removed":
        return []
    return [
        Finding(
            Severity.INFO,
            f"The primary address {primary.email} is a work or school (.gov, .mil, .edu) address.",
            "Advise the person to change it to a personal address after linking (they can do "
            "it on their account page).",
        )
    ]


def nothing_stops(person: Person, found: list[Finding]) -> list[Finding]:
    if any(f.severity is Severity.BLOCKER or f.rule == "refused_while_linked" for f in found):
        return []
    return [
        Finding(
            Severity.INFO,
            "Nothing recorded here stops this person signing in.",
            "Ask what they see, and the reference on the page if there is one.",
        )
    ]


def _another_address_links(person: Person, address: Address) -> bool:
    return any(a is not address and a.state is AddressState.PROVES for a in person.addresses)


RULES: tuple[Callable[[Person], list[Finding]], ...] = (
    removed,
    disabled_by_registry,
    support_hold,
    login_gov_disabled,
    recovery_paused,
    shared_addresses,
    once_shared_addresses,
    undeliverable_addresses,
    missing_claims,
    bars,
    refused_while_linked,
    last_refusal,
    codes_near_cap,
    linked,
    not_linked,
    pending_codes,
    institutional_primary,
)


def diagnose(person: Person) -> list[Finding]:
    """The findings for one person, most urgent first (rule order within a severity)."""
    found = [replace(f, rule=rule.__name__) for rule in RULES for f in rule(person)]
    found += [replace(f, rule="nothing_stops") for f in nothing_stops(person, found)]
    return sorted(found, key=lambda f: f.severity)
