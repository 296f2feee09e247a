"""The pictures in docs/support-desk-guide.md are screenshots of the real console, taken
here: running this test rewrites docs/images/desk/*.png (commit them), so the guide never
shows a page that is no longer there. Each picture is checked for the words the guide
points at before it is taken: a changed page fails this test instead of giving the guide a
wrong picture.

The console runs on a free port, served in this process by `chalice local`'s server against
moto and the local Login.gov (a free port too), as in test_console_person_browser.py; the
examiners' app answers the person's own sign-ins in-process (`browser`). The clock is the
fixed `clock`, so the times on the pages are the same every run. The rules behind each step
are tested through the routes in tests/test_console_desk.py and tests/test_console_person.py.
"""

from __future__ import annotations

import re
import struct

import pytest

from chalicelib import edge, logs
from tests.support import PROJECT_DIR
from tests.support.accounts import make_account
from tests.support.console import add_staff, console_on_a_free_port
from tests.support.e2e import assert_accessible

PICTURES = PROJECT_DIR / "docs" / "images" / "desk"
WIDTH, HEIGHT = 1280, 880
CLIENT_ID = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-desk-guide"
AGENT, LEAD = "agent@desk.example.gov", "lead@desk.example.gov"
OFFICE = "shared.office@example.com"
REFERENCE = "3f2a9c1d"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def console(aws, desk_table, idp, clock, monkeypatch):
    """The console on a free port, the clock fixed; its base URL."""
    with console_on_a_free_port(idp, monkeypatch, CLIENT_ID) as base:
        yield base


@pytest.fixture
def desk(chromium, console, idp):
    """Open a staff member's page: their own browser context, signed in; closed after."""
    contexts = []

    def open_as(email: str):
        context = chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(console + "/login")
        page.wait_for_url(idp.base.rstrip("/") + "/**")
        page.get_by_label("Email addresses on this Login.gov account").fill(email)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(console + "/home")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shoot(page, name: str, *shows: str) -> None:
    """The top of the page (WIDTH x HEIGHT) as docs/images/desk/NAME.png, once each text in
    `shows` is on the page and inside that part of it."""
    page.evaluate("window.scrollTo(0, 0)")
    for text in shows:
        found = page.get_by_text(text).first
        assert found.is_visible(), f"{name}: {text!r} is not on the page"
        box = found.bounding_box()
        assert box is not None and box["y"] + box["height"] <= HEIGHT, f"{name}: {text!r} is cut"
    assert_accessible(page)
    # A console page's own reference is its request's id, new every run: shown as one fixed
    # value so the picture does not change (the guide says what it is for, not its value).
    page.evaluate(
        "() => document.querySelectorAll('strong.reference')"
        ".forEach(r => { r.textContent = 'b7c41e20' })"
    )
    PICTURES.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(PICTURES / f"{name}.png"),
        full_page=False,
        caret="hide",
        animations="disabled",
    )
    data = (PICTURES / f"{name}.png").read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT) and len(data) < 150_000, (name, len(data))


def confirm(page, ticket: str, reason: str) -> None:
    page.get_by_label("Ticket reference").fill(ticket)
    page.get_by_label("Reason").fill(reason)


