"""Least privilege: each Lambda function's IAM policy grants exactly what its code does.

"What the code does" is observed, not listed by hand: each function takes a scripted tour
under moto (tours below) with localdev/aws_calls recording every botocore call, each call
becomes the IAM actions that authorise it (with the resource ARN and request context the
deployed stage would give it: table prefix, parameter names, sender), and the stage's
policy file for that function (.chalice/config.json, per function) must allow every one of
them and grant nothing no call used. Two things no call shows are added by rule: the
Lambda runtime writes the function's logs, and DynamoDB uses the table key on the
caller's behalf.

Adding a function (e.g. a queue consumer `send_queued_mail`): give it a policy file per
stage in .chalice/config.json, a tour in FUNCTIONS, and, when its calls are new, an entry
in OPERATIONS (tests/support/policies.py, with the evaluator). The runtime's own needs for
its trigger (an SQS event source reads and deletes messages with the function's role) go in
`Function.runtime`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from localdev.aws_calls import Call
from tests.support.accounts import make_account
from tests.support.browser import (
    Browser,
    enter_code,
    request_recovery,
    session_csrf,
    signed_in_unmatched,
)
from tests.support.policies import (
    ACCOUNT,
    KMS_THROUGH_DYNAMODB,
    LOG_ACTIONS,
    OPERATIONS,
    REGION,
    Need,
    as_list,
    data_key_alias,
    grants,
    request_context,
    unused_grants,
    wildcard,
)
from tests.support.service import reset_app_caches
from tests.support.stages import (
    API_HANDLER,
    CHALICE_DIR,
    chalice_config,
    policy,
    policy_file,
    stage_env,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEPLOYED_STAGES = ("dev", "prod")
APP_NAME = "nrcme-signin"
REMINDERS = "send_institutional_email_reminders"
CAMPAIGN = "run_campaign"
# What the tours' secrets are called; each stage's names come from its configuration.
TOUR_PARAMETERS = {
    "LOGIN_GOV_PRIVATE_KEY_PARAMETER": "/tour/login-gov-private-key",
    "HMAC_ROOT_KEY_PARAMETER": "/tour/hmac-root-key",
}


# --- the stage: its configuration and policies -------------------------------------------------


def function_name(stage: str, function: str) -> str:
    """The Lambda function's name as `chalice deploy` gives it (the API handler is special)."""
    base = f"{APP_NAME}-{stage}"
    return base if function == API_HANDLER else f"{base}-{function}"


def table_arn(stage: str, suffix: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{stage_env(stage)['TABLE_PREFIX']}{suffix}"


class Stage:
    """Turns a tour's names (test- tables, /tour/ parameters, the test sender) into the
    deployed stage's, so one recorded tour is checked against every stage's policy."""

    def __init__(self, stage: str):
        self.stage, self.env = stage, stage_env(stage)

    def table(self, name: str) -> str:
        tour_prefix = os.environ["TABLE_PREFIX"]
        assert name.startswith(tour_prefix), f"a table outside the app's prefix: {name}"
        return table_arn(self.stage, name[len(tour_prefix) :])

    def parameter(self, name: str) -> str:
        (setting,) = [key for key, value in TOUR_PARAMETERS.items() if value == name]
        return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{self.env[setting]}"

    def queue(self, url: str) -> str:
        tour_queue = os.environ.get("OUTBOX_QUEUE_NAME") or os.environ["TABLE_PREFIX"] + "outbox"
        assert url.endswith("/" + tour_queue), f"a queue other than the outbox: {url}"
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.env['OUTBOX_QUEUE_NAME']}"

    def sender(self, address: str) -> str:
        assert address == os.environ["MAIL_SENDER"], f"mail from an unexpected sender: {address}"
        return self.env["MAIL_SENDER"]


