"""The one email normalization rule, used for every comparison and every index key.

Two addresses get one key only if they are the same mailbox:

- NFC first, so a decomposed `é` and a precomposed one are one character;
- email-validator checks the RFC syntax and gives the IDNA (ASCII) form of the domain, so
  `bücher.example` and `xn--bcher-kva.example` are one address (domains are case-blind);
- in the local part only the ASCII letters A-Z are lower-cased (RFC 5321 practice: registry
  users typed their addresses in every case, and mail providers match those letters
  case-insensitively). Every other character is kept exactly: Unicode case folding or NFKC
  would merge different mailboxes (`baſhir`→`bashir`, `straße`→`strasse`, `oﬃce`→`office`,
  `σπύρος`→`σπύροσ`), letting a Login.gov account verified at a look-alike address link,
  or claim, someone else's record.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable

INSTITUTIONAL_TLDS = frozenset({"gov", "mil", "edu"})
MAX_EMAIL_LENGTH = 254
# What a form's email field keeps of what was typed (it is shown again on the page): longer
# than any address, short enough that a page never echoes a wall of text.
MAX_EMAIL_INPUT_LENGTH = 320
# Only A-Z -> a-z: str.lower() would also map the Kelvin sign to k and Ü to ü.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


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
    return f"{result.local_part.translate(_ASCII_LOWER)}@{result.ascii_domain.lower()}"


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


def typed_address(typed: str | None, invalid: Callable[[str], Exception]) -> tuple[str, str]:
    """What a person typed in an email field, trimmed and cut to MAX_EMAIL_INPUT_LENGTH
    (pages show it again), and its normalized form; `invalid(text)` is raised when it is no
    address."""
    text = (typed or "").strip()[:MAX_EMAIL_INPUT_LENGTH]
    try:
        return text, normalize_email(text)
    except InvalidEmail:
        raise invalid(text) from None
