"""The migration campaign: an invitation, then reminders before CAMPAIGN_DEADLINE, to every
active account that has not linked yet (docs/operations.md, "The migration campaign").

Waves: wave 0 is the invitation, due from the first run; wave i (1..n) is due
CAMPAIGN_REMINDER_DAYS[i-1] days before the deadline. A run mails each account the latest due
wave it has not had (an account imported late gets the current reminder, not the whole
series; its first mail is always the invitation's text), at most CAMPAIGN_MAX_SENDS_PER_RUN
mails (SES quota) and for at most RUN_SECONDS; the rest go in the next run.

Reads: only accounts in the sparse index by_awaiting_link (an account is there exactly while
it is not linked), and of those only the ones whose latest wave (the index's range key) is
older than the wave due: a rerun reads nothing it has mailed. Per page of accounts, one
BatchGetItem for their addresses' claims (shared?) and mail states (undeliverable?).

Once per wave: the account's wave mark is claimed with a conditional update (still awaiting
a link, still active, an older wave) BEFORE its mail is queued, and given back if the outbox
does not take it. The message carries a key derived from (account, wave), and the outbox
worker sends one key once (chalicelib.outbox): a mail queued twice goes out once.

The report's reads are at the end of this module (`account_campaign`, `address_states`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib import claims, clock, outbox
from chalicelib.config import get_settings
from chalicelib.emails import is_institutional
from chalicelib.logs import count, log_event
from chalicelib.models import (
    AWAITING_LINK,
    NO_WAVE,
    Account,
    CampaignState,
    Claim,
    MailState,
    expiry_bucket,
)
from chalicelib.store import condition_failed

INVITATION_TEMPLATE = "campaign_invitation"
REMINDER_TEMPLATE = "campaign_reminder"
STATE_KEY = "campaign#state"
# Accounts per Query page (about 0.5 MB of the index; DynamoDB returns at most 1 MB).
QUERY_PAGE = 1000
# Accounts per BatchGetItem: two addresses each, a claim and a mail state per address.
PAGE = 25
# Well inside Lambda's 15 minutes; what is left goes in the next run.
RUN_SECONDS = 600
# The state item outlives any campaign (TTL needs some expiry).
STATE_SECONDS = 5 * 365 * 24 * 3600
# Daily at 14:00 UTC (9:00 Eastern): mail read at the start of the working day.
RUN_HOUR = 14
SKIP_REASONS = (
    "linked",
    "removed",
    "disabled",
    "held",
    "shared",
    "undeliverable",
    "complained",
)


@dataclass(frozen=True)
class Wave:
    number: int
    starts: date | None  # None: the invitation, due from the first run
    days_before: int | None

    def as_dict(self) -> dict:
        return {
            "wave": self.number,
            "starts": self.starts.isoformat() if self.starts else None,
            "days_before": self.days_before,
            "kind": "invitation" if self.number == 0 else "reminder",
        }


def waves(deadline: date | None = None) -> list[Wave]:
    """The campaign's waves (none without a deadline)."""
    settings = get_settings()
    deadline = deadline or settings.campaign_deadline
    if deadline is None:
        return []
    return [Wave(0, None, None)] + [
        Wave(i + 1, deadline - timedelta(days=days), days)
        for i, days in enumerate(settings.campaign_reminder_days)
    ]


def due_wave(today: date) -> int | None:
    """The latest wave whose day has come (None: no campaign, or past its deadline)."""
    deadline = get_settings().campaign_deadline
    if deadline is None or today > deadline:
        return None
    due = 0
    for wave in waves()[1:]:
        if wave.starts is not None and wave.starts <= today:
            due = wave.number
    return due


@dataclass
class RunSummary:
    day: str
    wave: int | None
    read: int = 0
    sent: int = 0
    # Outbox refusals: the wave mark was given back; the next run tries again.
    not_queued: int = 0
    skipped: dict = field(default_factory=lambda: {reason: 0 for reason in SKIP_REASONS})
    paused: bool = False
    # The send cap or the time budget stopped the run: more go in the next run.
    more_remaining: bool = False
    finished_at: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


