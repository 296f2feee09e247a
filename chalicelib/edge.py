"""The HTTP edge: what every route shares between a request and its workflow.

- `request_context`: middleware for every event (HTTP, schedules, queues): the request id
  that every log line carries, and the per-request state below.
- `security_headers`: middleware for every HTTP answer (pages, redirects, JSON, and
  Chalice's own 405/415 answers): the one place the security headers are set.
- `page`: the route wrapper for HTML. A route parses, makes one call into its workflow and
  renders; every failure it raises becomes a response through the one error map
  (`chalicelib.pages.ERROR_RESPONSES`), so no route has an `except` of its own. A refusal
  page that names a registry account is also kept in its audit trail (`record_refusal`).
- `api`: the same for the JSON API (Login.gov security events), whose answers are RFC 8935's.
- Request reading: query, cookies, size-limited form bodies, the signed-in session and
  account (remembered for the error page's header and forms), CSRF on every POST.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError
from chalice import Response
from pynamodb.exceptions import PynamoDBException

from chalicelib import accounts, pages, sessions, store, web
from chalicelib.audit import audit_event
from chalicelib.config import ConfigurationError, get_settings
from chalicelib.errors import (
    BadRequest,
    NotSignedIn,
    RecoveryPaused,
    ServiceError,
    StorageUnavailable,
)
from chalicelib.logs import log_event, set_request_id, support_reference
from chalicelib.models import Account, AuditEvent, Session
from chalicelib.redirects import safe_return_path

FORM = ["application/x-www-form-urlencoded"]
MAX_FORM_FIELDS = 10


@dataclass
class RequestState:
    """What this request has learnt so far: an error page shows the same header and form."""

    request: object = None
    session: Session | None = None
    session_token: str | None = None
    account: Account | None = None
    form: dict | None = None


_state: contextvars.ContextVar[RequestState] = contextvars.ContextVar("request_state")


def state() -> RequestState:
    try:
        return _state.get()
    except LookupError:  # called outside the middleware (tests calling a route directly)
        fresh = RequestState()
        _state.set(fresh)
        return fresh


def request_context(event, get_response):
    """Middleware for every event type: request id for the logs, fresh request state."""
    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    set_request_id(getattr(context, "aws_request_id", None))
    _state.set(RequestState(request=event))
    return get_response(event)


SECURITY_HEADERS = {
    # HTTPS only, for a year, subdomains included (browsers ignore it on the local http stage).
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    # Pages carry their own CSS and no scripts: nothing else may load, nothing may frame us.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    # Codes, addresses and sessions are in these answers: no cache keeps a copy.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def security_headers(event, get_response):
    """HTTP middleware: every answer carries SECURITY_HEADERS, whatever made it. Set last,
    so no route or error path can leave one out or weaken it."""
    response = get_response(event)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = content_security_policy()
    return response


def content_security_policy() -> str:
    """SECURITY_HEADERS' policy, with Login.gov's origin among the form targets: a form
    whose answer sends the browser to sign in again (an email change past the recent
    sign-in window, a post after the session ended) is redirected through /login to
    Login.gov, and browsers apply form-action to every redirect of a form submission."""
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    try:
        issuer = urlsplit(get_settings().login_gov_issuer)
    except ConfigurationError:  # the server-error page of a misconfigured stage
        return policy
    if issuer.scheme not in ("https", "http") or not issuer.netloc:
        return policy
    return policy.replace(
        "form-action 'self'", f"form-action 'self' {issuer.scheme}://{issuer.netloc}"
    )


# --- wrappers -----------------------------------------------------------------------------------


def page(view):
    """Route wrapper for HTML: typed errors to pages, and never a bare 5xx.

    An error page never ends a session: a failed request is no reason to sign anyone out.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            try:
                return view(*args, **kwargs)
            except ServiceError as error:
                return error_response(error)
            except PynamoDBException:
                # Throttling or an outage after botocore's bounded retries: transactions
                # committed whole or not at all, so the page can say nothing changed.
                return error_response(StorageUnavailable("DynamoDB call failed"), exc_info=True)
        except Exception:  # noqa: BLE001 - a page, not a stack trace, for anything
            # unexpected, the error page's own failures included.
            log_event("unhandled_error", logging.ERROR, exc_info=True)
            return pages.render_server_error()

    return wrapper


