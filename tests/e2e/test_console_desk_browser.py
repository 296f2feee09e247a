"""The FAQ's support cases through the support console, in Chromium, against `make run`'s
stack on free ports (`free_stack`): the demo accounts and the demo staff (agent, lead,
viewer) sign in at the local Login.gov by email. Each form is checked with axe-core, and
its confirmation and done pages are saved at 375 px and 1280 px in test-artifacts/e2e/.
The rules behind each step are tested through the routes in tests/test_console_desk.py.
"""

from __future__ import annotations

import requests

from localdev.idp import sub_for_emails
from tests.support.e2e import ARTIFACTS, TYPED_EMAILS, assert_accessible

AGENT, LEAD, VIEWER = "agent@desk.example.gov", "lead@desk.example.gov", "viewer@desk.example.gov"
FRAUD = "https://schemas.login.gov/secevent/risc/event-type/authorization-fraud-detected"


def sign_in(page, stack, emails: list[str], start: str, lands: str) -> None:
    """Through the stack's local Login.gov with these emails; waits for the page it lands on."""
    TYPED_EMAILS.update(emails)
    page.goto(start)
    page.wait_for_url(stack.login_gov + "/**")
    page.get_by_label("Email addresses on this Login.gov account").fill("\n".join(emails))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(lands + "**")


def staff(new_page, stack, email: str):
    page = new_page()
    sign_in(page, stack, [email], stack.console + "/login", stack.console + "/home")
    return page


def person(new_page, stack, emails: list[str]):
    """A person at the examiners' site: their page after the sign-in."""
    page = new_page()
    sign_in(page, stack, emails, stack.app + "/login", stack.app + "/")
    return page


def shots(page, name: str) -> None:
    """The page at a phone's width and a desk's, where the other browser tests keep theirs."""
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"desk-{name}-{width}.png"), full_page=True)


def confirm(page, name: str, ticket: str, reason: str) -> None:
    """On a confirmation page: check it, keep its pictures, give ticket and reason, confirm."""
    assert page.get_by_role("heading", name="Confirm:").is_visible()
    assert_accessible(page)
    shots(page, f"{name}-confirm")
    page.get_by_label("Ticket reference").fill(ticket)
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Done:").is_visible(), page.content()[:2000]
    assert_accessible(page)
    shots(page, f"{name}-done")


def test_a_shared_office_address_set_email_by_an_agent_then_clear_shared_by_a_supervisor(
    new_page, free_stack
):
    stack = free_stack
    agent = staff(new_page, stack, AGENT)
    # Grace (1000000007) gets an address of her own; June's record keeps the office's.
    agent.goto(stack.console + "/people/1000000007/set-email")
    assert agent.get_by_text("shared.office@example.com").first.is_visible()
    assert_accessible(agent)
    agent.get_by_label("Primary", exact=True).check()
    agent.get_by_label("New address").fill("grace.office@example.org")
    agent.get_by_role("button", name="Continue").click()
    agent.wait_for_load_state()
    assert agent.get_by_text("grace.office@example.org").first.is_visible()
    confirm(agent, "set-email", "SD-2001", "verified by a call back to the office")
    assert agent.get_by_text("is now grace.office@example.org").is_visible()

    # An agent cannot clear it: that lets an address link a record again.
    agent.goto(stack.console + "/people/1000000006/clear-shared")
    assert agent.get_by_role("heading", name="You cannot use this page").is_visible()
    assert_accessible(agent)

    lead = staff(new_page, stack, LEAD)
    lead.goto(stack.console + "/people/1000000006/clear-shared")
    lead.get_by_label("The once-shared address").fill("shared.office@example.com")
    lead.get_by_role("button", name="Continue").click()
    lead.wait_for_load_state()
    confirm(lead, "clear-shared", "SD-2002", "June verified by phone")
    assert lead.get_by_text("is cleared").is_visible()

    june = person(new_page, stack, ["shared.office@example.com"])
    assert june.url == stack.app + "/account"
    assert june.get_by_text("1000000006").is_visible()


