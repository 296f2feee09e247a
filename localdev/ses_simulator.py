"""SES's mailbox simulator, locally: mail to `bounce@simulator.amazonses.com` or
`complaint@simulator.amazonses.com` produces the record SES would publish for it (SES's
documented event format, in SNS's envelope), handed to the handler the
`handle_mail_feedback` Lambda runs in AWS (chalicelib.mail_feedback.handle_messages).

moto's SES accepts every send and publishes nothing, so the outbox worker's `drain()` (tests,
`make run`) calls `feed()` after each pass: each message moto accepted for a simulator
address is fed once. Never deployed.
"""

from __future__ import annotations

import json
import threading
import uuid

from chalicelib import clock

BOUNCE = "bounce@simulator.amazonses.com"
COMPLAINT = "complaint@simulator.amazonses.com"
SIMULATOR = {BOUNCE: "Bounce", COMPLAINT: "Complaint"}

_fed: set[str] = set()
_lock = threading.Lock()


def record(kind: str, address: str, message_id: str, *, bounce_type: str = "Permanent") -> dict:
    """One SES event record (eventType Bounce or Complaint) for one recipient."""
    now = clock.utc_now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    feedback_id = f"local-{uuid.uuid4()}"
    data: dict = {
        "eventType": kind,
        "mail": {
            "timestamp": now,
            "source": "local",
            "messageId": message_id,
            "destination": [address],
        },
    }
    if kind == "Bounce":
        data["bounce"] = {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": now,
            "feedbackId": feedback_id,
        }
    else:
        data["complaint"] = {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": now,
            "feedbackId": feedback_id,
            "complaintFeedbackType": "abuse",
        }
    return data


def sns_envelope(data: dict) -> str:
    """The SQS message body SNS delivers for a record (not raw message delivery)."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:000000000000:local-mail-feedback",
            "Message": json.dumps(data),
            "Timestamp": data["mail"]["timestamp"],
        }
    )


def pending() -> list[str]:
    """Queue bodies for simulator mail moto accepted and not fed yet (marked fed)."""
    from localdev.mailbox import sent_mail

    bodies = []
    with _lock:
        for message in sent_mail():
            if message.message_id in _fed:
                continue
            hits = [a for a in message.to if a.lower() in SIMULATOR]
            if hits:
                _fed.add(message.message_id)
            bodies += [
                sns_envelope(record(SIMULATOR[a.lower()], a, message.message_id)) for a in hits
            ]
    return bodies


def feed() -> int:
    """Hand the feedback of new simulator mail to the handler; how many records."""
    bodies = pending()
    if bodies:
        from chalicelib import mail_feedback

        mail_feedback.handle_messages(bodies)
    return len(bodies)
