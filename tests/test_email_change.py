"""Changing a linked account's emails with a code (chalicelib.email_change)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from chalicelib.errors import EmailAddressTaken
from chalicelib.models import Account, AuditEvent, Challenge, Claim, Flow, WindowCounter
from localdev.html_forms import parse_forms
from tests.support.accounts import make_account
from tests.support.browser import Browser, csrf_of, enter_code, session_csrf

CHANGED_NOTICE = "The email addresses on your National Registry account changed"
CONFIRM_SUBJECT = "Confirm your new National Registry email address"


def linked(browser, nr_number="1000000001", primary="dr.alice@example.com", secondary=None):
    make_account(nr_number, primary=primary, secondary=secondary)
    assert browser.sign_in([primary], sub=str(uuid.uuid4())).location == "/account"
    return browser


def ask(browser, change, email=None, acknowledge=False, confirmed=False):
    fields = {"csrf_token": session_csrf(browser, linked=True), "change": change}
    if email is not None:
        fields["email"] = email
    if acknowledge:
        fields["acknowledge"] = "yes"
    if confirmed:
        fields["confirm"] = "yes"
    return browser.post("/account/email", fields)


def confirm(browser, code):
    return enter_code(browser, "/account/email/confirm", code)


def email_claims() -> dict[str, str]:
    return {c.claim: c.nr_number for c in Claim.scan() if c.claim.startswith("email#")}


def email_events(nr_number="1000000001") -> list[dict]:
    return [
        dict(e.detail.as_dict()) for e in AuditEvent.query(nr_number) if e.event == "email_changed"
    ]


def challenges() -> list[Challenge]:
    return [f for f in Flow.scan() if isinstance(f, Challenge)]


def test_changing_the_primary_moves_the_claims_in_one_step_and_tells_the_old_address(
    browser, mailbox
):
    linked(browser, primary="examiner@fmcsa.dot.gov")
    page = ask(browser, "primary", "  Alice.Personal@Example.com ")
    assert page.status == 302 and page.location == "/account/email/confirm"
    assert mailbox.subjects("Alice.Personal@Example.com") == [CONFIRM_SUBJECT]
    # Until the code is entered nothing moves: the old address is still this account's.
    assert email_claims() == {"email#examiner@fmcsa.dot.gov": "1000000001"}
    assert Account.get("1000000001").primary_email == "examiner@fmcsa.dot.gov"
    page = confirm(browser, mailbox.code_for("Alice.Personal@Example.com"))
    assert (
        page.status == 200
        and "primary email address is now Alice.Personal@Example.com" in page.body
    )
    account = Account.get("1000000001")
    assert (account.primary_email, account.primary_email_normalized) == (
        "Alice.Personal@Example.com",
        "alice.personal@example.com",
    )
    assert email_claims() == {"email#alice.personal@example.com": "1000000001"}
    assert email_events() == [
        {
            "change": "primary",
            "old_email": "examiner@fmcsa.dot.gov",
            "new_email": "Alice.Personal@Example.com",
        }
    ]
    assert mailbox.subjects("examiner@fmcsa.dot.gov")[-1] == CHANGED_NOTICE
    assert mailbox.to("alice.personal@example.com")[-1].subject == CONFIRM_SUBJECT
    assert "A•••@Example.com" in mailbox.to("examiner@fmcsa.dot.gov")[-1].body
    assert challenges() == []
    assert "Alice.Personal@Example.com" in browser.get("/account").body


def test_replacing_the_secondary_tells_the_old_secondary(browser, mailbox):
    linked(browser, secondary="old.home@example.org")
    ask(browser, "secondary", "new.home@example.org")
    confirm(browser, mailbox.code_for("new.home@example.org"))
    account = Account.get("1000000001")
    assert account.secondary_email == "new.home@example.org"
    assert email_claims() == {
        "email#dr.alice@example.com": "1000000001",
        "email#new.home@example.org": "1000000001",
    }
    assert mailbox.subjects("old.home@example.org")[-1] == CHANGED_NOTICE
    assert CHANGED_NOTICE not in mailbox.subjects("dr.alice@example.com")
    assert email_events()[0]["change"] == "secondary"


def test_adding_a_secondary_tells_the_primary(browser, mailbox):
    linked(browser)
    ask(browser, "secondary", "alice.home@example.org")
    page = confirm(browser, mailbox.code_for("alice.home@example.org"))
    assert "secondary email address is now alice.home@example.org" in page.body
    assert Account.get("1000000001").secondary_email_normalized == "alice.home@example.org"
    assert email_claims()["email#alice.home@example.org"] == "1000000001"
    assert mailbox.subjects("dr.alice@example.com")[-1] == CHANGED_NOTICE
    assert "was added" in mailbox.to("dr.alice@example.com")[-1].body


def test_removing_the_secondary_releases_it_and_tells_it(browser, mailbox):
    linked(browser, secondary="alice.home@example.org")
    page = ask(browser, "remove_secondary", confirmed=True)
    assert page.status == 200 and "alice.home@example.org is no longer on your account" in page.body
    account = Account.get("1000000001")
    assert account.secondary_email is None and account.secondary_email_normalized is None
    assert email_claims() == {"email#dr.alice@example.com": "1000000001"}
    assert mailbox.subjects("alice.home@example.org")[-1] == CHANGED_NOTICE
    assert email_events() == [
        {"change": "remove_secondary", "old_email": "alice.home@example.org", "new_email": ""}
    ]
    assert mailbox.to("alice.home@example.org")[-1].subject != CONFIRM_SUBJECT  # no code needed


def test_swapping_moves_no_claims_and_tells_the_old_primary(browser, mailbox, calls):
    linked(browser, secondary="alice.home@example.org")
    before = email_claims()
    token = session_csrf(browser, linked=True)
    calls.clear()
    page = browser.post("/account/email", {"csrf_token": token, "change": "swap", "confirm": "yes"})
    assert page.status == 200
    account = Account.get("1000000001")
    assert (account.primary_email, account.secondary_email) == (
        "alice.home@example.org",
        "dr.alice@example.com",
    )
    assert (account.primary_email_normalized, account.secondary_email_normalized) == (
        "alice.home@example.org",
        "dr.alice@example.com",
    )
    assert email_claims() == before
    (transaction,) = [op for op in calls.operations("dynamodb") if op == "TransactWriteItems"]
    assert transaction
    assert mailbox.subjects("dr.alice@example.com")[-1] == CHANGED_NOTICE
    assert email_events()[0]["change"] == "swap"


@pytest.mark.parametrize("change", ["swap", "remove_secondary"])
def test_swap_and_remove_ask_for_confirmation_and_change_nothing_before_it(
    browser, mailbox, change
):
    linked(browser, secondary="alice.home@example.org")
    sent = len(mailbox.messages)  # the link notice
    page = ask(browser, change)
    assert page.status == 200
    assert (
        "Make alice.home@example.org your primary email?"
        if change == "swap"
        else "Remove alice.home@example.org from your account?"
    ) in page.body
    (form,) = [f for f in parse_forms(page.body) if f["action"] == "/account/email"]
    assert form["fields"]["change"] == change and form["fields"]["confirm"] == "yes"
    assert form["fields"]["csrf_token"] == session_csrf(browser, linked=True)
    account = Account.get("1000000001")
    assert (account.primary_email, account.secondary_email) == (
        "dr.alice@example.com",
        "alice.home@example.org",
    )
    assert email_events() == [] and len(mailbox.messages) == sent
    page = browser.post("/account/email", form["fields"])  # "Yes"
    assert page.status == 200 and email_events()[0]["change"] == change


@pytest.mark.parametrize("change", ["swap", "remove_secondary"])
def test_swap_and_remove_need_a_secondary(browser, mailbox, change):
    linked(browser)
    page = ask(browser, change)
    assert page.status == 400 and "no secondary email address" in page.body
    assert email_events() == []


def test_swaps_and_removals_are_limited_per_account_per_hour(browser, mailbox):
    """Changes without a code send a notice each: a flood of them is refused."""
    linked(browser, secondary="alice.home@example.org")
    statuses = [ask(browser, "swap", confirmed=True).status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # EMAIL_CHANGES_WITHOUT_CODE_PER_HOUR
    page = ask(browser, "remove_secondary", confirmed=True)
    assert page.status == 429 and "Please wait up to an hour" in page.body
    assert len([e for e in email_events() if e["change"] == "swap"]) == 3
    notices = [m for m in mailbox.messages if m.subject == CHANGED_NOTICE]
    assert len(notices) == 3
    assert Account.get("1000000001").secondary_email == "dr.alice@example.com"


def make_sign_in_old(minutes: int) -> None:
    """The browser's session began `minutes` ago (the only session in these tests)."""
    from chalicelib.models import Session

    (session,) = [f for f in Flow.scan() if isinstance(f, Session)]
    session.update(actions=[Session.created_at.set(int(time.time()) - minutes * 60)])