def error_response(
    error: ServiceError, cookies: list[str] | None = None, *, exc_info: bool = False
) -> Response:
    """The response the error map names for `error`, with the request's header and form."""
    entry = pages.response_for(error)
    if isinstance(entry, pages.Redirect):
        return pages.redirect(_redirect_target(entry), cookies=cookies)
    record_refusal(error)
    current = state()
    context = {
        "signed_in": current.session is not None,
        "linked": bool(current.session and current.session.nr_number),
        "csrf_token": current.session.csrf_token if current.session else None,
    }
    if entry.form is not None:
        context.update(FORM_CONTEXTS[entry.form](current, error))
    return pages.render_error(error, cookies=cookies, exc_info=exc_info, **context)


# A paused recovery answers exactly as a decoy's wrong code does, down to its requests
# (chalicelib.guess_limits): one more write would tell a registry address from a stranger's.
# Storage failing: one more write would only make the failing page slower.
UNRECORDED_REFUSALS: tuple[type[ServiceError], ...] = (RecoveryPaused, StorageUnavailable)


def record_refusal(error: ServiceError) -> None:
    """A refusal page that names a registry account is kept in that account's audit trail
    (`signin_refused`: the error's event and the page's reference), where the support
    console's person page shows it. Refusal pages only, one PutItem, best effort: a failed
    write is logged and the person gets their page all the same."""
    nr_number = error.context.get("nr_number")
    if not isinstance(nr_number, str) or not store.is_registry_number(nr_number):
        return
    if isinstance(error, UNRECORDED_REFUSALS):
        return
    subject = error.context.get("subject")  # already a keyed stand-in
    detail: dict[str, Any] = {"reason": error.event, "reference": support_reference()}
    event = audit_event(
        nr_number,
        "signin_refused",
        actor=f"subject:{subject}" if subject else "service",
        **{k: v for k, v in detail.items() if v},
    )
    try:
        event.save(condition=AuditEvent.at_event.does_not_exist())
    except (PynamoDBException, BotoCoreError) as exc:
        log_event(
            "refusal_not_recorded",
            logging.WARNING,
            nr_number=nr_number,
            reason=error.event,
            error=exc.__class__.__name__,
        )


def _redirect_target(entry: pages.Redirect) -> str:
    if entry.to != "login":
        return entry.to
    request = state().request
    path = getattr(request, "context", {}).get("path") if request is not None else None
    target = safe_return_path(path or "/account")
    return "/login" + (f"?return_to={target}" if target else "")


def api(
    # Each answer is called with an instance of its own key (not expressible as a type).
    rejected_event: str,
    refusals: dict[type[Exception], Callable[[Any], tuple[int, dict]]],
):
    """Route wrapper for a JSON API. `refusals` maps the API's own errors to (status, body),
    logged once as `rejected_event`; storage trouble is a 503, which a push sender takes as
    "deliver again later"."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except tuple(refusals) as refusal:
                status, body = next(
                    answer(refusal) for cls, answer in refusals.items() if isinstance(refusal, cls)
                )
                log_event(rejected_event, logging.WARNING, **body)
                return json_response(status, body)
            except PynamoDBException:
                log_event("storage_unavailable", logging.ERROR, exc_info=True)
                return json_response(503, {"err": "temporarily_unavailable"})

        return wrapper

    return decorate


def json_response(status: int, body: dict | None) -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    return Response(
        json.dumps(body) if body is not None else "", status_code=status, headers=headers
    )


# --- reading the request ----------------------------------------------------------------------


def request():
    return state().request


def query() -> dict[str, str]:
    return dict(getattr(request(), "query_params", None) or {})


def cookie(name: str) -> str | None:
    return web.read_cookie(request(), name)


def signin_binding(state: str | None) -> str | None:
    """The binding carried by the cookie /login issued for the sign-in with this state, if
    this browser holds it."""
    name = web.signin_cookie(state)
    return web.signin_cookie_binding(cookie(name)) if name else None


def stale_signin_cookies() -> list[str]:
    """This browser's sign-in cookies a new /login drops (see web.stale_signin_cookies)."""
    return web.stale_signin_cookies(request())