def needs_of(name: str, recorded: list[Call], stage_name: str) -> list[Need]:
    """What function `name` needs in a stage, for the calls its tour made."""
    stage = Stage(stage_name)
    needs = []
    for call in recorded:
        to_iam = OPERATIONS.get((call.service, call.operation))
        assert to_iam, (
            f"{name} calls {call.service}.{call.operation}: add how IAM authorises it to OPERATIONS"
        )
        needs += to_iam(stage, call.params, f"{call.service}.{call.operation}")
    # The Lambda runtime writes the function's logs with the function's role.
    log_group = (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/"
        f"{function_name(stage_name, name)}:log-stream:2026/01/01/[$LATEST]0123"
    )
    needs += [Need(action, log_group, why="Lambda runtime") for action in LOG_ACTIONS]
    needs += [
        item if isinstance(item, Need) else Need(*item, why=f"{name} runtime")
        for item in FUNCTIONS[name].runtime(stage_name)
    ]
    # DynamoDB uses the stage's table key on the caller's behalf (SSE-KMS tables).
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    if any(call.service == "dynamodb" for call in recorded):
        context = request_context(
            kms__ViaService=f"dynamodb.{REGION}.amazonaws.com",
            kms__ResourceAliases=[data_key_alias(stage_name)],
        )
        needs += [
            Need(action, key, context, "DynamoDB on the caller's behalf")
            for action in KMS_THROUGH_DYNAMODB
        ]
    # SQS encrypts a message sent to the outbox with the stage key, for the sender.
    if any(call.service == "sqs" and call.operation.startswith("SendMessage") for call in recorded):
        context = request_context(
            kms__ViaService=f"sqs.{REGION}.amazonaws.com",
            kms__ResourceAliases=[data_key_alias(stage_name)],
        )
        needs += [
            Need(action, key, context, "SQS on the sender's behalf")
            for action in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    return sorted(set(needs), key=lambda n: (n.action, n.resource))


# --- the tours ---------------------------------------------------------------------------------


def ask_email_change(browser: Browser, change: str, email: str | None = None):
    # confirm=yes: swap and remove ask for a confirmation first.
    fields = {"csrf_token": session_csrf(browser, linked=True), "change": change, "confirm": "yes"}
    if email is not None:
        fields["email"] = email
    return browser.post("/account/email", fields)


def push_security_event(app_client, idp, event: str, sub: str) -> int:
    token = idp.security_event_token(os.environ["LOGIN_GOV_CLIENT_ID"], event, sub)
    return app_client.http.post(
        "/api/security-events", body=token, headers={"Content-Type": "application/secevent+jwt"}
    ).status_code


def api_tour(app_client, idp, inbox, recorder) -> list[Call]:
    """Sign-in and linking, the account page, email changes, recovery, logout, RISC events."""
    from chalicelib.models import Account, Claim

    make_account("1000000001", primary="examiner@fmcsa.dot.gov", secondary="alice.home@example.org")
    make_account("1000000002", primary="dr.bob@example.com")
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    recorder.clear()

    # A first sign-in links by email; the account page; every kind of email change.
    browser = Browser(app_client, idp)
    assert browser.sign_in(["alice.home@example.org"], sub=alice).location == "/account"
    assert browser.get("/account").status == 200
    assert ask_email_change(browser, "primary", "alice.personal@example.com").status == 302
    with recorder.paused():  # the local worker's drain is not the API's doing
        code = inbox.code_for("alice.personal@example.com")
    assert enter_code(browser, "/account/email/confirm", code).status == 200
    assert ask_email_change(browser, "swap").status == 200
    assert ask_email_change(browser, "remove_secondary").status == 200
    assert ask_email_change(browser, "secondary", "alice.other@example.org").status == 302
    cancel = {"csrf_token": session_csrf(browser, linked=True)}
    assert browser.post("/account/email/cancel", cancel).status in (200, 302)

    # Recovery: no match, a code to the registry address, one wrong guess, the right code.
    other = Browser(app_client, idp)
    page = request_recovery(
        other, "dr.bob@example.com", signed_in_unmatched(other, "bob.new@example.net", sub=bob)
    )
    assert page.location == "/link/recover/verify"
    with recorder.paused():
        code = inbox.code_for("dr.bob@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert enter_code(other, "/link/recover/verify", wrong).status == 400
    assert enter_code(other, "/link/recover/verify", code).location == "/account"
    assert other.get("/logout").status == 302

    # Login.gov security events: one ends sessions, one unlinks.
    assert push_security_event(app_client, idp, "account-disabled", alice) == 202
    assert push_security_event(app_client, idp, "account-purged", bob) == 202

    # A disable whose reads straddle a support unlink: it read the identity linked, then
    # the account unlinked, so its transaction checks the account is still unlinked (the
    # race itself: tests/test_faults.py, "disable racing an unlink and relink").
    carol = str(uuid.uuid4())
    assert (
        Browser(app_client, idp).sign_in(["dr.bob@example.com"], sub=carol).location == "/account"
    )

    def support_unlinks():
        from supportdesk import desk

        with recorder.paused():  # the desk's doing, not the API's
            desk.unlink("1000000002", reason="tour", actor="desk", mode="lost-account")

    recorder.interleave("GetItem", support_unlinks, table="accounts")
    assert push_security_event(app_client, idp, "account-disabled", carol) == 202

    recorded = list(recorder.calls)
    # The tour went where it meant to (read after the recording).
    alice_account = Account.get("1000000001")
    assert alice_account.linked_sub == alice
    assert alice_account.primary_email == "alice.home@example.org"  # changed, then swapped
    assert alice_account.secondary_email is None
    assert Account.get("1000000002").linked_sub is None  # recovered, purged; linked, unlinked
    with pytest.raises(Claim.DoesNotExist):
        Claim.get(Claim.sub_key(bob))
    carol_identity = Claim.get(Claim.sub_key(carol))
    assert carol_identity.nr_number is None and carol_identity.disabled
    assert any(
        c.operation == "TransactWriteItems"
        and any(
            item.get("ConditionCheck", {}).get("TableName", "").endswith("accounts")
            for item in c.params["TransactItems"]
        )
        for c in recorded
    )
    return recorded


def scheduled_event(app_client) -> dict:
    return app_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )


def cleanup_tour(app_client, idp, inbox, recorder) -> list[Call]:
    from chalicelib.models import Flow, SignInState, expiry_bucket

    now = int(time.time())
    for flow_id, expires in (("signin#expired", now - 7200), ("signin#live", now + 600)):
        SignInState(
            flow_id,
            nonce="n" * 43,
            browser_hash="b" * 64,
            return_to="/account",
            created_at=now - 8000,
            expires_at=expires,
            expiry_bucket=expiry_bucket(expires),
        ).save()
    recorder.clear()
    app_client.lambda_.invoke("cleanup_expired_flows", scheduled_event(app_client))
    recorded = list(recorder.calls)
    assert [flow.flow_id for flow in Flow.scan()] == ["signin#live"]
    return recorded


def reminders_tour(app_client, idp, inbox, recorder) -> list[Call]:
    from chalicelib.models import Account

    make_account("1000000001", primary="examiner@fmcsa.dot.gov")
    Account.get("1000000001").update(actions=[Account.linked_sub.set(str(uuid.uuid4()))])
    recorder.clear()
    app_client.lambda_.invoke(REMINDERS, scheduled_event(app_client))
    recorded = list(recorder.calls)
    with recorder.paused():
        assert len(inbox.to("examiner@fmcsa.dot.gov")) == 1
    return recorded


def campaign_tour(app_client, idp, inbox, recorder) -> list[Call]:
    """A campaign run: one account mailed, one skipped, the wave counted, the run recorded."""
    from chalicelib import config

    make_account("1000000001", primary="examiner@example.com")
    make_account("1000000002", primary="gone@example.com", status="removed")
    os.environ["CAMPAIGN_DEADLINE"] = "2099-01-01"
    config.reset_settings()
    try:
        recorder.clear()
        app_client.lambda_.invoke(CAMPAIGN, scheduled_event(app_client))
        recorded = list(recorder.calls)
    finally:
        del os.environ["CAMPAIGN_DEADLINE"]
        config.reset_settings()
    with recorder.paused():
        assert len(inbox.to("examiner@example.com")) == 1
    return recorded


def worker_tour(app_client, idp, inbox, recorder) -> list[Call]:
    """The outbox worker: two mails queued (as the API queues them), one SES refuses once;
    then SQS delivers both again (at least once): the one sent is skipped, the other sent."""
    from chalicelib import clients, config, outbox

    outbox.enqueue(
        "institutional_email_reminder",
        "doc@fmcsa.dot.gov",
        account={"first_name": "Doc", "nr_number": "1000000001"},
    )
    outbox.enqueue(
        "institutional_email_reminder",
        "doc2@fmcsa.dot.gov",
        account={"first_name": "Doc", "nr_number": "1000000002"},
    )
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(
        QueueUrl=outbox.queue_url(), MaxNumberOfMessages=10, VisibilityTimeout=0
    )["Messages"]
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue",
            }
            for m in messages
        ]
    }
    clients.reset()  # a fresh container: it looks the queue up itself
    recorder.clear()
    refused = recorder.fail("SendEmail", "MessageRejected")  # the first send, once
    os.environ["SES_CONFIGURATION_SET"] = os.environ["TABLE_PREFIX"] + "mail"
    config.reset_settings()
    try:
        with pytest.raises(outbox.BatchIncomplete):
            app_client.lambda_.invoke("send_queued_mail", event)
        assert refused.fired == 1 and len(inbox._backend().sent_messages) == 1
        app_client.lambda_.invoke("send_queued_mail", event)
    finally:
        del os.environ["SES_CONFIGURATION_SET"]
        config.reset_settings()
    assert len(inbox._backend().sent_messages) == 2
    return list(recorder.calls)


