"""Sign-in with Login.gov: every way a callback can be wrong ends in a 4xx page,
no session and no link. The identity provider is the local emulator, over HTTP."""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlencode

import pytest

from chalicelib import login_gov
from chalicelib.models import Account, Flow
from tests.support.accounts import make_account
from tests.support.assertions import assert_refused, sessions_in_table, warm_key_cache
from tests.support.browser import query_of

EMAIL = "dr.alice@example.com"


@pytest.fixture
def account(app_client):
    return make_account(primary=EMAIL)


def test_primary_email_signs_in_and_links(browser, account):
    page = browser.sign_in([EMAIL])
    assert page.status == 302 and page.location == "/account"
    assert "nr_session" in browser.cookies
    linked = Account.get("1000000001")
    assert linked.linked_sub and linked.legacy_username_retired


def test_authorization_request_follows_login_gov_rules(browser, account, idp):
    url = browser.start_signin()
    params = query_of(url)
    assert url.startswith(idp.url("/openid_connect/authorize?"))
    assert params["client_id"] == os.environ["LOGIN_GOV_CLIENT_ID"]
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == "http://127.0.0.1:8000/auth/callback"
    assert params["scope"].split() == ["openid", "email", "all_emails"]
    assert params["acr_values"] == "urn:acr.login.gov:auth-only"
    assert params["prompt"] == "select_account"
    assert len(params["state"]) >= 22 and len(params["nonce"]) >= 22
    assert params["state"] != params["nonce"]
    second = query_of(browser.start_signin())
    assert second["state"] != params["state"] and second["nonce"] != params["nonce"]


def test_signin_cookie_is_httponly_lax(app_client, account):
    resp = app_client.http.get("/login")
    cookie = resp.headers["Set-Cookie"]
    cookie = cookie[0] if isinstance(cookie, list) else cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    # Local stage is plain http; Secure is set wherever APP_BASE_URL is https.
    assert "Secure" not in cookie


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(
            {
                "exp": int(time.time()) - 120,
                "iat": int(time.time()) - 1000,
                "nbf": int(time.time()) - 1000,
            },
            id="expired",
        ),
        pytest.param({"iat": int(time.time()) + 3600}, id="iat-far-future"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="nbf-far-future"),
        pytest.param({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, id="wrong-at-hash"),
    ],
)
def test_invalid_id_token_claims_are_refused(browser, account, idp, claims):
    idp.faults["id_token_claims"] = claims
    assert_refused(browser.sign_in([EMAIL]), browser)


@pytest.mark.parametrize(
    "claim, offset, accepted",
    [
        pytest.param("exp", -9, True, id="exp-within-leeway"),
        pytest.param("exp", -10, False, id="expired"),
        pytest.param("iat", 10, True, id="iat-future-within-leeway"),
        pytest.param("iat", 11, False, id="iat-future-beyond-leeway"),
        pytest.param("nbf", 10, True, id="nbf-within-leeway"),
        pytest.param("nbf", 11, False, id="not-yet-valid"),
    ],
)
def test_id_token_times_are_checked_by_our_clock_with_ten_seconds_leeway(
    clock, browser, account, idp, claim, offset, accepted
):
    """The clock is far from the wall clock: every time check reads ours, not PyJWT's
    system clock, on both sides (the local Login.gov stamps iat, nbf and exp by it too)."""
    idp.faults["id_token_claims"] = {claim: int(clock.time()) + offset}
    page = browser.sign_in([EMAIL])
    if accepted:
        assert page.status == 302 and page.location == "/account"
    else:
        assert_refused(page, browser)


def test_unknown_kid_refetches_once_then_refuses(browser, account, idp, monkeypatch):
    warm_key_cache(browser)
    fetches_before = idp.count("/api/openid_connect/certs")
    idp.faults["id_token_kid"] = "not-a-published-kid"
    assert_refused(browser.sign_in([EMAIL]), browser)
    assert idp.count("/api/openid_connect/certs") == fetches_before + 1
    # A flood of unknown kids inside the cooldown causes no further fetches.
    for _ in range(3):
        assert_refused(browser.sign_in([EMAIL]), browser)
    assert idp.count("/api/openid_connect/certs") == fetches_before + 1


def test_replayed_state_is_refused(browser, other_browser, account):
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    first = browser.get(callback)
    assert first.status == 302
    session_count = len(sessions_in_table())
    replay = other_browser.get(callback)  # someone who is not signed in
    assert replay.status == 400
    assert "Your sign-in took too long or was already finished" in replay.body
    assert "used twice" not in replay.body
    assert 'href="/login"' in replay.body and "Sign in again" in replay.body
    assert len(sessions_in_table()) == session_count
    assert "nr_session" not in other_browser.cookies


