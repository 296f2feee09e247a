"""HTML responses: Jinja2 templates (autoescaped), and the one table from errors to pages.

`ERROR_RESPONSES` is the only place that decides what a person sees for a failure: a page
(template and status, and which form to show again) or a redirect. The edge
(`chalicelib.edge`) resolves every error through `response_for`; `render_error` logs the
refusal and counts it, once.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib import errors as e
from chalicelib.config import support_contact
from chalicelib.logs import count, log_event, refusal_fields, support_reference

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"
HTML = "text/html; charset=utf-8"


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    # Imported on first render: /login and /auth/callback answer with redirects and never
    # pay for Jinja2 on a cold start.
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "txt"], default=True),
        auto_reload=False,
    )


def render(
    template: str, status: int = 200, cookies: list[str] | None = None, **context: Any
) -> Response:
    # Every page's footer names the support desk.
    context.setdefault("support", support_contact())
    return html_response(_environment().get_template(template).render(**context), status, cookies)


def html_response(body: str, status: int = 200, cookies: list[str] | None = None) -> Response:
    """An HTML answer (the examiners' pages and the console's). Security headers are added
    to every answer by the edge's middleware."""
    headers: dict = {"Content-Type": HTML}
    if cookies:
        headers["Set-Cookie"] = cookies
    return Response(body=body, status_code=status, headers=headers)


def redirect(location: str, cookies: list[str] | None = None) -> Response:
    headers: dict = {"Location": location}
    if cookies:
        headers["Set-Cookie"] = cookies
    return Response(body="", status_code=302, headers=headers)


# --- the error map ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """Show `template` with `status`. `form` names the form the page shows again (the edge
    fills it from the request: the session, the account, what was typed)."""

    template: str
    status: int
    form: str | None = None


@dataclass(frozen=True)
class Redirect:
    """Send the browser elsewhere: not a refusal, so nothing is logged or counted."""

    to: str  # a path, or "login" for /login with this page as return_to


SIGNIN_PAGE = Page("error_signin.html", 400)
CODE_UNUSABLE = Page("code_unusable.html", 400)
EMAIL_CHANGE_REFUSED = Page("email_change_refused.html", 409)

# Looked up along the error's class hierarchy: the most specific entry wins.
ERROR_RESPONSES: dict[type[Exception], Page | Redirect] = {
    e.ServiceError: Page("error_generic.html", 400),
    # sign-in
    e.SignInError: SIGNIN_PAGE,
    e.SignInCancelled: Page("signin_cancelled.html", 400),
    # Never the cancelled page: a forged `error=access_denied` must not say "you cancelled".
    e.IssuerMismatch: SIGNIN_PAGE,
    # A 4xx like every sign-in failure: the browser's request was fine but cannot succeed;
    # ops see outages through the identity_provider_unavailable metric and alarm.
    e.IdentityProviderUnavailable: Page("error_unavailable.html", 400),
    e.ReturnToRejected: Page("error_generic.html", 400),
    # linking
    e.LinkRefused: Page("error_generic.html", 403),
    e.NoMatchingAccount: Page("link_no_match.html", 404),
    e.AmbiguousMatch: Page("link_ambiguous.html", 409),
    e.AccountAlreadyLinked: Page("link_shared.html", 409),
    e.AccountInactive: Page("account_inactive.html", 403),
    e.AccountRemoved: Page("link_removed.html", 403),
    e.SharedAddress: Page("link_shared_address.html", 409),
    e.LinkBarred: Page("link_barred.html", 403),
    e.MatchChanged: Page("link_match_changed.html", 409),
    e.IdentityPurged: SIGNIN_PAGE,
    e.LinkedButNotSignedIn: Page("linked_sign_in_again.html", 503),
    # sessions and forms
    e.NotSignedIn: Redirect("login"),
    e.NotLinkedYet: Redirect("/link/no-match"),
    e.AlreadyLinked: Redirect("/account"),
    e.CsrfError: Page("error_csrf.html", 403),
    e.BadRequest: Page("error_generic.html", 400),
    e.StorageUnavailable: Page("error_server.html", 503),
    e.NotFound: Page("error_not_found.html", 404),
    # one-time codes
    e.CodeError: CODE_UNUSABLE,
    e.WrongCode: Page("code_entry.html", 400, form="code"),
    e.CodeMalformed: Page("code_entry.html", 400, form="code"),
    e.TooManyAttempts: Page("code_unusable.html", 429),
    e.GuessLimitReached: Page("code_unusable.html", 429),
    e.SendLimitReached: Page("code_send_limit.html", 429),
    e.MailNotSent: Page("mail_failed.html", 503),
    e.MailNotQueued: Page("mail_failed.html", 503),
    # recovery and email change
    e.RecoveryEmailInvalid: Page("link_recover.html", 400, form="recover"),
    e.NewEmailInvalid: Page("account_email.html", 400, form="email"),
    e.EmailChangeRefused: EMAIL_CHANGE_REFUSED,
    e.EmailChangeLimitReached: Page("email_change_refused.html", 429),
    # Not a refusal: through Login.gov again, then back to the form (return_to).
    e.RecentSignInRequired: Redirect("login"),
}

# Context fields that may appear in the refusal's log line (never an address or a code);
# the error's raw `sub` is logged as its keyed hash (logs.refusal_fields).
LOGGED_CONTEXT = (
    "nr_number",
    "status_name",
    "count",
    "purpose",
    "remaining",
    "reason",
    "limit",
    "change",
    "template",
)


def response_for(error: Exception) -> Page | Redirect:
    for cls in type(error).__mro__:
        if cls in ERROR_RESPONSES:
            return ERROR_RESPONSES[cls]
    raise LookupError(f"no response for {type(error).__name__}")  # not a ServiceError


def log_refusal(error: e.ServiceError, *, exc_info: bool = False) -> None:
    """One log line and one metric per refusal, whatever page it becomes."""
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


def render_error(
    error: e.ServiceError,
    cookies: list[str] | None = None,
    *,
    exc_info: bool = False,
    **context: Any,
) -> Response:
    """The page for `error` (a Page entry of the map), logged and counted once."""
    entry = response_for(error)
    if isinstance(entry, Redirect):
        raise TypeError(f"{type(error).__name__} is a redirect, not a page")
    log_refusal(error, exc_info=exc_info)
    # The reference finds this refusal's log line (manage.py trace).
    return render(
        entry.template,
        status=entry.status,
        cookies=cookies,
        error=error,
        reference=support_reference(),
        **context,
    )


def render_server_error() -> Response:
    """Anything unexpected: a page, never a stack trace (the edge logged the traceback)."""
    return render("error_server.html", status=500, reference=support_reference())