# --- the run ----------------------------------------------------------------------------------


def run(*, limit: int | None = None, today: date | None = None) -> RunSummary:
    """One campaign run (the scheduled function and `manage.py campaign run`)."""
    settings = get_settings()
    today = today or clock.utc_now().date()
    limit = settings.campaign_max_sends_per_run if limit is None else limit
    wave = due_wave(today)
    summary = RunSummary(day=today.isoformat(), wave=wave)
    state = _state()
    if state is not None and state.paused:
        summary.paused = True
    elif wave is not None and settings.campaign_deadline is not None:
        _mail_wave(wave, summary, limit, settings.campaign_deadline)
    summary.finished_at = clock.utc_now().isoformat()
    _save_last_run(summary)
    log_event(
        "campaign_run_finished",
        day=summary.day,
        wave=wave,
        read=summary.read,
        sent=summary.sent,
        not_queued=summary.not_queued,
        paused=summary.paused,
        more_remaining=summary.more_remaining,
        **{f"skipped_{k}": v for k, v in summary.skipped.items()},
    )
    count("CampaignMailQueued", summary.sent)
    return summary


def _mail_wave(wave: int, summary: RunSummary, limit: int, deadline: date) -> None:
    started = clock.monotonic()
    page: list[Account] = []
    # Only accounts awaiting a link whose latest wave is older than this one.
    for account in Account.by_awaiting_link.query(
        AWAITING_LINK, Account.campaign_wave < wave, page_size=QUERY_PAGE
    ):
        page.append(account)
        if len(page) == PAGE:
            if not _mail_page(page, wave, summary, limit, deadline):
                return
            page = []
            if clock.monotonic() - started > RUN_SECONDS:
                summary.more_remaining = True
                return
    if page:
        _mail_page(page, wave, summary, limit, deadline)


def _mail_page(
    page: list[Account], wave: int, summary: RunSummary, limit: int, deadline: date
) -> bool:
    """Mail what is due on one page; False when the cap stopped the run."""
    claim_of, state_of = _address_items(
        {address for account in page for address in account.normalized_emails()}
    )
    ready: list[tuple[Account, outbox.Mail]] = []
    for account in page:
        summary.read += 1
        reason, recipients = _eligibility(account, claim_of, state_of)
        if reason is not None:
            summary.skipped[reason] += 1
            continue
        if summary.sent + len(ready) >= limit:
            summary.more_remaining = True
            break
        if not _claim_wave(account, wave):
            # Linked (or removed, or mailed by a run at the same time) since the index said.
            summary.skipped["linked"] += 1
            continue
        ready.append((account, _mail(account, wave, recipients, deadline)))
    sent_here = 0
    for start in range(0, len(ready), 10):
        chunk = ready[start : start + 10]
        failed = outbox.enqueue_keyed([mail for _, mail in chunk])
        for account, mail in chunk:
            if mail in failed:
                _release_wave(account, wave)
                summary.not_queued += 1
            else:
                sent_here += 1
    summary.sent += sent_here
    if sent_here:
        _count_sent(wave, sent_here)
    return not summary.more_remaining


def _eligibility(account: Account, claim_of: dict, state_of: dict) -> tuple[str | None, list[str]]:
    """(skip reason, None) or (None, the addresses to mail)."""
    if account.linked_sub or account.awaiting_link != AWAITING_LINK:
        return "linked", []
    if account.status == "removed":
        return "removed", []
    if account.support_hold:
        return "held", []
    if account.status != "active":
        return "disabled", []
    own = []
    for address, shown in _addresses(account):
        claim = claim_of.get(address)
        # A shared or once-shared address proves nobody: inviting it would invite a stranger.
        if claim is None or claim.proves != account.nr_number:
            continue
        own.append((address, shown))
    if not own:
        return "shared", []
    deliverable = [
        shown
        for address, shown in own
        if not (state_of.get(address) and _stops_campaign(state_of[address]))
    ]
    if not deliverable:
        bounced = any(state_of.get(a) and state_of[a].undeliverable for a, _ in own)
        return ("undeliverable" if bounced else "complained"), []
    return None, deliverable


