"""Everything about one registry account that answers "why can't they get in?": the facts
the support console's person page shows and supportdesk.diagnosis reasons about (and
`manage.py find`, which prints the diagnosis).

Read, never written, in a handful of requests whatever the account's history:

1. the account (GetItem);
2. its addresses' `email#` claims and its linked identity's `sub#` item (one BatchGetItem
   of the claims table): who else holds each address, Login.gov's disabled/enabled marks;
3. its audit trail, newest first, one page (Query): how and when it was linked, holds,
   bars, Login.gov's events, the refusals the sign-in service recorded (`signin_refused`);
4. its live sessions and pending one-time codes (one Query of the flows table's index
   by_account, which projects neither a code's hash nor a session's CSRF token);
5. the send and guess counters that concern it (one BatchGetItem of the flows table): codes
   sent in the last hour to each address and by each identity involved, wrong codes in the
   last 24 hours for the account (recovery pauses at its cap) and for each identity, and
   the pause marks. The limits slide (chalicelib.counters): each is read as its current and
   previous fixed windows, keys computed as chalicelib.send_limits and
   chalicelib.guess_limits compute them; read only;
6. when an address is shared, the other holders' names (BatchGetItem);
7. what SES reported of its addresses (chalicelib.campaign.address_states: one BatchGetItem
   of the claims table's `mailstate#` items). The campaign's marks come with the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from pynamodb.exceptions import PynamoDBException

from chalicelib import campaign, claims, clock, counters, guess_limits, send_limits, store
from chalicelib.config import get_settings
from chalicelib.emails import is_institutional
from chalicelib.logs import keyed_hash, log_event
from chalicelib.mail_feedback import SOFT_BOUNCE_DAYS
from chalicelib.models import (
    Account,
    AuditEvent,
    Challenge,
    Claim,
    Flow,
    MailState,
    Session,
    WindowCounter,
)

EVENTS_PAGE = 50  # audit events per page of the timeline
MAX_FLOWS = 50  # sessions and codes read for one account
MAX_IDENTITIES = 3  # identities whose caps are read: the linked one, and pending codes'


class AddressState(StrEnum):
    PROVES = "proves"  # links and receives codes: this account's alone, never shared
    SHARED = "shared"  # on several accounts: links nobody, receives no code
    ONCE_SHARED = "once-shared"  # one holder left: mail only, until support clears it
    MISSING = "missing"  # no claim names this account (the invariants forbid it)
    FREE = "free"  # a removed account holds no address


@dataclass(frozen=True)
class Holder:
    nr_number: str
    name: str | None  # None: no such account (a claim the invariants forbid)


@dataclass(frozen=True)
class MailMarks:
    """What SES reported of an address (chalicelib.mail_feedback)."""

    undeliverable_at: datetime | None
    undeliverable_reason: str | None
    complained_at: datetime | None
    soft_bounces: int  # in the last SOFT_BOUNCE_DAYS

    @property
    def words(self) -> str:
        """As the person page says it: "undeliverable since … (hard bounce); complained …"."""
        parts = []
        if self.undeliverable_at:
            why = f" ({self.undeliverable_reason})" if self.undeliverable_reason else ""
            parts.append(f"undeliverable since {when(self.undeliverable_at)}{why}")
        if self.complained_at:
            parts.append(f"complained {when(self.complained_at)} (marked our mail as spam)")
        if self.soft_bounces:
            plural = "" if self.soft_bounces == 1 else "s"
            parts.append(f"{self.soft_bounces} soft bounce{plural} in {SOFT_BOUNCE_DAYS} days")
        return "; ".join(parts) or "no bounce or complaint reported"


@dataclass(frozen=True)
class Address:
    slot: str  # "primary" | "secondary"
    email: str  # as stored
    normalized: str | None
    state: AddressState
    others: tuple[Holder, ...] = ()  # the other accounts holding it
    institutional: bool = False
    sends: Usage | None = None  # codes sent to it in the last hour, by anyone
    paused_until: datetime | None = None  # recovery codes to it are paused (its account's)
    mail: MailMarks | None = None  # None: SES reported nothing of it


@dataclass(frozen=True)
class Link:
    sub: str
    login_gov_email: str | None
    linked_at: datetime | None
    method: str | None  # "automatic" | "recovery" | "support" | None: not in the page read
    matched: str | None  # the address that proved it: "primary" | "secondary" | None
    disabled: bool  # Login.gov disabled the identity (and has not enabled it since)
    disabled_at: datetime | None = None
    enabled_at: datetime | None = None


@dataclass(frozen=True)
class Change:
    """Who did something and why, from an audit event."""

    at: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class Bar:
    sub: str
    by: Change | None  # the unlink that barred it, when in the page read


@dataclass(frozen=True)
class PendingCode:
    purpose: str  # "recovery" | "email_change"
    target_email: str
    sent_at: datetime
    expires_at: datetime
    attempts: int
    linked_identity: bool  # asked for by the identity linked now (else another one)
    subject: str | None


@dataclass(frozen=True)
class LiveSession:
    started_at: datetime
    expires_at: datetime
    linked_identity: bool


@dataclass(frozen=True)
class Usage:
    """One limit over its sliding window (chalicelib.counters): what is used of it now, and
    when the oldest use leaves the window (one more is allowed then, if it is full)."""

    used: int
    limit: int
    frees_at: datetime | None  # None: nothing counted, or counted before stamps existed

    @property
    def near(self) -> bool:
        """At the limit, or one short of it."""
        return self.used > 0 and self.used >= self.limit - 1


@dataclass(frozen=True)
class IdentityCaps:
    linked_identity: bool
    sends: Usage  # codes it asked for in the last hour
    guesses: Usage  # wrong codes it entered in the last 24 hours


@dataclass(frozen=True)
class Caps:
    account_guesses: Usage  # wrong recovery codes for this account in the last 24 hours
    paused_until: datetime | None  # recovery for this account is paused until then
    identities: tuple[IdentityCaps, ...]

    @property
    def recovery_paused(self) -> bool:
        """No recovery code verifies for this account (a pause mark, or the cap is full)."""
        return self.paused_until is not None or self.account_guesses.used >= (
            self.account_guesses.limit
        )


@dataclass(frozen=True)
class Refusal:
    at: str
    reason: str  # the refused request's event name (chalicelib.errors)
    reference: str | None  # what the refusal page showed the person
    by_linked_identity: bool | None  # None: no identity named (or none linked now)


@dataclass
class Person:
    account: Account
    now: datetime
    addresses: list[Address]
    link: Link | None
    bars: list[Bar]
    hold: Change | None  # support's hold, when on (its event, when in the page read)
    registry_status: str
    pending_codes: list[PendingCode]
    sessions: list[LiveSession]
    caps: Caps | None
    refusals: list[Refusal]  # newest first
    events: list[AuditEvent]  # newest first, one page
    older_than: str | None = None  # the sort key to read the next (older) page from
    flows_readable: bool = True  # False: sessions and codes could not be read (no index)
    ever_linked: bool = False  # an identity_linked event in the page read
    campaign: campaign.AccountCampaign | None = None  # the invitation campaign's marks
    notes: list[str] = field(default_factory=list)

    @property
    def nr_number(self) -> str:
        return self.account.nr_number

    @property
    def name(self) -> str:
        return self.account.full_name

    @property
    def status(self) -> str:
        return self.account.status

    @property
    def support_hold(self) -> bool:
        return bool(self.account.support_hold)

    def address(self, slot: str) -> Address | None:
        return next((a for a in self.addresses if a.slot == slot), None)

    @property
    def campaign_line(self) -> str:
        """The invitation campaign, for this account, in words: when it was first mailed and
        the reminders since, or why it was not mailed (as chalicelib.campaign decides)."""
        marks = self.campaign
        if marks is not None and marks.invited_at is not None:
            reminders = max(0, len(marks.waves) - 1)
            since = {0: "no reminder since", 1: "1 reminder since"}.get(
                reminders, f"{reminders} reminders since"
            )
            return f"invited {when(marks.invited_at)}; {since}"
        return "not mailed yet: " + self._not_mailed_why()

    def _not_mailed_why(self) -> str:
        if self.link is not None:
            return "linked before the campaign reached it"
        if self.status == "removed":
            return "the registry removed the account"
        if self.support_hold:
            return "support's hold on the account"
        if self.status != "active":
            return "the account is not active"
        # The campaign mails only addresses that prove the account (never a shared one).
        own = [a for a in self.addresses if a.state is AddressState.PROVES]
        if not own:
            return "no address of its own (a shared address would invite a stranger)"
        if all(a.mail and (a.mail.undeliverable_at or a.mail.complained_at) for a in own):
            return "SES reported its addresses undeliverable, or the person complained of our mail"
        if get_settings().campaign_deadline is None:
            return "no campaign is set (CAMPAIGN_DEADLINE)"
        return "no campaign run has reached it yet"


def when(value: datetime | int | float | str | None) -> str | None:
    """A time as the desk reads it: "2026-05-01 14:03 UTC"."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            moment = datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return value
    elif isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        moment = value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _at(event: AuditEvent) -> str:
    return event.at_event.split("#", 1)[0]


