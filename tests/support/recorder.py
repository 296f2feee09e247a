"""`calls`: the one AWS call recorder (localdev/aws_calls.py), also its fault injector."""

from __future__ import annotations

import pytest

from localdev import aws_calls


@pytest.fixture
def calls(monkeypatch):
    """Every AWS API call any botocore client makes, below PynamoDB and our own counters, by
    service and operation; its rules make DynamoDB and SQS fail as they do in production."""
    recorder = aws_calls.watching(monkeypatch)
    yield recorder
    recorder.close()
