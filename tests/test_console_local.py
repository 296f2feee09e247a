"""`make run`'s support console (localdev/run.py): its environment, its port, its client."""

from __future__ import annotations

import pytest

from localdev import run


def plans(environ: dict[str, str]):
    plan = run.plan_run(environ, run._local_stage_env())
    return plan, run.plan_console(plan, environ, run._console_stage_env())


def test_the_console_runs_on_8002_with_its_own_client_and_the_stacks_services():
    plan, console = plans({})
    assert console.url == "http://127.0.0.1:8002" and console.port == 8002
    env = console.env
    assert env["APP_BASE_URL"] == "http://127.0.0.1:8002"
    assert env["LOGIN_GOV_CLIENT_ID"] != plan.env["LOGIN_GOV_CLIENT_ID"]
    assert env["LOGIN_GOV_PRIVATE_KEY"] != plan.env["LOGIN_GOV_PRIVATE_KEY"]
    for shared in ("LOGIN_GOV_ISSUER", "AWS_ENDPOINT_URL", "TABLE_PREFIX"):
        assert env[shared] == plan.env[shared]
    assert "aal/2?phishing_resistant=true" in env["LOGIN_GOV_ACR_VALUES"]
    assert env["LOGIN_GOV_PROMPT"] == "login"


def test_settings_move_the_console_and_the_examiners_settings_stay_theirs():
    environ = {
        "APP_BASE_URL": "http://127.0.0.1:8100",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5100",
        "CONSOLE_BASE_URL": "http://127.0.0.1:8102/",
        "LOGIN_GOV_ACR_VALUES": "urn:acr.login.gov:auth-only",
        "DESK_SESSION_IDLE_SECONDS": "600",
    }
    plan, console = plans(environ)
    assert (console.url, console.port) == ("http://127.0.0.1:8102", 8102)
    assert console.env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5100"
    assert "phishing_resistant" in console.env["LOGIN_GOV_ACR_VALUES"]  # not the app's
    assert console.env["DESK_SESSION_IDLE_SECONDS"] == "600"  # the real environment wins
    assert plan.app_port == 8100


def test_the_console_reports_against_the_stacks_campaign_deadline():
    """The report page's projection and the person page's campaign line read the deadline
    the examiners' side mails to: make run's planned one, or the one the environment sets."""
    plan, console = plans({})
    assert console.env["CAMPAIGN_DEADLINE"] == plan.env["CAMPAIGN_DEADLINE"]
    _, console = plans({"CAMPAIGN_DEADLINE": "2027-01-15"})
    assert console.env["CAMPAIGN_DEADLINE"] == "2027-01-15"


def test_the_console_needs_a_port_of_its_own():
    with pytest.raises(run.SetupError, match="CONSOLE_BASE_URL"):
        plans({"CONSOLE_BASE_URL": "http://127.0.0.1:8000"})


def test_with_an_outside_provider_the_console_needs_a_client_of_its_own_there(tmp_path):
    from localdev.idp import generate_rsa_key, private_pem

    key = tmp_path / "key.pem"
    key.write_text(private_pem(generate_rsa_key()))
    environ = {
        "LOGIN_GOV_ISSUER": "https://idp.int.identitysandbox.gov/",
        "LOGIN_GOV_CLIENT_ID": "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:mine",
        "LOGIN_GOV_PRIVATE_KEY_FILE": str(key),
    }
    _, console = plans(environ)
    assert console is None
    assert "not started" in run._console_lines(None)[0]
    # Unless the console has a client of its own there.
    console_key = tmp_path / "desk.pem"
    console_key.write_text(private_pem(generate_rsa_key()))
    plan, console = plans(
        {
            **environ,
            "CONSOLE_LOGIN_GOV_CLIENT_ID": "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:desk",
            "CONSOLE_LOGIN_GOV_PRIVATE_KEY_FILE": str(console_key),
        }
    )
    assert console.env["LOGIN_GOV_CLIENT_ID"].endswith(":desk")
    assert console.env["LOGIN_GOV_ISSUER"] == "https://idp.int.identitysandbox.gov/"
    assert console.env["LOGIN_GOV_PRIVATE_KEY"] == console_key.read_text()
    assert "  register as redirect URI:  http://127.0.0.1:8002/auth/callback" in (
        run._console_lines(console, plan)
    )
    with pytest.raises(run.SetupError, match="CONSOLE_LOGIN_GOV_PRIVATE_KEY_FILE"):
        plans({**environ, "CONSOLE_LOGIN_GOV_CLIENT_ID": "x"})


def test_the_demo_staff_are_the_contracts():
    assert [(email, role) for email, role, _ in run.DEMO_STAFF] == [
        ("viewer@desk.example.gov", "viewer"),
        ("agent@desk.example.gov", "agent"),
        ("lead@desk.example.gov", "supervisor"),
    ]


def test_local_login_gov_port_moves_the_stand_in_and_both_apps_follow():
    plan, console = plans(
        {"LOCAL_LOGIN_GOV_PORT": "8101", "CONSOLE_BASE_URL": "http://127.0.0.1:8102"}
    )
    assert plan.stand_in_port == 8101 and plan.issuer == "http://127.0.0.1:8101/"
    assert console.env["LOGIN_GOV_ISSUER"] == "http://127.0.0.1:8101/"
    with pytest.raises(run.SetupError, match="LOCAL_LOGIN_GOV_PORT"):
        plans({"LOCAL_LOGIN_GOV_PORT": "eighty"})
