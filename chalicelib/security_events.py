"""Login.gov security events (RISC): verify a pushed Security Event Token and act on it.

Push delivery per RFC 8935: the body is one SET (RFC 8417), a JWT signed with Login.gov's
published keys. We check the signature (RS256 only, the same key cache as ID tokens; the
key its `kid` names, or any published key when it names none, as Login.gov's older tokens
did), `iss` = the discovered issuer, `aud` = the push URL Login.gov addresses it to (our
client id is accepted too), a fresh `iat`. Its `jti` is recorded with a
conditional write in the same transaction as the action, so each event acts once.

Login.gov sends its events (identity-idp, app/services/push_notification) under two
prefixes: `https://schemas.openid.net/secevent/risc/event-type/` for the RISC names and
`https://schemas.login.gov/secevent/risc/event-type/` for its own (password-reset,
reproof-completed, mfa-limit-account-locked). Most name an identity (`subject_type`
iss-sub: Login.gov's issuer and the `sub`); identifier-changed and identifier-recycled
name an address (`subject_type` email) and no identity.

What each event does:
- account-purged: the Login.gov account is gone; unlink so the person can relink with a
  new Login.gov account (a purged account that re-registers gets a new `sub`), remember
  the purged `sub` so no sign-in racing the event can link it, and drop its marks.
- account-disabled (Login.gov also sends it when it suspends an account, with reason
  account-suspension): end every session of that identity and mark it disabled until an
  account-enabled event (both by the events' own times, so a late delivery of an older one
  changes nothing). The mark belongs to the identity, linked or not: it lives on its
  `sub#` item (chalicelib.models.Claim), which exists without a link to carry it, and is
  mirrored on the linked account (`Account.login_gov_disabled`), which every signed-in
  request reads. While it holds, no sign-in, link (automatic or by recovery) or recovery
  page of that identity goes through, and support's unlink keeps it. Sessions are ended
  again after the mark commits, for a sign-in that was under way.
- account-enabled (also sent when Login.gov reinstates a suspended account): clears that
  mark when it is the later event. `account-suspended` and `account-reinstated`, should
  Login.gov send them under names of their own, act as a disable and an enable.
- identifier-changed (an address added to or removed from a Login.gov account) and
  identifier-recycled (removed, so free for another Login.gov account to add): recorded in
  the audit trail of each registry account whose primary or secondary address it is
  (chalicelib.claims, by the normalized address), where support sees it (`find`). No
  claim and no link changes. Links are by `sub`, never by address, so no existing link
  depends on which Login.gov account holds the address. And the address still proves its
  registry account for whoever controls the mailbox: Login.gov verifies control before an
  address joins any Login.gov account, the same proof a recovery code asks for, so a
  recycled address proves nothing more or less about who links next than any address
  does. Treating it as no proof (like a shared address) would lock the owner out of
  linking and recovery and protect nothing a recovery code does not already expose.
- recovery-activated, recovery-information-changed, password-reset, reproof-completed,
  mfa-limit-account-locked: recorded in the audit trail of the linked account.
- Anything else, an event type or a subject type Login.gov does not document: answered
  202, logged (the type, cut short and made safe) and its jti remembered, so a redelivery
  is a duplicate. Login.gov treats any non-2xx answer as a failure and delivers again: a
  refusal would repeat forever. A token that fails verification (signature, issuer,
  audience, age, jti), or whose event is malformed (not exactly one event; a documented
  subject without its `sub` or address; an iss-sub subject of another issuer), is
  refused with 400 as RFC 8935 says.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from chalicelib import claims as address_claims
from chalicelib import clock, linking, login_gov, sessions, store
from chalicelib.audit import audit_event
from chalicelib.emails import try_normalize_email
from chalicelib.errors import (
    IdentityProviderUnavailable,
    SecurityEventDeferred,
    SecurityEventRejected,
)
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import (
    Account,
    AuditEvent,
    Claim,
    Flow,
    SeenSecurityEvent,
    expiry_bucket,
    utc_now,
)

RISC_PREFIX = "https://schemas.openid.net/secevent/risc/event-type/"
LOGIN_GOV_PREFIX = "https://schemas.login.gov/secevent/risc/event-type/"
# Every event type Login.gov documents: the URI it sends -> its name.
EVENT_TYPES = {
    **{
        RISC_PREFIX + name: name
        for name in (
            "account-purged",
            "account-disabled",
            "account-enabled",
            "identifier-changed",
            "identifier-recycled",
            "recovery-activated",
            "recovery-information-changed",
            "account-suspended",
            "account-reinstated",
        )
    },
    **{
        LOGIN_GOV_PREFIX + name: name
        for name in ("password-reset", "reproof-completed", "mfa-limit-account-locked")
    },
}
ADDRESS_EVENTS = frozenset({"identifier-changed", "identifier-recycled"})
DISABLING = frozenset({"account-disabled", "account-suspended"})
ENABLING = frozenset({"account-enabled", "account-reinstated"})
ACTOR = "login.gov:risc"
MAX_TOKEN_LENGTH = 16_384
MAX_EMAIL_LENGTH = 320
# How long a jti is remembered; older tokens are refused by their iat anyway.
JTI_MEMORY_SECONDS = 7 * 24 * 3600
MAX_TOKEN_AGE_SECONDS = 24 * 3600
MAX_ATTEMPTS = 3
# What a log line may show of a text Login.gov chose (an unknown event type, a reason).
MAX_LOGGED_TEXT = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9:/._~#-]")


@dataclass(frozen=True)
class SecurityEvent:
    """The one event of a verified SET, as far as we understand it."""

    uri: str
    name: str | None = None  # the documented name; None: a type Login.gov does not
    sub: str | None = None  # iss-sub events
    address: str | None = None  # email events: normalized (None: no address could be it)
    ignored: str | None = None  # why nothing is done but remembering the jti
    reason: str | None = None  # Login.gov's reason, when it gives one (made safe)


@dataclass(frozen=True)
class HandledEvent:
    name: str | None
    sub: str | None
    nr_numbers: tuple[str, ...]
    action: str


# RFC 8935 error codes for each reason login_gov.verify_login_gov_jwt gives.
_REJECTION_CODES = {
    "malformed": "invalid_request",
    "algorithm": "invalid_key",
    "key": "invalid_key",
    "signature": "invalid_key",
    "issuer": "invalid_issuer",
    "audience": "invalid_audience",
    "claims": "invalid_request",
}


def verify_security_event_token(token: str) -> dict:
    """Signature, issuer, audience, freshness. Returns the claims (jti not yet recorded)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise SecurityEventRejected("invalid_request", "empty or oversized token")
    try:
        claims = login_gov.verify_login_gov_jwt(
            token,
            require=["iss", "aud", "iat", "jti", "events"],
            audiences=login_gov.security_event_audiences(),
            # Login.gov's older tokens named no key.
            any_key_without_kid=True,
        )
    except login_gov.JwtRejected as rejected:
        code = _REJECTION_CODES.get(rejected.context.get("reason", ""), "invalid_request")
        raise SecurityEventRejected(code, f"token rejected: {rejected}") from None
    if claims["iat"] < clock.now() - MAX_TOKEN_AGE_SECONDS:
        raise SecurityEventRejected("invalid_request", "token is too old")
    if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 256:
        raise SecurityEventRejected("invalid_request", "jti is malformed")
    return claims


