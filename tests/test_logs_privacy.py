"""Errors carry the raw Login.gov `sub`; the logging edge (each app's `pages.log_refusal`)
logs only its keyed hash, as `subject`, the field manage.py trace follows to the audit
trail's `subject:<hash>` actors. A raw sub never reaches a log line, whatever the refusal."""

from __future__ import annotations

import json

import pytest

from chalicelib import errors as e
from chalicelib import pages
from chalicelib.logs import keyed_hash
from localdev.idp import sub_for_emails
from supportdesk.console import pages as console_pages
from tests.support.accounts import make_account

RAW = "8d3c9a56-0000-4000-8000-00000000raw1"


def refusal_kinds(table: dict) -> list:
    return sorted(
        (cls for cls in table if issubclass(cls, e.ServiceError)), key=lambda c: c.__name__
    )


def raw_in(logged, sub: str) -> list[dict]:
    return [r for r in logged.records if sub in json.dumps(r)]


@pytest.mark.parametrize(
    "log_refusal, kind",
    [(pages.log_refusal, k) for k in refusal_kinds(pages.ERROR_RESPONSES)]
    + [(console_pages.log_refusal, k) for k in refusal_kinds(console_pages.ERROR_PAGES)],
    ids=lambda v: (
        getattr(v, "__module__", "").split(".")[0] + "." + v.__name__
        if callable(v) and v.__name__ == "log_refusal"
        else getattr(v, "__name__", str(v))
    ),
)
def test_every_refusal_logs_the_keyed_hash_of_its_sub_and_never_the_sub(
    app_client, logged, log_refusal, kind
):
    log_refusal(kind("refused", sub=RAW, nr_number="1000000001", reason="r"))
    (line,) = [r for r in logged.records if r.get("event") == kind.event]
    assert line["subject"] == keyed_hash(RAW)
    assert raw_in(logged, RAW) == []


def test_a_refusal_without_a_sub_logs_no_subject(app_client, logged):
    pages.log_refusal(e.CsrfError("no token"))
    (line,) = [r for r in logged.records if r.get("event") == "csrf_rejected"]
    assert "subject" not in line


def test_a_refused_link_logs_the_hash_the_audit_trail_names_and_never_the_sub(browser, logged):
    make_account(primary="dr.alice@example.com", status="disabled")
    assert browser.sign_in(["dr.alice@example.com"]).status == 403
    sub = sub_for_emails(["dr.alice@example.com"])
    (line,) = [r for r in logged.records if r.get("event") == "link_refused_inactive"]
    # The same stand-in as the refusal record's actor (tests/test_refusal_records.py).
    assert line["subject"] == keyed_hash(sub)
    assert raw_in(logged, sub) == []


def test_another_identity_refused_on_a_linked_account_never_logs_either_sub(
    browser, other_browser, logged
):
    make_account(primary="dr.alice@example.com")
    assert browser.sign_in(["dr.alice@example.com"], sub="sub-owner-raw").status == 302
    page = other_browser.sign_in(["dr.alice@example.com"], sub="sub-stranger-raw")
    assert page.status == 409
    (line,) = [r for r in logged.records if r.get("event") == "link_refused_shared"]
    assert line["subject"] == keyed_hash("sub-stranger-raw")
    assert raw_in(logged, "sub-owner-raw") == raw_in(logged, "sub-stranger-raw") == []


def test_a_staff_sign_in_refused_logs_the_hash_and_never_the_sub(desk_browser, logged):
    assert desk_browser.sign_in_as("stranger@example.gov").status == 403
    sub = sub_for_emails(["stranger@example.gov"])
    (line,) = [r for r in logged.records if r.get("event") == "staff_signin_refused_not_on_list"]
    assert line["subject"] == keyed_hash(sub)
    assert raw_in(logged, sub) == []
