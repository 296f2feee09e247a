"""Login.gov security events (RISC): verify a pushed Security Event Token and act on it.

Push delivery per RFC 8935: the body is one SET (RFC 8417), a JWT signed with Login.gov's
published keys. We check the signature (RS256 only, the same key cache as ID tokens),
`iss` = the discovered issuer, `aud` = our client id, a fresh `iat`, and a `jti` never seen
before (recorded with a conditional write, so a replay is refused even in parallel).

What each event does:
- account-purged: the Login.gov account is gone; unlink so the person can relink with a
  new Login.gov account (a purged account that re-registers gets a new `sub`).
- account-disabled: end every session of that identity.
- the rest: recorded in the audit trail of the linked account.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib import linking, login_gov, sessions
from chalicelib.audit import audit_event, record_committed
from chalicelib.errors import IdentityProviderUnavailable
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Account, Flow, SeenSecurityEvent, expiry_bucket
from chalicelib.store import condition_failed

EVENT_PREFIX = "https://schemas.openid.net/secevent/risc/event-type/"
KNOWN_EVENTS = frozenset({
    "account-purged", "account-disabled", "account-enabled", "mfa-limit-account-locked",
    "recovery-activated", "password-reset", "reproof-completed",
    "recovery-information-changed",
})
MAX_TOKEN_LENGTH = 16_384
# How long a jti is remembered; older tokens are refused by their iat anyway.
JTI_MEMORY_SECONDS = 7 * 24 * 3600
MAX_TOKEN_AGE_SECONDS = 24 * 3600


class SecurityEventRejected(Exception):
    """The SET is not acceptable. `code` is the RFC 8935 error code for the 400 answer."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code, self.description = code, description


@dataclass(frozen=True)
class HandledEvent:
    name: str
    sub: str
    nr_number: str | None
    action: str


# RFC 8935 error codes for each reason login_gov.verify_login_gov_jwt gives.
_REJECTION_CODES = {"malformed": "invalid_request", "algorithm": "invalid_key",
                    "key": "invalid_key", "signature": "invalid_key",
                    "issuer": "invalid_issuer", "audience": "invalid_audience",
                    "claims": "invalid_request"}


def verify_security_event_token(token: str) -> dict:
    """Signature, issuer, audience, freshness. Returns the claims (jti not yet recorded)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise SecurityEventRejected("invalid_request", "empty or oversized token")
    try:
        claims = login_gov.verify_login_gov_jwt(token, require=["iss", "aud", "iat", "jti",
                                                                "events"])
    except login_gov.JwtRejected as rejected:
        code = _REJECTION_CODES.get(rejected.context.get("reason"), "invalid_request")
        raise SecurityEventRejected(code, f"token rejected: {rejected}") from None
    if claims["iat"] < time.time() - MAX_TOKEN_AGE_SECONDS:
        raise SecurityEventRejected("invalid_request", "token is too old")
    if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 256:
        raise SecurityEventRejected("invalid_request", "jti is malformed")
    return claims


def event_and_subject(claims: dict) -> tuple[str, str]:
    """The one event this SET carries, and the Login.gov sub it is about."""
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise SecurityEventRejected("invalid_request", "expected exactly one event")
    (uri, body), = events.items()
    name = uri[len(EVENT_PREFIX):] if uri.startswith(EVENT_PREFIX) else None
    if name not in KNOWN_EVENTS:
        raise SecurityEventRejected("invalid_request", "unknown event type")
    subject = body.get("subject") if isinstance(body, dict) else None
    if not isinstance(subject, dict) or subject.get("subject_type") != "iss-sub":
        raise SecurityEventRejected("invalid_request", "subject must be iss-sub")
    if subject.get("iss") != claims["iss"]:
        raise SecurityEventRejected("invalid_request", "subject issuer is not the token issuer")
    sub = subject.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 256:
        raise SecurityEventRejected("invalid_request", "subject sub is missing")
    return name, sub


def remember_jti(jti: str) -> None:
    """Record the jti; a second delivery of the same token is refused (replay defence)."""
    now = int(time.time())
    expires = now + JTI_MEMORY_SECONDS
    try:
        SeenSecurityEvent(f"setjti#{jti}", created_at=now, expires_at=expires,
                          expiry_bucket=expiry_bucket(expires)).save(
            condition=Flow.flow_id.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise  # throttled: answer 503 so Login.gov delivers it again
        raise SecurityEventRejected("invalid_request", "jti already received") from None


def handle_security_event(token: str) -> HandledEvent:
    """Verify, de-duplicate and act. Raises SecurityEventRejected for a 400 answer."""
    try:
        claims = verify_security_event_token(token)
    except IdentityProviderUnavailable:
        # No keys to verify with: the sender retries a non-2xx answer later.
        raise SecurityEventRejected("invalid_key", "signing keys unavailable") from None
    name, sub = event_and_subject(claims)
    remember_jti(claims["jti"])
    nr_number = linking.find_linked_account(sub)
    action = _act(name, sub, nr_number)
    log_event("security_event_received", risc_event=name, subject=keyed_hash(sub),
              nr_number=nr_number, action=action)
    count("SecurityEvent", event=name)
    return HandledEvent(name, sub, nr_number, action)


def _act(name: str, sub: str, nr_number: str | None) -> str:
    actor = "login.gov:risc"
    if name == "account-purged":
        ended = sessions.end_sessions_for_subject(sub)
        if nr_number is None:
            return f"no linked account; {ended} sessions ended"
        try:
            account = Account.get(nr_number, consistent_read=True)
            linking.unlink_identity(account, sub, event="identity_unlinked_purged",
                                    actor=actor, reason="Login.gov account purged")
        except (DoesNotExist, linking.UnlinkConflict):
            log_event("security_event_unlink_skipped", subject=keyed_hash(sub))
            return f"link already gone; {ended} sessions ended"
        return f"unlinked; {ended} sessions ended"
    if name == "account-disabled":
        ended = sessions.end_sessions_for_subject(sub)
        _audit(nr_number, name, sub, actor, sessions_ended=str(ended))
        return f"{ended} sessions ended"
    _audit(nr_number, name, sub, actor)
    return "recorded"


def _audit(nr_number: str | None, name: str, sub: str, actor: str, **detail: str) -> None:
    if nr_number is None:
        return
    event = audit_event(nr_number, f"login_gov_{name.replace('-', '_')}", actor=actor,
                        subject=keyed_hash(sub), **detail)
    event.save()
    record_committed(event, subject=keyed_hash(sub))
