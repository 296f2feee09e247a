"""Settings read from environment variables (docs/operations.md, "Configuration").

Every limit the service enforces is a named setting here, with a default that is safe for
production. Settings are read once per process and cached; tests call `reset_settings()`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import date

DEFAULT_ACR_VALUES = "urn:acr.login.gov:auth-only"
# Login.gov asks for prompt=select_account; another provider may want `login` or `consent`.
DEFAULT_PROMPT = "select_account"
DEFAULT_TABLE_PREFIX = "nrcme-local-"
# Placeholders, like the example.gov domains in .chalice/config.json: each deployed stage
# sets its real support desk (docs/operations.md, step 0). 555-01xx numbers are never assigned.
DEFAULT_SUPPORT_PHONE = "1-800-555-0100"
DEFAULT_SUPPORT_EMAIL = "support@nrcme.example.gov"
DEFAULT_SUPPORT_HOURS = "Monday to Friday, 8 a.m. to 8 p.m. Eastern Time"
DEFAULT_SUPPORT_URL = "https://nrcme.example.gov/support"


def table_prefix() -> str:
    """TABLE_PREFIX, read without the other settings (models need it at import)."""
    return os.environ.get("TABLE_PREFIX") or DEFAULT_TABLE_PREFIX


def outbox_queue_name() -> str:
    """OUTBOX_QUEUE_NAME (default TABLE_PREFIX + "outbox", as infra/template.yaml names it),
    read without the other settings: the mail worker's decorator needs it at import."""
    return os.environ.get("OUTBOX_QUEUE_NAME") or table_prefix() + "outbox"


