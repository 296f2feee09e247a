"""The outbox (chalicelib.outbox): requests only queue mail; the worker sends it through
SES, never loses a message and never sends one message twice."""

from __future__ import annotations

import json
import threading

import boto3
import pytest

from chalicelib import clients, outbox
from chalicelib.config import outbox_queue_name
from chalicelib.errors import MailNotSent
from localdev.outbox_worker import MAX_RECEIVES, drain
from tests.support.accounts import make_account
from tests.support.browser import (
    Browser,
    request_recovery,
    session_csrf,
    signed_in_unmatched,
)

LINK_NOTICE = "Your National Registry account is now linked to Login.gov"


@pytest.fixture
def ses_hangs(mailbox, monkeypatch):
    """SES never answers in time: each SendEmail blocks until released, then times out."""
    release = threading.Event()

    def hang(request, **_):
        release.wait(5)
        from botocore.exceptions import ReadTimeoutError

        raise ReadTimeoutError(endpoint_url=request.url)

    client = clients.ses()
    client.meta.events.register_first("before-send.sesv2.SendEmail", hang, unique_id="hang")
    yield release
    release.set()
    client.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="hang")


def queued() -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return [
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    ]


def dead_letters() -> list[str]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=outbox_queue_name() + "-dead-letter")["QueueUrl"]
    return [
        m["Body"]
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]


# --- SES hanging: requests answer as if it were healthy ------------------------------------------


def test_with_ses_hanging_sign_in_recovery_and_email_change_never_call_it(
    app_client, idp, mailbox, calls, ses_hangs
):
    make_account("1000000001", primary="dr.alice@example.com")
    make_account("1000000002", primary="rec@example.com")
    first = Browser(app_client, idp)
    assert first.sign_in(["dr.alice@example.com"]).location == "/account"  # a first link
    recovering = Browser(app_client, idp)
    page = request_recovery(recovering, "rec@example.com", signed_in_unmatched(recovering))
    assert page.location == "/link/recover/verify"  # a code sent
    page = first.post(
        "/account/email",
        {
            "csrf_token": session_csrf(first, linked=True),
            "change": "secondary",
            "email": "a2@example.org",
        },
    )
    assert page.location == "/account/email/confirm"  # a code sent
    # None of them waited for SES: they only queued (SES is the worker's).
    assert calls.count("sesv2") == {}
    assert calls.count("sqs")["SendMessage"] == 3
    assert queued()[0] == 3
    # Once SES answers again, the worker sends all three.
    ses_hangs.set()
    client = clients.ses()
    client.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="hang")
    assert drain().sent == 3
    assert [m.subject for m in mailbox.to("dr.alice@example.com")] == [LINK_NOTICE]
    assert len(mailbox.to("rec@example.com")) == 1 and len(mailbox.to("a2@example.org")) == 1


# --- SES failing for good: the dead-letter queue, a metric, nothing else breaks ------------------


def test_a_message_ses_keeps_refusing_lands_in_the_dead_letter_queue(
    app_client, idp, mailbox, calls
):
    import logging

    from tests.support.logs import LoggedEvents

    logged = LoggedEvents()
    logging.getLogger("nrcme").addHandler(logged)
    try:
        make_account("1000000001", primary="dr.alice@example.com")
        browser = Browser(app_client, idp)
        page = request_recovery(browser, "dr.alice@example.com", signed_in_unmatched(browser))
        assert page.location == "/link/recover/verify"
        calls.fail("SendEmail", "MessageRejected", times=100)
        for _ in range(MAX_RECEIVES + 1):  # each receive is one try; then SQS gives up
            drain()
        assert queued() == [0, 0]
        (body,) = dead_letters()
        assert json.loads(body)["template"] == "recovery_code"
        assert [r for r in logged.records if r.get("MailFailed")]  # the alarm's metric
        assert (
            len([r for r in logged.records if r.get("event") == "outbox_send_failed"])
            == MAX_RECEIVES
        )
    finally:
        logging.getLogger("nrcme").removeHandler(logged)
    # Nothing else broke: the person can still sign in and ask again.
    calls.rules.clear()
    assert browser.get("/link/recover").status == 200
    assert mailbox.to("dr.alice@example.com") == []


# --- at least once, at most once per message id -------------------------------------------------


