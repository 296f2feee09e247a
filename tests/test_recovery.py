"""Recovering a link with a registry email, and the notice every link sends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chalicelib import mail, notices
from chalicelib.models import Account, AuditEvent, Challenge, Claim, Flow, WindowCounter
from tests.support.accounts import make_account
from tests.support.browser import (
    Browser,
    csrf_of,
    enter_code,
    request_recovery,
    signed_in_unmatched,
)

LINK_NOTICE = "Your National Registry account is now linked to Login.gov"
CODE_SUBJECT = "Your National Registry code"


def sub_claims() -> list[Claim]:
    return [c for c in Claim.scan() if c.claim.startswith("sub#")]


def challenges() -> list[Challenge]:
    return [f for f in Flow.scan() if isinstance(f, Challenge)]


def recover(browser, mailbox, email, registry_address=None) -> object:
    """The whole recovery: no-match page, form, code from the mailbox, code entered."""
    page = request_recovery(browser, email, signed_in_unmatched(browser))
    assert page.status == 302 and page.location == "/link/recover/verify"
    code = mailbox.code_for(registry_address or email)
    return enter_code(browser, "/link/recover/verify", code)


@pytest.mark.parametrize("which", ["primary", "secondary"])
def test_recovery_by_registry_email_links_like_automatic_linking(browser, mailbox, which):
    make_account(primary="dr.alice@example.com", secondary="alice.home@example.org")
    sub = str(uuid.uuid4())
    address = {"primary": "dr.alice@example.com", "secondary": "alice.home@example.org"}[which]
    page = request_recovery(
        browser, address.upper(), signed_in_unmatched(browser, "alice.new@example.net", sub=sub)
    )
    assert page.location == "/link/recover/verify"
    code_page = browser.get(page.location)
    assert f"If {address.upper()} belongs to a National Registry account" in code_page.body
    assert mailbox.subjects(address) == [CODE_SUBJECT]  # mailed to the address on record
    page = enter_code(browser, "/link/recover/verify", mailbox.code_for(address))
    assert page.status == 302 and page.location == "/account"
    account = Account.get("1000000001")
    assert account.linked_sub == sub and account.legacy_username_retired
    (claim,) = sub_claims()
    assert claim.claim == f"sub#{sub}"
    (event,) = AuditEvent.query("1000000001")
    assert event.event == "identity_linked" and event.detail["method"] == "recovery"
    assert challenges() == []  # single use
    page = browser.follow(page)
    assert "now linked to Login.gov" in page.body and "1000000001" in page.body


def test_every_registry_address_gets_the_link_notice_on_its_own(browser, mailbox):
    """One message per address: the old address never learns the other one."""
    make_account(primary="dr.alice@example.com", secondary="alice.home@example.org")
    recover(browser, mailbox, "alice.home@example.org")
    notices = [m for m in mailbox.messages if m.subject == LINK_NOTICE]
    assert [n.destinations["ToAddresses"] for n in notices] == [
        ["dr.alice@example.com"],
        ["alice.home@example.org"],
    ]
    for notice in notices:
        assert "If this wasn't you, contact the National Registry support desk" in notice.body
    assert "alice.home@example.org" not in notices[0].body
    assert "dr.alice@example.com" not in notices[1].body


def test_automatic_linking_sends_the_link_notice_too(browser, mailbox):
    make_account(primary="dr.bob@example.com", secondary="bob.home@example.org")
    assert browser.sign_in(["dr.bob@example.com"]).location == "/account"
    assert [(m.subject, m.destinations["ToAddresses"]) for m in mailbox.messages] == [
        (LINK_NOTICE, ["dr.bob@example.com"]),
        (LINK_NOTICE, ["bob.home@example.org"]),
    ]
    browser.cookies.clear()
    browser.sign_in(["dr.bob@example.com"])  # returning: no second notice
    assert len(mailbox.messages) == 2


def test_a_link_notice_the_outbox_refuses_does_not_fail_the_sign_in(browser, mailbox, calls):
    make_account(primary="dr.bob@example.com")
    rule = calls.fail("SendMessageBatch", "ServiceUnavailable")
    calls.fail("SendMessage", "ServiceUnavailable")
    page = browser.sign_in(["dr.bob@example.com"])
    assert page.status == 302 and page.location == "/account"
    assert Account.get("1000000001").linked_sub and rule.fired + calls.rules[1].fired == 1
    assert mailbox.messages == []


SHARED_NOTICE = "This email address cannot link a National Registry account"


def _registry_with_every_kind_of_address():
    """A known address, a shared one (on two accounts), a once-shared one (support gave one
    of its two holders another address) and, by omission, unknown ones."""
    from supportdesk import desk

    make_account("1000000001", primary="dr.alice@example.com")
    make_account("1000000002", primary="office@example.com")
    make_account("1000000003", primary="frank@example.com", secondary="Office@Example.com")
    make_account("1000000004", primary="front.desk@example.com")
    make_account("1000000005", primary="june@example.com", secondary="front.desk@example.com")
    desk.set_email(
        "1000000004", slot="primary", address="ivan@example.com", reason="ticket 7", actor="tester"
    )


ADDRESSES = {
    "known": "dr.alice@example.com",
    "unknown": "nobody@example.com",
    "shared": "office@example.com",
    "once-shared": "front.desk@example.com",
}


def test_known_unknown_shared_and_once_shared_addresses_get_the_same_reply_and_work(
    app_client, idp, mailbox, calls
):
    """No oracle: the answer, the code page and the AWS requests (DynamoDB and SQS, in
    order) are the same for all four; only the mail differs, and only the mailbox sees it."""
    from chalicelib import outbox

    _registry_with_every_kind_of_address()
    outbox.queue_url()  # looked up once per container: not part of any one request
    sent_before = len(mailbox.messages)
    answers, code_pages, shapes = {}, {}, {}
    for name, email in ADDRESSES.items():
        browser = Browser(app_client, idp)
        form = signed_in_unmatched(browser, f"{name}@example.net")
        calls.clear()
        answers[name] = request_recovery(browser, email, form)
        shapes[name] = [(c.service, c.operation) for c in calls.calls]
        code_page = browser.get(answers[name].location)
        code_pages[name] = (
            code_page.body.replace(email, "X")
            .replace(f"{name}@example.net", "L")
            .replace(csrf_of(code_page), "T")
        )
    for name, page in answers.items():
        assert (page.status, page.location, page.headers.get("Set-Cookie")) == (
            302,
            "/link/recover/verify",
            None,
        ), name
        assert code_pages[name] == code_pages["known"], name
        # claim, account, one read of the counters' previous hour and the recovery-pause
        # marks, three counters, challenge, one message.
        assert shapes[name] == shapes["known"], name
    assert [op for _, op in shapes["known"][-8:]] == [
        "GetItem",
        "GetItem",
        "BatchGetItem",
        "UpdateItem",
        "UpdateItem",
        "UpdateItem",
        "PutItem",
        "SendMessage",
    ]
    # The mail: a code to the known address, nothing to the unknown one, and to each shared
    # mailbox why it cannot link (naming the Login.gov account that asked), with no code.
    assert mailbox.subjects("dr.alice@example.com") == [CODE_SUBJECT]
    assert mailbox.to("nobody@example.com") == []
    for name in ("shared", "once-shared"):
        (notice,) = [m for m in mailbox.to(ADDRESSES[name]) if m.subject == SHARED_NOTICE]
        assert f"<strong>{name}@example.net</strong>" in notice.body
        assert mailbox.codes_for(ADDRESSES[name]) == []
    assert len(mailbox.messages) == sent_before + 3
    # No code that could verify: the shared and once-shared challenges are decoys, like
    # the unknown one; every send counted alike (identity, pair, address).
    decoys = {c.target_email: c.nr_number for c in challenges()}
    assert decoys == {
        "dr.alice@example.com": "1000000001",
        "nobody@example.com": None,
        "office@example.com": None,
        "front.desk@example.com": None,
    }
    sends = sorted(
        c.sends
        for c in Flow.scan()
        if isinstance(c, WindowCounter) and not c.flow_id.startswith("sendcount#nocode")
    )
    assert sends == [1] * 12


def test_an_outbox_failure_costs_the_same_for_every_kind_of_address(
    app_client, idp, mailbox, calls
):
    """The outbox refusing the mail: the same page and requests for all four, the allowance
    given back and no challenge left (a decoy's or a notice's as a code's)."""
    from chalicelib import outbox

    _registry_with_every_kind_of_address()
    outbox.queue_url()
    pages, shapes = {}, {}
    for name, email in ADDRESSES.items():
        browser = Browser(app_client, idp)
        form = signed_in_unmatched(browser, f"{name}@example.net")
        calls.clear()
        calls.fail("SendMessage", "ServiceUnavailable")
        page = request_recovery(browser, email, form)
        pages[name] = (page.status, page.location, page.headers.get("Set-Cookie"))
        shapes[name] = [(c.service, c.operation) for c in calls.calls]
    for name in ADDRESSES:
        assert pages[name] == (503, None, None), name
        assert shapes[name] == shapes["known"], name
    assert challenges() == []
    assert {
        c.sends
        for c in Flow.scan()
        if isinstance(c, WindowCounter) and not c.flow_id.startswith("sendcount#nocode")
    } == {0}


def test_an_unknown_or_shared_address_gets_a_code_that_never_links(app_client, idp, mailbox):
    _registry_with_every_kind_of_address()
    for name in ("unknown", "shared", "once-shared"):
        browser = Browser(app_client, idp)
        request_recovery(browser, ADDRESSES[name], signed_in_unmatched(browser))
        for _ in range(5):
            enter_code(browser, "/link/recover/verify", "123456")
    assert sub_claims() == []


def test_the_shared_address_mail_names_the_support_desk_in_both_bodies(idp, monkeypatch):
    monkeypatch.setenv("SUPPORT_PHONE", "1-888-555-0199")
    monkeypatch.setenv("SUPPORT_EMAIL", "help@desk.example.gov")
    rendered = mail.render_mail(
        notices.SHARED_ADDRESS_NOTICE, login_gov_email="mallory@example.net"
    )
    assert rendered.subject == SHARED_NOTICE
    for body in (rendered.text, rendered.html):
        assert "mallory@example.net" in body
        assert "on more than one National Registry account" in body
        assert "1-888-555-0199" in body and "help@desk.example.gov" in body
        assert "contact the National Registry support desk" in body
    anonymous = mail.render_mail(notices.SHARED_ADDRESS_NOTICE, login_gov_email=None)
    assert "Someone signed in with Login.gov asked" in anonymous.text


def test_a_shared_address_counts_against_the_send_limits_like_any_address(app_client, idp, mailbox):
    _registry_with_every_kind_of_address()
    browser = Browser(app_client, idp)
    form = signed_in_unmatched(browser)
    statuses = [request_recovery(browser, "office@example.com", form).status for _ in range(4)]
    assert statuses == [302, 302, 302, 429]  # CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR
    assert mailbox.subjects("office@example.com") == [SHARED_NOTICE] * 3


def test_the_code_page_names_the_login_gov_account_the_code_will_link(browser, mailbox):
    """A person entering their own code must see whose Login.gov account gets their record:
    in a browser where someone else's sign-in was left open, the name is the warning."""
    make_account(primary="dr.alice@example.com")
    request_recovery(
        browser, "dr.alice@example.com", signed_in_unmatched(browser, "stranger@example.net")
    )
    page = browser.get("/link/recover/verify")
    assert (
        "Login.gov account you signed in with, <strong>stranger@example.net</strong>" in page.body
    )
    assert 'href="/logout"' in page.body
    # After a wrong code too (the page rebuilt from the error map).
    wrong = f"{(int(mailbox.code_for('dr.alice@example.com')) + 1) % 1_000_000:06d}"
    page = enter_code(browser, "/link/recover/verify", wrong)
    assert page.status == 400 and "<strong>stranger@example.net</strong>" in page.body


def test_the_code_mail_names_the_login_gov_account_that_asked(browser, mailbox):
    """The owner of the registry address reads whose Login.gov account the code would link:
    a code asked by a stranger says so before the owner is talked into passing it on."""
    make_account(primary="dr.alice@example.com")
    request_recovery(
        browser, "dr.alice@example.com", signed_in_unmatched(browser, "mallory@example.net")
    )
    (message,) = mailbox.to("dr.alice@example.com")
    assert "If mallory@example.net is not your Login.gov account" in message.body
    rendered = mail.render_mail(
        "recovery_code", code="123456", minutes=10, login_gov_email="mallory@example.net"
    )
    assert "If mallory@example.net is not your Login.gov account" in rendered.text
    assert "If mallory@example.net is not your Login.gov account" in rendered.html


def test_five_wrong_codes_then_the_right_one_is_refused(browser, mailbox):
    make_account(primary="dr.alice@example.com")
    request_recovery(browser, "dr.alice@example.com", signed_in_unmatched(browser))
    code = mailbox.code_for("dr.alice@example.com")
    bad = f"{(int(code) + 1) % 1_000_000:06d}"
    statuses = []
    for tries_left in (4, 3, 2, 1):
        page = enter_code(browser, "/link/recover/verify", bad)
        statuses.append(page.status)
        assert f"You have {tries_left} {'try' if tries_left == 1 else 'tries'} left" in page.body
    assert statuses == [400] * 4
    page = enter_code(browser, "/link/recover/verify", bad)
    assert page.status == 429 and "Too many wrong codes" in page.body
    page = enter_code(browser, "/link/recover/verify", code)
    assert page.status == 429 and "no longer works, even the right one" in page.body
    assert sub_claims() == [] and Account.get("1000000001").linked_sub is None


def test_an_expired_code_is_refused(browser, mailbox, clock):
    make_account(primary="dr.alice@example.com")
    request_recovery(browser, "dr.alice@example.com", signed_in_unmatched(browser))
    code = mailbox.code_for("dr.alice@example.com")
    token = csrf_of(browser.get("/link/recover"))
    clock.advance(601)
    page = enter_code(browser, "/link/recover/verify", code, token)
    assert page.status == 400 and "This code has expired" in page.body
    assert sub_claims() == []


def test_a_code_sent_to_one_browser_does_not_work_in_another(app_client, idp, mailbox):
    make_account(primary="dr.alice@example.com")
    asker, other = Browser(app_client, idp), Browser(app_client, idp)
    request_recovery(asker, "dr.alice@example.com", signed_in_unmatched(asker, "a@example.net"))
    code = mailbox.code_for("dr.alice@example.com")
    signed_in_unmatched(other, "b@example.net")
    page = enter_code(other, "/link/recover/verify", code)
    assert page.status == 400 and "no code waiting in this browser" in page.body
    assert sub_claims() == []
    # The same person in a second browser (same Login.gov identity) is refused too.
    same_person = Browser(app_client, idp)
    signed_in_unmatched(same_person, "a@example.net")
    assert enter_code(same_person, "/link/recover/verify", code).status == 400
    # And none of it cost the asker a try.
    assert enter_code(asker, "/link/recover/verify", code).location == "/account"


def test_the_send_limit_is_the_same_for_known_and_unknown_addresses(app_client, idp, mailbox):
    make_account(primary="dr.alice@example.com")
    for email in ("dr.alice@example.com", "nobody@example.com"):
        browser = Browser(app_client, idp)
        form = signed_in_unmatched(browser, f"asker.{email}")
        statuses = [request_recovery(browser, email, form).status for _ in range(4)]
        assert statuses == [302, 302, 302, 429]  # CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR
        assert "Too many codes" in request_recovery(browser, email, form).body
    assert len(mailbox.to("dr.alice@example.com")) == 3


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(datetime(2026, 6, 9, 9, 30, tzinfo=UTC), id="mid-hour"),
        # Across the top of the hour, as it once failed on a fresh clone (fixed clock hours).
        pytest.param(datetime(2026, 6, 9, 12, 59, 59, 900_000, tzinfo=UTC), id="at-12:59:59.9"),
    ],
)
def test_an_address_gets_at_most_ten_codes_an_hour_from_everyone(
    app_client, idp, mailbox, clock, start
):
    clock.set(start)
    make_account(primary="dr.alice@example.com")
    statuses = []
    for i in range(4):
        b = Browser(app_client, idp)
        form = signed_in_unmatched(b, f"p{i}@example.net")
        for _ in range(3):
            clock.advance(0.05)  # each send a moment later than the one before
            statuses.append(request_recovery(b, "dr.alice@example.com", form).status)
    assert statuses == [302] * 10 + [429] * 2  # CODE_SENDS_PER_ADDRESS_PER_HOUR
    assert len(mailbox.to("dr.alice@example.com")) == 10


