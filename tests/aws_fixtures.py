"""Fixtures for the support CLI, import and clean-up tests (moto, in-process).

Self-contained on purpose: it sets what it needs (region, fake credentials, no endpoint
override, the three required settings) even if tests/conftest.py changes. Import the
fixtures by name into a test module: `from tests.aws_fixtures import tables, ...`.
"""

from __future__ import annotations

import os
import time

import pytest
from moto import mock_aws

from chalicelib import store
from localdev import aws_calls

AWS_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
APP_ENV = {
    "APP_BASE_URL": "http://127.0.0.1:8000",
    "LOGIN_GOV_ISSUER": "https://idp.int.identitysandbox.gov/",
    "LOGIN_GOV_CLIENT_ID": "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-test",
    "HMAC_ROOT_KEY": "test-hmac-root-key",
}


@pytest.fixture
def support_env(monkeypatch):
    """AWS to moto only, settings readable; caches reset before and after."""
    from chalicelib import config, secrets

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name, value in APP_ENV.items():
        if not os.environ.get(name):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABLE_PREFIX", os.environ.get("TABLE_PREFIX") or "test-")
    config.reset_settings()
    secrets.reset_secrets()
    yield
    config.reset_settings()
    secrets.reset_secrets()


@pytest.fixture
def tables(support_env):
    """moto DynamoDB with the four tables created from the models."""
    from chalicelib import models
    from localdev.moto_support import serialize_dynamodb_writes

    serialize_dynamodb_writes()  # make moto decide concurrent writes as DynamoDB does
    from chalicelib import config, outbox
    from localdev.outbox_worker import create_queues

    with mock_aws():
        models.use_table_prefix(os.environ["TABLE_PREFIX"])
        for model in models.ALL_MODELS:
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        outbox.reset()
        create_queues(config.outbox_queue_name())
        yield
        outbox.reset()
        models.use_table_prefix(os.environ["TABLE_PREFIX"])  # drop clients bound to the mock


@pytest.fixture
def api_calls(monkeypatch):
    """Every AWS call any botocore client makes, below PynamoDB and our own counters."""
    recorder = aws_calls.watching(monkeypatch)
    yield recorder
    recorder.close()


# --- data helpers -----------------------------------------------------------------------------

from tests.conftest import make_account  # noqa: E402,F401 - one definition, re-exported


def link(nr_number: str, sub: str):
    """Link as the service does (linking.link_account), returning the fresh account."""
    from chalicelib.linking import LinkMethod, link_account
    from chalicelib.models import Account

    link_account(sub, nr_number, method=LinkMethod.AUTOMATIC)
    return Account.get(nr_number, consistent_read=True)


def make_flow(flow_id: str, expires_at: float, *, subject: str | None = None):
    """A send counter (the smallest flow) that expires at `expires_at`."""
    from chalicelib.models import SendCounter, expiry_bucket

    flow = SendCounter(
        f"sendcount#{flow_id}",
        expires_at=int(expires_at),
        expiry_bucket=expiry_bucket(int(expires_at)),
        subject=subject,
        created_at=int(time.time()),
        sends=1,
    )
    flow.save()
    return flow


def flow_exists(flow_id: str) -> bool:
    from chalicelib.models import Flow

    try:
        Flow.get(flow_id, consistent_read=True)
    except Flow.DoesNotExist:
        return False
    return True


CSV_HEADER = ",".join(store.CSV_HEADER)


def csv_text(*rows: str) -> str:
    return "\n".join((CSV_HEADER,) + rows) + "\n"


def csv_row(
    nr_number: str,
    primary: str,
    secondary: str = "",
    *,
    first="Pat",
    last="Examiner",
    role="medical_examiner",
    username="",
    status="active",
) -> str:
    return ",".join([nr_number, first, last, role, primary, secondary, username, status])
