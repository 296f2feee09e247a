"""Least privilege for the support console: its Lambda function's IAM policy grants exactly
what its code does, built like tests/test_policies.py (and with its machinery,
tests/support/policies.py: the same call-to-IAM table, the same small evaluator).

The console takes a tour of its routes under moto, as its staff would (first sign-ins that
bind, returning sign-ins, the staff page and every staff change, an idle refresh, a sign-in
refused, a sign-in Login.gov could not start, sign-out), with localdev/aws_calls recording
every AWS call. Each call becomes the IAM actions that authorise it, with the ARNs the
deployed stage gives (console/.chalice/config.json), and the stage's policy file for the
console's function must allow every one and grant nothing the tour did not use.

The tour includes every desk operation and its follow-up retries (accounts, claims, audit,
the sessions of an identity, the outbox). When the next parts of the console call AWS
(search, the person page), extend the tour with them and add the actions to
console/.chalice/policy-<stage>-api_handler.json: this test says which are missing.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlencode

import boto3
import pytest
from chalice.config import Config

from localdev.aws_calls import Call
from localdev.idp import sub_for_emails
from tests.support import stages as examiners
from tests.support.console import (
    CONSOLE_DIR,
    DESK_ENV,
    DeskBrowser,
    add_staff,
    console_config,
    reset_desk_caches,
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

CHALICE_DIR = CONSOLE_DIR / ".chalice"
APP_NAME = "nrcme-desk"
API_HANDLER = "api_handler"
DEPLOYED_STAGES = ("dev", "prod")
TOUR_PARAMETERS = {
    "LOGIN_GOV_PRIVATE_KEY_PARAMETER": "/tour/desk-login-gov-private-key",
    "HMAC_ROOT_KEY_PARAMETER": "/tour/hmac-root-key",
}


def stage_env(stage: str) -> dict[str, str]:
    config = console_config()
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def policy_file(stage: str, function: str) -> str | None:
    config = Config(chalice_stage=stage, config_from_disk=console_config())
    return config.scope(stage, function).iam_policy_file


def policy(stage: str) -> dict:
    return json.loads((CHALICE_DIR / policy_file(stage, API_HANDLER)).read_text())


class ConsoleStage:
    """The tour's names (test- tables, /tour/ parameters) as the console's deployed stage
    names them."""

    def __init__(self, stage: str):
        self.stage, self.env = stage, stage_env(stage)

    def table(self, name: str) -> str:
        tour_prefix = os.environ["TABLE_PREFIX"]
        assert name.startswith(tour_prefix), f"a table outside the app's prefix: {name}"
        suffix = name[len(tour_prefix) :]
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self.env['TABLE_PREFIX']}{suffix}"

    def parameter(self, name: str) -> str:
        (setting,) = [key for key, value in TOUR_PARAMETERS.items() if value == name]
        return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{self.env[setting]}"

    def queue(self, url: str) -> str:
        # The email-changed notices of a correction go through the examiners' outbox.
        tour_queue = os.environ.get("OUTBOX_QUEUE_NAME") or os.environ["TABLE_PREFIX"] + "outbox"
        assert url.endswith("/" + tour_queue), f"a queue other than the outbox: {url}"
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.env['TABLE_PREFIX']}outbox"

    def sender(self, address: str) -> str:
        raise AssertionError(f"the console sent mail as {address}: it never should")


def needs_of(recorded: list[Call], stage_name: str) -> list[Need]:
    stage = ConsoleStage(stage_name)
    needs = []
    for call in recorded:
        to_iam = OPERATIONS.get((call.service, call.operation))
        assert to_iam, f"the console calls {call.service}.{call.operation}: teach OPERATIONS"
        needs += to_iam(stage, call.params, f"{call.service}.{call.operation}")
    log_group = (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{APP_NAME}-{stage_name}"
        ":log-stream:2026/01/01/[$LATEST]0123"
    )
    needs += [Need(action, log_group, why="Lambda runtime") for action in LOG_ACTIONS]
    if any(call.service == "dynamodb" for call in recorded):
        key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
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
        key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        context = request_context(
            kms__ViaService=f"sqs.{REGION}.amazonaws.com",
            kms__ResourceAliases=[data_key_alias(stage_name)],
        )
        needs += [
            Need(action, key, context, "SQS on the sender's behalf")
            for action in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    return sorted(set(needs), key=lambda n: (n.action, n.resource))


# --- the tour -------------------------------------------------------------------------------------


@pytest.fixture
def desk_secrets(desk_env, aws, monkeypatch):
    """The console's secrets from SSM, as in a deployed stage."""
    ssm = boto3.client("ssm", region_name=REGION)
    values = {
        "LOGIN_GOV_PRIVATE_KEY_PARAMETER": DESK_ENV["LOGIN_GOV_PRIVATE_KEY"],
        "HMAC_ROOT_KEY_PARAMETER": os.environ["HMAC_ROOT_KEY"],
    }
    for setting, name in TOUR_PARAMETERS.items():
        ssm.put_parameter(Name=name, Value=values[setting], Type="SecureString")
        monkeypatch.setenv(setting, name)
    monkeypatch.delenv("LOGIN_GOV_PRIVATE_KEY")
    monkeypatch.delenv("HMAC_ROOT_KEY")
    reset_desk_caches()
    yield
    reset_desk_caches()


