"""return_to accepts same-site relative paths only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.redirects import safe_return_path


@pytest.mark.parametrize(
    "value", ["/account", "/account?tab=emails", "/link/recover", "/account#top", "/a/b-c_d.e~f"]
)
def test_same_site_paths_pass(value):
    assert safe_return_path(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%2F%5Cevil",
        "/%2f%2fevil.example",
        "/%5cevil",
        "/%252F%252Fevil",
        "/a\tb",
        "/a\nb",
        "/a\rb",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\x00",
        "/ space",
        "/" + "a" * 600,
        "http:/evil.example",
        "/\u2215evil",
    ],
)
def test_everything_else_is_refused(value):
    assert safe_return_path(value) is None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_anything_accepted_stays_on_this_site(value):
    accepted = safe_return_path(value)
    if accepted is None:
        return
    assert accepted.startswith("/") and not accepted.startswith("//")
    assert "\\" not in accepted and not any(c in accepted for c in "\t\r\n")
