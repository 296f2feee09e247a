"""The desk table, TABLE_PREFIX + "desk": the support console's own items, one PynamoDB
model per kind. infra/template.yaml declares the same table (DeskTable).

PK pk, SK sk (and `kind`, the discriminator):

- pk "staff",   sk <Login.gov sub>           StaffMember: email, role, added_by, added_at
- pk "pending", sk <normalized email>        PendingStaff: added by email (manage.py staff
                                             add, or a supervisor) before that person ever
                                             signed in; bound to their sub at their first
                                             console sign-in, in one transaction
- pk "session#<sha256(cookie token)>", sk "session"
                                             DeskSession: a signed-in browser; subject =
                                             the sub; TTL expires_at (the idle deadline)
- pk "audit",   sk "<ISO time>#<event>#<random>"
                                             DeskAuditEvent: the desk audit stream (staff
                                             added, bound, re-roled, removed), newest last
GSI by_subject (subject; keys and kind): the sessions of one staff member, so a removal
ends them at once. Sparse: only sessions carry `subject`.

Why staff and pending entries each share one partition: a desk is tens of people, and the
staff page and `manage.py staff list` are one Query each, without a Scan. Why staff
changes have an audit stream here rather than in the audit table: that table is keyed by
registry account (nr_number), and every reader of it (find, export-changes, the person
page) reads one account's history; a staff change belongs to no account. Changes the
console makes to a registry account go to that account's audit trail, as manage.py's do,
with the staff member as actor (`staff.Actor`).
"""

from __future__ import annotations

from pynamodb.attributes import (
    DiscriminatorAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.config import table_prefix
from chalicelib.models import META_TIMEOUTS

TABLE_SUFFIX = "desk"
STAFF_PK, PENDING_PK, AUDIT_PK, SESSION_SK = "staff", "pending", "audit", "session"


class DeskSubjectIndex(GlobalSecondaryIndex):
    """by_subject: PK subject (a staff member's Login.gov sub). Sparse: sessions only."""

    class Meta:
        index_name = "by_subject"
        # `kind` is the discriminator: PynamoDB's typed queries filter on it.
        projection = IncludeProjection(["kind"])

    subject = UnicodeAttribute(hash_key=True)


_pinned_prefix: str | None = None  # use_table_prefix's; None: TABLE_PREFIX, read when used


class _DeskTableNamed(type):
    """The desk table's name, read at each use (as chalicelib.models does): importing the
    console reads no setting."""

    @property
    def table_name(cls) -> str:
        return (_pinned_prefix or table_prefix()) + TABLE_SUFFIX


class DeskItem(Model):
    """Any item of the desk table. PK pk, SK sk (see the module docstring)."""

    class Meta(metaclass=_DeskTableNamed):
        connect_timeout_seconds = META_TIMEOUTS["connect_timeout_seconds"]
        read_timeout_seconds = META_TIMEOUTS["read_timeout_seconds"]
        max_retry_attempts = META_TIMEOUTS["max_retry_attempts"]

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()
    subject = UnicodeAttribute(null=True)

    by_subject = DeskSubjectIndex()


class StaffMember(DeskItem, discriminator="staff"):
    """A staff member. PK "staff", SK their Login.gov sub (pairwise, stable: never an email)."""

    email = UnicodeAttribute()  # as given when added; shown in the header and lists
    email_normalized = UnicodeAttribute()
    role = UnicodeAttribute()  # supportdesk.console.permissions.ROLES
    added_by = UnicodeAttribute()
    added_at = UTCDateTimeAttribute()
    updated_by = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    version = VersionAttribute()

    @property
    def sub(self) -> str:
        return self.sk


class PendingStaff(DeskItem, discriminator="pending"):
    """Added by email, not signed in yet. PK "pending", SK the normalized email."""

    email = UnicodeAttribute()
    role = UnicodeAttribute()
    added_by = UnicodeAttribute()
    added_at = UTCDateTimeAttribute()

    @property
    def email_normalized(self) -> str:
        return self.sk


class DeskSession(DeskItem, discriminator="session"):
    """A signed-in browser. PK "session#<sha256(cookie token)>", SK "session"; the cookie
    holds the token, the table only its digest (a copied table cannot be replayed)."""

    created_at = NumberAttribute()
    expires_at = NumberAttribute()  # idle deadline (TTL; enforced on every read)
    absolute_expires_at = NumberAttribute()
    # When Login.gov last authenticated this person (auth_time, or the sign-in's own time):
    # a change needs it within DESK_FRESH_SIGNIN_SECONDS.
    authenticated_at = NumberAttribute()
    csrf_token = UnicodeAttribute()


class DeskAuditEvent(DeskItem, discriminator="audit"):
    """One staff change. PK "audit", SK "<ISO time>#<event>#<random>" (time order)."""

    event = UnicodeAttribute()
    actor = UnicodeAttribute()
    detail: MapAttribute = MapAttribute(null=True)

    @property
    def at(self) -> str:
        return self.sk.split("#", 1)[0]


def use_table_prefix(prefix: str | None) -> None:
    """Point the desk models at prefix + "desk" (manage.py after --stage, tests); None:
    TABLE_PREFIX, as set when the table is used."""
    global _pinned_prefix
    _pinned_prefix = prefix


def session_key(token_digest: str) -> str:
    return f"session#{token_digest}"