# --- a failed or repeated callback never ends a valid session ---------------------------------


def test_back_then_continue_after_signing_in_lands_on_the_account(browser, account):
    """Back from the account page shows Login.gov's page for the finished sign-in; Continue
    sends a new code with the spent state. The person is signed in: no error, same session."""
    authorize_url = browser.start_signin(return_to="/account/email")
    assert browser.get(browser.authorize(authorize_url, [EMAIL])).status == 302
    session = browser.cookies["nr_session"]
    again = browser.get(browser.authorize(authorize_url, [EMAIL]))
    assert again.status == 302 and again.location == "/account/email"
    assert browser.cookies["nr_session"] == session
    assert browser.get("/account").status == 200
    assert len(sessions_in_table()) == 1


def test_cancel_while_signed_in_keeps_the_session_and_goes_to_the_account(browser, account):
    """Home -> Sign in -> Cancel at Login.gov while signed in."""
    browser.follow(browser.sign_in([EMAIL]))
    session = browser.cookies["nr_session"]
    callback = browser.authorize(browser.start_signin(), [EMAIL], action="cancel")
    page = browser.get(callback)
    assert page.status == 302 and page.location == "/account"
    assert browser.cookies["nr_session"] == session
    assert browser.get("/account").status == 200


def test_cancel_while_signed_in_goes_where_the_person_was_going(browser, account):
    browser.follow(browser.sign_in([EMAIL]))
    callback = browser.authorize(
        browser.start_signin(return_to="/account/email"), [EMAIL], action="cancel"
    )
    assert browser.get(callback).location == "/account/email"


def test_a_failed_callback_does_not_end_the_session(browser, account, idp):
    browser.follow(browser.sign_in([EMAIL]))
    idp.faults["id_token_claims"] = {"aud": "someone-else"}
    page = browser.sign_in([EMAIL])
    assert page.status == 400 and "could not complete your sign-in" in page.body
    assert "nr_session" in browser.cookies
    assert browser.get("/account").status == 200


def test_a_used_state_after_signing_out_asks_to_sign_in_again(browser, account):
    authorize_url = browser.start_signin()
    browser.follow(browser.get(browser.authorize(authorize_url, [EMAIL])))
    browser.get("/logout")
    page = browser.get(browser.authorize(authorize_url, [EMAIL]))
    assert page.status == 400
    assert "Your sign-in took too long or was already finished" in page.body


def test_callback_in_another_browser_is_refused_and_leaves_the_owner_able_to_finish(
    browser, other_browser, account
):
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    stolen = other_browser.get(callback)
    assert_refused(stolen, other_browser)
    # The state was not spent by the attacker's attempt: the owner can still finish.
    assert browser.get(callback).status == 302
    assert Account.get("1000000001").linked_sub


def test_callback_without_any_signin_cookie_is_refused(browser, account):
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    browser.cookies.clear()
    assert_refused(browser.get(callback), browser)


def test_expired_state_is_refused(browser, account, monkeypatch, clock):
    monkeypatch.setenv("SIGNIN_STATE_TTL_SECONDS", "1")
    from chalicelib.config import reset_settings

    reset_settings()
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    clock.advance(2.1)
    assert_refused(browser.get(callback), browser)


def test_authorization_code_is_single_use_at_the_provider(browser, account, idp):
    """A replayed code with a fresh state still fails: Login.gov codes are single-use."""
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    code = query_of(callback)["code"]
    assert browser.get(callback).status == 302
    fresh_state = query_of(browser.start_signin())["state"]
    browser.cookies.pop("nr_session", None)
    page = browser.get("/auth/callback?" + urlencode({"code": code, "state": fresh_state}))
    assert page.status == 400 and "nr_session" not in browser.cookies


def test_cancel_at_login_gov_shows_friendly_page(browser, account):
    callback = browser.authorize(browser.start_signin(), [EMAIL], action="cancel")
    assert query_of(callback)["error"] == "access_denied"
    page = browser.get(callback)
    assert page.status == 400 or page.status == 401 or page.status == 403
    assert "You cancelled signing in" in page.body
    assert_refused(page, browser)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"state": "x" * 43},
        {"code": "abc"},
        {"code": "a" * 5000, "state": "b" * 43},
        {"code": "abc", "state": "s" * 5000},
        {"error": "invalid_request", "state": "x" * 43},
        {"error": "<script>alert(1)</script>"},
    ],
)
def test_malformed_callbacks_are_4xx_pages(browser, account, query):
    browser.start_signin()
    page = browser.get("/auth/callback?" + urlencode(query))
    assert_refused(page, browser)
    assert "<script>alert(1)</script>" not in page.body


