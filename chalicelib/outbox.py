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
- SQS delivers at least once: the worker records each message id it sent (`mailsent#`) and
  skips a redelivery of one it already sent, so a crash mid-batch neither loses a mail nor
  sends it twice. (A crash inside the very SES call that succeeded is the one window left:
  that message may go out twice, never zero times.)
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib import clock
from chalicelib.config import get_settings, outbox_queue_name
from chalicelib.errors import MailNotQueued, MailNotSent
from chalicelib.logs import count, log_event
from chalicelib.models import Flow, SentMail, expiry_bucket
from chalicelib.store import condition_failed

VERSION = 1
# Longer than SQS keeps a message (4 days by default), so a redelivery always finds it.
SENT_MEMORY_SECONDS = 5 * 24 * 3600


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


@functools.lru_cache(maxsize=1)
def _client():
    import boto3  # provided by the Lambda runtime; imported on the first mail, not at /login
    from botocore.config import Config

    settings = get_settings()
    return boto3.client(
        "sqs",
        config=Config(
            connect_timeout=settings.outbox_connect_timeout,
            read_timeout=settings.outbox_read_timeout,
            retries={"total_max_attempts": settings.outbox_max_attempts, "mode": "standard"},
        ),
    )


@functools.lru_cache(maxsize=1)
def queue_url() -> str:
    """Looked up once per container (GetQueueUrl), then kept."""
    return _client().get_queue_url(QueueName=get_settings().outbox_queue_name)["QueueUrl"]


def reset() -> None:
    _client.cache_clear()
    queue_url.cache_clear()


def enqueue(template: str, to: str | list[str], **context) -> None:
    """Queue one mail to one address or a few (they see each other: use enqueue_each for
    mail each address should get on its own). MailNotQueued if SQS does not take it."""
    recipients = [to] if isinstance(to, str) else list(to)
    _send([Mail(template, recipients, _plain(context)).body()], template)


def enqueue_each(template: str, recipients: list[str], **context) -> None:
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
        answer = _client().send_message_batch(
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


def enqueue_decoy(template: str, to: str, **context) -> None:
    """The same request a real mail costs, for an answer that must not tell them apart: the
    message a real one would be, of the same size, marked for the worker to drop."""
    body = json.loads(Mail(template, [to], _plain(context)).body())
    _send([json.dumps({**body, "decoy": True}, sort_keys=True, ensure_ascii=False)], "decoy")


def _send(bodies: list[str], template: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if len(bodies) == 1:
            _client().send_message(QueueUrl=queue_url(), MessageBody=bodies[0])
        else:
            answer = _client().send_message_batch(
                QueueUrl=queue_url(),
                Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
            )
            if answer.get("Failed"):
                raise MailNotQueued(
                    f"{len(answer['Failed'])} of {len(bodies)} not queued", template=template
                )
    except (ClientError, BotoCoreError) as exc:
        code = (
            exc.response.get("Error", {}).get("Code")
            if isinstance(exc, ClientError)
            else exc.__class__.__name__
        )
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
    if _already_sent(sent_id):
        log_event("outbox_duplicate_skipped", template=mail.template, message=message.message_id)
        return "duplicates"
    from chalicelib import mail as ses
    from chalicelib import mail_feedback

    # SES said these bounce or complained: mail nobody asked for does not go to them.
    stopped = mail_feedback.suppressed(mail.template, mail.to)
    recipients = [address for address in mail.to if address not in stopped]
    if not recipients:
        log_event("outbox_suppressed", template=mail.template, message=message.message_id)
        return "suppressed"
    ses.send_mail(recipients, mail.template, **mail.context)
    _remember_sent(sent_id)
    return "sent"


def _already_sent(message_id: str) -> bool:
    try:
        SentMail.get(f"mailsent#{message_id}", consistent_read=True)
    except DoesNotExist:
        return False
    return True


def _remember_sent(message_id: str) -> None:
    now = clock.epoch_seconds()
    expires = now + SENT_MEMORY_SECONDS
    try:
        SentMail(
            f"mailsent#{message_id}",
            created_at=now,
            expires_at=expires,
            expiry_bucket=expiry_bucket(expires),
        ).save(condition=Flow.flow_id.does_not_exist())
    except PutError as exc:
        # The mail went out; not remembering it risks a duplicate only if this very batch
        # is delivered again. Raising would make that certain.
        log_event(
            "outbox_sent_not_remembered",
            logging.WARNING,
            message=message_id,
            error="condition" if condition_failed(exc) else exc.__class__.__name__,
        )


def _delete(messages: list[Received]) -> None:
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        _client().delete_message_batch(
            QueueUrl=queue_url(),
            Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
            ],
        )


QUEUE_NAME = outbox_queue_name()
