"""What the browser tests (tests/e2e) share: the stack's addresses, the secrets the browser
saw (for the privacy check at the end of the run), sign-in at the local Login.gov, axe-core,
and the local mailbox."""

from __future__ import annotations

import re
import shutil
import time

import pytest

from tests.support import PROJECT_DIR

ROOT = PROJECT_DIR
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
APP = "http://127.0.0.1:8000"
MAILBOX = "http://127.0.0.1:8025/"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Every secret the browser saw (codes, states, cookies, typed emails): the privacy check
# at the end of the run looks for each of them in the stack's logs.
SEEN_SECRETS: set[str] = set()
TYPED_EMAILS: set[str] = set()


def record_request(request) -> None:
    from urllib.parse import parse_qs, urlsplit

    for name, values in parse_qs(urlsplit(request.url).query).items():
        if name in ("code", "state", "nonce"):
            SEEN_SECRETS.update(v for v in values if len(v) >= 8)


def sign_in_at_local_login_gov(page, emails: list[str], *, start: str = APP + "/login"):
    TYPED_EMAILS.update(emails)
    page.goto(start)
    page.wait_for_url("http://127.0.0.1:8001/**")
    page.get_by_label("Email addresses on this Login.gov account").fill("\n".join(emails))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()
    time.sleep(0.05)


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def assert_accessible(page) -> None:
    """axe-core on the current page: no serious or critical violations (WCAG 2.1 A/AA)."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `npm ci` (make test does)")
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{page.url}: " + "; ".join(bad)


def newest_code_for(page, address: str) -> str:
    """Open the local mailbox in a tab and read the newest code sent to `address`."""
    mailbox = page.context.new_page()
    mailbox.goto(MAILBOX)
    for article in mailbox.locator("article").all():
        if address.lower() in article.inner_text().lower():
            match = re.search(r"\b(\d{6})\b", article.locator("pre").inner_text())
            if match:
                mailbox.close()
                return match.group(1)
    mailbox.close()
    raise AssertionError(f"no code for {address} in the local mailbox")
