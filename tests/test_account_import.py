"""CSV import: validation rules, contested emails, idempotent re-runs, full batches of 25."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from supportdesk import registry_import as account_import
from supportdesk.registry_import import (
    BatchWriteIncomplete,
    BatchWriter,
    ImportFileError,
    import_accounts,
    validate_file,
    validate_text,
    write_reject_report,
)
from chalicelib.models import Account, AuditEvent, Claim
from tests.aws_fixtures import (  # noqa: F401 - fixtures
    api_calls,
    csv_row,
    csv_text,
    link,
    make_account,
    support_env,
    tables,
)

DEMO_CSV = Path(__file__).resolve().parent.parent / "localdev" / "demo_accounts.csv"


def claim_holder(email: str) -> str | None:
    try:
        return Claim.get(Claim.email_key(email), consistent_read=True).nr_number
    except Claim.DoesNotExist:
        return None


def reasons(validation_or_result, kind="rejected") -> dict[str, str]:
    return {i.nr_number: i.reason for i in validation_or_result.issues if i.kind == kind}


# --- validation (pure: no database) -----------------------------------------------------------

@pytest.mark.parametrize("row, reason", [
    (csv_row("123456789", "a@example.com"), "nr_number must be exactly 10 digits"),
    (csv_row("12345678901", "a@example.com"), "nr_number must be exactly 10 digits"),
    (csv_row("12345678a0", "a@example.com"), "nr_number must be exactly 10 digits"),
    (csv_row("１２３４５６７８９０", "a@example.com"), "nr_number must be exactly 10 digits"),
    (csv_row("1234567890", "a@example.com", first=""), "first_name is missing"),
    (csv_row("1234567890", "a@example.com", last="  "), "last_name is missing"),
    (csv_row("1234567890", "a@example.com", role="doctor"), "role must be one of"),
    (csv_row("1234567890", "a@example.com", status="suspended"), "status must be one of"),
    (csv_row("1234567890", ""), "primary_email is missing"),
    (csv_row("1234567890", "not-an-email"), "primary_email is not a valid email address"),
    (csv_row("1234567890", "a@example.test"), "primary_email is not a valid email address"),
    (csv_row("1234567890", "a@example.com", "b@@example.com"),
     "secondary_email is not a valid email address"),
    (csv_row("1234567890", "a@example.com", " A@Example.COM "),
     "secondary_email is the same address as primary_email"),
    ("1234567890,Pat,Examiner,medical_examiner,a@example.com,,,active,extra",
     "expected 8 fields, found 9"),
])
def test_a_bad_row_is_rejected_with_its_reason(row, reason):
    good = csv_row("2000000001", "good@example.com")
    validation = validate_text(csv_text(good, row))
    assert [r.nr_number for r in validation.rows] == ["2000000001"]
    assert validation.rows_read == 2
    (issue,) = validation.issues
    assert issue.kind == "rejected" and issue.row == 3
    assert issue.reason.startswith(reason)


def test_valid_rows_are_trimmed_and_normalized():
    validation = validate_text(csv_text(
        csv_row(" 0000000042 ", " Dr.Pat@Example.COM ", "pat@Example.org", username=" pat42 ",
                first=" Pat ", role="assistant", status="disabled")))
    (row,) = validation.rows
    assert row.nr_number == "0000000042"  # leading zeros kept: a number is text
    assert row.first_name == "Pat"
    assert row.primary_email == "Dr.Pat@Example.COM"
    assert row.primary_email_normalized == "dr.pat@example.com"
    assert row.secondary_email_normalized == "pat@example.org"
    assert row.legacy_username == "pat42"
    assert (row.role, row.status) == ("assistant", "disabled")
    assert validation.issues == []


def test_a_duplicate_number_rejects_every_row_that_has_it():
    validation = validate_text(csv_text(
        csv_row("3000000001", "one@example.com"),
        csv_row("3000000002", "two@example.com"),
        csv_row("3000000001", "three@example.com")))
    assert [r.nr_number for r in validation.rows] == ["3000000002"]
    assert [(i.row, i.nr_number, i.kind) for i in validation.issues] == [
        (2, "3000000001", "rejected"), (4, "3000000001", "rejected")]
    assert "duplicate nr_number (also on line 4)" in validation.issues[0].reason


@pytest.mark.parametrize("header", [
    "nr_number,first_name,last_name,role,primary_email,secondary_email,status",
    "nr_number,first_name,last_name,role,primary_email,secondary_email,status,legacy_username",
    "",
])
def test_a_wrong_header_refuses_the_whole_file(header):
    with pytest.raises(ImportFileError, match="header must be exactly"):
        validate_text(header + "\n" + csv_row("1234567890", "a@example.com") + "\n")


def test_a_byte_order_mark_and_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + csv_text(csv_row("1234567890", "a@example.com"), "",
                                          csv_row("1234567891", "b@example.com")))
                     .encode("utf-8"))
    validation = validate_file(path)
    assert [r.nr_number for r in validation.rows] == ["1234567890", "1234567891"]
    assert validation.rows_read == 2


def test_an_unreadable_file_is_a_file_error(tmp_path):
    with pytest.raises(ImportFileError, match="cannot read"):
        validate_file(tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ImportFileError):
        validate_file(binary)


# --- writing ----------------------------------------------------------------------------------

def test_import_writes_accounts_and_email_claims(tables):
    result = import_accounts(validate_text(csv_text(
        csv_row("4000000001", "Dr.One@Example.com", "one.home@example.org", username="one"),
        csv_row("4000000002", "two@fmcsa.dot.gov", role="third_party", status="disabled"))))
    assert (result.imported, result.updated, result.unchanged, result.rejected) == (2, 0, 0, 0)
    account = Account.get("4000000001", consistent_read=True)
    assert account.primary_email == "Dr.One@Example.com"
    assert account.primary_email_normalized == "dr.one@example.com"
    assert account.legacy_username == "one" and account.legacy_username_retired is False
    assert account.linked_sub is None
    assert Account.get("4000000002").status == "disabled"
    assert claim_holder("dr.one@example.com") == "4000000001"
    assert claim_holder("one.home@example.org") == "4000000001"
    assert claim_holder("two@fmcsa.dot.gov") == "4000000002"
    assert result.claims_written == 3 and result.items_written == 5


def test_one_email_on_two_rows_is_claimed_by_neither_and_both_are_reported(tables):
    result = import_accounts(validate_text(csv_text(
        csv_row("5000000001", "Front.Desk@example.com"),
        csv_row("5000000002", "own@example.com", " front.desk@EXAMPLE.com"),
        csv_row("5000000003", "third@example.com"))))
    # Both rows import: the people exist; only automatic linking by that address is off.
    assert result.imported == 3 and result.rejected == 0
    assert result.contested_emails == 1
    assert claim_holder("front.desk@example.com") is None
    assert claim_holder("own@example.com") == "5000000002"  # the uncontested one is claimed
    warnings = reasons(result, "warning")
    assert set(warnings) == {"5000000001", "5000000002"}
    assert "5000000002" in warnings["5000000001"] and "5000000001" in warnings["5000000002"]
    assert "primary" in warnings["5000000001"] and "secondary" in warnings["5000000002"]


def test_an_email_claimed_in_the_table_by_another_account_is_contested(tables):
    make_account("5100000009", "taken@example.com")  # not in the file
    result = import_accounts(validate_text(csv_text(csv_row("5100000001", "taken@example.com"))))
    assert result.imported == 1 and result.contested_emails == 1
    assert claim_holder("taken@example.com") == "5100000009"  # the existing claim stays
    assert "5100000009" in reasons(result, "warning")["5100000001"]


def test_a_second_file_contesting_an_unlinked_accounts_email_releases_its_claim(tables):
    import_accounts(validate_text(csv_text(csv_row("5200000001", "shared@example.com"))))
    assert claim_holder("shared@example.com") == "5200000001"
    result = import_accounts(validate_text(csv_text(
        csv_row("5200000001", "shared@example.com"),
        csv_row("5200000002", "shared@example.com"))))
    assert claim_holder("shared@example.com") is None
    assert result.claims_released == 1
    events = [e.event for e in AuditEvent.query("5200000001")]
    assert events == ["email_claim_released"]


def test_a_linked_account_keeps_its_claim_when_a_new_row_contests_it(tables):
    import_accounts(validate_text(csv_text(csv_row("5300000001", "mine@example.com"))))
    link("5300000001", "sub-5300")
    result = import_accounts(validate_text(csv_text(
        csv_row("5300000001", "mine@example.com"),
        csv_row("5300000002", "mine@example.com"))))
    assert claim_holder("mine@example.com") == "5300000001"
    assert result.claims_released == 0
    assert "keeps its existing claim" in reasons(result, "warning")["5300000001"]


def test_reimporting_the_same_file_writes_nothing(tables, api_calls):
    text = csv_text(*(csv_row(f"60000000{i:02d}", f"p{i}@example.com",
                              f"s{i}@example.org" if i % 2 else "") for i in range(30)))
    first = import_accounts(validate_text(text))
    assert first.imported == 30
    api_calls.clear()
    again = import_accounts(validate_text(text))
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 30)
    assert again.items_written == again.write_requests == again.transactions == 0
    writes = {"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
    assert [c.operation for c in api_calls.calls if c.operation in writes] == []
    # Reads are batched too: 30 accounts in one BatchGetItem, 45 claims in one.
    assert len(api_calls.params("BatchGetItem")) == 2


def test_reimport_keeps_link_fields_and_applies_registry_changes(tables):
    import_accounts(validate_text(csv_text(
        csv_row("7000000001", "linked@example.com", username="olduser"))))
    before = link("7000000001", "sub-7000")
    assert before.legacy_username_retired is True
    result = import_accounts(validate_text(csv_text(
        csv_row("7000000001", "renamed@example.com", first="Patricia", username="olduser",
                status="disabled"))), actor="import:tester")
    assert result.updated == 1
    after = Account.get("7000000001", consistent_read=True)
    assert (after.linked_sub, after.linked_at) == ("sub-7000", before.linked_at)
    assert after.legacy_username_retired is True
    assert (after.first_name, after.status) == ("Patricia", "disabled")
    # Linked: the owner manages the emails, so the file's new address is not applied.
    assert after.primary_email_normalized == "linked@example.com"
    assert claim_holder("linked@example.com") == "7000000001"
    assert claim_holder("renamed@example.com") is None
    assert "emails are managed by its owner" in reasons(result, "warning")["7000000001"]
    audit = [e for e in AuditEvent.query("7000000001") if e.event == "account_updated_by_import"]
    assert len(audit) == 1 and audit[0].actor == "import:tester"
    assert audit[0].detail.as_dict()["fields"] == "first_name,status"


def test_reimport_moves_the_claims_of_an_unlinked_account_whose_email_changed(tables):
    import_accounts(validate_text(csv_text(csv_row("7100000001", "typo@exmaple.com"))))
    result = import_accounts(validate_text(csv_text(csv_row("7100000001", "fixed@example.com"))))
    assert result.updated == 1 and result.claims_written == 1 and result.claims_released == 1
    assert claim_holder("typo@exmaple.com") is None
    assert claim_holder("fixed@example.com") == "7100000001"
    assert Account.get("7100000001").primary_email == "fixed@example.com"


def test_a_missing_claim_is_repaired_on_reimport(tables):
    make_account("7200000001", "repair@example.com", first_name="Pat", last_name="Examiner",
                 legacy_username=None, claims=False)
    result = import_accounts(validate_text(csv_text(csv_row("7200000001", "repair@example.com"))))
    assert result.unchanged == 1 and result.claims_written == 1
    assert claim_holder("repair@example.com") == "7200000001"


def test_a_row_racing_a_link_is_rejected_not_overwritten(tables, monkeypatch):
    import_accounts(validate_text(csv_text(csv_row("7300000001", "race@example.com"))))
    real = account_import._existing_accounts

    def read_then_someone_links(numbers):
        found = real(numbers)
        link("7300000001", "sub-race")  # between our read and our write
        return found

    monkeypatch.setattr(account_import, "_existing_accounts", read_then_someone_links)
    result = import_accounts(validate_text(csv_text(
        csv_row("7300000001", "race@example.com", first="Changed"))))
    assert result.updated == 0 and result.rejected == 1
    assert "re-run the import" in reasons(result)["7300000001"]
    account = Account.get("7300000001", consistent_read=True)
    assert account.linked_sub == "sub-race" and account.first_name == "Pat"


def test_writes_go_out_in_full_batches_of_25(tables, api_calls):
    # 61 accounts, 30 with a secondary email: 61 + 91 claims = 152 items -> 7 requests.
    rows = [csv_row(f"80000000{i:02d}", f"p{i}@example.com", f"s{i}@example.org" if i % 2 else "")
            for i in range(61)]
    result = import_accounts(validate_text(csv_text(*rows)))
    sizes = api_calls.batch_write_sizes()
    assert result.items_written == 61 + 91 == sum(sizes)
    assert sizes == [25] * 6 + [2]
    assert result.write_requests == len(sizes) == math.ceil(152 / 25)
    assert result.batch_efficiency == 1.0
    # Accounts are written before any claim, so a claim never points at a missing account.
    tables_in_order = [table for params in api_calls.params("BatchWriteItem")
                       for table, reqs in params["RequestItems"].items() for _ in reqs]
    first_claim = tables_in_order.index(Claim.Meta.table_name)
    assert set(tables_in_order[first_claim:]) == {Claim.Meta.table_name}
    assert Account.count() == 61


def test_unprocessed_items_are_retried_in_full_batches():
    class ThrottlingConnection:
        def __init__(self):
            self.sizes, self.throttled = [], False

        def dispatch(self, operation, params):
            (table, requests), = params["RequestItems"].items()
            self.sizes.append(len(requests))
            if not self.throttled:  # the first call: DynamoDB gives back 5 items
                self.throttled = True
                return {"UnprocessedItems": {table: requests[:5]}}
            return {}

    class Item:
        class Meta:
            table_name = "t"

        def __init__(self, n):
            self.n = n

        def serialize(self):
            return {"k": {"S": str(self.n)}}

    connection = ThrottlingConnection()
    writer = BatchWriter(connection, sleep=lambda s: None)
    for n in range(60):
        writer.put(Item(n))
    writer.flush()
    assert connection.sizes == [25, 25, 15]  # the 5 returned items rode in the next batch
    assert writer.items_written == 60 and writer.write_requests == 3


def test_persistent_throttling_raises_instead_of_losing_items():
    class AlwaysThrottled:
        def dispatch(self, operation, params):
            return {"UnprocessedItems": params["RequestItems"]}

    class Item:
        class Meta:
            table_name = "t"

        def serialize(self):
            return {"k": {"S": "x"}}

    writer = BatchWriter(AlwaysThrottled(), max_attempts=3, sleep=lambda s: None)
    writer.put(Item())
    with pytest.raises(BatchWriteIncomplete):
        writer.flush()


def test_dry_run_writes_nothing(tables, api_calls):
    result = import_accounts(validate_text(csv_text(csv_row("8100000001", "dry@example.com"))),
                             dry_run=True)
    assert result.imported == 1 and result.claims_written == 1
    assert api_calls.params("BatchWriteItem") == [] and Account.count() == 0


def test_reject_report_lists_rejects_and_warnings_without_formula_cells(tmp_path):
    validation = validate_text(csv_text(
        csv_row("=HYPERLINK(1)", "a@example.com"),
        csv_row("8200000001", "a@example.com")))
    path = tmp_path / "rejects.csv"
    write_reject_report(path, validation.issues)
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["row", "nr_number", "kind", "reason"]
    assert rows[1][:3] == ["2", "'=HYPERLINK(1)", "rejected"]


def test_the_demo_file_imports_and_shows_each_case(tables):
    result = import_accounts(validate_file(DEMO_CSV))
    assert (result.rows_read, result.imported, result.rejected) == (10, 10, 0)
    assert result.contested_emails == 1
    assert set(reasons(result, "warning")) == {"1000000006", "1000000007"}
    assert claim_holder("shared.office@example.com") is None
    assert claim_holder("grace.kim@example.org") == "1000000007"
    assert {a.status for a in Account.scan()} == {"active", "disabled", "removed"}
    assert {a.role for a in Account.scan()} == {"medical_examiner", "assistant", "third_party"}
