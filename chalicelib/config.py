"""Settings read from environment variables (docs/operations.md, "Configuration").

Every limit the service enforces is a named setting here, with a default that is safe for
production. Settings are read once per process and cached; tests call `reset_settings()`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import date

REQUIRED = object()  # a setting without a default: unset, the settings are refused


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default (REQUIRED, None for "unset", a whole number or
    a text) and what it means. docs/operations.md's table says the same, row for row
    (tests/test_settings.py compares them)."""

    variable: str
    default: object
    meaning: str
    shown: str | None = None  # how the docs show a default that is not a plain value

    @property
    def documented_default(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.default is REQUIRED:
            return "required"
        if self.default is None:
            return ""
        if isinstance(self.default, int):
            return str(self.default)
        return f"`{self.default}`"


# Every setting, its default and its meaning: written here once. The code reads defaults
# only from this table.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "APP_BASE_URL",
        REQUIRED,
        "public base URL; redirect URI is `APP_BASE_URL/auth/callback`, post-logout "
        "`APP_BASE_URL/signed-out`, security-event push URL `APP_BASE_URL/api/security-events`",
    ),
    Setting(
        "LOGIN_GOV_ISSUER",
        REQUIRED,
        "issuer, with the trailing slash (discovery is read from it)",
    ),
    Setting("LOGIN_GOV_CLIENT_ID", REQUIRED, "the registered client id"),
    Setting("LOGIN_GOV_PRIVATE_KEY", None, "PEM for `private_key_jwt` (local/test only)"),
    Setting(
        "LOGIN_GOV_PRIVATE_KEY_PARAMETER",
        None,
        "SSM SecureString name holding that PEM (AWS stages)",
    ),
    Setting(
        "LOGIN_GOV_ACR_VALUES",
        "urn:acr.login.gov:auth-only",
        "requested assurance (space-separated); the ID token's `acr` must be one of these exactly",
    ),
    Setting(
        "LOGIN_GOV_PROMPT",
        "select_account",
        "the authorization request's `prompt` (Login.gov wants `select_account`; another "
        "provider may want `login` or `consent`)",
    ),
    Setting(
        "TABLE_PREFIX",
        "nrcme-local-",
        "tables are prefix + `accounts`, `claims`, `flows`, `audit`",
    ),
    Setting("MAIL_SENDER", "no-reply@nrcme.example.gov", "verified SES sender"),
    Setting(
        "HMAC_ROOT_KEY",
        None,
        "root secret of every keyed hash, each use with its own derived key: the stand-ins "
        "for emails and subjects in logs, one-time-code digests, send counters; this or the "
        "next is required in Lambda",
        shown="random per process (local/test only)",
    ),
    Setting(
        "HMAC_ROOT_KEY_PARAMETER",
        None,
        "SSM SecureString name holding that secret (AWS stages)",
    ),
    Setting("SIGNIN_STATE_TTL_SECONDS", 600, "how long a sign-in may take"),
    Setting("SESSION_IDLE_TTL_SECONDS", 30 * 60, "a session ends after this long unused"),
    Setting("SESSION_ABSOLUTE_TTL_SECONDS", 12 * 3600, "a session ends this long after sign-in"),
    Setting("TOKEN_LEEWAY_SECONDS", 10, "clock skew allowed on ID token times"),
    Setting("DISCOVERY_TTL_SECONDS", 3600, "how long Login.gov's discovery document is kept"),
    Setting("JWKS_TTL_SECONDS", 3600, "how long Login.gov's signing keys are kept"),
    Setting(
        "JWKS_REFETCH_COOLDOWN_SECONDS",
        60,
        "at most one refetch per this on an unknown `kid`",
    ),
    Setting("LOGIN_GOV_CONNECT_TIMEOUT_MS", 3000, "outbound connect timeout to Login.gov"),
    Setting("LOGIN_GOV_READ_TIMEOUT_MS", 6000, "outbound read timeout to Login.gov"),
    Setting("CODE_TTL_SECONDS", 600, "one-time code lifetime"),
    Setting("CODE_MAX_ATTEMPTS", 5, "wrong tries before a one-time code dies"),
    Setting("CODE_SENDS_PER_HOUR", 5, "codes sent per Login.gov identity per hour"),
    Setting(
        "CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR",
        3,
        "codes one identity may send to one address per hour",
    ),
    Setting(
        "CODE_SENDS_PER_ADDRESS_PER_HOUR",
        10,
        "codes sent to one address per hour by everyone together (keep it above the previous line)",
    ),
    Setting(
        "CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY",
        10,
        "wrong codes one Login.gov identity may enter in any 24 hours (recovery and email change)",
    ),
    Setting(
        "RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY",
        30,
        "wrong recovery codes per registry account in any 24 hours; then its recovery "
        "pauses for 24 hours and its addresses are told. Must be greater than the line "
        "above (else the settings are refused), so one identity can never pause an "
        "account; 3 times it needs 3 identities",
    ),
    Setting(
        "EMAIL_CHANGES_WITHOUT_CODE_PER_HOUR",
        3,
        "removes and swaps (no code, each mails a notice) per account per hour",
    ),
    Setting(
        "EMAIL_CHANGE_RECENT_SIGNIN_SECONDS",
        15 * 60,
        "every email change needs a Login.gov sign-in this recent (why: "
        '[architecture.md](architecture.md), "Email changes"). The old name '
        "`PRIMARY_CHANGE_RECENT_SIGNIN_SECONDS` still works (the new name wins)",
    ),
    Setting("MAIL_CONNECT_TIMEOUT_MS", 2000, "SES connect timeout (the outbox worker's)"),
    Setting("MAIL_READ_TIMEOUT_MS", 4000, "SES read timeout"),
    Setting("MAIL_MAX_ATTEMPTS", 2, "SES tries per mail"),
    Setting(
        "OUTBOX_QUEUE_NAME",
        None,
        "the outbox queue (infra/template.yaml names it `TABLE_PREFIX` + `outbox`); the mail "
        "worker's trigger is read from it when Chalice loads the app",
        shown="`TABLE_PREFIX` + `outbox`",
    ),
    Setting("OUTBOX_CONNECT_TIMEOUT_MS", 1000, "queuing a mail from a request: connect timeout"),
    Setting("OUTBOX_READ_TIMEOUT_MS", 2000, "queuing a mail from a request: read timeout"),
    Setting("OUTBOX_MAX_ATTEMPTS", 2, "queuing a mail from a request: tries"),
    Setting("FORM_MAX_BYTES", 4096, "largest form body accepted"),
    Setting("REMINDER_INTERVAL_DAYS", 30, ".gov/.mil/.edu reminder spacing"),
    Setting("CLEANUP_BATCH_SIZE", 200, "expired flow items deleted per cleanup run"),
    Setting(
        "CAMPAIGN_DEADLINE",
        None,
        "the day (YYYY-MM-DD) every account must be linked by: the migration campaign mails "
        'until then ("The migration campaign" below). Empty: no campaign',
    ),
    Setting(
        "CAMPAIGN_REMINDER_DAYS",
        "60,30,14,7,1",
        "days before the deadline a reminder goes out (wave 1, 2, ...; the invitation, wave "
        "0, goes from the first run)",
    ),
    Setting(
        "CAMPAIGN_MAX_SENDS_PER_RUN",
        2000,
        "campaign mails queued per daily run at most (keep well under the SES daily quota: "
        "codes share it); the rest go in the next runs",
    ),
    Setting(
        "SES_CONFIGURATION_SET",
        None,
        "the SES configuration set every send names, whose event destination reports bounces "
        "and complaints (infra/template.yaml `MailConfigurationSet`, `TABLE_PREFIX` + `mail`). "
        "Empty: sends name none (local stage, tests)",
    ),
    Setting(
        "MAIL_FEEDBACK_QUEUE_NAME",
        None,
        "the queue SES's bounces and complaints arrive on (`handle_mail_feedback`'s trigger, "
        "read when Chalice loads the app)",
        shown="`TABLE_PREFIX` + `mail-feedback`",
    ),
    Setting(
        "SUPPORT_PHONE",
        "1-800-555-0100",
        "the support desk's phone, on every page, refusal page and mail (the default is a "
        "placeholder: 555-01xx numbers are never assigned)",
    ),
    Setting(
        "SUPPORT_EMAIL",
        "support@nrcme.example.gov",
        "the support desk's email address (the default is a placeholder)",
    ),
    Setting(
        "SUPPORT_HOURS",
        "Monday to Friday, 8 a.m. to 8 p.m. Eastern Time",
        "when the desk answers, in words",
    ),
    Setting(
        "SUPPORT_URL",
        "https://nrcme.example.gov/support",
        "the support web page (the default is a placeholder)",
    ),
)
_BY_VARIABLE = {setting.variable: setting for setting in SETTINGS}
# Secrets are taken as given; every other text loses surrounding white space.
_SECRETS = frozenset({"LOGIN_GOV_PRIVATE_KEY", "HMAC_ROOT_KEY"})