def _detail(event: AuditEvent) -> dict:
    return dict(event.detail.as_dict()) if event.detail else {}


def load(nr_number: str, *, older_than: str | None = None) -> Person | None:
    """The person behind registry account `nr_number`, or None when there is none.
    `older_than`: read the audit page before this sort key (the timeline's next page)."""
    account = store.get_account(nr_number)
    if account is None:
        return None
    now = clock.utc_now()
    addresses = [
        (slot, email, normalized)
        for slot, email, normalized in (
            ("primary", account.primary_email, account.primary_email_normalized),
            ("secondary", account.secondary_email, account.secondary_email_normalized),
        )
        if email
    ]
    keys = [Claim.email_key(n) for _, _, n in addresses if n]
    if account.linked_sub:
        keys.append(Claim.sub_key(account.linked_sub))
    items = {c.claim: c for c in Claim.batch_get(sorted(set(keys)), consistent_read=True)}
    found = {
        key[len(Claim.EMAIL_PREFIX) :]: claims.from_item(item)
        for key, item in items.items()
        if key.startswith(Claim.EMAIL_PREFIX)
    }
    identity = items.get(Claim.sub_key(account.linked_sub)) if account.linked_sub else None

    condition = AuditEvent.at_event < older_than if older_than else None
    page = list(
        AuditEvent.query(
            nr_number,
            range_key_condition=condition,
            scan_index_forward=False,
            limit=EVENTS_PAGE + 1,
            consistent_read=True,
        )
    )
    events = page[:EVENTS_PAGE]
    person = Person(
        account=account,
        now=now,
        addresses=[],
        link=None,
        bars=[],
        hold=None,
        registry_status=(account.imported.as_dict().get("status") if account.imported else None)
        or account.status,
        pending_codes=[],
        sessions=[],
        caps=None,
        refusals=[],
        events=events,
        older_than=events[-1].at_event if len(page) > EVENTS_PAGE else None,
        ever_linked=any(e.event == "identity_linked" for e in events),
        campaign=campaign.account_campaign(account),
    )
    linked_actor = f"subject:{keyed_hash(account.linked_sub)}" if account.linked_sub else None
    person.link = _link(account, identity, events, linked_actor)
    person.bars = _bars(account, events)
    person.hold = _hold(account, events)
    person.refusals = [
        Refusal(
            at=_at(e),
            reason=_detail(e).get("reason", ""),
            reference=_detail(e).get("reference"),
            by_linked_identity=(e.actor == linked_actor)
            if linked_actor and e.actor.startswith("subject:")
            else None,
        )
        for e in events
        if e.event == "signin_refused"
    ]

    flows = _flows(person)
    person.pending_codes = [
        PendingCode(
            purpose=f.purpose or "",
            target_email=f.target_email or "",
            sent_at=datetime.fromtimestamp(f.created_at or 0, UTC),
            expires_at=datetime.fromtimestamp(f.expires_at, UTC),
            attempts=int(f.attempts or 0),
            linked_identity=bool(account.linked_sub) and f.subject == account.linked_sub,
            subject=f.subject,
        )
        for f in flows
        if isinstance(f, Challenge) and f.expires_at > now.timestamp()
    ]
    person.sessions = [
        LiveSession(
            started_at=datetime.fromtimestamp(f.created_at or 0, UTC),
            expires_at=datetime.fromtimestamp(
                min(f.expires_at, f.absolute_expires_at or f.expires_at), UTC
            ),
            linked_identity=bool(account.linked_sub) and f.subject == account.linked_sub,
        )
        for f in flows
        if isinstance(f, Session)
        and f.expires_at > now.timestamp()
        and (f.absolute_expires_at or f.expires_at) > now.timestamp()
    ]

    linked = [account.linked_sub] if account.linked_sub else []
    asking = [c.subject for c in person.pending_codes if c.subject]
    subjects = list(dict.fromkeys(linked + asking))[:MAX_IDENTITIES]
    sends, paused, person.caps = _caps(account, addresses, subjects, now)
    others = _other_holders(account, found)
    mail = campaign.address_states(n for _, _, n in addresses if n)
    person.addresses = [
        Address(
            slot=slot,
            email=email,
            normalized=normalized,
            state=_state(account, found.get(normalized) if normalized else None),
            others=tuple(others.get(normalized, ())) if normalized else (),
            institutional=is_institutional(normalized),
            sends=sends.get(normalized) if normalized else None,
            paused_until=paused.get(normalized) if normalized else None,
            mail=_marks(mail[normalized], now) if normalized in mail else None,
        )
        for slot, email, normalized in addresses
    ]
    return person