@pytest.mark.parametrize(
    "change, fields",
    [
        ("primary", {"email": "alice.personal@example.com"}),
        ("secondary", {"email": "alice.personal@example.com"}),
        ("swap", {"confirm": "yes"}),
        ("remove_secondary", {"confirm": "yes"}),
    ],
)
def test_every_email_change_needs_a_recent_sign_in(browser, mailbox, change, fields):
    """Every address on the account proves who holds it (automatic linking, recovery
    codes): a session left open or stolen must not add, replace or remove one."""
    linked(browser, secondary="alice.home@example.org")
    make_sign_in_old(16)  # EMAIL_CHANGE_RECENT_SIGNIN_SECONDS
    token = session_csrf(browser, linked=True)
    page = browser.post("/account/email", {"csrf_token": token, "change": change, **fields})
    assert page.status == 302 and page.location == "/login?return_to=/account/email"
    assert mailbox.to("alice.personal@example.com") == [] and email_events() == []
    assert challenges() == []
    # Through Login.gov again, and back to the form, signed in afresh.
    callback = browser.authorize(
        browser.get(page.location).location,
        ["dr.alice@example.com"],
        sub=Account.get("1000000001").linked_sub,
    )
    back = browser.get(callback)
    assert back.status == 302 and back.location == "/account/email"
    form = browser.get(back.location)
    assert form.status == 200
    page = browser.post("/account/email", {"csrf_token": csrf_of(form), "change": change, **fields})
    if change in ("primary", "secondary"):
        assert page.location == "/account/email/confirm"
        assert mailbox.subjects("alice.personal@example.com") == [CONFIRM_SUBJECT]
    else:
        assert page.status == 200 and email_events()[0]["change"] == change


