"""Cookies: their names, parsing, and Set-Cookie values with the flags this service wants."""
from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from chalicelib.config import get_settings
from chalicelib.digests import sha256_hex

SESSION_COOKIE = "nr_session"
SIGNIN_COOKIE = "nr_signin"   # one per sign-in in flight: nr_signin_<state digest prefix>
LOGOUT_COOKIE = "nr_logout"
HOST_PREFIX = "__Host-"
# 64 bits of sha256(state): two sign-ins of one browser never share a cookie name.
SIGNIN_COOKIE_DIGEST_CHARS = 16
MAX_STATE_LENGTH = 128


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


def read_cookie(headers: dict, name: str) -> str | None:
    """The value of cookie `name` (a base name: the stage's prefix is added here)."""
    raw = headers.get("cookie") or headers.get("Cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(cookie_name(name))
    return morsel.value if morsel else None


def set_cookie(name: str, value: str, max_age: int) -> str:
    # HttpOnly: no script reads it. SameSite=Lax: sent on the top-level redirect back from
    # Login.gov but not on cross-site POSTs. Secure wherever the site is https (and the
    # `__Host-` prefix with it, see cookie_name). Never a Domain attribute.
    parts = [f"{cookie_name(name)}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly",
             "SameSite=Lax"]
    if get_settings().secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie(name: str) -> str:
    return set_cookie(name, "", 0)
