"""The stack `make run` starts, and Debian's Chromium driven by Playwright.

On failure a screenshot and the page HTML are kept under test-artifacts/e2e/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
APP = "http://127.0.0.1:8000"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Every secret the browser saw (codes, states, cookies, typed emails): the privacy check
# at the end of the run looks for each of them in the stack's logs.
SEEN_SECRETS: set[str] = set()
TYPED_EMAILS: set[str] = set()


def _record_request(request) -> None:
    from urllib.parse import parse_qs, urlsplit

    for name, values in parse_qs(urlsplit(request.url).query).items():
        if name in ("code", "state", "nonce"):
            SEEN_SECRETS.update(v for v in values if len(v) >= 8)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack():
    """`python -m localdev.run`, exactly what `make run` runs; stopped with Ctrl-C (SIGINT)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "stack.log"
    log = log_path.open("w")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOGIN_GOV_", "TABLE_PREFIX", "APP_"))
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()

    def pump():
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if line.strip() == "READY":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(180):
        proc.kill()
        pytest.fail(f"make run did not become ready; see {log_path}")
    yield log_path
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run `make browser` (CI does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(stack, chromium, request):
    # bypass_csp: our pages allow no scripts at all, so axe-core could not be injected.
    context = chromium.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.on("request", _record_request)
    yield page
    SEEN_SECRETS.update(c["value"] for c in context.cookies() if len(c["value"]) >= 8)
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        stem = ARTIFACTS / request.node.name.replace("/", "_")
        try:
            page.screenshot(path=f"{stem}.png", full_page=True)
            Path(f"{stem}.html").write_text(page.content())
        except Exception:  # noqa: BLE001 - keep the original failure visible
            pass
    context.close()


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