def _marks(state: MailState, now: datetime) -> MailMarks:
    def moment(epoch: float | None) -> datetime | None:
        return datetime.fromtimestamp(epoch, UTC) if epoch else None

    since = now.timestamp() - SOFT_BOUNCE_DAYS * 86400
    return MailMarks(
        undeliverable_at=moment(state.undeliverable_at),
        undeliverable_reason=state.undeliverable_reason,
        complained_at=moment(state.complained_at),
        # Stamps are "<epoch>-<id>" (chalicelib.mail_feedback).
        soft_bounces=sum(1 for s in state.soft_bounces or () if int(s.split("-", 1)[0]) > since),
    )


def _state(account: Account, claim: claims.AddressClaim | None) -> AddressState:
    if account.status == "removed" and (claim is None or not claim.names(account.nr_number)):
        return AddressState.FREE
    if claim is None or not claim.names(account.nr_number):
        return AddressState.MISSING
    if claim.contested:
        return AddressState.SHARED
    if claim.once_shared:
        return AddressState.ONCE_SHARED
    return AddressState.PROVES


def _link(
    account: Account, identity: Claim | None, events: list[AuditEvent], linked_actor: str | None
) -> Link | None:
    if not account.linked_sub:
        return None
    linked = next(
        (e for e in events if e.event == "identity_linked" and e.actor == linked_actor), None
    )
    detail = _detail(linked) if linked is not None else {}
    disabled_at = identity.disabled_at if identity is not None else None
    enabled_at = identity.enabled_at if identity is not None else None
    return Link(
        sub=account.linked_sub,
        login_gov_email=account.linked_email,
        linked_at=account.linked_at,
        method=detail.get("method"),
        matched=detail.get("matched"),
        disabled=bool(account.login_gov_disabled) or (identity is not None and identity.disabled),
        disabled_at=datetime.fromtimestamp(disabled_at, UTC) if disabled_at else None,
        enabled_at=datetime.fromtimestamp(enabled_at, UTC) if enabled_at else None,
    )