def mail_feedback_queue_name() -> str:
    """MAIL_FEEDBACK_QUEUE_NAME (default TABLE_PREFIX + "mail-feedback", as
    infra/template.yaml names it): SES's bounces and complaints, read at import like the
    outbox's name."""
    return os.environ.get("MAIL_FEEDBACK_QUEUE_NAME") or table_prefix() + "mail-feedback"


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed: a deploy mistake, not a user error."""


@dataclass(frozen=True)
class SupportContact:
    """The National Registry support desk, as every page footer, refusal page and mail names
    it (SUPPORT_PHONE, SUPPORT_EMAIL, SUPPORT_HOURS, SUPPORT_URL)."""

    phone: str
    email: str
    hours: str
    url: str

    @property
    def phone_uri(self) -> str:
        """tel: link for the phone number (digits and a leading +; a US number gets +1)."""
        digits = "".join(ch for ch in self.phone if ch.isdigit())
        if self.phone.strip().startswith("+"):
            return "tel:+" + digits
        if len(digits) == 10:
            digits = "1" + digits
        return "tel:+" + digits


@functools.lru_cache(maxsize=1)
def support_contact() -> SupportContact:
    """Read without the other settings: the server-error page shows it even when a required
    setting is missing."""

    def value(name: str, default: str) -> str:
        return os.environ.get(name, "").strip() or default

    return SupportContact(
        phone=value("SUPPORT_PHONE", DEFAULT_SUPPORT_PHONE),
        email=value("SUPPORT_EMAIL", DEFAULT_SUPPORT_EMAIL),
        hours=value("SUPPORT_HOURS", DEFAULT_SUPPORT_HOURS),
        url=value("SUPPORT_URL", DEFAULT_SUPPORT_URL),
    )


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    app_base_url: str
    login_gov_issuer: str
    login_gov_client_id: str
    login_gov_private_key: str | None
    login_gov_private_key_parameter: str | None
    login_gov_acr_values: str
    table_prefix: str
    hmac_root_key: str | None
    hmac_root_key_parameter: str | None
    mail_sender: str
    login_gov_prompt: str = DEFAULT_PROMPT

    # Lifetimes (seconds)
    signin_state_ttl: int = 600
    session_idle_ttl: int = 30 * 60
    session_absolute_ttl: int = 12 * 3600
    challenge_ttl: int = 600
    # Login.gov's iat = nbf = now; allow for clock skew between us and them.
    token_leeway: int = 10
    # Discovery and JWKS caching.
    discovery_ttl: int = 3600
    jwks_ttl: int = 3600
    jwks_refetch_cooldown: int = 60
    # Outbound HTTP to Login.gov.
    http_connect_timeout: float = 3.0
    http_read_timeout: float = 6.0
    # One-time codes.
    code_max_attempts: int = 5
    code_sends_per_hour: int = 5  # per Login.gov identity
    code_sends_per_identity_address_per_hour: int = 3  # per identity and target address
    # Per target address, all identities together: above the per-(identity, address) limit,
    # so one identity cannot use up an owner's allowance (4 identities needed to do it).
    code_sends_per_address_per_hour: int = 10
    # Wrong codes per 24 hours (sliding): per Login.gov identity (both purposes), and per
    # registry account for recovery (then its recovery pauses for 24 hours, owner told).
    # Threat: one identity pausing anyone's recovery every day. An identity's wrong codes
    # for one account are at most its own day's, so an account cap 3x the identity cap
    # needs three identities to pause an account; get_settings refuses a cap one could fill.
    code_failed_guesses_per_identity_per_day: int = 10
    recovery_failed_guesses_per_account_per_day: int = 30
    # Mail (SES): fail fast, so a sick SES cannot hold a request near the Lambda timeout.
    mail_connect_timeout: float = 2.0
    mail_read_timeout: float = 4.0
    mail_max_attempts: int = 2
    # The outbox (SQS): requests only enqueue, so its calls must be quick to give up.
    outbox_queue_name: str = "nrcme-local-outbox"
    outbox_connect_timeout: float = 1.0
    outbox_read_timeout: float = 2.0
    outbox_max_attempts: int = 2
    # Email changes without a code (remove the secondary, swap) per account per hour: each
    # mails a notice, so unlimited ones would flood the account's mailboxes.
    email_changes_without_code_per_hour: int = 3
    # Every email change (add, replace, remove, swap) needs a Login.gov sign-in this recent:
    # each address proves who holds the account (automatic linking, recovery codes), so a
    # session left open, or stolen, must not move any of them.
    email_change_recent_signin_seconds: int = 15 * 60
    # Form posts: larger bodies are refused before parsing.
    form_max_bytes: int = 4096
    # Reminders about institutional primary emails.
    reminder_interval_days: int = 30
    cleanup_batch_size: int = 200
    # The migration campaign (chalicelib.campaign): no deadline, no campaign.
    campaign_deadline: date | None = None
    campaign_reminder_days: tuple[int, ...] = (60, 30, 14, 7, 1)
    # SES's daily quota is shared with codes people wait for: the campaign keeps under it.
    campaign_max_sends_per_run: int = 2000
    # SES configuration set whose event destination reports bounces and complaints.
    ses_configuration_set: str | None = None

    @property
    def redirect_uri(self) -> str:
        return self.app_base_url + "/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.app_base_url + "/signed-out"

    @property
    def security_events_url(self) -> str:
        """The push URL registered at Login.gov: Login.gov addresses each security event
        token to it (`aud`)."""
        return self.app_base_url + "/api/security-events"

    @property
    def login_gov_account_url(self) -> str:
        """Where a person changes the emails of their Login.gov account (production:
        https://secure.login.gov/account)."""
        return self.login_gov_issuer.rstrip("/") + "/account"

    @property
    def secure_cookies(self) -> bool:
        # Browsers drop Secure cookies on plain http, which only the local stage uses.
        return self.app_base_url.startswith("https://")

    def table_name(self, suffix: str) -> str:
        return self.table_prefix + suffix


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set")
    return value


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return _checked(_read_settings())


def _checked(settings: Settings) -> Settings:
    """Refuse settings that undo a security property instead of running without it."""
    if (
        settings.recovery_failed_guesses_per_account_per_day
        <= settings.code_failed_guesses_per_identity_per_day
    ):
        # One identity's day of wrong codes would pause an account's recovery.
        raise ConfigurationError(
            "RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY must be greater than "
            "CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY (3 times it is the default)"
        )
    return settings


def _read_settings() -> Settings:
    base_url = _required("APP_BASE_URL").rstrip("/")
    return Settings(
        app_base_url=base_url,
        login_gov_issuer=_required("LOGIN_GOV_ISSUER"),
        login_gov_client_id=_required("LOGIN_GOV_CLIENT_ID"),
        login_gov_private_key=os.environ.get("LOGIN_GOV_PRIVATE_KEY") or None,
        login_gov_private_key_parameter=os.environ.get("LOGIN_GOV_PRIVATE_KEY_PARAMETER") or None,
        login_gov_acr_values=os.environ.get("LOGIN_GOV_ACR_VALUES") or DEFAULT_ACR_VALUES,
        table_prefix=table_prefix(),
        hmac_root_key=os.environ.get("HMAC_ROOT_KEY") or None,
        hmac_root_key_parameter=os.environ.get("HMAC_ROOT_KEY_PARAMETER") or None,
        mail_sender=os.environ.get("MAIL_SENDER", "no-reply@nrcme.example.gov"),
        login_gov_prompt=os.environ.get("LOGIN_GOV_PROMPT", "").strip() or DEFAULT_PROMPT,
        signin_state_ttl=_int("SIGNIN_STATE_TTL_SECONDS", 600),
        session_idle_ttl=_int("SESSION_IDLE_TTL_SECONDS", 30 * 60),
        session_absolute_ttl=_int("SESSION_ABSOLUTE_TTL_SECONDS", 12 * 3600),
        challenge_ttl=_int("CODE_TTL_SECONDS", 600),
        token_leeway=_int("TOKEN_LEEWAY_SECONDS", 10),
        discovery_ttl=_int("DISCOVERY_TTL_SECONDS", 3600),
        jwks_ttl=_int("JWKS_TTL_SECONDS", 3600),
        jwks_refetch_cooldown=_int("JWKS_REFETCH_COOLDOWN_SECONDS", 60),
        http_connect_timeout=float(_int("LOGIN_GOV_CONNECT_TIMEOUT_MS", 3000)) / 1000,
        http_read_timeout=float(_int("LOGIN_GOV_READ_TIMEOUT_MS", 6000)) / 1000,
        code_max_attempts=_int("CODE_MAX_ATTEMPTS", 5),
        code_sends_per_hour=_int("CODE_SENDS_PER_HOUR", 5),
        code_sends_per_identity_address_per_hour=_int(
            "CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR", 3
        ),
        code_sends_per_address_per_hour=_int("CODE_SENDS_PER_ADDRESS_PER_HOUR", 10),
        code_failed_guesses_per_identity_per_day=_int(
            "CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY", 10
        ),
        recovery_failed_guesses_per_account_per_day=_int(
            "RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY", 30
        ),
        mail_connect_timeout=float(_int("MAIL_CONNECT_TIMEOUT_MS", 2000)) / 1000,
        mail_read_timeout=float(_int("MAIL_READ_TIMEOUT_MS", 4000)) / 1000,
        mail_max_attempts=_int("MAIL_MAX_ATTEMPTS", 2),
        outbox_queue_name=outbox_queue_name(),
        outbox_connect_timeout=float(_int("OUTBOX_CONNECT_TIMEOUT_MS", 1000)) / 1000,
        outbox_read_timeout=float(_int("OUTBOX_READ_TIMEOUT_MS", 2000)) / 1000,
        outbox_max_attempts=_int("OUTBOX_MAX_ATTEMPTS", 2),
        email_changes_without_code_per_hour=_int("EMAIL_CHANGES_WITHOUT_CODE_PER_HOUR", 3),
        # The old name (when it covered only the primary) still works; the new one wins.
        email_change_recent_signin_seconds=_int(
            "EMAIL_CHANGE_RECENT_SIGNIN_SECONDS",
            _int("PRIMARY_CHANGE_RECENT_SIGNIN_SECONDS", 15 * 60),
        ),
        form_max_bytes=_int("FORM_MAX_BYTES", 4096),
        reminder_interval_days=_int("REMINDER_INTERVAL_DAYS", 30),
        cleanup_batch_size=_int("CLEANUP_BATCH_SIZE", 200),
        campaign_deadline=_date("CAMPAIGN_DEADLINE"),
        campaign_reminder_days=_days("CAMPAIGN_REMINDER_DAYS", (60, 30, 14, 7, 1)),
        campaign_max_sends_per_run=_int("CAMPAIGN_MAX_SENDS_PER_RUN", 2000),
        ses_configuration_set=os.environ.get("SES_CONFIGURATION_SET", "").strip() or None,
    )


def _date(name: str) -> date | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a date YYYY-MM-DD, got {raw!r}") from exc


def _days(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated whole days, returned largest first (the order of the waves)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        days = {int(part) for part in raw.split(",") if part.strip()}
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be whole days like 60,30,7, got {raw!r}") from exc
    if any(day < 0 for day in days):
        raise ConfigurationError(f"{name} must not name days after the deadline, got {raw!r}")
    return tuple(sorted(days, reverse=True))


def reset_settings() -> None:
    get_settings.cache_clear()
    support_contact.cache_clear()
