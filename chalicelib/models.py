"""DynamoDB tables, as PynamoDB models. infra/template.yaml declares the same tables.

Four tables, named TABLE_PREFIX + accounts | claims | flows | audit:

- accounts  PK nr_number                       the registry record
            GSI by_name (name_prefix, name_key): the support console's name search.
- claims    PK claim = "email#<normalized>"    who holds an address (chalicelib.claims)
                      | "sub#<login.gov sub>"  an identity: the account it is linked to,
                                               and Login.gov's disabled/enabled marks
                      | "purged#<login.gov sub>"  an identity Login.gov purged
                      | "removed#<normalized>"  an address only removed accounts held
                                               all written in the same transaction as
                                               the account change they belong to
            GSI by_login_gov_email (login_gov_email): linked identities by the Login.gov
                                               email they linked with (console search).
- flows     PK flow_id = "<kind>#<id>"         short-lived: sign-in state, sessions,
                                               one-time-code challenges, send counters.
            GSI by_expiry (expiry_bucket, expires_at): cleanup reads only expired items.
            GSI by_subject (subject): the sessions of one Login.gov identity.
            GSI by_account (nr_number): the sessions and codes of one account (console).
- audit     PK nr_number, SK at_event          append-only history per account
            GSI by_export_day (export_day, at_event): changes made here, for the registry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib import clock
from chalicelib.config import META_TIMEOUTS, table_prefix

if TYPE_CHECKING:
    from pynamodb.expressions.condition import Condition

ACCOUNT_STATUSES = ("active", "disabled", "removed")
ROLES = ("medical_examiner", "assistant", "third_party", "administrator")

# One expiry bucket per hour keeps the by_expiry index partitions small and lets cleanup
# ask for "expired in hour H" without a scan.
EXPIRY_BUCKET_FORMAT = "%Y-%m-%dT%H"


def utc_now() -> datetime:
    return clock.utc_now()


def expiry_bucket(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime(EXPIRY_BUCKET_FORMAT)


_pinned_prefix: str | None = None  # use_table_prefix's; None: TABLE_PREFIX, read when used


class _TableNamed(type):
    """A model's Meta: its table_name is the table prefix + its table_suffix, read at each
    use (PynamoDB opens a new table connection when a model's table name changes), so
    importing the models reads no setting."""

    table_suffix: str

    @property
    def table_name(cls) -> str:
        return (_pinned_prefix or table_prefix()) + cls.table_suffix


class _Meta(metaclass=_TableNamed):
    connect_timeout_seconds = META_TIMEOUTS["connect_timeout_seconds"]
    read_timeout_seconds = META_TIMEOUTS["read_timeout_seconds"]
    max_retry_attempts = META_TIMEOUTS["max_retry_attempts"]


# The value of `awaiting_link` on every account not linked (by_awaiting_link's one key).
AWAITING_LINK = "yes"
# campaign_wave of an account no campaign wave has reached yet.
NO_WAVE = -1


class AwaitingLinkIndex(GlobalSecondaryIndex):
    """by_awaiting_link: PK awaiting_link, SK campaign_wave. Sparse: only accounts not linked
    (the link transaction removes `awaiting_link`, an unlink sets it again), so the campaign
    (chalicelib.campaign) reads the never-linked accounts without a scan, and only those whose
    latest campaign wave is older than the wave due (a key condition on campaign_wave)."""

    class Meta:
        index_name = "by_awaiting_link"
        projection = AllProjection()

    awaiting_link = UnicodeAttribute(hash_key=True)
    campaign_wave = NumberAttribute(range_key=True)


class NameIndex(GlobalSecondaryIndex):
    """by_name: PK name_prefix (the first two letters of the normalized last name), SK
    name_key ("<last> <first> <nr_number>", normalized: supportdesk.search_keys). The
    support console's name search, a begins_with on name_key. Projects what a result row
    shows, so a search is one Query."""

    class Meta:
        index_name = "by_name"
        projection = IncludeProjection(
            ["first_name", "last_name", "primary_email", "status", "linked_at"]
        )

    name_prefix = UnicodeAttribute(hash_key=True)
    name_key = UnicodeAttribute(range_key=True)


class Account(Model):
    """A National Registry account. PK: nr_number (10 digits)."""

    class Meta(_Meta):
        table_suffix = "accounts"

    nr_number = UnicodeAttribute(hash_key=True)
    first_name = UnicodeAttribute()
    last_name = UnicodeAttribute()
    role = UnicodeAttribute()
    status = UnicodeAttribute(default="active")
    primary_email = UnicodeAttribute()
    primary_email_normalized = UnicodeAttribute()
    secondary_email = UnicodeAttribute(null=True)
    secondary_email_normalized = UnicodeAttribute(null=True)
    legacy_username = UnicodeAttribute(null=True)
    # Usernames are retired at linking: kept for support look-ups, never for sign-in.
    legacy_username_retired = BooleanAttribute(default=False)
    linked_sub = UnicodeAttribute(null=True)
    linked_at = UTCDateTimeAttribute(null=True)
    # The email the Login.gov account shared when it was linked: shown on the account page so
    # a person knows which Login.gov account holds their record (it may change at Login.gov).
    linked_email = UnicodeAttribute(null=True)
    # Login.gov disabled the linked identity (account-disabled, not yet account-enabled): the
    # same mark as on its `sub#` claim, written in the same transaction. Sign-ins read the
    # claim; every signed-in request reads the account, so a session a racing sign-in left
    # behind is refused at its next use.
    login_gov_disabled = BooleanAttribute(null=True)
    last_reminder_at = UTCDateTimeAttribute(null=True)
    # Who owns each field (docs/design.md, section 3; rules in chalicelib.field_ownership):
    # `imported` is the registry row as last imported (the base of the three-way merge);
    # `changed_here` names the fields this service changed since, with when and by whom.
    imported: MapAttribute[str, Any] = MapAttribute(null=True)
    imported_at = UTCDateTimeAttribute(null=True)
    # The day the registry produced the export this account was last changed from
    # (`import-accounts --exported-on`, YYYY-MM-DD): a row of an older export is not applied.
    exported_on = UnicodeAttribute(null=True)
    changed_here: MapAttribute[str, Any] = MapAttribute(null=True)
    # Support's "disabled" is a hold of its own: the registry's status never lifts it.
    support_hold = BooleanAttribute(null=True)
    # Identities support evicted from this account ("not the owner"): never linked again by
    # any route until support lifts the bar.
    barred_subs = UnicodeSetAttribute(null=True)
    # The migration campaign (chalicelib.campaign). `awaiting_link` (AWAITING_LINK) is there
    # exactly while the account is not linked; `campaign_wave` is the latest wave mailed (-1:
    # none yet), `campaign_waves` every wave mailed, `campaign_invited_at` the first mail.
    # Written by the campaign without the version (bookkeeping: a link in flight must not
    # have to retry for it).
    awaiting_link = UnicodeAttribute(null=True)
    campaign_wave = NumberAttribute(null=True)
    campaign_waves = NumberSetAttribute(null=True)
    campaign_invited_at = UTCDateTimeAttribute(null=True)
    # The console's name search (by_name): written by the registry import with the names,
    # and once for older accounts by `manage.py backfill-search-keys`.
    name_prefix = UnicodeAttribute(null=True)
    name_key = UnicodeAttribute(null=True)
    version = VersionAttribute()

    by_awaiting_link = AwaitingLinkIndex()
    by_name = NameIndex()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def normalized_emails(self) -> list[str]:
        return [e for e in (self.primary_email_normalized, self.secondary_email_normalized) if e]


class LoginGovEmailIndex(GlobalSecondaryIndex):
    """by_login_gov_email: PK login_gov_email (normalized). Sparse: only `sub#` items while
    linked, so the console finds an account by the Login.gov email it was linked with."""

    class Meta:
        index_name = "by_login_gov_email"
        projection = IncludeProjection(["nr_number"])

    login_gov_email = UnicodeAttribute(hash_key=True)


class Claim(Model):
    """Uniqueness markers, all in one table so one transaction can hold them all.

    PK claim =
    - "email#<normalized address>": who holds an address (rules in chalicelib.claims).
      `holders` is every account listing it; `nr_number` is the one account the address
      proves, set only for a single holder of an address that was never shared; `shared`
      says it is, or was, on several accounts (never proof of identity, no recovery code,
      until support clears it); `revision` counts changes (optimistic locking).
    - "sub#<Login.gov sub>": the identity's record. `nr_number` is the account linked to
      it, set only while linked; `disabled_at`/`enabled_at` are the times (iat) of the
      latest account-disabled and account-enabled events from Login.gov: it is disabled
      while the first is the later. The marks belong to the identity, not to the link:
      an event for an identity that is not linked writes them on an item without
      `nr_number`, an unlink removes `nr_number` and keeps them (the item goes only when
      it carries none), and only a purge drops them. An item without `nr_number` exists
      only to carry marks. A link sets `nr_number` on condition that the identity is
      neither linked nor disabled (`linkable`): the database decides a link racing an
      event. The returning-user callback reads this one item. `login_gov_email` is the
      normalized email the identity shared when it linked: set with `nr_number`, removed
      with it (the console's search by Login.gov email, index by_login_gov_email).
    - "purged#<Login.gov sub>": Login.gov purged that identity; it never links again.
    - "removed#<normalized address>": the address was released by the registry's removal of
      the accounts in `holders` and no account holds it now (no `email#` claim): a sign-in
      with it is told the account is no longer active. Written by the import in the
      transaction that releases the address, deleted by any claim of it (claims.add_holder).
    """

    class Meta(_Meta):
        table_suffix = "claims"

    claim = UnicodeAttribute(hash_key=True)
    nr_number = UnicodeAttribute(null=True)
    holders = UnicodeSetAttribute(null=True)
    shared = BooleanAttribute(null=True)
    revision = NumberAttribute(null=True)
    disabled_at = NumberAttribute(null=True)
    enabled_at = NumberAttribute(null=True)
    login_gov_email = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utc_now)

    by_login_gov_email = LoginGovEmailIndex()

    EMAIL_PREFIX, SUB_PREFIX, PURGED_PREFIX = "email#", "sub#", "purged#"
    REMOVED_PREFIX = "removed#"

    @property
    def disabled(self) -> bool:
        """A `sub#` claim whose identity Login.gov disabled and has not enabled since (by
        the events' own times: a late delivery of an older event changes nothing)."""
        return self.disabled_by_times(self.disabled_at, self.enabled_at)

    @property
    def marked(self) -> bool:
        """A `sub#` item carrying a Login.gov mark (either time), which outlives a link."""
        return self.disabled_at is not None or self.enabled_at is not None

    @staticmethod
    def disabled_by_times(disabled_at: float | None, enabled_at: float | None) -> bool:
        """Disabled while the latest account-disabled is later than the latest enabled."""
        return (disabled_at or 0) > (enabled_at or 0)

    @staticmethod
    def linkable() -> Condition:
        """The condition a link writes its `sub#` item with: not linked, and not disabled
        (the same rule as disabled_by_times; an enabled_at absent compares false)."""
        return Claim.nr_number.does_not_exist() & (
            Claim.disabled_at.does_not_exist() | (Claim.disabled_at <= Claim.enabled_at)
        )

    @staticmethod
    def email_key(normalized_email: str) -> str:
        return Claim.EMAIL_PREFIX + normalized_email

    @staticmethod
    def sub_key(sub: str) -> str:
        return Claim.SUB_PREFIX + sub

    @staticmethod
    def purged_key(sub: str) -> str:
        return Claim.PURGED_PREFIX + sub

    @staticmethod
    def removed_key(normalized_email: str) -> str:
        return Claim.REMOVED_PREFIX + normalized_email

    @property
    def address(self) -> str | None:
        """The normalized address an `email#` claim names (None for other claims)."""
        if self.claim.startswith(Claim.EMAIL_PREFIX):
            return self.claim[len(Claim.EMAIL_PREFIX) :]
        return None


class ExpiryIndex(GlobalSecondaryIndex):
    """by_expiry: PK expiry_bucket (hour), SK expires_at. Projects the keys and `kind`."""

    class Meta:
        index_name = "by_expiry"
        # `kind` is the discriminator: without it PynamoDB's typed queries filter out every item.
        projection = IncludeProjection(["kind"])

    expiry_bucket = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute(range_key=True)


class SubjectIndex(GlobalSecondaryIndex):
    """by_subject: PK subject (a Login.gov sub). Sparse: only flows that carry a subject."""

    class Meta:
        index_name = "by_subject"
        projection = IncludeProjection(["kind"])

    subject = UnicodeAttribute(hash_key=True)


class AccountFlowsIndex(GlobalSecondaryIndex):
    """by_account: PK nr_number. Sparse: the sessions and one-time-code challenges that name
    an account (a decoy challenge names none). The console's person page reads them here.
    Projects what that page shows, never a code's hash or a session's CSRF token."""

    class Meta:
        index_name = "by_account"
        projection = IncludeProjection(
            [
                "kind",
                "subject",
                "created_at",
                "expires_at",
                "absolute_expires_at",
                "purpose",
                "target_email",
                "attempts",
            ]
        )

    nr_number = UnicodeAttribute(hash_key=True)


class Flow(Model):
    """A short-lived record. PK: flow_id = "<kind>#<opaque id>". TTL: expires_at."""

    class Meta(_Meta):
        table_suffix = "flows"

    flow_id = UnicodeAttribute(hash_key=True)
    kind = DiscriminatorAttribute()
    expires_at = NumberAttribute()
    expiry_bucket = UnicodeAttribute()
    subject = UnicodeAttribute(null=True)
    created_at = NumberAttribute()

    by_expiry = ExpiryIndex()
    by_subject = SubjectIndex()
    by_account = AccountFlowsIndex()

    def is_expired(self, now: float) -> bool:
        # TTL deletes lazily (up to 48 h late), so expiry is enforced on every read.
        return self.expires_at <= now


class SignInState(Flow, discriminator="signin"):
    """An authorization request in flight. PK: signin#<sha256(state)>.

    code_verifier is the PKCE secret (RFC 7636) whose S256 challenge the authorization
    request carried; the token request sends it. Kept only here, never in the browser.
    """

    nonce = UnicodeAttribute()
    # null: a state written before PKCE, whose request carried no challenge.
    code_verifier = UnicodeAttribute(null=True)
    browser_hash = UnicodeAttribute()
    return_to = UnicodeAttribute()


class Session(Flow, discriminator="session"):
    """A signed-in browser. PK: session#<sha256(cookie token)>; subject = Login.gov sub."""

    nr_number = UnicodeAttribute(null=True)
    absolute_expires_at = NumberAttribute()
    csrf_token = UnicodeAttribute()
    # First sign-ins that found no account keep the verified emails for the recovery page.
    verified_emails = UnicodeAttribute(null=True)
    notice = UnicodeAttribute(null=True)


class Challenge(Flow, discriminator="challenge"):
    """A one-time code in flight. PK: challenge#<sha256(purpose:session hash)>, so one live
    challenge per purpose and browser session (a new send replaces it); subject = Login.gov sub.

    The code is never stored: code_hash = HMAC-SHA256 over (code_salt, flow_id, code) under a
    server key (see chalicelib.onetime_codes). nr_number is empty for a decoy challenge.
    """

    purpose = UnicodeAttribute()
    session_hash = UnicodeAttribute()
    nr_number = UnicodeAttribute(null=True)
    target_email = UnicodeAttribute()
    target_email_normalized = UnicodeAttribute()
    code_hash = UnicodeAttribute()
    code_salt = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    details: MapAttribute[str, Any] = MapAttribute(null=True)


class WindowCounter(Flow, discriminator="sendcount"):
    """Events counted for one key (codes sent to an identity or an address, wrong codes) in
    one fixed window (chalicelib.counters), or a mark (a paused recovery). The stored
    discriminator and key prefix stay `sendcount` (from when it counted sends only): items
    already in the table must still read as this class.

    PK: sendcount#<kind>-<keyed hash or number>#<window number>; subject = Login.gov sub
    on identity send counters. Written only by conditional ADD, or a mark's SET.
    stamps: "<ms>-<random>" per event counted, so a later window can tell which of them are
    still inside its sliding window.
    """

    sends = NumberAttribute(default=0)
    stamps = UnicodeSetAttribute(null=True)


class SentMail(Flow, discriminator="mailsent"):
    """An outbox message being sent or sent. PK: mailsent#<SQS message id>. SQS delivers a
    message at least once; a worker claims it before SES (state "sending", lapsing) and marks
    it "sent" after; another delivery skips it (chalicelib.outbox). No state: sent, recorded
    before claims."""

    state = UnicodeAttribute(null=True)


class SeenSecurityEvent(Flow, discriminator="setjti"):
    """A Login.gov security event token already received. PK: setjti#<jti>."""


class ExportIndex(GlobalSecondaryIndex):
    """by_export_day: PK export_day ("YYYY-MM-DD"), SK at_event. Sparse: only the changes
    made here that the registry should take back (manage.py export-changes)."""

    class Meta:
        index_name = "by_export_day"
        projection = AllProjection()

    export_day = UnicodeAttribute(hash_key=True)
    at_event = UnicodeAttribute(range_key=True)


class AuditEvent(Model):
    """Append-only history. PK: nr_number, SK: at_event = "<ISO time>#<event>#<random>"."""

    class Meta(_Meta):
        table_suffix = "audit"

    nr_number = UnicodeAttribute(hash_key=True)
    at_event = UnicodeAttribute(range_key=True)
    event = UnicodeAttribute()
    actor = UnicodeAttribute()
    detail: MapAttribute[str, Any] = MapAttribute(null=True)
    export_day = UnicodeAttribute(null=True)

    by_export_day = ExportIndex()


class MailState(Model):
    """What SES told us of one address (chalicelib.mail_feedback), in the claims table beside
    the address's claim but never on it (claims are rewritten by other writers).
    PK: claim = "mailstate#<normalized address>"."""

    class Meta(_Meta):
        table_suffix = "claims"

    claim = UnicodeAttribute(hash_key=True)
    # Set for good by a hard bounce, or by SOFT_BOUNCES_UNDELIVERABLE soft ones in 30 days.
    undeliverable_at = NumberAttribute(null=True)
    undeliverable_reason = UnicodeAttribute(null=True)
    complained_at = NumberAttribute(null=True)
    # Epoch seconds of recent soft (Transient) bounces.
    soft_bounces = UnicodeSetAttribute(null=True)
    updated_at = NumberAttribute(null=True)

    PREFIX = "mailstate#"

    @staticmethod
    def key(normalized_email: str) -> str:
        return MailState.PREFIX + normalized_email

    @property
    def address(self) -> str:
        return self.claim[len(MailState.PREFIX) :]

    @property
    def undeliverable(self) -> bool:
        return self.undeliverable_at is not None

    @property
    def complained(self) -> bool:
        return self.complained_at is not None


class CampaignState(Flow, discriminator="campaign"):
    """The campaign's own record: paused (manage.py campaign pause|resume, no deploy) and the
    last run's summary. PK: campaign#state; expires_at far ahead (never by TTL in practice)."""

    paused = BooleanAttribute(null=True)
    paused_by = UnicodeAttribute(null=True)
    last_run = UnicodeAttribute(null=True)  # JSON of campaign.RunSummary
    sent_per_wave: MapAttribute = MapAttribute(null=True)  # {"<wave>": mails queued}


ALL_MODELS = (Account, Claim, Flow, AuditEvent)
TABLE_SUFFIXES = {Account: "accounts", Claim: "claims", Flow: "flows", AuditEvent: "audit"}


def use_table_prefix(prefix: str | None) -> None:
    """Point every model at prefix + suffix (a test's or a benchmark's own tables); None:
    TABLE_PREFIX, as set when the tables are used."""
    global _pinned_prefix
    _pinned_prefix = prefix
