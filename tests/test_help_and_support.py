"""A person is never stranded: the help page, the support desk on every refusal page, in the
footer and in every mail, a reference that finds the refusal in the logs, a signed-in
header, and the Login.gov reminder after an email change."""

from __future__ import annotations

import re
import uuid

import pytest

from chalicelib import config, mail
from chalicelib.models import Account, Challenge
from localdev.html_forms import parse_forms
from tests.support.accounts import make_account
from tests.support.browser import enter_code, request_recovery, session_csrf, signed_in_unmatched

SUPPORT = {
    "SUPPORT_PHONE": "(202) 555-0142",
    "SUPPORT_EMAIL": "help.desk@registry.example.gov",
    "SUPPORT_HOURS": "weekdays 9 to 5 Eastern",
    "SUPPORT_URL": "https://registry.example.gov/help-desk",
}


@pytest.fixture
def support(monkeypatch):
    """A stage's own support desk (the SUPPORT_* settings: docs/operations.md)."""
    for name, value in SUPPORT.items():
        monkeypatch.setenv(name, value)
    config.reset_settings()
    yield SUPPORT
    for name in SUPPORT:
        monkeypatch.delenv(name)
    config.reset_settings()


def assert_names_support(body: str) -> None:
    """Phone (with a tel: link), email (mailto:), hours and the support page."""
    assert SUPPORT["SUPPORT_PHONE"] in body and 'href="tel:+12025550142"' in body
    assert f'href="mailto:{SUPPORT["SUPPORT_EMAIL"]}"' in body
    assert SUPPORT["SUPPORT_HOURS"] in body and f'href="{SUPPORT["SUPPORT_URL"]}"' in body


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def references_on(body: str) -> list[str]:
    return re.findall(r'<strong class="reference">([^<]+)</strong>', body)


def main_part(body: str) -> str:
    """The page's <main>: not the header, nor the footer (which names the support desk on
    every page)."""
    return body.split("<main", 1)[1].split("</main>", 1)[0]


@pytest.fixture(autouse=True)
def api_gateway_routing(monkeypatch):
    """The test client matches `{proxy+}` greedily, as API Gateway (and `make run`) do."""
    from chalice import local

    from localdev.chalice_local import GreedyRouteMatcher

    monkeypatch.setattr(local, "RouteMatcher", GreedyRouteMatcher)


# --- the help page and the landing page --------------------------------------------------------


def test_help_page_answers_the_faq_step_by_step(browser, support):
    page = browser.get("/help")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    body = page.body
    for section in (
        "create-account",
        "which-email",
        "sign-in",
        "change-email",
        "no-match",
        "no-registry-email",
        "codes",
        "two-accounts",
        "already-linked",
        "lost-login-gov",
        "not-active",
        "cancelled",
        "contact",
    ):
        assert f'id="{section}"' in body and f'href="#{section}"' in body, section
    assert "Do not use a .gov, .mil or .edu address" in body
    assert "Do not use an address you share with anyone" in body
    assert "primary or secondary email" in body
    assert re.search(r'<ol class="steps">', body)
    # Login.gov's own account page, derived from the issuer (prod: secure.login.gov/account).
    issuer = config.get_settings().login_gov_issuer
    assert f'href="{issuer}account"' in body
    assert_names_support(main_part(body))
    assert "Sign in with Login.gov</a>" in body  # not signed in: the header says so


def test_landing_page_gives_the_email_advice_before_the_sign_in_button(browser):
    body = browser.get("/").body
    advice = body.index("Do not use a .gov, .mil or .edu email address")
    assert advice < body.index('<a class="button" href="/login">Sign in with Login.gov</a>')
    assert 'href="/help#create-account"' in body and 'href="/help"' in body


def test_every_page_header_links_to_help_and_the_footer_names_the_support_desk(browser, support):
    for path in ("/", "/help", "/signed-out", "/no/such/page"):
        page = browser.get(path)
        header, footer = page.body.split("<main", 1)[0], page.body.split("<footer", 1)[1]
        assert '<a href="/help">Help</a>' in header, path
        assert_names_support(footer)


def test_landing_without_a_session_cookie_reads_nothing(browser, calls):
    calls.clear()
    assert browser.get("/").status == 200
    assert calls.operations("dynamodb") == []


