"""The outbox: every mail this service sends is a message on an SQS queue.

Requests never wait for SES. A sign-in, a recovery or an email change commits its own
transaction, then enqueues its mail: one SendMessage (or SendMessageBatch) with short
timeouts (OUTBOX_*). The worker (`send_queued_mail`, chalicelib/routes/mail_worker.py)
renders the templates and sends through SES (chalicelib.mail) with bounded retries. A
message SES keeps refusing is delivered again by SQS and, after the queue's maxReceiveCount
(infra/template.yaml), moves to the dead-letter queue, where an alarm watches it: never lost
silently.

- The body holds only what the sender needs: the template, the recipients and the values
  the template shows (a code, a first name, a registry number). The queues are encrypted
  with the stage's key; nothing here is logged but keyed hashes.
- A decoy (a recovery code asked for an address that is no registry address) is enqueued
  like a real message, so both answers cost the same requests; the worker drops it.
- SQS delivers at least once, and may hand one message to two workers at once: the worker
  claims each message id (`mailsent#`, a conditional put, "sending") before it calls SES and
  marks it "sent" after. A delivery that finds the id sent skips it; one that finds it being
  sent leaves it to SQS (it is not deleted: the other worker may yet fail). A claim lapses
  after SENDING_CLAIM_SECONDS, so a worker that died mid-send holds the mail back only until
  SQS's next delivery. (A crash inside the very SES call that succeeded is the one window
  left: that message may go out twice, never zero times.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib import clients, clock
from chalicelib.errors import MailNotQueued, MailNotSent
from chalicelib.logs import count, log_event
from chalicelib.models import Flow, SentMail, expiry_bucket
from chalicelib.store import condition_failed

VERSION = 1
# Longer than SQS keeps a message (4 days by default), so a redelivery always finds it.
SENT_MEMORY_SECONDS = 5 * 24 * 3600
# Longer than the worker may run (its 120 s Lambda timeout, .chalice/config.json), shorter
# than the queue's visibility timeout (720 s, infra/template.yaml): SQS's next delivery after
# a worker died mid-send finds its claim lapsed and sends.
SENDING_CLAIM_SECONDS = 180
SENDING, SENT = "sending", "sent"


@dataclass(frozen=True)
class Mail:
    template: str
    to: list[str]
    context: dict
    # A key of the sender's own (the campaign's account and wave): the worker sends one key
    # once, however often it was queued. Without it, the SQS message id is the key.
    key: str | None = None

    def body(self) -> str:
        data = {"v": VERSION, "template": self.template, "to": self.to, "context": self.context}
        if self.key:
            data["key"] = self.key
        return json.dumps(data, sort_keys=True, ensure_ascii=False)


# --- enqueue (the request side) ------------------------------------------------------------------


def queue_url() -> str:
    """The outbox queue's URL (looked up once per container: chalicelib.clients)."""
    return clients.outbox_queue_url()


def enqueue(template: str, to: str | list[str], **context: Any) -> None:
    """Queue one mail to one address or a few (they see each other: use enqueue_each for
    mail each address should get on its own). MailNotQueued if SQS does not take it."""
    recipients = [to] if isinstance(to, str) else list(to)
    _send([Mail(template, recipients, _plain(context)).body()], template)


def enqueue_each(template: str, recipients: list[str], **context: Any) -> None:
    """One mail per address, each showing only its own address: one SendMessageBatch."""
    plain = _plain(context)
    _send([Mail(template, [address], plain).body() for address in recipients], template)