@pytest.mark.parametrize("change", ["secondary", "swap", "remove_secondary"])
def test_the_confirmation_step_of_a_stale_session_is_refused_too(browser, mailbox, change):
    """The "are you sure?" and advice pages are no way around it either."""
    linked(browser, secondary="alice.home@example.org")
    make_sign_in_old(16)
    page = ask(browser, change, None if change != "secondary" else "examiner@cdc.gov")
    assert page.status == 302 and page.location == "/login?return_to=/account/email"


def test_a_stale_session_cannot_plant_a_secondary_that_links_after_an_unlink(
    app_client, idp, mailbox
):
    """The review's story: a thief with an old session sets the secondary to their own
    mailbox; after a Login.gov purge their own Login.gov account would link the record."""
    from chalicelib import security_events
    from tests.support import CLIENT_ID

    victim = linked(Browser(app_client, idp), secondary="alice.home@example.org")
    victim_sub = Account.get("1000000001").linked_sub
    make_sign_in_old(60)
    page = ask(victim, "secondary", "mallory@evil.example")
    assert page.location == "/login?return_to=/account/email"
    assert mailbox.to("mallory@evil.example") == []
    security_events.handle_security_event(
        idp.security_event_token(CLIENT_ID, "account-purged", victim_sub)
    )
    thief = Browser(app_client, idp)
    assert thief.sign_in(["mallory@evil.example"]).location == "/link/no-match"
    account = Account.get("1000000001")
    assert account.secondary_email == "alice.home@example.org" and account.linked_sub is None


