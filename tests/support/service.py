"""The local Login.gov on a real port, and the app in-process through Chalice's test client.

The app runs on real Lambda proxy events; the identity provider is the real local emulator
on 127.0.0.1, so every sign-in in these tests crosses HTTP exactly as in production.
"""

from __future__ import annotations

import json
import os
import socket

import pytest

from localdev.idp import LocalLoginGov, public_pem
from tests.support import APP_BASE_URL, CLIENT_ID, CLIENT_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reset_app_caches() -> None:
    """Forget what the app read once: settings, secrets, clients and the queue URL, keys."""
    from chalicelib import clients, config, login_gov, secrets

    config.reset_settings()
    secrets.reset_secrets()
    clients.reset()
    login_gov.reset_caches()


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