def _change(event: AuditEvent) -> Change:
    return Change(at=_at(event), actor=event.actor, reason=_detail(event).get("reason"))


def _bars(account: Account, events: list[AuditEvent]) -> list[Bar]:
    bars = []
    for sub in sorted(account.barred_subs or ()):
        stand_in = keyed_hash(sub)
        barred = next(
            (
                e
                for e in events
                if e.event == "identity_unlinked"
                and _detail(e).get("barred") == "yes"
                and _detail(e).get("subject") == stand_in
            ),
            None,
        )
        bars.append(Bar(sub, _change(barred) if barred is not None else None))
    return bars


def _hold(account: Account, events: list[AuditEvent]) -> Change | None:
    if not account.support_hold:
        return None
    event = next((e for e in events if e.event == "account_disabled"), None)
    return _change(event) if event is not None else Change(at="", actor="")


def _flows(person: Person) -> list[Flow]:
    """Sessions and codes naming the account. A table without the by_account index (infra
    not deployed yet) makes the page say so rather than fail."""
    try:
        return list(Flow.by_account.query(person.nr_number, limit=MAX_FLOWS))
    except PynamoDBException as exc:
        if "index" not in str(exc).lower():
            raise
        log_event("person_flows_unreadable", nr_number=person.nr_number)
        person.flows_readable = False
        person.notes.append(
            "Sessions and pending codes could not be read: the flows table has no by_account "
            "index yet (deploy the infra stack)."
        )
        return []


