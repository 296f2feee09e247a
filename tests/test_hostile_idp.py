"""A hostile identity provider: the OpenID Connect RP conformance cases, in one place.

Each test is named after its OpenID Foundation RP conformance test id, states the expected
outcome (accept or reject), and drives the real app against the local Login.gov emulator
with one of its faults switched on. A refusal must leave nothing behind: a 4xx HTML page,
no session (cookie or record), no `sub#` claim, the account unlinked
(`tests.support.assertions.assert_refused`) - and the log names the check that refused it, so a
test cannot pass because something unrelated broke first.
"""

from __future__ import annotations

import uuid

import pytest

from chalicelib.models import Account
from tests.support import APP_BASE_URL
from tests.support.accounts import make_account
from tests.support.assertions import (
    assert_refused,
    sessions_in_table,
    signin_states_in_table,
    sub_claims,
    warm_key_cache,
)
from tests.support.browser import query_of
from tests.support.service import reset_app_caches

EMAIL = "dr.alice@example.com"
OTHER_CLIENT = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:other"


@pytest.fixture
def account(app_client):
    return make_account(primary=EMAIL)


def refused_by_id_token_check(page, browser, logged, event="id_token_rejected"):
    assert_refused(page, browser)
    assert "could not complete your sign-in" in page.body
    assert event in logged.names(), logged.names()


def assert_signed_in_and_linked(page, browser):
    assert page.status == 302 and page.location == "/account", (page.status, page.body[:300])
    assert "nr_session" in browser.cookies
    (claim,) = sub_claims()
    assert Account.get("1000000001").linked_sub == claim.claim[len("sub#") :]


# --- ID token: issuer, audience, times, subject ---------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("https://evil.example/", id="another-issuer"),
        pytest.param("{issuer_without_slash}", id="without-trailing-slash"),
        pytest.param("{issuer_upper_case}", id="case-changed"),
        pytest.param(None, id="iss-absent"),
    ],
)
def test_rp_id_token_issuer_mismatch(browser, account, idp, logged, issuer):
    """Reject: `iss` must equal the discovered issuer exactly, trailing slash included."""
    if issuer is not None:
        issuer = issuer.format(
            issuer_without_slash=idp.issuer.rstrip("/"), issuer_upper_case=idp.issuer.upper()
        )
    idp.faults["id_token_claims"] = {"iss": issuer}
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(OTHER_CLIENT, id="another-client"),
        pytest.param(None, id="aud-absent"),
        pytest.param("", id="aud-empty"),
        pytest.param([OTHER_CLIENT, "urn:x"], id="list-without-us"),
        # Several audiences need an `azp` naming us (OIDC Core 3.1.3.7, items 4-5).
        pytest.param(["{client_id}", OTHER_CLIENT], id="list-with-us-and-another"),
    ],
)
def test_rp_id_token_aud(browser, account, idp, logged, aud):
    """Reject: `aud` must name our client id (the accepted forms, an array and several
    audiences with our `azp`, are in tests/test_oidc_strict.py)."""
    from tests.support import CLIENT_ID

    if isinstance(aud, list):
        aud = [a.format(client_id=CLIENT_ID) for a in aud]
    idp.faults["id_token_claims"] = {"aud": aud}
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


@pytest.mark.parametrize(
    "iat",
    [
        pytest.param(None, id="iat-absent"),
        pytest.param("yesterday", id="iat-not-a-number"),
    ],
)
def test_rp_id_token_iat(browser, account, idp, logged, iat):
    """Reject: an ID token without a usable `iat`."""
    idp.faults["id_token_claims"] = {"iat": iat}
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param(None, id="sub-absent"),
        pytest.param("", id="sub-empty"),
        pytest.param("   ", id="sub-blank"),
        pytest.param(12345, id="sub-not-a-string"),
    ],
)
def test_rp_id_token_sub(browser, account, idp, logged, sub):
    """Reject: an ID token without a subject names nobody, and must link nobody."""
    idp.faults["id_token_claims"] = {"sub": sub}
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


# --- ID token: keys and signatures ------------------------------------------------------------


def test_rp_id_token_kid_absent_single_jwks(browser, account, idp):
    """Accept: no `kid`, but only one key is published, so the key is unambiguous."""
    idp.faults["id_token_kid"] = None
    assert len(idp.jwks()["keys"]) == 1
    assert_signed_in_and_linked(browser.sign_in([EMAIL]), browser)