def test_signed_in_header_and_home_page_offer_the_account_and_sign_out(browser):
    make_account(primary="dr.alice@example.com")
    assert browser.sign_in(["dr.alice@example.com"]).location == "/account"
    for path in ("/", "/help", "/no-such-page"):
        body = browser.get(path).body
        header = body.split("<main", 1)[0]
        assert '<a href="/account">Your account</a>' in header, path
        assert '<a href="/logout">Sign out</a>' in header, path
        assert "Sign in with Login.gov</a>" not in body, path
    home = browser.get("/").body
    assert "You are signed in" in home and 'class="button" href="/account"' in home
    browser.get("/logout")
    assert "Sign in with Login.gov</a>" in browser.get("/").body


def test_signed_in_but_not_linked_the_header_leads_to_linking_not_to_a_loop(browser, mailbox):
    signed_in_unmatched(browser)
    for path in ("/", "/help", "/link/no-match", "/link/recover", "/no-such-page"):
        header = browser.get(path).body.split("<main", 1)[0]
        assert '<a href="/link/no-match">Link your registry account</a>' in header, path
        assert 'href="/account"' not in header, path
    home = main_part(browser.get("/").body)
    assert "not linked to a National Registry account yet" in home
    assert 'class="button" href="/link/no-match"' in home


# --- refusal pages: help, support contact, reference -------------------------------------------


def _no_match(browser):
    page = browser.sign_in(["nobody@example.net"])
    return browser.get(page.location)


def _ambiguous(browser):
    make_account("1000000001", primary="a@example.com")
    make_account("1000000002", primary="b@example.com")
    return browser.sign_in(["a@example.com", "b@example.com"])


def _already_linked(browser):
    make_account(primary="front.desk@example.com")
    assert browser.sign_in(["front.desk@example.com"]).status == 302
    browser.cookies.clear()
    return browser.sign_in(["front.desk@example.com"], sub=str(uuid.uuid4()))


def _status(status):
    def refuse(browser):
        make_account(primary="old.examiner@example.com", status=status)
        return browser.sign_in(["old.examiner@example.com"])

    return refuse


def _removed_after_linking(browser):
    # A removed account holds no address (signing in with it matches nothing); the person
    # already linked to it is the one who is told it was removed.
    from tests.support.accounts import link

    make_account(primary="old.examiner@example.com")
    sub = str(uuid.uuid4())
    link("1000000001", sub)
    Account.get("1000000001").update(actions=[Account.status.set("removed")])
    return browser.follow(browser.sign_in(["old.examiner@example.com"], sub=sub))


def _released_by_removal(browser):
    # The registry removed the account that held the address; nobody holds it now.
    from supportdesk.registry_sync import import_accounts, validate_text
    from tests.support.accounts import csv_row, csv_text

    import_accounts(validate_text(csv_text(csv_row("1000000001", "old.examiner@example.com"))))
    rows = csv_text(csv_row("1000000001", "old.examiner@example.com", status="removed"))
    import_accounts(validate_text(rows))
    return browser.sign_in(["old.examiner@example.com"])


def _cancelled(browser):
    return browser.get(
        browser.authorize(browser.start_signin(), ["x@example.com"], action="cancel")
    )


def _not_found(browser):
    return browser.get("/no-such-page")


def _send_limit(browser):
    from chalicelib.config import get_settings

    signed_in_unmatched(browser)
    for n in range(get_settings().code_sends_per_hour):  # CODE_SENDS_PER_HOUR
        request_recovery(browser, f"unknown{n}@example.org")
    return request_recovery(browser, "one.too.many@example.org")


