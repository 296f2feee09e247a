"""The registry import as a three-way sync (supportdesk.registry_sync): what it applies,
what it leaves alone, shared addresses, one transaction per account, clean stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib import claims
from chalicelib.models import Account, AuditEvent
from supportdesk.registry_sync import import_accounts, validate_file, validate_text
from tests.invariants import assert_invariants
from tests.support.accounts import csv_row, csv_text, link, make_account

DEMO_CSV = Path(__file__).resolve().parent.parent / "localdev" / "demo_accounts.csv"
WRITES = {"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


def sync(*rows, **kwargs):
    result = import_accounts(validate_text(csv_text(*rows)), **kwargs)
    assert_invariants()
    return result


def claim(address):
    return claims.read(address)


def kinds(result, kind):
    return {i.nr_number: i.reason for i in result.issues if i.kind == kind}


def set_primary_here(nr_number, address, by="person"):
    """A verified email change made by this service (as email_change commits it)."""
    from chalicelib import store
    from chalicelib.audit import audit_event
    from chalicelib.field_ownership import mark_changed_here

    account = Account.get(nr_number, consistent_read=True)
    tx = store.Transaction()
    claims.add_holder(tx, "new", address, nr_number, claims.read(address))
    claims.remove_holder(
        tx,
        "old",
        account.primary_email_normalized,
        nr_number,
        claims.read(account.primary_email_normalized),
    )
    tx.update(
        "account",
        account,
        actions=[
            Account.primary_email.set(address),
            Account.primary_email_normalized.set(address),
            mark_changed_here(account, ["primary_email"], by),
        ],
    )
    tx.audit(
        audit_event(
            nr_number,
            "email_changed",
            actor=by,
            change="primary",
            old_email=account.primary_email,
            new_email=address,
            export=True,
        )
    )
    tx.commit()


# --- fields ---------------------------------------------------------------------------------


def test_a_new_file_creates_accounts_their_claims_and_their_base(aws):
    result = sync(
        csv_row("4000000001", "Dr.One@Example.com", "one.home@example.org", username="one"),
        csv_row("4000000002", "two@fmcsa.dot.gov", role="third_party", status="disabled"),
    )
    assert (result.imported, result.updated, result.unchanged, result.rejected) == (2, 0, 0, 0)
    one = Account.get("4000000001")
    assert (one.primary_email, one.primary_email_normalized) == (
        "Dr.One@Example.com",
        "dr.one@example.com",
    )
    assert one.imported.as_dict()["primary_email"] == "Dr.One@Example.com"
    assert Account.get("4000000002").status == "disabled"
    assert claim("dr.one@example.com").proves == "4000000001"
    assert claim("one.home@example.org").proves == "4000000001"
    # One transaction per account, nothing else.
    assert result.transactions == 2 and result.claims_written == 3


def test_reimporting_the_same_file_writes_nothing(aws, calls):
    text = csv_text(
        *(
            csv_row(f"60000000{i:02d}", f"p{i}@example.com", f"s{i}@example.org" if i % 2 else "")
            for i in range(30)
        )
    )
    assert import_accounts(validate_text(text)).imported == 30
    calls.clear()
    again = import_accounts(validate_text(text))
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 30)
    assert [c.operation for c in calls.calls if c.operation in WRITES] == []
    # Reads are batched: 30 accounts in one BatchGetItem, 45 claims in one.
    assert len(calls.params("BatchGetItem")) == 2 and again.items_read == 75


def test_a_registry_change_is_applied_where_nothing_was_changed_here(aws):
    sync(csv_row("7000000001", "pat@example.com", username="old"))
    link("7000000001", "sub-7000")
    result = sync(
        csv_row("7000000001", "pat.new@example.com", first="Patricia", username="old"),
        actor="import:tester",
    )
    assert result.updated == 1 and result.conflicts == 0
    account = Account.get("7000000001", consistent_read=True)
    assert (account.first_name, account.primary_email) == ("Patricia", "pat.new@example.com")
    assert account.linked_sub == "sub-7000"  # link fields are never the import's
    assert claim("pat@example.com") is None
    assert claim("pat.new@example.com").proves == "7000000001"
    (event,) = [e for e in AuditEvent.query("7000000001") if e.event == "account_updated_by_import"]
    assert event.actor == "import:tester"
    assert "primary_email" in event.detail.as_dict()["fields"]


def test_an_email_changed_here_is_never_undone_by_an_import(aws):
    sync(csv_row("7100000001", "dana.ruiz@va.gov"))
    set_primary_here("7100000001", "dana.personal@example.net")
    result = sync(csv_row("7100000001", "dana.ruiz@va.gov"))  # the registry never learnt
    assert result.updated == 0 and result.unchanged == 1 and result.conflicts == 0
    assert Account.get("7100000001").primary_email_normalized == "dana.personal@example.net"
    assert claim("dana.ruiz@va.gov") is None  # the abandoned mailbox proves nobody


def test_both_sides_changed_is_a_conflict_that_applies_nothing_and_is_reported(aws):
    sync(csv_row("7200000001", "first@example.com"))
    set_primary_here("7200000001", "mine@example.com")
    result = sync(csv_row("7200000001", "registry.fix@example.com"))
    assert result.conflicts == 1 and result.updated == 0
    (reason,) = kinds(result, "conflict").values()
    assert (
        "primary_email" in reason
        and "registry.fix@example.com" in reason
        and "mine@example.com" in reason
        and "changed here on" in reason
    )
    assert Account.get("7200000001").primary_email == "mine@example.com"
    # Still reported next time, until one side takes the other's value...
    assert sync(csv_row("7200000001", "registry.fix@example.com")).conflicts == 1
    # ...when the registry adopts ours, the two agree again and nothing is written.
    converged = sync(csv_row("7200000001", "mine@example.com"))
    assert converged.conflicts == 0
    assert sync(csv_row("7200000001", "mine@example.com")).updated == 0


def test_a_registry_move_into_the_slot_kept_here_never_puts_one_address_twice(aws):
    """Support gave the account a secondary; the registry (not knowing) moves that same
    address into the primary and sets another secondary. Applying the primary would put one
    address in both slots: neither slot takes the registry's value, both are reported."""
    from supportdesk import desk

    sync(csv_row("7300000001", "first@example.com"))
    desk.set_email(
        "7300000001",
        slot="secondary",
        address="home@example.org",
        reason="verified by phone",
        actor="desk",
    )
    result = sync(csv_row("7300000001", "home@example.org", "office@example.com"))
    account = Account.get("7300000001", consistent_read=True)
    assert (account.primary_email_normalized, account.secondary_email_normalized) == (
        "first@example.com",
        "home@example.org",
    )
    assert result.conflicts == 2 and result.updated == 0  # one per field
    reasons = " ".join(i.reason for i in result.issues if i.kind == "conflict")
    assert "primary_email" in reasons and "secondary_email" in reasons
    assert claim("first@example.com").proves == "7300000001"
    assert claim("office@example.com") is None
    # Nothing was applied, so the next run reports the same disagreement again.
    assert sync(csv_row("7300000001", "home@example.org", "office@example.com")).conflicts == 2