def test_the_old_name_of_the_recent_sign_in_setting_still_works(browser, mailbox, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("PRIMARY_CHANGE_RECENT_SIGNIN_SECONDS", "7200")
    config.reset_settings()
    linked(browser, secondary="alice.home@example.org")
    make_sign_in_old(60)
    assert ask(browser, "secondary", "new.home@example.org").location == "/account/email/confirm"
    monkeypatch.setenv("EMAIL_CHANGE_RECENT_SIGNIN_SECONDS", "1800")  # the new name wins
    config.reset_settings()
    assert (
        ask(browser, "secondary", "new.home@example.org").location
        == "/login?return_to=/account/email"
    )
    monkeypatch.undo()
    config.reset_settings()


@pytest.mark.parametrize("others", ["primary", "secondary"])
def test_an_address_on_another_account_is_refused_without_saying_whose(
    app_client, idp, mailbox, others
):
    make_account(
        "1000000002",
        primary="bob@example.com",
        secondary="bob.home@example.org",
        first_name="Bob",
        last_name="Other",
    )
    browser = linked(Browser(app_client, idp))
    taken = {"primary": "Bob@Example.com", "secondary": "bob.home@example.org"}[others]
    page = ask(browser, "primary", taken)
    assert page.status == 409 and "cannot be used for your account" in page.body
    assert "1000000002" not in page.body and "Bob Other" not in page.body
    assert mailbox.to(taken) == [] and challenges() == []
    assert Account.get("1000000001").primary_email == "dr.alice@example.com"
    assert email_claims()["email#bob@example.com"] == "1000000002"


def test_probing_for_taken_addresses_spends_the_send_allowance(app_client, idp, mailbox):
    make_account("1000000002", primary="bob@example.com")
    browser = linked(Browser(app_client, idp))
    statuses = [ask(browser, "primary", f"bob{i}@example.com").status for i in range(4)]
    statuses += [ask(browser, "primary", "bob@example.com").status for _ in range(3)]
    # 4 probes of free addresses (codes sent), then 1 of a taken one, then the hour is over.
    assert statuses == [302, 302, 302, 302, 409, 429, 429]
    # ...but not the probed address's own (nor the probe's pair): its owner still gets codes.
    probed = [
        c.sends
        for c in Flow.scan()
        if isinstance(c, WindowCounter) and c.subject is None and c.sends == 0
    ]
    assert len(probed) == 2


def test_an_address_already_on_this_account_is_explained(browser, mailbox):
    linked(browser, secondary="alice.home@example.org")
    page = ask(browser, "primary", "ALICE.HOME@example.org")
    assert page.status == 400 and "already on your account" in page.body and "swap" in page.body
    page = ask(browser, "primary", "not an address")
    assert page.status == 400 and "Enter an email address like name@example.com" in page.body
    assert challenges() == []


@pytest.mark.parametrize("address", ["alice@va.gov", "alice@army.mil", "alice@state.edu"])
def test_an_institutional_address_gets_the_faq_advice_before_any_code(browser, mailbox, address):
    linked(browser)
    page = ask(browser, "primary", address)
    assert page.status == 200
    assert "you will no longer have access to that email address" in page.body
    assert "personal email address" in page.body
    assert mailbox.to(address) == [] and challenges() == []
    page = ask(browser, "primary", address, acknowledge=True)
    assert page.location == "/account/email/confirm"
    assert mailbox.subjects(address) == [CONFIRM_SUBJECT]


def test_the_account_page_advice_links_to_the_change_form(browser, mailbox):
    linked(browser, primary="examiner@fmcsa.dot.gov")
    page = browser.get("/account")
    assert "Change your primary email to a personal address" in page.body
    assert 'href="/account/email"' in page.body
    form_page = browser.get("/account/email")
    assert form_page.status == 200
    assert any(
        f["action"] == "/account/email"
        and f["fields"].get("change") == "primary"
        and "email" in f["fields"]
        for f in _forms(form_page.body)
    )


def test_a_pending_change_shows_on_the_account_page_and_can_be_cancelled(browser, mailbox):
    linked(browser)
    ask(browser, "primary", "alice.personal@example.com")
    page = browser.get("/account")
    assert "An email change is waiting for its code" in page.body
    assert "alice.personal@example.com" in page.body
    (cancel,) = [f for f in _forms(page.body) if f["action"] == "/account/email/cancel"]
    page = browser.post("/account/email/cancel", cancel["fields"])
    assert page.location == "/account"
    assert "waiting for its code" not in browser.get("/account").body
    assert challenges() == []
    page = confirm(browser, mailbox.code_for("alice.personal@example.com"))
    assert page.status == 400 and "no code waiting" in page.body
    assert Account.get("1000000001").primary_email == "dr.alice@example.com"


def test_a_wrong_or_expired_code_changes_nothing(browser, mailbox, clock):
    linked(browser)
    ask(browser, "primary", "alice.personal@example.com")
    code = mailbox.code_for("alice.personal@example.com")
    page = confirm(browser, f"{(int(code) + 1) % 1_000_000:06d}")
    assert page.status == 400 and "4 tries left" in page.body
    token = session_csrf(browser, linked=True)
    clock.advance(601)
    page = enter_code(browser, "/account/email/confirm", code, token)
    assert page.status == 400 and "expired" in page.body
    assert email_claims() == {"email#dr.alice@example.com": "1000000001"}
    assert email_events() == []


def test_the_old_address_is_released_only_when_the_change_commits(app_client, idp, mailbox):
    alice = linked(Browser(app_client, idp))
    bob = linked(Browser(app_client, idp), "1000000002", primary="bob@example.com")
    ask(alice, "primary", "alice.personal@example.com")
    # Pending: dr.alice@ is still Alice's; Bob cannot take it.
    assert ask(bob, "secondary", "dr.alice@example.com").status == 409
    confirm(alice, mailbox.code_for("alice.personal@example.com"))
    # Committed: the old address is free, and Bob can now confirm it.
    assert ask(bob, "secondary", "dr.alice@example.com").location == "/account/email/confirm"
    confirm(bob, mailbox.code_for("dr.alice@example.com"))
    assert email_claims() == {
        "email#alice.personal@example.com": "1000000001",
        "email#bob@example.com": "1000000002",
        "email#dr.alice@example.com": "1000000002",
    }


def test_two_accounts_racing_for_one_new_address_exactly_one_wins(app_client, idp, mailbox):
    """Both got a code (the address was free when they asked); both confirm at once.

    The confirmations race in the domain layer: Chalice's test client keeps one
    `current_request` per app, so two requests cannot be in flight through it at once.
    """
    from chalicelib import accounts, email_change, sessions

    browsers = [
        linked(Browser(app_client, idp), f"100000000{i}", primary=f"p{i}@example.com")
        for i in (1, 2)
    ]
    codes = []
    for b in browsers:
        ask(b, "primary", "shared.new@example.com")
        codes.append(mailbox.code_for("shared.new@example.com"))
    signed_in = []
    for b in browsers:
        token = b.cookies["nr_session"]
        session = sessions.load_session(token)
        signed_in.append((session, accounts.signed_in_account(session, token)))
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def finish(i):
        session, account = signed_in[i]
        barrier.wait()
        try:
            outcomes[i] = email_change.confirm_change(session, account, codes[i])
        except EmailAddressTaken as refused:
            outcomes[i] = refused

    threads = [threading.Thread(target=finish, args=(i,)) for i in (0, 1)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(type(o).__name__ for o in outcomes) == ["Applied", "EmailAddressTaken"]
    winner = email_claims()["email#shared.new@example.com"]
    other = "1000000002" if winner == "1000000001" else "1000000001"
    assert Account.get(winner).primary_email == "shared.new@example.com"
    assert Account.get(other).primary_email == f"p{other[-1]}@example.com"
    assert email_claims()[f"email#p{other[-1]}@example.com"] == other  # loser kept its own
    assert f"email#p{winner[-1]}@example.com" not in email_claims()
    assert len(email_events(winner)) == 1 and email_events(other) == []
    assert challenges() == []  # the loser's code is dead too


def test_the_loser_of_an_address_race_sees_a_clear_page(app_client, idp, mailbox):
    first = linked(Browser(app_client, idp), "1000000001", primary="p1@example.com")
    second = linked(Browser(app_client, idp), "1000000002", primary="p2@example.com")
    for b in (first, second):
        ask(b, "primary", "shared.new@example.com")
    first_code, second_code = mailbox.codes_for("shared.new@example.com")
    assert confirm(first, first_code).status == 200
    page = confirm(second, second_code)
    assert page.status == 409 and "cannot be used for your account" in page.body
    assert "1000000001" not in page.body
    assert Account.get("1000000002").primary_email == "p2@example.com"


def test_a_change_made_stale_by_another_change_is_refused(browser, mailbox):
    linked(browser, secondary="alice.home@example.org")
    ask(browser, "primary", "alice.personal@example.com")
    ask(browser, "swap", confirmed=True)  # the primary is now another one
    page = confirm(browser, mailbox.code_for("alice.personal@example.com"))
    assert page.status == 409 and "changed while this change was in progress" in page.body
    account = Account.get("1000000001")
    assert account.primary_email == "alice.home@example.org"
    assert "email#alice.personal@example.com" not in email_claims()


def test_a_disabled_account_cannot_change_its_email(browser, mailbox):
    linked(browser)
    ask(browser, "primary", "alice.personal@example.com")
    code = mailbox.code_for("alice.personal@example.com")
    token = session_csrf(browser, linked=True)
    Account.get("1000000001").update(actions=[Account.status.set("disabled")])
    page = enter_code(browser, "/account/email/confirm", code, token)
    assert page.status == 403
    assert email_claims() == {"email#dr.alice@example.com": "1000000001"}


def test_an_outbox_failure_sends_no_code_and_keeps_the_allowance(browser, mailbox, calls):
    linked(browser)
    calls.fail("SendMessage", "ServiceUnavailable")
    page = ask(browser, "primary", "alice.personal@example.com")
    assert page.status == 503 and "could not send the email" in page.body
    assert challenges() == []
    assert {c.sends for c in Flow.scan() if isinstance(c, WindowCounter)} == {0}


def test_a_failed_notice_does_not_undo_or_fail_the_change(browser, mailbox, calls):
    linked(browser)
    ask(browser, "primary", "alice.personal@example.com")
    code = mailbox.code_for("alice.personal@example.com")
    token = session_csrf(browser, linked=True)
    calls.fail("SendMessage", "ServiceUnavailable")
    page = enter_code(browser, "/account/email/confirm", code, token)
    assert page.status == 200 and "We sent a notice" not in page.body
    assert Account.get("1000000001").primary_email == "alice.personal@example.com"


# --- the figures -----------------------------------------------------------------------------


def test_figures_requests_per_confirmation_and_mails_per_workflow(app_client, idp, mailbox, calls):
    """The numbers in the report: DynamoDB requests per confirmation, mail sends per workflow."""
    from tests.support.browser import request_recovery, signed_in_unmatched

    make_account("1000000009", primary="rec@example.com")
    rec = Browser(app_client, idp)
    form = signed_in_unmatched(rec)
    calls.clear()
    request_recovery(rec, "rec@example.com", form)
    recovery_send = calls.count("dynamodb")
    recovery_send_sqs = calls.count("sqs")
    token = csrf_of(rec.get("/link/recover"))
    mails_before = len(mailbox.messages)
    code = mailbox.code_for("rec@example.com")  # the worker's part, not the request's
    calls.clear()
    assert enter_code(rec, "/link/recover/verify", code, token).location == "/account"
    recovery_verify = calls.count("dynamodb")
    recovery_verify_sqs = calls.count("sqs")
    recovery_verify_mails = len(mailbox.messages) - mails_before

    browser = linked(Browser(app_client, idp))
    mails_before = len(mailbox.messages)
    token = session_csrf(browser, linked=True)
    calls.clear()
    browser.post(
        "/account/email",
        {"csrf_token": token, "change": "primary", "email": "alice.personal@example.com"},
    )
    change_send = calls.count("dynamodb")
    code = mailbox.code_for("alice.personal@example.com")
    calls.clear()
    page = enter_code(browser, "/account/email/confirm", code, token)
    assert page.status == 200
    change_confirm = calls.count("dynamodb")
    change_confirm_sqs = calls.count("sqs")
    change_mails = len(mailbox.messages) - mails_before

    print(
        f"\nrecovery send: {sum(recovery_send.values())} {dict(recovery_send)}; "
        f"email-change send: {sum(change_send.values())} {dict(change_send)}"
    )
    print(
        f"recovery verify: {sum(recovery_verify.values())} DynamoDB requests "
        f"{dict(recovery_verify)}; email-change confirm: {sum(change_confirm.values())} "
        f"{dict(change_confirm)}; mails: recovery {recovery_verify_mails} at verify, "
        f"email change {change_mails} per workflow"
    )
    # Recovery verify: session, the identity (refused while Login.gov says disabled), code
    # try, then link_account's read and transaction (which spends the code), the notice's
    # account read, the new session and the old one's end.
    # The code try takes a slot under the 24 hours' wrong-code caps (one BatchGetItem of their
    # previous day and the account's pause marks; identity, and account for recovery) and,
    # being right, gives them back: 1 + 2x2 and 1 + 2 UpdateItems.
    assert recovery_verify == {
        "GetItem": 4,
        "BatchGetItem": 1,
        "UpdateItem": 5,
        "DeleteItem": 1,
        "TransactWriteItems": 1,
        "PutItem": 1,
    }
    # Email-change confirm: session, account, code try (+ identity slot), ONE transaction.
    assert change_confirm == {
        "GetItem": 2,
        "BatchGetItem": 1,
        "UpdateItem": 3,
        "TransactWriteItems": 1,
    }
    # Sending a code: session (+ identity for recovery, account for a change), claim, ONE
    # BatchGetItem (the counters' previous hour and the recovery-pause marks), three
    # counters (identity, identity and address, address), challenge.
    assert recovery_send == {"GetItem": 4, "BatchGetItem": 1, "UpdateItem": 3, "PutItem": 1}
    assert change_send == {"GetItem": 3, "BatchGetItem": 1, "UpdateItem": 3, "PutItem": 1}
    assert recovery_verify_mails == 1  # the link notice
    assert change_mails == 2  # the code, then the notice
    # Mail is one SQS request per request (the queue's URL is looked up once a container).
    assert recovery_send_sqs == {"GetQueueUrl": 1, "SendMessage": 1}
    assert recovery_verify_sqs == {"SendMessage": 1}  # one address: one message
    assert change_confirm_sqs == {"SendMessage": 1}


def _forms(html):
    from localdev.html_forms import parse_forms

    return parse_forms(html)
