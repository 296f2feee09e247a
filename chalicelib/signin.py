"""The sign-in flow: start at /login, finish at /auth/callback.

State is single-use and bound to the browser that started the sign-in: each /login makes
a fresh random binding for its own state, stores sha256(state) with the nonce, the PKCE
code_verifier, the return path and sha256(binding), and hands the binding to the browser
in a cookie named after that state (chalicelib.web.signin_cookie). The callback checks the
response's `iss`, then consumes the record in one conditional update that also checks the
binding, so a replayed state, or a state carried to another browser, fails closed. A
binding the browser sends is never adopted: a planted one (login CSRF) would otherwise
bind the victim's sign-ins to a value the attacker knows.

A failed or repeated callback never ends a valid session: a person who is signed in and
comes back through a spent or cancelled sign-in (Back, then Continue at Login.gov; Sign in,
then Cancel) is sent where that sign-in was going, as they are.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from enum import Enum

from pynamodb.exceptions import PynamoDBException, UpdateError

from chalicelib import clock, login_gov, sessions
from chalicelib.config import get_settings
from chalicelib.digests import sha256_hex
from chalicelib.errors import (
    IdentityProviderUnavailable,
    LinkedButNotSignedIn,
    LoginGovReturnedError,
    NoMatchingAccount,
    ReturnToRejected,
    SignInCancelled,
    SignInError,
    StateError,
)
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Flow, SignInState, expiry_bucket
from chalicelib.redirects import DEFAULT_RETURN_PATH, safe_return_path
from chalicelib.store import condition_failed

MAX_STATE_LENGTH = 128
MAX_CODE_LENGTH = 512
MAX_BINDING_LENGTH = 128


@dataclass(frozen=True)
class StartedSignIn:
    authorization_url: str
    state: str  # names the binding cookie (chalicelib.web.signin_cookie)
    browser_binding: str  # its value


def start_signin(return_to: str | None) -> StartedSignIn:
    """Record a fresh state, nonce, PKCE verifier and browser binding; build Login.gov's
    authorization URL.

    The binding is always new: never one the browser sends (see the module docstring).
    """
    settings = get_settings()
    return_path = safe_return_path(return_to) if return_to else DEFAULT_RETURN_PATH
    if return_path is None:
        raise ReturnToRejected("return_to is not a same-site path")
    binding = login_gov.random_token()
    state, nonce = login_gov.random_token(), login_gov.random_token()
    code_verifier = login_gov.random_token()
    discovering = login_gov.discover_in_background()
    now = clock.epoch_seconds()
    expires = now + settings.signin_state_ttl
    record = SignInState(
        f"signin#{sha256_hex(state)}",
        nonce=nonce,
        code_verifier=code_verifier,
        browser_hash=sha256_hex(binding),
        return_to=return_path,
        created_at=now,
        expires_at=expires,
        expiry_bucket=expiry_bucket(expires),
    )
    try:
        record.save(condition=Flow.flow_id.does_not_exist())
    finally:
        if discovering is not None:
            discovering.join()
    try:
        url = login_gov.build_authorization_url(state, nonce, code_verifier)
    except IdentityProviderUnavailable:
        _forget_state(record)
        raise
    return StartedSignIn(authorization_url=url, state=state, browser_binding=binding)


def _forget_state(record: SignInState) -> None:
    """A state no authorization URL was built for can never come back: delete it now
    rather than leave it to expire (cleanup would remove it later anyway)."""
    try:
        record.delete()
    except PynamoDBException:
        log_event("signin_state_not_forgotten", level=logging.WARNING)


def consume_state(state: str, browser_binding: str | None) -> SignInState:
    """Mark the state used, atomically, if it exists, is live, unused and ours."""
    if not state or len(state) > MAX_STATE_LENGTH:
        raise StateError("state missing or malformed")
    if not browser_binding or len(browser_binding) > MAX_BINDING_LENGTH:
        raise StateError("sign-in cookie missing: started in another browser?")
    record = SignInState(f"signin#{sha256_hex(state)}")
    try:
        record.update(
            actions=[SignInState.expires_at.set(clock.epoch_seconds())],
            condition=(
                Flow.flow_id.exists()
                & (Flow.kind == SignInState)
                & (Flow.expires_at > clock.epoch_seconds())
                & (SignInState.browser_hash == sha256_hex(browser_binding))
            ),
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise  # throttling or an outage: the state is not spent, a retry can finish
        # Unknown, used, expired, or another browser's: indistinguishable on purpose.
        raise StateError("state unknown, used, expired, or from another browser") from None
    return record


class SignInOutcome(Enum):
    RETURNING = "returning"
    LINKED = "linked"
    NEEDS_RECOVERY = "needs_recovery"
    STILL_SIGNED_IN = "still_signed_in"  # a spent or cancelled sign-in; the session stays


@dataclass(frozen=True)
class CompletedSignIn:
    outcome: SignInOutcome
    session_token: str | None  # a new session's cookie token (None: keep the current one)
    redirect_to: str


def complete_signin(
    params: dict[str, str], browser_binding: str | None, *, session_token: str | None = None
) -> CompletedSignIn:
    """Handle the callback query; return where to send the browser, or raise a typed error.

    `session_token` is the browser's current session cookie, if any: a signed-in person
    whose callback is spent, foreign or cancelled goes on, signed in, instead of to an error.
    """
    try:
        return _complete_signin(params, browser_binding)
    except (StateError, LoginGovReturnedError) as error:
        still = _still_signed_in(session_token, params.get("state", ""))
        if still is None:
            raise
        log_event("signin_callback_while_signed_in", reason=error.event)
        count("SignIn", outcome=SignInOutcome.STILL_SIGNED_IN.value)
        return still


def _still_signed_in(session_token: str | None, state: str) -> CompletedSignIn | None:
    """Where a signed-in person goes after a callback that cannot sign them in: the spent
    state's return path if it is still stored (a same-site path, checked at /login), else
    their account. None when there is no live session."""
    if sessions.load_session(session_token) is None:
        return None
    return_to = DEFAULT_RETURN_PATH
    if state and len(state) <= MAX_STATE_LENGTH:
        try:
            record = SignInState.get(f"signin#{sha256_hex(state)}", consistent_read=True)
            if isinstance(record, SignInState) and record.return_to:
                return_to = record.return_to
        except SignInState.DoesNotExist:
            pass
    return CompletedSignIn(SignInOutcome.STILL_SIGNED_IN, None, return_to)


def _complete_signin(params: dict[str, str], browser_binding: str | None) -> CompletedSignIn:
    # Imported here, not above: /login, a cold start's usual first request, needs neither.
    from chalicelib import linking, notices

    state = params.get("state", "")
    # Before the state is touched: a response that names another issuer (or lacks the one
    # discovery promises) is refused without spending the state, so a forged or mixed-up
    # response, error or not, cannot cancel the sign-in of the browser that holds it.
    login_gov.validate_authorization_response_issuer(params.get("iss"))
    error = params.get("error")
    if error:
        if state:
            try:
                consume_state(state, browser_binding)  # a cancelled state is spent too
            except StateError:
                pass
        if error == "access_denied":
            raise SignInCancelled("cancelled at Login.gov")
        raise LoginGovReturnedError(f"Login.gov returned error {error[:40]!r}")
    code = params.get("code", "")
    if not code or len(code) > MAX_CODE_LENGTH:
        raise SignInError("authorization code missing or malformed")

    signin_state = consume_state(state, browser_binding)
    tokens = login_gov.exchange_code(code, code_verifier=signin_state.code_verifier)
    claims = login_gov.validate_id_token(
        tokens.id_token, nonce=signin_state.nonce, access_token=tokens.access_token
    )
    sub = claims["sub"]

    nr_number = linking.account_to_sign_in(sub)
    if nr_number is not None:
        token, _ = sessions.create_session(sub, nr_number)
        log_event("signin_returning", subject=keyed_hash(sub), nr_number=nr_number)
        count("SignIn", outcome="returning")
        return CompletedSignIn(SignInOutcome.RETURNING, token, signin_state.return_to)

    userinfo = login_gov.get_userinfo(tokens.access_token, expected_sub=sub)
    emails = login_gov.verified_emails(userinfo)
    try:
        result = linking.link_by_verified_emails(
            sub,
            emails,
            login_gov_email=login_gov.shared_email(userinfo) or (emails[0] if emails else None),
        )
    except NoMatchingAccount:
        # Keep the proven identity in a session so the person can recover the link.
        token, _ = sessions.create_session(sub, None, verified_emails=emails)
        log_event("link_refused_no_match", subject=keyed_hash(sub), emails=len(emails))
        count("SignIn", outcome="no_match")
        return CompletedSignIn(SignInOutcome.NEEDS_RECOVERY, token, "/link/no-match")
    outcome = (
        SignInOutcome.LINKED
        if result.outcome is linking.LinkOutcome.LINKED
        else SignInOutcome.RETURNING
    )
    if outcome is SignInOutcome.LINKED:
        notices.send_link_notice(result.nr_number)  # best-effort: never fails the sign-in
    token = start_linked_session(
        sub, result.nr_number, notice="linked" if outcome is SignInOutcome.LINKED else None
    )
    count("SignIn", outcome=outcome.value)
    redirect = "/account" if outcome is SignInOutcome.LINKED else signin_state.return_to
    return CompletedSignIn(outcome, token, redirect)


def start_linked_session(sub: str, nr_number: str, *, notice: str | None) -> str:
    """The session after a link: if it cannot start, the page must still tell the truth —
    the link has committed; signing in again finishes (never "nothing was changed")."""
    try:
        token, _ = sessions.create_session(sub, nr_number, notice=notice)
    except PynamoDBException as exc:
        log_event(
            "session_not_started_after_link",
            logging.ERROR,
            nr_number=nr_number,
            error=exc.__class__.__name__,
        )
        raise LinkedButNotSignedIn(
            "linked; the session could not start", nr_number=nr_number
        ) from None
    return token


def finish_logout(
    session_token: str | None, *, expected_state: str | None, returned_state: str | None
) -> bool:
    """Where Login.gov's logout sends the browser back: True when this is the redirect we
    asked for (its state matches our cookie), so the page may claim a Login.gov sign-out.

    The session normally ended at /logout; end it here too, so "you are signed out" is true
    even for someone who followed a link here.
    """
    sessions.end_session(session_token)
    via_login_gov = bool(
        expected_state
        and returned_state
        and hmac.compare_digest(expected_state.encode(), returned_state.encode())
    )  # bytes: any text compares
    if not via_login_gov:
        log_event("logout_state_mismatch", logging.WARNING)
    return via_login_gov
