"""Cookies: their names, reading them, and Set-Cookie values with the flags we want.

Read as browsers send them (RFC 6265 §5.4): `name=value` pairs separated by ";" and
optional whitespace, never with http.cookies.SimpleCookie, whose server-side grammar reads
`banner=1 __Host-nr_session=X` (one cookie of a sibling host, whose value holds a space) as
two cookies, the second ours, and drops every cookie after one it cannot parse.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.digests import sha256_hex

if TYPE_CHECKING:
    from chalice.app import Request

SESSION_COOKIE = "nr_session"
SIGNIN_COOKIE = "nr_signin"  # one per sign-in in flight: nr_signin_<state digest prefix>
LOGOUT_COOKIE = "nr_logout"
HOST_PREFIX = "__Host-"
# 64 bits of sha256(state): two sign-ins of one browser never share a cookie name.
SIGNIN_COOKIE_DIGEST_CHARS = 16
MAX_STATE_LENGTH = 128
# Sign-ins one browser may have in flight (tabs signing in at once): each /login drops the
# oldest beyond this, so the Cookie header stays small however often /login is hit.
SIGNIN_COOKIE_LIMIT = 3
_WSP = " \t"


def cookie_name(name: str) -> str:
    """The name a cookie has on this stage: `__Host-` + name wherever the site is https.

    Cookie planting (a sibling subdomain setting Domain=, or a forged plain-http answer
    before HSTS) cannot set or overwrite a `__Host-` cookie: browsers accept one only from
    this very host over https, Secure, Path=/ and without Domain. The local stage is plain
    http, where browsers drop Secure cookies and so every `__Host-` cookie: plain names there.
    """
    return HOST_PREFIX + name if get_settings().secure_cookies else name


def signin_cookie(state: str | None) -> str | None:
    """The base name of the binding cookie of the sign-in with this state (None: no state).

    One cookie per sign-in, named after its state, so two tabs signing in at once each keep
    their own binding and no response overwrites another's.
    """
    if not state or len(state) > MAX_STATE_LENGTH:
        return None
    return f"{SIGNIN_COOKIE}_{sha256_hex(state)[:SIGNIN_COOKIE_DIGEST_CHARS]}"


def cookie_header(request: Request) -> str:
    """Every Cookie header field the request carries, joined with "; " (RFC 9113 §8.2.3).

    API Gateway's REST proxy event keeps only the last field of a repeated header in
    `headers` (Chalice's `request.headers`) and all of them in `multiValueHeaders`; an
    HTTP/2 browser may send one `cookie` field per cookie.
    """
    event = request.to_original_event() if hasattr(request, "to_original_event") else {}
    fields = [
        value
        for key, values in (event.get("multiValueHeaders") or {}).items()
        if key.lower() == "cookie"
        for value in values or ()
        if isinstance(value, str)
    ]
    if not fields:
        single = request.headers.get("cookie")
        fields = [single] if isinstance(single, str) else []
    return "; ".join(fields)


def parse_cookies(header: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of a Cookie header, in order, duplicates kept.

    A value holds anything but ";" (spaces, quotes, "=", non-ASCII) and never starts
    another cookie: only what follows a ";" can. A piece without "=" or without a name is
    skipped, never fatal: one odd cookie of another site must not hide ours.
    """
    pairs = []
    for piece in header.split(";"):
        name, equals, value = piece.partition("=")
        name = name.strip(_WSP)
        if equals and name:
            pairs.append((name, value.strip(_WSP)))
    return pairs


def request_cookies(request: Request) -> list[tuple[str, str]]:
    return parse_cookies(cookie_header(request))


def cookie_value(pairs: list[tuple[str, str]], full_name: str) -> str | None:
    """The value of the one cookie named `full_name`, or None (absent, empty or repeated)."""
    values = [value for name, value in pairs if name == full_name]
    # Cookie tossing: a name sent twice means a sibling host or a plain-http answer planted
    # one; which one is ours cannot be told, so neither is read (a plant can only sign out).
    return values[0] or None if len(values) == 1 else None


def read_cookie(request: Request, name: str) -> str | None:
    """The value of cookie `name` (a base name: the stage's prefix is added here)."""
    return cookie_value(request_cookies(request), cookie_name(name))


# --- the sign-in binding cookie's value: "<issue time in ms>.<binding>" -----------------------
# The issue time orders a browser's sign-in cookies without a DynamoDB read; the binding
# (signin.start_signin's random token, which holds no ".") is what the callback presents.


def signin_cookie_value(binding: str, issued_ms: int | None = None) -> str:
    issued_ms = int(clock.now() * 1000) if issued_ms is None else issued_ms
    return f"{issued_ms}.{binding}"


def signin_cookie_binding(value: str | None) -> str | None:
    """The binding a sign-in cookie's value carries (all of it for a value without issue
    time, as set before the time was added)."""
    return value.rpartition(".")[2] or None if value else None


def _signin_cookie_issued(value: str) -> int:
    issued, dot, _ = value.partition(".")
    well_formed = dot and 0 < len(issued) <= 19 and issued.isascii() and issued.isdigit()
    return int(issued) if well_formed else 0  # bounded: int() refuses a 5,000-digit string


def stale_signin_cookies(request: Request) -> list[str]:
    """Base names of this browser's sign-in cookies that a new /login replaces: all but the
    newest SIGNIN_COOKIE_LIMIT - 1 (the new one makes the limit)."""
    pattern = re.compile(
        re.escape(cookie_name(SIGNIN_COOKIE)) + rf"_[0-9a-f]{{{SIGNIN_COOKIE_DIGEST_CHARS}}}"
    )
    seen: dict[str, list[str]] = {}
    for name, value in request_cookies(request):
        if pattern.fullmatch(name):
            seen.setdefault(name, []).append(value)
    # A repeated name is unreadable anyway (cookie_value): oldest, so dropped first.
    issued = {
        name: _signin_cookie_issued(values[0]) if len(values) == 1 else -1
        for name, values in seen.items()
    }
    newest_first = sorted(seen, key=lambda name: (issued[name], name), reverse=True)
    prefix_length = len(cookie_name(""))
    return [name[prefix_length:] for name in newest_first[SIGNIN_COOKIE_LIMIT - 1 :]]


def set_cookie(name: str, value: str, max_age: int) -> str:
    # HttpOnly: no script reads it. SameSite=Lax: sent on the top-level redirect back from
    # Login.gov but not on cross-site POSTs. Secure wherever the site is https (and the
    # `__Host-` prefix with it, see cookie_name). Never a Domain attribute.
    parts = [
        f"{cookie_name(name)}={value}",
        "Path=/",
        f"Max-Age={max_age}",
        "HttpOnly",
        "SameSite=Lax",
    ]
    if get_settings().secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie(name: str) -> str:
    return set_cookie(name, "", 0)
