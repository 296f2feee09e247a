"""The outbox worker, locally: what the `send_queued_mail` Lambda does in AWS.

`chalice local` runs no SQS handlers, so `make run` runs `serve_outbox` in a thread (a code
reaches the local mailbox within a second or two), and tests call `drain()` before reading
mail. Both hand batches to chalicelib.outbox.deliver_batch, as the Lambda's event source
does: a batch that returns is deleted whole; one that raises leaves its unsent messages to
SQS, which makes them visible again (after `visibility_timeout` seconds here) and, after
the queue's maxReceiveCount, moves them to the dead-letter queue. Never deployed.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field

# infra/template.yaml's OutboxQueue redrive (tests/test_infra.py keeps the two equal).
MAX_RECEIVES = 5


def create_queues(name: str) -> str:
    """The outbox and its dead-letter queue, as the stack declares them (tests: moto)."""
    import boto3

    sqs = boto3.client("sqs")
    dead = sqs.create_queue(QueueName=name + "-dead-letter")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": str(MAX_RECEIVES)}
            )
        },
    )["QueueUrl"]


@dataclass
class Drained:
    batches: int = 0
    sent: int = 0
    duplicates: int = 0
    decoys: int = 0
    failed_batches: int = 0
    summaries: list = field(default_factory=list)


def _receive(client, url: str, wait_seconds: int, visibility_timeout: int | None) -> list:
    kwargs = {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": wait_seconds}
    if visibility_timeout is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout
    return client.receive_message(**kwargs).get("Messages", [])


def drain(
    *, max_batches: int = 50, wait_seconds: int = 0, visibility_timeout: int | None = 0
) -> Drained:
    """Deliver what the outbox holds now, batch by batch, until it is empty."""
    from chalicelib import clients, outbox

    client, url = clients.sqs(), outbox.queue_url()
    drained = Drained()
    for _ in range(max_batches):
        messages = _receive(client, url, wait_seconds, visibility_timeout)
        if not messages:
            break
        drained.batches += 1
        batch = [outbox.Received(m["MessageId"], m["Body"], m["ReceiptHandle"]) for m in messages]
        try:
            summary = outbox.deliver_batch(batch)
        except outbox.BatchIncomplete:
            drained.failed_batches += 1
            continue
        client.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(batch)
            ],
        )
        drained.summaries.append(summary)
        drained.sent += summary["sent"]
        drained.duplicates += summary["duplicates"]
        drained.decoys += summary["decoys"]
    # SES's mailbox simulator: the bounce or complaint SES would publish for what went out.
    from localdev import ses_simulator

    ses_simulator.feed()
    return drained


def serve_outbox(stop: threading.Event) -> threading.Thread:
    """Drain the local outbox continuously (long polls of 1 s) until `stop` is set."""
    log = logging.getLogger("nrcme")

    def loop():
        while not stop.is_set():
            try:
                # A failed send is tried again after 5 s, as SQS would after its timeout.
                drain(wait_seconds=1, visibility_timeout=5)
            except Exception:
                log.exception("local outbox worker failed; retrying")
                stop.wait(1)

    thread = threading.Thread(target=loop, name="outbox-worker", daemon=True)
    thread.start()
    return thread
