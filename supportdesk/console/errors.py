"""The console's typed errors: what went wrong, nothing about pages.

They extend chalicelib's ServiceError (an `event` name for logs and metrics, a `context`
of plain values), and the console reuses chalicelib's own (sign-in, CSRF, storage, not
found). Which page each one becomes is decided in one table:
`supportdesk.console.pages.ERROR_PAGES`.
"""

from __future__ import annotations

from chalicelib.errors import BadRequest, ServiceError


class StaffSignInRefused(ServiceError):
    """A sign-in that reached us with a valid Login.gov identity, refused: each is counted
    as StaffSignInRefused, which infra/template.yaml's alarm watches."""

    event = "staff_signin_refused"


class NotOnStaffList(StaffSignInRefused):
    """The identity is not on the staff list (no staff record, no pending entry for any of
    its verified emails, or another identity bound that entry first). Context:
    login_gov_email (shown to the person only, never logged), reason."""

    event = "staff_signin_refused_not_on_list"


class AssuranceRefused(StaffSignInRefused):
    """The ID token asserts a weaker authenticator than phishing-resistant, or asserts
    nothing where the provider is not known to enforce what was asked (context: reason)."""

    event = "staff_signin_refused_assurance"


class StaleAuthentication(StaffSignInRefused):
    """The ID token's auth_time is older than the max_age the console asked for: the
    provider did not make the person sign in again."""

    event = "staff_signin_refused_stale_authentication"


class Forbidden(ServiceError):
    """The staff member's role lacks the route's permission (context: permission, role)."""

    event = "desk_forbidden"


class UndeclaredRoute(Forbidden):
    """A route that declares no permission: refused by default."""

    event = "desk_route_undeclared"


class StaffAccessEnded(ServiceError):
    """The session's staff member is no longer on the staff list: the session ends now."""

    event = "desk_access_ended"


class FreshSignInRequired(ServiceError):
    """A change, but Login.gov last authenticated this person too long ago: through
    Login.gov again (context: return_to), then back."""

    event = "desk_fresh_signin_required"


class StaffChangeInvalid(BadRequest):
    """A staff change's input is not usable (context: reason, shown on the form)."""

    event = "staff_change_invalid"


class StaffChangeRefused(ServiceError):
    """A staff change that cannot be made as asked (context: reason): already on the list,
    not found, the last supervisor, or the record changed since it was read."""

    event = "staff_change_refused"


class DeskChangeInvalid(BadRequest):
    """A desk operation's input is not usable (no ticket or reason, a malformed address or
    number): nothing was changed; the form says what to fix."""

    event = "desk_change_invalid"


class DeskChangeRefused(ServiceError):
    """A desk operation that cannot be made as asked (not linked, already unlinked, not
    shared, lost a race): nothing was changed."""

    event = "desk_change_refused"


class DeskChangeStale(DeskChangeRefused):
    """The account changed since its confirmation page was shown: nothing was changed; look
    again and start over."""

    event = "desk_change_stale"


class DeskAccountNotFound(DeskChangeRefused):
    """No registry account (or address) as given."""

    event = "desk_account_not_found"