def test_rp_id_token_kid_absent_multiple_jwks(browser, account, idp, logged):
    """Reject: no `kid` while several keys are published; never try each key in turn."""
    idp.rotate_keys()
    idp.faults["id_token_kid"] = None
    assert len(idp.jwks()["keys"]) == 2
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


def test_rp_id_token_bad_sig_rs256(browser, account, idp, logged):
    """Reject: RS256 signature by a key Login.gov does not publish (under a published kid)."""
    idp.faults["id_token_bad_signature"] = True
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


def test_rp_id_token_sig_none(browser, account, idp, logged):
    """Reject: `alg: none` (an unsigned token)."""
    idp.faults["id_token_alg"] = "none"
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


def test_hs256_signed_with_the_published_rsa_key_is_refused(browser, account, idp, logged):
    """Reject (beyond the conformance ids): algorithm confusion, HMAC keyed with the public key."""
    idp.faults["id_token_alg"] = "HS256-public"
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged)


def test_id_token_with_a_malformed_header_is_a_4xx_refusal(browser, account, idp):
    """Reject (beyond the conformance ids): a header whose `kid` is not a string."""
    # The emulator builds the HS256 forgery by hand, so it can carry any header.
    idp.faults.update({"id_token_alg": "HS256-public", "id_token_kid": 12345})
    page = browser.sign_in([EMAIL])
    # Fails closed even today: nothing is stored...
    assert sessions_in_table() == [] and sub_claims() == []
    assert "nr_session" not in browser.cookies
    # ...but the answer is a 5xx, which the callback contract forbids for bad input.
    assert_refused(page, browser)


# --- Nonce ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant, event",
    [
        ("wrong", "id_token_nonce_rejected"),
        ("from-an-earlier-signin", "id_token_nonce_rejected"),
        ("absent", "id_token_rejected"),  # a required claim: refused before the nonce compare
    ],
)
def test_rp_nonce_invalid(browser, account, idp, logged, variant, event):
    """Reject: the nonce must be the one this sign-in sent."""
    if variant == "wrong":
        nonce = "x" * 43
    elif variant == "absent":
        nonce = None
    else:  # a real nonce, but issued to another sign-in of this same browser
        nonce = query_of(browser.start_signin())["nonce"]
    idp.faults["id_token_claims"] = {"nonce": nonce}
    refused_by_id_token_check(browser.sign_in([EMAIL]), browser, logged, event=event)


# --- acr: the assurance asked for -------------------------------------------------------------


@pytest.mark.parametrize(
    "acr",
    [
        pytest.param("urn:acr.login.gov:verified", id="another-level"),
        pytest.param("http://idmanagement.gov/ns/assurance/ial/1", id="legacy-not-requested"),
        pytest.param(None, id="acr-absent"),
        pytest.param(["urn:acr.login.gov:auth-only"], id="not-a-string"),
    ],
)
def test_an_acr_that_was_not_requested_is_refused(browser, account, idp, logged, acr):
    """Reject: `acr` must be one of LOGIN_GOV_ACR_VALUES, exactly."""
    idp.faults["id_token_claims"] = {"acr": acr}
    refused_by_id_token_check(
        browser.sign_in([EMAIL]), browser, logged, event="id_token_acr_rejected"
    )


def test_the_legacy_acr_is_accepted_when_it_is_what_was_requested(
    browser, account, idp, monkeypatch
):
    """Accept: Login.gov answers the legacy IAL1 value to a legacy request."""
    monkeypatch.setenv("LOGIN_GOV_ACR_VALUES", "http://idmanagement.gov/ns/assurance/ial/1")
    reset_app_caches()
    url = browser.start_signin()
    assert query_of(url)["acr_values"] == "http://idmanagement.gov/ns/assurance/ial/1"
    assert_signed_in_and_linked(browser.get(browser.authorize(url, [EMAIL])), browser)


# --- Userinfo -----------------------------------------------------------------------------------


def test_an_email_marked_unverified_never_links_even_in_all_emails(browser, account, idp, logged):
    """Reject the address: `email_verified: false` outweighs its place in `all_emails`."""
    idp.faults["userinfo_email_verified"] = False
    page = browser.sign_in([EMAIL])
    assert page.status == 302 and page.location == "/link/no-match"
    assert Account.get("1000000001").linked_sub is None and sub_claims() == []


def test_other_verified_emails_still_link_when_the_shared_one_is_unverified(
    browser, idp, app_client
):
    """Accept: only the unverified address is dropped; a verified one in all_emails links."""
    make_account(primary="dr.alice@example.com")
    idp.faults["userinfo_email_verified"] = False
    page = browser.sign_in(["unconfirmed@example.net", "dr.alice@example.com"])
    assert_signed_in_and_linked(page, browser)


