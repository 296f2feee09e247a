"""Fixtures for one-time codes, recovery and email change: moto's SES and a request counter.

Import by name into a test module: `from tests.mail_fixtures import mailbox, calls, ...`.
The mail the app sends is read from moto's SES backend (what SES accepted), never from the
app's own bookkeeping.
"""

from __future__ import annotations

import os
import re

import boto3
import pytest
from botocore.stub import Stubber

from localdev import aws_calls
from tests.conftest import Browser, Page, parse_forms

CODE = re.compile(r"\b(\d{6})\b")


class Mailbox:
    """What moto's SES has accepted in this test, once the outbox is drained (the worker's
    part, which chalice's test client does not run by itself)."""

    @staticmethod
    def _backend():
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]

    @property
    def messages(self) -> list:
        from localdev.outbox_worker import drain

        drain()
        return list(self._backend().sent_messages)

    def to(self, address: str) -> list:
        return [
            m
            for m in self.messages
            if address.lower() in [a.lower() for a in m.destinations.get("ToAddresses", [])]
        ]

    def codes_for(self, address: str) -> list[str]:
        """The code in each message to `address` that has one, oldest first."""
        return [found[0] for found in (CODE.findall(m.body) for m in self.to(address)) if found]

    def code_for(self, address: str) -> str:
        """The code in the newest message to `address`."""
        return self.codes_for(address)[-1]

    def subjects(self, address: str) -> list[str]:
        return [m.subject for m in self.to(address)]


@pytest.fixture
def mailbox(aws):
    """moto SES with the configured sender verified, and the app's SES client fresh."""
    from chalicelib import mail

    mail.reset_client()
    boto3.client("sesv2", region_name="us-east-1").create_email_identity(
        EmailIdentity=os.environ["MAIL_SENDER"]
    )
    yield Mailbox()
    mail.reset_client()


@pytest.fixture
def ses_down(mailbox):
    """SES answers every send with an error (botocore Stubber on the app's own client)."""
    from chalicelib import mail

    stubber = Stubber(mail.ses_client())
    for _ in range(10):
        stubber.add_client_error(
            "send_email",
            service_error_code="ServiceUnavailable",
            service_message="SES is down",
            http_status_code=503,
        )
    with stubber:
        yield stubber


@pytest.fixture
def calls(monkeypatch):
    """Every AWS API call any botocore client makes, by service and operation."""
    recorder = aws_calls.watching(monkeypatch)
    yield recorder
    recorder.close()


# --- browser helpers --------------------------------------------------------------------------


def csrf_of(page: Page) -> str:
    for form in parse_forms(page.body):
        if "csrf_token" in form["fields"]:
            return form["fields"]["csrf_token"]
    raise AssertionError(f"no CSRF token on {page.url}")


def signed_in_unmatched(
    browser: Browser, login_gov_email: str = "stranger@example.net", sub: str | None = None
) -> Page:
    """Sign in with a Login.gov email no registry account has; returns the no-match page."""
    page = browser.sign_in([login_gov_email], sub=sub)
    assert page.location == "/link/no-match", page
    page = browser.get("/link/no-match")
    assert page.status == 200
    return page


def request_recovery(browser: Browser, email: str, page: Page | None = None) -> Page:
    page = page or browser.get("/link/recover")
    return browser.post("/link/recover", {"csrf_token": csrf_of(page), "email": email})


def session_csrf(browser: Browser, *, linked: bool) -> str:
    """This browser's session CSRF token, read from a page that has a form."""
    return csrf_of(browser.get("/account/email" if linked else "/link/recover"))


def enter_code(browser: Browser, path: str, code: str, token: str | None = None) -> Page:
    token = token or session_csrf(browser, linked=path.startswith("/account"))
    return browser.post(path, {"csrf_token": token, "code": code})
