"""The console's request edge: what every console route shares.

- `install(app)`: the middleware, in order: chalicelib.edge.request_context (request id,
  request state), chalicelib.edge.security_headers (the examiners' headers on every
  answer), and `declared_routes_only`, which refuses (403 page) any route whose view
  declares no access: a route added without `@access(...)` is closed by default.
- `@access(requirement)`: the route wrapper. For anything but Open.PUBLIC it reads the
  session (one GetItem) and the staff record (one GetItem: a removed staff member is
  signed out at their next click, a re-roled one sees the new role), checks the role
  (supportdesk.console.permissions), the CSRF token of every POST, and, for a change, a
  fresh Login.gov sign-in (else a page whose link goes through Login.gov again, and back).
  Every failure it or the view raises becomes a page through the one error map
  (supportdesk.console.pages), logged once; no route has an `except` of its own.
- `render(template, **context)`: a page with the signed-in staff member in its header.

Adding a page: a function in a blueprint of supportdesk/console/routes/, decorated with
`@bp.route(...)` then `@access(Permission.X)` (or Open.PUBLIC / Open.ANY_STAFF), which reads
the request (chalicelib.edge.query(), form()), makes one call into the console's workflow
and returns `render(...)` or `pages.redirect(...)`. Register a new blueprint in console/app.py.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from chalice import Response
from pynamodb.exceptions import PynamoDBException

from chalicelib import edge, web
from chalicelib.config import ConfigurationError
from chalicelib.errors import NotSignedIn, ServiceError, StorageUnavailable
from chalicelib.logs import log_event
from supportdesk.console import pages, sessions, staff
from supportdesk.console.errors import (
    Forbidden,
    FreshSignInRequired,
    StaffAccessEnded,
    UndeclaredRoute,
)
from supportdesk.console.models import DeskSession, StaffMember
from supportdesk.console.permissions import (
    CHANGES,
    ROLE_LABELS,
    Open,
    Permission,
    Requirement,
    allows,
)
from supportdesk.console.settings import desk_settings, supervisor_contact
from supportdesk.person import when

HOME = "/home"
FORM = edge.FORM


@dataclass
class Desk:
    """This request's staff member and session, once `access` has read them."""

    session: DeskSession | None = None
    token: str | None = None
    member: StaffMember | None = None


_desk: contextvars.ContextVar[Desk] = contextvars.ContextVar("desk")


def current() -> Desk:
    try:
        return _desk.get()
    except LookupError:
        fresh = Desk()
        _desk.set(fresh)
        return fresh


# --- middleware -------------------------------------------------------------------------------


def install(app) -> None:
    """The console's middleware, in the order they wrap each request (see module doc)."""
    app.register_middleware(edge.request_context, "all")
    app.register_middleware(edge.security_headers, "http")
    app.register_middleware(declared_routes_only(app), "http")


def declared_routes_only(app) -> Callable:
    def guard(event, get_response):
        _desk.set(Desk())
        view = _view_of(app, event)
        # No view for this method: Chalice answers 405 itself, and nothing of ours runs.
        if view is not None and getattr(view, "desk_access", None) is None:
            # Fail closed: a route whose view says nothing about who may use it is refused.
            path = getattr(event, "context", {}).get("resourcePath")
            return _handled(_raise(UndeclaredRoute("route declares no access", path=path)))
        return get_response(event)

    return guard


def _view_of(app, event):
    context = getattr(event, "context", None) or {}
    entry = app.routes.get(context.get("resourcePath"), {}).get(getattr(event, "method", None))
    return entry.view_function if entry is not None else None


def _raise(error: Exception) -> Callable[[], Response]:
    def call() -> Response:
        raise error

    return call


# --- the route wrapper ------------------------------------------------------------------------


