"""Login.gov security events: each type acts as documented; forged and replayed ones don't."""
from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from chalicelib.models import Account, AuditEvent, Claim, Flow
from localdev.idp import generate_rsa_key
from tests.conftest import make_account

CLIENT_ID = os.environ["LOGIN_GOV_CLIENT_ID"]
EMAIL = "dr.alice@example.com"


@pytest.fixture
def linked(browser):
    """A linked account with a live session; returns (browser, sub)."""
    make_account(primary=EMAIL)
    sub = str(uuid.uuid4())
    browser.follow(browser.sign_in([EMAIL], sub=sub))
    assert browser.get("/account").status == 200
    return browser, sub


def push(app_client, token: str, content_type="application/secevent+jwt"):
    resp = app_client.http.post("/api/security-events", body=token,
                                headers={"Content-Type": content_type})
    body = json.loads(resp.body) if resp.body else None
    return resp.status_code, body


def sessions_of(sub: str) -> list:
    return [f for f in Flow.scan() if f.flow_id.startswith("session#") and f.subject == sub]


def audit_names(nr="1000000001") -> list[str]:
    return [e.event for e in AuditEvent.query(nr)]


def test_account_purged_unlinks_so_the_person_can_relink(app_client, idp, linked):
    browser, sub = linked
    status, _ = push(app_client, idp.security_event_token(CLIENT_ID, "account-purged", sub))
    assert status == 202
    account = Account.get("1000000001")
    assert account.linked_sub is None and account.legacy_username_retired
    with pytest.raises(Claim.DoesNotExist):
        Claim.get(Claim.sub_key(sub))
    assert sessions_of(sub) == []
    assert browser.get("/account").status == 302
    assert "identity_unlinked_purged" in audit_names()
    # The person re-registers at Login.gov (a new sub) and links again by email.
    browser.cookies.clear()
    assert browser.sign_in([EMAIL], sub=str(uuid.uuid4())).location == "/account"


def test_account_disabled_ends_sessions_but_keeps_the_link(app_client, idp, linked):
    browser, sub = linked
    status, _ = push(app_client, idp.security_event_token(CLIENT_ID, "account-disabled", sub))
    assert status == 202
    assert sessions_of(sub) == []
    assert browser.get("/account").status == 302
    assert Account.get("1000000001").linked_sub == sub
    assert "login_gov_account_disabled" in audit_names()


def test_a_disabled_identity_signs_in_again_only_once_login_gov_enables_it(app_client, idp,
                                                                            linked):
    browser, sub = linked
    now = int(time.time())
    token = idp.security_event_token(CLIENT_ID, "account-disabled", sub, iat=now - 10)
    assert push(app_client, token)[0] == 202
    browser.cookies.clear()
    page = browser.sign_in([EMAIL], sub=sub)
    assert page.status == 400 and "Login.gov has disabled this Login.gov account" in page.body
    assert sessions_of(sub) == [] and Account.get("1000000001").linked_sub == sub
    token = idp.security_event_token(CLIENT_ID, "account-enabled", sub, iat=now)
    assert push(app_client, token)[0] == 202
    assert browser.sign_in([EMAIL], sub=sub).location == "/account"


def test_a_session_a_racing_sign_in_left_after_the_disable_is_refused_at_its_next_use(
        app_client, idp, linked):
    """A sign-in that read the link before the disabled mark committed, and wrote its
    session after the event ended the identity's sessions, leaves one session behind: the
    account carries the mark too, so the session opens nothing and is ended."""
    from chalicelib import signin, web

    browser, sub = linked
    assert push(app_client, idp.security_event_token(CLIENT_ID, "account-disabled", sub))[0] \
        == 202
    assert Account.get("1000000001").login_gov_disabled is True
    for path in ("/account", "/account/email"):
        browser.cookies[web.cookie_name(web.SESSION_COOKIE)] = \
            signin.start_linked_session(sub, "1000000001", notice=None)
        assert len(sessions_of(sub)) == 1
        page = browser.get(path)
        assert page.status == 400 and "Login.gov has disabled this Login.gov account" in page.body
        assert sessions_of(sub) == []
    # Enabled again: the mark goes from the account as from the link, and sign-in works.
    assert push(app_client, idp.security_event_token(CLIENT_ID, "account-enabled", sub))[0] \
        == 202
    assert not Account.get("1000000001").login_gov_disabled
    browser.cookies.clear()
    assert browser.sign_in([EMAIL], sub=sub).location == "/account"
    assert browser.get("/account").status == 200


