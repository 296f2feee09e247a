"""Settings are written once (chalicelib.config.SETTINGS: variable, default, meaning) and
read only when first used; docs/operations.md's table says the same."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import config

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
# Documented there, read elsewhere: by `make run` (localdev/run.py) and by boto3.
NOT_THE_APPS = {"AWS_ENDPOINT_URL", "LOGIN_GOV_PRIVATE_KEY_FILE", "LOCAL_MAILBOX_PORT"}
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| (.*) \|\s*(.*?)\s*\|$")


def documented() -> dict[str, tuple[str, str]]:
    text = OPERATIONS.read_text(encoding="utf-8")
    table = text[text.index("| variable | meaning | default |") :].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        found = ROW.match(line)
        assert found, f"not a one-variable row: {line}"
        rows[found[1]] = (found[2], found[3])
    return rows


def test_the_operations_table_says_what_the_settings_table_says():
    rows = documented()
    for setting in config.SETTINGS:
        assert rows.pop(setting.variable, None) == (
            setting.meaning,
            setting.documented_default,
        ), setting.variable
    assert set(rows) == NOT_THE_APPS


def test_every_default_is_the_one_the_settings_table_gives(monkeypatch):
    for setting in config.SETTINGS:
        monkeypatch.delenv(setting.variable, raising=False)
    for name in ("APP_BASE_URL", "LOGIN_GOV_ISSUER", "LOGIN_GOV_CLIENT_ID"):
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("PRIMARY_CHANGE_RECENT_SIGNIN_SECONDS", raising=False)
    config.reset_settings()
    try:
        settings = config.get_settings()
        assert settings.signin_state_ttl == config.default("SIGNIN_STATE_TTL_SECONDS")
        assert settings.http_read_timeout * 1000 == config.default("LOGIN_GOV_READ_TIMEOUT_MS")
        assert settings.login_gov_prompt == config.default("LOGIN_GOV_PROMPT")
        assert settings.outbox_queue_name == config.default("TABLE_PREFIX") + "outbox"
        assert settings.hmac_root_key is None
    finally:
        config.reset_settings()


def test_a_required_setting_unset_is_refused(monkeypatch):
    monkeypatch.delenv("APP_BASE_URL", raising=False)
    config.reset_settings()
    try:
        with pytest.raises(config.ConfigurationError, match="APP_BASE_URL is not set"):
            config.get_settings()
    finally:
        config.reset_settings()


def test_nothing_reads_a_setting_when_imported():
    # A fresh interpreter: importing chalicelib's modules, the support desk's and manage.py
    # reads no setting (so manage.py may apply --stage after importing them); they are read
    # when first used. The exceptions: the app registering the mail worker's and the mail
    # feedback handler's SQS triggers, whose queue names Chalice needs when it loads the app.
    code = (
        "import pkgutil, importlib, chalicelib, chalicelib.config as config\n"
        "read = []\n"
        "original = config._raw\n"
        "config._raw = lambda name: read.append(name) or original(name)\n"
        "names = [m.name for m in pkgutil.iter_modules(chalicelib.__path__, 'chalicelib.')]\n"
        "desk = ['supportdesk.desk', 'supportdesk.registry_sync', 'supportdesk.console.models']\n"
        "for name in names + ['manage', *desk]:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(set(read)))\n"
        "import app\n"
        "print(sorted(set(read)))\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    modules, with_app = done.stdout.splitlines()
    assert modules == "[]"
    assert with_app == "['MAIL_FEEDBACK_QUEUE_NAME', 'OUTBOX_QUEUE_NAME', 'TABLE_PREFIX']"
