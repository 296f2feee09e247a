"""Staff sign-in: chalicelib's Login.gov relying party, finished the console's way.

The console is a Login.gov client of its own (its own client id, key and redirect URI
`<console base>/auth/callback`, all in its own Lambda's environment), so it reuses the
examiners' pieces as they are: `chalicelib.signin.start_signin` and `consume_state` (state,
nonce, PKCE and the browser-binding cookie), `chalicelib.login_gov` (token exchange, ID
token and userinfo checks). What differs:

- the request: LOGIN_GOV_ACR_VALUES with the phishing-resistant AAL, LOGIN_GOV_PROMPT
  `login` (every console sign-in authenticates again), and `max_age` =
  DESK_FRESH_SIGNIN_SECONDS (OIDC Core 3.1.2.1), added here;
- the answer: the assurance (supportdesk.console.assurance), and `auth_time` when the
  token has it (a provider that honours max_age): older than max_age is refused;
- the outcome: no examiner linking. The identity must be on the staff list: by its sub,
  or, at its first sign-in, by a pending entry for one of its verified emails
  (supportdesk.console.staff.bind_at_signin). Otherwise the "not on the staff list" page.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from chalicelib import clock, login_gov
from chalicelib import signin as shared_signin
from chalicelib.config import get_settings
from chalicelib.errors import (
    AcrError,
    LoginGovReturnedError,
    SignInCancelled,
    SignInError,
    StateError,
)
from chalicelib.logs import count, keyed_hash, log_event
from supportdesk.console import assurance, sessions, staff
from supportdesk.console.errors import AssuranceRefused, StaleAuthentication
from supportdesk.console.settings import desk_settings

HOME = "/home"


@dataclass(frozen=True)
class Started:
    authorization_url: str
    state: str
    browser_binding: str


def start(return_to: str | None) -> Started:
    """Record the sign-in (flows table, as the examiners' app does) and build Login.gov's
    authorization URL, with max_age added."""
    desk_settings()  # refuse to start a sign-in under settings that undo a protection
    started = shared_signin.start_signin(return_to or HOME)
    max_age = urlencode({"max_age": desk_settings().fresh_signin_seconds})
    return Started(f"{started.authorization_url}&{max_age}", started.state, started.browser_binding)


@dataclass(frozen=True)
class Completed:
    session_token: str
    redirect_to: str


def complete(params: dict[str, str], browser_binding: str | None) -> Completed:
    """The callback: check the answer, find the staff member, start a session."""
    state = params.get("state", "")
    login_gov.validate_authorization_response_issuer(params.get("iss"))
    if params.get("error"):
        if state:
            try:
                shared_signin.consume_state(state, browser_binding)  # a cancelled state is spent
            except StateError:
                pass
        if params["error"] == "access_denied":
            raise SignInCancelled("cancelled at Login.gov")
        raise LoginGovReturnedError(f"Login.gov returned error {params['error'][:40]!r}")
    code = params.get("code", "")
    if not code or len(code) > shared_signin.MAX_CODE_LENGTH:
        raise SignInError("authorization code missing or malformed")

    signin_state = shared_signin.consume_state(state, browser_binding)
    tokens = login_gov.exchange_code(code, code_verifier=signin_state.code_verifier)
    try:
        claims = login_gov.validate_id_token(
            tokens.id_token, nonce=signin_state.nonce, access_token=tokens.access_token
        )
    except AcrError:
        # An acr the console did not ask for is an assurance it did not ask for.
        raise AssuranceRefused("acr is not one requested", reason="acr_not_requested") from None
    sub = claims["sub"]
    how = assurance.check(claims)
    authenticated_at = _authenticated_at(claims)

    member = staff.get(sub)
    if member is None:
        userinfo = login_gov.get_userinfo(tokens.access_token, expected_sub=sub)
        emails = login_gov.verified_emails(userinfo)
        shown = login_gov.shared_email(userinfo) or (emails[0] if emails else None)
        member = staff.bind_at_signin(sub, emails, shown_email=shown)
    token, _ = sessions.create(sub, authenticated_at)
    log_event("staff_signed_in", subject=keyed_hash(sub), role=member.role, assurance=how)
    count("StaffSignIn")
    return Completed(token, signin_state.return_to)


def _authenticated_at(claims: dict) -> int:
    """When Login.gov authenticated the person: `auth_time` if the token has it (and it
    must be within the max_age asked for), else now, the sign-in having asked Login.gov to
    authenticate again (prompt=login, which settings.py requires)."""
    now = clock.epoch_seconds()
    auth_time = claims.get("auth_time")
    if auth_time is None:
        return now
    if not isinstance(auth_time, int) or isinstance(auth_time, bool):
        raise StaleAuthentication("auth_time is not a number", reason="auth_time_malformed")
    limit = desk_settings().fresh_signin_seconds + get_settings().token_leeway
    # Threat: a provider that ignored max_age hands us an hours-old sign-in as a fresh one.
    if now - auth_time > limit:
        raise StaleAuthentication("auth_time is older than max_age", reason="stale")
    return min(auth_time, now)
