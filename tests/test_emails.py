"""Email normalization: one rule, idempotent, case/space/IDNA-insensitive, never a crash."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from chalicelib.emails import InvalidEmail, is_institutional, normalize_email, try_normalize_email


@pytest.mark.parametrize("raw, expected", [
    ("Dr.Alice@Example.COM", "dr.alice@example.com"),
    ("  dr.alice@example.com\t", "dr.alice@example.com"),
    ("alice@Bücher.example.com", "alice@xn--bcher-kva.example.com"),
    ("alice@xn--bcher-kva.example.com", "alice@xn--bcher-kva.example.com"),
    ("ÜNÏ@example.com", "ünï@example.com"),
])
def test_normalizes(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "plainaddress", "a@", "@b.com", "a@b@c.com",
                                 "a@localhost", "a@b.test", "a" * 250 + "@example.com",
                                 "a b@example.com", None, 42])
def test_rejects_invalid(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)
    assert try_normalize_email(raw if isinstance(raw, str) else None) is None


local_parts = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]", fullmatch=True)
domains = st.sampled_from(["example.com", "Example.ORG", "mail.example.net", "va.gov",
                           "bücher.example.com", "XN--BCHER-KVA.example.com"])


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


@pytest.mark.parametrize("email, expected", [
    ("x@va.gov", True), ("x@fmcsa.dot.gov", True), ("x@army.mil", True), ("x@mit.edu", True),
    ("x@gov.example.com", False), ("x@example.com", False), ("x@edu.example.org", False),
    (None, False), ("", False),
])
def test_institutional(email, expected):
    assert is_institutional(email) is expected
