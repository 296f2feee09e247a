"""Refusals the support desk can see: a refusal page that names a registry account is also
kept in that account's audit trail (`signin_refused`, with the page's reference), where the
support console's person page shows it. Best effort, refusal paths only, and never where a
write would tell a registry address from a stranger's."""

from __future__ import annotations

import re

from chalicelib.logs import keyed_hash
from chalicelib.models import Account, AuditEvent
from localdev.idp import sub_for_emails
from tests.invariants import assert_invariants
from tests.support.accounts import make_account
from tests.support.desk import run_json

THROTTLED = "ProvisionedThroughputExceededException"


def refusals(nr_number: str) -> list[AuditEvent]:
    return [
        e for e in AuditEvent.query(nr_number, consistent_read=True) if e.event == "signin_refused"
    ]


def reference_on(page) -> str:
    (reference,) = re.findall(r'<strong class="reference">([^<]+)</strong>', page.body)
    return reference


def test_a_refused_sign_in_is_kept_in_the_accounts_audit_trail_with_the_pages_reference(
    browser,
):
    make_account(primary="dr.alice@example.com", status="disabled")
    page = browser.sign_in(["dr.alice@example.com"])
    assert page.status == 403 and "has been disabled" in page.body
    (event,) = refusals("1000000001")
    assert event.detail.as_dict() == {
        "reason": "link_refused_inactive",
        "reference": reference_on(page),
    }
    assert event.actor == f"subject:{keyed_hash(sub_for_emails(['dr.alice@example.com']))}"
    assert event.export_day is None  # not a change for the registry
    assert_invariants()


def test_another_identity_refused_on_a_linked_account_is_recorded_as_that_identity(
    browser, other_browser
):
    make_account(primary="dr.alice@example.com")
    assert browser.sign_in(["dr.alice@example.com"], sub="sub-owner").status == 302
    page = other_browser.sign_in(["dr.alice@example.com"], sub="sub-stranger")
    assert page.status == 409
    (event,) = refusals("1000000001")
    assert event.detail.as_dict()["reason"] == "link_refused_shared"
    assert event.actor == f"subject:{keyed_hash('sub-stranger')}"


def test_a_refusal_that_names_no_account_writes_nothing(browser, calls):
    make_account(primary="dr.alice@example.com")
    make_account("1000000002", "hana.sato@example.com")
    calls.clear()
    page = browser.sign_in(["hana.sato@example.com", "dr.alice@example.com"])
    assert page.status == 409  # emails of two accounts: links neither, names neither
    assert calls.count_targeting("PutItem", table="audit") == 0
    assert refusals("1000000001") == refusals("1000000002") == []


def test_a_failed_refusal_write_is_logged_and_the_person_gets_their_page(browser, calls, logged):
    make_account(primary="dr.alice@example.com", status="disabled")
    calls.fail("PutItem", THROTTLED, table="audit", times=10)
    page = browser.sign_in(["dr.alice@example.com"])
    assert page.status == 403 and "has been disabled" in page.body
    assert reference_on(page)
    assert refusals("1000000001") == []
    (line,) = [r for r in logged.records if r.get("event") == "refusal_not_recorded"]
    assert line["reason"] == "link_refused_inactive" and line["nr_number"] == "1000000001"


def test_refusals_are_not_changes_for_the_registry(browser, cli):
    make_account(primary="dr.alice@example.com", status="disabled")
    assert browser.sign_in(["dr.alice@example.com"]).status == 403
    assert len(refusals("1000000001")) == 1
    code, rows, _ = run_json(cli, "export-changes", "--since", "2020-01-01")
    assert code == 0 and rows == []


def test_a_signed_in_person_refused_on_their_disabled_account_is_recorded(browser):
    make_account(primary="dr.alice@example.com")
    browser.follow(browser.sign_in(["dr.alice@example.com"]))
    Account.get("1000000001").update(actions=[Account.status.set("disabled")])
    page = browser.get("/account")
    assert page.status == 403
    (event,) = refusals("1000000001")
    assert event.detail.as_dict()["reference"] == reference_on(page)
