"""Email normalization: one rule, idempotent, never a crash, and never two mailboxes in one key.

The rule: NFC, ASCII letters of the local part lower-cased (RFC 5321 practice: mail
providers match those case-insensitively), every other character of the local part kept
exactly as written, the domain in its IDNA (ASCII) form. Unicode case folding is not
mailbox equivalence: `casefold()` turns `baſhir` into `bashir`, `straße` into `strasse`,
`oﬃce` into `office` and `σπύρος` into `σπύροσ` — different mailboxes, possibly different
people's.
"""

from __future__ import annotations

import string
import unicodedata
import uuid

import idna
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chalicelib.emails import InvalidEmail, is_institutional, normalize_email, try_normalize_email
from chalicelib.models import Account, Claim
from tests.support.accounts import make_account
from tests.support.browser import enter_code, session_csrf


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Dr.Alice@Example.COM", "dr.alice@example.com"),
        ("  dr.alice@example.com\t", "dr.alice@example.com"),
        ("alice@Bücher.example.com", "alice@xn--bcher-kva.example.com"),
        ("alice@xn--bcher-kva.example.com", "alice@xn--bcher-kva.example.com"),
        # Only ASCII letters are lower-cased; Ü and Ï are kept as written.
        ("ÜNÏ@example.com", "ÜnÏ@example.com"),
        # NFC: a decomposed é is the same text as a precomposed one.
        ("Re\u0301my@example.com", "r\u00e9my@example.com"),
        # The Kelvin sign is K by NFC (a canonical singleton), not by case folding.
        ("\u212aim@example.com", "kim@example.com"),
    ],
)
def test_normalizes(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "look_alike, real",
    [
        ("baſhir.okafor.md@example.com", "bashir.okafor.md@example.com"),  # long s
        ("straße@example.com", "strasse@example.com"),  # sharp s
        ("oﬃce@example.com", "office@example.com"),  # ffi ligature
        ("σπύροσ@example.com", "σπύρος@example.com"),  # final sigma
        ("ａｌｉｃｅ@example.com", "alice@example.com"),  # fullwidth (NFKC)
        ("ÜNÏ@example.com", "ünï@example.com"),  # non-ASCII case
    ],
)
def test_different_mailboxes_never_share_a_key(look_alike, real):
    assert normalize_email(look_alike) != normalize_email(real)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plainaddress",
        "a@",
        "@b.com",
        "a@b@c.com",
        "a@localhost",
        "a@b.test",
        "a" * 250 + "@example.com",
        "a b@example.com",
        None,
        42,
    ],
)
def test_rejects_invalid(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)
    assert try_normalize_email(raw if isinstance(raw, str) else None) is None


local_parts = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]", fullmatch=True)
domains = st.sampled_from(
    [
        "example.com",
        "Example.ORG",
        "mail.example.net",
        "va.gov",
        "bücher.example.com",
        "XN--BCHER-KVA.example.com",
    ]
)


@settings(max_examples=200, deadline=None)
@given(local_parts, domains, st.sampled_from(["", " ", "\t", "  "]))
def test_case_and_space_variants_are_equal_and_idempotent(local, domain, pad):
    address = f"{local}@{domain}"
    try:
        canonical = normalize_email(address)
    except InvalidEmail:
        return  # e.g. consecutive dots: refused consistently below
    assert normalize_email(pad + address.upper() + pad) == canonical
    assert normalize_email(pad + address.lower() + pad) == canonical
    assert normalize_email(canonical) == canonical


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text):
    try:
        result = normalize_email(text)
    except InvalidEmail:
        return
    assert normalize_email(result) == result


# --- the property: a shared key means the same mailbox --------------------------------------

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def same_mailbox_key(address: str) -> tuple[str, str]:
    """What "the same mailbox" means, written independently of chalicelib: equal after NFC,
    ASCII lower-casing of the local part and IDNA of the domain."""
    text = unicodedata.normalize("NFC", address).strip()
    local, domain = text.rsplit("@", 1)
    return local.translate(_ASCII_LOWER), idna.encode(domain, uts46=True).decode().lower()


