"""Reminders to move off a .gov/.mil/.edu primary: linked accounts only, once per 30 days."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.models import Account
from chalicelib.reminders import send_institutional_email_reminders
from tests.support.accounts import make_account

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def link(nr_number: str, sub: str) -> None:
    Account.get(nr_number).update(actions=[Account.linked_sub.set(sub)])


@pytest.fixture
def accounts(app_client, mailbox):
    make_account("1000000001", primary="examiner@fmcsa.dot.gov")
    link("1000000001", "sub-1")
    make_account("1000000002", primary="doc@army.mil")  # not linked yet
    make_account("1000000003", primary="doc@example.com")  # personal
    link("1000000003", "sub-3")
    make_account("1000000004", primary="prof@med.state.edu", status="disabled")
    link("1000000004", "sub-4")
    return mailbox


def test_only_linked_active_institutional_accounts_are_reminded(accounts):
    summary = send_institutional_email_reminders(now=NOW)
    assert summary.sent == 1
    assert len(accounts.to("examiner@fmcsa.dot.gov")) == 1
    assert "personal address" in accounts.subjects("examiner@fmcsa.dot.gov")[0]
    for other in ("doc@army.mil", "doc@example.com", "prof@med.state.edu"):
        assert accounts.to(other) == []
    assert Account.get("1000000001").last_reminder_at == NOW


def test_at_most_once_per_thirty_days(accounts):
    send_institutional_email_reminders(now=NOW)
    send_institutional_email_reminders(now=NOW + timedelta(days=29))
    assert len(accounts.to("examiner@fmcsa.dot.gov")) == 1
    send_institutional_email_reminders(now=NOW + timedelta(days=31))
    assert len(accounts.to("examiner@fmcsa.dot.gov")) == 2


def test_two_runs_at_once_send_one_reminder(accounts):
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        send_institutional_email_reminders(now=NOW)

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(accounts.to("examiner@fmcsa.dot.gov")) == 1


def test_a_reminder_the_outbox_refuses_gives_the_slot_back_for_the_next_run(accounts, monkeypatch):
    from localdev import aws_calls

    faults = aws_calls.watching(monkeypatch)
    faults.fail("SendMessage", "ServiceUnavailable")
    summary = send_institutional_email_reminders(now=NOW)
    assert summary.failed == 1 and summary.sent == 0
    assert Account.get("1000000001").last_reminder_at is None
    assert send_institutional_email_reminders(now=NOW).sent == 1


def test_a_run_is_bounded(accounts):
    make_account("1000000005", primary="second@va.gov")
    link("1000000005", "sub-5")
    first = send_institutional_email_reminders(now=NOW, limit=1)
    assert first.sent == 1 and first.more_remaining
    assert send_institutional_email_reminders(now=NOW, limit=1).sent == 1
    assert send_institutional_email_reminders(now=NOW, limit=1).sent == 0