def _raw(variable: str) -> str | None:
    """The variable's value as set (None: unset or empty)."""
    value = os.environ.get(variable, "")
    if variable not in _SECRETS:
        value = value.strip()
    return value or None


def default(variable: str) -> object:
    """The default SETTINGS gives `variable` (REQUIRED, None, a whole number or a text)."""
    return _BY_VARIABLE[variable].default


def _text(variable: str) -> str:
    value = _raw(variable)
    if value is not None:
        return value
    given = default(variable)
    if given is REQUIRED:
        raise ConfigurationError(f"{variable} is not set")
    if not isinstance(given, str):
        raise TypeError(f"{variable} has no text default")  # a mistake in SETTINGS
    return given


def _optional_text(variable: str) -> str | None:
    return _raw(variable)


def _int(variable: str, raw: str | None = None) -> int:
    raw = _raw(variable) if raw is None else raw
    if raw is None:
        given = default(variable)
        if not isinstance(given, int):
            raise TypeError(f"{variable} has no whole-number default")  # a mistake in SETTINGS
        return given
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{variable} must be a whole number, got {raw!r}") from exc


def _seconds_from_ms(variable: str) -> float:
    return _int(variable) / 1000


def table_prefix() -> str:
    """TABLE_PREFIX, read without the other settings (models need it at import)."""
    return _text("TABLE_PREFIX")


