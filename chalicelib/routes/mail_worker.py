"""The outbox's worker: SQS hands it queued mail, it sends each through SES
(chalicelib.outbox). chalice local runs no queue handlers: `make run` drains the local
queue with localdev.outbox_worker, and tests drain it explicitly."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.config import mail_feedback_queue_name, outbox_queue_name

bp = Blueprint(__name__)


# Up to 10 messages and 5 s to gather them: mail is not urgent to the second, and a batch is
# one invocation. A batch with a failure raises: SQS delivers the unsent ones again.
@bp.on_sqs_message(
    queue=outbox_queue_name(),
    batch_size=10,
    maximum_batching_window_in_seconds=5,
    name="send_queued_mail",
)
def send_queued_mail(event):
    from chalicelib import outbox

    outbox.deliver_batch(
        [
            outbox.Received(record.to_dict()["messageId"], record.body, record.receipt_handle)
            for record in event
        ]
    )


# SES's bounces and complaints (configuration set -> SNS -> this queue). A storage error
# raises: SQS delivers the batch again, and recording a record twice changes nothing.
@bp.on_sqs_message(queue=mail_feedback_queue_name(), batch_size=10, name="handle_mail_feedback")
def handle_mail_feedback(event):
    from chalicelib import mail_feedback

    mail_feedback.handle_messages([record.body for record in event])
