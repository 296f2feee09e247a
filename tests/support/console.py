"""The support console (console/app.py) in-process, as `app_client` runs the examiners' app:
Chalice's test client against `aws` (plus the desk table) and the same local Login.gov
(`idp`), where the console is a client of its own (its own id, key and redirect URIs).

  desk_env        the console's environment (its base URL, Login.gov client and key, the
                  phishing-resistant acr values, prompt=login) and its client registered at
                  the local Login.gov; set for the test and undone after
  desk_table      `aws` plus the desk table, with the console's settings readable
  fake_clock      chalicelib.clock's one clock, faked: tests move it (idle and absolute
                  timeouts, freshness); nothing sleeps
  desk_app        console/app.py's Chalice app
  desk_client     the console's test client (all of the above)
  desk_browser, other_desk_browser   a DeskBrowser each, on the console

and the plain helpers its tests share: DeskBrowser, the console's settings (DESK_ENV and
its lifetimes), the staff list as ops fill it (add_staff, signed_in), console_config.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import time

import pytest

from localdev.idp import generate_rsa_key, private_pem, public_pem, sub_for_emails
from tests.support import PROJECT_DIR
from tests.support.browser import Browser, Page, csrf_of
from tests.support.service import reset_app_caches

CONSOLE_DIR = PROJECT_DIR / "console"
DESK_BASE = "http://127.0.0.1:8002"
DESK_CLIENT_ID = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-desk-test"
DESK_KEY = generate_rsa_key()
PHISHING_RESISTANT = "http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true"
DESK_ENV = {
    "APP_BASE_URL": DESK_BASE,
    "LOGIN_GOV_CLIENT_ID": DESK_CLIENT_ID,
    "LOGIN_GOV_PRIVATE_KEY": private_pem(DESK_KEY),
    "LOGIN_GOV_ACR_VALUES": "urn:acr.login.gov:auth-only " + PHISHING_RESISTANT,
    "LOGIN_GOV_PROMPT": "login",
    "DESK_SESSION_IDLE_SECONDS": "900",
    "DESK_SESSION_ABSOLUTE_SECONDS": "28800",
    "DESK_FRESH_SIGNIN_SECONDS": "600",
    "DESK_SUPERVISOR_CONTACT": "the desk lead",
}
IDLE, ABSOLUTE, FRESH = 900, 28800, 600


def console_config() -> dict:
    """The console's own .chalice/config.json (its stages, functions and policy files)."""
    return json.loads((CONSOLE_DIR / ".chalice" / "config.json").read_text())


def load_console_app():
    """console/app.py as the module `nrcme_desk_app` (the examiners' app is `app`)."""
    name = "nrcme_desk_app"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CONSOLE_DIR / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def reset_desk_caches() -> None:
    """Forget what the app and the console read once (settings, keys, templates)."""
    from supportdesk.console import pages, settings

    reset_app_caches()
    settings.reset_desk_settings()
    pages.environment.cache_clear()


@pytest.fixture
def fake_clock():
    """The one clock (chalicelib.clock), faked. It starts at the current time because the
    local Login.gov and PyJWT read the system clock for the ID token's times."""
    from chalicelib import clock

    with clock.using(clock.FakeClock(time.time())) as fake:
        yield fake


@pytest.fixture
def desk_env(idp, monkeypatch):
    """The console's environment, and its client registered at the local Login.gov."""
    idp.register_client(
        DESK_CLIENT_ID,
        public_pem(DESK_KEY),
        DESK_BASE + "/auth/callback",
        DESK_BASE + "/signed-out",
    )
    for name, value in DESK_ENV.items():
        monkeypatch.setenv(name, value)
    reset_desk_caches()
    yield
    monkeypatch.undo()
    reset_desk_caches()


