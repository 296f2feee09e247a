"""A person in Chromium signs in through the local Login.gov and lands on their account."""

from __future__ import annotations

from tests.support.e2e import APP, ARTIFACTS, assert_accessible, sign_in_at_local_login_gov


def test_landing_page_looks_like_a_government_service(page):
    page.goto(APP + "/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_text("An official website of the United States government").is_visible()
    assert page.get_by_role("link", name="Sign in with Login.gov").first.is_visible()
    assert_accessible(page)


def test_sign_in_with_primary_email_lands_on_linked_account(page):
    sign_in_at_local_login_gov(page, ["dr.alice.moreno@example.com"])
    assert page.url == APP + "/account"
    assert page.get_by_role(
        "heading", name="Your National Registry account", exact=True
    ).is_visible()
    assert page.get_by_text("1000000001").is_visible()
    assert page.get_by_text("is now linked to Login.gov").is_visible()
    page.screenshot(path=str(ARTIFACTS / "account-primary.png"), full_page=True)
    assert_accessible(page)


def test_sign_in_with_secondary_email_lands_on_linked_account(page):
    sign_in_at_local_login_gov(page, ["bashir.okafor.md@example.com"])
    assert page.url == APP + "/account"
    assert page.get_by_text("1000000002").is_visible()
    assert page.get_by_text("b.okafor@example.org").is_visible()


def test_gov_primary_gets_the_faq_advice(page):
    sign_in_at_local_login_gov(page, ["carmen.lee@fmcsa.dot.gov"])
    assert page.url == APP + "/account"
    assert page.get_by_text("Change your primary email to a personal address").is_visible()
    assert_accessible(page)


def test_cancel_at_login_gov(page):
    page.goto(APP + "/login")
    page.wait_for_url("http://127.0.0.1:8001/**")
    page.get_by_role("button", name="Cancel and return").click()
    assert page.get_by_role("heading", name="You cancelled signing in").is_visible()
    assert_accessible(page)


def test_logout_round_trip(page):
    sign_in_at_local_login_gov(page, ["hana.sato@example.com"])
    assert page.url == APP + "/account"
    page.get_by_role("link", name="Sign out").first.click()
    page.wait_for_url(APP + "/signed-out**")
    assert page.get_by_role("heading", name="You are signed out").is_visible()
    assert_accessible(page)
    page.goto(APP + "/account")
    assert page.url.startswith("http://127.0.0.1:8001/")  # sent to sign in again


def test_already_linked_to_someone_else_is_not_shared(page, chromium):
    sign_in_at_local_login_gov(page, ["compliance@saferoads.example.org"])
    assert page.url == APP + "/account"
    # A colleague with their own Login.gov account (another sub) uses the same address too.
    other = chromium.new_context(bypass_csp=True).new_page()
    sign_in_at_local_login_gov(other, ["compliance@saferoads.example.org", "colleague@example.net"])
    assert other.get_by_role(
        "heading", name="This registry account is already linked to another Login.gov account"
    ).is_visible()
    assert_accessible(other)
    other.context.close()


def test_emails_of_two_accounts_link_neither(page):
    sign_in_at_local_login_gov(page, ["hana.sato@example.com", "d.ivanov@example.com"])
    assert page.get_by_role(
        "heading", name="Your email matches more than one registry account"
    ).is_visible()
    assert_accessible(page)


def test_no_match_explains_and_offers_recovery(page):
    sign_in_at_local_login_gov(page, ["nobody.here@example.net"])
    assert page.url == APP + "/link/no-match"
    assert page.get_by_role("heading", name="Link with your registry email instead").is_visible()
    assert_accessible(page)


def test_back_after_signing_in_then_continue_keeps_the_session(page):
    """Back from the account page shows Login.gov's page of the finished sign-in; Continue
    there comes back with a spent state. The person stays signed in, with no error."""
    sign_in_at_local_login_gov(page, ["dr.alice.moreno@example.com"])
    assert page.url == APP + "/account"
    page.go_back()
    page.wait_for_url("http://127.0.0.1:8001/**")
    page.get_by_label("Email addresses on this Login.gov account").fill(
        "dr.alice.moreno@example.com"
    )
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(APP + "/account")
    assert page.get_by_role(
        "heading", name="Your National Registry account", exact=True
    ).is_visible()
    assert page.get_by_text("1000000001").is_visible()
    assert "could not complete" not in page.content()
    page.goto(APP + "/account")  # the session is intact
    assert page.url == APP + "/account"


def test_sign_in_then_cancel_while_signed_in_keeps_the_session(page):
    """Home, Sign in, Cancel at Login.gov: back on the account, still signed in."""
    sign_in_at_local_login_gov(page, ["dr.alice.moreno@example.com"])
    page.goto(APP + "/")
    sign_in = page.get_by_role("link", name="Sign in with Login.gov")
    if sign_in.count():
        sign_in.first.click()
    else:  # a home page that knows the person is signed in offers no sign-in link
        page.goto(APP + "/login")
    page.wait_for_url("http://127.0.0.1:8001/**")
    page.get_by_role("button", name="Cancel and return").click()
    page.wait_for_url(APP + "/account")
    assert page.get_by_role(
        "heading", name="Your National Registry account", exact=True
    ).is_visible()
    assert "cancelled" not in page.content()
    assert_accessible(page)
    page.goto(APP + "/account")
    assert page.url == APP + "/account"