@pytest.mark.parametrize("variant", ["another-subject", "null", "case-changed"])
def test_rp_userinfo_bad_sub_claim(browser, account, idp, logged, variant):
    """Reject: userinfo must describe the subject of the ID token (case-sensitive)."""
    sub = str(uuid.uuid4())
    idp.faults["userinfo_sub"] = {
        "another-subject": str(uuid.uuid4()),
        "null": None,
        "case-changed": sub.upper(),
    }[variant]
    page = browser.sign_in([EMAIL], sub=sub)
    assert_refused(page, browser)
    assert "userinfo_rejected" in logged.names()
    assert idp.count("/api/openid_connect/userinfo") == 1


# --- Discovery ----------------------------------------------------------------------------------


def test_rp_discovery_issuer_not_matching_config(browser, account, idp, logged):
    """Reject: discovery names another issuer, so the sign-in never starts."""
    idp.faults["discovery_issuer"] = idp.issuer.rstrip("/")
    page = browser.get("/login")
    assert 400 <= page.status < 500 and "text/html" in page.headers["Content-Type"]
    assert page.location is None
    assert not browser.has_signin_cookie()
    assert signin_states_in_table() == []
    assert "discovery_failed" in logged.names()


def test_rp_discovery_issuer_not_matching_config_at_the_callback(browser, account, idp, logged):
    """Reject: a fresh container re-reads discovery mid-sign-in and finds another issuer;
    the code is never sent to a token endpoint that document names."""
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    reset_app_caches()  # a new Lambda container: discovery is read again
    idp.faults["discovery_issuer"] = "https://evil.example/"
    assert_refused(browser.get(callback), browser)
    assert "discovery_failed" in logged.names()
    assert idp.count("/api/openid_connect/token") == 0


# --- Key rotation ---------------------------------------------------------------------------------


def test_rp_key_rotation_op_sign_key(browser, other_browser, account, idp):
    """Accept: a token signed by a newly rotated key, after exactly one JWKS refetch."""
    warm_key_cache(other_browser)  # the app caches the old key
    fetches_before = idp.count("/api/openid_connect/certs")
    idp.rotate_keys()
    assert_signed_in_and_linked(browser.sign_in([EMAIL]), browser)
    assert idp.count("/api/openid_connect/certs") == fetches_before + 1
    # The refetched keys are cached: the next sign-in costs no further fetch.
    browser.cookies.clear()
    assert browser.sign_in([EMAIL]).location == "/account"
    assert idp.count("/api/openid_connect/certs") == fetches_before + 1


# --- RP-initiated logout ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "returned_state, claims_login_gov",
    [
        pytest.param("echoed", True, id="state-echoed"),  # the control: Login.gov did its part
        pytest.param("missing", False, id="state-missing"),
        pytest.param("another-browsers", False, id="state-of-another-browser"),
        pytest.param("forged", False, id="state-forged"),
    ],
)
def test_rp_rp_initiated_logout(
    browser, other_browser, account, idp, logged, returned_state, claims_login_gov
):
    """The session ends at /logout, before Login.gov is involved; /signed-out claims a
    Login.gov sign-out only when the state it gets back is the one this browser sent."""
    browser.follow(browser.sign_in([EMAIL]))
    assert browser.get("/account").status == 200
    page = browser.get("/logout")
    assert page.status == 302 and page.location.startswith(idp.url("/openid_connect/logout?"))
    # Gone already: whatever Login.gov does next cannot keep this session alive.
    assert sessions_in_table() == [] and "nr_session" not in browser.cookies

    if returned_state == "missing":
        idp.faults["logout_state"] = ""
    elif returned_state == "another-browsers":
        idp.faults["logout_state"] = query_of(other_browser.get("/logout").location)["state"]
    elif returned_state == "forged":
        idp.faults["logout_state"] = "forged-state-" + "x" * 30
    back = browser.get(page.location)  # Login.gov's redirect to post_logout_redirect_uri
    assert back.status == 302 and back.location.startswith(APP_BASE_URL + "/signed-out")
    assert ("state" in query_of(back.location)) is (returned_state != "missing")

    signed_out = browser.get(back.location)
    assert signed_out.status == 200 and "You are signed out" in signed_out.body
    assert ("and Login.gov" in signed_out.body) is claims_login_gov
    assert ("logout_state_mismatch" in logged.names()) is not claims_login_gov
    assert "nr_logout" not in browser.cookies
    assert sessions_in_table() == []
    assert browser.get("/account").location == "/login?return_to=/account"