def feedback_tour(app_client, idp, inbox, recorder) -> list[Call]:
    """SES's feedback: a hard bounce and a complaint, in SNS's envelope, from the queue."""
    from chalicelib import mail_feedback
    from localdev import ses_simulator

    bodies = [
        ses_simulator.sns_envelope(ses_simulator.record(kind, "gone@example.com", "m-1"))
        for kind in ("Bounce", "Complaint")
    ]
    event = {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"r-{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue",
            }
            for i, body in enumerate(bodies)
        ]
    }
    recorder.clear()
    app_client.lambda_.invoke("handle_mail_feedback", event)
    recorded = list(recorder.calls)
    with recorder.paused():
        state = mail_feedback.state_of("gone@example.com")
        assert state.undeliverable and state.complained
    return recorded


def _feedback_event_source(stage: str) -> list:
    """The feedback queue's event source polls with the function's role, under its own key."""
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{stage_env(stage)['MAIL_FEEDBACK_QUEUE_NAME']}"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    decrypt = Need(
        "kms:Decrypt",
        key,
        request_context(
            kms__ViaService=f"sqs.{REGION}.amazonaws.com",
            kms__ResourceAliases=[f"alias/nrcme-{stage}-mail-feedback"],
        ),
        "handle_mail_feedback runtime",
    )
    return [
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:GetQueueAttributes", queue),
        decrypt,
    ]


