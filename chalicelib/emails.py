"""The one email normalization rule, used for every comparison and every index key.

email-validator does the RFC syntax and IDNA work (hand-written regexes get both wrong);
on top of it we case-fold the local part, because registry users typed their addresses in
every case and mail providers treat them case-insensitively, and we key on the ASCII (IDNA)
form of the domain so `bücher.example` and `xn--bcher-kva.example` are one address.
"""
from __future__ import annotations

import unicodedata

INSTITUTIONAL_TLDS = frozenset({"gov", "mil", "edu"})
MAX_EMAIL_LENGTH = 254


class InvalidEmail(ValueError):
    """The text is not a usable email address."""


def normalize_email(raw: str) -> str:
    """Return the canonical form of an address, or raise InvalidEmail.

    Idempotent: normalize_email(normalize_email(x)) == normalize_email(x).
    """
    if not isinstance(raw, str):
        raise InvalidEmail("not text")
    text = unicodedata.normalize("NFC", raw).strip()
    if not text or len(text) > MAX_EMAIL_LENGTH:
        raise InvalidEmail("empty or too long")
    # Imported on first use (compiling its RFC regexes costs ~25 ms): /login never needs it.
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return f"{result.local_part.casefold()}@{result.ascii_domain.lower()}"


def try_normalize_email(raw: str | None) -> str | None:
    """normalize_email for optional input: None for missing or invalid text."""
    if not raw:
        return None
    try:
        return normalize_email(raw)
    except InvalidEmail:
        return None


def is_institutional(normalized_email: str | None) -> bool:
    """True for .gov, .mil and .edu addresses (any subdomain): the FAQ advises moving off them."""
    if not normalized_email or "@" not in normalized_email:
        return False
    domain = normalized_email.rsplit("@", 1)[1]
    return domain.rsplit(".", 1)[-1] in INSTITUTIONAL_TLDS
