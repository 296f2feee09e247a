"""Faults at every dependency: each ends in a clear page or a bounded retry, never in a
half-written link, an audit event without its change, or a stray session.

Login.gov faults come from the local emulator (slow, 5xx, keys or discovery down).
DynamoDB faults are injected at botocore, below PynamoDB and all of our code: a wrapper
around `BaseClient._make_api_call` raises the `ClientError` DynamoDB would answer after
botocore's own retries (or runs a competing write first, to stage a lost race), and a
`before-send` handler makes one operation unreachable, to count botocore's attempts.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest

from chalicelib import http_client, linking
from chalicelib.models import Account, AuditEvent, Claim, Flow, SignInState
from tests.invariants import assert_invariants
from tests.support import CLIENT_ID
from tests.support.accounts import make_account
from tests.support.assertions import (
    assert_nothing_half_written,
    assert_refused,
    sessions_in_table,
    signin_states_in_table,
    sub_claims,
    warm_key_cache,
)
from tests.support.browser import (
    enter_code,
    request_recovery,
    session_csrf,
    signed_in_unmatched,
)
from tests.support.service import reset_app_caches

EMAIL = "dr.alice@example.com"
NR = "1000000001"
STORAGE_PAGE = "Something went wrong on our side"
NOTHING_CHANGED = "nothing was changed"


@pytest.fixture
def account(app_client):
    return make_account(primary=EMAIL)


def slow_login_gov(monkeypatch, read_timeout_ms=300):
    monkeypatch.setenv("LOGIN_GOV_READ_TIMEOUT_MS", str(read_timeout_ms))
    reset_app_caches()


# --- DynamoDB fault injection at botocore (localdev.aws_calls) -------------------------------------


def assert_storage_page(page):
    assert page.status == 503, (page.status, page.body[:300])
    assert "text/html" in page.headers["Content-Type"]
    assert STORAGE_PAGE in page.body and NOTHING_CHANGED in page.body
    assert page.location is None


# --- Login.gov: token endpoint ------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 500, 503])
def test_token_endpoint_errors_end_in_a_clear_page(browser, account, idp, status):
    idp.faults["token_status"] = status
    page = browser.sign_in([EMAIL])
    assert_refused(page, browser)
    expected = "not responding" if status >= 500 else "could not complete your sign-in"
    assert expected in page.body
    assert idp.count("/api/openid_connect/token") == 1  # no retry: codes are single-use
    assert_nothing_half_written()


def test_token_endpoint_timeout_ends_in_a_clear_page(browser, account, idp, monkeypatch):
    slow_login_gov(monkeypatch)
    idp.faults["token_delay"] = 1.0
    page = browser.sign_in([EMAIL])
    assert_refused(page, browser)
    assert "not responding" in page.body
    assert idp.count("/api/openid_connect/token") == 1
    assert_nothing_half_written()


# --- Login.gov: userinfo --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, words",
    [
        (500, "not responding"),
        (502, "not responding"),
        (503, "not responding"),
        (401, "could not complete your sign-in"),
    ],
)
def test_userinfo_errors_end_in_a_clear_page(browser, account, idp, status, words):
    idp.faults["userinfo_status"] = status
    page = browser.sign_in([EMAIL])
    assert_refused(page, browser)
    assert words in page.body
    assert idp.count("/api/openid_connect/userinfo") == 1
    assert_nothing_half_written()


def test_userinfo_timeout_ends_in_a_clear_page(browser, account, idp, monkeypatch):
    slow_login_gov(monkeypatch)
    idp.faults["userinfo_delay"] = 1.0
    page = browser.sign_in([EMAIL])
    assert_refused(page, browser)
    assert "not responding" in page.body
    assert idp.count("/api/openid_connect/userinfo") == 1
    assert_nothing_half_written()


# --- Login.gov: keys and discovery ------------------------------------------------------------------


def test_jwks_outage_with_cached_keys_still_signs_in(
    browser, other_browser, account, idp, monkeypatch
):
    warm_key_cache(other_browser)
    monkeypatch.setenv("JWKS_TTL_SECONDS", "0")  # force a refresh attempt...
    monkeypatch.setenv("JWKS_REFETCH_COOLDOWN_SECONDS", "0")
    from chalicelib.config import reset_settings

    reset_settings()
    idp.faults["jwks_status"] = 503  # ...that fails: the last good keys still verify
    fetches_before = idp.count("/api/openid_connect/certs")
    page = browser.sign_in([EMAIL])
    assert page.status == 302 and page.location == "/account"
    assert idp.count("/api/openid_connect/certs") > fetches_before  # it did try
    assert Account.get(NR).linked_sub
    assert_nothing_half_written()


def test_jwks_outage_with_no_cached_keys_is_a_clear_page(browser, account, idp):
    idp.faults["jwks_status"] = 503
    page = browser.sign_in([EMAIL])
    assert_refused(page, browser)
    assert "not responding" in page.body
    assert idp.count("/api/openid_connect/certs") == 1  # one attempt, no loop
    assert_nothing_half_written()


def test_discovery_unreachable_with_no_cache_is_a_clear_page(browser, account, idp, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setenv("LOGIN_GOV_ISSUER", f"http://127.0.0.1:{closed_port}/")
    reset_app_caches()
    page = browser.get("/login")
    assert 400 <= page.status < 500 and "not responding" in page.body
    assert page.location is None and not browser.has_signin_cookie()
    assert signin_states_in_table() == []


def test_discovery_outage_with_a_cached_document_still_signs_in(browser, account, idp, monkeypatch):
    authorize_url = browser.start_signin()  # discovery read and cached
    monkeypatch.setenv("DISCOVERY_TTL_SECONDS", "0")  # every use tries to refresh...
    from chalicelib.config import reset_settings

    reset_settings()
    real_request, failed = http_client.request, []

    def discovery_down(method, url, **kwargs):
        if url.endswith("/.well-known/openid-configuration"):
            failed.append(url)
            raise http_client.HttpFailure("connection refused")
        return real_request(method, url, **kwargs)

    monkeypatch.setattr(http_client, "request", discovery_down)  # ...and the refresh fails
    page = browser.get(browser.authorize(authorize_url, [EMAIL]))
    assert page.status == 302 and page.location == "/account"
    assert failed  # the outage was met, and the last good document served
    assert_nothing_half_written()


def test_a_cold_login_reads_discovery_while_it_writes_its_state(browser, account, idp, monkeypatch):
    """Each waits until the other has begun: only a /login that runs both at once gets
    through without a wait running out (a cold start pays one, not both in turn)."""
    reset_app_caches()  # a new Lambda container: discovery is not cached
    discovery_began, write_began = threading.Event(), threading.Event()
    waits: dict[str, bool] = {}
    real_request, real_save = http_client.request, SignInState.save

    def request(method, url, **kwargs):
        if url.endswith("/.well-known/openid-configuration"):
            discovery_began.set()
            waits["discovery saw the write"] = write_began.wait(5)
        return real_request(method, url, **kwargs)

    def save(self, *args, **kwargs):
        write_began.set()
        waits["write saw discovery"] = discovery_began.wait(5)
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(http_client, "request", request)
    monkeypatch.setattr(SignInState, "save", save)
    fetched = idp.count("/.well-known/openid-configuration")
    page = browser.get("/login")
    assert page.status == 302 and page.location.startswith(idp.issuer)
    assert waits == {"discovery saw the write": True, "write saw discovery": True}
    assert idp.count("/.well-known/openid-configuration") == fetched + 1
    browser.get("/login")  # warm: the cached document, no second fetch
    assert idp.count("/.well-known/openid-configuration") == fetched + 1


# --- DynamoDB: starting a sign-in ------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_signin_state_write_failure_is_the_storage_page(browser, account, idp, calls, code):
    rule = calls.fail("PutItem", code, table="flows", key_prefix="signin#")
    page = browser.get("/login")
    assert rule.fired == 1
    assert_storage_page(page)
    assert not browser.has_signin_cookie()
    assert signin_states_in_table() == []
    # The fault has passed: the same browser starts a sign-in normally.
    assert browser.get("/login").status == 302


def test_unreachable_dynamodb_is_retried_a_bounded_number_of_times(browser, account, calls):
    calls.unreachable("PutItem")
    page = browser.get("/login")
    assert_storage_page(page)
    # PynamoDB's max_retry_attempts = 2 (chalicelib.models._Meta): 1 try + 2 retries.
    assert calls.attempts == ["PutItem"] * 3
    assert calls.count()["PutItem"] == 1  # one call from our code: no retry loop of our own
    assert signin_states_in_table() == []


# --- DynamoDB: consuming the state -------------------------------------------------------------------


def test_throttled_state_consume_does_not_spend_the_state(browser, account, idp, calls):
    """A throttled UpdateItem changes nothing: the same callback works once the fault passes."""
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    (state_record,) = signin_states_in_table()
    rule = calls.fail(
        "UpdateItem", "ProvisionedThroughputExceededException", table="flows", key_prefix="signin#"
    )
    page = browser.get(callback)
    assert rule.fired == 1
    assert_storage_page(page)
    assert sessions_in_table() == [] and "nr_session" not in browser.cookies
    assert SignInState.get(state_record.flow_id).expires_at == state_record.expires_at
    assert idp.count("/api/openid_connect/token") == 0  # the code was never spent either
    again = browser.get(callback)
    assert again.status == 302 and again.location == "/account"
    assert Account.get(NR).linked_sub
    assert_nothing_half_written()


def test_throttled_state_consume_is_the_storage_page(browser, account, idp, calls, logged):
    callback = browser.authorize(browser.start_signin(), [EMAIL])
    calls.fail(
        "UpdateItem", "ProvisionedThroughputExceededException", table="flows", key_prefix="signin#"
    )
    page = browser.get(callback)
    assert "signin_state_rejected" not in logged.names()
    assert_storage_page(page)


# --- DynamoDB: reads during the callback --------------------------------------------------------------


@pytest.mark.parametrize(
    "operation, table, key_prefix",
    [
        pytest.param("GetItem", "claims", "sub#", id="sub-lookup"),
        pytest.param("BatchGetItem", "claims", "email#", id="email-match"),
        pytest.param("GetItem", "accounts", None, id="account-read"),
    ],
)
def test_throttled_reads_in_the_callback_are_the_storage_page(
    browser, account, idp, calls, operation, table, key_prefix
):
    rule = calls.fail(
        operation, "ProvisionedThroughputExceededException", table=table, key_prefix=key_prefix
    )
    page = browser.sign_in([EMAIL])
    assert rule.fired == 1
    assert_storage_page(page)
    assert "nr_session" not in browser.cookies and sessions_in_table() == []
    assert sub_claims() == [] and Account.get(NR).linked_sub is None
    assert calls.count()["TransactWriteItems"] == 0
    assert_nothing_half_written()
    # The state was spent before the fault; a fresh sign-in succeeds.
    assert browser.sign_in([EMAIL]).location == "/account"
    assert_nothing_half_written()


# --- DynamoDB: the link transaction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, reasons",
    [
        pytest.param("ThrottlingException", None, id="throttled"),
        pytest.param("ProvisionedThroughputExceededException", None, id="throughput-exceeded"),
        pytest.param(
            "TransactionCanceledException",
            ["None", "ThrottlingError", "None"],
            id="cancelled-throttled",
        ),
    ],
)
def test_failed_link_transaction_is_the_storage_page_and_writes_nothing(
    browser, account, idp, calls, code, reasons
):
    rule = calls.fail("TransactWriteItems", code, reasons=reasons)
    page = browser.sign_in([EMAIL])
    assert rule.fired == 1
    assert_storage_page(page)
    assert calls.count()["TransactWriteItems"] == 1  # a retryable failure is not a loop
    assert "nr_session" not in browser.cookies and sessions_in_table() == []
    assert sub_claims() == [] and Account.get(NR).linked_sub is None
    assert list(AuditEvent.query(NR)) == []
    assert_nothing_half_written()
    # Nothing was spent at our end: signing in again links.
    assert browser.sign_in([EMAIL]).location == "/account"
    assert_nothing_half_written()


@pytest.mark.parametrize(
    "reasons",
    [
        pytest.param(["TransactionConflict", "None", "None"], id="conflict-on-claim"),
        pytest.param(["None", "TransactionConflict", "None"], id="conflict-on-account"),
    ],
)
def test_transaction_conflict_is_retried_once_then_links(browser, account, idp, calls, reasons):
    """DynamoDB documents TransactionConflict as retryable: one more try, then linked."""
    rule = calls.fail("TransactWriteItems", "TransactionCanceledException", reasons=reasons)
    page = browser.sign_in([EMAIL])
    assert rule.fired == 1
    assert page.status == 302 and page.location == "/account"
    assert calls.count()["TransactWriteItems"] == 2
    assert len(list(AuditEvent.query(NR))) == 1
    assert_nothing_half_written()


def test_link_race_lost_to_another_identity_is_the_sharing_refusal(browser, account, idp, calls):
    winner = str(uuid.uuid4())
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: linking.link_account(winner, NR, method=linking.LinkMethod.AUTOMATIC),
    )
    page = browser.sign_in([EMAIL], sub=str(uuid.uuid4()))
    assert rule.fired == 1
    assert page.status == 409 and "cannot be shared" in page.body
    assert "nr_session" not in browser.cookies and sessions_in_table() == []
    assert Account.get(NR).linked_sub == winner
    assert [c.claim for c in sub_claims()] == [f"sub#{winner}"]
    assert_nothing_half_written()


def test_link_race_lost_to_the_same_identity_signs_in(browser, account, idp, calls):
    """A double submit (two tabs, one identity): one link, one audit event, both signed in."""
    sub = str(uuid.uuid4())
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: linking.link_account(sub, NR, method=linking.LinkMethod.AUTOMATIC),
    )
    page = browser.sign_in([EMAIL], sub=sub)
    assert rule.fired == 1
    assert page.status == 302 and page.location == "/account"
    assert Account.get(NR).linked_sub == sub
    assert len(sessions_in_table()) == 1
    assert_nothing_half_written()


def test_link_race_lost_to_a_disabling_is_the_inactive_refusal(browser, account, idp, calls):
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: Account.get(NR).update(actions=[Account.status.set("disabled")]),
    )
    page = browser.sign_in([EMAIL])
    assert rule.fired == 1
    assert page.status == 403 and "has been disabled" in page.body
    assert "nr_session" not in browser.cookies and sessions_in_table() == []
    assert sub_claims() == [] and Account.get(NR).linked_sub is None
    assert_nothing_half_written()


def _unrelated_edit():
    Account.get(NR).update(actions=[Account.first_name.set("Alicia")])


def test_link_race_with_an_unrelated_edit_is_retried_once(browser, account, idp, calls):
    rule = calls.interleave("TransactWriteItems", _unrelated_edit)
    page = browser.sign_in([EMAIL])
    assert rule.fired == 1
    assert page.status == 302 and page.location == "/account"
    assert calls.count()["TransactWriteItems"] == 2
    assert Account.get(NR).first_name == "Alicia"  # the other edit survives
    assert_nothing_half_written()


def test_link_race_with_an_account_that_keeps_changing_gives_up_after_two_tries(
    browser, account, idp, calls
):
    rule = calls.interleave("TransactWriteItems", _unrelated_edit, times=5)
    page = browser.sign_in([EMAIL])
    assert rule.fired == 2
    assert_storage_page(page)  # not a refusal: the person did nothing wrong, try again
    assert calls.count()["TransactWriteItems"] == 2  # bounded
    assert "nr_session" not in browser.cookies and sessions_in_table() == []
    assert sub_claims() == [] and Account.get(NR).linked_sub is None
    assert_nothing_half_written()


# --- DynamoDB: the session write after a link -------------------------------------------------------------


def test_throttled_session_write_after_a_link_keeps_the_link_whole(browser, account, idp, calls):
    """The link commits, the session write is throttled: a 503 that tells the truth (the
    accounts are linked; sign in again), the link whole, no session; signing in again finds
    the link (no second link, no second audit event)."""
    sub = str(uuid.uuid4())
    rule = calls.fail(
        "PutItem", "ProvisionedThroughputExceededException", table="flows", key_prefix="session#"
    )
    page = browser.sign_in([EMAIL], sub=sub)
    assert rule.fired == 1
    assert page.status == 503 and "Your accounts are linked" in page.body
    assert NOTHING_CHANGED not in page.body
    assert "nr_session" not in browser.cookies and sessions_in_table() == []
    assert Account.get(NR).linked_sub == sub
    assert_nothing_half_written()
    again = browser.sign_in([EMAIL], sub=sub)
    assert again.status == 302 and again.location == "/account"
    # One link; the 503 page's reference is kept for the support desk (signin_refused).
    assert [e.event for e in AuditEvent.query(NR)] == ["identity_linked", "signin_refused"]
    assert_nothing_half_written()


# --- DynamoDB: logout ------------------------------------------------------------------------------


def test_throttled_logout_does_not_pretend_the_session_ended(browser, account, idp, calls):
    browser.follow(browser.sign_in([EMAIL]))
    token = browser.cookies["nr_session"]
    calls.fail(
        "DeleteItem", "ProvisionedThroughputExceededException", table="flows", key_prefix="session#"
    )
    page = browser.get("/logout")
    if page.status == 302:  # sent on to Login.gov as signed out: then it must be true
        assert sessions_in_table() == []
        browser.cookies["nr_session"] = token  # a copy of the cookie, kept elsewhere
        assert browser.get("/account").status == 302
    else:  # or the person is told it did not work
        assert_storage_page(page)


# --- DynamoDB: security events ---------------------------------------------------------------------


def _push(app_client, token):
    resp = app_client.http.post(
        "/api/security-events", body=token, headers={"Content-Type": "application/secevent+jwt"}
    )
    return resp.status_code, (json.loads(resp.body) if resp.body else None)


@pytest.fixture
def signed_in(browser, account):
    sub = str(uuid.uuid4())
    browser.follow(browser.sign_in([EMAIL], sub=sub))
    assert len(sessions_in_table()) == 1
    return sub


def _events_recorded() -> list:
    return [f for f in Flow.scan() if f.flow_id.startswith("setjti#")]


def test_throttled_security_event_is_not_recorded_and_a_redelivery_acts(
    app_client, idp, calls, signed_in
):
    """The event id commits with the action: a failure records neither, so Login.gov's
    redelivery acts (ending sessions is idempotent, so it may happen twice)."""
    token = idp.security_event_token(CLIENT_ID, "account-disabled", signed_in)
    rule = calls.fail(
        "TransactWriteItems",
        "ProvisionedThroughputExceededException",
        table="flows",
        key_prefix="setjti#",
    )
    status, _ = _push(app_client, token)
    assert rule.fired == 1
    assert status == 503
    assert _events_recorded() == []
    assert [e.event for e in AuditEvent.query(NR) if e.event.startswith("login_gov_")] == []
    assert _push(app_client, token) == (202, None)
    assert sessions_in_table() == [] and len(_events_recorded()) == 1
    assert [e.event for e in AuditEvent.query(NR) if e.event.startswith("login_gov_")] == [
        "login_gov_account_disabled"
    ]


def test_a_sign_in_that_lands_while_a_disable_commits_keeps_no_session(
    app_client, idp, calls, signed_in, other_browser
):
    """The sign-in read the link before the disabled mark committed, so it was not refused;
    the sessions the event ends after its commit include the one it made."""
    token = idp.security_event_token(CLIENT_ID, "account-disabled", signed_in)
    made = []
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: made.append(other_browser.sign_in([EMAIL], sub=signed_in).location),
        table="flows",
        key_prefix="setjti#",
    )
    assert _push(app_client, token) == (202, None)
    assert rule.fired == 1 and made == ["/account"]
    assert sessions_in_table() == []
    assert other_browser.get("/account").status == 302


def test_an_enable_committing_while_an_older_disable_is_handled_leaves_the_person_enabled(
    app_client, idp, calls, signed_in, other_browser
):
    """Login.gov may deliver a disable and a later enable at the same moment. Both read the
    link before either wrote: whichever commits last must not leave the account marked
    disabled (it would refuse every session the link lets in)."""
    now = int(time.time())
    disable = idp.security_event_token(CLIENT_ID, "account-disabled", signed_in, iat=now - 30)
    enable = idp.security_event_token(CLIENT_ID, "account-enabled", signed_in, iat=now)
    answers = []
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: answers.append(_push(app_client, enable)),
        table="flows",
        key_prefix="setjti#",
    )
    assert _push(app_client, disable) == (202, None)
    assert rule.fired == 1 and answers == [(202, None)]
    claim = Claim.get(Claim.sub_key(signed_in), consistent_read=True)
    assert (claim.disabled_at, claim.enabled_at, claim.disabled) == (now - 30, now, False)
    assert not Account.get(NR, consistent_read=True).login_gov_disabled
    assert other_browser.sign_in([EMAIL], sub=signed_in).location == "/account"
    assert other_browser.get("/account").status == 200


def test_a_disable_racing_an_unlink_and_relink_marks_the_new_link_and_its_account_alike(
    app_client, idp, calls, signed_in, other_browser
):
    """The event read the link, then support unlinked (lost account) before it read the
    account, then the same identity linked again before it committed: the new link and its
    account must agree on the disabled mark (or a racing session would not be refused)."""
    from supportdesk import desk

    token = idp.security_event_token(CLIENT_ID, "account-disabled", signed_in)
    calls.interleave(
        "GetItem",
        lambda: desk.unlink(NR, mode="lost-account", reason="race", actor="desk"),
        table="accounts",
    )
    relinked = []
    calls.interleave(
        "TransactWriteItems",
        lambda: relinked.append(other_browser.sign_in([EMAIL], sub=signed_in).location),
        table="flows",
        key_prefix="setjti#",
    )
    assert _push(app_client, token) == (202, None)
    assert relinked == ["/account"]
    claim = Claim.get(Claim.sub_key(signed_in), consistent_read=True)
    account = Account.get(NR, consistent_read=True)
    assert account.linked_sub == signed_in
    assert bool(account.login_gov_disabled) == claim.disabled
    assert_invariants()


def test_a_purge_that_failed_part_way_unlinks_when_delivered_again(
    app_client, idp, calls, signed_in
):
    token = idp.security_event_token(CLIENT_ID, "account-purged", signed_in)
    calls.fail(
        "TransactWriteItems",
        "ProvisionedThroughputExceededException",
        table="flows",
        key_prefix="setjti#",
    )
    assert _push(app_client, token)[0] == 503
    assert Account.get(NR).linked_sub == signed_in  # nothing half-done
    assert _push(app_client, token) == (202, None)
    assert Account.get(NR).linked_sub is None and sub_claims() == []
    assert _push(app_client, token) == (202, None)  # and a third delivery changes nothing
    assert [e.event for e in AuditEvent.query(NR)].count("identity_unlinked_purged") == 1


def test_throttled_security_event_asks_for_redelivery(app_client, idp, calls, signed_in):
    token = idp.security_event_token(CLIENT_ID, "account-disabled", signed_in)
    calls.fail(
        "TransactWriteItems",
        "ProvisionedThroughputExceededException",
        table="flows",
        key_prefix="setjti#",
    )
    assert _push(app_client, token) == (503, {"err": "temporarily_unavailable"})


# --- DynamoDB: a one-time code is spent only with the change it allows ---------------------------


def _challenges() -> list:
    from chalicelib.models import Challenge

    return [f for f in Flow.scan() if isinstance(f, Challenge)]


def _recovery_code(browser, mailbox, sub=None) -> str:
    request_recovery(browser, EMAIL, signed_in_unmatched(browser, "new.me@example.net", sub=sub))
    return mailbox.code_for(EMAIL)


@pytest.mark.parametrize(
    "code, reasons",
    [
        pytest.param("ThrottlingException", None, id="throttled"),
        pytest.param(
            "TransactionCanceledException",
            ["None", "None", "ThrottlingError", "None", "None", "None"],
            id="cancelled-throttled",
        ),
    ],
)
def test_a_throttled_recovery_link_keeps_the_code_usable(
    browser, account, mailbox, calls, code, reasons
):
    """The code is spent in the link's transaction: when that is throttled the page says
    nothing changed, and it is true of the code too (no new send needed)."""
    one_time = _recovery_code(browser, mailbox)
    token = session_csrf(browser, linked=False)
    rule = calls.fail("TransactWriteItems", code, reasons=reasons)
    page = enter_code(browser, "/link/recover/verify", one_time, token)
    assert rule.fired == 1
    assert_storage_page(page)
    assert len(_challenges()) == 1 and sub_claims() == [] and Account.get(NR).linked_sub is None
    assert_nothing_half_written()
    page = enter_code(browser, "/link/recover/verify", one_time, token)
    assert page.status == 302 and page.location == "/account"
    assert Account.get(NR).linked_sub and _challenges() == []
    assert len(mailbox.to(EMAIL)) == 2  # the code and the link notice: no second send
    assert_invariants()


def test_a_second_use_of_a_recovery_code_racing_the_first_is_refused_by_the_database(
    browser, account, mailbox, calls
):
    """Both uses verified the code before either committed (a double submit): the
    challenge's delete inside the link transaction lets exactly one through."""
    one_time = _recovery_code(browser, mailbox, sub=str(uuid.uuid4()))
    token = session_csrf(browser, linked=False)
    first = []
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: first.append(enter_code(browser, "/link/recover/verify", one_time, token)),
    )
    second = enter_code(browser, "/link/recover/verify", one_time, token)
    assert rule.fired == 1
    assert (first[0].status, first[0].location) == (302, "/account")
    assert second.status == 400 and "no code waiting in this browser" in second.body
    assert [e.event for e in AuditEvent.query(NR)] == ["identity_linked"]
    assert len([s for s in sessions_in_table() if s.nr_number == NR]) == 1
    assert_invariants()


