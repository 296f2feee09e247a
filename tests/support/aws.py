"""`aws`: moto with what the app needs in AWS, the one moto setup of the tests.

The app's four tables (created from the models, as `manage.py create-tables` does for a
local stage; tests/test_infra.py checks the template's tables separately), the outbox queue
and its dead-letter queue, and the configured sender verified in SES.
"""

from __future__ import annotations

import os

import boto3
import pytest
from moto import mock_aws

from tests.support import AWS_ENV

# The settings a test without the local Login.gov (`idp`) still needs to read settings.
APP_ENV = {
    "APP_BASE_URL": "http://127.0.0.1:8000",
    "LOGIN_GOV_ISSUER": "https://idp.int.identitysandbox.gov/",
    "LOGIN_GOV_CLIENT_ID": "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-test",
    "HMAC_ROOT_KEY": "test-hmac-root-key",
}


@pytest.fixture
def aws(monkeypatch):
    """moto for every AWS call, with the tables, the outbox queues and the verified sender;
    AWS settings to moto only, app settings readable, caches reset before and after."""
    from chalicelib import clients, config, models, secrets
    from localdev.outbox_worker import create_queues

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name, value in APP_ENV.items():
        if not os.environ.get(name):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABLE_PREFIX", os.environ.get("TABLE_PREFIX") or "test-")
    config.reset_settings()
    secrets.reset_secrets()
    with mock_aws():
        models.use_table_prefix(os.environ["TABLE_PREFIX"])
        for model in models.ALL_MODELS:
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        clients.reset()
        create_queues(config.outbox_queue_name())
        boto3.client("sesv2", region_name="us-east-1").create_email_identity(
            EmailIdentity=os.environ["MAIL_SENDER"]
        )
        yield
        clients.reset()
        models.use_table_prefix(os.environ["TABLE_PREFIX"])  # drop clients bound to the mock
    config.reset_settings()
    secrets.reset_secrets()