def test_a_worker_crash_mid_batch_loses_no_mail_and_sends_none_twice(app_client, mailbox, clock):
    for i in range(3):
        outbox.enqueue(
            "institutional_email_reminder",
            f"doc{i}@example.gov",
            account={"first_name": f"D{i}", "nr_number": f"100000000{i}"},
        )
    sqs = clients.sqs()
    messages = sqs.receive_message(
        QueueUrl=outbox.queue_url(), MaxNumberOfMessages=10, VisibilityTimeout=0
    )["Messages"]
    assert len(messages) == 3
    batch = [outbox.Received(m["MessageId"], m["Body"], m["ReceiptHandle"]) for m in messages]
    attempts = []

    def crash_on_the_second(request, **_):
        attempts.append(request.url)
        if len(attempts) == 2:  # the container dies as the second mail goes out
            raise SystemExit("the Lambda's container died here")

    client = clients.ses()
    client.meta.events.register_first(
        "before-send.sesv2.SendEmail", crash_on_the_second, unique_id="crash"
    )
    try:
        with pytest.raises(SystemExit):
            outbox.deliver_batch(batch)  # nothing deleted: SQS delivers all three again
    finally:
        client.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="crash")
    # SQS delivers them again after its visibility timeout, when the dead worker's claim on
    # the second has lapsed.
    clock.advance(outbox.SENDING_CLAIM_SECONDS)
    assert drain().summaries == [
        {"sent": 2, "duplicates": 1, "decoys": 0, "suppressed": 0, "failed": 0}
    ]
    addresses = [m.destinations["ToAddresses"][0] for m in mailbox.messages]
    assert sorted(addresses) == ["doc0@example.gov", "doc1@example.gov", "doc2@example.gov"]


def _one_queued_reminder() -> outbox.Received:
    outbox.enqueue(
        "institutional_email_reminder",
        "doc@example.gov",
        account={"first_name": "D", "nr_number": "1000000001"},
    )
    (m,) = clients.sqs().receive_message(QueueUrl=outbox.queue_url(), VisibilityTimeout=0)[
        "Messages"
    ]
    return outbox.Received(m["MessageId"], m["Body"], m["ReceiptHandle"])


def test_two_deliveries_of_one_message_at_once_send_it_once(app_client, mailbox, calls, clock):
    message = _one_queued_reminder()
    other = []

    def the_other_worker():
        try:
            other.append(outbox.deliver(message))
        except MailNotSent as refused:
            other.append(refused.context["reason"])

    # SQS hands the same message to a second worker just as the first calls SES.
    calls.interleave("SendEmail", the_other_worker)
    assert outbox.deliver(message) == "sent"
    # The second is held back, not told "sent": it must not delete a mail the first may lose.
    assert other == ["in_flight"]
    assert [m.destinations["ToAddresses"] for m in mailbox.messages] == [["doc@example.gov"]]
    assert outbox.deliver(message) == "duplicates"  # any later redelivery
    assert len(mailbox.messages) == 1


def test_a_delivery_that_died_inside_ses_is_sent_again_once_its_claim_lapses(
    app_client, mailbox, calls, clock
):
    message = _one_queued_reminder()

    def die():
        raise SystemExit("the Lambda's container died here")

    calls.interleave("SendEmail", die)
    with pytest.raises(SystemExit):
        outbox.deliver(message)
    # SQS delivers it again; while the dead worker's claim stands, nothing is sent...
    with pytest.raises(MailNotSent):
        outbox.deliver(message)
    assert mailbox.messages == []
    # ...and once it lapses (SQS waits longer: the queue's visibility timeout), it is.
    clock.advance(outbox.SENDING_CLAIM_SECONDS)
    assert outbox.deliver(message) == "sent"
    assert [m.destinations["ToAddresses"] for m in mailbox.messages] == [["doc@example.gov"]]


def test_a_decoy_costs_the_same_request_and_sends_nothing(app_client, mailbox, calls):
    calls.clear()
    outbox.enqueue_decoy("recovery_code", "bob@example.gov", code="000000", minutes=10)
    outbox.enqueue("recovery_code", "doc@example.gov", code="123456", minutes=10)
    assert calls.count("sqs")["SendMessage"] == 2
    decoy, real = [params["MessageBody"] for params in calls.params("SendMessage")]
    # The same message but for its mark (and the address typed: here as long as the other).
    assert len(decoy) - len(real) == len(', "decoy": true')
    drained = drain()
    assert (drained.decoys, drained.sent) == (1, 1)
    assert [m.destinations["ToAddresses"] for m in mailbox.messages] == [["doc@example.gov"]]


def test_the_message_holds_only_what_the_mail_needs(app_client, mailbox):
    make_account("1000000001", primary="dr.alice@example.com", first_name="Alice")
    from chalicelib import notices
    from chalicelib.models import Account

    notices.send_link_notice("1000000001", Account.get("1000000001"))
    (message,) = clients.sqs().receive_message(QueueUrl=outbox.queue_url())["Messages"]
    assert json.loads(message["Body"]) == {
        "v": 1,
        "template": "link_notice",
        "to": ["dr.alice@example.com"],
        "context": {"account": {"first_name": "Alice", "nr_number": "1000000001"}},
    }
