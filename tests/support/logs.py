"""`logged`: the service's structured log lines (chalicelib.logs), as dicts, in order."""

from __future__ import annotations

import json
import logging

import pytest


class LoggedEvents(logging.Handler):
    """The service's structured log lines (chalicelib.logs), as dicts, in order."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(json.loads(record.getMessage()))
        except ValueError:
            pass

    def names(self) -> list[str]:
        return [r["event"] for r in self.records if "event" in r]


@pytest.fixture
def logged():
    """Collect the `nrcme` logger's events: which refusal fired is part of the behaviour."""
    handler = LoggedEvents()
    logger = logging.getLogger("nrcme")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
