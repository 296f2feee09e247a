"""Validating the registry's CSV export (CONTRACT header), row by row, without a database.

Every row is checked on its own (registry number, names, role, status, emails) and
registry numbers must be unique in the file. Bad rows are rejected with a reason; nothing
about them is written. `supportdesk.registry_sync` syncs the valid rows.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from chalicelib.emails import InvalidEmail, normalize_email
from chalicelib.models import ACCOUNT_STATUSES, ROLES
from chalicelib.store import CSV_HEADER, is_registry_number
from supportdesk.safe_text import safe_text

MAX_NAME_LENGTH = 100
MAX_USERNAME_LENGTH = 100

# Fields the registry owns and a re-import may change. Link fields are never here.
IMPORTED_FIELDS = ("first_name", "last_name", "role", "status", "legacy_username")
EMAIL_FIELDS = (
    "primary_email",
    "primary_email_normalized",
    "secondary_email",
    "secondary_email_normalized",
)

REJECTED, WARNING = "rejected", "warning"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, wrong header). Nothing is written."""


@dataclass(frozen=True)
class Issue:
    row: int  # line number in the file (header = line 1)
    nr_number: str
    kind: str  # "rejected" or "warning"
    reason: str


@dataclass(frozen=True)
class AccountRow:
    """One valid CSV row, trimmed and normalized."""

    row: int
    nr_number: str
    first_name: str
    last_name: str
    role: str
    status: str
    primary_email: str
    primary_email_normalized: str
    secondary_email: str | None
    secondary_email_normalized: str | None
    legacy_username: str | None

    def values(self) -> dict:
        return {name: getattr(self, name) for name in IMPORTED_FIELDS + EMAIL_FIELDS}


@dataclass
class Validation:
    rows: list[AccountRow]
    issues: list[Issue]
    rows_read: int

    @property
    def rejected(self) -> int:
        return sum(1 for issue in self.issues if issue.kind == REJECTED)


SHOWN_LENGTH = 40


def _found(value: str) -> str:
    """` (found: VALUE)`, for the desk to see what was wrong: cut to SHOWN_LENGTH characters,
    control and invisible characters written as escapes (supportdesk.safe_text). The report
    writer keeps the cell from ever being read as a formula (supportdesk.csv_cells)."""
    text = value if len(value) <= SHOWN_LENGTH else value[:SHOWN_LENGTH] + "…"
    return f" (found: {safe_text(text)})"


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _check_text(value: str, label: str, *, required: bool, max_length: int) -> str | None:
    """Return a reason the value is unacceptable, or None."""
    if not value:
        return f"{label} is missing" if required else None
    if len(value) > max_length:
        return f"{label} is longer than {max_length} characters" + _found(value)
    if _has_control_characters(value):
        return f"{label} contains control characters" + _found(value)
    return None


def validate_row(line: int, raw: dict[str, str]) -> tuple[AccountRow | None, str | None]:
    """Check one row on its own; returns (row, None) or (None, reason)."""
    values = {
        name: unicodedata.normalize("NFC", (raw.get(name) or "")).strip() for name in CSV_HEADER
    }
    number = values["nr_number"]
    if not is_registry_number(number):
        return None, "nr_number must be exactly 10 digits" + _found(number)
    for name, label, required, limit in (
        ("first_name", "first_name", True, MAX_NAME_LENGTH),
        ("last_name", "last_name", True, MAX_NAME_LENGTH),
        ("legacy_username", "legacy_username", False, MAX_USERNAME_LENGTH),
    ):
        reason = _check_text(values[name], label, required=required, max_length=limit)
        if reason:
            return None, reason
    if values["role"] not in ROLES:
        return None, f"role must be one of {', '.join(ROLES)}" + _found(values["role"])
    if values["status"] not in ACCOUNT_STATUSES:
        return None, (
            f"status must be one of {', '.join(ACCOUNT_STATUSES)}" + _found(values["status"])
        )
    if not values["primary_email"]:
        return None, "primary_email is missing"
    try:
        primary = normalize_email(values["primary_email"])
    except InvalidEmail:
        return None, (
            "primary_email is not a valid email address" + _found(values["primary_email"])
        )
    secondary = None
    if values["secondary_email"]:
        try:
            secondary = normalize_email(values["secondary_email"])
        except InvalidEmail:
            return None, (
                "secondary_email is not a valid email address" + _found(values["secondary_email"])
            )
        if secondary == primary:
            return None, "secondary_email is the same address as primary_email"
    return AccountRow(
        row=line,
        nr_number=number,
        first_name=values["first_name"],
        last_name=values["last_name"],
        role=values["role"],
        status=values["status"],
        primary_email=values["primary_email"],
        primary_email_normalized=primary,
        secondary_email=values["secondary_email"] or None,
        secondary_email_normalized=secondary,
        legacy_username=values["legacy_username"] or None,
    ), None


def validate_csv(stream: TextIO) -> Validation:
    """Validate a whole CSV export. Raises ImportFileError if the header is not the CONTRACT's."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportFileError(f"the file is not readable CSV: {exc}") from None
    if header and header[0].startswith("\ufeff"):  # a byte-order mark from a spreadsheet
        header[0] = header[0][1:]
    if [name.strip() for name in header] != list(CSV_HEADER):
        raise ImportFileError("the header must be exactly: " + ",".join(CSV_HEADER))

    candidates: list[AccountRow] = []
    issues: list[Issue] = []
    rows_read = 0
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # blank line
            rows_read += 1
            line = reader.line_num
            number = record[0].strip() if record else ""
            if len(record) != len(CSV_HEADER):
                issues.append(
                    Issue(
                        line,
                        number,
                        REJECTED,
                        f"expected {len(CSV_HEADER)} fields, found {len(record)}",
                    )
                )
                continue
            row, reason = validate_row(line, dict(zip(CSV_HEADER, record, strict=True)))
            if row is not None:
                candidates.append(row)
            else:
                # validate_row gives a reason with every refusal.
                issues.append(Issue(line, number, REJECTED, reason or "invalid row"))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportFileError(
            f"the file is not readable CSV near line {reader.line_num}: {exc}"
        ) from None

    # A number twice in one file: we cannot tell which row is right, so neither is imported.
    lines_by_number: dict[str, list[int]] = defaultdict(list)
    for row in candidates:
        lines_by_number[row.nr_number].append(row.row)
    rows = []
    for row in candidates:
        lines = lines_by_number[row.nr_number]
        if len(lines) > 1:
            others = ", ".join(str(n) for n in lines if n != row.row)
            issues.append(
                Issue(
                    row.row, row.nr_number, REJECTED, f"duplicate nr_number (also on line {others})"
                )
            )
        else:
            rows.append(row)
    issues.sort(key=lambda issue: issue.row)
    return Validation(rows=rows, issues=issues, rows_read=rows_read)


def validate_file(path: str | Path) -> Validation:
    try:
        # utf-8-sig drops a byte-order mark; newline="" is what the csv module needs.
        with open(path, encoding="utf-8-sig", newline="") as stream:
            return validate_csv(stream)
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def validate_text(text: str) -> Validation:
    return validate_csv(io.StringIO(text, newline=""))