def enqueue_keyed(mails: list[Mail]) -> list[Mail]:
    """Queue up to 10 keyed mails in one SendMessageBatch; returns the ones SQS did not take
    (all of them when the call itself failed)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not mails:
        return []
    if len(mails) > 10:
        raise ValueError("SendMessageBatch takes at most 10 messages")
    bodies = [Mail(m.template, m.to, _plain(m.context), m.key).body() for m in mails]
    try:
        answer = clients.sqs().send_message_batch(
            QueueUrl=queue_url(),
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
        )
    except (ClientError, BotoCoreError):
        count("MailNotQueued", len(mails), template=mails[0].template)
        return list(mails)
    failed = [mails[int(entry["Id"])] for entry in answer.get("Failed", [])]
    if failed:
        count("MailNotQueued", len(failed), template=mails[0].template)
    count("MailQueued", len(mails) - len(failed), template=mails[0].template)
    return failed


def enqueue_decoy(template: str, to: str, **context: Any) -> None:
    """The same request a real mail costs, for an answer that must not tell them apart: the
    message a real one would be, of the same size, marked for the worker to drop."""
    body = json.loads(Mail(template, [to], _plain(context)).body())
    _send([json.dumps({**body, "decoy": True}, sort_keys=True, ensure_ascii=False)], "decoy")


def _send(bodies: list[str], template: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if len(bodies) == 1:
            clients.sqs().send_message(QueueUrl=queue_url(), MessageBody=bodies[0])
        else:
            answer = clients.sqs().send_message_batch(
                QueueUrl=queue_url(),
                Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
            )
            if answer.get("Failed"):
                raise MailNotQueued(
                    f"{len(answer['Failed'])} of {len(bodies)} not queued", template=template
                )
    except (ClientError, BotoCoreError) as exc:
        code = clients.aws_error_code(exc) or exc.__class__.__name__
        count("MailNotQueued", template=template)
        raise MailNotQueued(
            f"the outbox did not take {template}: {code}", reason=code, template=template
        ) from None
    count("MailQueued", len(bodies), template=template)


def _plain(context: dict) -> dict:
    """Template values as JSON: an account becomes the few fields mail shows of it."""
    plain = {}
    for name, value in context.items():
        if hasattr(value, "nr_number") and hasattr(value, "first_name"):
            value = {"nr_number": value.nr_number, "first_name": value.first_name}
        plain[name] = value
    return plain


# --- deliver (the worker side) -----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    message_id: str
    body: str
    receipt_handle: str | None = None


class BatchIncomplete(Exception):
    """Some messages were not sent: raising leaves them to SQS, which delivers them again."""


def deliver_batch(messages: list[Received]) -> dict:
    """Send each message; the ones sent are deleted from the queue, the others raise
    BatchIncomplete so that SQS delivers them again (and to the dead-letter queue at last)."""
    sent, failed = [], []
    summary = {"sent": 0, "duplicates": 0, "decoys": 0, "suppressed": 0, "failed": 0}
    for message in messages:
        try:
            outcome = deliver(message)
        except MailNotSent as exc:
            log_event(
                "outbox_send_failed",
                logging.WARNING,
                reason=exc.context.get("reason"),
                template=exc.context.get("template"),
                message=message.message_id,
            )
            failed.append(message)
            summary["failed"] += 1
            continue
        sent.append(message)
        summary[outcome] += 1
    if failed:
        # Only the failed ones may come back: the sent ones leave the queue now.
        _delete([m for m in sent if m.receipt_handle])
        raise BatchIncomplete(f"{len(failed)} of {len(messages)} messages not sent")
    return summary


def deliver(message: Received) -> str:
    """ "sent", "duplicates" (sent before), "decoys" or "suppressed" (every recipient
    undeliverable, chalicelib.mail_feedback); MailNotSent when SES refuses."""
    try:
        data = json.loads(message.body)
        if data.get("decoy"):
            return "decoys"
        mail = Mail(data["template"], list(data["to"]), dict(data["context"]), data.get("key"))
    except (ValueError, KeyError, TypeError, AttributeError):
        # It can never be sent: failing sends it to the dead-letter queue for a person.
        raise MailNotSent("unreadable outbox message", reason="unreadable") from None
    sent_id = mail.key or message.message_id
    # Two concurrent deliveries of one message (or of one key): only one claim succeeds.
    if not _claim(sent_id):
        if _sent_before(sent_id):
            log_event(
                "outbox_duplicate_skipped", template=mail.template, message=message.message_id
            )
            return "duplicates"
        raise MailNotSent(
            "another delivery is sending this message", reason="in_flight", template=mail.template
        )
    from chalicelib import mail as ses
    from chalicelib import mail_feedback

    # SES said these bounce or complained: mail nobody asked for does not go to them.
    stopped = mail_feedback.suppressed(mail.template, mail.to)
    recipients = [address for address in mail.to if address not in stopped]
    if not recipients:
        log_event("outbox_suppressed", template=mail.template, message=message.message_id)
        _remember_sent(sent_id)  # decided: a redelivery need not ask again
        return "suppressed"
    try:
        ses.send_mail(recipients, mail.template, **mail.context)
    except MailNotSent:
        _release(sent_id)  # SES said no: the next delivery may try at once
        raise
    _remember_sent(sent_id)
    return "sent"


def _key(message_id: str) -> str:
    return f"mailsent#{message_id}"


def _record(message_id: str, state: str, lifetime: int) -> SentMail:
    now = clock.epoch_seconds()
    expires = now + lifetime
    return SentMail(
        _key(message_id),
        state=state,
        created_at=now,
        expires_at=expires,
        expiry_bucket=expiry_bucket(expires),
    )


def _claim(message_id: str) -> bool:
    """Claim the message for this delivery: True unless it is sent, or another delivery's
    claim on it has not lapsed. One conditional PutItem."""
    try:
        _record(message_id, SENDING, SENDING_CLAIM_SECONDS).save(
            condition=Flow.flow_id.does_not_exist()
            | ((SentMail.state == SENDING) & (Flow.expires_at <= clock.epoch_seconds()))
        )
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise MailNotSent("the message could not be claimed", reason="storage") from None
    return True


def _sent_before(message_id: str) -> bool:
    try:
        found = SentMail.get(_key(message_id), consistent_read=True)
    except DoesNotExist:
        return False  # the other claim went (released) between our put and this read
    # Recorded before claims existed: no state, and only sent mail was recorded.
    return found.state in (SENT, None)


def _release(message_id: str) -> None:
    """Our claim, lapsed now (a put: the worker may not delete, .chalice/policy-*)."""
    try:
        _record(message_id, SENDING, 0).save(condition=SentMail.state == SENDING)
    except PutError:
        pass  # it lapses by itself (SENDING_CLAIM_SECONDS)


def _remember_sent(message_id: str) -> None:
    try:
        _record(message_id, SENT, SENT_MEMORY_SECONDS).save()
    except PutError as exc:
        # The mail went out; unmarked, the claim lapses and a redelivery of this very
        # message would send it again. Raising would make that certain.
        log_event(
            "outbox_sent_not_remembered",
            logging.WARNING,
            message=message_id,
            error=exc.__class__.__name__,
        )


def _delete(messages: list[Received]) -> None:
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        clients.sqs().delete_message_batch(
            QueueUrl=queue_url(),
            Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
            ],
        )
