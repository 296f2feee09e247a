"""Security Event Tokens as Login.gov pushes them (identity-idp's push_notification): each
event under the prefix Login.gov sends it with, an iss-sub subject (or an email subject for
identifier-changed / identifier-recycled), `exp` 12 hours after `iat`."""

from __future__ import annotations

from chalicelib.clock import epoch_seconds
from tests.support import CLIENT_ID

# Whom the SETs are addressed to (`aud`): every token the tests build is built with it.
AUDIENCE = CLIENT_ID
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
LOGIN_GOV = "https://schemas.login.gov/secevent/risc/event-type/"
# Every event Login.gov documents, under the prefix it sends it with.
PREFIXES = {
    "account-purged": RISC,
    "account-disabled": RISC,
    "account-enabled": RISC,
    "identifier-changed": RISC,
    "identifier-recycled": RISC,
    "recovery-activated": RISC,
    "recovery-information-changed": RISC,
    "password-reset": LOGIN_GOV,
    "reproof-completed": LOGIN_GOV,
    "mfa-limit-account-locked": LOGIN_GOV,
}


def set_for(
    idp,
    event: str,
    sub: str | None = None,
    *,
    email: str | None = None,
    uri: str | None = None,
    subject: dict | None = None,
    **overrides,
) -> str:
    """A SET as Login.gov pushes it: `event` under its documented prefix, about the identity
    `sub` (iss-sub) or the address `email` (subject_type email); `uri` and `subject`
    replace either, for events Login.gov does not document."""
    uri = uri or PREFIXES[event] + event
    if subject is None:
        subject = (
            {"subject_type": "email", "email": email}
            if email is not None
            else {"subject_type": "iss-sub", "iss": idp.issuer, "sub": sub}
        )
    issued = overrides.pop("iat", epoch_seconds())  # the app's clock: a test may move it
    claims = {
        "iat": issued,
        "exp": issued + 12 * 3600,
        "events": {uri: {"subject": subject}},
        **overrides,
    }
    return idp.security_event_token(AUDIENCE, event, sub or "", **claims)