def test_a_throttled_email_change_confirmation_keeps_the_code_usable(
    browser, account, mailbox, calls
):
    assert browser.sign_in([EMAIL]).location == "/account"
    page = browser.post(
        "/account/email",
        {
            "csrf_token": session_csrf(browser, linked=True),
            "change": "primary",
            "email": "alice.personal@example.com",
        },
    )
    assert page.location == "/account/email/confirm"
    one_time = mailbox.code_for("alice.personal@example.com")
    rule = calls.fail("TransactWriteItems", "ThrottlingException")
    page = enter_code(browser, "/account/email/confirm", one_time)
    assert rule.fired == 1
    assert_storage_page(page)
    assert Account.get(NR).primary_email == EMAIL and len(_challenges()) == 1
    page = enter_code(browser, "/account/email/confirm", one_time)
    assert page.status == 200 and "alice.personal@example.com" in page.body
    assert Account.get(NR).primary_email == "alice.personal@example.com"
    assert _challenges() == []
    assert enter_code(browser, "/account/email/confirm", one_time).status == 400
    assert_invariants()


# --- A session that ends during a request (cleanup, logout in another tab) ---------------------


def _session_ends_now():
    """Another actor deletes this browser's session (cleanup of an expired one, or a logout
    in another tab) between this request's read of it and its write."""
    for session in sessions_in_table():
        Flow(session.flow_id).delete()


