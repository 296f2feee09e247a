"""Cookies: parsing and Set-Cookie values with the flags this service always wants."""
from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from chalicelib.config import get_settings

SESSION_COOKIE = "nr_session"
SIGNIN_COOKIE = "nr_signin"
LOGOUT_COOKIE = "nr_logout"


def read_cookie(headers: dict, name: str) -> str | None:
    raw = headers.get("cookie") or headers.get("Cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def set_cookie(name: str, value: str, max_age: int) -> str:
    # HttpOnly: no script reads it. SameSite=Lax: sent on the top-level redirect back from
    # Login.gov but not on cross-site POSTs. Secure wherever the site is https.
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if get_settings().secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie(name: str) -> str:
    return set_cookie(name, "", 0)