def test_an_outbox_failure_says_try_again_and_keeps_the_allowance(browser, mailbox, calls):
    make_account(primary="dr.alice@example.com")
    form = signed_in_unmatched(browser)
    calls.fail("SendMessage", "ServiceUnavailable", times=5)
    for _ in range(5):
        page = request_recovery(browser, "dr.alice@example.com", form)
        assert page.status == 503 and "could not send the email" in page.body
        assert "did not count against" in page.body
    calls.rules.clear()
    assert challenges() == []  # no dead code left behind
    assert {c.sends for c in Flow.scan() if isinstance(c, WindowCounter)} == {0}
    for _ in range(3):  # the whole allowance is there
        assert request_recovery(browser, "dr.alice@example.com", form).status == 302
    assert len(mailbox.to("dr.alice@example.com")) == 3


def test_an_account_linked_to_someone_else_gets_the_no_sharing_page(app_client, idp, mailbox):
    make_account(primary="shared.office@example.com")
    owner = Browser(app_client, idp)
    owner_sub = str(uuid.uuid4())
    assert owner.sign_in(["shared.office@example.com"], sub=owner_sub).location == "/account"
    other = Browser(app_client, idp)
    page = recover(other, mailbox, "shared.office@example.com")
    assert page.status == 409 and "cannot be shared" in page.body
    assert Account.get("1000000001").linked_sub == owner_sub
    assert [c.claim for c in sub_claims()] == [f"sub#{owner_sub}"]
    assert challenges() == []  # the code was used up; a replay cannot try again
    assert enter_code(other, "/link/recover/verify", "000000").status == 400