def safe_text(value: object, limit: int = MAX_LOGGED_TEXT) -> str:
    """Text Login.gov chose, fit for a log line: URI characters only, cut short."""
    return _UNSAFE.sub("?", value if isinstance(value, str) else repr(value)[:limit])[:limit]


def read_event(claims: dict) -> SecurityEvent:
    """The one event this SET carries and its subject. SecurityEventRejected (a 400) only
    for what is malformed; a type or subject type we do not know is read as ignored."""
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise SecurityEventRejected("invalid_request", "expected exactly one event")
    ((uri, body),) = events.items()
    name = EVENT_TYPES.get(uri)
    if name is None:
        return SecurityEvent(uri, ignored="unknown event type")
    subject = body.get("subject") if isinstance(body, dict) else None
    if not isinstance(subject, dict):
        raise SecurityEventRejected("invalid_request", "the event has no subject")
    expected = "email" if name in ADDRESS_EVENTS else "iss-sub"
    if subject.get("subject_type") != expected:
        return SecurityEvent(
            uri, name, ignored=f"unknown subject type {safe_text(subject.get('subject_type'), 40)}"
        )
    if expected == "email":
        email = subject.get("email")
        if not isinstance(email, str) or not email.strip() or len(email) > MAX_EMAIL_LENGTH:
            raise SecurityEventRejected("invalid_request", "subject email is missing")
        # An address our rule refuses is on no registry account: nothing to record it on.
        return SecurityEvent(uri, name, address=try_normalize_email(email))
    if subject.get("iss") != claims["iss"]:
        raise SecurityEventRejected("invalid_request", "subject issuer is not the token issuer")
    sub = subject.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 256:
        raise SecurityEventRejected("invalid_request", "subject sub is missing")
    reason = body.get("reason")
    return SecurityEvent(
        uri, name, sub=sub, reason=safe_text(reason, 40) if isinstance(reason, str) else None
    )


