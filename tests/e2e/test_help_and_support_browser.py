"""In Chromium, against `make run`: help that follows the FAQ, reached from every refusal page;
the support desk on each of them and in every mail; the 404 page; the signed-in header; the
Login.gov reminder after an email change; touch targets; screenshots at 1280 and 375 px.

Screenshots go to test-artifacts/screenshots/ (NAME-1280.png, NAME-375.png).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from chalicelib.config import default
from tests.support.e2e import (
    APP,
    MAILBOX,
    ROOT,
    TYPED_EMAILS,
    assert_accessible,
    newest_code_for,
    sign_in_at_local_login_gov,
)

DEFAULT_SUPPORT_EMAIL = default("SUPPORT_EMAIL")
DEFAULT_SUPPORT_HOURS = default("SUPPORT_HOURS")
DEFAULT_SUPPORT_PHONE = default("SUPPORT_PHONE")

SHOTS = ROOT / "test-artifacts" / "screenshots"
LOCAL_LOGIN_GOV_ACCOUNT = "http://127.0.0.1:8001/account"  # the local issuer + "account"
# Accounts of this file only, imported into the running stack as ops would (the demo
# accounts serve the refusal cases and other tests' first sign-ins).
EXTRA_ACCOUNTS = """\
nr_number,first_name,last_name,role,primary_email,secondary_email,legacy_username,status
1000000101,Ingrid,Larsen,medical_examiner,ingrid.larsen@faa.gov,,ilarsen,active
1000000102,Omar,Haddad,medical_examiner,omar.haddad@example.com,,ohaddad,active
"""


def manage(*args: str) -> subprocess.CompletedProcess:
    """manage.py --stage local against the running stack (its stage config, not the tests')."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOGIN_GOV_", "TABLE_PREFIX", "APP_", "HMAC_", "MAIL_"))
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "--stage", "local", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def extra_accounts(stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("accounts") / "accounts.csv"
    path.write_text(EXTRA_ACCOUNTS)
    manage("import-accounts", str(path))


def shoot(page, name: str) -> None:
    """Full-page screenshots at 1280 and 375 px wide; the viewport goes back to 1280."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 720})


# Interactive targets a finger aims at: buttons, the header's links, and links that stand
# alone in their paragraph or list item (links inside running text are exempt, WCAG 2.5.5).
TARGETS = """() => {
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const standalone = el => {
    if (el.matches('button, .button, nav a')) return true;
    const block = el.closest('p, li, dd, dt, div, h1, h2, h3');
    return !!block && block.innerText.trim() === el.innerText.trim();
  };
  return [...document.querySelectorAll('header a, header button, main a, main button')]
    .filter(el => shown(el) && standalone(el))
    .map(el => ({text: el.innerText.trim(), height: el.getBoundingClientRect().height}));
}"""


def assert_touch_targets(page) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    targets = page.evaluate(TARGETS)
    small = [t for t in targets if t["height"] < 44]
    page.set_viewport_size({"width": 1280, "height": 720})
    assert targets, page.url
    assert small == [], f"{page.url}: targets under 44 px at 375 px wide: {small}"


def assert_names_support(page) -> None:
    main = page.locator("main")
    assert main.get_by_role("link", name=DEFAULT_SUPPORT_PHONE).first.is_visible()
    assert main.get_by_role("link", name=DEFAULT_SUPPORT_EMAIL).first.is_visible()
    assert DEFAULT_SUPPORT_HOURS in main.inner_text()
    footer = page.locator("footer")
    assert footer.get_by_role("link", name=DEFAULT_SUPPORT_PHONE).is_visible()
    assert footer.get_by_role("link", name="National Registry support page").is_visible()


# --- help from the landing page and the header --------------------------------------------------


def test_landing_page_advises_on_the_email_before_sign_in_and_leads_to_help(page):
    page.goto(APP + "/")
    advice = page.get_by_text("Do not use a .gov, .mil or .edu email address")
    button = page.locator("main").get_by_role("link", name="Sign in with Login.gov")
    assert advice.is_visible()
    assert advice.bounding_box()["y"] < button.bounding_box()["y"]
    assert_touch_targets(page)
    shoot(page, "landing")
    page.get_by_role("link", name="Step by step: create your Login.gov account and link it").click()
    page.wait_for_url(APP + "/help#create-account")
    assert page.get_by_role(
        "heading", name="Create your Login.gov account and link it"
    ).is_visible()


def test_help_page_from_the_header_follows_the_faq(page):
    page.goto(APP + "/")
    page.locator("header").get_by_role("link", name="Help").click()
    page.wait_for_url(APP + "/help")
    assert page.get_by_role("heading", name="Help with signing in", level=1).is_visible()
    # The FAQ's five steps (the section's second list is the no-match path).
    steps = page.locator("#create-account ol.steps").first.locator("li")
    assert steps.count() == 5
    assert "primary" in steps.nth(0).inner_text() and "secondary" in steps.nth(0).inner_text()
    assert page.get_by_text("Do not use a .gov, .mil or .edu address.").is_visible()
    assert page.get_by_text("Do not use an address you share with anyone").is_visible()
    assert page.locator("#contact").get_by_role("link", name=DEFAULT_SUPPORT_PHONE).is_visible()
    assert (
        page.locator("#change-email")
        .get_by_role("link", name="Login.gov account")
        .get_attribute("href")
        == LOCAL_LOGIN_GOV_ACCOUNT
    )
    assert_accessible(page)
    assert_touch_targets(page)
    shoot(page, "help")


# --- every refusal page: help, the support desk, a reference ----------------------------------


def _no_match(page, chromium):
    sign_in_at_local_login_gov(page, ["somebody.new@example.net"])
    page.wait_for_url(APP + "/link/no-match")
    return page


def _two_accounts(page, chromium):
    sign_in_at_local_login_gov(page, ["hana.sato@example.com", "d.ivanov@example.com"])
    return page


def _already_linked(page, chromium):
    sign_in_at_local_login_gov(page, ["compliance@saferoads.example.org"])
    other = chromium.new_context(bypass_csp=True).new_page()
    sign_in_at_local_login_gov(
        other, ["compliance@saferoads.example.org", "second.screener@example.net"]
    )
    return other


def _disabled(page, chromium):
    sign_in_at_local_login_gov(page, ["d.ivanov@example.com"])
    return page


def _removed(page, chromium):
    sign_in_at_local_login_gov(page, ["eve.walsh@example.org"])
    return page


def _shared_address(page, chromium):
    sign_in_at_local_login_gov(page, ["shared.office@example.com"])
    return page


def _sign_in_spent(page, chromium):
    # A callback whose state this browser never started (or already used): a stale tab.
    # Login.gov's answer names its issuer (RFC 9207), as the stand-in's does.
    page.goto(
        APP
        + "/auth/callback?code="
        + "c" * 43
        + "&state="
        + "s" * 43
        + "&iss=http%3A%2F%2F127.0.0.1%3A8001%2F"
    )
    return page


def _cancelled(page, chromium):
    page.goto(APP + "/login")
    page.wait_for_url("http://127.0.0.1:8001/**")
    page.get_by_role("button", name="Cancel and return").click()
    page.wait_for_load_state()
    return page


REFUSALS = {
    "no-match": (
        _no_match,
        "We could not find a registry account for your Login.gov email",
        "no-match",
        "“We could not find a registry account for your Login.gov email”",
    ),
    "two-accounts": (
        _two_accounts,
        "Your email matches more than one registry account",
        "two-accounts",
        "“Your email matches more than one registry account”",
    ),
    "already-linked": (
        _already_linked,
        "This registry account is already linked to another Login.gov account",
        "already-linked",
        "“This registry account is already linked to another Login.gov account”",
    ),
    "disabled": (
        _disabled,
        "This registry account is not active",
        "not-active",
        "“This registry account is not active”",
    ),
    # A removed account holds no address, but the person is told it was removed (issue 19).
    "removed": (
        _removed,
        "Your registry account is no longer active",
        "removed",
        "“Your registry account is no longer active”",
    ),
    "cancelled": (
        _cancelled,
        "You cancelled signing in",
        "cancelled",
        "“You cancelled signing in”",
    ),
    "shared-address": (
        _shared_address,
        "Your email matches more than one registry account",
        "shared-address",
        "Your email address is, or was, shared with a colleague",
    ),
    "sign-in-spent": (
        _sign_in_spent,
        "Your sign-in took too long or was already finished",
        "sign-in",
        "Sign in after your accounts are linked",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_page_names_support_and_a_reference_and_leads_to_its_help(
    page, chromium, case
):
    reach, heading, anchor, help_heading = REFUSALS[case]
    refused = reach(page, chromium)
    assert refused.get_by_role("heading", name=heading, level=1).is_visible()
    assert_names_support(refused)
    reference = refused.locator("main .reference").inner_text()
    assert re.fullmatch(r"[0-9a-f]{8}", reference)
    assert_accessible(refused)
    assert_touch_targets(refused)
    shoot(refused, f"refusal-{case}")
    refused.locator("main .support").get_by_role("link", name=re.compile("^Help")).click()
    refused.wait_for_url(f"{APP}/help#{anchor}")
    section = refused.get_by_role("heading", name=help_heading, level=2)
    assert section.is_visible() and section.bounding_box()["y"] < 800
    if refused is not page:
        refused.context.close()


def test_the_stuck_cases_say_what_to_do(page, chromium):
    """No longer reading any registry address (no-match and code pages); a lost Login.gov
    account (already-linked page)."""
    _no_match(page, chromium)
    assert page.get_by_text(
        "If you no longer read any of your registry email addresses"
    ).is_visible()
    other = _already_linked(page, chromium)
    assert other.get_by_text(
        "If you lost your old Login.gov account and made a new one:"
    ).is_visible()
    other.context.close()


def test_an_unknown_path_is_the_404_page_with_a_link_home(page):
    for path in ("/no/such/page", "/Account", "/favicon.ico"):
        response = page.goto(APP + path)
        assert response.status == 404, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert page.get_by_role("heading", name="Page not found").is_visible()
    assert_accessible(page)
    shoot(page, "not-found")
    page.get_by_role("link", name="Go to the National Registry sign-in page").click()
    page.wait_for_url(APP + "/")


# --- signed in: header, account page, email change, mail ---------------------------------------


def test_signed_in_header_and_home_page(page, extra_accounts):
    sign_in_at_local_login_gov(page, ["omar.haddad@example.com"])
    page.wait_for_url(APP + "/account")
    for path in ("/", "/help", "/no-such-page"):
        page.goto(APP + path)
        header = page.locator("header")
        assert header.get_by_role("link", name="Your account").is_visible(), path
        assert header.get_by_role("link", name="Sign out").is_visible(), path
        assert header.get_by_role("link", name="Sign in with Login.gov").count() == 0, path
    page.goto(APP + "/")
    main = page.locator("main")
    assert main.get_by_role(
        "heading", name="You are signed in to the National Registry"
    ).is_visible()
    main.get_by_role("link", name="Your account").click()
    page.wait_for_url(APP + "/account")
    assert page.get_by_text("1000000102").is_visible()
    assert_touch_targets(page)


def test_email_change_reminds_to_update_login_gov_and_every_mail_names_support(
    page, extra_accounts
):
    sign_in_at_local_login_gov(page, ["ingrid.larsen@faa.gov"])
    page.wait_for_url(APP + "/account")
    record = page.locator("dl.record")
    assert "Login.gov email" in record.inner_text()
    assert "ingrid.larsen@faa.gov" in record.locator("dd").nth(6).inner_text()
    assert_accessible(page)
    assert_touch_targets(page)
    shoot(page, "account")
    sent = manage("send-reminders")  # Ingrid's primary is a .gov address
    assert re.search(r"sent [1-9]", sent.stdout), sent.stdout + sent.stderr

    page.get_by_role("link", name="Change your primary email").click()
    page.wait_for_url(APP + "/account/email")
    TYPED_EMAILS.add("ingrid.home@example.net")
    page.get_by_label("New primary email address").fill("ingrid.home@example.net")
    page.get_by_role("button", name="Send a code to my new primary address").click()
    page.get_by_role("heading", name="Enter your code").wait_for()
    page.get_by_label("6-digit code").fill("12 34 5x")  # a typo costs no try
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_text("This did not count as a try").is_visible()
    code = newest_code_for(page, "ingrid.home@example.net")
    page.get_by_label("6-digit code").fill(f"{code[:3]} {code[3:]}")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Your email addresses are updated").wait_for()
    reminder = page.get_by_role("region", name="Now change your email at Login.gov too")
    assert reminder.is_visible()
    assert "Your Login.gov account used ingrid.larsen@faa.gov" in reminder.inner_text()
    assert (
        reminder.get_by_role("link", name="Go to your Login.gov account").get_attribute("href")
        == LOCAL_LOGIN_GOV_ACCOUNT
    )
    assert_accessible(page)
    shoot(page, "email-changed")

    mailbox = page.context.new_page()
    mailbox.goto(MAILBOX)
    bodies = {}
    for article in mailbox.locator("article").all():
        text = article.inner_text()
        if "ingrid" in text.lower():
            bodies.setdefault(article.locator("h2").inner_text(), text)  # newest first
    mailbox.close()
    assert set(bodies) >= {
        "Your National Registry account is now linked to Login.gov",
        "Change your National Registry primary email to a personal address",
        "Confirm your new National Registry email address",
        "The email addresses on your National Registry account changed",
    }
    for subject, text in bodies.items():
        assert DEFAULT_SUPPORT_PHONE in text and DEFAULT_SUPPORT_EMAIL in text, subject
        assert DEFAULT_SUPPORT_HOURS in text, subject
    notice = bodies["The email addresses on your National Registry account changed"]
    assert "Change it at Login.gov too" in notice and LOCAL_LOGIN_GOV_ACCOUNT in notice


def test_a_recovery_code_mail_names_support(page, extra_accounts):
    sign_in_at_local_login_gov(page, ["omar.personal@example.net"])
    page.wait_for_url(APP + "/link/no-match")
    TYPED_EMAILS.add("omar.haddad@example.com")
    page.get_by_label("Your registry primary or secondary email address").fill(
        "omar.haddad@example.com"
    )
    page.get_by_role("button", name="Send me a code").click()
    page.get_by_role("heading", name="Enter your code").wait_for()
    assert page.get_by_text(
        "No longer read that mailbox, or any of your registry email addresses?"
    ).is_visible()
    mailbox = page.context.new_page()
    mailbox.goto(MAILBOX)
    article = (
        mailbox.locator("article", has_text="Your National Registry code")
        .filter(has_text="omar.haddad@example.com")
        .first
    )
    text = article.inner_text()
    mailbox.close()
    assert DEFAULT_SUPPORT_PHONE in text and DEFAULT_SUPPORT_EMAIL in text


def test_remove_and_swap_ask_first(page, extra_accounts):
    """Runs after the email change above: Ingrid has a personal primary and no secondary."""
    sign_in_at_local_login_gov(page, ["ingrid.larsen@faa.gov"])
    page.goto(APP + "/account/email")
    TYPED_EMAILS.add("ingrid.office@faa.gov")
    page.get_by_label("Secondary email address").fill("ingrid.office@faa.gov")
    page.get_by_role("button", name="Send a code to my new secondary address").click()
    page.get_by_role("button", name="Use ingrid.office@faa.gov anyway and send the code").click()
    page.get_by_label("6-digit code").fill(newest_code_for(page, "ingrid.office@faa.gov"))
    page.get_by_role("button", name="Continue").click()
    page.goto(APP + "/account/email")
    page.get_by_role("button", name="Remove my secondary email ingrid.office@faa.gov").click()
    assert page.get_by_role(
        "heading", name="Remove ingrid.office@faa.gov from your account?"
    ).is_visible()
    assert_accessible(page)
    page.get_by_role("link", name="No, keep my email addresses as they are").click()
    page.wait_for_url(APP + "/account/email")
    assert "ingrid.office@faa.gov" in page.locator("dl.record").inner_text()
