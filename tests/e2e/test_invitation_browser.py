"""In Chromium, against a stack on free ports (`free_stack`): the migration campaign's
invitation, read in the local mailbox, leads a never-linked examiner to /help (the deadline,
the step pictures) and from there through the local Login.gov to a linked account.

The campaign runs as ops (and the daily function) run it: `manage.py --stage local campaign
run` against the stack, with the deadline the stack announced. Screenshots go to
test-artifacts/screenshots/ (invitation-NAME-1280.png, invitation-NAME-375.png).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date

from chalicelib import help_pictures
from tests.support.e2e import ROOT, TYPED_EMAILS, assert_accessible

SHOTS = ROOT / "test-artifacts" / "screenshots"
# A demo examiner with two registry addresses, mailed by the campaign (active, never
# linked, neither address shared); no other test links it in this module's own stack.
NR_NUMBER = "1000000002"
ADDRESSES = ["b.okafor@example.org", "bashir.okafor.md@example.com"]


def stack_deadline(free_stack) -> date:
    """The deadline the stack's banner announced (make run plans one 90 days out)."""
    log = free_stack.log_path.read_text()
    found = re.search(r"Migration campaign: deadline (\d{4}-\d{2}-\d{2});", log)
    assert found, "the stack announced a campaign deadline"
    return date.fromisoformat(found.group(1))


def run_campaign(stack, deadline: date) -> str:
    """`manage.py --stage local campaign run` against this stack (its ports, its deadline)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOGIN_GOV_", "TABLE_PREFIX", "APP_", "HMAC_", "MAIL_"))
    }
    env.update(
        APP_BASE_URL=stack.app,
        AWS_ENDPOINT_URL=stack.env["AWS_ENDPOINT_URL"],
        CAMPAIGN_DEADLINE=deadline.isoformat(),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "--stage", "local", "campaign", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def shoot(page, name: str) -> None:
    """Full-page screenshots at 1280 and 375 px wide; the viewport goes back to 1280."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(SHOTS / f"invitation-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 720})


def read_invitation(page, stack, address: str) -> str:
    """The invitation to `address`, as the local mailbox shows it (it refreshes itself
    every 10 s, so waiting for the article waits for the outbox worker)."""
    page.goto(stack.mailbox)
    article = page.locator("article", has_text=address).filter(
        has_text="Link your National Registry account to Login.gov by"
    )
    article.first.wait_for(timeout=30000)
    assert article.count() == 1, "one invitation, however the outbox retried"
    return article.first.locator("pre").inner_text()  # the body, without the To: line


def test_the_invitation_leads_through_help_with_pictures_to_a_linked_account(new_page, free_stack):
    stack = free_stack
    deadline = stack_deadline(stack)
    in_words = f"{deadline:%B} {deadline.day}, {deadline.year}"
    summary = run_campaign(stack, deadline)
    assert re.search(r"wave 0: [1-9]\d* mails queued", summary), summary

    page = new_page()
    mail = read_invitation(page, stack, ADDRESSES[0])
    assert f"Link your National Registry account to Login.gov by {in_words}" in mail
    assert f"must be linked to a Login.gov account by {in_words}" in mail
    assert NR_NUMBER in mail
    for address in ADDRESSES:  # which addresses to use at Login.gov
        assert address in mail
    # The mail's links, as the mailbox shows them: the help page and sign-in on this stack.
    links = re.findall(r"https?://[^\s)<>\"]+", mail)
    assert stack.app + "/help" in links, mail
    assert stack.app + "/" in links, mail

    page.goto(stack.app + "/help")  # the mail's link, followed as a reader clicks it
    assert page.url == stack.app + "/help"
    assert page.get_by_role("heading", level=1).is_visible()
    assert page.locator(".deadline").first.inner_text() == f"Link your account by {in_words}."
    pictures = page.locator("img.step-picture")
    assert pictures.count() == len(help_pictures.STEPS)
    for picture in pictures.all():
        picture.scroll_into_view_if_needed()  # they load lazily, as a reader scrolls
        picture.evaluate(
            "img => img.complete || new Promise(done => img.onload = img.onerror = done)"
        )
        width = picture.evaluate("img => img.naturalWidth")
        assert width > 0, picture.get_attribute("src")
        assert picture.get_attribute("alt")
    assert_accessible(page)
    shoot(page, "help")

    # Sign in from help, at the local Login.gov, with the address the invitation named.
    TYPED_EMAILS.add(ADDRESSES[0])
    page.goto(stack.app + "/")  # the mail's "sign in" link
    landing = page.locator(".deadline").first.inner_text()
    assert landing == f"Link your registry account to Login.gov by {in_words}."
    assert_accessible(page)
    shoot(page, "landing")
    page.get_by_role("link", name="Sign in with Login.gov").first.click()
    page.wait_for_url(stack.login_gov + "/**")
    page.get_by_label("Email addresses on this Login.gov account").fill(ADDRESSES[0])
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(stack.app + "/account")
    page.get_by_text("now linked to Login.gov").first.wait_for()
    assert NR_NUMBER in page.locator("main").inner_text()
    assert_accessible(page)
    shoot(page, "linked")