def outbox_queue_name() -> str:
    """OUTBOX_QUEUE_NAME (default TABLE_PREFIX + "outbox", as infra/template.yaml names it),
    read without the other settings: the mail worker's decorator needs it at import."""
    return _optional_text("OUTBOX_QUEUE_NAME") or table_prefix() + "outbox"


def mail_feedback_queue_name() -> str:
    """MAIL_FEEDBACK_QUEUE_NAME (default TABLE_PREFIX + "mail-feedback", as
    infra/template.yaml names it): SES's bounces and complaints, read at import like the
    outbox's name."""
    return _optional_text("MAIL_FEEDBACK_QUEUE_NAME") or table_prefix() + "mail-feedback"


# DynamoDB calls (every model, and transactions: chalicelib.clients): fail fast towards the
# user instead of holding a Lambda for 30 s on a sick endpoint. Fixed, not settings.
META_TIMEOUTS = {"connect_timeout_seconds": 2, "read_timeout_seconds": 5, "max_retry_attempts": 2}


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

    return SupportContact(
        phone=_text("SUPPORT_PHONE"),
        email=_text("SUPPORT_EMAIL"),
        hours=_text("SUPPORT_HOURS"),
        url=_text("SUPPORT_URL"),
    )


@dataclass(frozen=True)
class Settings:
    """The settings, read once (get_settings). Defaults and meanings: SETTINGS."""

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
    login_gov_prompt: str

    # Lifetimes (seconds)
    signin_state_ttl: int
    session_idle_ttl: int
    session_absolute_ttl: int
    challenge_ttl: int
    # Login.gov's iat = nbf = now; allow for clock skew between us and them.
    token_leeway: int
    # Discovery and JWKS caching.
    discovery_ttl: int
    jwks_ttl: int
    jwks_refetch_cooldown: int
    # Outbound HTTP to Login.gov.
    http_connect_timeout: float
    http_read_timeout: float
    # One-time codes.
    code_max_attempts: int
    code_sends_per_hour: int  # per Login.gov identity
    code_sends_per_identity_address_per_hour: int  # per identity and target address
    # Per target address, all identities together: above the per-(identity, address) limit,
    # so one identity cannot use up an owner's allowance (4 identities needed to do it).
    code_sends_per_address_per_hour: int
    # Wrong codes per 24 hours (sliding): per Login.gov identity (both purposes), and per
    # registry account for recovery (then its recovery pauses for 24 hours, owner told).
    # Threat: one identity pausing anyone's recovery every day. An identity's wrong codes
    # for one account are at most its own day's, so an account cap 3x the identity cap
    # needs three identities to pause an account; get_settings refuses a cap one could fill.
    code_failed_guesses_per_identity_per_day: int
    recovery_failed_guesses_per_account_per_day: int
    # Mail (SES): fail fast, so a sick SES cannot hold a request near the Lambda timeout.
    mail_connect_timeout: float
    mail_read_timeout: float
    mail_max_attempts: int
    # The outbox (SQS): requests only enqueue, so its calls must be quick to give up.
    outbox_queue_name: str
    outbox_connect_timeout: float
    outbox_read_timeout: float
    outbox_max_attempts: int
    # Email changes without a code (remove the secondary, swap) per account per hour: each
    # mails a notice, so unlimited ones would flood the account's mailboxes.
    email_changes_without_code_per_hour: int
    # Every email change (add, replace, remove, swap) needs a Login.gov sign-in this recent:
    # each address proves who holds the account (automatic linking, recovery codes), so a
    # session left open, or stolen, must not move any of them.
    email_change_recent_signin_seconds: int
    # Form posts: larger bodies are refused before parsing.
    form_max_bytes: int
    # Reminders about institutional primary emails.
    reminder_interval_days: int
    cleanup_batch_size: int
    # The migration campaign (chalicelib.campaign): no deadline, no campaign.
    campaign_deadline: date | None
    campaign_reminder_days: tuple[int, ...]
    # SES's daily quota is shared with codes people wait for: the campaign keeps under it.
    campaign_max_sends_per_run: int
    # SES configuration set whose event destination reports bounces and complaints.
    ses_configuration_set: str | None

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
    # The old name (when it covered only the primary) still works; the new one wins.
    recent_signin = _raw("EMAIL_CHANGE_RECENT_SIGNIN_SECONDS") or _raw(
        "PRIMARY_CHANGE_RECENT_SIGNIN_SECONDS"
    )
    return Settings(
        app_base_url=_text("APP_BASE_URL").rstrip("/"),
        login_gov_issuer=_text("LOGIN_GOV_ISSUER"),
        login_gov_client_id=_text("LOGIN_GOV_CLIENT_ID"),
        login_gov_private_key=_optional_text("LOGIN_GOV_PRIVATE_KEY"),
        login_gov_private_key_parameter=_optional_text("LOGIN_GOV_PRIVATE_KEY_PARAMETER"),
        login_gov_acr_values=_text("LOGIN_GOV_ACR_VALUES"),
        table_prefix=table_prefix(),
        hmac_root_key=_optional_text("HMAC_ROOT_KEY"),
        hmac_root_key_parameter=_optional_text("HMAC_ROOT_KEY_PARAMETER"),
        mail_sender=_text("MAIL_SENDER"),
        login_gov_prompt=_text("LOGIN_GOV_PROMPT"),
        signin_state_ttl=_int("SIGNIN_STATE_TTL_SECONDS"),
        session_idle_ttl=_int("SESSION_IDLE_TTL_SECONDS"),
        session_absolute_ttl=_int("SESSION_ABSOLUTE_TTL_SECONDS"),
        challenge_ttl=_int("CODE_TTL_SECONDS"),
        token_leeway=_int("TOKEN_LEEWAY_SECONDS"),
        discovery_ttl=_int("DISCOVERY_TTL_SECONDS"),
        jwks_ttl=_int("JWKS_TTL_SECONDS"),
        jwks_refetch_cooldown=_int("JWKS_REFETCH_COOLDOWN_SECONDS"),
        http_connect_timeout=_seconds_from_ms("LOGIN_GOV_CONNECT_TIMEOUT_MS"),
        http_read_timeout=_seconds_from_ms("LOGIN_GOV_READ_TIMEOUT_MS"),
        code_max_attempts=_int("CODE_MAX_ATTEMPTS"),
        code_sends_per_hour=_int("CODE_SENDS_PER_HOUR"),
        code_sends_per_identity_address_per_hour=_int("CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR"),
        code_sends_per_address_per_hour=_int("CODE_SENDS_PER_ADDRESS_PER_HOUR"),
        code_failed_guesses_per_identity_per_day=_int("CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY"),
        recovery_failed_guesses_per_account_per_day=_int(
            "RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY"
        ),
        mail_connect_timeout=_seconds_from_ms("MAIL_CONNECT_TIMEOUT_MS"),
        mail_read_timeout=_seconds_from_ms("MAIL_READ_TIMEOUT_MS"),
        mail_max_attempts=_int("MAIL_MAX_ATTEMPTS"),
        outbox_queue_name=outbox_queue_name(),
        outbox_connect_timeout=_seconds_from_ms("OUTBOX_CONNECT_TIMEOUT_MS"),
        outbox_read_timeout=_seconds_from_ms("OUTBOX_READ_TIMEOUT_MS"),
        outbox_max_attempts=_int("OUTBOX_MAX_ATTEMPTS"),
        email_changes_without_code_per_hour=_int("EMAIL_CHANGES_WITHOUT_CODE_PER_HOUR"),
        email_change_recent_signin_seconds=_int(
            "EMAIL_CHANGE_RECENT_SIGNIN_SECONDS", recent_signin
        ),
        form_max_bytes=_int("FORM_MAX_BYTES"),
        reminder_interval_days=_int("REMINDER_INTERVAL_DAYS"),
        cleanup_batch_size=_int("CLEANUP_BATCH_SIZE"),
        campaign_deadline=_date("CAMPAIGN_DEADLINE"),
        campaign_reminder_days=_days("CAMPAIGN_REMINDER_DAYS"),
        campaign_max_sends_per_run=_int("CAMPAIGN_MAX_SENDS_PER_RUN"),
        ses_configuration_set=_optional_text("SES_CONFIGURATION_SET"),
    )


def _date(variable: str) -> date | None:
    raw = _raw(variable)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{variable} must be a date YYYY-MM-DD, got {raw!r}") from exc


def _days(variable: str) -> tuple[int, ...]:
    """Comma-separated whole days, returned largest first (the order of the waves)."""
    raw = _raw(variable)
    text = raw if raw is not None else str(default(variable))
    try:
        days = {int(part) for part in text.split(",") if part.strip()}
    except ValueError as exc:
        raise ConfigurationError(
            f"{variable} must be whole days like 60,30,7, got {raw!r}"
        ) from exc
    if any(day < 0 for day in days):
        raise ConfigurationError(f"{variable} must not name days after the deadline, got {raw!r}")
    return tuple(sorted(days, reverse=True))


def reset_settings() -> None:
    get_settings.cache_clear()
    support_contact.cache_clear()
