"""A test browser: keeps cookies, talks to the app through Chalice's test client and to the
local Login.gov by HTTP; and the form steps the recovery and email-change tests share."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from localdev.html_forms import parse_forms
from tests.support import APP_BASE_URL


class Page:
    def __init__(self, status: int, headers: dict, body: str, url: str):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    @property
    def location(self) -> str | None:
        return self.headers.get("Location") or self.headers.get("location")

    def __repr__(self):
        return f"<Page {self.status} {self.url} -> {self.location}>"


class Browser:
    """Keeps cookies, talks to the app through the Chalice test client and to the IdP by HTTP."""

    def __init__(self, client, idp):
        self.client, self.idp = client, idp
        self.cookies: dict[str, str] = {}

    def _store_cookies(self, headers: dict) -> None:
        raw = headers.get("Set-Cookie") or headers.get("set-cookie")
        if not raw:
            return
        values = raw if isinstance(raw, list) else re.split(r",(?=\s*\w+=)", raw)
        for value in values:
            name, _, rest = value.strip().partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value

    def get(self, url: str, headers: dict | None = None) -> Page:
        if url.startswith(self.idp.base):
            resp = requests.get(url, allow_redirects=False, timeout=10)
            return Page(resp.status_code, dict(resp.headers), resp.text, url)
        path = url[len(APP_BASE_URL) :] if url.startswith(APP_BASE_URL) else url
        all_headers = dict(headers or {})
        if self.cookies and "Cookie" not in all_headers:  # a test may send its own
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        resp = self.client.http.get(path, headers=all_headers)
        body = resp.body.decode() if isinstance(resp.body, bytes) else (resp.body or "")
        self._store_cookies(resp.headers)
        return Page(resp.status_code, dict(resp.headers), body, path)

    def post(self, path: str, fields: dict) -> Page:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        resp = self.client.http.post(path, headers=headers, body=urlencode(fields))
        body = resp.body.decode() if isinstance(resp.body, bytes) else (resp.body or "")
        self._store_cookies(resp.headers)
        return Page(resp.status_code, dict(resp.headers), body, path)

    def follow(self, page: Page, limit: int = 5) -> Page:
        while page.status in (301, 302, 303) and limit:
            assert page.location is not None, page
            page = self.get(page.location)
            limit -= 1
        return page

    def start_signin(self, return_to: str | None = None) -> str:
        """GET /login; returns the authorization URL at the IdP."""
        path = "/login" + (f"?{urlencode({'return_to': return_to})}" if return_to else "")
        page = self.get(path)
        assert page.status == 302 and page.location is not None, page
        return page.location

    def authorize(
        self, authorization_url: str, emails: list[str], action="continue", sub: str | None = None
    ) -> str:
        """Fill in the IdP's form; returns the callback URL it redirects to."""
        page = self.get(authorization_url)
        assert page.status == 200, page.body
        fields = parse_forms(page.body)[0]["fields"]
        fields.update({"emails": "\n".join(emails), "action": action})
        if sub:
            fields["sub"] = sub  # a chosen identity, e.g. many people with one email
        resp = requests.post(
            self.idp.url("/openid_connect/authorize"),
            data=fields,
            allow_redirects=False,
            timeout=10,
        )
        assert resp.status_code == 302, resp.text
        return resp.headers["Location"]

    def signin_binding(self, state: str) -> str | None:
        """The binding that /login's cookie for the sign-in with this state carries."""
        from chalicelib import web

        name = web.signin_cookie(state)
        return web.signin_cookie_binding(self.cookies.get(web.cookie_name(name)) if name else None)

    def has_signin_cookie(self) -> bool:
        return any("nr_signin" in name for name in self.cookies)

    def sign_in(
        self, emails: list[str], return_to: str | None = None, sub: str | None = None
    ) -> Page:
        """The whole round trip; returns the app's answer to the callback (not followed)."""
        callback = self.authorize(self.start_signin(return_to), emails, sub=sub)
        return self.get(callback)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def browser(app_client, idp):
    return Browser(app_client, idp)


@pytest.fixture
def other_browser(app_client, idp):
    return Browser(app_client, idp)


# --- form steps ---------------------------------------------------------------------------------


def csrf_of(page: Page) -> str:
    for form in parse_forms(page.body):
        if "csrf_token" in form["fields"]:
            return form["fields"]["csrf_token"]
    raise AssertionError(f"no CSRF token on {page.url}")


def signed_in_unmatched(
    browser: Browser, login_gov_email: str = "stranger@example.net", sub: str | None = None
) -> Page:
    """Sign in with a Login.gov email no registry account has; returns the no-match page."""
    page = browser.sign_in([login_gov_email], sub=sub)
    assert page.location == "/link/no-match", page
    page = browser.get("/link/no-match")
    assert page.status == 200
    return page


def request_recovery(browser: Browser, email: str, page: Page | None = None) -> Page:
    page = page or browser.get("/link/recover")
    return browser.post("/link/recover", {"csrf_token": csrf_of(page), "email": email})


def session_csrf(browser: Browser, *, linked: bool) -> str:
    """This browser's session CSRF token, read from a page that has a form."""
    return csrf_of(browser.get("/account/email" if linked else "/link/recover"))


def enter_code(browser: Browser, path: str, code: str, token: str | None = None) -> Page:
    token = token or session_csrf(browser, linked=path.startswith("/account"))
    return browser.post(path, {"csrf_token": token, "code": code})
