"""The pictures on /help are screenshots of the real pages, taken here: running this test
rewrites chalicelib/static/help/*.png (commit them), so /help never shows a page that is
no longer there.

Chromium talks to the app in-process (the Chalice test client behind Playwright's request
interception, moto behind it) and to the local Login.gov on a free port: no fixed port is
bound, so it runs next to `make run`.
"""

from __future__ import annotations

import http.server
import struct
import threading

import pytest

from chalicelib import help_pictures
from tests.support import CLIENT_ID
from tests.support.accounts import make_account
from tests.support.e2e import assert_accessible

WIDTH, HEIGHT = 800, 560  # small, and wide enough to read the page


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


class _AppOverHttp(http.server.BaseHTTPRequestHandler):
    """Each request answered by the app through the Chalice test client (moto behind it)."""

    client = None  # set per server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.client.http.request(self.command, self.path, headers=headers, body=body)
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            for one in value if isinstance(value, list) else [value]:
                self.send_header(name, one)
        payload = response.body or b""
        payload = payload.encode() if isinstance(payload, str) else payload
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # quiet: the app logs its own events
        pass


@pytest.fixture
def app_url(app_client, idp, monkeypatch):
    """The app on a free port of 127.0.0.1, registered at the local Login.gov."""
    from chalicelib import config

    handler = type("Handler", (_AppOverHttp,), {"client": app_client})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    registered = idp.clients[CLIENT_ID]
    registered.redirect_uris.append(url + "/auth/callback")
    registered.post_logout_redirect_uris.append(url + "/signed-out")
    monkeypatch.setenv("APP_BASE_URL", url)
    # No deadline in the pictures: a date there would differ from the stage's own.
    monkeypatch.setenv("CAMPAIGN_DEADLINE", "")
    config.reset_settings()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    registered.redirect_uris.remove(url + "/auth/callback")
    registered.post_logout_redirect_uris.remove(url + "/signed-out")
    config.reset_settings()


@pytest.fixture
def page(chromium, app_url, monkeypatch):
    from chalice import local

    from localdev.chalice_local import GreedyRouteMatcher

    monkeypatch.setattr(local, "RouteMatcher", GreedyRouteMatcher)
    context = chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def shoot(page, name: str) -> None:
    assert_accessible(page)
    page.screenshot(
        path=str(help_pictures.PICTURES / f"{name}.png"), caret="hide", animations="disabled"
    )


def sign_in(page, app: str, idp, email: str) -> None:
    page.goto(app + "/")
    page.get_by_role("link", name="Sign in with Login.gov").first.click()
    page.wait_for_url(idp.base + "/**")
    page.get_by_label("Email addresses on this Login.gov account").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(app + "/**")


def test_the_help_pictures_are_taken_from_the_pages_each_step_shows(page, app_url, idp, mailbox):
    app = app_url
    help_pictures.PICTURES.mkdir(parents=True, exist_ok=True)
    make_account("1000000001", primary="dr.alice@example.com")
    make_account("1000000002", primary="dana.ruiz@va.gov", first_name="Dana", last_name="Ruiz")

    page.goto(app + "/")
    shoot(page, "1-sign-in")
    sign_in(page, app, idp, "dr.alice@example.com")
    assert page.url == app + "/account"
    page.get_by_text("now linked to Login.gov").first.wait_for()
    shoot(page, "2-linked")

    page.context.clear_cookies()
    sign_in(page, app, idp, "dana.personal@example.net")
    assert page.url == app + "/link/no-match"
    shoot(page, "3-no-match")
    page.locator("#recover").evaluate("section => section.scrollIntoView()")
    page.get_by_label("Your registry primary or secondary email address").fill("dana.ruiz@va.gov")
    shoot(page, "4-recover")
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url(app + "/link/recover/verify")
    page.get_by_label("Code").fill("123456")  # the same picture every run
    shoot(page, "5-code")
    page.get_by_label("Code").fill(mailbox.code_for("dana.ruiz@va.gov"))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(app + "/account")

    # Every step has its picture, small, and /help shows them under the site's CSP.
    for name in help_pictures.STEPS:
        data = (help_pictures.PICTURES / f"{name}.png").read_bytes()
        assert png_size(data) == (WIDTH, HEIGHT) and len(data) < 150_000, name
    help_pictures.pictures.cache_clear()
    page.goto(app + "/help#create-account")
    shown = page.eval_on_selector_all(
        "img.step-picture", "imgs => imgs.map(i => [i.alt, i.complete && i.naturalWidth])"
    )
    assert shown == [[alt, WIDTH] for alt in help_pictures.STEPS.values()]
    assert_accessible(page)