def test_a_lost_login_gov_account_is_unlinked_and_the_person_links_their_new_one(
    new_page, free_stack
):
    stack = free_stack
    old = person(new_page, stack, ["dr.alice.moreno@example.com"])
    assert old.url == stack.app + "/account" and old.get_by_text("1000000001").is_visible()

    agent = staff(new_page, stack, AGENT)
    agent.goto(stack.console + "/people/1000000001/unlink")
    assert_accessible(agent)
    agent.get_by_label("The person lost their Login.gov account").check()
    agent.get_by_role("button", name="Continue").click()
    agent.wait_for_load_state()
    assert agent.get_by_text("dr.alice.moreno@example.com").first.is_visible()
    confirm(agent, "unlink-lost-account", "SD-2003", "lost phone; identity checked")

    # A new Login.gov account (another set of emails: another identity) links by email.
    new = person(new_page, stack, ["dr.alice.moreno@example.com", "alice.new@example.net"])
    assert new.url == stack.app + "/account"
    assert new.get_by_text("1000000001").is_visible()
    assert new.get_by_text("is now linked to Login.gov").is_visible()


def test_someone_elses_login_gov_account_is_unlinked_barred_and_reported_to_login_gov(
    new_page, free_stack
):
    stack = free_stack
    emails = ["bashir.okafor.md@example.com"]
    intruder = person(new_page, stack, emails)
    assert intruder.get_by_text("1000000002").is_visible()

    agent = staff(new_page, stack, AGENT)
    agent.goto(stack.console + "/people/1000000002/unlink?mode=not-owner")
    assert agent.get_by_label("Also tell Login.gov").is_checked()
    confirm(agent, "unlink-not-owner", "SD-2004", "the examiner says it is not theirs")
    assert agent.get_by_text("Login.gov was told").is_visible()

    received = requests.get(stack.login_gov + "/test/security-events", timeout=10).json()
    told = [e for e in received if e["event_type"] == FRAUD]
    assert [e["sub"] for e in told] == [sub_for_emails(emails)]

    again = new_page()
    sign_in(again, stack, emails, stack.app + "/login", stack.app + "/")
    heading = "This Login.gov account cannot be linked to that registry account"
    assert again.get_by_role("heading", name=heading).is_visible()


def test_a_viewer_cannot_reach_a_change(new_page, free_stack):
    viewer = staff(new_page, free_stack, VIEWER)
    for operation in ("unlink?mode=lost-account", "disable", "set-email", "clear-shared"):
        viewer.goto(free_stack.console + f"/people/1000000003/{operation}")
        assert viewer.get_by_role("heading", name="You cannot use this page").is_visible()
    assert_accessible(viewer)
    shots(viewer, "viewer-refused")


def test_a_removed_staff_members_next_click_signs_them_out(new_page, free_stack):
    stack = free_stack
    lead = staff(new_page, stack, LEAD)
    lead.goto(stack.console + "/staff")
    lead.get_by_label("Email", exact=True).fill("temp.agent@desk.example.gov")
    lead.get_by_label("Role", exact=True).select_option("agent")
    lead.get_by_role("button", name="Continue").click()
    lead.get_by_label("Reason").fill("covering the late shift")
    lead.get_by_role("button", name="Confirm").click()
    lead.wait_for_url(stack.console + "/staff?done=added")

    temp = staff(new_page, stack, "temp.agent@desk.example.gov")
    temp.goto(stack.console + "/people/1000000003/disable")
    assert temp.get_by_role("heading", name="Confirm:").is_visible()

    lead.goto(stack.console + "/staff")
    lead.get_by_role("button", name="Remove temp.agent@desk.example.gov").click()
    lead.get_by_label("Reason").fill("shift over")
    lead.get_by_role("button", name="Confirm").click()
    lead.wait_for_url(stack.console + "/staff?done=removed")

    temp.get_by_label("Ticket reference").fill("SD-2005")
    temp.get_by_label("Reason").fill("asked by the examiner")
    temp.get_by_role("button", name="Confirm").click()
    temp.wait_for_load_state()
    # Their sessions ended with their staff record: this click finds none, and changes nothing.
    assert temp.get_by_role("heading", name="Sign in to continue").is_visible()
    assert not any(c["name"].endswith("nr_desk") for c in temp.context.cookies())
    assert_accessible(temp)
    lead.goto(stack.console + "/people/1000000003/enable")
    assert lead.get_by_text("already off").is_visible()  # the disable was never made