def _stops_campaign(state: MailState) -> bool:
    # A bounce hurts SES's sender reputation; a complaint says the person wants no more.
    return state.undeliverable or state.complained


def _addresses(account: Account) -> list[tuple[str, str]]:
    pairs = [(account.primary_email_normalized, account.primary_email)]
    if account.secondary_email_normalized and account.secondary_email:
        pairs.append((account.secondary_email_normalized, account.secondary_email))
    return pairs


def _address_items(addresses: set[str]) -> tuple[dict, dict]:
    """The `email#` claims and `mail state` items of these addresses: one BatchGetItem per
    50 addresses (both live in the claims table)."""
    claim_of: dict[str, claims.AddressClaim] = {}
    state_of: dict[str, MailState] = {}
    keys = sorted([Claim.email_key(a) for a in addresses] + [MailState.key(a) for a in addresses])
    connection = Claim._get_connection()
    for start in range(0, len(keys), 100):
        pending = keys[start : start + 100]
        while pending:
            # Key maps, whatever the stub says (PynamoDB's own batch_get passes them so).
            request: Any = [{"claim": key} for key in pending]
            answer = connection.batch_get_item(request, consistent_read=True)
            for item in answer.get("Responses", {}).get(Claim.Meta.table_name, []):
                key = item["claim"]["S"]
                if key.startswith(MailState.PREFIX):
                    state = MailState.from_raw_data(item)
                    state_of[state.address] = state
                else:
                    claim = claims.from_item(Claim.from_raw_data(item))
                    claim_of[claim.address] = claim
            unprocessed = answer.get("UnprocessedKeys", {}).get(Claim.Meta.table_name, {})
            pending = [k["claim"]["S"] for k in unprocessed.get("Keys", [])]
    return claim_of, state_of


def _mail(account: Account, wave: int, recipients: list[str], deadline: date) -> outbox.Mail:
    settings = get_settings()
    first = (account.campaign_wave if account.campaign_wave is not None else NO_WAVE) < 0
    today = clock.utc_now().date()
    return outbox.Mail(
        INVITATION_TEMPLATE if first else REMINDER_TEMPLATE,
        recipients,
        {
            "first_name": account.first_name,
            "nr_number": account.nr_number,
            "addresses": recipients,
            "deadline": f"{deadline:%B} {deadline.day}, {deadline.year}",
            "days_left": (deadline - today).days,
            "institutional": any(is_institutional(a.lower()) for a in recipients),
            "help_url": settings.app_base_url + "/help",
            "signin_url": settings.app_base_url + "/",
        },
        key=f"campaign-{account.nr_number}-{settings.campaign_deadline}-{wave}",
    )


