"""Test support: the fixtures every test module may ask for, registered once as plugins
(tests/conftest.py `pytest_plugins`), and plain helpers a test module imports from here.
No test module imports from another test module, and none imports a fixture.

  aws.py          `aws`: moto with the app's tables, the outbox queues and a verified sender
  recorder.py     `calls`: every AWS call, with fault injection (localdev/aws_calls.py)
  service.py      `idp`, `idp_server`: the local Login.gov; `app_client`: the app in-process
  browser.py      `browser`, `other_browser`; Browser, Page and the form helpers
  mail.py         `mailbox`, `ses_down`: what moto's SES accepted
  logs.py         `logged`: the service's structured log events
  desk.py         `cli`, `stage_config`: manage.py in-process
  console.py      `desk_client`, `desk_browser`, `desk_env`, `desk_table`, `fake_clock`: the
                  support console in-process; its settings and staff list
  accounts.py     accounts, flows and registry rows as the tests build them
  assertions.py   what "refused" and "nothing half-written" mean
  security_events.py  SETs as Login.gov pushes them
  stages.py       the deployed stages' .chalice config and IAM policies
  policies.py     from AWS calls to IAM authorisations, and a small IAM evaluator
  infra.py        CloudFormation templates (infra/) and what the Lambda runtime provides
  waf.py          the paths WAF sees for a route, and which of them a rule matches
  e2e.py          what the browser tests (tests/e2e) share

Importing any part of this package first points AWS at moto and gives the app the tests'
settings, so nothing can read the environment before it is set.
"""

from __future__ import annotations

import os
from pathlib import Path

from localdev.idp import generate_rsa_key, private_pem
from localdev.moto_support import install_dynamodb_behaviour

# AWS: moto only. AWS_DEFAULT_REGION (not only AWS_REGION) or calls bypass the mock, and an
# endpoint override would send them to a real server.
os.environ.pop("AWS_ENDPOINT_URL", None)
AWS_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
os.environ.update(
    {
        **AWS_ENV,
        "TABLE_PREFIX": "test-",
        "APP_BASE_URL": "http://127.0.0.1:8000",
        "LOGIN_GOV_CLIENT_ID": "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-test",
        "HMAC_ROOT_KEY": "test-hmac-root-key",
        "MAIL_SENDER": "no-reply@nrcme.example.com",
    }
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
CLIENT_ID = os.environ["LOGIN_GOV_CLIENT_ID"]
APP_BASE_URL = os.environ["APP_BASE_URL"]
CLIENT_KEY = generate_rsa_key()
os.environ["LOGIN_GOV_PRIVATE_KEY"] = private_pem(CLIENT_KEY)

install_dynamodb_behaviour()  # make moto decide concurrent writes as DynamoDB does