def test_support_disabled_is_never_lifted_and_removed_always_wins(aws):
    from supportdesk import desk

    sync(csv_row("7300000001", "held@example.com"))
    desk.set_status("7300000001", "disabled", reason="reported shared", actor="jdoe")
    assert sync(csv_row("7300000001", "held@example.com")).updated == 0
    assert Account.get("7300000001").status == "disabled"
    sync(csv_row("7300000001", "held@example.com", status="removed"))
    assert Account.get("7300000001").status == "removed"
    sync(csv_row("7300000001", "held@example.com", status="active"))
    assert Account.get("7300000001").status == "disabled"  # the hold is still there
    desk.set_status("7300000001", "active", reason="verified", actor="jdoe")
    assert Account.get("7300000001").status == "active"


# --- shared addresses ----------------------------------------------------------------------------


def test_an_address_on_two_rows_is_shared_from_its_first_write(aws, calls):
    result = sync(
        csv_row("5000000001", "Front.Desk@example.com"),
        csv_row("5000000002", "own@example.com", " front.desk@EXAMPLE.com"),
    )
    assert result.imported == 2 and result.shared_emails == 1
    office = claim("front.desk@example.com")
    assert office.holders == {"5000000001", "5000000002"} and office.proves is None
    assert claim("own@example.com").proves == "5000000002"
    # Never, even between the two transactions, did the address prove one account.
    puts = [
        item["Put"]["Item"]
        for params in calls.params("TransactWriteItems")
        for item in params["TransactItems"]
        if "Put" in item
        and item["Put"]["Item"].get("claim", {}).get("S") == "email#front.desk@example.com"
    ]
    assert puts and all("nr_number" not in item for item in puts)
    assert set(kinds(result, "warning")) == {"5000000001", "5000000002"}