def test_an_identity_holding_an_account_cannot_recover_a_second_one(browser, mailbox):
    make_account("1000000001", primary="a@example.com")
    make_account("1000000002", primary="b@example.com")
    assert browser.sign_in(["a@example.com"]).location == "/account"
    # Linked sessions are sent to their account; the recovery form is not theirs to use.
    assert browser.get("/link/recover").location == "/account"
    assert Account.get("1000000002").linked_sub is None


def test_an_invalid_address_is_refused_on_the_form_and_costs_nothing(browser, mailbox):
    form = signed_in_unmatched(browser)
    page = request_recovery(browser, "<script>not-an-email", form)
    assert page.status == 400 and "Enter an email address like name@example.com" in page.body
    assert "<script>not-an-email" not in page.body and "&lt;script&gt;" in page.body
    assert [f for f in Flow.scan() if isinstance(f, (Challenge, WindowCounter))] == []


def test_the_no_match_page_carries_the_recovery_form(browser):
    page = signed_in_unmatched(browser)
    (form,) = [f for f in _forms(page.body) if f["action"] == "/link/recover"]
    assert set(form["fields"]) == {"csrf_token", "email"} and form["fields"]["csrf_token"]


def test_the_local_mailbox_lists_codes_newest_first_and_escaped(browser, mailbox):
    import requests

    from localdev.mailbox import serve_mailbox

    make_account(primary="dr.alice@example.com", first_name="<b>Al</b>")
    form = signed_in_unmatched(browser)
    request_recovery(browser, "dr.alice@example.com", form)
    first = mailbox.code_for("dr.alice@example.com")
    request_recovery(browser, "dr.alice@example.com", form)
    second = mailbox.code_for("dr.alice@example.com")
    enter_code(browser, "/link/recover/verify", second)  # queues the link notice
    assert len(mailbox.messages) == 3  # the worker sends it
    server = serve_mailbox("127.0.0.1", 0)
    try:
        body = requests.get(f"http://127.0.0.1:{server.server_port}/", timeout=5).text
    finally:
        server.shutdown()
    assert body.index(LINK_NOTICE) < body.index(second) < body.index(first)
    assert "<b>Al</b>" not in body and "&lt;b&gt;Al&lt;/b&gt;" in body


