"""Every POST form carries the session's CSRF token; without it, nothing changes."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.models import Account, AuditEvent, Challenge, Claim, Flow, WindowCounter
from tests.support.accounts import make_account
from tests.support.browser import Browser, session_csrf, signed_in_unmatched


def flow_items() -> list:
    return [f for f in Flow.scan() if isinstance(f, (Challenge, WindowCounter))]


def state(mailbox) -> tuple:
    """Everything a refused form must leave as it was."""
    accounts = sorted(
        (a.nr_number, a.primary_email, a.secondary_email, a.linked_sub, a.version)
        for a in Account.scan()
    )
    return (
        accounts,
        sorted(c.claim for c in Claim.scan()),
        sorted(e.at_event for e in AuditEvent.scan()),
        sorted(f.flow_id for f in flow_items()),
        len(mailbox.messages),
    )


@pytest.fixture
def linked_browser(browser, mailbox):
    make_account(primary="dr.alice@example.com", secondary="alice.home@example.org")
    assert browser.sign_in(["dr.alice@example.com"], sub=str(uuid.uuid4())).location == "/account"
    return browser


@pytest.fixture
def pending_browser(linked_browser, mailbox):
    """Linked, with an email change waiting for its code."""
    page = linked_browser.post(
        "/account/email",
        {
            "csrf_token": session_csrf(linked_browser, linked=True),
            "change": "primary",
            "email": "alice.personal@example.com",
        },
    )
    assert page.location == "/account/email/confirm"
    return linked_browser


@pytest.fixture
def unmatched_browser(browser, mailbox):
    make_account(primary="dr.alice@example.com")
    signed_in_unmatched(browser)
    page = browser.post(
        "/link/recover",
        {"csrf_token": session_csrf(browser, linked=False), "email": "dr.alice@example.com"},
    )
    assert page.location == "/link/recover/verify"
    return browser


# (path, fields without the token, the fixture that makes the session that may post it)
FORMS = [
    ("/link/recover", {"email": "dr.alice@example.com"}, "unmatched_browser"),
    ("/link/recover/verify", {"code": "123456"}, "unmatched_browser"),
    ("/account/email", {"change": "primary", "email": "new@example.com"}, "linked_browser"),
    ("/account/email", {"change": "swap", "confirm": "yes"}, "linked_browser"),
    ("/account/email", {"change": "remove_secondary", "confirm": "yes"}, "linked_browser"),
    ("/account/email/confirm", {"code": "123456"}, "pending_browser"),
    ("/account/email/cancel", {}, "pending_browser"),
]
BAD_TOKENS = {
    "missing": None,
    "empty": "",
    "wrong": "x" * 43,
    "another session's": "other",
}


@pytest.mark.parametrize(
    "path, fields, who", FORMS, ids=[f"{p} {f.get('change', '')}".strip() for p, f, _ in FORMS]
)
@pytest.mark.parametrize("bad", list(BAD_TOKENS))
def test_a_form_without_the_sessions_token_is_refused_and_changes_nothing(
    request, app_client, idp, mailbox, path, fields, who, bad
):
    browser = request.getfixturevalue(who)
    token = BAD_TOKENS[bad]
    if bad == "another session's":
        other = Browser(app_client, idp)
        signed_in_unmatched(other, "someone.else@example.net")
        token = session_csrf(other, linked=False)
    before = state(mailbox)
    body = dict(fields)
    if token is not None:
        body["csrf_token"] = token
    page = browser.post(path, body)
    assert page.status == 403 and "This form has expired" in page.body
    assert state(mailbox) == before


@pytest.mark.parametrize("path, fields, who", FORMS[:1] + FORMS[2:3])
def test_the_right_token_is_accepted(request, mailbox, path, fields, who):
    browser = request.getfixturevalue(who)
    token = session_csrf(browser, linked=who != "unmatched_browser")
    page = browser.post(path, {**fields, "csrf_token": token})
    assert page.status == 302


def test_every_form_on_every_page_carries_the_token(linked_browser, mailbox):
    from localdev.html_forms import parse_forms

    pages = ["/account/email", "/account"]
    linked_browser.post(
        "/account/email",
        {
            "csrf_token": session_csrf(linked_browser, linked=True),
            "change": "primary",
            "email": "alice.personal@example.com",
        },
    )
    pages += ["/account/email/confirm", "/account"]
    seen = 0
    for path in pages:
        for form in parse_forms(linked_browser.get(path).body):
            assert form["fields"].get("csrf_token"), (path, form)
            seen += 1
    assert seen >= 6


def test_a_form_body_that_is_too_large_is_refused(linked_browser, mailbox):
    token = session_csrf(linked_browser, linked=True)
    page = linked_browser.post(
        "/account/email",
        {"csrf_token": token, "change": "swap", "confirm": "yes", "padding": "x" * 5000},
    )
    assert page.status == 400
    assert Account.get("1000000001").primary_email == "dr.alice@example.com"


def test_a_post_that_is_not_a_form_is_refused(linked_browser, mailbox):
    token = session_csrf(linked_browser, linked=True)
    cookie = "; ".join(f"{k}={v}" for k, v in linked_browser.cookies.items())
    response = linked_browser.client.http.post(
        "/account/email",
        headers={"Content-Type": "application/json", "Cookie": cookie},
        body=f'{{"csrf_token": "{token}", "change": "swap", "confirm": "yes"}}',
    )
    assert response.status_code == 415
    assert Account.get("1000000001").primary_email == "dr.alice@example.com"


def test_a_post_without_a_session_goes_to_sign_in_and_changes_nothing(browser, mailbox):
    make_account(primary="dr.alice@example.com", secondary="alice.home@example.org")
    page = browser.post("/account/email", {"csrf_token": "x", "change": "swap", "confirm": "yes"})
    assert page.status == 302 and page.location.startswith("/login")
    assert Account.get("1000000001").primary_email == "dr.alice@example.com"
