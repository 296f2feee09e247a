"""Every failure a person can meet, as a typed error: what went wrong, nothing more.

Each error has a stable event name (`event`, the same name in logs, metrics and the audit
trail) and a `context` of plain values (registry number, keyed-hash subject, tries left...).
Which page, status or redirect a person gets is decided at the edge, in one table:
`chalicelib.pages.ERROR_RESPONSES`. Messages are for tests and logs; pages carry the words
people read. Context never holds a raw email address, code or Login.gov subject when it is
logged: the edge logs only the fields named in `pages.LOGGED_CONTEXT`.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base for failures that end in a page instead of a 5xx."""

    event = "request_failed"

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message or self.__class__.__doc__ or self.event)
        self.context = context


# --- Sign-in (OpenID Connect) -------------------------------------------------------------


class SignInError(ServiceError):
    """The sign-in could not be completed."""

    event = "signin_failed"


class LoginGovReturnedError(SignInError):
    """Login.gov sent the browser back with an `error` instead of a code."""

    event = "signin_failed"


class SignInCancelled(LoginGovReturnedError):
    """The person cancelled at Login.gov."""

    event = "signin_cancelled"


class IssuerMismatch(SignInError):
    """The authorization response names another issuer than Login.gov's, or lacks the `iss`
    Login.gov's discovery promises (RFC 9207): a mix-up or a forged response."""

    event = "authorization_response_issuer_rejected"


class StateError(SignInError):
    """State is missing, unknown, expired, already used, or belongs to another browser."""

    event = "signin_state_rejected"


class TokenExchangeError(SignInError):
    """Login.gov refused the code exchange (a used, expired or foreign code)."""

    event = "token_exchange_failed"


class IdentityProviderUnavailable(SignInError):
    """Login.gov (discovery, keys, token or userinfo) failed or did not answer in time.

    A 4xx like every sign-in failure: the browser's request was fine but cannot succeed;
    ops see outages through the identity_provider_unavailable metric and alarm instead.
    """

    event = "identity_provider_unavailable"


class IdTokenError(SignInError):
    """The ID token failed validation (signature, issuer, audience, times, nonce, sub)."""

    event = "id_token_rejected"


class NonceError(IdTokenError):
    """The ID token nonce is missing or does not match the sign-in request."""

    event = "id_token_nonce_rejected"


class AcrError(IdTokenError):
    """The ID token's `acr` is missing or not one of the requested LOGIN_GOV_ACR_VALUES."""

    event = "id_token_acr_rejected"


class UserInfoError(SignInError):
    """Userinfo failed or named a different subject than the ID token."""

    event = "userinfo_rejected"


class IdentityDisabled(SignInError):
    """Login.gov disabled this identity (a security event) and has not enabled it since."""

    event = "signin_refused_disabled"


class ReturnToRejected(ServiceError):
    """A return_to value that is not a same-site path."""

    event = "return_to_rejected"


# --- Linking -------------------------------------------------------------------------------


class LinkRefused(ServiceError):
    """A registry account could not be linked to this Login.gov identity."""

    event = "link_refused"


class NoMatchingAccount(LinkRefused):
    """None of the verified Login.gov emails is a registry primary or secondary email."""

    event = "link_refused_no_match"


class AmbiguousMatch(LinkRefused):
    """The verified emails match two or more registry accounts."""

    event = "link_refused_ambiguous"


class AccountAlreadyLinked(LinkRefused):
    """The matching registry account is linked to a different Login.gov identity."""

    event = "link_refused_shared"


class AccountInactive(LinkRefused):
    """The registry account is disabled or removed."""

    event = "link_refused_inactive"


class SharedAddress(LinkRefused):
    """The address is, or was, on several registry accounts: it proves nobody's identity
    (no automatic link, no recovery code) until support has verified the person."""

    event = "link_refused_shared_address"


class LinkBarred(LinkRefused):
    """Support evicted this identity from this account ("not the owner")."""

    event = "link_refused_barred"


class MatchChanged(LinkRefused):
    """The address that matched no longer belongs to that account alone (a registry
    correction or an email change happened meanwhile); nothing was linked."""

    event = "link_refused_match_changed"


class LinkedButNotSignedIn(ServiceError):
    """The link committed, then a later step of the same request failed (starting the
    session): the accounts ARE linked, and signing in again finishes the job."""

    event = "linked_but_not_signed_in"


class IdentityPurged(LinkRefused):
    """Login.gov purged this identity; it is never linked again."""

    event = "link_refused_purged"


# --- Sessions and forms --------------------------------------------------------------------