def _due_for_idle_refresh():
    from chalicelib.models import Session

    for found in sessions_in_table():
        Session.get(found.flow_id).update(actions=[Session.expires_at.set(found.expires_at - 300)])


@pytest.mark.parametrize(
    "linked, method, path",
    [
        pytest.param(True, "GET", "/account", id="account-page"),
        pytest.param(True, "GET", "/account/email", id="email-page"),
        pytest.param(True, "POST", "/account/email", id="email-form-post"),
        pytest.param(False, "GET", "/link/recover", id="recover-page"),
        pytest.param(False, "POST", "/link/recover", id="recover-form-post"),
    ],
)
def test_a_session_that_ends_before_its_idle_refresh_is_the_sign_in_page(
    browser, account, calls, linked, method, path
):
    if linked:
        browser.follow(browser.sign_in([EMAIL]))
    else:
        signed_in_unmatched(browser)
    token = session_csrf(browser, linked=linked)
    _due_for_idle_refresh()
    rule = calls.interleave("UpdateItem", _session_ends_now, table="flows", key_prefix="session#")
    if method == "GET":
        page = browser.get(path)
    else:  # a form post: the same as not signed in
        page = browser.post(path, {"csrf_token": token, "change": "primary", "email": EMAIL})
    assert rule.fired == 1
    assert page.status == 302 and page.location == f"/login?return_to={path}"
    assert sessions_in_table() == []  # and the refresh did not bring it back
    assert _challenges() == []