def test_an_older_disable_delivered_after_the_enable_does_not_lock_anyone_out(app_client, idp,
                                                                             linked):
    """Login.gov may deliver events late and out of order: their own times decide."""
    browser, sub = linked
    now = int(time.time())
    for event, issued in (("account-enabled", now), ("account-disabled", now - 60)):
        assert push(app_client, idp.security_event_token(CLIENT_ID, event, sub,
                                                         iat=issued))[0] == 202
    browser.cookies.clear()
    assert browser.sign_in([EMAIL], sub=sub).location == "/account"
    claim = Claim.get(Claim.sub_key(sub))
    assert (claim.disabled_at, claim.enabled_at, claim.disabled) == (now - 60, now, False)


@pytest.mark.parametrize("event", [
    "account-enabled", "mfa-limit-account-locked", "recovery-activated", "password-reset",
    "reproof-completed", "recovery-information-changed",
])
def test_other_events_are_audited_and_change_nothing_else(app_client, idp, linked, event):
    browser, sub = linked
    status, _ = push(app_client, idp.security_event_token(CLIENT_ID, event, sub))
    assert status == 202
    assert f"login_gov_{event.replace('-', '_')}" in audit_names()
    assert Account.get("1000000001").linked_sub == sub
    assert browser.get("/account").status == 200


def test_event_for_an_unknown_subject_is_accepted_and_changes_nothing(app_client, idp, linked):
    _, sub = linked
    token = idp.security_event_token(CLIENT_ID, "account-purged", str(uuid.uuid4()))
    assert push(app_client, token)[0] == 202
    assert Account.get("1000000001").linked_sub == sub


def test_a_duplicate_delivery_is_accepted_and_changes_nothing(app_client, idp, linked):
    """Exactly once in effect: Login.gov may deliver a SET twice (a lost 202); the second
    delivery is answered 202 like the first and acts no more."""
    _, sub = linked
    token = idp.security_event_token(CLIENT_ID, "password-reset", sub)
    assert push(app_client, token)[0] == 202
    assert push(app_client, token)[0] == 202
    assert audit_names().count("login_gov_password_reset") == 1


@pytest.mark.parametrize("case, expected_err", [
    ("forged-signature", "invalid_key"),
    ("wrong-aud", "invalid_audience"),
    ("wrong-iss", "invalid_issuer"),
    ("missing-jti", "invalid_request"),
    ("too-old", "invalid_request"),
    ("unknown-event", "invalid_request"),
    ("subject-from-other-issuer", "invalid_request"),
    ("not-a-jwt", "invalid_request"),
    ("alg-none", "invalid_key"),
])
def test_forged_or_malformed_tokens_are_refused(app_client, idp, linked, case, expected_err):
    _, sub = linked
    make = idp.security_event_token
    tokens = {
        "forged-signature": lambda: make(CLIENT_ID, "account-purged", sub, key=generate_rsa_key()),
        "wrong-aud": lambda: make("urn:someone:else", "account-purged", sub),
        "wrong-iss": lambda: make(CLIENT_ID, "account-purged", sub, iss="https://evil.example/"),
        "missing-jti": lambda: make(CLIENT_ID, "account-purged", sub, omit=("jti",)),
        "too-old": lambda: make(CLIENT_ID, "account-purged", sub, iat=int(time.time()) - 3 * 86400),
        "unknown-event": lambda: make(CLIENT_ID, "account-exploded", sub),
        "subject-from-other-issuer": lambda: make(CLIENT_ID, "account-purged", sub, events={
            idp.RISC_PREFIX + "account-purged": {"subject": {
                "subject_type": "iss-sub", "iss": "https://evil.example/", "sub": sub}}}),
        "not-a-jwt": lambda: "hello",
        "alg-none": lambda: _alg_none(idp, sub),
    }
    status, body = push(app_client, tokens[case]())
    assert status == 400 and body["err"] == expected_err
    assert Account.get("1000000001").linked_sub == sub
    assert sessions_of(sub)
    assert not [n for n in audit_names() if n.startswith("login_gov_") or "purged" in n]


def _alg_none(idp, sub):
    import jwt
    return jwt.encode({"iss": idp.issuer, "aud": CLIENT_ID, "iat": int(time.time()),
                       "jti": "j" * 10, "events": {}}, None, algorithm="none")


def test_pushed_over_http_by_the_local_identity_provider(app_client, idp, linked):
    """The emulator's push helper sends exactly what the endpoint accepts."""
    _, sub = linked
    token = idp.security_event_token(CLIENT_ID, "account-disabled", sub)
    header = token.split(".")[0]
    import base64
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    assert decoded["typ"] == "secevent+jwt" and decoded["alg"] == "RS256" and decoded["kid"]
    assert push(app_client, token, content_type="application/secevent+jwt")[0] == 202
