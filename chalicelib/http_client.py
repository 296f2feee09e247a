"""Outbound HTTP to Login.gov with timeouts, no redirects and a request counter.

urllib3 ships with botocore (already in the Lambda runtime), so this adds no package.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import urllib3

from chalicelib.config import get_settings


class HttpFailure(Exception):
    """The peer could not be reached, timed out, or did not answer in time."""


@dataclass
class HttpResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()
# Requests sent by this process: the benchmark reads it to count identity-provider calls.
request_count = 0


def _get_pool() -> urllib3.PoolManager:
    global _pool
    with _pool_lock:
        if _pool is None:
            settings = get_settings()
            _pool = urllib3.PoolManager(
                num_pools=4,
                maxsize=10,
                timeout=urllib3.Timeout(
                    connect=settings.http_connect_timeout, read=settings.http_read_timeout
                ),
                retries=False,
            )
        return _pool


def reset_pool() -> None:
    global _pool
    with _pool_lock:
        _pool = None


def request(
    method: str, url: str, *, fields: dict | None = None, headers: dict | None = None
) -> HttpResponse:
    global request_count
    request_count += 1
    try:
        if fields is not None:
            resp = _get_pool().request_encode_body(
                method,
                url,
                fields=fields,
                headers=headers,
                encode_multipart=False,
                # urllib3 types **urlopen_kw as str here; urlopen's redirect is a bool.
                redirect=False,  # type: ignore[arg-type]
            )
        else:
            resp = _get_pool().request(method, url, headers=headers, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        raise HttpFailure(f"{method} {url}: {exc.__class__.__name__}") from None
    return HttpResponse(status=resp.status, body=resp.data)