LEAD, AGENT, NEW = "lead@desk.example.gov", "agent@desk.example.gov", "new@desk.example.gov"


def registry_with_a_shared_address_and_a_link() -> None:
    from chalicelib import linking
    from tests.support.accounts import make_account

    make_account("1000000001", "dr.alice@example.com", secondary="shared@example.com")
    make_account("1000000002", "shared@example.com", last_name="Moreno")
    linking.link_account(
        "sub-alice",
        "1000000001",
        method=linking.LinkMethod.AUTOMATIC,
        matched="dr.alice@example.com",
        login_gov_email="alice.personal@example.net",
    )


def console_tour(desk, idp, recorder, clock) -> list[Call]:
    from chalicelib import login_gov
    from supportdesk.console import staff

    with recorder.paused():  # ops, at their desk with manage.py: not the console
        add_staff(LEAD, "supervisor")
        add_staff(AGENT, "agent")
        add_staff("other.lead@desk.example.gov", "supervisor", bound=True)
    reset_desk_caches()  # a fresh Lambda container: it fetches its own secrets
    recorder.clear()

    # First sign-ins bind their pending entries; a second sign-in is found by its sub.
    lead, agent = DeskBrowser(desk, idp), DeskBrowser(desk, idp)
    assert lead.sign_in_as(LEAD).location == "/home"
    assert agent.sign_in_as(AGENT).location == "/home"
    assert DeskBrowser(desk, idp).sign_in_as(AGENT).location == "/home"
    # Someone not on the list.
    assert DeskBrowser(desk, idp).sign_in_as("stranger@example.gov").status == 403

    # Pages; an idle refresh.
    assert lead.get("/home").status == 200
    assert lead.get("/search?q=1000000001").status == 200
    # Search by each key, and the person page (read only: accounts, claims, audit, flows).
    with recorder.paused():  # the registry and a sign-in, made before the desk looks
        registry_with_a_shared_address_and_a_link()
    for query in ("1000000001", "shared@example.com", "alice.personal@example.net", "moreno"):
        assert lead.get("/search?" + urlencode({"q": query})).status == 200, query
    assert lead.get("/people/1000000001").status == 200
    clock.advance(120)
    assert lead.get("/staff").status == 200
    assert lead.get("/report").status == 200

    # Every staff change, with its confirmation.
    token = lead.csrf()
    agent_sub = sub_for_emails([AGENT])
    steps = [
        ("/staff/add", {"email": NEW, "role": "viewer"}),
        ("/staff/role", {"sub": agent_sub, "role": "viewer"}),
        ("/staff/remove", {"email": NEW}),
        ("/staff/remove", {"sub": agent_sub}),
    ]
    for path, fields in steps:
        assert lead.post(path, {"csrf_token": token, **fields}).status == 200, path
        done = lead.post(path, {"csrf_token": token, **fields, "confirm": "yes", "reason": "t"})
        assert done.status == 302, (path, done.body[:300])
    # Demoting a supervisor checks that another still is one.
    other = staff.get(sub_for_emails(["other.lead@desk.example.gov"]))
    fields = {"csrf_token": token, "sub": other.sub, "role": "agent", "confirm": "yes"}
    assert lead.post("/staff/role", {**fields, "reason": "t"}).status == 302
    # The removed agent's next click.
    assert agent.get("/home").status == 401

    # Login.gov unreachable while a sign-in starts: its state is forgotten at once.
    login_gov.reset_caches()
    idp.faults["discovery_issuer"] = "https://elsewhere.example/"
    assert DeskBrowser(desk, idp).get("/login").status == 400
    idp.faults.clear()
    login_gov.reset_caches()

    desk_operations_tour(lead, token, recorder)

    # Sign-out.
    assert lead.post("/logout", {"csrf_token": token}).status == 200
    recorded = list(recorder.calls)

    # The tour went where it meant to (read after the recording).
    assert staff.get(agent_sub) is None and staff.list_pending() == []
    assert staff.get(other.sub).role == "agent"
    assert any(
        c.operation == "TransactWriteItems"
        and any("ConditionCheck" in item for item in c.params["TransactItems"])
        for c in recorded
    )
    return recorded