def _claim_wave(account: Account, wave: int) -> bool:
    """Mark the wave mailed unless the account linked, left, or has it already. No version:
    bookkeeping that a link or an import in flight must not have to retry for."""
    try:
        Account._get_connection().update_item(
            account.nr_number,
            actions=[
                Account.campaign_wave.set(wave),
                Account.campaign_waves.add({wave}),
                Account.campaign_invited_at.set(Account.campaign_invited_at | clock.utc_now()),
            ],
            condition=(Account.awaiting_link == AWAITING_LINK)
            & (Account.status == "active")
            & (Account.campaign_wave < wave),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def _release_wave(account: Account, wave: int) -> None:
    """Give the wave back after the outbox refused its mail (the next run sends it)."""
    previous = account.campaign_wave if account.campaign_wave is not None else NO_WAVE
    actions: list[Action] = [Account.campaign_wave.set(previous)]
    if wave not in (account.campaign_waves or set()):
        actions.append(Account.campaign_waves.delete({wave}))
    if account.campaign_invited_at is None:
        actions.append(Account.campaign_invited_at.remove())
    try:
        Account._get_connection().update_item(
            account.nr_number, actions=actions, condition=Account.campaign_wave == wave
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        log_event("campaign_release_lost", logging.WARNING, nr_number=account.nr_number)


# --- the campaign's own record -----------------------------------------------------------------


def _state() -> CampaignState | None:
    try:
        return CampaignState.get(STATE_KEY, consistent_read=True)
    except DoesNotExist:
        return None


def _ensure_state() -> None:
    now = clock.epoch_seconds()
    expires = now + STATE_SECONDS
    try:
        CampaignState(
            STATE_KEY,
            expires_at=expires,
            expiry_bucket=expiry_bucket(expires),
            created_at=now,
            sent_per_wave={},
        ).save(condition=CampaignState.flow_id.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise


def _count_sent(wave: int, sent: int) -> None:
    _ensure_state()
    path = CampaignState.sent_per_wave[str(wave)]
    CampaignState(STATE_KEY).update(actions=[path.set((path | 0) + sent)])


def _save_last_run(summary: RunSummary) -> None:
    _ensure_state()
    CampaignState(STATE_KEY).update(
        actions=[CampaignState.last_run.set(json.dumps(summary.as_dict(), sort_keys=True))]
    )


def set_paused(paused: bool, actor: str) -> dict:
    """manage.py campaign pause|resume: takes effect at the next run, without a deploy."""
    _ensure_state()
    CampaignState(STATE_KEY).update(
        actions=[CampaignState.paused.set(paused), CampaignState.paused_by.set(actor)]
    )
    log_event("campaign_paused" if paused else "campaign_resumed", actor=actor)
    return status()


def status(today: date | None = None) -> dict:
    """manage.py campaign status: the waves with their days, mails queued per wave, the last
    run (skipped by reason), the next run, paused."""
    settings = get_settings()
    today = today or clock.utc_now().date()
    state = _state()
    sent = dict(state.sent_per_wave.as_dict()) if state and state.sent_per_wave else {}
    last_run = json.loads(state.last_run) if state and state.last_run else None
    deadline = settings.campaign_deadline
    return {
        "deadline": deadline.isoformat() if deadline else None,
        "paused": bool(state and state.paused),
        "paused_by": state.paused_by if state else None,
        "due_wave": due_wave(today),
        "waves": [
            {**wave.as_dict(), "sent": int(sent.get(str(wave.number), 0))} for wave in waves()
        ],
        "max_sends_per_run": settings.campaign_max_sends_per_run,
        "last_run": last_run,
        "next_run": _next_run(clock.utc_now()).isoformat() if deadline else None,
    }


def _next_run(now: datetime) -> datetime:
    """The schedule's next firing (chalicelib/routes/schedules.py: daily at RUN_HOUR UTC)."""
    at = now.replace(hour=RUN_HOUR, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


# --- reads for the progress report -------------------------------------------------------------


@dataclass(frozen=True)
class AccountCampaign:
    """One account's campaign record: when it was first mailed (None: never), the waves it
    was mailed, and the latest."""

    nr_number: str
    invited_at: datetime | None
    waves: frozenset[int]
    latest_wave: int | None


def account_campaign(account: Account) -> AccountCampaign:
    """The campaign record of an account as read (from a scan, a query or a get): no extra
    request. `invited_at` is the first campaign mail queued (the invitation, or the reminder
    that was due when the account was first reached)."""
    latest = account.campaign_wave
    return AccountCampaign(
        nr_number=account.nr_number,
        invited_at=account.campaign_invited_at,
        waves=frozenset(int(w) for w in (account.campaign_waves or ())),
        latest_wave=None if latest is None or latest < 0 else int(latest),
    )


def address_states(addresses: Iterable[str]) -> dict[str, MailState]:
    """The mail state of each address that has one (undeliverable, complained, soft bounces):
    BatchGetItem on the claims table, 100 keys a request. Addresses as normalized."""
    _, state_of = _address_items(set(addresses))
    return state_of


def all_address_states() -> list[MailState]:
    """Every address SES reported on (for counts): a scan of the claims table filtered to the
    `mailstate#` items (few; the report runs weekly)."""
    return list(MailState.scan(MailState.claim.startswith(MailState.PREFIX)))


def wave_counts() -> dict[int, int]:
    """Mails queued per wave, as the runs counted them (the campaign's own record)."""
    state = _state()
    sent = state.sent_per_wave.as_dict() if state and state.sent_per_wave else {}
    return {int(k): int(v) for k, v in Counter(sent).items()}
