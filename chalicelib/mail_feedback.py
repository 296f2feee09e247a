"""What SES tells us about an address after a send: bounces and complaints.

SES publishes events of the configuration set SES_CONFIGURATION_SET (every send of the
outbox worker names it) to an SNS topic; a queue subscribed to it hands them to
`handle_mail_feedback` (chalicelib/routes/mail_worker.py). The records are SES's documented
event format ("Contents of event data that Amazon SES publishes to Amazon SNS": `eventType`,
or `notificationType` for identity notifications; a `bounce` or `complaint` object with its
recipients), inside SNS's envelope unless the subscription delivers raw messages.

Per address, one item of its own in the claims table (`mailstate#<address>`, models.MailState;
never on the `email#` claim, which other writers replace):

- a hard bounce (bounceType Permanent) marks the address undeliverable at once;
- SOFT_BOUNCES_UNDELIVERABLE soft ones (Transient, Undetermined) within SOFT_BOUNCE_DAYS
  do too;
- a complaint is recorded.

An undeliverable or complained-about address gets no campaign mail and no notice
(`suppressed`); a code the person asked for is still sent (they may know better than SES).
Redelivery is harmless: each record's feedbackId is a stamp, added to a set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from pynamodb.expressions.update import Action

from chalicelib import clock
from chalicelib.emails import try_normalize_email
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import MailState

SOFT_BOUNCES_UNDELIVERABLE = 3
SOFT_BOUNCE_DAYS = 30
HARD = "Permanent"
# Mail a person asks for and waits for: sent whatever SES said of the address before.
REQUESTED_TEMPLATES = frozenset({"recovery_code", "email_change_code"})


@dataclass(frozen=True)
class Feedback:
    kind: str  # "hard_bounce", "soft_bounce" or "complaint"
    address: str  # normalized
    at: int  # epoch seconds of SES's own timestamp
    feedback_id: str


def parse(body: str) -> list[Feedback]:
    """The bounce and complaint records in one queue message (SNS envelope or raw); other
    event types (Delivery, Send, ...) give nothing."""
    data = json.loads(body)
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        data = json.loads(data["Message"])
    kind = data.get("eventType") or data.get("notificationType")
    if kind == "Bounce":
        detail = data["bounce"]
        feedback_kind = "hard_bounce" if detail.get("bounceType") == HARD else "soft_bounce"
        recipients = detail.get("bouncedRecipients", [])
    elif kind == "Complaint":
        detail = data["complaint"]
        feedback_kind = "complaint"
        recipients = detail.get("complainedRecipients", [])
    else:
        return []
    at = _epoch(detail.get("timestamp"))
    found = []
    for recipient in recipients:
        address = try_normalize_email(recipient.get("emailAddress", ""))
        if address:
            found.append(Feedback(feedback_kind, address, at, str(detail.get("feedbackId", ""))))
    return found


def _epoch(timestamp: str | None) -> int:
    if not timestamp:
        return clock.epoch_seconds()
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def handle_messages(bodies: list[str]) -> dict:
    """Record every bounce and complaint in these queue messages. An unreadable message is
    logged and dropped (it will never read better); a storage error raises, so SQS delivers
    the batch again."""
    summary = {"hard_bounce": 0, "soft_bounce": 0, "complaint": 0, "unreadable": 0}
    for body in bodies:
        try:
            records = parse(body)
        except (ValueError, KeyError, TypeError, AttributeError):
            summary["unreadable"] += 1
            log_event("mail_feedback_unreadable", logging.WARNING)
            continue
        for feedback in records:
            record(feedback)
            summary[feedback.kind] += 1
    return summary


def record(feedback: Feedback) -> MailState:
    """Apply one record to the address's mail state; returns the state after it."""
    now = clock.epoch_seconds()
    state = MailState(MailState.key(feedback.address))
    actions: list[Action]
    if feedback.kind == "complaint":
        actions = [MailState.complained_at.set(MailState.complained_at | feedback.at)]
    elif feedback.kind == "hard_bounce":
        actions = [
            MailState.undeliverable_at.set(MailState.undeliverable_at | feedback.at),
            MailState.undeliverable_reason.set(MailState.undeliverable_reason | "hard bounce"),
        ]
    else:
        stamp = f"{feedback.at}-{feedback.feedback_id or now}"
        actions = [MailState.soft_bounces.add({stamp})]
    state.update(actions=[*actions, MailState.updated_at.set(now)])
    if feedback.kind == "soft_bounce" and not state.undeliverable:
        recent = [
            s
            for s in state.soft_bounces or ()
            if int(s.split("-", 1)[0]) > now - SOFT_BOUNCE_DAYS * 86400
        ]
        if len(recent) >= SOFT_BOUNCES_UNDELIVERABLE:
            state.update(
                actions=[
                    MailState.undeliverable_at.set(MailState.undeliverable_at | now),
                    MailState.undeliverable_reason.set(
                        MailState.undeliverable_reason
                        | f"{SOFT_BOUNCES_UNDELIVERABLE} soft bounces in {SOFT_BOUNCE_DAYS} days"
                    ),
                ]
            )
    log_event(
        "mail_feedback_recorded",
        kind=feedback.kind,
        address=keyed_hash(feedback.address),
        undeliverable=state.undeliverable,
    )
    count("MailFeedback", kind=feedback.kind)
    return state


def state_of(address: str) -> MailState | None:
    """The mail state of one normalized address (None: SES never reported on it)."""
    try:
        return MailState.get(MailState.key(address), consistent_read=True)
    except MailState.DoesNotExist:
        return None


def suppressed(template: str, recipients: list[str]) -> list[str]:
    """Of `recipients`, those this mail must not go to: undeliverable or complained-about
    addresses, unless the person asked for this mail (a code). One BatchGetItem."""
    if template in REQUESTED_TEMPLATES or not recipients:
        return []
    normalized = {r: try_normalize_email(r) for r in recipients}
    keys = sorted({MailState.key(a) for a in normalized.values() if a})
    stopped = {
        state.address
        for state in MailState.batch_get(keys, consistent_read=True)
        # A bounce hurts the sender's reputation at SES; a complaint asks us to stop.
        if state.undeliverable or state.complained
    }
    return [r for r, a in normalized.items() if a in stopped]


def undeliverable(recipients: list[str]) -> list[str]:
    """Of `recipients`, those SES marked undeliverable (the account page asks the owner to
    replace them). One BatchGetItem."""
    normalized = {r: try_normalize_email(r) for r in recipients}
    keys = sorted({MailState.key(a) for a in normalized.values() if a})
    if not keys:
        return []
    bounced = {
        state.address
        for state in MailState.batch_get(keys, consistent_read=True)
        if state.undeliverable
    }
    return [r for r, a in normalized.items() if a in bounced]
