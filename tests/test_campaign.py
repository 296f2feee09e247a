"""The migration campaign (chalicelib.campaign): invitations and reminders to never-linked
accounts, through the scheduled function (as Lambda invokes it) and `manage.py campaign`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import config
from chalicelib.models import Account
from tests.support.accounts import link, make_account
from tests.support.clock import START
from tests.support.desk import run_json

DEADLINE = (START + timedelta(days=90)).date()  # 2026-09-07
DAY = 24 * 3600


@pytest.fixture
def campaign_env(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_DEADLINE", DEADLINE.isoformat())
    monkeypatch.setenv("CAMPAIGN_REMINDER_DAYS", "60,30,14,7,1")
    config.reset_settings()
    yield
    config.reset_settings()


@pytest.fixture
def population(campaign_env, app_client, mailbox, clock, cli):
    """One account of each kind the campaign must tell apart."""
    make_account("2000000001", primary="ordinary@example.com")
    make_account("2000000002", primary="linked@example.com")
    link("2000000002", "sub-linked")
    make_account("2000000003", primary="removed@example.com", status="removed")
    make_account("2000000004", primary="disabled@example.com", status="disabled")
    make_account("2000000005", primary="held@example.com")
    code, _, err = cli("disable", "2000000005", "--reason", "identity check")
    assert code == 0, err
    # Two accounts list one office address; the second also has its own.
    make_account("2000000006", primary="front.office@example.com")
    make_account("2000000007", primary="front.office@example.com", secondary="own@example.org")
    make_account("2000000008", primary="prof@state.edu", secondary="")
    return mailbox


def run_function(app_client):
    """The scheduled function, invoked as EventBridge invokes it."""
    event = app_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    app_client.lambda_.invoke("run_campaign", event)


def mailed(mailbox) -> dict[str, list[str]]:
    """Campaign mail per recipient: the subjects, oldest first."""
    found: dict[str, list[str]] = {}
    for message in mailbox.messages:
        if "Login.gov" not in message.subject:
            continue
        for address in message.destinations["ToAddresses"]:
            found.setdefault(address, []).append(message.subject)
    return found


EXPECTED = {"ordinary@example.com", "own@example.org", "prof@state.edu"}


def test_the_invitation_reaches_exactly_the_never_linked_active_owners(population, app_client):
    run_function(app_client)
    got = mailed(population)
    assert set(got) == EXPECTED
    assert all(len(subjects) == 1 for subjects in got.values())
    assert got["ordinary@example.com"] == [
        "Link your National Registry account to Login.gov by September 7, 2026"
    ]
    (message,) = population.to("prof@state.edu")
    # Names the address to use, the deadline, the .edu advice and the help page.
    assert "prof@state.edu" in message.body and "September 7, 2026" in message.body
    assert ".gov, .mil or .edu" in message.body
    assert "http://127.0.0.1:8000/help" in message.body
    (shared_owner,) = population.to("own@example.org")
    assert "front.office@example.com" not in shared_owner.body  # the shared address: never


def test_status_counts_the_run_by_reason(population, app_client, cli):
    run_function(app_client)
    code, status, _ = run_json(cli, "campaign", "status")
    assert code == 0
    assert status["deadline"] == "2026-09-07"
    assert [w["starts"] for w in status["waves"]] == [
        None,
        "2026-07-09",
        "2026-08-08",
        "2026-08-24",
        "2026-08-31",
        "2026-09-06",
    ]
    assert status["waves"][0]["sent"] == 3
    # The linked account is not even read: the sparse index holds never-linked ones only.
    assert status["last_run"]["read"] == 7
    assert status["last_run"]["skipped"] == {
        "linked": 0,
        "removed": 1,
        "disabled": 1,
        "held": 1,
        "shared": 1,
        "undeliverable": 0,
        "complained": 0,
    }
    assert status["next_run"] == "2026-06-09T14:00:00+00:00"
    code, out, _ = cli("campaign", "status")
    assert code == 0 and "2026-07-09" in out and "skipped held" in out


def test_a_rerun_the_same_day_and_the_next_days_send_nothing_new(population, app_client, clock):
    run_function(app_client)
    run_function(app_client)
    clock.advance(1 * DAY)
    run_function(app_client)
    assert {a: len(s) for a, s in mailed(population).items()} == dict.fromkeys(EXPECTED, 1)


def test_each_reminder_goes_once_on_its_day(population, app_client, clock):
    run_function(app_client)
    clock.advance(30 * DAY)  # 2026-07-09: 60 days before
    run_function(app_client)
    run_function(app_client)
    got = mailed(population)
    assert set(got) == EXPECTED
    assert got["ordinary@example.com"][1] == (
        "Reminder: 60 days left to link your National Registry account to Login.gov"
    )
    assert all(len(subjects) == 2 for subjects in got.values())
    assert sorted(Account.get("2000000001").campaign_waves) == [0, 1]


def test_linking_mid_wave_stops_the_next_mail(population, app_client, clock):
    run_function(app_client)
    link("2000000001", "sub-ordinary")
    clock.advance(30 * DAY)
    run_function(app_client)
    assert len(mailed(population)["ordinary@example.com"]) == 1
    assert len(mailed(population)["own@example.org"]) == 2


def test_a_throttled_outbox_loses_no_mail_and_the_retry_sends_no_mail_twice(
    population, app_client, calls, cli
):
    calls.fail("SendMessageBatch", "AWS.SimpleQueueService.RequestThrottled", times=1)
    run_function(app_client)
    assert mailed(population) == {}
    code, status, _ = run_json(cli, "campaign", "status")
    assert status["last_run"]["not_queued"] == 3 and status["waves"][0]["sent"] == 0
    # SQS took the retry but its answer was lost: botocore sends it again, two copies queued.
    calls.lose_answer("SendMessageBatch", times=1)
    code, result, _ = run_json(cli, "campaign", "run")
    assert code == 0 and result["sent"] == 3
    run_function(app_client)
    assert {a: len(s) for a, s in mailed(population).items()} == dict.fromkeys(EXPECTED, 1)


def test_the_send_cap_spreads_a_wave_over_runs(population, app_client, clock, cli):
    code, first, _ = run_json(cli, "campaign", "run", "--limit", "2")
    assert first["sent"] == 2 and first["more_remaining"] is True
    clock.advance(1 * DAY)
    code, second, _ = run_json(cli, "campaign", "run", "--limit", "2")
    assert second["sent"] == 1 and second["more_remaining"] is False
    assert {a: len(s) for a, s in mailed(population).items()} == dict.fromkeys(EXPECTED, 1)


def test_paused_sends_nothing_until_resumed(population, app_client, cli):
    code, status, _ = run_json(cli, "campaign", "pause")
    assert code == 0 and status["paused"] is True
    run_function(app_client)
    assert mailed(population) == {}
    code, status, _ = run_json(cli, "campaign", "status")
    assert status["last_run"]["paused"] is True
    run_json(cli, "campaign", "resume")
    run_function(app_client)
    assert set(mailed(population)) == EXPECTED


def test_the_sparse_index_loses_an_account_at_link_and_regains_it_at_unlink(population, cli):
    def awaiting() -> set[str]:
        return {a.nr_number for a in Account.by_awaiting_link.query("yes")}

    assert "2000000002" not in awaiting() and "2000000001" in awaiting()
    link("2000000001", "sub-one")
    assert "2000000001" not in awaiting()
    code, _, err = cli("unlink", "2000000001", "--mode", "lost-account", "--reason", "lost phone")
    assert code == 0, err
    assert "2000000001" in awaiting()


def test_no_deadline_no_campaign(app_client, mailbox, clock, cli, monkeypatch):
    monkeypatch.delenv("CAMPAIGN_DEADLINE", raising=False)
    config.reset_settings()
    make_account("2000000001", primary="ordinary@example.com")
    run_function(app_client)
    assert mailed(mailbox) == {}
    code, out, _ = cli("campaign", "status")
    assert code == 0 and "CAMPAIGN_DEADLINE is not set" in out


def test_backfill_puts_accounts_from_before_the_index_into_it(population, app_client, cli):
    make_account("2000000009", primary="old.timer@example.com")
    Account.get("2000000009").update(
        actions=[Account.awaiting_link.remove(), Account.campaign_wave.remove()]
    )
    run_function(app_client)
    assert "old.timer@example.com" not in mailed(population)
    code, result, _ = run_json(cli, "campaign", "backfill")
    assert code == 0 and result["added"] == 1
    assert run_json(cli, "campaign", "backfill")[1]["added"] == 0
    run_function(app_client)
    assert len(mailed(population)["old.timer@example.com"]) == 1


# --- bounces and complaints (chalicelib.mail_feedback; localdev.ses_simulator) ---------------

BOUNCE = "bounce@simulator.amazonses.com"
COMPLAINT = "complaint@simulator.amazonses.com"


@pytest.mark.parametrize(
    ("address", "reason", "shown"),
    [
        (BOUNCE, "undeliverable", "undeliverable (hard bounce)"),
        (COMPLAINT, "complained", "complained"),
    ],
)
def test_simulator_feedback_marks_the_address_and_the_next_wave_skips_it(
    population, app_client, clock, cli, address, reason, shown
):
    make_account("2000000010", primary=address)
    run_function(app_client)
    assert len(mailed(population)[address]) == 1  # reading the mailbox lets SES answer
    code, found, _ = run_json(cli, "find", address)
    assert found[0]["primary_email_mail_state"].startswith(shown)
    clock.advance(30 * DAY)
    run_function(app_client)
    assert len(mailed(population)[address]) == 1
    assert len(mailed(population)["ordinary@example.com"]) == 2
    code, status, _ = run_json(cli, "campaign", "status")
    assert status["last_run"]["skipped"][reason] == 1


def test_a_bounced_address_still_gets_the_code_its_owner_asks_for(aws, mailbox, clock):
    from chalicelib import mail_feedback, outbox
    from localdev import ses_simulator

    make_account("2000000011", primary="gone@example.com")
    mail_feedback.handle_messages(
        [ses_simulator.sns_envelope(ses_simulator.record("Bounce", "Gone@example.com", "m-1"))]
    )
    account = {"first_name": "G", "nr_number": "2000000011"}
    outbox.enqueue("recovery_code", "gone@example.com", code="123456", minutes=10, account=account)
    outbox.enqueue("link_notice", "gone@example.com", account=account)
    # The code the person asked for goes; the notice nobody waits for does not.
    assert len(mailbox.to("gone@example.com")) == 1
    assert mailbox.codes_for("gone@example.com") == ["123456"]


def sqs_event(bodies: list[str]) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"r-{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:test-mail-feedback",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_three_soft_bounces_in_thirty_days_make_an_address_undeliverable(app_client, clock):
    from chalicelib import mail_feedback
    from localdev import ses_simulator

    def soft_bounce():
        data = ses_simulator.record("Bounce", "full@example.com", "m", bounce_type="Transient")
        app_client.lambda_.invoke(
            "handle_mail_feedback", sqs_event([ses_simulator.sns_envelope(data)])
        )

    soft_bounce()
    clock.advance(31 * DAY)  # the first falls out of the window
    soft_bounce()
    soft_bounce()
    assert not mail_feedback.state_of("full@example.com").undeliverable
    soft_bounce()
    state = mail_feedback.state_of("full@example.com")
    assert state.undeliverable and state.undeliverable_reason == "3 soft bounces in 30 days"


def test_a_redelivered_bounce_and_other_event_types_change_nothing_twice(app_client, clock):
    from chalicelib import mail_feedback
    from localdev import ses_simulator

    data = ses_simulator.record("Bounce", "twice@example.com", "m", bounce_type="Transient")
    body = ses_simulator.sns_envelope(data)
    delivery = ses_simulator.sns_envelope({"eventType": "Delivery", "mail": data["mail"]})
    for _ in range(3):
        app_client.lambda_.invoke("handle_mail_feedback", sqs_event([body, delivery, "{"]))
    state = mail_feedback.state_of("twice@example.com")
    assert len(state.soft_bounces) == 1 and not state.undeliverable


def test_make_run_plans_a_campaign_ninety_days_out(clock):
    from localdev import run
    from localdev.idp import generate_rsa_key, private_pem

    key = private_pem(generate_rsa_key())
    plan = run.plan_run({"LOGIN_GOV_PRIVATE_KEY": key}, run._local_stage_env())
    assert plan.env["CAMPAIGN_DEADLINE"] == DEADLINE.isoformat()
    off = run.plan_run(
        {"LOGIN_GOV_PRIVATE_KEY": key, "CAMPAIGN_DEADLINE": ""}, run._local_stage_env()
    )
    assert off.env["CAMPAIGN_DEADLINE"] == ""


def test_the_account_page_asks_the_owner_to_replace_an_undeliverable_address(browser):
    from chalicelib import mail_feedback
    from localdev import ses_simulator

    make_account("2000000012", primary="home@example.com", secondary="old.job@example.org")
    page = browser.follow(browser.sign_in(["home@example.com"]))
    assert "We cannot deliver mail" not in page.body
    mail_feedback.handle_messages(
        [ses_simulator.sns_envelope(ses_simulator.record("Bounce", "old.job@example.org", "m"))]
    )
    page = browser.get("/account")
    assert page.status == 200
    assert "We cannot deliver mail to old.job@example.org" in page.body
    assert "home@example.com</h2>" not in page.body