def test_signing_in_finding_a_person_and_the_shared_office_address(console, desk, chromium):
    make_account("1000000006", OFFICE, first_name="June", last_name="Park")
    make_account("1000000007", OFFICE, first_name="Grace", last_name="Lee")
    add_staff(AGENT, "agent")
    add_staff(LEAD, "supervisor")

    landing = chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    start = landing.new_page()
    start.goto(console + "/")
    shoot(start, "sign-in", "Sign in with Login.gov", "phishing-resistant authenticator")
    landing.close()

    agent = desk(AGENT)
    shoot(agent, "home", "Find a person", "Registry number, email, or name", "(Agent)")

    agent.get_by_label("Registry number, email, or name").fill(OFFICE)
    agent.get_by_role("button", name="Search").click()
    agent.wait_for_url(console + "/search?**")
    assert agent.locator("tbody tr").count() == 2
    shoot(agent, "search-shared", "2 people hold or used this address.", "primary email (shared)")

    agent.get_by_role("link", name="1000000007").click()
    agent.wait_for_url(console + "/people/1000000007")
    shoot(
        agent,
        "person-shared",
        "Why can’t they get in?",
        f"The primary address {OFFICE} is shared with 1000000006 (June Park)",
        "Correct an email address (set-email)",
    )

    agent.get_by_role("link", name="Correct an email address (set-email)").click()
    agent.wait_for_url(console + "/people/1000000007/set-email")
    agent.get_by_label("Primary", exact=True).check()
    agent.get_by_label("New address").fill("grace.lee@example.org")
    shoot(agent, "set-email-form", "Which address?", "New address")
    agent.get_by_role("button", name="Continue").click()
    agent.wait_for_load_state()
    confirm(agent, "SD-2001", "Grace Lee verified by a call back to the office")
    shoot(
        agent,
        "set-email-confirm",
        "Confirm: ",
        "grace.lee@example.org",
        "Ticket reference",
        "Reason",
    )
    agent.get_by_role("button", name="Confirm").click()
    agent.wait_for_load_state()
    shoot(agent, "set-email-done", "Done: ", "is now grace.lee@example.org")

    # June's record keeps the office's address: once-shared, a supervisor's to clear.
    agent.goto(console + "/people/1000000006")
    shoot(
        agent,
        "person-once-shared",
        "was shared with another account",
        "clear-shared",
        "Only a supervisor can clear a once-shared address: pass the ticket to a supervisor.",
    )
    agent.goto(console + "/people/1000000006/clear-shared")
    shoot(agent, "agent-cannot", "You cannot use this page")

    lead = desk(LEAD)
    lead.goto(console + "/people/1000000006")
    lead.get_by_role("link", name="Clear a once-shared address (clear-shared)").click()
    lead.get_by_label("The once-shared address").fill(OFFICE)
    lead.get_by_role("button", name="Continue").click()
    lead.wait_for_load_state()
    confirm(lead, "SD-2002", "June Park verified by phone")
    shoot(lead, "clear-shared-confirm", "Confirm: ", "was shared, and only this account holds")
    lead.get_by_role("button", name="Confirm").click()
    lead.wait_for_load_state()
    shoot(lead, "clear-shared-done", "Done: ", "is cleared")


def test_a_lost_login_gov_account_and_a_stale_confirmation(console, desk, browser):
    make_account(
        "1000000001", "dr.alice.moreno@example.com", first_name="Alice", last_name="Moreno"
    )
    add_staff(AGENT, "agent")
    assert browser.sign_in(["dr.alice.moreno@example.com"], sub="sub-old-phone").status == 302

    agent = desk(AGENT)
    agent.goto(console + "/people/1000000001")
    shoot(agent, "person-linked", "Linked to the Login.gov account", "Unlink the Login.gov account")
    agent.get_by_role("link", name="Unlink the Login.gov account").click()
    agent.get_by_label("The person lost their Login.gov account").check()
    shoot(agent, "unlink-form", "Why is the Login.gov account being unlinked?")
    agent.get_by_role("button", name="Continue").click()
    agent.wait_for_load_state()
    confirm(agent, "SD-2003", "lost her phone; identity checked by the desk's questions")
    shoot(
        agent,
        "unlink-lost-confirm",
        "Confirm: ",
        "Unlink this Login.gov account: dr.alice.moreno@example.com",
        "The person lost that Login.gov account",
    )

    # Meanwhile the account changes (a colleague corrects its secondary address): the
    # confirmation the agent has open is out of date, and nothing is changed.
    other = desk(AGENT)
    other.goto(console + "/people/1000000001/set-email")
    other.get_by_label("Secondary", exact=True).check()
    other.get_by_label("New address").fill("alice.home@example.net")
    other.get_by_role("button", name="Continue").click()
    other.wait_for_load_state()
    confirm(other, "SD-2009", "added her home address, verified by phone")
    other.get_by_role("button", name="Confirm").click()
    other.wait_for_load_state()
    assert other.get_by_role("heading", name="Done:").is_visible()

    agent.get_by_role("button", name="Confirm").click()
    agent.wait_for_load_state()
    shoot(
        agent,
        "stale",
        "Nothing was changed",
        "Account 1000000001 changed since the confirmation was shown",
        "look at it again and start over",
    )

    agent.goto(console + "/people/1000000001/unlink?mode=lost-account")
    agent.wait_for_load_state()
    confirm(agent, "SD-2003", "lost her phone; identity checked by the desk's questions")
    agent.get_by_role("button", name="Confirm").click()
    agent.wait_for_load_state()
    shoot(agent, "unlink-lost-done", "Done: ", "sign in at the examiners' site with their new")

    new = browser.sign_in(["dr.alice.moreno@example.com"], sub="sub-new-phone")
    assert new.status == 302, new.body[:300]