def raw_body() -> bytes:
    return request().raw_body or b""


def form() -> dict[str, str]:
    """The posted form's fields (first value of each), refused when too large or unreadable."""
    body = raw_body()
    if len(body) > get_settings().form_max_bytes:
        raise BadRequest("form body too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("form body unreadable") from None
    fields = {name: values[0] for name, values in parsed.items()}
    state().form = fields
    return fields


def optional_session() -> Session | None:
    """This browser's live session, or None: for pages anyone may see whose header says
    whether you are signed in. No cookie, no read."""
    current = state()
    token = cookie(web.SESSION_COOKIE)
    if not token:
        return None
    session = sessions.load_session(token)
    if session is not None:
        current.session, current.session_token = session, token
    return session


def signed_in(*, linked: bool | None = True) -> Session:
    """This browser's live session (see accounts.signed_in_session for `linked`)."""
    current = state()
    token = cookie(web.SESSION_COOKIE)
    session = accounts.signed_in_session(token)
    current.session, current.session_token = session, token
    accounts.require_link_state(session, linked=linked)
    return session


def signed_in_account() -> Account:
    """The signed-in person's account: active and still linked to this identity."""
    current = state()
    session = current.session if current.session is not None else signed_in()
    account = accounts.signed_in_account(session, current.session_token)
    current.account = account
    return account


def posted(*, linked: bool) -> tuple[Session, dict[str, str]]:
    """(session, form fields) of a POST whose CSRF token is the session's."""
    session = signed_in(linked=linked)
    fields = form()
    sessions.check_csrf(session, fields.get("csrf_token"))
    return session, fields


def session_token() -> str:
    """The session cookie signed_in() read (after it: never None)."""
    token = state().session_token
    if token is None:
        raise NotSignedIn("no session cookie")
    return token


# --- the forms an error page shows again ---------------------------------------------------------


def code_form(current: RequestState, error: ServiceError) -> dict:
    """The code-entry form, for the purpose and address of the code that was tried."""
    return code_page_context(error.context.get("purpose", ""), error.context.get("target_email"))


def code_page_context(purpose: str, target_email: str | None) -> dict:
    settings = get_settings()
    session = state().session
    if session is None:
        raise NotSignedIn("code page without a session")
    action = "/link/recover/verify" if purpose == "recovery" else "/account/email/confirm"
    return {
        "signed_in": True,
        "linked": purpose != "recovery",
        # Whose Login.gov account the code links: a sign-in left open by someone else
        # in this browser shows here, before the person spends their own code on it.
        "login_gov_email": sessions.session_login_gov_email(session)
        if purpose == "recovery"
        else None,
        "csrf_token": session.csrf_token,
        "purpose": purpose,
        "target_email": target_email,
        "form_action": action,
        "minutes": settings.challenge_ttl // 60,
        # A resend goes to the same address: the tighter of the two limits applies.
        "sends_per_hour": min(
            settings.code_sends_per_hour, settings.code_sends_per_identity_address_per_hour
        ),
    }


def recover_form(current: RequestState, error: ServiceError) -> dict:
    return {}  # the template shows what was typed, from the error


FormContext = Callable[[RequestState, ServiceError], dict]
# The forms an error page may show again (pages.ERROR_RESPONSES names them). A workflow's
# own form is registered by its routes (register_form): the edge imports no workflow.
FORM_CONTEXTS: dict[str, FormContext] = {"code": code_form, "recover": recover_form}


def register_form(name: str, build: FormContext) -> None:
    FORM_CONTEXTS[name] = build
