"""Telling Login.gov what the desk found: its incoming security events (RISC).

Login.gov accepts Security Event Tokens from its relying parties (developers.login.gov,
"Security Events", "Supported incoming events"): a JWT signed RS256 with the client's own
private_key_jwt key, POSTed as `application/secevent+jwt` to the `/api/risc/security_events`
endpoint that RISC discovery (`<issuer>/.well-known/risc-configuration`) names. The desk sends
one event: `authorization-fraud-detected`, when it unlinks an identity that is not the
account's owner (someone other than the user signed in to that Login.gov account, or used it
to take a record that is not theirs). Login.gov may then make the person reset their password.

Signed as the process's own Login.gov client: in the console, the console's client (its id
and key). Not an at-least-once queue: the desk sees the outcome and retries from the page;
a failure never undoes the unlink that came first.
"""

from __future__ import annotations

import json

import urllib3

from chalicelib import clock, login_gov
from chalicelib.config import get_settings
from chalicelib.logs import keyed_hash, log_event
from chalicelib.secrets import login_gov_private_key

AUTHORIZATION_FRAUD = (
    "https://schemas.login.gov/secevent/risc/event-type/authorization-fraud-detected"
)
CONTENT_TYPE = "application/secevent+jwt"
PUSH = "https://schemas.openid.net/secevent/risc/delivery-method/push"
DEFAULT_PATH = "/api/risc/security_events"


class ReportFailed(Exception):
    """Login.gov could not be told (unreachable, or it refused the token): safe to retry."""


def _http(
    method: str, url: str, *, body: bytes | None = None, headers: dict | None = None
) -> urllib3.BaseHTTPResponse:
    settings = get_settings()
    try:
        return urllib3.request(
            method,
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(
                connect=settings.http_connect_timeout, read=settings.http_read_timeout
            ),
            retries=False,
            redirect=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise ReportFailed(f"Login.gov could not be reached ({exc.__class__.__name__})") from None


def security_events_endpoint() -> str:
    """Where Login.gov takes incoming SETs: RISC discovery's push URL, for this issuer only
    (else the documented path under the issuer)."""
    issuer = get_settings().login_gov_issuer
    answer = _http("GET", issuer.rstrip("/") + "/.well-known/risc-configuration")
    try:
        document = json.loads(answer.data) if answer.status == 200 else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return issuer.rstrip("/") + DEFAULT_PATH
    # Issuer mix-up: a document for another issuer must not redirect our reports.
    if document.get("issuer") != issuer:
        raise ReportFailed("Login.gov's RISC discovery names another issuer")
    for delivery in document.get("delivery") or []:
        if isinstance(delivery, dict) and delivery.get("delivery_method") == PUSH:
            url = delivery.get("url")
            if isinstance(url, str) and url.startswith(issuer.rstrip("/") + "/"):
                return url
    return issuer.rstrip("/") + DEFAULT_PATH


def event_token(sub: str, endpoint: str, event_type: str = AUTHORIZATION_FRAUD) -> str:
    """The SET: iss = our client id, aud = the endpoint, a fresh jti, iat; one event whose
    subject is the identity as Login.gov knows it (iss-sub). No exp: Login.gov refuses it."""
    import jwt

    settings = get_settings()
    now = clock.epoch_seconds()
    claims = {
        "iss": settings.login_gov_client_id,
        "jti": login_gov.random_token(),
        "iat": now,
        "aud": endpoint,
        "events": {
            event_type: {
                "subject": {
                    "subject_type": "iss-sub",
                    "iss": settings.login_gov_issuer,
                    "sub": sub,
                },
                "occurred_at": now,
            }
        },
    }
    # The client's own key, as for private_key_jwt: Login.gov verifies with its public half.
    return jwt.encode(
        claims, login_gov_private_key(), algorithm="RS256", headers={"typ": "secevent+jwt"}
    )


def report_authorization_fraud(
    sub: str, *, nr_number: str | None = None, actor: str | None = None
) -> None:
    """Tell Login.gov that this identity was used by someone other than its owner. Raises
    ReportFailed when Login.gov could not be told (the caller shows it and offers a retry).
    The account and the actor go into the log line of either outcome."""
    endpoint = security_events_endpoint()
    answer = _http(
        "POST",
        endpoint,
        body=event_token(sub, endpoint).encode(),
        headers={"Content-Type": CONTENT_TYPE, "Accept": "application/json"},
    )
    if not 200 <= answer.status < 300:
        detail = ""
        try:
            body = json.loads(answer.data)
            detail = f": {body.get('err')}" if isinstance(body, dict) and body.get("err") else ""
        except ValueError:
            pass
        log_event(
            "login_gov_report_failed",
            subject=keyed_hash(sub),
            status=answer.status,
            nr_number=nr_number,
            actor=actor,
        )
        raise ReportFailed(f"Login.gov answered {answer.status}{detail}")
    log_event(
        "login_gov_told_authorization_fraud",
        subject=keyed_hash(sub),
        nr_number=nr_number,
        actor=actor,
    )
