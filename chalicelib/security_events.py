"""Login.gov security events (RISC): verify a pushed Security Event Token and act on it.

Push delivery per RFC 8935: the body is one SET (RFC 8417), a JWT signed with Login.gov's
published keys. We check the signature (RS256 only, the same key cache as ID tokens),
`iss` = the discovered issuer, `aud` = our client id, a fresh `iat`. Its `jti` is recorded
with a conditional write in the same transaction as the action, so each event acts once.

What each event does:
- account-purged: the Login.gov account is gone; unlink so the person can relink with a
  new Login.gov account (a purged account that re-registers gets a new `sub`), and
  remember the purged `sub` so no sign-in racing the event can link it.
- account-disabled: end every session of that identity and mark its link disabled, so
  sign-ins are refused until an account-enabled event (both by the events' own times, so
  a late delivery of an older one changes nothing); sessions are ended again after the
  mark commits, for a sign-in that was under way.
- account-enabled: clears that mark (it is the later event).
- the rest: recorded in the audit trail of the linked account.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from chalicelib import linking, login_gov, sessions, store
from chalicelib.audit import audit_event
from chalicelib.errors import (
    IdentityProviderUnavailable,
    SecurityEventDeferred,
    SecurityEventRejected,
)
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Account, Claim, Flow, SeenSecurityEvent, expiry_bucket

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
MAX_ATTEMPTS = 3


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
                                                                "events"],
                                                audiences=login_gov.security_event_audiences())
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


def _seen(jti: str) -> SeenSecurityEvent:
    now = int(time.time())
    expires = now + JTI_MEMORY_SECONDS
    return SeenSecurityEvent(f"setjti#{jti}", created_at=now, expires_at=expires,
                             expiry_bucket=expiry_bucket(expires))


def handle_security_event(token: str) -> HandledEvent:
    """Verify and act, exactly once in effect. Raises SecurityEventRejected for a 400.

    The event's jti is recorded in the same transaction as the action (or, where the
    action is only ending sessions, which is idempotent, after it): a delivery that failed
    part-way is acted on when Login.gov delivers it again, and a duplicate of one that
    succeeded changes nothing and is answered 202 like the first.
    """
    try:
        claims = verify_security_event_token(token)
    except IdentityProviderUnavailable:
        # No keys to verify with: the sender retries a non-2xx answer later.
        raise SecurityEventRejected("invalid_key", "signing keys unavailable") from None
    name, sub = event_and_subject(claims)
    for _ in range(MAX_ATTEMPTS):
        identity = store.identity_claim(sub)
        nr_number = identity.nr_number if identity else None
        try:
            action = _act(name, sub, identity, claims["jti"], claims["iat"])
            break
        except _Duplicate:
            action = "duplicate: already handled"
            break
        except _RaceLost:
            continue  # a sign-in linked (or support unlinked) meanwhile: read again
    else:
        raise SecurityEventDeferred("the account kept changing; deliver again")
    log_event("security_event_received", risc_event=name, subject=keyed_hash(sub),
              nr_number=nr_number, action=action)
    count("SecurityEvent", event=name)
    return HandledEvent(name, sub, nr_number, action)


class _Duplicate(Exception):
    """This jti was handled before: nothing more to do."""


class _RaceLost(Exception):
    """The link changed between our read and our write: read again."""


def _act(name: str, sub: str, identity: Claim | None, jti: str, issued_at: int) -> str:
    actor = "login.gov:risc"
    nr_number = identity.nr_number if identity else None
    tx = store.Transaction()
    # Recorded with the action: a redelivery after a failure acts, a duplicate does not.
    tx.put("jti", _seen(jti), condition=Flow.flow_id.does_not_exist())
    detail = ""
    if name in ("account-purged", "account-disabled"):
        # Idempotent, so done first: if anything below fails, the redelivery ends them again.
        detail = f"{sessions.end_sessions_for_subject(sub)} sessions ended"
    if name == "account-purged":
        # Remembered for good: a first sign-in racing this event can never link it.
        tx.put("purged", Claim(Claim.purged_key(sub)))
        account = store.get_account(nr_number) if nr_number else None
        if account is not None and account.linked_sub == sub:
            linking.unlink_items(tx, account, sub)
            tx.audit(audit_event(nr_number, "identity_unlinked_purged", actor=actor,
                                 subject=keyed_hash(sub), reason="Login.gov account purged"))
            action = f"unlinked; {detail}"
        else:
            # Not linked as we read it: that must still hold when the purge commits.
            tx.check("no_link", Claim, Claim.sub_key(sub), condition=Claim.claim.does_not_exist())
            action = f"no linked account; {detail}"
    else:
        if identity is not None and name in ("account-disabled", "account-enabled"):
            _record_disabled_or_enabled(tx, identity, sub, name, issued_at)
        if nr_number is not None:
            tx.audit(audit_event(nr_number, f"login_gov_{name.replace('-', '_')}", actor=actor,
                                 subject=keyed_hash(sub),
                                 **({"sessions_ended": detail} if detail else {})))
        action = detail or "recorded"
    try:
        tx.commit()
    except store.TransactionRefused as refused:
        if refused.refused("jti"):
            raise _Duplicate() from None
        raise _RaceLost() from None
    if name in ("account-purged", "account-disabled"):
        # Any session a sign-in created while we worked: from now on sign-ins are refused
        # (the purge unlinked, the disabled mark is read with the link).
        sessions.end_sessions_for_subject(sub)
    return action


def _record_disabled_or_enabled(tx: store.Transaction, identity: Claim, sub: str, name: str,
                                issued_at: int) -> None:
    """Keep the latest time of each on the identity's link; an older event delivered late
    changes nothing. Conditioned on what was read: a concurrent change is a lost race.
    The linked account carries the outcome too (`Account.login_gov_disabled`)."""
    disabling = name == "account-disabled"
    attribute = Claim.disabled_at if disabling else Claim.enabled_at
    latest = identity.disabled_at if disabling else identity.enabled_at
    if latest is not None and latest >= issued_at:
        return
    # Both times as read, not only ours: a disable and an enable handled at once would each
    # write the account's mark from a stale pair, and the last to commit would win.
    tx.update("identity", Claim(identity.claim), [attribute.set(issued_at)],
              condition=(Claim.nr_number == identity.nr_number)
              & _as_read(Claim.disabled_at, identity.disabled_at)
              & _as_read(Claim.enabled_at, identity.enabled_at))
    disabled = Claim.disabled_by_times(issued_at if disabling else identity.disabled_at,
                                       identity.enabled_at if disabling else issued_at)
    account = store.get_account(identity.nr_number)
    if account is not None and account.linked_sub == sub:
        # Only the mark and the version: an unrelated edit of the account need not lose.
        tx.update("account", account,
                  [Account.login_gov_disabled.set(True) if disabled
                   else Account.login_gov_disabled.remove()],
                  condition=Account.linked_sub == sub, add_version_condition=False)
    else:
        # Not linked as we read it: that must still hold at commit, or a relink in between
        # would get a marked link and an unmarked account.
        tx.check("account", Account, identity.nr_number,
                 condition=Account.linked_sub.does_not_exist() | (Account.linked_sub != sub))


def _as_read(attribute, value):
    return attribute.does_not_exist() if value is None else attribute == value
