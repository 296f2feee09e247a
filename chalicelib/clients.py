"""Every client this process keeps, built on first use and cached here: the AWS clients
(SES for mail, SQS for the outbox, SSM for secrets, DynamoDB's connection for transactions),
the outbox queue's URL, and the HTTP pool to Login.gov. `reset()` forgets them all at once
(a test, or a script after it changes the environment).

boto3 and urllib3 are imported when a client is first built: a cold /login pays for none
of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.config import META_TIMEOUTS, get_settings

if TYPE_CHECKING:
    import urllib3
    from pynamodb.connection import Connection

T = TypeVar("T")

_lock = threading.RLock()  # re-entrant: the queue URL's builder asks for the SQS client
_made: dict[str, Any] = {}


def _kept(name: str, build: Callable[[], T]) -> T:
    with _lock:
        if name not in _made:
            _made[name] = build()
        return _made[name]


def reset() -> None:
    """Forget every client and the queue URL: the next use builds them again."""
    with _lock:
        _made.clear()


def _aws(service: str, connect: float, read: float, attempts: int) -> Any:
    import boto3  # provided by the Lambda runtime
    from botocore.config import Config

    # Fail fast: a sick service must not hold a request near the Lambda timeout.
    config = Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"total_max_attempts": attempts, "mode": "standard"},
    )
    return boto3.client(service, config=config)


def ses() -> Any:  # boto3 clients carry no types here
    """SES v2, for the outbox worker's mail (MAIL_* timeouts)."""

    def build() -> Any:
        s = get_settings()
        return _aws("sesv2", s.mail_connect_timeout, s.mail_read_timeout, s.mail_max_attempts)

    return _kept("ses", build)


def sqs() -> Any:
    """SQS, for queuing mail from a request (OUTBOX_* timeouts)."""

    def build() -> Any:
        s = get_settings()
        return _aws("sqs", s.outbox_connect_timeout, s.outbox_read_timeout, s.outbox_max_attempts)

    return _kept("sqs", build)


def outbox_queue_url() -> str:
    """Looked up once per container (GetQueueUrl), then kept."""

    def build() -> str:
        return sqs().get_queue_url(QueueName=get_settings().outbox_queue_name)["QueueUrl"]

    return _kept("outbox_queue_url", build)


def ssm() -> Any:
    """SSM, for the secrets of AWS stages (read once per container: chalicelib.secrets)."""

    def build() -> Any:
        import boto3

        return boto3.client("ssm")

    return _kept("ssm", build)


def dynamodb_transactions() -> Connection:
    """The PynamoDB connection transactions are written through (store.Transaction), with
    the models' timeouts."""

    def build() -> Connection:
        from pynamodb.connection import Connection

        return Connection(
            connect_timeout_seconds=META_TIMEOUTS["connect_timeout_seconds"],
            read_timeout_seconds=META_TIMEOUTS["read_timeout_seconds"],
            max_retry_attempts=META_TIMEOUTS["max_retry_attempts"],
        )

    return _kept("dynamodb_transactions", build)


def http_pool() -> urllib3.PoolManager:
    """Outbound HTTP to Login.gov: no retries, LOGIN_GOV_* timeouts (chalicelib.http_client)."""

    def build() -> urllib3.PoolManager:
        import urllib3

        s = get_settings()
        return urllib3.PoolManager(
            num_pools=4,
            maxsize=10,
            timeout=urllib3.Timeout(connect=s.http_connect_timeout, read=s.http_read_timeout),
            retries=False,
        )

    return _kept("http_pool", build)


def aws_error_code(exc: BaseException) -> str | None:
    """The error code of an AWS answer (a botocore ClientError's); None for a failure that
    brought no answer (a timeout, a refused connection)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) and code else None
