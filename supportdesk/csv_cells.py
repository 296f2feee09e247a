"""Every CSV the support desk writes (the import's reject report, `export-changes --format
csv`) goes through here, so no cell can run as a spreadsheet formula or hide what it holds.

Threat: CSV (formula) injection. A registry row or an address typed by a person may start
with `=`, `+`, `-` or `@` (`=HYPERLINK(...)` is a valid email local part); opened in a
spreadsheet, such a cell runs as a formula. Such a cell is written with a leading `'`,
which spreadsheets show as text; a program reading the CSV sees the apostrophe. Control,
bidirectional and invisible characters are written as escapes first (`\x1b`, `\u202e`:
supportdesk.safe_text, the desk's one rule for text it shows).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from supportdesk.safe_text import safe_text

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as safe text, with a leading `'` when a spreadsheet would read it as a
    formula."""
    text = safe_text(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_rows(stream: TextIO, header: Iterable[str], rows: Iterable[Iterable[object]]) -> None:
    """A header and rows, every cell made safe."""
    writer = csv.writer(stream)
    writer.writerow([safe_cell(name) for name in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