class NotSignedIn(ServiceError):
    """No valid session: the route redirects to /login."""

    event = "session_missing"


class NotLinkedYet(NotSignedIn):
    """Signed in with Login.gov, but no registry account is linked yet: go to recovery."""

    event = "session_not_linked"


class AlreadyLinked(ServiceError):
    """A linked session on a page for people not yet linked (recovery): go to the account."""

    event = "session_already_linked"


class CsrfError(ServiceError):
    """A form arrived without the session's CSRF token."""

    event = "csrf_rejected"


class BadRequest(ServiceError):
    """The request is malformed."""

    event = "bad_request"


class StorageUnavailable(ServiceError):
    """DynamoDB failed or throttled beyond retries; nothing was half-written."""

    event = "storage_unavailable"


class NotFound(ServiceError):
    """No such page."""

    event = "not_found"


# --- One-time codes ------------------------------------------------------------------------


class CodeError(ServiceError):
    """The one-time code could not be accepted. `pause`: this wrong code paused the
    account's recovery (a chalicelib.guess_limits.PauseStarted, for the workflow to tell)."""

    event = "code_rejected"
    pause: object | None = None


class WrongCode(CodeError):
    """The code does not match; tries remain (context: remaining)."""

    event = "code_wrong"


class CodeMalformed(CodeError):
    """What was typed cannot be a code (not 6 digits once spaces and dashes are dropped);
    no try was counted (context: purpose, target_email)."""

    event = "code_malformed"


class NoPendingCode(CodeError):
    """No live code for this purpose in this browser session (never sent, used, cancelled,
    or sent to another session or for another purpose: indistinguishable on purpose)."""

    event = "code_not_pending"


class CodeExpired(CodeError):
    """The code's lifetime (CODE_TTL_SECONDS) is over."""

    event = "code_expired"


class TooManyAttempts(CodeError):
    """CODE_MAX_ATTEMPTS wrong tries: the code is dead, even for the right one."""

    event = "code_attempts_exhausted"


class RecoveryPaused(WrongCode):
    """Recovery codes for this registry account reached RECOVERY_FAILED_GUESSES_PER_ACCOUNT_
    PER_DAY wrong guesses in 24 hours: none verifies for 24 hours. Shown as a wrong code, as
    a decoy's guess is, so the answer never tells that the address is a registry address;
    logged and counted under its own name (context: remaining, nr_number)."""

    event = "recovery_paused"


class GuessLimitReached(CodeError):
    """This Login.gov identity reached CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY wrong codes."""

    event = "code_guess_limited"


class SendLimitReached(ServiceError):
    """Too many codes sent to this identity, to this address by this identity, or to this
    address by everyone, within the hour."""

    event = "code_send_limited"


class MailNotSent(ServiceError):
    """SES refused or did not answer (the outbox worker: SQS delivers the message again)."""

    event = "mail_send_failed"


class MailNotQueued(ServiceError):
    """The outbox (SQS) did not take the message; nothing was counted against the sender's
    allowance and no code is waiting."""

    event = "mail_not_queued"


# --- Recovery and email change --------------------------------------------------------------


class RecoveryEmailInvalid(BadRequest):
    """The address typed on the recovery form is not a usable email address."""

    event = "recovery_email_invalid"


class NewEmailInvalid(BadRequest):
    """The new address typed on the email-change form is not usable (context: reason)."""

    event = "email_change_input_invalid"


class EmailChangeRefused(ServiceError):
    """An email change could not be made."""

    event = "email_change_refused"


class EmailChangeLimitReached(EmailChangeRefused):
    """Too many changes without a code (remove, swap) on this account within the hour."""

    event = "email_change_limited"


class RecentSignInRequired(ServiceError):
    """Changing an email address needs a Login.gov sign-in within
    EMAIL_CHANGE_RECENT_SIGNIN_SECONDS: the person signs in again and comes back."""

    event = "recent_signin_required"


class EmailAddressTaken(EmailChangeRefused):
    """The new address belongs to a registry account (never says whose)."""

    event = "email_change_refused_taken"


class EmailChangeConflict(EmailChangeRefused):
    """The account's emails changed after the code was sent; nothing was changed."""

    event = "email_change_conflict"


# --- Security events (a JSON API: chalicelib.routes.security_event_routes answers these) -----


class SecurityEventRejected(Exception):
    """The SET is not acceptable. `code` is the RFC 8935 error code for the 400 answer."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code, self.description = code, description


class SecurityEventDeferred(Exception):
    """Not handled now (nothing changed): answered 503, so Login.gov delivers it again."""
