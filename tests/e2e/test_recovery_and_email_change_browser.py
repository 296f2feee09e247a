"""In Chromium, against `make run`: recover a link with a code read from the local mailbox,
then move a .gov primary email to a personal address and confirm it with a code."""

from __future__ import annotations

from tests.support.e2e import (
    APP,
    ARTIFACTS,
    assert_accessible,
    newest_code_for,
    sign_in_at_local_login_gov,
)


def test_recover_link_with_code_then_change_gov_primary(page):
    # Dana's registry primary is dana.ruiz@va.gov, but her Login.gov account
    # was made with a personal address the registry has never seen.
    sign_in_at_local_login_gov(page, ["dana.personal@example.net"])
    assert page.url == APP + "/link/no-match"
    assert_accessible(page)
    page.get_by_label("Your registry primary or secondary email address").fill("Dana.Ruiz@VA.gov")
    page.get_by_role("button", name="Send me a code").click()
    page.get_by_role("heading", name="Enter your code").wait_for()
    # Before Dana spends her code: which Login.gov account it links her record to.
    assert page.locator("main strong", has_text="dana.personal@example.net").is_visible()
    assert_accessible(page)
    page.get_by_label("6-digit code").fill(newest_code_for(page, "dana.ruiz@va.gov"))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(APP + "/account")
    assert page.get_by_text("1000000010").is_visible()
    assert page.get_by_text("Change your primary email to a personal address").is_visible()
    page.screenshot(path=str(ARTIFACTS / "recovered-account.png"), full_page=True)

    # The FAQ: change the .gov primary AFTER linking. The advice links to the form.
    page.get_by_role("link", name="Change your primary email").click()
    page.wait_for_url(APP + "/account/email")
    assert_accessible(page)
    page.get_by_label("New primary email address").fill("dana.personal@example.net")
    page.get_by_role("button", name="Send a code to my new primary address").click()
    page.get_by_role("heading", name="Enter your code").wait_for()
    page.get_by_label("6-digit code").fill(newest_code_for(page, "dana.personal@example.net"))
    page.get_by_role("button", name="Continue").click()
    page.goto(APP + "/account")
    record = page.locator("dl.record").inner_text()
    assert "dana.personal@example.net" in record
    assert "va.gov" not in record
    assert not page.get_by_text("Change your primary email to a personal address").is_visible()
    assert_accessible(page)
    page.screenshot(path=str(ARTIFACTS / "changed-primary.png"), full_page=True)


def test_a_form_posted_after_the_session_ended_leads_through_login_gov_back_to_it(page):
    """The session ends while a form is open (signed out in another tab): posting it sends
    the browser via /login to Login.gov, and back to the form once signed in. Chromium
    checks every redirect of a form submission against CSP form-action, so Login.gov's
    origin must be allowed there (the email-change form past the recent sign-in window
    takes the same way)."""
    # Grace (1000000007), whom no other browser test signs in.
    sign_in_at_local_login_gov(page, ["grace.kim@example.org"])
    page.wait_for_url(APP + "/account")
    page.goto(APP + "/account/email")
    other = page.context.new_page()  # another tab of the same browser signs out
    other.goto(APP + "/logout")
    other.wait_for_load_state()
    other.close()
    page.get_by_label("New primary email address").fill("grace.new@example.net")
    page.get_by_role("button", name="Send a code to my new primary address").click()
    page.wait_for_url("http://127.0.0.1:8001/**")  # Login.gov's sign-in, not a blocked form
    page.get_by_label("Email addresses on this Login.gov account").fill("grace.kim@example.org")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(APP + "/account/email")
    assert page.get_by_label("New primary email address").is_visible()