def desk_operations_tour(lead, token, recorder) -> None:
    """Every desk operation, its confirmation first, as a supervisor (who may use them all);
    the retries of their follow-ups; the reads."""
    from localdev.html_forms import parse_forms
    from tests.support.accounts import link, make_account

    with recorder.paused():  # the registry's import and a sign-in: not the console
        make_account("1000000201", "tour.one@example.com")
        link("1000000201", "tour-sub-1")
        make_account("1000000202", "tour.shared@example.com")
        make_account("1000000203", "tour.shared@example.com")

    def change(path: str, first) -> None:
        (form,) = [f for f in parse_forms(first.body) if f["fields"].get("confirm") == "yes"]
        fields = {**form["fields"], "ticket": "SD-1", "reason": "tour"}
        fields.pop("report", None)
        done = lead.post(path, fields)
        assert done.status == 200 and "Done:" in done.body, (path, done.body[:400])

    people = "/people/1000000201"
    change(f"{people}/unlink", lead.get(f"{people}/unlink?mode=not-owner"))
    change(f"{people}/lift-bar", lead.get(f"{people}/lift-bar?sub=tour-sub-1"))
    with recorder.paused():
        link("1000000201", "tour-sub-1")
    for operation in ("disable", "enable", "end-sessions"):
        change(f"{people}/{operation}", lead.get(f"{people}/{operation}"))
    address = {"csrf_token": token, "slot": "primary", "address": "tour.own@example.com"}
    change("/people/1000000203/set-email", lead.post("/people/1000000203/set-email", address))
    shared = {"csrf_token": token, "address": "tour.shared@example.com"}
    change("/people/1000000202/clear-shared", lead.post("/people/1000000202/clear-shared", shared))
    retries = [
        (f"{people}/retry/end-sessions", {"sub": "tour-sub-1"}),
        ("/people/1000000203/retry/notices", {"addresses": "tour.shared@example.com"}),
    ]
    for path, fields in retries:
        assert lead.post(path, {"csrf_token": token, **fields}).status == 200, path
    assert lead.get("/trace?ref=3f2a9c1d").status == 200
    from chalicelib import clock

    since = clock.utc_now().strftime("%Y-%m-%d")
    assert lead.get(f"/export-changes?since={since}&format=csv").status == 200


# --- the tests ------------------------------------------------------------------------------------


def test_the_console_deploys_one_function_with_its_own_policy_in_every_stage(desk_app):
    assert desk_app.routes and not desk_app.event_sources and not desk_app.pure_lambda_functions
    config = console_config()
    assert config["app_name"] == APP_NAME and config["autogen_policy"] is False
    for stage in DEPLOYED_STAGES:
        assert "iam_policy_file" not in config["stages"][stage]
        assert policy_file(stage, API_HANDLER) == f"policy-{stage}-{API_HANDLER}.json"
        assert (CHALICE_DIR / policy_file(stage, API_HANDLER)).is_file()
        assert config["stages"][stage]["api_gateway_stage"] == stage