REFUSALS = {
    "no match": (_no_match, 200, "no-match", "link_no_match_shown"),
    "two accounts": (_ambiguous, 409, "two-accounts", "link_refused_ambiguous"),
    "already linked": (_already_linked, 409, "already-linked", "link_refused_shared"),
    "disabled": (_status("disabled"), 403, "not-active", "link_refused_inactive"),
    "removed": (_removed_after_linking, 403, "not-active", "link_refused_inactive"),
    "address of a removed account": (_released_by_removal, 403, "removed", "link_refused_removed"),
    "cancelled sign-in": (_cancelled, 400, "cancelled", "signin_cancelled"),
    "not found": (_not_found, 404, None, "not_found"),
    "send limit": (_send_limit, 429, "codes", "code_send_limited"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refusal_page_links_its_help_names_support_and_shows_a_reference_to_its_log_line(
    browser, mailbox, support, logged, case
):
    refuse, status, anchor, event = REFUSALS[case]
    page = refuse(browser)
    assert page.status == status, page
    main = main_part(page.body)
    assert f'href="/help#{anchor}"' in main if anchor else 'href="/help"' in main
    assert_names_support(main)
    (reference,) = references_on(main)
    assert re.fullmatch(r"[0-9a-f]{8}", reference)
    (line,) = [r for r in logged.records if r.get("event") == event]
    assert line["request_id"].startswith(reference)


def test_the_stuck_cases_name_themselves(browser, mailbox, support):
    """No longer reading any registry address, and a lost Login.gov account: each page says
    what to do, with the support desk's contact details in the sentence."""
    no_match = text_of(main_part(_no_match(browser).body))
    assert "If you no longer read any of your registry email addresses" in no_match
    assert f"{SUPPORT['SUPPORT_PHONE']} or {SUPPORT['SUPPORT_EMAIL']}" in no_match
    request_recovery(browser, "dr.someone@example.org")
    code_page = text_of(main_part(browser.get("/link/recover/verify").body))
    assert "No longer read that mailbox, or any of your registry email addresses?" in code_page
    assert f"{SUPPORT['SUPPORT_PHONE']} or {SUPPORT['SUPPORT_EMAIL']}" in code_page
    browser.cookies.clear()
    shared = main_part(_already_linked(browser).body)
    assert "If you lost your old Login.gov account and made a new one" in shared
    assert "remove the old link" in shared and "Forgot your password?" in shared


def test_the_send_limit_page_offers_support_not_a_loop_back_to_no_match(browser, mailbox):
    page = _send_limit(browser)
    main = main_part(page.body)
    assert 'href="/account"' not in main  # /account sends an unlinked person back
    assert "contact the National Registry support desk" in main


def test_the_send_limit_page_of_a_linked_person_goes_back_to_their_account(browser, mailbox):
    from chalicelib.config import get_settings

    make_account(primary="dr.alice@example.com")
    browser.sign_in(["dr.alice@example.com"])
    for n in range(get_settings().code_sends_per_hour + 1):  # one over CODE_SENDS_PER_HOUR
        page = browser.post(
            "/account/email",
            {
                "csrf_token": session_csrf(browser, linked=True),
                "change": "secondary",
                "email": f"alice.home{n}@example.org",
            },
        )
    assert page.status == 429 and 'href="/account"' in main_part(page.body)


# --- codes: spaces welcome, typos cost no try --------------------------------------------------


@pytest.fixture
def recovering(browser, mailbox):
    make_account(primary="dr.alice@example.com")
    signed_in_unmatched(browser)
    request_recovery(browser, "dr.alice@example.com")
    return browser


@pytest.mark.parametrize("typed", ["12345O", "1234", "code: 123456"])
def test_a_code_with_a_letter_or_wrong_length_is_explained_and_costs_no_try(
    recovering, mailbox, typed
):
    page = enter_code(recovering, "/link/recover/verify", typed)
    assert page.status == 400
    assert "Enter the 6 digits from the email" in page.body
    assert "This did not count as a try" in page.body
    assert 'aria-invalid="true"' in page.body
    (challenge,) = [c for c in Challenge.scan() if isinstance(c, Challenge)]
    assert challenge.attempts == 0
    code = mailbox.code_for("dr.alice@example.com")
    page = enter_code(recovering, "/link/recover/verify", f"{code[:3]} {code[3:]}")
    assert page.status == 302 and page.location == "/account"
    assert Account.get("1000000001").linked_sub


def test_a_malformed_code_for_an_email_change_shows_the_change_code_page(browser, mailbox):
    make_account(primary="dr.alice@example.com")
    browser.sign_in(["dr.alice@example.com"])
    browser.post(
        "/account/email",
        {
            "csrf_token": session_csrf(browser, linked=True),
            "change": "secondary",
            "email": "alice.home@example.org",
        },
    )
    page = enter_code(browser, "/account/email/confirm", "abcdef")
    assert page.status == 400 and "We sent a 6-digit code to alice.home@example.org" in page.body
    assert "This did not count as a try" in page.body


# --- the account and email pages ----------------------------------------------------------------


def test_account_page_shows_the_linked_login_gov_email(browser):
    make_account(primary="dr.alice@example.com", secondary="alice.home@example.org")
    browser.sign_in(["alice.home@example.org"])
    body = browser.get("/account").body
    assert re.search(r"<dt>Login.gov email</dt><dd>alice.home@example.org", body)


def test_account_page_says_gracefully_when_the_login_gov_email_was_not_recorded(browser):
    make_account(primary="dr.alice@example.com")
    browser.sign_in(["dr.alice@example.com"])
    account = Account.get("1000000001")
    account.update(actions=[Account.linked_email.remove()])  # a link from before we kept it
    body = browser.get("/account").body
    assert re.search(r"<dt>Login.gov email</dt><dd>Not recorded", body)
    assert "linked before we kept this" in body
    # No secondary address reads as words, never as a program's "None".
    assert "<dt>Secondary email</dt><dd>No secondary email</dd>" in body
    assert ">None<" not in body


def test_after_an_email_change_the_page_and_the_notice_say_to_update_login_gov(browser, mailbox):
    make_account(primary="dr.alice@va.gov")
    browser.sign_in(["dr.alice@va.gov"])
    browser.post(
        "/account/email",
        {
            "csrf_token": session_csrf(browser, linked=True),
            "change": "primary",
            "email": "alice.personal@example.com",
            "acknowledge": "yes",
        },
    )
    page = enter_code(
        browser, "/account/email/confirm", mailbox.code_for("alice.personal@example.com")
    )
    assert page.status == 200
    account_url = config.get_settings().login_gov_issuer + "account"
    assert "Now change your email at Login.gov too" in page.body
    assert "Your Login.gov account used <strong>dr.alice@va.gov</strong>" in page.body
    assert f'href="{account_url}"' in page.body
    (notice,) = mailbox.to("dr.alice@va.gov")[-1:]
    assert "Change it at Login.gov too" in notice.body and account_url in notice.body


def test_the_email_page_buttons_have_unique_names(browser):
    make_account(primary="dr.alice@example.com", secondary="alice.home@example.org")
    browser.sign_in(["dr.alice@example.com"])
    body = browser.get("/account/email").body
    names = [
        re.sub(r"\s+", " ", n).strip()
        for n in re.findall(r"<button[^>]*>(.*?)</button>", body, flags=re.S)
    ]
    assert len(names) == 4 and len(set(names)) == len(names), names


@pytest.mark.parametrize(
    "emails, sentence",
    [
        (
            ["stranger@example.net"],
            (
                "Login.gov shared this address with us, but it is not on any registry account: "
                "stranger@example.net."
            ),
        ),
        (
            ["stranger@example.net", "other@example.org"],
            (
                "Login.gov shared these addresses with us, but we did not find any of them on a "
                "registry account: stranger@example.net, other@example.org."
            ),
        ),
    ],
)
def test_the_recovery_page_names_the_shared_addresses_in_plain_words(browser, emails, sentence):
    browser.sign_in(emails)
    assert sentence in browser.get("/link/recover").body


# --- mail ---------------------------------------------------------------------------------------

MAIL_CONTEXTS = {
    "link_notice": {},
    "recovery_code": {"code": "123456", "minutes": 10, "login_gov_email": "someone@example.net"},
    "email_change_code": {"code": "123456", "minutes": 10, "change": "primary"},
    "email_changed_notice": {
        "change": "primary",
        "old_email": "a@example.com",
        "new_email_hint": "b•••@example.com",
    },
    "institutional_email_reminder": {},
    "recovery_paused_notice": {"cap": 10},
    "shared_address_notice": {"login_gov_email": "someone@example.net"},
    "campaign_invitation": {
        "first_name": "Alice",
        "nr_number": "1000000001",
        "addresses": ["a@example.com"],
        "deadline": "March 1, 2027",
        "days_left": 84,
        "institutional": False,
        "help_url": "http://127.0.0.1:8000/help",
        "signin_url": "http://127.0.0.1:8000/",
    },
    "campaign_reminder": {
        "first_name": "Alice",
        "nr_number": "1000000001",
        "addresses": ["a@example.com", "alice@va.gov"],
        "deadline": "March 1, 2027",
        "days_left": 1,
        "institutional": True,
        "help_url": "http://127.0.0.1:8000/help",
        "signin_url": "http://127.0.0.1:8000/",
    },
}


def test_every_mail_template_is_covered_here():
    names = {p.stem for p in mail.MAIL_TEMPLATES.glob("*.txt") if not p.stem.startswith("_")}
    assert names == set(MAIL_CONTEXTS)


@pytest.mark.parametrize("template", list(MAIL_CONTEXTS))
def test_every_mail_names_the_support_desk_in_both_bodies(idp, support, template):
    account = Account("1000000001", first_name="Alice", primary_email="a@example.com")
    rendered = mail.render_mail(template, account=account, **MAIL_CONTEXTS[template])
    assert_names_support(rendered.html)
    for value in SUPPORT.values():
        assert value in rendered.text, (template, value)


def test_mail_sent_on_linking_names_the_support_desk(browser, mailbox, support):
    make_account(primary="dr.alice@example.com")
    browser.sign_in(["dr.alice@example.com"])
    (notice,) = mailbox.to("dr.alice@example.com")
    assert_names_support(notice.body)


# --- the settings -------------------------------------------------------------------------------


def test_support_contact_has_placeholder_defaults_and_a_dialable_phone_link(monkeypatch):
    for name in SUPPORT:
        monkeypatch.delenv(name, raising=False)
    config.reset_settings()
    contact = config.support_contact()
    assert contact.phone == config.default("SUPPORT_PHONE")
    assert contact.phone_uri == "tel:+18005550100"
    monkeypatch.setenv("SUPPORT_PHONE", "+44 20 7946 0000")
    config.reset_settings()
    assert config.support_contact().phone_uri == "tel:+442079460000"
    config.reset_settings()


def test_the_server_error_page_names_support_even_when_a_required_setting_is_missing(
    monkeypatch, support
):
    from chalicelib import pages

    monkeypatch.delenv("APP_BASE_URL")
    config.reset_settings()
    response = pages.render_server_error()
    assert response.status_code == 500
    assert_names_support(response.body)


def test_the_confirm_pages_forms_carry_the_csrf_token(browser):
    make_account(primary="dr.alice@example.com", secondary="alice.home@example.org")
    browser.sign_in(["dr.alice@example.com"])
    token = session_csrf(browser, linked=True)
    page = browser.post("/account/email", {"csrf_token": token, "change": "remove_secondary"})
    assert [f["fields"].get("csrf_token") for f in parse_forms(page.body)] == [token]


# --- not found ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/favicon.ico",
        "/Account",
        "/foo/bar/baz",
        "/link/no-match/extra",
        "/help/",
        "/no-such-page?x=1",
    ],
)
def test_an_unknown_path_is_the_sites_404_page_with_a_link_home(browser, path):
    page = browser.get(path)
    if path == "/help/":
        assert page.status == 200  # a trailing slash is the same page, as on API Gateway
        return
    assert page.status == 404 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Page not found</h1>" in page.body
    assert '<a class="action" href="/">Go to the National Registry sign-in page</a>' in page.body
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_pages_declare_an_icon_so_browsers_do_not_ask_for_favicon_ico(browser):
    assert '<link rel="icon" href="data:,">' in browser.get("/").body