@pytest.fixture
def desk_table(aws, monkeypatch):
    """moto with the examiners' tables (`aws`) and the desk table, from the models; the
    console's settings readable, as manage.py's staff commands need them."""
    from supportdesk.console import models

    for name in ("LOGIN_GOV_ACR_VALUES", "LOGIN_GOV_PROMPT"):
        monkeypatch.setenv(name, DESK_ENV[name])
    reset_desk_caches()
    models.use_table_prefix(os.environ["TABLE_PREFIX"])
    models.DeskItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    yield
    reset_desk_caches()


@pytest.fixture
def desk_app():
    return load_console_app().app


@pytest.fixture
def desk_client(desk_env, desk_table, fake_clock, chalice_project, desk_app, monkeypatch):
    """The console's test client (the console app, moto, the local Login.gov, a fake clock),
    matching `{proxy+}` greedily as API Gateway (and make run) do."""
    from chalice import local
    from chalice.test import Client

    from localdev.chalice_local import GreedyRouteMatcher

    monkeypatch.setattr(local, "RouteMatcher", GreedyRouteMatcher)
    with Client(desk_app, stage_name="test", project_dir=str(chalice_project)) as client:
        yield client


class DeskBrowser(Browser):
    """tests.support.browser.Browser, for the console's base URL."""

    def get(self, url: str, headers: dict | None = None) -> Page:
        if url.startswith(DESK_BASE):
            url = url[len(DESK_BASE) :] or "/"
        return super().get(url, headers)

    def csrf(self) -> str:
        """This browser's session CSRF token, from the sign-out form of the home page."""
        page = self.get("/home")
        assert page.status == 200, page
        return csrf_of(page)

    def sign_in_as(self, email: str, return_to: str | None = None) -> Page:
        """Through the local Login.gov with one email (same email, same sub)."""
        return self.sign_in([email], return_to=return_to)


@pytest.fixture
def desk_browser(desk_client, idp):
    return DeskBrowser(desk_client, idp)


@pytest.fixture
def other_desk_browser(desk_client, idp):
    return DeskBrowser(desk_client, idp)


# --- the staff list -------------------------------------------------------------------------------


OPS = "ops:test"


def add_staff(email: str, role: str, *, bound: bool = False):
    """Put someone on the staff list as ops do (manage.py staff add): pending by email, or
    bound at once to the sub the local Login.gov gives that one email."""
    from supportdesk.console import staff
    from supportdesk.console.desk_audit import Actor

    sub = sub_for_emails([email]) if bound else None
    return staff.add(email, role, actor=Actor(OPS), sub=sub)


def signed_in(browser: DeskBrowser, email: str, role: str, *, bound: bool = False) -> DeskBrowser:
    """A staff member with `role`, added and signed in; their browser is on /home."""
    add_staff(email, role, bound=bound)
    page = browser.sign_in_as(email)
    assert page.status == 302 and page.location == "/home", (page, page.body[:300])
    return browser


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def console_on_a_free_port(idp, monkeypatch, client_id: str):
    """The console served in this process by `chalice local`'s server on a free port (its
    client registered at the local Login.gov), for browser tests that need no `make run`;
    yields its base URL.

    `create_local_server` swaps the app's class for one of its own: it is put back after,
    or the next test's server would make that class its own base (a base-class loop)."""
    from chalice import local
    from chalice.config import Config

    from localdev.chalice_local import GreedyRouteMatcher

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key = generate_rsa_key()
    idp.register_client(client_id, public_pem(key), base + "/auth/callback", base + "/signed-out")
    for name, value in DESK_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_BASE_URL", base)
    monkeypatch.setenv("LOGIN_GOV_CLIENT_ID", client_id)
    monkeypatch.setenv("LOGIN_GOV_PRIVATE_KEY", private_pem(key))
    reset_desk_caches()
    # Match /{proxy+} as API Gateway does; undone after, for the next test's clients.
    monkeypatch.setattr(local, "RouteMatcher", GreedyRouteMatcher)
    app = load_console_app().app
    monkeypatch.setattr(app, "__class__", app.__class__)
    server = local.create_local_server(app, Config.create(chalice_stage="local"), "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.server.shutdown()
        server.server.server_close()
        reset_desk_caches()