def access(requirement: Requirement, *, fresh: bool | None = None, back_to: str = HOME):
    """Declare who may use a route, and enforce it (see the module docstring).

    `fresh`: needs a recent Login.gov sign-in; by default exactly the CHANGES permissions.
    `back_to`: where a POST goes back to after a sign-in it needed (its form's page).
    """
    if not isinstance(requirement, (Permission, Open)):
        raise TypeError(f"access needs a Permission or an Open value, got {requirement!r}")
    needs_fresh = (
        fresh
        if fresh is not None
        else isinstance(requirement, Permission) and requirement in CHANGES
    )

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            def call() -> Response:
                _check(requirement, needs_fresh, back_to)
                return view(*args, **kwargs)

            return _handled(call)

        wrapper.desk_access = requirement  # type: ignore[attr-defined]
        wrapper.desk_fresh = needs_fresh  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _check(requirement: Requirement, needs_fresh: bool, back_to: str) -> None:
    if requirement is Open.PUBLIC:
        return
    desk = current()
    token = edge.cookie(sessions.COOKIE)
    session = sessions.load(token)
    if session is None:
        raise NotSignedIn("no live console session", return_to=_here(back_to))
    member = staff.get(session.subject)
    if member is None:
        # Removed from the staff list: this session ends now, whatever its age.
        sessions.end(token)
        raise StaffAccessEnded("no staff record for this session")
    desk.session, desk.token, desk.member = session, token, member
    if isinstance(requirement, Permission) and not allows(member.role, requirement):
        raise Forbidden("role lacks permission", permission=requirement.value, role=member.role)
    if _method() == "POST":
        sessions.check_csrf(session, edge.form().get("csrf_token"))
    if needs_fresh and not sessions.is_fresh(session):
        raise FreshSignInRequired("sign in again for a change", return_to=_here(back_to))


def _method() -> str:
    return getattr(edge.request(), "method", "GET") or "GET"


def _here(back_to: str) -> str:
    """This page, to come back to after a sign-in: a GET's own path and query; for a POST,
    the page its form is on (a sign-in cannot carry the form's fields)."""
    if _method() != "GET":
        return back_to
    request = edge.request()
    path = (getattr(request, "context", None) or {}).get("path") or HOME
    query = edge.query()
    return path + ("?" + urlencode(query) if query else "")


def _handled(call: Callable[[], Response]) -> Response:
    try:
        try:
            return call()
        except ServiceError as error:
            return error_response(error)
        except PynamoDBException:
            # Throttling or an outage after botocore's retries: transactions committed whole
            # or not at all, so the page can say nothing changed.
            return error_response(StorageUnavailable("DynamoDB call failed"), exc_info=True)
    except Exception:  # noqa: BLE001 - a page, not a stack trace, for anything unexpected
        log_event("unhandled_error", logging.ERROR, exc_info=True)
        return pages.render_server_error()


def error_response(error: ServiceError, *, exc_info: bool = False) -> Response:
    entry = pages.response_for(error)
    if isinstance(entry, pages.Redirect):
        return pages.redirect(entry.to)
    cookies = None
    context = page_context()
    if isinstance(error, StaffAccessEnded) or (
        isinstance(error, NotSignedIn) and edge.cookie(sessions.COOKIE)
    ):
        cookies = [web.clear_cookie(sessions.COOKIE)]  # a session that has ended
    if isinstance(error, (NotSignedIn, FreshSignInRequired)):
        # Through Login.gov, then back here (or to the page a POST's form is on).
        target = str(error.context.get("return_to") or _here(HOME))
        context["sign_in_url"] = "/login?" + urlencode({"return_to": target})
    return pages.render_error(error, cookies, exc_info=exc_info, **context)


# --- pages --------------------------------------------------------------------------------------


def page_context() -> dict:
    """What every page's layout shows: the staff member (email, role), their CSRF token for
    the sign-out form and any other form, and which parts of the console they may use."""
    desk = current()
    member = desk.member
    role = member.role if member else None
    return {
        "staff": member,
        "role_label": ROLE_LABELS.get(role or "", ""),
        "csrf_token": desk.session.csrf_token if desk.session else None,
        "can": functools.partial(allows, role),
        "Permission": Permission,
        "supervisor_contact": supervisor_contact(),
        "when": when,  # every time a page prints: "2026-06-09 09:30 UTC"
        **_lifetimes(),
    }


def _lifetimes() -> dict:
    """The minutes pages quote; nothing when the settings are refused (the page still shows)."""
    try:
        settings = desk_settings()
    except ConfigurationError:
        return {}
    return {"idle_minutes": settings.idle_minutes, "fresh_minutes": settings.fresh_signin_minutes}


def render(template: str, status: int = 200, cookies: list[str] | None = None, **context):
    return pages.render(template, status=status, cookies=cookies, **{**page_context(), **context})


def signed_in_member() -> StaffMember:
    """The staff member `access` found (routes that are not PUBLIC)."""
    member = current().member
    if member is None:
        raise NotSignedIn("no staff member in this request")
    return member


def optional_member() -> StaffMember | None:
    """For PUBLIC pages that change with a session (the landing page): the staff member of
    this browser's live session, or None. No cookie, no read."""
    token = edge.cookie(sessions.COOKIE)
    if not token:
        return None
    session = sessions.load(token)
    member = staff.get(session.subject) if session else None
    if member is not None:
        desk = current()
        desk.session, desk.token, desk.member = session, token, member
    return member