def test_the_local_matcher_prefers_every_real_route_to_the_catch_all():
    from localdev.chalice_local import GreedyRouteMatcher

    matcher = GreedyRouteMatcher(
        ["/", "/account", "/account/email", "/link/{step}", "/{proxy+}", "/api/{rest+}"]
    )
    assert matcher.match_route("/").route == "/"
    assert matcher.match_route("/account/email/").route == "/account/email"
    assert matcher.match_route("/link/recover").captured == {"step": "recover"}
    found = matcher.match_route("/a/b/c?q=1")
    assert (found.route, found.captured, found.query_params) == (
        "/{proxy+}",
        {"proxy": "a/b/c"},
        {"q": ["1"]},
    )
    assert matcher.match_route("/api/x/y").captured == {"rest": "x/y"}  # deeper prefix first
    assert matcher.match_route("/api").route == "/{proxy+}"


def test_the_support_desk_finds_a_refusal_and_its_sign_in_from_the_pages_reference(
    browser, logged, tmp_path, capsys
):
    import json

    import manage

    page = _no_match(browser)
    (reference,) = references_on(page.body)
    log = tmp_path / "stack.log"
    log.write_text("\n".join(json.dumps(r) for r in logged.records) + "\n")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({"app_name": "nrcme-signin", "stages": {"test": {}}}))
    capsys.readouterr()
    code = manage.main(
        [
            "--stage",
            "test",
            "--config",
            str(config_path),
            "--json",
            "trace",
            reference,
            "--log-file",
            str(log),
        ]
    )
    found = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["event"] for r in found["lines"]] == ["link_no_match_shown"]
    assert "link_refused_no_match" in [r["event"] for r in found["related"]]