def _seen(jti: str) -> SeenSecurityEvent:
    now = clock.epoch_seconds()
    expires = now + JTI_MEMORY_SECONDS
    return SeenSecurityEvent(
        f"setjti#{jti}", created_at=now, expires_at=expires, expiry_bucket=expiry_bucket(expires)
    )


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
    event = read_event(claims)
    for _ in range(MAX_ATTEMPTS):
        try:
            nr_numbers, action = _act(event, claims["jti"], claims["iat"])
            break
        except _Duplicate:
            nr_numbers, action = (), "duplicate: already handled"
            break
        except _RaceLost:
            continue  # a sign-in linked (or support unlinked) meanwhile: read again
    else:
        raise SecurityEventDeferred("the account kept changing; deliver again")
    if event.ignored:
        # Not refused (Login.gov would deliver it again forever), but worth a look.
        log_event(
            "security_event_ignored",
            logging.WARNING,
            risc_event=safe_text(event.uri),
            reason=event.ignored,
            action=action,
        )
    elif event.sub is not None:
        log_event(
            "security_event_received",
            risc_event=event.name,
            subject=keyed_hash(event.sub),
            nr_number=nr_numbers[0] if nr_numbers else None,
            action=action,
        )
    else:
        log_event(
            "security_event_received",
            risc_event=event.name,
            address=keyed_hash(event.address),
            nr_numbers=list(nr_numbers),
            action=action,
        )
    count("SecurityEvent", event=event.name or "unknown")
    return HandledEvent(event.name, event.sub, nr_numbers, action)


class _Duplicate(Exception):
    """This jti was handled before: nothing more to do."""


class _RaceLost(Exception):
    """The link changed between our read and our write: read again."""


def _act(event: SecurityEvent, jti: str, issued_at: int) -> tuple[tuple[str, ...], str]:
    tx = store.Transaction()
    # Recorded with the action: a redelivery after a failure acts, a duplicate does not.
    tx.put("jti", _seen(jti), condition=Flow.flow_id.does_not_exist())
    # Parsing names every event it does not ignore.
    if event.ignored or event.name is None:
        _commit(tx)
        return (), f"acknowledged, nothing done: {event.ignored or 'unknown event type'}"
    if event.sub is None:
        return _act_on_address(tx, event.name, event.address)
    return _act_on_identity(tx, event, event.name, event.sub, issued_at)


def _commit(tx: store.Transaction) -> None:
    try:
        tx.commit()
    except store.TransactionRefused as refused:
        if refused.refused("jti"):
            raise _Duplicate() from None
        raise _RaceLost() from None


def _audit_name(name: str) -> str:
    return f"login_gov_{name.replace('-', '_')}"


def _act_on_address(
    tx: store.Transaction, name: str, address: str | None
) -> tuple[tuple[str, ...], str]:
    """identifier-changed / identifier-recycled: recorded on each registry account whose
    primary or secondary address it is; no claim or link changes (module docstring)."""
    found = address_claims.read(address) if address else None
    recorded = []
    for nr_number in sorted(found.holders) if found else ():
        account = store.get_account(nr_number)
        slot = _slot(account, address) if account and address else None
        if slot is None:
            continue  # the account let go of it since the claim was read
        # Its own key is unique: each account's record goes in once, with the jti.
        tx.put(
            f"audit:{nr_number}",
            audit_event(nr_number, _audit_name(name), actor=ACTOR, address=slot),
            condition=AuditEvent.at_event.does_not_exist(),
        )
        recorded.append(nr_number)
    _commit(tx)
    return tuple(recorded), (
        f"recorded on {len(recorded)} account(s)"
        if recorded
        else "no registry account holds this address"
    )


def _slot(account: Account, address: str) -> str | None:
    if account.primary_email_normalized == address:
        return "primary"
    if account.secondary_email_normalized == address:
        return "secondary"
    return None


