"""Outbound HTTP to Login.gov with timeouts, no redirects and a request counter.

urllib3 ships with botocore (already in the Lambda runtime), so this adds no package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import urllib3

from chalicelib import clients


class HttpFailure(Exception):
    """The peer could not be reached, timed out, or did not answer in time."""


@dataclass
class HttpResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


# Requests sent by this process: the benchmark reads it to count identity-provider calls.
request_count = 0


def request(
    method: str, url: str, *, fields: dict | None = None, headers: dict | None = None
) -> HttpResponse:
    global request_count
    request_count += 1
    try:
        if fields is not None:
            resp = clients.http_pool().request_encode_body(
                method,
                url,
                fields=fields,
                headers=headers,
                encode_multipart=False,
                # urllib3 types **urlopen_kw as str here; urlopen's redirect is a bool.
                redirect=False,  # type: ignore[arg-type]
            )
        else:
            resp = clients.http_pool().request(method, url, headers=headers, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        raise HttpFailure(f"{method} {url}: {exc.__class__.__name__}") from None
    return HttpResponse(status=resp.status, body=resp.data)