def _caps(
    account: Account, addresses: list, subjects: list[str], now: datetime
) -> tuple[dict[str, Usage], dict[str, datetime], Caps]:
    """The counters that concern this account, in one BatchGetItem: each limit's current and
    previous fixed windows, and the pause marks (ids as chalicelib.send_limits and
    chalicelib.guess_limits make them; read only)."""
    settings = get_settings()
    at = now.timestamp()
    normalized = [n for _, _, n in addresses if n]
    account_guesses = guess_limits._account_counter(account.nr_number, at)
    address_sends = {n: send_limits._counter("address", n, at) for n in normalized}
    identity_sends = {s: send_limits._counter("subject", s, at) for s in subjects}
    identity_guesses = {s: guess_limits._identity_counter(s, at) for s in subjects}
    address_marks = {n: guess_limits.address_pause_marks(n, at) for n in normalized}
    account_marks = guess_limits._account_pause_marks(account.nr_number, at)
    sliding = [account_guesses, *address_sends.values(), *identity_sends.values()]
    sliding += identity_guesses.values()
    ids = [i for c in sliding for i in (c.current_id, c.previous_id)]
    ids += [m for marks in address_marks.values() for m in marks] + account_marks
    found = {
        item.flow_id: item
        for item in WindowCounter.batch_get(sorted(set(ids)), consistent_read=True)
        if isinstance(item, WindowCounter)
    }

    def usage(counter: counters.Sliding, limit: int) -> Usage:
        start = at - counter.seconds
        items = [found.get(counter.current_id), found.get(counter.previous_id)]
        stamps = [
            t
            for item in items
            if item is not None
            for t in (counters._stamp_time(v) for v in item.stamps or ())
            if t > start
        ]
        current = found.get(counter.current_id)
        used = (int(current.sends or 0) if current else 0) + counter.earlier(found)
        oldest = min(stamps) if stamps else None
        frees = datetime.fromtimestamp(oldest + counter.seconds, UTC) if oldest else None
        return Usage(max(used, 0), limit, frees)

    def paused_until(marks: list[str]) -> datetime | None:
        live = [found[m] for m in marks if counters.is_live(found.get(m), at)]
        return datetime.fromtimestamp(max(m.expires_at for m in live), UTC) if live else None

    caps = Caps(
        account_guesses=usage(
            account_guesses, settings.recovery_failed_guesses_per_account_per_day
        ),
        paused_until=paused_until(account_marks),
        identities=tuple(
            IdentityCaps(
                linked_identity=subject == account.linked_sub,
                sends=usage(identity_sends[subject], settings.code_sends_per_hour),
                guesses=usage(
                    identity_guesses[subject], settings.code_failed_guesses_per_identity_per_day
                ),
            )
            for subject in subjects
        ),
    )
    sends = {
        n: usage(c, settings.code_sends_per_address_per_hour) for n, c in address_sends.items()
    }
    paused = {n: until for n, marks in address_marks.items() if (until := paused_until(marks))}
    return sends, paused, caps


def _other_holders(
    account: Account, found: dict[str, claims.AddressClaim]
) -> dict[str, list[Holder]]:
    """address -> the other accounts holding it, with their names (one BatchGetItem, only
    when an address is shared)."""
    others = {
        address: sorted(claim.holders - {account.nr_number})
        for address, claim in found.items()
        if claim.holders - {account.nr_number}
    }
    numbers = sorted({n for holders in others.values() for n in holders})
    names = (
        {
            a.nr_number: a.full_name
            for a in Account.batch_get(
                numbers, attributes_to_get=["nr_number", "first_name", "last_name"]
            )
        }
        if numbers
        else {}
    )
    return {
        address: [Holder(n, names.get(n)) for n in holders] for address, holders in others.items()
    }
