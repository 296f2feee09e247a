"""Shared fixtures: moto for AWS, the local Login.gov on a real port, and a test browser.

The app runs in-process through Chalice's test client (real Lambda proxy events); the
identity provider is the real local emulator on 127.0.0.1, so every sign-in in these
tests crosses HTTP exactly as in production.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

# AWS: moto only. AWS_DEFAULT_REGION (not only AWS_REGION) or calls bypass the mock, and an
# endpoint override would send them to a real server.
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "TABLE_PREFIX": "test-",
        "APP_BASE_URL": "http://127.0.0.1:8000",
        "LOGIN_GOV_CLIENT_ID": "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-test",
        "HMAC_ROOT_KEY": "test-hmac-root-key",
        "MAIL_SENDER": "no-reply@nrcme.example.com",
    }
)

from moto import mock_aws

from localdev.html_forms import parse_forms
from localdev.idp import LocalLoginGov, generate_rsa_key, private_pem, public_pem
from localdev.moto_support import serialize_dynamodb_writes

PROJECT_DIR = Path(__file__).resolve().parent.parent
CLIENT_ID = os.environ["LOGIN_GOV_CLIENT_ID"]
APP_BASE_URL = os.environ["APP_BASE_URL"]
CLIENT_KEY = generate_rsa_key()
os.environ["LOGIN_GOV_PRIVATE_KEY"] = private_pem(CLIENT_KEY)

serialize_dynamodb_writes()

pytest_plugins = ["tests.clock_fixtures"]  # the `clock` fixture: tests move time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def idp_server():
    port = _free_port()
    idp = LocalLoginGov(issuer=f"http://127.0.0.1:{port}/")
    idp.register_client(
        CLIENT_ID,
        public_pem(CLIENT_KEY),
        APP_BASE_URL + "/auth/callback",
        APP_BASE_URL + "/signed-out",
    )
    server = idp.serve_in_thread(port=port)
    os.environ["LOGIN_GOV_ISSUER"] = idp.issuer
    yield idp
    server.shutdown()


def reset_app_caches() -> None:
    from chalicelib import config, http_client, login_gov, outbox, secrets

    config.reset_settings()
    secrets.reset_secrets()
    http_client.reset_pool()
    login_gov.reset_caches()
    outbox.reset()


@pytest.fixture
def idp(idp_server):
    """The local Login.gov, with faults cleared and the app's caches empty."""
    idp_server.faults.clear()
    idp_server.request_log.clear()
    os.environ["LOGIN_GOV_ISSUER"] = idp_server.issuer
    reset_app_caches()
    yield idp_server
    idp_server.faults.clear()
    while len(idp_server.keys) > 1:
        idp_server.drop_old_keys()


@pytest.fixture
def aws():
    """moto with the app's tables created from the models."""
    from chalicelib import config, models, outbox
    from localdev.outbox_worker import create_queues

    with mock_aws():
        models.use_table_prefix(os.environ["TABLE_PREFIX"])
        for model in models.ALL_MODELS:
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        outbox.reset()
        create_queues(config.outbox_queue_name())
        yield
        outbox.reset()


@pytest.fixture(scope="session")
def chalice_project(tmp_path_factory):
    """A project dir whose config adds nothing: the tests' environment is the config."""
    root = tmp_path_factory.mktemp("chalice")
    (root / ".chalice").mkdir()
    (root / ".chalice" / "config.json").write_text(
        json.dumps({"version": "2.0", "app_name": "nrcme-signin", "stages": {"test": {}}})
    )
    return root


@pytest.fixture
def app_client(aws, idp, chalice_project):
    from chalice.test import Client

    import app as app_module

    with Client(app_module.app, stage_name="test", project_dir=str(chalice_project)) as client:
        yield client


# --- accounts -----------------------------------------------------------------------------------


def make_account(
    nr_number="1000000001",
    primary="dr.alice@example.com",
    secondary=None,
    status="active",
    role="medical_examiner",
    legacy_username="alice1",
    first_name="Alice",
    last_name="Examiner",
    claims=True,
):
    """Create an account and (by default) its email claims, as the import does: the row is
    its imported base, an address another account already holds becomes shared, and a
    removed account holds no address."""
    from chalicelib import claims as address_claims
    from chalicelib import store
    from chalicelib.emails import normalize_email
    from chalicelib.models import Account

    row = {
        "first_name": first_name,
        "last_name": last_name,
        "role": role,
        "status": status,
        "primary_email": primary,
        "secondary_email": secondary,
        "legacy_username": legacy_username,
    }
    account = Account(
        nr_number,
        first_name=first_name,
        last_name=last_name,
        role=role,
        status=status,
        primary_email=primary,
        primary_email_normalized=normalize_email(primary),
        secondary_email=secondary,
        secondary_email_normalized=normalize_email(secondary) if secondary else None,
        legacy_username=legacy_username,
        imported=row,
    )
    account.save()
    for email in account.normalized_emails() if claims and status != "removed" else []:
        tx = store.Transaction()
        address_claims.add_holder(tx, "claim", email, nr_number, address_claims.read(email))
        tx.commit()
    return account


# --- a browser ------------------------------------------------------------------------------------


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
            page = self.get(page.location)
            limit -= 1
        return page

    def start_signin(self, return_to: str | None = None) -> str:
        """GET /login; returns the authorization URL at the IdP."""
        path = "/login" + (f"?{urlencode({'return_to': return_to})}" if return_to else "")
        page = self.get(path)
        assert page.status == 302, page
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

        return web.signin_cookie_binding(
            self.cookies.get(web.cookie_name(web.signin_cookie(state)))
        )

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
