"""Console sessions: server-side records in the desk table, keyed by a digest of the cookie.

The cookie (`nr_desk`, `__Host-nr_desk` on https: chalicelib.web) holds 256 random bits;
the table holds their SHA-256. A session ends after DESK_SESSION_IDLE_SECONDS without a
request (15 minutes), at DESK_SESSION_ABSOLUTE_SECONDS after sign-in (8 hours), at sign-out,
and when its staff member is removed (`end_all`). Expiry is checked on every read with
chalicelib.clock, never left to DynamoDB's TTL (up to 48 h late).

A session carries no role: every request reads the staff record again (one GetItem), so a
removed staff member is signed out, and a re-roled one sees the new role, at their next
click (supportdesk.console.edge).
"""

from __future__ import annotations

import hmac
import secrets

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import clock
from chalicelib.digests import sha256_hex
from chalicelib.errors import CsrfError
from chalicelib.store import condition_failed
from supportdesk.console.models import SESSION_SK, DeskItem, DeskSession, session_key
from supportdesk.console.settings import desk_settings

COOKIE = "nr_desk"  # its own name: the examiners' nr_session shares the host locally
LOGOUT_COOKIE = "nr_desk_logout"
# Move the idle deadline at most this often, so a busy page is not a write per request.
IDLE_REFRESH_SECONDS = 60
MAX_TOKEN_LENGTH = 128


def _key(token: str) -> str:
    return session_key(sha256_hex(token))


def create(sub: str, authenticated_at: int) -> tuple[str, DeskSession]:
    """Start a session for a staff member; returns (cookie token, record). One write."""
    settings = desk_settings()
    now = clock.epoch_seconds()
    token = secrets.token_urlsafe(32)
    absolute = now + settings.session_absolute_seconds
    session = DeskSession(
        _key(token),
        SESSION_SK,
        subject=sub,
        created_at=now,
        expires_at=min(now + settings.session_idle_seconds, absolute),
        absolute_expires_at=absolute,
        authenticated_at=authenticated_at,
        csrf_token=secrets.token_urlsafe(32),
    )
    session.save(condition=DeskItem.pk.does_not_exist())
    return token, session


def load(token: str | None) -> DeskSession | None:
    """The live session for a cookie token, or None (none, idle too long, past its absolute
    lifetime, or ended since it was read)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        session = DeskSession.get(_key(token), SESSION_SK, consistent_read=True)
    except DoesNotExist:
        return None
    now = clock.epoch_seconds()
    if session.expires_at <= now or session.absolute_expires_at <= now:
        return None
    settings = desk_settings()
    if session.expires_at - now < settings.session_idle_seconds - IDLE_REFRESH_SECONDS:
        deadline = min(now + settings.session_idle_seconds, session.absolute_expires_at)
        try:
            # Conditional: a refresh must never recreate a session that has just ended.
            session.update(
                actions=[DeskSession.expires_at.set(deadline)], condition=DeskItem.pk.exists()
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return None
    return session


def end(token: str | None) -> None:
    """End one session (sign-out). Idempotent: no condition, a missing item is no error."""
    if token and len(token) <= MAX_TOKEN_LENGTH:
        DeskItem(_key(token), SESSION_SK).delete()


def end_all(sub: str) -> int:
    """End every session of one staff member (their removal); returns how many. The index
    is eventually consistent: a session started a moment ago may be missed here, and is
    refused and deleted at its next request all the same (the staff record is gone)."""
    ended = 0
    for item in DeskItem.by_subject.query(sub):
        if isinstance(item, DeskSession) or item.sk == SESSION_SK:
            DeskItem(item.pk, item.sk).delete()
            ended += 1
    return ended


def check_csrf(session: DeskSession, submitted: str | None) -> None:
    """Every POST form carries the session's CSRF token (cross-site form defence)."""
    # As bytes: a submitted token in any script compares (and fails) instead of raising.
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfError("CSRF token missing or wrong")


def is_fresh(session: DeskSession) -> bool:
    """Did Login.gov authenticate this person within DESK_FRESH_SIGNIN_SECONDS?"""
    age = clock.epoch_seconds() - session.authenticated_at
    return age <= desk_settings().fresh_signin_seconds