def _act_on_identity(
    tx: store.Transaction, event: SecurityEvent, name: str, sub: str, issued_at: int
) -> tuple[tuple[str, ...], str]:
    identity = store.identity_claim(sub)
    nr_number = identity.nr_number if identity else None
    ends_sessions = name == "account-purged" or name in DISABLING
    detail = ""
    if ends_sessions:
        # Idempotent, so done first: if anything below fails, the redelivery ends them again.
        detail = f"{sessions.end_sessions_for_subject(sub)} sessions ended"
    if name == "account-purged":
        # Remembered for good: a first sign-in racing this event can never link it.
        tx.put("purged", Claim(Claim.purged_key(sub)))
        account = store.get_account(nr_number) if nr_number else None
        if account is not None and account.linked_sub == sub:
            linking.unlink_items(tx, account, sub, identity, purge=True)
            tx.audit(
                audit_event(
                    account.nr_number,
                    "identity_unlinked_purged",
                    actor=ACTOR,
                    subject=keyed_hash(sub),
                    reason="Login.gov account purged",
                )
            )
            action = f"unlinked; {detail}"
        else:
            # Not linked as we read it, which must still hold when the purge commits; its
            # marks go with it (a purged identity never signs in again).
            tx.delete(
                "identity", Claim(Claim.sub_key(sub)), condition=Claim.nr_number.does_not_exist()
            )
            action = f"no linked account; {detail}"
    else:
        if name in DISABLING or name in ENABLING:
            _record_disabled_or_enabled(tx, identity, sub, name in DISABLING, issued_at)
        if nr_number is not None:
            extra = {"sessions_ended": detail} if detail else {}
            if event.reason:
                extra["reason"] = event.reason
            tx.audit(
                audit_event(
                    nr_number, _audit_name(name), actor=ACTOR, subject=keyed_hash(sub), extra=extra
                )
            )
        action = detail or ("recorded" if nr_number else "no linked account")
    _commit(tx)
    if ends_sessions:
        # Any session a sign-in created while we worked: from now on sign-ins are refused
        # (the purge unlinked, the disabled mark is read with the link).
        sessions.end_sessions_for_subject(sub)
    return ((nr_number,) if nr_number else ()), action


def _record_disabled_or_enabled(
    tx: store.Transaction, identity: Claim | None, sub: str, disabling: bool, issued_at: int
) -> None:
    """Keep the latest time of each on the identity's `sub#` item, linked or not (created
    for an identity we have not met); an older event delivered late changes nothing.
    Conditioned on what was read: a concurrent change (a link, an unlink, another event)
    is a lost race. A linked account carries the outcome too (`Account.login_gov_disabled`).
    """
    disabled_at = identity.disabled_at if identity else None
    enabled_at = identity.enabled_at if identity else None
    nr_number = identity.nr_number if identity else None
    latest = disabled_at if disabling else enabled_at
    if latest is not None and latest >= issued_at:
        return
    attribute = Claim.disabled_at if disabling else Claim.enabled_at
    # Both times as read, not only ours: a disable and an enable handled at once would each
    # write the account's mark from a stale pair, and the last to commit would win. And the
    # link as read: a first sign-in linking meanwhile must get its account marked too.
    tx.update(
        "identity",
        Claim(Claim.sub_key(sub)),
        [attribute.set(issued_at), Claim.created_at.set(Claim.created_at | utc_now())],
        condition=store.as_read(Claim.nr_number, nr_number)
        & store.as_read(Claim.disabled_at, disabled_at)
        & store.as_read(Claim.enabled_at, enabled_at),
    )
    if nr_number is None:
        return
    disabled = Claim.disabled_by_times(
        issued_at if disabling else disabled_at, enabled_at if disabling else issued_at
    )
    account = store.get_account(nr_number)
    if account is not None and account.linked_sub == sub:
        # Only the mark and the version: an unrelated edit of the account need not lose.
        tx.update(
            "account",
            account,
            [
                Account.login_gov_disabled.set(True)
                if disabled
                else Account.login_gov_disabled.remove()
            ],
            condition=Account.linked_sub == sub,
            add_version_condition=False,
        )
    else:
        # Not linked as we read it: that must still hold at commit, or a relink in between
        # would get a marked link and an unmarked account.
        tx.check(
            "account",
            Account,
            nr_number,
            condition=Account.linked_sub.does_not_exist() | (Account.linked_sub != sub),
        )
