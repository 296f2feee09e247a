"""Structured JSON logs with stable event names, and counts as CloudWatch embedded metrics.

Never log a raw email, code or token: pass it through `keyed_hash` first. One line per
event: {"event": ..., "request_id": ..., ...}. Metric lines follow the CloudWatch Embedded
Metric Format, so counts need no PutMetricData call (and no extra cold-start import).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import sys
import traceback
from typing import Any, overload

from chalicelib import clock
from chalicelib.digests import LOG_STAND_INS, derived_key

METRIC_NAMESPACE = "NRCME/SignIn"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

logger = logging.getLogger("nrcme")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


REFERENCE_LENGTH = 8


def set_request_id(request_id: str | None) -> None:
    _request_id.set(request_id or "-")


def support_reference() -> str | None:
    """The short reference a refusal page shows: the first characters of this request's id,
    which every log line of the request carries. Enough to find the request among a few
    days of logs (`manage.py trace`), short enough to read out on the phone."""
    request_id = _request_id.get()
    if not request_id or request_id == "-":
        return None
    return request_id[:REFERENCE_LENGTH].lower()


@overload
def keyed_hash(value: str) -> str: ...
@overload
def keyed_hash(value: None) -> None: ...
@overload
def keyed_hash(value: str | None) -> str | None: ...
def keyed_hash(value: str | None) -> str | None:
    """A stable, non-reversible stand-in for an email, subject or token in logs."""
    if value is None:
        return None
    return hmac.new(derived_key(LOG_STAND_INS), value.encode(), hashlib.sha256).hexdigest()[:16]


def log_event(
    event: str, level: int = logging.INFO, *, exc_info: bool = False, **fields: Any
) -> None:
    record = {"event": event, "request_id": _request_id.get(), **fields}
    if exc_info:
        # One JSON line even for a traceback, so log queries keep working.
        record["traceback"] = traceback.format_exc()
    logger.log(level, json.dumps(record, default=str, sort_keys=True))


def count(metric: str, value: int = 1, **dimensions: str) -> None:
    """Emit one embedded-metric line (CloudWatch turns it into a metric)."""
    record = {
        "_aws": {
            "Timestamp": int(clock.now() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [sorted(dimensions)] if dimensions else [[]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }
            ],
        },
        metric: value,
        **dimensions,
    }
    logger.info(json.dumps(record, sort_keys=True))
