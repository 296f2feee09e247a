"""The console's own settings (environment variables), beside the shared ones of
chalicelib.config (APP_BASE_URL, LOGIN_GOV_*, TABLE_PREFIX, HMAC_ROOT_KEY...), which the
console's Lambda sets to its own values: its base URL, its own Login.gov client and key.

Read once per process and cached; tests call `reset_desk_settings()`. Settings that would
undo a security property are refused (ConfigurationError) instead of run without it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from chalicelib.config import ConfigurationError, get_settings

# What the console asks Login.gov for: authentication only (no identity proofing), with a
# phishing-resistant authenticator (PIV/CAC, a security key, face or touch unlock).
PHISHING_RESISTANT_AAL = "http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true"
DESK_ACR_VALUES = "urn:acr.login.gov:auth-only " + PHISHING_RESISTANT_AAL
# Login.gov enforces a requested AAL but its ID token's `acr` names only the IAL value
# (identity-idp issue #7922, "it enforces the AAL but doesn't assert it back"). For these
# issuers an answer that asserts nothing about the AAL is accepted by default.
LOGIN_GOV_ISSUERS = frozenset({"https://secure.login.gov/", "https://idp.int.identitysandbox.gov/"})
DEFAULT_SUPERVISOR_CONTACT = "your support desk supervisor"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "auto"):
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true, false or auto, got {raw!r}")


@dataclass(frozen=True)
class DeskSettings:
    # Idle timeout: a desk left unattended signs out after this long without a request.
    session_idle_seconds: int = 15 * 60
    # Absolute lifetime: a working day, then Login.gov again.
    session_absolute_seconds: int = 8 * 3600
    # Every change needs a Login.gov authentication this recent (and max_age asks for it).
    fresh_signin_seconds: int = 10 * 60
    # Accept an ID token that asserts no AAL at all (Login.gov's IAL-only `acr`).
    accept_unasserted_aal: bool = False
    # Who the "not on the staff list" page tells a person to ask.
    supervisor_contact: str = DEFAULT_SUPERVISOR_CONTACT

    @property
    def fresh_signin_minutes(self) -> int:
        return max(1, self.fresh_signin_seconds // 60)

    @property
    def idle_minutes(self) -> int:
        return max(1, self.session_idle_seconds // 60)


@functools.lru_cache(maxsize=1)
def desk_settings() -> DeskSettings:
    shared = get_settings()
    settings = DeskSettings(
        session_idle_seconds=_int("DESK_SESSION_IDLE_SECONDS", 15 * 60),
        session_absolute_seconds=_int("DESK_SESSION_ABSOLUTE_SECONDS", 8 * 3600),
        fresh_signin_seconds=_int("DESK_FRESH_SIGNIN_SECONDS", 10 * 60),
        accept_unasserted_aal=_flag(
            "DESK_ACCEPT_UNASSERTED_AAL", shared.login_gov_issuer in LOGIN_GOV_ISSUERS
        ),
        supervisor_contact=supervisor_contact(),
    )
    return _checked(settings)


def _checked(settings: DeskSettings) -> DeskSettings:
    shared = get_settings()
    if not 0 < settings.session_idle_seconds <= settings.session_absolute_seconds:
        raise ConfigurationError(
            "DESK_SESSION_IDLE_SECONDS must be above 0 and at most DESK_SESSION_ABSOLUTE_SECONDS"
        )
    if settings.fresh_signin_seconds <= 0:
        raise ConfigurationError("DESK_FRESH_SIGNIN_SECONDS must be above 0")
    # A console that does not ask for a phishing-resistant authenticator would let a
    # phished password and SMS code into the desk: refuse to run rather than ask for less.
    if PHISHING_RESISTANT_AAL not in shared.login_gov_acr_values.split():
        raise ConfigurationError(
            f"LOGIN_GOV_ACR_VALUES must include {PHISHING_RESISTANT_AAL} for the console"
        )
    # Freshness without auth_time rests on the sign-in having re-authenticated (prompt=login):
    # with select_account, Login.gov may reuse a sign-in hours old.
    if shared.login_gov_prompt != "login":
        raise ConfigurationError("LOGIN_GOV_PROMPT must be login for the console")
    return settings


def supervisor_contact() -> str:
    """DESK_SUPERVISOR_CONTACT, read without the other settings: the "not on the staff list"
    page shows it even when a setting is wrong."""
    return os.environ.get("DESK_SUPERVISOR_CONTACT", "").strip() or DEFAULT_SUPERVISOR_CONTACT


def reset_desk_settings() -> None:
    desk_settings.cache_clear()