@pytest.mark.parametrize(
    "return_to",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%2F%5Cevil",
        "/account\t/evil",
        "/acc\nount",
        "/%0d%0aSet-Cookie:x=1",
        "javascript:alert(1)",
        "/%252F%252Fevil.example",
        "\\\\evil.example",
    ],
)
def test_unsafe_return_to_is_refused(browser, account, return_to):
    page = browser.get("/login?" + urlencode({"return_to": return_to}))
    assert page.status == 400
    assert page.location is None
    assert [f for f in Flow.scan() if f.flow_id.startswith("signin#")] == []
    assert_refused(page, browser)


def test_same_site_return_to_is_honoured_for_a_returning_user(browser, account):
    browser.sign_in([EMAIL])
    browser.cookies.pop("nr_session")
    page = browser.sign_in([EMAIL], return_to="/account?tab=emails")
    assert page.status == 302 and page.location == "/account?tab=emails"


def test_returning_user_makes_few_provider_and_no_jwks_requests(browser, account, idp):
    browser.sign_in([EMAIL])
    browser.cookies.pop("nr_session")
    url = browser.start_signin()
    callback = browser.authorize(url, [EMAIL])
    idp.request_log.clear()
    page = browser.get(callback)
    assert page.status == 302
    assert idp.request_log == ["/api/openid_connect/token"]


def test_logout_ends_session_and_goes_to_login_gov_logout(browser, account, idp):
    browser.follow(browser.sign_in([EMAIL]))
    page = browser.get("/logout")
    assert page.status == 302
    assert page.location.startswith(idp.url("/openid_connect/logout?"))
    params = query_of(page.location)
    assert params["client_id"] == os.environ["LOGIN_GOV_CLIENT_ID"]
    assert params["post_logout_redirect_uri"] == "http://127.0.0.1:8000/signed-out"
    assert len(params["state"]) >= 22
    assert "id_token_hint" not in params
    assert sessions_in_table() == []
    back = browser.get(browser.get(page.location).location)
    assert back.status == 200 and "signed out of the National Registry and Login.gov" in back.body
    assert browser.get("/account").status == 302


def test_sessions_expire_when_idle(browser, account, monkeypatch, clock):
    monkeypatch.setenv("SESSION_IDLE_TTL_SECONDS", "1")
    from chalicelib.config import reset_settings

    reset_settings()
    browser.follow(browser.sign_in([EMAIL]))
    clock.advance(2.1)
    page = browser.get("/account")
    assert page.status == 302 and page.location.startswith("/login")


def test_sessions_expire_at_absolute_lifetime_even_when_busy(browser, account, monkeypatch, clock):
    monkeypatch.setenv("SESSION_ABSOLUTE_TTL_SECONDS", "2")
    from chalicelib.config import reset_settings

    reset_settings()
    browser.follow(browser.sign_in([EMAIL]))
    for _ in range(3):
        clock.advance(0.8)
        browser.get("/account")
    assert browser.get("/account").status == 302


def test_account_page_requires_sign_in(browser, account):
    page = browser.get("/account")
    assert page.status == 302 and page.location == "/login?return_to=/account"


def test_two_tabs_can_sign_in_at_once(browser, account):
    first = browser.authorize(browser.start_signin(), [EMAIL])
    second = browser.authorize(browser.start_signin(), [EMAIL])
    assert browser.get(second).status == 302
    browser.cookies.pop("nr_session")
    assert browser.get(first).status == 302


