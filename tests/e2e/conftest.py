"""The stack `make run` starts, and Debian's Chromium driven by Playwright.

On failure a screenshot and the page HTML are kept under test-artifacts/e2e/. When the last
browser test is done, whatever the order, the stack's log must hold none of the emails,
codes, states and cookies the browser saw (`logs_hold_no_secrets`).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.e2e import (
    ARTIFACTS,
    CHROMIUM,
    ROOT,
    SEEN_SECRETS,
    TYPED_EMAILS,
    record_request,
)

# The log of the stack this session started, once it was ready (empty: none was started).
STACK_LOG: list[Path] = []


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@contextlib.contextmanager
def running_stack(log_path: Path, *, moved: dict[str, str], dropped: tuple[str, ...]):
    """`python -m localdev.run`, exactly what `make run` runs, its output kept in `log_path`;
    `dropped` environment variables left out (the tests' own AWS and Login.gov settings),
    `moved` ones added. Stopped with Ctrl-C (SIGINT) as a person stops it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.run"],
        cwd=ROOT,
        env={**env, **moved},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()

    def pump():
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if line.strip() == "READY":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(180):
            pytest.fail(f"the stack did not become ready; see {log_path}")
        STACK_LOG.append(log_path)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have stopped on its own
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def stack():
    """The stack on `make run`'s fixed ports, so one at a time on this machine: a second
    checkout's browser tests wait for the lock instead of finding the ports taken."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open("/tmp/nrcme-e2e-stack.lock", "w") as lock:  # held for the session
        fcntl.flock(lock, fcntl.LOCK_EX)
        log_path = ARTIFACTS / "stack.log"
        with running_stack(
            log_path, moved={}, dropped=("AWS_", "LOGIN_GOV_", "TABLE_PREFIX", "APP_")
        ):
            yield log_path


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
    # Under the site's real CSP: axe-core is injected through the DevTools protocol
    # (page.evaluate), which the CSP does not govern, so nothing needs bypassing, and a
    # page or redirect the CSP would stop fails here as it would for a person.
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    page.on("request", record_request)
    yield page
    SEEN_SECRETS.update(c["value"] for c in context.cookies() if len(c["value"]) >= 8)
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        stem = ARTIFACTS / request.node.name.replace("/", "_")
        try:
            page.screenshot(path=f"{stem}.png", full_page=True)
            Path(f"{stem}.html").write_text(page.content())
        except Exception:  # noqa: BLE001, S110 - keep the original failure visible
            pass
    context.close()


def assert_logs_hold_no_secrets(log_path: Path) -> None:
    """The stack's logs hold no email address, code or token."""
    text = log_path.read_text()
    # The banner `make run` prints for the developer lists the demo emails on purpose;
    # everything else (import, provisioning, the app's own logs) is checked.
    banner = re.compile(r"^  National Registry sign-in is running.*?^READY$", re.M | re.S)
    assert banner.search(text), "the banner is where this test expects it"
    log = banner.sub("", text)
    assert "identity_linked" in log or "signin_returning" in log, "the app's logs were captured"
    with (ROOT / "localdev" / "demo_accounts.csv").open() as handle:
        emails = {
            e.lower()
            for row in csv.DictReader(handle)
            for e in (row["primary_email"], row["secondary_email"])
            if e
        }
    emails |= {e.lower() for e in TYPED_EMAILS}
    lowered = log.lower()
    leaked_emails = sorted(e for e in emails if e in lowered)
    assert leaked_emails == []
    assert SEEN_SECRETS, "the browser tests recorded codes, states and cookies"
    leaked = sorted(s[:6] + "…" for s in SEEN_SECRETS if s in log)
    assert leaked == []
    # One-time codes appear in mail bodies only, never in logs.
    mail_codes = set(re.findall(r"\bcode[^0-9]{0,40}(\d{6})\b", log, flags=re.I))
    assert mail_codes == set()


@pytest.fixture(scope="session", autouse=True)
def logs_hold_no_secrets():
    """After the last browser test, whatever the order: set up before `stack` (autouse), so
    torn down after it, when the stack has stopped and its log is complete. A leak is an
    error at the teardown of the session's last test, and the run exits non-zero."""
    yield
    for log_path in STACK_LOG:
        assert_logs_hold_no_secrets(log_path)


# --- the stack on free ports, beside any other ------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FreeStack:
    """The URLs of a stack started on free ports."""

    def __init__(self) -> None:
        app, console, login_gov, mailbox, moto = (_free_port() for _ in range(5))
        self.app = f"http://127.0.0.1:{app}"
        self.console = f"http://127.0.0.1:{console}"
        self.login_gov = f"http://127.0.0.1:{login_gov}"
        self.mailbox = f"http://127.0.0.1:{mailbox}/"
        self.env = {
            "APP_BASE_URL": self.app,
            "CONSOLE_BASE_URL": self.console,
            "LOCAL_LOGIN_GOV_PORT": str(login_gov),
            "LOCAL_MAILBOX_PORT": str(mailbox),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto}",
        }
        self.log_path = ARTIFACTS / "stack.log"  # free_stack names one per module


@pytest.fixture(scope="module")
def free_stack(request):
    """The stack as `stack` runs it, but every part on a free port (its settings move each
    one), so it needs no lock and disturbs no `make run` on this machine."""
    urls = FreeStack()
    urls.log_path = ARTIFACTS / f"stack-{request.module.__name__.rsplit('.', 1)[-1]}.log"
    with running_stack(
        urls.log_path,
        moved=urls.env,
        dropped=("AWS_", "LOGIN_GOV_", "TABLE_PREFIX", "APP_", "CONSOLE_", "LOCAL_"),
    ):
        yield urls


@pytest.fixture
def new_page(free_stack, chromium, request):
    """Pages of their own browser contexts (one person or staff member each), under the
    site's real CSP; on failure each one's screenshot and HTML are kept, like `page`'s."""
    contexts = []

    def open_page():
        context = chromium.new_context()
        contexts.append(context)
        opened = context.new_page()
        opened.set_default_timeout(15000)
        opened.on("request", record_request)
        return opened

    yield open_page
    failed = getattr(request.node, "rep_call", None)
    for number, context in enumerate(contexts):
        SEEN_SECRETS.update(c["value"] for c in context.cookies() if len(c["value"]) >= 8)
        if failed is not None and failed.failed:
            stem = ARTIFACTS / f"{request.node.name.replace('/', '_')}-{number}"
            try:
                for opened in context.pages:
                    opened.screenshot(path=f"{stem}.png", full_page=True)
                    Path(f"{stem}.html").write_text(opened.content())
            except Exception:  # noqa: BLE001, S110 - keep the original failure visible
                pass
        context.close()