def test_an_address_already_held_outside_the_file_becomes_shared(aws):
    make_account("5100000009", "taken@example.com")  # not in the file, linked or not
    link("5100000009", "sub-5100")
    result = sync(csv_row("5100000001", "taken@example.com"))
    assert result.imported == 1 and result.shared_emails == 1
    assert claim("taken@example.com").holders == {"5100000009", "5100000001"}


def test_a_correction_leaving_one_holder_keeps_the_address_once_shared(aws):
    sync(csv_row("5200000001", "office@example.com"), csv_row("5200000002", "office@example.com"))
    sync(csv_row("5200000001", "a.own@example.com"), csv_row("5200000002", "office@example.com"))
    office = claim("office@example.com")
    assert office.holders == {"5200000002"} and office.once_shared and office.proves is None


# --- concurrency and failures -------------------------------------------------------------------


def test_an_account_changed_during_the_import_is_planned_again_not_overwritten(aws, calls):
    sync(csv_row("7400000001", "race@example.com"))

    def someone_changes_the_email():
        set_primary_here("7400000001", "changed.here@example.com")

    calls.interleave(
        "TransactWriteItems", someone_changes_the_email, table="accounts", key_prefix="7400000001"
    )
    result = sync(csv_row("7400000001", "race@example.com", first="Changed"))
    assert result.rejected == 0 and result.updated == 1
    account = Account.get("7400000001", consistent_read=True)
    assert account.first_name == "Changed"  # the registry's change
    assert account.primary_email == "changed.here@example.com"  # and ours, both kept
    assert claim("race@example.com") is None  # the released claim did not come back


def test_throttling_stops_the_run_cleanly_and_a_rerun_finishes(aws, calls):
    rows = [csv_row(f"75000000{i:02d}", f"t{i}@example.com") for i in range(6)]
    calls.fail(
        "TransactWriteItems",
        "ProvisionedThroughputExceededException",
        table="accounts",
        key_prefix="7500000003",
        times=10,
    )
    result = sync(*rows, sleep=lambda seconds: None)
    assert result.stopped and "re-run the import" in result.stopped
    assert result.imported == 3  # each account before or after, never between
    assert {a.nr_number for a in Account.scan()} == {f"75000000{i:02d}" for i in range(3)}
    calls.rules.clear()
    again = sync(*rows)
    assert again.stopped is None and again.imported == 3 and again.unchanged == 3


def test_dry_run_writes_nothing(aws, calls):
    result = import_accounts(
        validate_text(csv_text(csv_row("8100000001", "dry@example.com"))), dry_run=True
    )
    assert result.imported == 1 and result.claims_written == 1
    assert [c.operation for c in calls.calls if c.operation in WRITES] == []
    assert Account.count() == 0


def test_a_missing_claim_is_repaired_on_reimport(aws):
    make_account(
        "7200000009",
        "repair@example.com",
        first_name="Pat",
        last_name="Examiner",
        legacy_username=None,
        claims=False,
    )
    result = import_accounts(validate_text(csv_text(csv_row("7200000009", "repair@example.com"))))
    assert result.claims_written == 1
    assert claim("repair@example.com").proves == "7200000009"
    assert_invariants()


def test_the_demo_file_imports_and_shows_each_case(aws):
    result = import_accounts(validate_file(DEMO_CSV))
    assert result.rejected == 0 and result.conflicts == 0
    assert claim("shared.office@example.com").contested
    assert {a.status for a in Account.scan()} == {"active", "disabled", "removed"}
    assert_invariants()


@pytest.mark.parametrize("status", ["active", "disabled"])
def test_a_registry_status_change_applies_when_support_has_no_hold(aws, status):
    sync(csv_row("7600000001", "s@example.com", status="active"))
    sync(csv_row("7600000001", "s@example.com", status=status))
    assert Account.get("7600000001").status == status


# --- addresses that move between accounts in one export ---------------------------------------

