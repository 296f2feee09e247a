"""A viewer searches a person in the support console and reads why they cannot get in, in
Chromium: the search results, the person page and its diagnosis, axe-core clean, and
screenshots at 1280 and 375 px (test-artifacts/screenshots/console-*-WIDTH.png).

The console runs on a free port, served in this process by `chalice local`'s server against
moto (`aws`, `desk_table`) and the local Login.gov (`idp`, a free port too): none of
`make run`'s fixed ports is bound, so it runs beside a developer's stack. The console's
behaviour is tested through its routes in tests/test_console_search.py and
tests/test_console_person.py; this checks the pages work and are accessible in a browser.
"""

from __future__ import annotations

import pytest

from tests.support.accounts import make_account
from tests.support.console import add_staff, console_on_a_free_port
from tests.support.e2e import ARTIFACTS, ROOT, assert_accessible

SHOTS = ROOT / "test-artifacts" / "screenshots"
CLIENT_ID = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-desk-e2e"
VIEWER = "viewer@desk.example.gov"


@pytest.fixture
def console(aws, desk_table, idp, monkeypatch):
    """The console on a free port; its base URL."""
    with console_on_a_free_port(idp, monkeypatch, CLIENT_ID) as base:
        yield base


@pytest.fixture
def browser_page(chromium, request):
    """A Chromium page under the console's real CSP; on failure a screenshot and the HTML
    go to test-artifacts/e2e/ (as the `page` fixture's, which needs `make run`'s stack)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        (ARTIFACTS / f"{request.node.name}.html").write_text(page.content())
    context.close()


def screenshots(page, name: str) -> None:
    """Full-page screenshots at 1280 and 375 px wide; the viewport goes back to 1280."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_viewer_searches_a_shared_address_and_reads_the_diagnosis(console, idp, browser_page):
    page = browser_page
    make_account("1000000006", "front.desk@example.com", first_name="Fay", last_name="Ode")
    make_account("1000000007", "front.desk@example.com", first_name="Gil", last_name="Kim")
    add_staff(VIEWER, "viewer")

    page.goto(console + "/login")
    page.wait_for_url(idp.base.rstrip("/") + "/**")
    page.get_by_label("Email addresses on this Login.gov account").fill(VIEWER)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(console + "/home")
    assert "(Viewer)" in page.content()

    page.get_by_label("Registry number, email, or name").fill("Front.Desk@example.com")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(console + "/search?**")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    assert "primary email (shared)" in rows.nth(0).inner_text()
    assert_accessible(page)
    screenshots(page, "console-search")

    page.get_by_role("link", name="1000000006").click()
    page.wait_for_url(console + "/people/1000000006")
    assert page.get_by_role("heading", name="Why can’t they get in?").is_visible()
    first = page.locator("ol.findings li").first
    assert first.get_attribute("data-rule") == "shared_addresses"
    said = " ".join(first.inner_text().split())
    assert "The primary address front.desk@example.com is shared with 1000000007 (Gil Kim)" in said
    assert "Next step: Ask which person this is" in said
    assert_accessible(page)
    screenshots(page, "console-person")

    # The other holder is one link away, and says the same from its side.
    page.locator("dl.record").get_by_role("link", name="1000000007").click()
    page.wait_for_url(console + "/people/1000000007")
    assert "shared with 1000000006 (Fay Ode)" in page.locator("ol.findings").inner_text()