def _sqs_event_source(stage: str) -> list:
    """The event source mapping polls with the function's role; SQS decrypts for it."""
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{stage_env(stage)['OUTBOX_QUEUE_NAME']}"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    decrypt = Need(
        "kms:Decrypt",
        key,
        request_context(
            kms__ViaService=f"sqs.{REGION}.amazonaws.com",
            kms__ResourceAliases=[data_key_alias(stage)],
        ),
        "send_queued_mail runtime",
    )
    return [
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:GetQueueAttributes", queue),
        decrypt,
    ]


@dataclass(frozen=True)
class Function:
    tour: Callable[..., list[Call]]
    # (action, resource ARN) the Lambda service needs for the trigger, beyond the logs:
    # an SQS event source mapping, for one, receives and deletes with the function's role.
    runtime: Callable[[str], list[tuple[str, str]]] = field(default=lambda stage: [])


# Every function the app deploys, by its Chalice name.
FUNCTIONS = {
    API_HANDLER: Function(api_tour),
    "cleanup_expired_flows": Function(cleanup_tour),
    REMINDERS: Function(reminders_tour),
    CAMPAIGN: Function(campaign_tour),
    "send_queued_mail": Function(worker_tour, runtime=_sqs_event_source),
    "handle_mail_feedback": Function(feedback_tour, runtime=_feedback_event_source),
}


@pytest.fixture
def lambda_secrets(aws, idp, monkeypatch):
    """Secrets from SSM as in a deployed stage (the tests' environment holds them inline)."""
    ssm = boto3.client("ssm", region_name=REGION)
    values = {
        "LOGIN_GOV_PRIVATE_KEY_PARAMETER": os.environ["LOGIN_GOV_PRIVATE_KEY"],
        "HMAC_ROOT_KEY_PARAMETER": os.environ["HMAC_ROOT_KEY"],
    }
    for setting, name in TOUR_PARAMETERS.items():
        ssm.put_parameter(Name=name, Value=values[setting], Type="SecureString")
        monkeypatch.setenv(setting, name)
    monkeypatch.delenv("LOGIN_GOV_PRIVATE_KEY")
    monkeypatch.delenv("HMAC_ROOT_KEY")
    reset_app_caches()
    yield
    reset_app_caches()


# --- the tests ---------------------------------------------------------------------------------


def deployed_functions() -> set[str]:
    import app

    chalice_app = app.app
    names = {API_HANDLER} if chalice_app.routes else set()
    names |= {source.name for source in chalice_app.event_sources}
    names |= {function.name for function in chalice_app.pure_lambda_functions}
    return names