def test_a_session_that_ends_before_its_idle_refresh_is_signed_out_on_a_public_page(
    browser, account, calls
):
    browser.follow(browser.sign_in([EMAIL]))
    _due_for_idle_refresh()
    calls.interleave("UpdateItem", _session_ends_now, table="flows", key_prefix="session#")
    page = browser.get("/")
    assert page.status == 200 and 'href="/logout"' not in page.body
    assert sessions_in_table() == []


def test_a_session_that_ends_before_its_link_notice_is_cleared_is_the_sign_in_page(
    browser, account, calls
):
    assert browser.sign_in([EMAIL]).location == "/account"  # a new link: a notice to show
    rule = calls.interleave("UpdateItem", _session_ends_now, table="flows", key_prefix="session#")
    page = browser.get("/account")
    assert rule.fired == 1
    assert page.status == 302 and page.location == "/login?return_to=/account"
    assert sessions_in_table() == []  # clearing the notice did not bring it back


def test_a_session_that_ends_before_its_recovery_code_is_written_is_not_a_503(
    browser, account, mailbox, calls
):
    form = signed_in_unmatched(browser)
    rule = calls.interleave("PutItem", _session_ends_now, table="flows", key_prefix="challenge#")
    page = request_recovery(browser, EMAIL, form)
    assert rule.fired == 1
    assert page.status == 302 and page.location == "/link/recover/verify"
    assert browser.get(page.location).location == "/login?return_to=/link/recover/verify"


def test_a_session_that_ends_before_an_email_change_code_is_written_is_not_a_503(
    browser, account, mailbox, calls
):
    assert browser.sign_in([EMAIL]).location == "/account"
    token = session_csrf(browser, linked=True)
    rule = calls.interleave("PutItem", _session_ends_now, table="flows", key_prefix="challenge#")
    page = browser.post(
        "/account/email",
        {"csrf_token": token, "change": "primary", "email": "alice.personal@example.com"},
    )
    assert rule.fired == 1
    assert page.status == 302 and page.location == "/account/email/confirm"
    assert browser.get(page.location).location == "/login?return_to=/account/email/confirm"


def test_a_session_that_ends_while_its_recovery_code_links_still_links(
    browser, account, mailbox, calls
):
    one_time = _recovery_code(browser, mailbox)
    token = session_csrf(browser, linked=False)
    rule = calls.interleave("TransactWriteItems", _session_ends_now)
    page = enter_code(browser, "/link/recover/verify", one_time, token)
    assert rule.fired == 1
    assert page.status == 302 and page.location == "/account"  # a new session of its own
    assert Account.get(NR).linked_sub and len(sessions_in_table()) == 1
    assert browser.get("/account").status == 200
