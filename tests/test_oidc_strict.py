"""OpenID Connect as a strict, standard-conforming provider enforces it (issue 16).

PKCE S256 (RFC 7636; RFC 9700 2.1.1), redirect_uri in the token request (RFC 6749 4.1.3),
the authorization response's `iss` (RFC 9207), `aud` as a string or an array with `azp`
(OpenID Connect Core 3.1.3.7, items 3-5), a security event token addressed to the push URL
(Login.gov: `aud` = the relying party's push_notification_url), and the `prompt` setting.

The local Login.gov enforces the provider's side; the tests below that talk to it directly
keep its strictness from regressing silently, since the rest of the suite only proves that
sign-ins pass against it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
import requests

from chalicelib import login_gov
from chalicelib.digests import sha256_hex
from chalicelib.models import Account, Flow, SignInState
from localdev import aws_calls
from tests.support import APP_BASE_URL, CLIENT_ID
from tests.support.accounts import make_account
from tests.support.assertions import assert_refused, sessions_in_table, signin_states_in_table
from tests.support.browser import query_of
from tests.support.service import reset_app_caches

EMAIL = "dr.alice@example.com"
REDIRECT_URI = APP_BASE_URL + "/auth/callback"
PUSH_URL = APP_BASE_URL + "/api/security-events"
TOKEN_PATH = "/api/openid_connect/token"


@pytest.fixture
def account(app_client):
    return make_account(primary=EMAIL)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def stored_state(url: str) -> SignInState:
    return SignInState.get(f"signin#{sha256_hex(query_of(url)['state'])}", consistent_read=True)


def with_query(url: str, **changes) -> str:
    """`url` with query parameters replaced (None removes one)."""
    params = query_of(url)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(params)))


def assert_signed_in(page, browser):
    assert page.status == 302 and page.location == "/account", (page.status, page.body[:300])
    assert "nr_session" in browser.cookies
    assert Account.get("1000000001").linked_sub


# --- PKCE: the app's side ------------------------------------------------------------------


def test_each_authorization_request_carries_an_s256_challenge_of_a_verifier_kept_server_side(
    browser, account
):
    url = browser.start_signin()
    params = query_of(url)
    verifier = stored_state(url).code_verifier
    # RFC 7636 4.1: 43 to 128 unreserved characters.
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier)
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == s256(verifier)
    assert verifier not in url and verifier not in str(browser.cookies)
    second = browser.start_signin()
    assert stored_state(second).code_verifier != verifier
    assert query_of(second)["code_challenge"] != params["code_challenge"]


def test_a_verifier_that_does_not_match_the_challenge_is_refused_by_the_provider(
    browser, account, idp, logged
):
    """The app sends the verifier stored with the state; the provider checks it."""
    url = browser.start_signin()
    callback = browser.authorize(url, [EMAIL])
    record = stored_state(url)
    record.update(actions=[SignInState.code_verifier.set("w" * 43)])
    assert_refused(browser.get(callback), browser)
    assert "token_exchange_failed" in logged.names()


# --- PKCE and redirect_uri: the local Login.gov's side ---------------------------------------


def token_request(idp, code: str, verifier: str, **changes) -> requests.Response:
    """A token request as the app makes it (a real client assertion), with `changes`."""
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_assertion_type": login_gov.CLIENT_ASSERTION_TYPE,
        "client_assertion": login_gov.build_client_assertion(idp.url(TOKEN_PATH)),
    }
    for name, value in changes.items():
        if value is None:
            fields.pop(name)
        else:
            fields[name] = value
    return requests.post(idp.url(TOKEN_PATH), data=fields, timeout=10)


@pytest.mark.parametrize(
    "changes, refused",
    [
        pytest.param({}, False, id="as-the-app-sends-it"),  # the control: the helper is right
        pytest.param({"code_verifier": None}, True, id="verifier-missing"),
        pytest.param({"code_verifier": "v" * 43}, True, id="verifier-of-another-challenge"),
        pytest.param({"code_verifier": "short"}, True, id="verifier-too-short"),
        pytest.param({"redirect_uri": None}, True, id="redirect-uri-missing"),
        pytest.param(
            {"redirect_uri": APP_BASE_URL + "/auth/callback/"},
            True,
            id="redirect-uri-not-the-authorization-requests",
        ),
    ],
)
def test_the_local_login_gov_refuses_a_token_request_without_the_right_verifier_or_redirect_uri(
    browser, account, idp, changes, refused
):
    url = browser.start_signin()
    code = query_of(browser.authorize(url, [EMAIL]))["code"]
    resp = token_request(idp, code, stored_state(url).code_verifier, **changes)
    if refused:
        assert resp.status_code == 400 and "id_token" not in resp.json()
    else:
        assert resp.status_code == 200 and resp.json()["id_token"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"code_challenge": None, "code_challenge_method": None}, id="no-pkce"),
        pytest.param({"code_challenge_method": None}, id="method-missing"),
        pytest.param({"code_challenge_method": "plain"}, id="method-plain"),
        pytest.param({"code_challenge": "too-short"}, id="challenge-malformed"),
    ],
)
def test_the_local_login_gov_refuses_an_authorization_request_without_s256_pkce(
    browser, account, idp, changes
):
    resp = requests.get(
        with_query(browser.start_signin(), **changes), allow_redirects=False, timeout=10
    )
    assert resp.status_code == 302
    back = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT_URI + "?")
    assert back["error"] == "invalid_request" and "code" not in back
    assert back["iss"] == idp.issuer


def test_discovery_advertises_s256_and_the_iss_parameter(idp):
    document = requests.get(idp.url("/.well-known/openid-configuration"), timeout=10).json()
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True


# --- The authorization response's iss (RFC 9207) ---------------------------------------------


def test_every_authorization_response_names_the_issuer(browser, account, idp):
    assert query_of(browser.authorize(browser.start_signin(), [EMAIL]))["iss"] == idp.issuer
    cancelled = browser.authorize(browser.start_signin(), [EMAIL], action="cancel")
    assert query_of(cancelled)["iss"] == idp.issuer


@pytest.mark.parametrize(
    "iss",
    [
        pytest.param("https://evil.example/", id="another-issuer"),
        pytest.param("{issuer_without_slash}", id="without-trailing-slash"),
        pytest.param("{issuer_upper_case}", id="case-changed"),
        pytest.param("", id="empty"),
    ],
)
def test_a_callback_naming_another_issuer_is_refused_and_the_state_stays_its_owners(
    browser, other_browser, account, idp, logged, iss
):
    """Mix-up defence: the response came from another provider, or was forged; the code is
    sent to no token endpoint. The refusal does not spend the state: a forged response must
    not cancel the sign-in of the browser that holds it."""
    iss = iss.format(
        issuer_without_slash=idp.issuer.rstrip("/"), issuer_upper_case=idp.issuer.upper()
    )
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    forged = with_query(callback, iss=iss)
    page = browser.get(forged)
    assert_refused(page, browser)
    assert "could not complete your sign-in" in page.body
    assert "authorization_response_issuer_rejected" in logged.names()
    assert idp.count(TOKEN_PATH) == 0
    # Whoever forged it, without this browser's binding, cannot use the state either...
    assert_refused(other_browser.get(callback), other_browser)
    # ...and the genuine response still finishes the owner's sign-in.
    assert_signed_in(browser.get(callback), browser)


def test_a_cancel_naming_another_issuer_is_refused_and_cancels_nothing(
    browser, account, idp, logged
):
    url = browser.start_signin()
    cancelled = browser.authorize(url, [EMAIL], action="cancel")
    page = browser.get(with_query(cancelled, iss="https://evil.example/"))
    assert_refused(page, browser)
    assert "You cancelled signing in" not in page.body
    assert "authorization_response_issuer_rejected" in logged.names()
    # The state was not spent: the owner's own answer from Login.gov still signs them in.
    assert_signed_in(browser.get(browser.authorize(url, [EMAIL])), browser)


@pytest.mark.parametrize("action", ["continue", "cancel"])
def test_a_response_without_iss_is_refused_when_discovery_promises_it(
    browser, account, idp, logged, action
):
    idp.faults["authorization_response_iss"] = None
    callback = browser.authorize(browser.start_signin(), [EMAIL], action=action)
    assert "iss" not in query_of(callback)
    page = browser.get(callback)
    assert_refused(page, browser)
    assert "You cancelled signing in" not in page.body
    assert "authorization_response_issuer_rejected" in logged.names()
    assert idp.count(TOKEN_PATH) == 0


@pytest.mark.parametrize(
    "advertised",
    [
        pytest.param(None, id="not-advertised"),
        pytest.param(False, id="advertised-false"),
    ],
)
def test_a_response_without_iss_is_accepted_from_a_provider_that_does_not_promise_it(
    browser, account, idp, advertised
):
    idp.faults["discovery_fields"] = {"authorization_response_iss_parameter_supported": advertised}
    idp.faults["authorization_response_iss"] = None
    assert_signed_in(browser.sign_in([EMAIL]), browser)


def test_a_wrong_iss_is_refused_even_from_a_provider_that_does_not_promise_it(
    browser, account, idp, logged
):
    idp.faults["discovery_fields"] = {"authorization_response_iss_parameter_supported": None}
    idp.faults["authorization_response_iss"] = "https://evil.example/"
    assert_refused(browser.sign_in([EMAIL]), browser)
    assert "authorization_response_issuer_rejected" in logged.names()


# --- aud and azp (OpenID Connect Core 3.1.3.7, items 3-5) --------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": [CLIENT_ID]}, id="one-element-array"),
        pytest.param(
            {"aud": [CLIENT_ID, "urn:other"], "azp": CLIENT_ID},
            id="several-audiences-authorized-party-us",
        ),
        pytest.param(
            {"aud": ["urn:other", CLIENT_ID], "azp": CLIENT_ID}, id="several-audiences-us-second"
        ),
        pytest.param({"azp": CLIENT_ID}, id="string-with-azp-us"),
    ],
)
def test_an_id_token_listing_this_client_as_its_audience_is_accepted(browser, account, idp, claims):
    idp.faults["id_token_claims"] = claims
    assert_signed_in(browser.sign_in([EMAIL]), browser)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": [CLIENT_ID, "urn:other"]}, id="several-audiences-without-azp"),
        pytest.param(
            {"aud": [CLIENT_ID, "urn:other"], "azp": "urn:other"},
            id="several-audiences-azp-another",
        ),
        pytest.param({"azp": "urn:other"}, id="string-with-azp-another"),
        pytest.param({"aud": []}, id="empty-array"),
        pytest.param({"aud": [CLIENT_ID, 7], "azp": CLIENT_ID}, id="array-with-a-non-string"),
        pytest.param({"aud": ["urn:other"], "azp": CLIENT_ID}, id="array-without-us"),
    ],
)
def test_an_id_token_not_meant_for_this_client_is_refused(browser, account, idp, logged, claims):
    idp.faults["id_token_claims"] = claims
    assert_refused(browser.sign_in([EMAIL]), browser)
    assert "id_token_rejected" in logged.names()


def test_the_local_login_gov_can_send_several_audiences(browser, account, idp, logged):
    """The fault the rest of the suite can use: this client first, then the others."""
    idp.faults["id_token_extra_audiences"] = ["urn:other"]
    assert_refused(browser.sign_in([EMAIL]), browser)  # several audiences and no azp
    idp.faults["id_token_claims"] = {"azp": CLIENT_ID}
    browser.cookies.clear()
    assert_signed_in(browser.sign_in([EMAIL]), browser)


# --- Security event tokens: aud = the push URL --------------------------------------------------


@pytest.fixture
def linked(browser, account):
    sub = str(uuid.uuid4())
    browser.follow(browser.sign_in([EMAIL], sub=sub))
    assert browser.get("/account").status == 200
    return sub


def push(app_client, token: str):
    resp = app_client.http.post(
        "/api/security-events", body=token, headers={"Content-Type": "application/secevent+jwt"}
    )
    return resp.status_code, (json.loads(resp.body) if resp.body else None)


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_login_gov_addresses_security_events_to_the_push_url(app_client, idp, linked):
    token = idp.security_event_token(CLIENT_ID, "account-disabled", linked)
    assert claims_of(token)["aud"] == PUSH_URL  # as Login.gov sends it, by default
    assert push(app_client, token)[0] == 202
    assert sessions_in_table() == []


def test_a_security_event_addressed_to_the_client_id_is_still_accepted(app_client, idp, linked):
    token = idp.security_event_token(CLIENT_ID, "account-disabled", linked, aud=CLIENT_ID)
    assert push(app_client, token)[0] == 202
    assert sessions_in_table() == []


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param("https://evil.example/api/security-events", id="another-sites-push-url"),
        pytest.param(APP_BASE_URL + "/api/security-events/", id="trailing-slash"),
        pytest.param(APP_BASE_URL, id="the-base-url"),
        pytest.param([PUSH_URL, "urn:other"], id="several-audiences-without-azp"),
    ],
)
def test_a_security_event_addressed_elsewhere_is_refused(app_client, idp, linked, aud):
    token = idp.security_event_token(CLIENT_ID, "account-disabled", linked, aud=aud)
    status, body = push(app_client, token)
    assert status == 400 and body["err"] == "invalid_audience"
    assert len(sessions_in_table()) == 1


# --- prompt ------------------------------------------------------------------------------------


def test_prompt_is_a_setting(browser, account, idp, monkeypatch):
    assert query_of(browser.start_signin())["prompt"] == "select_account"
    monkeypatch.setenv("LOGIN_GOV_PROMPT", "login")
    reset_app_caches()
    url = browser.start_signin()
    assert query_of(url)["prompt"] == "login"
    assert_signed_in(browser.get(browser.authorize(url, [EMAIL])), browser)


# --- nothing slower ------------------------------------------------------------------------------


def test_login_and_a_returning_callback_cost_no_more_requests(browser, account, idp, monkeypatch):
    """/login: one DynamoDB write (the state, verifier included). A returning user's callback:
    the token request only at the provider (the iss check reads the cached discovery), and
    three DynamoDB requests (consume the state, read the sub claim, write the session)."""
    browser.sign_in([EMAIL])
    browser.cookies.pop("nr_session")
    calls = aws_calls.watching(monkeypatch)
    try:
        url = browser.start_signin()
        assert calls.operations() == ["PutItem"]
        callback = browser.authorize(url, [EMAIL])
        calls.clear()
        idp.request_log.clear()
        assert browser.get(callback).status == 302
        assert idp.request_log == [TOKEN_PATH]
        assert calls.total("dynamodb") == 3, calls.operations()
    finally:
        calls.close()
    assert [f for f in Flow.scan() if f.flow_id.startswith("session#")]
    assert signin_states_in_table()  # the spent state stays until it expires


# --- make run: which provider, which ports (localdev/run.py) ------------------------------------
# tests/e2e/test_outside_provider.py runs it against an outside provider; these check the
# plan it makes from the settings, which needs no ports.


def run_plan(**environ):
    from localdev import run

    return run.plan_run(environ, run._local_stage_env())


@pytest.fixture(scope="module")
def client_key_pem():
    from localdev.idp import generate_rsa_key, private_pem

    return private_pem(generate_rsa_key())


def test_make_run_by_default_starts_the_stand_in_on_the_stages_ports(client_key_pem):
    plan = run_plan(LOGIN_GOV_PRIVATE_KEY=client_key_pem)
    assert (plan.app_port, plan.stand_in_port, plan.moto_port, plan.mailbox_port) == (
        8000,
        8001,
        5000,
        8025,
    )
    assert plan.issuer == "http://127.0.0.1:8001/"
    assert plan.env["LOGIN_GOV_ACR_VALUES"] == "urn:acr.login.gov:auth-only"  # top level


def test_make_run_lets_the_real_environment_win_and_move_the_ports(client_key_pem):
    plan = run_plan(
        LOGIN_GOV_PRIVATE_KEY=client_key_pem,
        APP_BASE_URL="http://localhost:9100/",
        AWS_ENDPOINT_URL="http://127.0.0.1:9101",
        LOCAL_MAILBOX_PORT="9102",
        TABLE_PREFIX="mine-",
        LOGIN_GOV_PROMPT="login",
    )
    assert (plan.app_port, plan.moto_port, plan.mailbox_port) == (9100, 9101, 9102)
    assert plan.app_url == "http://localhost:9100" and plan.stand_in_port == 8001
    assert plan.env["TABLE_PREFIX"] == "mine-" and plan.env["LOGIN_GOV_PROMPT"] == "login"
    assert plan.env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9101"


def test_make_run_uses_an_outside_provider_with_its_client_id_and_key_file(
    client_key_pem, tmp_path
):
    key_file = tmp_path / "key.pem"
    key_file.write_text(client_key_pem)
    plan = run_plan(
        LOGIN_GOV_ISSUER="https://idp.int.identitysandbox.gov/",
        LOGIN_GOV_CLIENT_ID="urn:gov:gsa:openidconnect.profiles:sp:sso:dot:mine",
        LOGIN_GOV_PRIVATE_KEY_FILE=str(key_file),
    )
    assert plan.stand_in_port is None
    assert plan.env["LOGIN_GOV_PRIVATE_KEY"] == client_key_pem
    assert plan.env["LOGIN_GOV_CLIENT_ID"].endswith(":mine")


@pytest.mark.parametrize(
    "environ, says",
    [
        pytest.param(
            {
                "LOGIN_GOV_ISSUER": "https://idp.int.identitysandbox.gov/",
                "LOGIN_GOV_PRIVATE_KEY_FILE": "{key_file}",
            },
            "LOGIN_GOV_CLIENT_ID",
            id="outside-provider-without-client-id",
        ),
        pytest.param(
            {
                "LOGIN_GOV_ISSUER": "https://idp.int.identitysandbox.gov/",
                "LOGIN_GOV_CLIENT_ID": "urn:x",
            },
            "LOGIN_GOV_PRIVATE_KEY_FILE",
            id="outside-provider-without-key",
        ),
        pytest.param(
            {"LOGIN_GOV_PRIVATE_KEY_FILE": "{tmp}/missing.pem"},
            "cannot read",
            id="key-file-missing",
        ),
        pytest.param(
            {"LOGIN_GOV_PRIVATE_KEY": "not a key"}, "not an unencrypted PEM key", id="not-a-key"
        ),
        pytest.param(
            {"LOGIN_GOV_PRIVATE_KEY": "{key}", "APP_BASE_URL": "https://example.gov"},
            "APP_BASE_URL",
            id="app-not-on-this-machine",
        ),
        pytest.param(
            {"LOGIN_GOV_PRIVATE_KEY": "{key}", "LOCAL_MAILBOX_PORT": "mail"},
            "LOCAL_MAILBOX_PORT",
            id="mailbox-port-not-a-number",
        ),
    ],
)
def test_make_run_refuses_settings_it_cannot_work_with(client_key_pem, tmp_path, environ, says):
    from localdev import run

    key_file = tmp_path / "key.pem"
    key_file.write_text(client_key_pem)
    environ = {
        name: value.format(key_file=key_file, tmp=tmp_path, key=client_key_pem)
        for name, value in environ.items()
    }
    with pytest.raises(run.SetupError, match=says):
        run_plan(**environ)