def test_every_deployed_function_has_a_tour_and_its_own_policy_in_every_stage():
    assert deployed_functions() == set(FUNCTIONS)
    config = chalice_config()
    assert config["autogen_policy"] is False
    for stage in DEPLOYED_STAGES:
        # No stage-wide file: a new function without its own policy fails to deploy instead
        # of inheriting another function's rights.
        assert "iam_policy_file" not in config["stages"][stage]
        assert not (CHALICE_DIR / f"policy-{stage}.json").exists()
        for function in FUNCTIONS:
            assert policy_file(stage, function) == f"policy-{stage}-{function}.json"
            assert (CHALICE_DIR / policy_file(stage, function)).is_file()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_policy_grants_exactly_what_its_code_uses(
    function, app_client, idp, mailbox, calls, lambda_secrets
):
    from chalicelib import clients

    clients.reset()
    recorded = FUNCTIONS[function].tour(app_client, idp, mailbox, calls)
    assert recorded, "the tour made no AWS call"
    problems = []
    for stage in DEPLOYED_STAGES:
        statements = policy(stage, function)["Statement"]
        needs = needs_of(function, recorded, stage)
        problems += [
            f"{stage}: lacks {n.action} on {n.resource} ({n.why})"
            for n in needs
            if not any(grants(s, n) for s in statements)
        ]
        problems += [
            f"{stage}: grants {grant}, which {function} never uses"
            for grant in unused_grants(statements, needs)
        ]
    assert not problems, "\n".join(problems)


def _actions_on(statements: list[dict], resource: str) -> set[str]:
    return {
        action
        for s in statements
        for action in as_list(s["Action"])
        if any(wildcard(r).match(resource) for r in as_list(s["Resource"]))
    }


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_can_rewrite_the_audit_trail_or_delete_an_account(stage, function):
    statements = policy(stage, function)["Statement"]
    # A compromised function must not rewrite the audit trail: it may only add events.
    assert _actions_on(statements, table_arn(stage, "audit")) <= {
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
    }
    # Registry accounts come from the registry's import; no function removes one.
    on_accounts = _actions_on(statements, table_arn(stage, "accounts"))
    assert not on_accounts & {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_only_the_reminders_job_scans_and_only_accounts(stage, function):
    scans = {
        resource
        for s in policy(stage, function)["Statement"]
        if "dynamodb:Scan" in as_list(s["Action"])
        for resource in s["Resource"]
    }
    # The public API function reading every account would hand out the registry.
    expected = (
        {table_arn(stage, "accounts").replace(ACCOUNT, "*")} if function == REMINDERS else set()
    )
    assert scans == expected


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_policy_names_its_stages_resources_or_states_a_condition(stage, function):
    own_names = (f"nrcme-{stage}-", f"{APP_NAME}-{stage}", f"/nrcme/{stage}/")
    document = policy(stage, function)
    assert document["Version"] == "2012-10-17"
    for entry in document["Statement"]:
        assert set(entry) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, entry["Sid"]
        assert entry["Effect"] == "Allow"
        assert not any("*" in action for action in entry["Action"]), entry["Sid"]
        for resource in entry["Resource"]:
            assert resource != "*", entry["Sid"]
            assert any(name in resource for name in own_names) or "Condition" in entry, entry["Sid"]


def test_the_evaluator_refuses_what_iam_refuses():
    """The checks above are only as good as `grants`: it must say no where IAM says no."""
    statement = {
        "Sid": "S",
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem"],
        "Resource": ["arn:aws:dynamodb:us-east-1:*:table/nrcme-prod-claims"],
        "Condition": {"StringEquals": {"ses:FromAddress": "a@example.gov"}},
    }
    claims = table_arn("prod", "claims")
    ok = Need("dynamodb:GetItem", claims, request_context(ses__FromAddress="a@example.gov"))
    assert grants(statement, ok)
    assert not grants(statement, Need("dynamodb:PutItem", claims, ok.context))
    assert not grants(statement, Need("dynamodb:GetItem", claims + "x", ok.context))
    assert not grants(statement, Need("dynamodb:GetItem", claims + "/index/i", ok.context))
    assert not grants(statement, Need("dynamodb:GetItem", claims))  # condition key missing
    assert not grants(
        statement,
        Need("dynamodb:GetItem", claims, request_context(ses__FromAddress="b@example.gov")),
    )
    assert unused_grants([statement], [ok]) == []
    assert unused_grants([statement], []) == [
        "S: dynamodb:GetItem on arn:aws:dynamodb:us-east-1:*:table/nrcme-prod-claims"
    ]