MOVES = {
    # A's address given to B (A gets a new one), in both row orders.
    "move, giver first": (
        [("8200000001", "x@example.com"), ("8200000002", "z@example.com")],
        [("8200000001", "y@example.com"), ("8200000002", "x@example.com")],
    ),
    "move, taker first": (
        [("8200000001", "x@example.com"), ("8200000002", "z@example.com")],
        [("8200000002", "x@example.com"), ("8200000001", "y@example.com")],
    ),
    # Two accounts swap addresses, in both row orders.
    "swap": (
        [("8200000001", "x@example.com"), ("8200000002", "y@example.com")],
        [("8200000001", "y@example.com"), ("8200000002", "x@example.com")],
    ),
    "swap, other order": (
        [("8200000001", "x@example.com"), ("8200000002", "y@example.com")],
        [("8200000002", "x@example.com"), ("8200000001", "y@example.com")],
    ),
}


@pytest.mark.parametrize("case", list(MOVES))
def test_an_address_moving_between_accounts_in_one_export_proves_its_new_holder(aws, case):
    before, after = MOVES[case]
    sync(*(csv_row(number, address) for number, address in before))
    result = sync(*(csv_row(number, address) for number, address in after))
    assert result.shared_emails == 0 and kinds(result, "warning") == {}
    for number, address in after:
        held = claim(address)
        assert held.holders == {number} and held.proves == number, (address, held)
    # The next report does not call it shared either.
    again = sync(*(csv_row(number, address) for number, address in after))
    assert again.shared_emails == 0 and again.unchanged == 2


def test_an_address_shared_before_the_run_stays_once_shared_when_it_moves(aws):
    sync(csv_row("8300000001", "office@example.com"), csv_row("8300000002", "office@example.com"))
    # The registry gives the office address to 8300000003 only: it was shared, so whoever
    # holds it now is not proven by it until support has verified them.
    sync(
        csv_row("8300000001", "a@example.com"),
        csv_row("8300000002", "b@example.com"),
        csv_row("8300000003", "office@example.com"),
    )
    office = claim("office@example.com")
    assert office.holders == {"8300000003"} and office.once_shared


def test_a_dry_run_counts_what_the_real_run_writes(aws):
    sync(csv_row("8400000001", "x@example.com"), csv_row("8400000002", "y@example.com"))
    text = csv_text(csv_row("8400000001", "y@example.com"), csv_row("8400000002", "x@example.com"))
    dry = import_accounts(validate_text(text), dry_run=True)
    real = import_accounts(validate_text(text))
    # Every count is what the real run does, transactions included (those it would commit).
    assert dry.summary() | {"dry_run": None} == real.summary() | {"dry_run": None}
    assert real.transactions == 2


# --- removed accounts hold no address ------------------------------------------------------------


@pytest.mark.parametrize("order", ["removed first", "added first"])
def test_a_renumbered_person_keeps_their_address_on_the_new_account(aws, order):
    sync(csv_row("8500000001", "renumbered@example.com", "home@example.org"))
    rows = [
        csv_row("8500000001", "renumbered@example.com", "home@example.org", status="removed"),
        csv_row("8500000002", "renumbered@example.com"),
    ]
    result = sync(*(rows if order == "removed first" else rows[::-1]))
    assert result.shared_emails == 0 and kinds(result, "warning") == {}
    assert claim("renumbered@example.com").proves == "8500000002"
    assert claim("home@example.org") is None  # free: the removed account holds nothing
    assert Account.get("8500000001").primary_email == "renumbered@example.com"  # kept


def test_a_removed_account_releases_its_addresses_and_takes_them_back_when_re_activated(aws):
    sync(csv_row("8600000001", "back@example.com", "back.home@example.org"))
    sync(csv_row("8600000001", "back@example.com", "back.home@example.org", status="removed"))
    assert claim("back@example.com") is None and claim("back.home@example.org") is None
    result = sync(csv_row("8600000001", "back@example.com", "back.home@example.org"))
    assert result.updated == 1
    assert claim("back@example.com").proves == "8600000001"
    assert claim("back.home@example.org").proves == "8600000001"