def test_concurrent_callbacks_with_one_state_only_one_wins(app_client, idp, account):
    """Five copies of one callback at once (same cookie): the state is spent exactly once.

    Domain-level threads, as in the linking race: Chalice's test client is not thread-safe.
    """
    from chalicelib import signin
    from chalicelib.errors import StateError
    from tests.support.browser import Browser

    owner = Browser(app_client, idp)
    params = query_of(owner.authorize(owner.start_signin(), [EMAIL]))
    binding = owner.signin_binding(params["state"])
    results = []
    barrier = threading.Barrier(5)

    def replay():
        barrier.wait()
        try:
            signin.complete_signin(dict(params), binding)
            results.append("signed in")
        except StateError:
            results.append("state refused")

    threads = [threading.Thread(target=replay) for _ in range(5)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == ["signed in"] + ["state refused"] * 4
    assert len(sessions_in_table()) == 1


def test_login_gov_module_rejects_token_without_jwt_shape(idp, aws):
    from chalicelib.errors import IdTokenError

    with pytest.raises(IdTokenError):
        login_gov.validate_id_token("not-a-jwt", nonce="n" * 43, access_token="a")


def test_visiting_signed_out_directly_really_signs_out(browser, account):
    browser.follow(browser.sign_in([EMAIL]))
    page = browser.get("/signed-out")
    assert page.status == 200 and "You are signed out" in page.body
    assert sessions_in_table() == []
    assert browser.get("/account").status == 302


# --- the browser binding: issued by the server, one per sign-in ---------------------------------


def signin_cookies(browser) -> dict[str, str]:
    return {k: v for k, v in browser.cookies.items() if "nr_signin" in k}


def path_of(url: str) -> str:
    """The app path of a URL on any stage's base URL (the test client takes paths)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_login_never_adopts_a_binding_the_browser_sends(browser, other_browser, account):
    """A planted binding (sibling subdomain, plain http) is not reused: the attacker who
    planted it cannot finish the victim's sign-in with it."""
    planted = "A" * 43
    browser.cookies["nr_signin"] = planted
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    issued = {k: v for k, v in signin_cookies(browser).items() if k != "nr_signin"}
    assert issued and planted not in issued.values()
    # The attacker knows the planted value and, from a leaked callback URL, the state.
    from chalicelib import web

    state = query_of(callback)["state"]
    other_browser.cookies.update({"nr_signin": planted, web.signin_cookie(state): planted})
    assert_refused(other_browser.get(callback), other_browser)
    # The victim, whose browser holds the binding the server issued, finishes.
    assert browser.get(callback).status == 302


def test_each_login_issues_its_own_binding_for_its_own_state(browser, account):
    first = query_of(browser.start_signin())["state"]
    second = query_of(browser.start_signin())["state"]
    cookies = signin_cookies(browser)
    assert len(cookies) == 2 and len(set(cookies.values())) == 2
    from chalicelib import web

    assert set(cookies) == {web.signin_cookie(first), web.signin_cookie(second)}


@pytest.fixture
def https_stage(monkeypatch, idp):
    """The app on an https base URL (every AWS stage), registered at the local Login.gov."""
    from chalicelib.config import reset_settings

    base = "https://127.0.0.1:8000"
    client = idp.clients[os.environ["LOGIN_GOV_CLIENT_ID"]]
    client.redirect_uris.append(base + "/auth/callback")
    monkeypatch.setenv("APP_BASE_URL", base)
    reset_settings()
    yield base
    client.redirect_uris.remove(base + "/auth/callback")
    monkeypatch.delenv("APP_BASE_URL")
    os.environ["APP_BASE_URL"] = "http://127.0.0.1:8000"
    reset_settings()


def test_https_cookies_are_host_prefixed_and_secure(browser, account, https_stage):
    resp = browser.client.http.get("/login")
    set_cookie = resp.headers["Set-Cookie"]
    for cookie in set_cookie if isinstance(set_cookie, list) else [set_cookie]:
        attributes = [a.strip() for a in cookie.split(";")]
        assert attributes[0].startswith("__Host-nr_signin_")
        assert "Secure" in attributes and "Path=/" in attributes
        assert not any(a.lower().startswith("domain") for a in attributes)
    callback = browser.authorize(resp.headers["Location"], [EMAIL])
    browser._store_cookies(resp.headers)
    page = browser.get(path_of(callback))
    assert page.status == 302 and page.location == "/account"
    assert "__Host-nr_session" in browser.cookies and "nr_session" not in browser.cookies
    assert browser.get("/account").status == 200


def test_a_planted_binding_cannot_finish_the_attackers_signin_in_the_victims_browser(
    browser, other_browser, account, https_stage
):
    """Login CSRF: the attacker starts a sign-in, signs in at Login.gov as themselves, plants
    their binding in the victim's browser under every name a sibling subdomain or a plain
    http answer can set, and sends the victim to the callback."""
    from chalicelib import web

    attacker = other_browser
    callback = attacker.authorize(attacker.start_signin(), ["mallory@example.net"])
    state = query_of(callback)["state"]
    (binding,) = signin_cookies(attacker).values()
    base_name = web.signin_cookie(state).removeprefix("__Host-")
    browser.cookies.update({"nr_signin": binding, base_name: binding})
    page = browser.get(path_of(callback))
    assert page.status == 400
    assert not any("nr_session" in name for name in browser.cookies)
    assert sessions_in_table() == []
