"""Text a person or Login.gov supplied, made safe to show at the support desk: one
function, `safe_text`, for every desk output (manage.py's human output and error lines, the
CSV files, the HTML report; the support console to come).

Threat: a value that drives the desk's terminal or reorders what it shows. A Login.gov
email, a registry row or a typed reason may hold terminal escape sequences (`\\x1b[2J`
clears the screen, others retitle the window or rewrite lines), line breaks that forge
output lines, or bidirectional and invisible formatting characters (U+202E shows
`moc.elpmaxe@` for `example.com@`; a zero-width space makes two addresses look alike).
Neither a terminal, a spreadsheet nor Jinja's HTML autoescape neutralises them. Each such
character is written as an escape that shows what is there: `\\x1b`, `\\u202e`.
"""

from __future__ import annotations

import unicodedata

# Bidirectional and invisible formatting characters named on their own: every one of them
# is format (Cf) but U+2065, which is unassigned and still reserved for them.
_NAMED = frozenset(
    [0x061C, 0xFEFF, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x206A)]
)
# Control (C0, DEL, C1), format (bidi, invisible), surrogate, line and paragraph separators.
_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code in _NAMED or unicodedata.category(ch) in _CATEGORIES:
        return (
            f"\\x{code:02x}"
            if code < 0x100
            else f"\\u{code:04x}"
            if code < 0x10000
            else f"\\U{code:08x}"
        )
    return ch


def safe_text(value: object) -> str:
    """`value` as text with every control character (C0, DEL, C1), bidirectional or
    invisible formatting character, surrogate and line or paragraph separator written as
    an escape (`\\x1b`, `\\u202e`); everything else as it is. None is ""."""
    text = "" if value is None else str(value)
    if text.isprintable():  # every character escaped below is one it refuses
        return text
    return "".join(_escaped(ch) for ch in text)
