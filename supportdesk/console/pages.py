"""The console's HTML: its templates (supportdesk/console/templates), and the one table from
each error type to what a staff member sees.

Escaping, twice over, in one place: Jinja2 autoescapes every value (HTML), and `finalize`
passes every value a template prints through supportdesk.safe_text first (control,
bidirectional and invisible formatting characters shown as escapes, `\\u202e`), so neither
a Login.gov email nor a typed reason nor an examiner's registry data can inject markup or
disguise what the desk reads. A template cannot forget either: no filter to remember.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from chalice import Response

from chalicelib import errors as e
from chalicelib.logs import count, log_event, refusal_fields, support_reference
from chalicelib.pages import html_response, redirect  # noqa: F401 - the console's too
from supportdesk.console import errors as desk
from supportdesk.safe_text import safe_text

TEMPLATES = Path(__file__).parent / "templates"


def _shown(value):
    """Jinja's finalize: text through safe_text (Markup, made by templates, as it is)."""
    from markupsafe import Markup

    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return safe_text(value)
    return value


@functools.lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default=True),
        finalize=_shown,
        auto_reload=False,
    )


def render(
    template: str, status: int = 200, cookies: list[str] | None = None, **context
) -> Response:
    """A page. The edge adds the signed-in staff member (header, CSRF token of every form)."""
    return html_response(environment().get_template(template).render(**context), status, cookies)


# --- the error map ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    template: str
    status: int


@dataclass(frozen=True)
class Redirect:
    """Not a refusal: nothing is logged or counted. `to` "login": /login with return_to."""

    to: str


SIGNIN_FAILED = Page("error_signin.html", 400)
REFUSED_SIGNIN = Page("not_on_staff_list.html", 403)

# Looked up along the error's class hierarchy: the most specific entry wins.
ERROR_PAGES: dict[type[Exception], Page | Redirect] = {
    e.ServiceError: Page("error.html", 400),
    # sign-in (chalicelib's errors, the console's pages)
    e.SignInError: SIGNIN_FAILED,
    e.SignInCancelled: Page("signin_cancelled.html", 400),
    e.IssuerMismatch: SIGNIN_FAILED,
    e.IdentityProviderUnavailable: Page("error_unavailable.html", 400),
    e.ReturnToRejected: Page("error.html", 400),
    desk.NotOnStaffList: REFUSED_SIGNIN,
    desk.AssuranceRefused: Page("assurance_refused.html", 403),
    desk.StaleAuthentication: Page("assurance_refused.html", 403),
    # sessions, roles, forms. Pages, not redirects to Login.gov: a form's fields cannot
    # survive a sign-in, so these pages link to /login, which comes back to the form's page.
    e.NotSignedIn: Page("signin_needed.html", 401),
    desk.FreshSignInRequired: Page("signin_fresh.html", 403),
    desk.StaffAccessEnded: Page("access_ended.html", 403),
    desk.Forbidden: Page("forbidden.html", 403),
    e.CsrfError: Page("error_csrf.html", 403),
    e.BadRequest: Page("error.html", 400),
    desk.StaffChangeInvalid: Page("staff_refused.html", 400),
    desk.StaffChangeRefused: Page("staff_refused.html", 409),
    desk.DeskChangeInvalid: Page("desk_refused.html", 400),
    desk.DeskChangeRefused: Page("desk_refused.html", 409),
    desk.DeskAccountNotFound: Page("desk_refused.html", 404),
    e.StorageUnavailable: Page("error_server.html", 503),
    e.NotFound: Page("not_found.html", 404),
}

# Context fields that may appear in a refusal's log line (never an email); the error's raw
# `sub` is logged as its keyed hash (chalicelib.logs.refusal_fields).
LOGGED_CONTEXT = ("reason", "permission", "role", "path")


def response_for(error: Exception) -> Page | Redirect:
    for cls in type(error).__mro__:
        if cls in ERROR_PAGES:
            return ERROR_PAGES[cls]
    raise LookupError(f"no page for {type(error).__name__}")


def log_refusal(error: e.ServiceError, *, exc_info: bool = False) -> None:
    """One log line and one metric per refusal; a refused staff sign-in also counts as
    StaffSignInRefused (no dimensions: infra/template.yaml's alarm sums it)."""
    fields = refusal_fields(error.context, LOGGED_CONTEXT)
    level = logging.ERROR if isinstance(error, e.StorageUnavailable) else logging.WARNING
    log_event(
        error.event,
        level,
        exc_info=exc_info,
        error=error.__class__.__name__,
        detail=str(error),
        **fields,
    )
    count("RequestRefused", reason=error.event)
    if isinstance(error, desk.StaffSignInRefused):
        count("StaffSignInRefused")


def render_error(
    error: e.ServiceError, cookies: list[str] | None = None, *, exc_info: bool = False, **context
) -> Response:
    entry = response_for(error)
    if isinstance(entry, Redirect):
        raise TypeError(f"{type(error).__name__} is a redirect, not a page")
    log_refusal(error, exc_info=exc_info)
    return render(
        entry.template,
        status=entry.status,
        cookies=cookies,
        error=error,
        reference=support_reference(),
        **context,
    )


def render_server_error() -> Response:
    return render("error_server.html", status=500, reference=support_reference())