def test_the_console_policy_grants_exactly_what_its_code_uses(
    desk_client, desk_secrets, idp, calls, fake_clock
):
    recorded = console_tour(desk_client, idp, calls, fake_clock)
    assert recorded, "the tour made no AWS call"
    problems = []
    for stage in DEPLOYED_STAGES:
        statements = policy(stage)["Statement"]
        needs = needs_of(recorded, stage)
        problems += [
            f"{stage}: lacks {n.action} on {n.resource} ({n.why})"
            for n in needs
            if not any(grants(s, n) for s in statements)
        ]
        problems += [
            f"{stage}: grants {grant}, which the console never uses"
            for grant in unused_grants(statements, needs)
        ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_the_console_changes_records_only_as_the_desk_does_and_never_rewrites_audit(stage):
    statements = policy(stage)["Statement"]
    prefix = stage_env(stage)["TABLE_PREFIX"]

    def actions_on(suffix: str) -> set[str]:
        arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{prefix}{suffix}"
        return {
            action
            for s in statements
            for action in as_list(s["Action"])
            if any(wildcard(r).match(arn) for r in as_list(s["Resource"]))
        }

    # The desk's operations update an account in a transaction; they never create or delete
    # one (the registry's import does that, with manage.py). The search and the person page
    # read accounts by key, and several at once; the one Scan is the migration report's
    # read of every account (supportdesk.report.read_accounts).
    assert actions_on("accounts") == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:Scan",
    }
    # Audit events are appended and read, never changed or deleted.
    assert actions_on("audit") == {"dynamodb:PutItem", "dynamodb:Query"}
    # Sign-in states, the sessions of an identity (through its index), and the counters'
    # reads (a condition keeps them to `sendcount#` keys): never a Scan or a Query of the
    # flows table itself.
    assert actions_on("flows") == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",
    }
    assert "dynamodb:Scan" not in actions_on("desk")
    # The claims table's one Scan is the report's count of SES's bounces and complaints
    # (campaign.all_address_states: `mailstate#` items have no index). It reveals nothing the
    # console cannot read already: the accounts Scan lists every address and its holder.
    assert "dynamodb:Scan" in actions_on("claims")


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_the_console_policy_names_its_stages_resources_or_states_a_condition(stage):
    own_names = (f"nrcme-{stage}-", f"{APP_NAME}-{stage}", f"/nrcme/{stage}/")
    document = policy(stage)
    assert document["Version"] == "2012-10-17"
    for entry in document["Statement"]:
        assert set(entry) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, entry["Sid"]
        assert entry["Effect"] == "Allow"
        assert not any("*" in action for action in entry["Action"]), entry["Sid"]
        for resource in entry["Resource"]:
            assert resource != "*", entry["Sid"]
            assert any(name in resource for name in own_names) or "Condition" in entry


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_the_console_reads_its_own_login_gov_key_and_the_shared_root_key(stage):
    env = stage_env(stage)
    examiners_env = examiners.stage_env(stage)
    # Its own Login.gov client: its own key, never the examiners' app's.
    assert env["LOGIN_GOV_PRIVATE_KEY_PARAMETER"] == f"/nrcme/{stage}/desk-login-gov-private-key"
    assert (
        env["LOGIN_GOV_PRIVATE_KEY_PARAMETER"] != examiners_env["LOGIN_GOV_PRIVATE_KEY_PARAMETER"]
    )
    assert env["LOGIN_GOV_CLIENT_ID"] != examiners_env["LOGIN_GOV_CLIENT_ID"]
    assert env["APP_BASE_URL"].startswith("https://")
    assert env["APP_BASE_URL"] != examiners_env["APP_BASE_URL"]
    # The keyed stand-ins in its logs match the examiners' (manage.py trace follows both).
    assert env["HMAC_ROOT_KEY_PARAMETER"] == examiners_env["HMAC_ROOT_KEY_PARAMETER"]
    assert env["TABLE_PREFIX"] == examiners_env["TABLE_PREFIX"]
    assert env["LOGIN_GOV_ISSUER"] == examiners_env["LOGIN_GOV_ISSUER"]
    (secrets,) = [s for s in policy(stage)["Statement"] if s["Sid"] == "ReadStageSecrets"]
    assert set(secrets["Resource"]) == {
        f"arn:aws:ssm:us-east-1:*:parameter{env['LOGIN_GOV_PRIVATE_KEY_PARAMETER']}",
        f"arn:aws:ssm:us-east-1:*:parameter{env['HMAC_ROOT_KEY_PARAMETER']}",
    }
