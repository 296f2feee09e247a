"""Browser sessions: server-side records keyed by a hash of the cookie token.

The cookie holds 256 random bits; the table holds only their SHA-256, so a leaked table
backup cannot be replayed as cookies. Sessions end on idle timeout, on an absolute
lifetime, at logout, and when Login.gov tells us the identity was disabled.
"""

from __future__ import annotations

import hmac
import json
import secrets

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.digests import sha256_hex
from chalicelib.errors import CsrfError, NotSignedIn
from chalicelib.models import Flow, Session, expiry_bucket
from chalicelib.store import condition_failed

# Refresh the idle deadline at most this often, so a busy page is not a write per request.
IDLE_REFRESH_SECONDS = 60
MAX_TOKEN_LENGTH = 128


def _session_id(token: str) -> str:
    return f"session#{sha256_hex(token)}"


def create_session(
    sub: str,
    nr_number: str | None,
    *,
    verified_emails: list[str] | None = None,
    notice: str | None = None,
) -> tuple[str, Session]:
    """Start a session; returns (cookie token, record). One DynamoDB write."""
    settings = get_settings()
    now = clock.epoch_seconds()
    token = secrets.token_urlsafe(32)
    absolute = now + settings.session_absolute_ttl
    expires = min(now + settings.session_idle_ttl, absolute)
    session = Session(
        _session_id(token),
        subject=sub,
        nr_number=nr_number,
        created_at=now,
        expires_at=expires,
        expiry_bucket=expiry_bucket(expires),
        absolute_expires_at=absolute,
        csrf_token=secrets.token_urlsafe(32),
        verified_emails=json.dumps(verified_emails) if verified_emails else None,
        notice=notice,
    )
    session.save(condition=Flow.flow_id.does_not_exist())
    return token, session


def load_session(token: str | None) -> Session | None:
    """The live session for a cookie token, or None. Expiry is checked here, not left to TTL;
    a session that ends between the read and its idle refresh is None too."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        session = Session.get(_session_id(token), consistent_read=True)
    except DoesNotExist:
        return None
    now = clock.epoch_seconds()
    if (
        not isinstance(session, Session)
        or session.is_expired(now)
        or session.absolute_expires_at <= now
    ):
        return None
    settings = get_settings()
    if session.expires_at - now < settings.session_idle_ttl - IDLE_REFRESH_SECONDS:
        new_expiry = min(now + settings.session_idle_ttl, session.absolute_expires_at)
        try:
            # Conditional: a refresh must never recreate a session that has just ended.
            session.update(
                actions=[
                    Session.expires_at.set(new_expiry),
                    Session.expiry_bucket.set(expiry_bucket(new_expiry)),
                ],
                condition=Flow.flow_id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return None  # ended since the read (cleanup, logout): not signed in
    return session


def session_hash(session: Session) -> str:
    return session.flow_id.split("#", 1)[1]


def end_session(token: str | None) -> None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return
    # No condition, so a missing item is no error: logout is idempotent. Any error that does
    # come is real (throttling, outage) and must not be reported as a finished sign-out.
    Flow(_session_id(token)).delete()


def end_sessions_for_subject(sub: str) -> int:
    """Delete every session of one Login.gov identity; returns how many."""
    ended = 0
    for item in Flow.by_subject.query(sub):
        if item.flow_id.startswith("session#"):
            Flow(item.flow_id).delete()
            ended += 1
    return ended


def clear_notice(session: Session) -> None:
    """Forget a one-time notice. Conditional: an update on a session that has just ended
    would otherwise recreate it as a key-only item that never expires. A session that ended
    since it was read (cleanup, logout in another tab) is NotSignedIn: the sign-in page."""
    try:
        session.update(actions=[Session.notice.remove()], condition=Flow.flow_id.exists())
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        raise NotSignedIn("the session ended during this request") from None


def check_csrf(session: Session, submitted: str | None) -> None:
    """Every POST form carries the session's CSRF token (cross-site form defence)."""
    # As bytes: a submitted token in any script compares (and fails) instead of raising.
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfError("CSRF token missing or wrong")


def session_verified_emails(session: Session) -> list[str]:
    return json.loads(session.verified_emails) if session.verified_emails else []


def session_login_gov_email(session: Session) -> str | None:
    """The email Login.gov shared as `email` at this sign-in (the first verified one)."""
    shown = session_verified_emails(session)
    return shown[0] if shown else None