# Characters that Unicode case mapping, case folding or NFKC merge with others, beside
# plain ASCII: each must stay itself in a key.
TRICKY = [
    "s",
    "S",
    "k",
    "K",
    "i",
    "I",
    "e",
    "E",
    "o",
    "f",
    "ss",
    "ffi",
    "ſ",
    "ß",
    "ẞ",
    "ﬃ",
    "ς",
    "σ",
    "Σ",
    "\u212a",
    "\u0130",
    "ı",
    "é",
    "É",
    "e\u0301",
    "ü",
    "Ü",
    "u\u0308",
    "Å",
    "\u212b",
    "ａ",
    "Ａ",
    "µ",
    "μ",
    "ǅ",
    "ǆ",
    "Ǆ",
    "1",
    "-",
    "+",
    ".",
]
# Ways the same or a look-alike character may be typed.
VARIANTS = [
    lambda t: t,
    lambda t: t.upper(),
    lambda t: t.lower(),
    lambda t: t.casefold(),
    lambda t: unicodedata.normalize("NFD", t),
    lambda t: unicodedata.normalize("NFKC", t),
    lambda t: t.translate(_ASCII_LOWER),
]
mailbox_domains = st.sampled_from(
    [
        "example.com",
        "EXAMPLE.com",
        "bücher.example",
        "BÜCHER.example",
        "xn--bcher-kva.example",
        "b\u00fccher.example",
        "bu\u0308cher.example",
        "example.org",
    ]
)


@st.composite
def address_pairs(draw):
    """Two addresses typed from one list of characters, each character varied on its own,
    so that most pairs are look-alikes and many are equal keys."""
    pieces = draw(st.lists(st.sampled_from(TRICKY), min_size=1, max_size=8))
    first = "".join(draw(st.sampled_from(VARIANTS))(p) for p in pieces)
    second = "".join(draw(st.sampled_from(VARIANTS))(p) for p in pieces)
    return f"{first}@{draw(mailbox_domains)}", f"{second}@{draw(mailbox_domains)}"


@settings(max_examples=1500, deadline=None)
@given(address_pairs())
def test_two_addresses_share_a_key_only_if_they_are_the_same_mailbox(pair):
    first, second = pair
    keys = []
    for address in pair:
        try:
            keys.append(normalize_email(address))
        except InvalidEmail:
            assume(False)
    same_key = keys[0] == keys[1]
    assert same_key == (same_mailbox_key(first) == same_mailbox_key(second)), (pair, keys)


# --- through the service: a look-alike never links or claims the real mailbox -----------------

LOOK_ALIKES = [
    pytest.param("baſhir.okafor.md@example.com", "bashir.okafor.md@example.com", id="long-s"),
    pytest.param("straße.md@example.com", "strasse.md@example.com", id="sharp-s"),
    pytest.param("oﬃce.okafor@example.com", "office.okafor@example.com", id="ffi"),
    pytest.param("σπύρος.md@example.com", "σπύροσ.md@example.com", id="final-sigma"),
]


@pytest.mark.parametrize("look_alike, real", LOOK_ALIKES)
def test_a_login_gov_look_alike_does_not_link_the_real_record(
    browser, other_browser, look_alike, real
):
    make_account(
        "1000000002",
        primary="b.okafor@example.org",
        secondary=real,
        first_name="Bashir",
        last_name="Okafor",
    )
    page = browser.sign_in([look_alike], sub=str(uuid.uuid4()))
    assert page.location == "/link/no-match"
    assert Account.get("1000000002").linked_sub is None
    # The real owner still links by their own address.
    owner = str(uuid.uuid4())
    assert other_browser.sign_in([real], sub=owner).location == "/account"
    assert Account.get("1000000002").linked_sub == owner


@pytest.mark.parametrize("look_alike, real", LOOK_ALIKES)
def test_an_email_change_to_a_look_alike_claims_only_the_look_alike(
    browser, other_browser, mailbox, look_alike, real
):
    make_account("1000000001", primary="mallory@example.net")
    assert browser.sign_in(["mallory@example.net"], sub=str(uuid.uuid4())).location == "/account"
    page = browser.post(
        "/account/email",
        {
            "csrf_token": session_csrf(browser, linked=True),
            "change": "secondary",
            "email": look_alike,
        },
    )
    assert page.location == "/account/email/confirm"
    page = enter_code(browser, "/account/email/confirm", mailbox.code_for(look_alike))
    assert page.status == 200
    assert Claim.get(Claim.email_key(normalize_email(look_alike))).nr_number == "1000000001"
    assert Claim.count(Claim.email_key(normalize_email(real))) == 0
    # The real mailbox's owner, once imported, is linked to their own record, not Mallory's.
    make_account("1000000002", primary=real, first_name="Bashir", last_name="Okafor")
    owner = str(uuid.uuid4())
    assert other_browser.sign_in([real], sub=owner).location == "/account"
    assert Account.get("1000000002").linked_sub == owner
    assert Account.get("1000000001").linked_sub != owner


@pytest.mark.parametrize(
    "email, expected",
    [
        ("x@va.gov", True),
        ("x@fmcsa.dot.gov", True),
        ("x@army.mil", True),
        ("x@mit.edu", True),
        ("x@gov.example.com", False),
        ("x@example.com", False),
        ("x@edu.example.org", False),
        (None, False),
        ("", False),
    ],
)
def test_institutional(email, expected):
    assert is_institutional(email) is expected