def _forms(html):
    from localdev.html_forms import parse_forms

    return parse_forms(html)


def test_a_wrong_code_costs_the_same_requests_for_a_known_and_an_unknown_address(
    app_client, idp, mailbox, calls, monkeypatch
):
    """The same AWS requests in the same order, for an ordinary wrong code, the one that
    fills the account's daily cap (pausing it), and one while it is paused."""
    from chalicelib import config
    from tests.support.browser import session_csrf

    monkeypatch.setenv("CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY", "2")
    monkeypatch.setenv("RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY", "3")
    config.reset_settings()
    make_account(primary="dr.alice@example.com")
    shapes, statuses = {}, {}
    for name, email in [("known", "dr.alice@example.com"), ("unknown", "nobody@example.com")]:
        guesses = []
        for who in ("first", "second"):
            b = Browser(app_client, idp)
            request_recovery(b, email, signed_in_unmatched(b, f"{name}-{who}@example.net"))
            token = session_csrf(b, linked=False)
            for _ in range(2):  # 2 + 2 wrong codes: the 3rd fills the account's cap
                calls.clear()
                page = enter_code(b, "/link/recover/verify", "000000", token)
                guesses.append([(c.service, c.operation) for c in calls.calls])
                statuses.setdefault(name, []).append(page.status)
        shapes[name] = guesses
    assert statuses["known"] == statuses["unknown"] == [400, 400, 400, 400]
    for known, unknown in zip(shapes["known"], shapes["unknown"], strict=False):
        assert known == unknown
    ordinary, _, filling, paused = shapes["known"]
    # session, the identity (not disabled by Login.gov), try, one read of the caps' previous
    # day and the account's pause marks, identity's and account's caps
    assert [op for service, op in ordinary] == [
        "GetItem",
        "GetItem",
        "UpdateItem",
        "BatchGetItem",
        "UpdateItem",
        "UpdateItem",
    ]
    assert ("sqs", "SendMessage") in filling and paused == ordinary
    assert "Linking by code is paused on your National Registry account" in mailbox.subjects(
        "dr.alice@example.com"
    )