def test_a_re_activated_account_shares_an_address_someone_took_meanwhile(aws):
    sync(
        csv_row("8700000001", "taken.meanwhile@example.com", status="removed"),
        csv_row("8700000002", "taken.meanwhile@example.com"),
    )
    assert claim("taken.meanwhile@example.com").proves == "8700000002"
    result = sync(csv_row("8700000001", "taken.meanwhile@example.com"))
    held = claim("taken.meanwhile@example.com")
    assert held.holders == {"8700000001", "8700000002"} and held.proves is None
    (warning,) = kinds(result, "warning").values()
    assert "taken.meanwhile@example.com" in warning and "8700000002" in warning


def test_a_shared_address_warning_names_the_address_and_the_other_accounts(aws):
    result = sync(
        csv_row("8800000001", "desk@example.com"),
        csv_row("8800000002", "own@example.com", "desk@example.com"),
        csv_row("8800000003", "desk@example.com"),
    )
    warnings = kinds(result, "warning")
    assert "desk@example.com" in warnings["8800000002"]
    assert "8800000001" in warnings["8800000002"] and "8800000003" in warnings["8800000002"]
    assert "secondary" in warnings["8800000002"] and "primary" in warnings["8800000001"]


# --- the export's date: an older file never undoes a newer one ----------------------------------


def test_a_row_from_an_older_export_is_not_applied_and_is_reported(aws):
    monday = csv_row("8900000001", "dated@example.com", status="active")
    tuesday = csv_row("8900000001", "dated@example.com", status="removed")
    sync(monday, exported_on="2026-03-02")
    sync(tuesday, exported_on="2026-03-03")
    assert Account.get("8900000001").exported_on == "2026-03-03"
    rerun = sync(monday, exported_on="2026-03-02")  # Monday's file again, by mistake
    assert Account.get("8900000001").status == "removed"
    assert rerun.older == 1 and rerun.updated == 0
    (warning,) = kinds(rerun, "warning").values()
    assert "older than the export of 2026-03-03 already imported" in warning


def test_re_running_the_same_dated_export_writes_nothing(aws, calls):
    text = csv_text(csv_row("8900000002", "same@example.com", first="Sam"))
    import_accounts(validate_text(text), exported_on="2026-03-02")
    calls.clear()
    again = import_accounts(validate_text(text), exported_on="2026-03-02")
    assert (again.unchanged, again.older, again.updated) == (1, 0, 0)
    assert [c.operation for c in calls.calls if c.operation in WRITES] == []


def test_a_newer_export_is_applied_and_remembered_and_an_undated_run_behaves_as_before(aws):
    sync(csv_row("8900000003", "dated@example.org", first="Old"), exported_on="2026-03-02")
    sync(csv_row("8900000003", "dated@example.org", first="New"), exported_on="2026-03-04")
    account = Account.get("8900000003")
    assert (account.first_name, account.exported_on) == ("New", "2026-03-04")
    # Without --exported-on nothing is compared: applied as today, the date left alone.
    sync(csv_row("8900000003", "dated@example.org", first="Undated"))
    account = Account.get("8900000003")
    assert (account.first_name, account.exported_on) == ("Undated", "2026-03-04")


def test_an_older_rows_addresses_count_as_the_account_holds_them(aws):
    sync(csv_row("8900000004", "kept@example.com"), exported_on="2026-03-05")
    # An older file also gives the address to a new account: the address is shared, as
    # the account not updated still holds it.
    result = sync(
        csv_row("8900000004", "other@example.com"),
        csv_row("8900000005", "kept@example.com"),
        exported_on="2026-03-01",
    )
    assert Account.get("8900000004").primary_email == "kept@example.com"
    assert claim("kept@example.com").holders == {"8900000004", "8900000005"}
    assert result.older == 1


def test_the_conflict_report_says_which_file_or_which_run(aws, clock):
    sync(csv_row("8900000006", "first@example.com"))
    set_primary_here("8900000006", "mine@example.com")
    undated = sync(csv_row("8900000006", "registry.fix@example.com"))
    today = clock.utc_now().strftime("%Y-%m-%d")
    (reason,) = kinds(undated, "conflict").values()
    assert f"this import (run on {today}) says registry.fix@example.com" in reason
    dated = sync(csv_row("8900000006", "registry.fix@example.com"), exported_on="2026-03-02")
    (reason,) = kinds(dated, "conflict").values()
    assert "the registry's file of 2026-03-02 says registry.fix@example.com" in reason
