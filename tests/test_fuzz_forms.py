"""Fuzzing the forms and the CSV rows: never a 5xx or a crash, nothing stored from bad input.

Each form gets arbitrary field text with a valid CSRF token (so the input reaches the
domain code), from a signed-in browser; the CSV validator gets arbitrary rows.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.emails import InvalidEmail, normalize_email
from chalicelib.models import Account, AuditEvent, Claim, Flow
from chalicelib.store import CSV_HEADER
from supportdesk.csv_validation import validate_row
from tests.support.accounts import make_account
from tests.support.browser import csrf_of, signed_in_unmatched

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
field_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=5000),
    st.from_regex(
        r"[ \t]*[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9.-]{1,20}\.[a-z]{2,6}[ \t]*", fullmatch=True
    ),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "<script>alert(1)</script>@example.com",
            "a@b@c.com",
            "dr.alice@example.com",
            "x" * 10_000,
        ]
    ),
)


@pytest.fixture
def unmatched(browser, mailbox):
    make_account(primary="dr.alice@example.com")
    page = signed_in_unmatched(browser, "stranger@example.net", sub=str(uuid.uuid4()))
    return browser, csrf_of(page)


@pytest.fixture
def linked(browser, mailbox):
    make_account(primary="dr.alice@example.com")
    make_account("1000000002", primary="other@example.com")
    browser.follow(browser.sign_in(["dr.alice@example.com"]))
    return browser, csrf_of(browser.get("/account/email"))


def code_flows() -> list:
    """Challenges and send counters, with what changes when a code is sent."""
    return sorted(
        (f.flow_id, getattr(f, "sends", None), getattr(f, "code_hash", None))
        for f in Flow.scan()
        if f.flow_id.startswith(("challenge#", "sendcount#"))
    )


def state_of_accounts() -> list:
    return sorted(
        (a.nr_number, a.primary_email, a.secondary_email, a.linked_sub) for a in Account.scan()
    )


@FUZZ
@given(email=field_text)
def test_recovery_form_with_any_text(unmatched, email):
    browser, token = unmatched
    before_claims = sorted(c.claim for c in Claim.scan())
    before_flows = code_flows()
    page = browser.post("/link/recover", {"csrf_token": token, "email": email})
    assert page.status < 500, (page.status, page.body[-300:])
    assert "<script>alert(1)</script>" not in page.body
    assert sorted(c.claim for c in Claim.scan()) == before_claims
    assert Account.get("1000000001").linked_sub is None
    try:
        normalize_email(email)
    except InvalidEmail:
        # Rejected input stores nothing: no challenge, no send counted.
        assert code_flows() == before_flows


@FUZZ
@given(code=field_text)
def test_recovery_code_form_with_any_text(unmatched, code):
    browser, token = unmatched
    page = browser.post("/link/recover/verify", {"csrf_token": token, "code": code})
    assert page.status < 500, (page.status, page.body[-300:])
    assert Account.get("1000000001").linked_sub is None


@FUZZ
@given(
    change=st.one_of(
        st.sampled_from(["primary", "secondary", "remove_secondary", "swap"]), st.text(max_size=40)
    ),
    email=field_text,
    acknowledge=st.sampled_from(["", "yes", "no", "\x00"]),
)
def test_email_change_form_with_any_text(linked, change, email, acknowledge):
    browser, token = linked
    before = state_of_accounts()
    page = browser.post(
        "/account/email",
        {"csrf_token": token, "change": change, "email": email, "acknowledge": acknowledge},
    )
    assert page.status < 500, (page.status, page.body[-300:])
    assert "<script>alert(1)</script>" not in page.body
    # Only a confirmed code changes addresses; remove/swap need none but must stay coherent.
    after = state_of_accounts()
    if change not in ("remove_secondary", "swap"):
        assert after == before
    assert Account.get("1000000002").primary_email == "other@example.com"


@FUZZ
@given(code=field_text)
def test_email_change_confirm_with_any_text(linked, code):
    browser, token = linked
    before = state_of_accounts()
    page = browser.post("/account/email/confirm", {"csrf_token": token, "code": code})
    assert page.status < 500, (page.status, page.body[-300:])
    assert state_of_accounts() == before
    assert not [e for e in AuditEvent.query("1000000001") if e.event.startswith("email_")]


csv_cell = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"\d{10}", fullmatch=True),
    st.sampled_from(
        [
            "medical_examiner",
            "active",
            "disabled",
            "removed",
            "x@example.com",
            "",
            "=cmd|' /C calc'!A0",
        ]
    ),
)


@settings(max_examples=500, deadline=None)
@given(st.fixed_dictionaries({name: csv_cell for name in CSV_HEADER}))
def test_csv_rows_never_crash_and_accepted_rows_are_clean(raw):
    row, reason = validate_row(2, raw)
    assert (row is None) != (reason is None)
    if row is not None:
        assert row.nr_number.isdigit() and len(row.nr_number) == 10
        assert row.primary_email_normalized == normalize_email(row.primary_email)