# --- a refused link spends its code -------------------------------------------------------------


def _bar(sub):
    Account.get("1000000001").update(actions=[Account.barred_subs.add({sub})])


def _unbar(sub):
    Account.get("1000000001").update(actions=[Account.barred_subs.delete({sub})])


def _disable(sub):
    Account.get("1000000001").update(actions=[Account.status.set("disabled")])


def _enable(sub):
    Account.get("1000000001").update(actions=[Account.status.set("active")])


def _share_the_address(sub):
    from chalicelib import claims, store

    make_account("1000000002", primary="dr.alice@example.com", claims=False)
    tx = store.Transaction()
    claims.add_holder(
        tx, "claim", "dr.alice@example.com", "1000000002", claims.read("dr.alice@example.com")
    )
    tx.commit()


def _unshare_the_address(sub):
    # As if support corrected the other account and cleared the address (manage.py).
    Account.get("1000000002").update(
        actions=[
            Account.primary_email.set("b@example.com"),
            Account.primary_email_normalized.set("b@example.com"),
        ]
    )
    Claim(
        Claim.email_key("dr.alice@example.com"),
        nr_number="1000000001",
        holders={"1000000001"},
        revision=9,
    ).save()


@pytest.mark.parametrize(
    "refuse, allow, status, words",
    [
        pytest.param(_bar, _unbar, 403, "cannot be linked to it again", id="barred"),
        pytest.param(_disable, _enable, 403, "has been disabled", id="disabled"),
        pytest.param(
            _share_the_address,
            _unshare_the_address,
            409,
            "changed while you were linking",
            id="address-now-shared",
        ),
    ],
)
def test_a_code_whose_link_is_refused_is_spent_and_cannot_be_replayed(
    browser, mailbox, refuse, allow, status, words
):
    """Once the reason is gone (a bar lifted, the account enabled, the address cleared),
    the same code must not link: whoever held it was refused, and it is spent."""
    make_account(primary="dr.alice@example.com")
    sub = str(uuid.uuid4())
    request_recovery(
        browser,
        "dr.alice@example.com",
        signed_in_unmatched(browser, "stranger@example.net", sub=sub),
    )
    code = mailbox.code_for("dr.alice@example.com")
    token = csrf_of(browser.get("/link/recover"))
    refuse(sub)
    page = enter_code(browser, "/link/recover/verify", code, token)
    assert page.status == status and words in page.body
    assert challenges() == []
    allow(sub)
    page = enter_code(browser, "/link/recover/verify", code, token)
    assert page.status == 400 and "no code waiting in this browser" in page.body
    assert sub_claims() == [] and Account.get("1000000001").linked_sub is None
