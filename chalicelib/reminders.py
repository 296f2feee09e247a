"""Remind linked users whose primary email is .gov/.mil/.edu to change it (FAQ advice).

At most one reminder per account per REMINDER_INTERVAL_DAYS, even with two runs at once:
an account's reminder slot is claimed with a conditional update of `last_reminder_at`
before the mail is queued (chalicelib.outbox), and given back if the outbox does not take
it, so a failed send is retried by a later run. Each run handles at most `limit` accounts and logs one summary line.

Finding candidates is a filtered, paginated Scan of the accounts table (linked accounts
whose last reminder is old enough): a once-a-day job over ~93,000 small items, cheaper than
keeping a sparse index in step with every link, import and email change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import UpdateError

from chalicelib import clock, outbox
from chalicelib.config import get_settings
from chalicelib.emails import is_institutional
from chalicelib.errors import MailNotQueued
from chalicelib.logs import count, log_event
from chalicelib.models import Account

REMINDER_TEMPLATE = "institutional_email_reminder"
DEFAULT_LIMIT = 500


@dataclass
class ReminderSummary:
    scanned: int = 0
    candidates: int = 0
    sent: int = 0
    already_claimed: int = 0
    failed: int = 0
    more_remaining: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def send_institutional_email_reminders(
    now: datetime | None = None, limit: int = DEFAULT_LIMIT
) -> ReminderSummary:
    now = now or clock.utc_now()
    cutoff = now - timedelta(days=get_settings().reminder_interval_days)
    summary = ReminderSummary()
    due = (
        Account.linked_sub.exists()
        & (Account.status == "active")
        & (Account.last_reminder_at.does_not_exist() | (Account.last_reminder_at < cutoff))
    )
    for account in Account.scan(due, page_size=500):
        summary.scanned += 1
        if not is_institutional(account.primary_email_normalized):
            continue
        if summary.candidates >= limit:
            summary.more_remaining = True
            break
        summary.candidates += 1
        if not _claim_slot(account, now, cutoff):
            summary.already_claimed += 1
            continue
        try:
            outbox.enqueue(REMINDER_TEMPLATE, account.primary_email, account=account)
        except MailNotQueued:
            _release_slot(account, now)
            summary.failed += 1
            continue
        summary.sent += 1
    log_event("reminders_finished", **summary.as_dict())
    count("RemindersSent", summary.sent)
    return summary


def _claim_slot(account: Account, now: datetime, cutoff: datetime) -> bool:
    """Set last_reminder_at = now unless another run did since we read the account."""
    try:
        account.update(
            actions=[Account.last_reminder_at.set(now)],
            condition=Account.last_reminder_at.does_not_exist()
            | (Account.last_reminder_at < cutoff),
            add_version_condition=False,
        )  # the slot is all we touch; unrelated edits may race
    except UpdateError:
        return False
    return True


def _release_slot(account: Account, claimed_at: datetime) -> None:
    """Give the slot back after a failed send, unless someone else moved it meanwhile."""
    try:
        account.update(
            actions=[Account.last_reminder_at.remove()],
            condition=Account.last_reminder_at == claimed_at,
            add_version_condition=False,
        )
    except UpdateError:
        pass
