"""The registry export's rows, checked without a database (supportdesk.csv_validation)."""

from __future__ import annotations

import csv

import pytest

from supportdesk.csv_validation import ImportFileError, validate_file, validate_text
from supportdesk.registry_sync import write_reject_report
from tests.support.accounts import csv_row, csv_text


@pytest.mark.parametrize(
    "row, reason",
    [
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
        (
            csv_row("1234567890", "a@example.com", "b@@example.com"),
            "secondary_email is not a valid email address",
        ),
        (
            csv_row("1234567890", "a@example.com", " A@Example.COM "),
            "secondary_email is the same address as primary_email",
        ),
        (
            "1234567890,Pat,Examiner,medical_examiner,a@example.com,,,active,extra",
            "expected 8 fields, found 9",
        ),
    ],
)
def test_a_bad_row_is_rejected_with_its_reason(row, reason):
    good = csv_row("2000000001", "good@example.com")
    validation = validate_text(csv_text(good, row))
    assert [r.nr_number for r in validation.rows] == ["2000000001"]
    assert validation.rows_read == 2
    (issue,) = validation.issues
    assert issue.kind == "rejected" and issue.row == 3
    assert issue.reason.startswith(reason)


def test_valid_rows_are_trimmed_and_normalized():
    validation = validate_text(
        csv_text(
            csv_row(
                " 0000000042 ",
                " Dr.Pat@Example.COM ",
                "pat@Example.org",
                username=" pat42 ",
                first=" Pat ",
                role="assistant",
                status="disabled",
            )
        )
    )
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
    validation = validate_text(
        csv_text(
            csv_row("3000000001", "one@example.com"),
            csv_row("3000000002", "two@example.com"),
            csv_row("3000000001", "three@example.com"),
        )
    )
    assert [r.nr_number for r in validation.rows] == ["3000000002"]
    assert [(i.row, i.nr_number, i.kind) for i in validation.issues] == [
        (2, "3000000001", "rejected"),
        (4, "3000000001", "rejected"),
    ]
    assert "duplicate nr_number (also on line 4)" in validation.issues[0].reason


@pytest.mark.parametrize(
    "header",
    [
        "nr_number,first_name,last_name,role,primary_email,secondary_email,status",
        "nr_number,first_name,last_name,role,primary_email,secondary_email,status,legacy_username",
        "",
    ],
)
def test_a_wrong_header_refuses_the_whole_file(header):
    with pytest.raises(ImportFileError, match="header must be exactly"):
        validate_text(header + "\n" + csv_row("1234567890", "a@example.com") + "\n")


def test_a_byte_order_mark_and_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        (
            "\ufeff"
            + csv_text(
                csv_row("1234567890", "a@example.com"), "", csv_row("1234567891", "b@example.com")
            )
        ).encode("utf-8")
    )
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


def test_reject_report_lists_rejects_and_warnings_without_formula_cells(tmp_path):
    validation = validate_text(
        csv_text(csv_row("=HYPERLINK(1)", "a@example.com"), csv_row("8200000001", "a@example.com"))
    )
    path = tmp_path / "rejects.csv"
    write_reject_report(path, validation.issues)
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["row", "nr_number", "kind", "reason"]
    assert rows[1][:3] == ["2", "'=HYPERLINK(1)", "rejected"]


@pytest.mark.parametrize(
    "row, shown",
    [
        (csv_row("123456789", "a@example.com"), "(found: 123456789)"),
        (csv_row("1234567890", "a@example.com", role="doctor"), "(found: doctor)"),
        (csv_row("1234567890", "a@example.com", status="suspended"), "(found: suspended)"),
        (csv_row("1234567890", "not-an-email"), "(found: not-an-email)"),
        (csv_row("1234567890", "a@example.com", "b@@example.com"), "(found: b@@example.com)"),
        (csv_row("1234567890", "a@example.com", first="Pat\u200b"), "(found: Pat\\u200b)"),
        (csv_row("1234567890", "a@example.com", first="P" * 150), "(found: " + "P" * 40 + "…)"),
    ],
)
def test_a_rejected_row_shows_the_offending_value_visibly(row, shown):
    (issue,) = validate_text(csv_text(row)).issues
    assert issue.reason.endswith(shown), issue.reason


def test_an_offending_value_cannot_become_a_formula_in_the_report(tmp_path):
    validation = validate_text(
        csv_text(csv_row("1234567890", '=HYPERLINK("http://x")'), csv_row("=1+1", "b@example.com"))
    )
    path = tmp_path / "rejects.csv"
    write_reject_report(path, validation.issues)
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))[1:]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert '=HYPERLINK("http://x")' in rows[0][3]  # shown, inside the reason's text
