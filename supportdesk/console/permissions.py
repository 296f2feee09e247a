"""Who may do what in the support console: one table from role to permissions.

Every console route declares what it needs (`supportdesk.console.edge.access`): a
`Permission`, or one of the two `Open` values (`PUBLIC`: the sign-in pages and the 404
page; `ANY_STAFF`: any signed-in staff member). The console's middleware refuses a route
that declares nothing (a 403 page), so a route added without a thought is closed, not open.

Adding a permission: a member of `Permission`, the roles that have it in `ROLE_PERMISSIONS`
(a role has everything the role above it in ROLES has, and more), and a place in `CHANGES`
when it changes anything: a change needs a fresh Login.gov sign-in
(DESK_FRESH_SIGNIN_SECONDS). tests/test_console_auth.py walks every route with every role
against this table.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    # viewer: look, never touch
    SEARCH = "search"
    READ = "read"  # one screen per person
    REPORT = "report"  # the migration report
    # agent: the FAQ's support cases (manage.py's desk commands)
    UNLINK = "unlink"  # both modes: lost-account, not-owner
    SET_EMAIL = "set-email"
    DISABLE = "disable"
    ENABLE = "enable"
    END_SESSIONS = "end-sessions"
    TRACE = "trace"
    EXPORT_CHANGES = "export-changes"
    # supervisor: what can link a record to someone, and who is staff
    CLEAR_SHARED = "clear-shared"
    LIFT_BAR = "lift-bar"
    STAFF_ADMIN = "staff-admin"


class Open(StrEnum):
    """Routes that need no permission, declared as such all the same."""

    PUBLIC = "public"  # no session needed: landing, sign-in, sign-out, not found
    ANY_STAFF = "any-staff"  # a signed-in staff member, whatever the role


Requirement = Permission | Open

ROLES = ("viewer", "agent", "supervisor")  # each has all the one before it has, and more

_VIEWER = frozenset({Permission.SEARCH, Permission.READ, Permission.REPORT})
_AGENT = _VIEWER | {
    Permission.UNLINK,
    Permission.SET_EMAIL,
    Permission.DISABLE,
    Permission.ENABLE,
    Permission.END_SESSIONS,
    Permission.TRACE,
    Permission.EXPORT_CHANGES,
}
# Clearing a shared address or lifting a bar lets a record be linked to someone: a mistake
# or a social-engineered agent hands an examiner's record to another person. Supervisors only.
_SUPERVISOR = _AGENT | {Permission.CLEAR_SHARED, Permission.LIFT_BAR, Permission.STAFF_ADMIN}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": _VIEWER,
    "agent": _AGENT,
    "supervisor": _SUPERVISOR,
}

# Permissions whose routes change something: each needs a recent Login.gov sign-in, so a
# session left open on an unattended desk cannot be used to change a record.
CHANGES = frozenset(
    {
        Permission.UNLINK,
        Permission.SET_EMAIL,
        Permission.DISABLE,
        Permission.ENABLE,
        Permission.END_SESSIONS,
        Permission.CLEAR_SHARED,
        Permission.LIFT_BAR,
        Permission.STAFF_ADMIN,
    }
)

ROLE_LABELS = {"viewer": "Viewer", "agent": "Agent", "supervisor": "Supervisor"}


def allows(role: str | None, permission: Permission) -> bool:
    """True when `role` has `permission`; an unknown role has none (fail closed)."""
    return permission in ROLE_PERMISSIONS.get(role or "", frozenset())


def is_role(role: str | None) -> bool:
    return role in ROLE_PERMISSIONS
