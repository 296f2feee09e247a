"""`mailbox`: the mail the app sent, read from moto's SES backend (what SES accepted), never
from the app's own bookkeeping; `ses_down`: SES refusing every send."""

from __future__ import annotations

import re

import pytest
from botocore.stub import Stubber

CODE = re.compile(r"\b(\d{6})\b")


class Mailbox:
    """What moto's SES has accepted in this test, once the outbox is drained (the worker's
    part, which chalice's test client does not run by itself)."""

    @staticmethod
    def _backend():
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]

    @property
    def messages(self) -> list:
        from localdev.outbox_worker import drain

        drain()
        return list(self._backend().sent_messages)

    def to(self, address: str) -> list:
        return [
            m
            for m in self.messages
            if address.lower() in [a.lower() for a in m.destinations.get("ToAddresses", [])]
        ]

    def codes_for(self, address: str) -> list[str]:
        """The code in each message to `address` that has one, oldest first."""
        return [found[0] for found in (CODE.findall(m.body) for m in self.to(address)) if found]

    def code_for(self, address: str) -> str:
        """The code in the newest message to `address`."""
        return self.codes_for(address)[-1]

    def subjects(self, address: str) -> list[str]:
        return [m.subject for m in self.to(address)]


@pytest.fixture
def mailbox(aws):
    """moto's SES (`aws` verifies the configured sender), with the app's SES client fresh."""
    from chalicelib import clients

    clients.reset()
    yield Mailbox()
    clients.reset()


@pytest.fixture
def ses_down(mailbox):
    """SES answers every send with an error (botocore Stubber on the app's own client)."""
    from chalicelib import clients

    stubber = Stubber(clients.ses())
    for _ in range(10):
        stubber.add_client_error(
            "send_email",
            service_error_code="ServiceUnavailable",
            service_message="SES is down",
            http_status_code=503,
        )
    with stubber:
        yield stubber
