"""Runs last in the browser suite: the stack's logs hold no email address, code or token."""

from __future__ import annotations

import csv
import re

from tests.e2e.conftest import ROOT, SEEN_SECRETS, TYPED_EMAILS


def test_logs_contain_no_demo_email_code_or_token(stack):
    text = stack.read_text()
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