def test_someone_elses_login_gov_account_and_the_callers_reference(
    console, desk, browser, other_browser, idp, monkeypatch
):
    make_account(
        "1000000002", "bashir.okafor.md@example.com", first_name="Bashir", last_name="Okafor"
    )
    add_staff(AGENT, "agent")
    # Someone else's Login.gov account holds the examiner's address and linked first; the
    # examiner's own sign-in is then refused, and the page gives them a reference.
    emails = ["bashir.okafor.md@example.com"]
    assert other_browser.sign_in(emails, sub="sub-someone-else").status == 302
    with monkeypatch.context() as pinned:
        # The page's reference is the request's id: pinned, so the pictures are the same
        # every run (and the guide can quote it).
        pinned.setattr(edge, "set_request_id", lambda _: logs.set_request_id(REFERENCE + "-0"))
        refused = browser.sign_in(emails, sub="sub-bashir")
    assert refused.status == 409, refused.body[:300]
    assert re.findall(r'<strong class="reference">([^<]+)</strong>', refused.body) == [REFERENCE]
    reference = REFERENCE

    agent = desk(AGENT)
    agent.get_by_label("Registry number, email, or name").fill("okafor")
    agent.get_by_role("button", name="Search").click()
    agent.get_by_role("link", name="1000000002").click()
    agent.wait_for_url(console + "/people/1000000002")
    shoot(
        agent,
        "person-refused",
        "Another Login.gov account is linked to this record, and someone was refused at",
        f"(reference {reference}).",
        "If the caller is the owner, verify them, then unlink as not-owner.",
        "Linked to the Login.gov account",
    )
    agent.goto(console + "/people/1000000002/unlink?mode=not-owner")
    agent.wait_for_load_state()
    assert agent.get_by_label("Also tell Login.gov").is_checked()
    confirm(agent, "SD-2004", "the examiner says that Login.gov account is not theirs")
    shoot(agent, "unlink-not-owner-confirm", "not the owner's", "Also tell Login.gov")
    # Login.gov does not answer this time: the unlink stands, and the page says so.
    idp.faults["security_events_status"] = 503
    agent.get_by_role("button", name="Confirm").click()
    agent.wait_for_load_state()
    shoot(
        agent,
        "unlink-not-owner-done-tell-again",
        "Done: ",
        "is unlinked and barred from this record",
        "Done: do not repeat the change.",
        "Login.gov could not be reached just now (it answered 503). The unlink is done",
        "Tell Login.gov again",
    )
    idp.faults.clear()
    agent.get_by_role("button", name="Tell Login.gov again").click()
    agent.wait_for_load_state()
    shoot(agent, "unlink-not-owner-told", "Login.gov was told about sub-someone-else")

    # The guide sends a reference that is not on the person page to Trace, for an engineer
    # (no picture: what it shows is for them).
    agent.get_by_role("link", name="Trace a reference").click()
    agent.get_by_label("Reference").fill(reference)
    agent.get_by_role("button", name="Trace").click()
    agent.wait_for_url(console + "/trace?**")
    assert agent.get_by_label("Reference").input_value() == reference
    assert agent.get_by_text("--log-file FILE").is_visible()  # the local stage: no CloudWatch
    # A stage in AWS shows the queries, one line each, wrapped inside a phone's width too.
    from supportdesk.console import desk_ops

    monkeypatch.setattr(desk_ops, "stage", lambda: "prod")
    for width in (375, WIDTH):
        agent.set_viewport_size({"width": width, "height": HEIGHT})
        agent.reload()
        query = agent.locator("pre.query").first
        assert "\n| filter request_id like /^3f2a9c1d/\n" in query.inner_text()
        assert agent.evaluate("document.documentElement.scrollWidth") <= width

    owner = browser.sign_in(emails, sub="sub-bashir")
    assert owner.status == 302, owner.body[:300]
