"""Routes only: parse the request, call chalicelib, return a response."""
from __future__ import annotations

import functools
import json
import logging
from urllib.parse import parse_qs

from chalice import Chalice, Cron, Rate, Response
from pynamodb.exceptions import PynamoDBException

from chalicelib import (
    accounts,
    cleanup,
    email_change,
    login_gov,
    pages,
    recovery,
    reminders,
    security_events,
    sessions,
    signin,
    web,
)
from chalicelib.config import get_settings
from chalicelib.errors import (
    AlreadyLinked,
    BadRequest,
    NewEmailInvalid,
    NotLinkedYet,
    NotSignedIn,
    RecoveryEmailInvalid,
    ServiceError,
    StorageUnavailable,
    WrongCode,
)
from chalicelib.logs import log_event, set_request_id
from chalicelib.redirects import safe_return_path

app = Chalice(app_name="nrcme-signin")


def _request_id() -> str | None:
    context = getattr(app, "lambda_context", None)  # unset outside HTTP requests
    return getattr(context, "aws_request_id", None) if context else None


def page(view):
    """Route wrapper: request id, typed errors to pages, and never a bare 5xx."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        set_request_id(_request_id())
        try:
            return view(*args, **kwargs)
        except NotLinkedYet:
            return pages.redirect("/link/no-match")
        except AlreadyLinked:
            return pages.redirect("/account")
        except NotSignedIn:
            path = app.current_request.context.get("path") or "/account"
            target = safe_return_path(path)
            return pages.redirect("/login" + (f"?return_to={target}" if target else ""))
        except ServiceError as error:
            return pages.render_error(error)
        except PynamoDBException:
            # Throttling or an outage after botocore's bounded retries: transactions either
            # committed whole or not at all, so the page can honestly say nothing changed.
            log_event("storage_unavailable", logging.ERROR, exc_info=True)
            return pages.render_error(StorageUnavailable("DynamoDB call failed"))
        except Exception:  # noqa: BLE001 - a page, not a stack trace, for anything unexpected
            log_event("unhandled_error", logging.ERROR, exc_info=True)
            return pages.render("error_server.html", status=500)
    return wrapper


def _query() -> dict[str, str]:
    return dict(app.current_request.query_params or {})


def _cookie(name: str) -> str | None:
    return web.read_cookie(app.current_request.headers, name)


def _signed_in() -> bool:
    return sessions.load_session(_cookie(web.SESSION_COOKIE)) is not None


@app.route("/")
@page
def landing():
    return pages.render("landing.html", signed_in=False)


@app.route("/login")
@page
def login():
    started = signin.start_signin(_query().get("return_to"), _cookie(web.SIGNIN_COOKIE))
    cookie = web.set_cookie(web.SIGNIN_COOKIE, started.browser_binding,
                            get_settings().signin_state_ttl)
    return pages.redirect(started.authorization_url, cookies=[cookie])


@app.route("/auth/callback")
@page
def auth_callback():
    try:
        done = signin.complete_signin(_query(), _cookie(web.SIGNIN_COOKIE))
    except ServiceError as error:
        return pages.render_error(error, cookies=[web.clear_cookie(web.SESSION_COOKIE)])
    settings = get_settings()
    return pages.redirect(done.redirect_to, cookies=[
        web.set_cookie(web.SESSION_COOKIE, done.session_token, settings.session_absolute_ttl),
    ])


@app.route("/account")
@page
def account():
    token = _cookie(web.SESSION_COOKIE)
    session = accounts.signed_in_session(token)
    record = accounts.signed_in_account(session, token)
    just_linked = session.notice == "linked"
    if just_linked:
        sessions.clear_notice(session)
    return pages.render("account_page.html", signed_in=True, just_linked=just_linked,
                        csrf_token=session.csrf_token,
                        pending=email_change.pending_change(session),
                        **accounts.account_page_context(record))


@app.route("/link/no-match")
@page
def link_no_match():
    session = accounts.signed_in_session(_cookie(web.SESSION_COOKIE), linked=None)
    return pages.render("link_no_match.html", signed_in=True, csrf_token=session.csrf_token)


@app.route("/logout")
@page
def logout():
    sessions.end_session(_cookie(web.SESSION_COOKIE))
    state = login_gov.random_token()
    return pages.redirect(login_gov.build_logout_url(state), cookies=[
        web.clear_cookie(web.SESSION_COOKIE),
        web.set_cookie(web.LOGOUT_COOKIE, state, 600),
    ])


@app.route("/signed-out")
@page
def signed_out():
    # The session normally ended at /logout; end it here too, so "you are signed out" is true
    # even for someone who followed a link here. The state only tells whether this redirect
    # is the one we asked for, so the page claims a Login.gov sign-out only then.
    sessions.end_session(_cookie(web.SESSION_COOKIE))
    expected = _cookie(web.LOGOUT_COOKIE)
    returned = _query().get("state")
    via_login_gov = bool(expected and returned and expected == returned)
    if not via_login_gov:
        log_event("logout_state_mismatch", logging.WARNING)
    return pages.render("signed_out.html", via_login_gov=via_login_gov,
                        cookies=[web.clear_cookie(web.LOGOUT_COOKIE),
                                 web.clear_cookie(web.SESSION_COOKIE)])


# --- Schedules (chalice local runs none: use `manage.py run-cleanup`) ----------------------

@app.schedule(Rate(5, unit=Rate.MINUTES), name="cleanup_expired_flows")
def cleanup_expired_flows(event):
    # 200 items per run every 5 minutes outpaces peak sign-in traffic; TTL catches the rest.
    set_request_id(_request_id())
    cleanup.cleanup_expired_flows()


@app.schedule(Cron(0, 15, "*", "*", "?", "*"), name="send_institutional_email_reminders")
def send_institutional_email_reminders(event):
    # Daily at 15:00 UTC (10:00 Eastern): during the working day, when people act on mail.
    set_request_id(_request_id())
    reminders.send_institutional_email_reminders()


# --- Login.gov security events (RISC push, RFC 8935) ---------------------------------------

@app.route("/api/security-events", methods=["POST"],
           content_types=["application/secevent+jwt", "application/jwt", "text/plain"])
def receive_security_event():
    set_request_id(_request_id())
    body = (app.current_request.raw_body or b"").decode("ascii", "replace").strip()
    try:
        security_events.handle_security_event(body)
    except security_events.SecurityEventRejected as rejected:
        log_event("security_event_rejected", logging.WARNING, err=rejected.code,
                  detail=rejected.description)
        return Response(json.dumps({"err": rejected.code, "description": rejected.description}),
                        status_code=400, headers={"Content-Type": "application/json"})
    except PynamoDBException:
        # Not accepted: Login.gov retries a delivery that did not get a 202.
        log_event("storage_unavailable", logging.ERROR, exc_info=True)
        return Response(json.dumps({"err": "temporarily_unavailable"}), status_code=503,
                        headers={"Content-Type": "application/json"})
    return Response("", status_code=202)



# --- Recovery and email change -------------------------------------------------------------
# POST bodies are HTML forms; every one carries the session's CSRF token.

FORM = ["application/x-www-form-urlencoded"]
MAX_FORM_FIELDS = 10


def _form() -> dict[str, str]:
    body = app.current_request.raw_body or b""
    if len(body) > get_settings().form_max_bytes:
        raise BadRequest("form body too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("form body unreadable") from None
    return {name: values[0] for name, values in parsed.items()}


def _posted(*, linked: bool):
    """(session, cookie token, form fields) for a POST whose CSRF token is the session's."""
    token = _cookie(web.SESSION_COOKIE)
    session = accounts.signed_in_session(token, linked=linked)
    form = _form()
    sessions.check_csrf(session, form.get("csrf_token"))
    return session, token, form


def _code_page(session, purpose: str, target_email: str | None, action: str) -> dict:
    settings = get_settings()
    return {"signed_in": True, "csrf_token": session.csrf_token, "purpose": purpose,
            "target_email": target_email, "form_action": action,
            "minutes": settings.challenge_ttl // 60,
            "sends_per_hour": settings.code_sends_per_hour}


def _email_page(session, record) -> dict:
    return {"signed_in": True, "csrf_token": session.csrf_token,
            "pending": email_change.pending_change(session),
            **accounts.account_page_context(record)}


@app.route("/link/recover", methods=["GET"])
@page
def link_recover_form():
    session = accounts.signed_in_session(_cookie(web.SESSION_COOKIE), linked=False)
    return pages.render("link_recover.html", signed_in=True, csrf_token=session.csrf_token,
                        login_gov_emails=sessions.session_verified_emails(session))


@app.route("/link/recover", methods=["POST"], content_types=FORM)
@page
def link_recover_send():
    session, _, form = _posted(linked=False)
    try:
        recovery.send_recovery_code(session, form.get("email"))
    except RecoveryEmailInvalid as error:
        return pages.render_error(error, signed_in=True, csrf_token=session.csrf_token)
    # The same answer whether or not the address is a registry address.
    return pages.redirect("/link/recover/verify")


@app.route("/link/recover/verify", methods=["GET"])
@page
def link_recover_code():
    session = accounts.signed_in_session(_cookie(web.SESSION_COOKIE), linked=False)
    target = recovery.pending_target(session)
    if target is None:
        return pages.redirect("/link/recover")
    return pages.render("code_entry.html",
                        **_code_page(session, "recovery", target, "/link/recover/verify"))


@app.route("/link/recover/verify", methods=["POST"], content_types=FORM)
@page
def link_recover_verify():
    session, token, form = _posted(linked=False)
    try:
        done = recovery.complete_recovery(session, token, form.get("code"))
    except WrongCode as error:
        return pages.render_error(error, **_code_page(
            session, "recovery", error.context.get("target_email"), "/link/recover/verify"))
    return pages.redirect("/account", cookies=[
        web.set_cookie(web.SESSION_COOKIE, done.session_token,
                       get_settings().session_absolute_ttl)])


@app.route("/account/email", methods=["GET"])
@page
def account_email_form():
    token = _cookie(web.SESSION_COOKIE)
    session = accounts.signed_in_session(token)
    record = accounts.signed_in_account(session, token)
    return pages.render("account_email.html", **_email_page(session, record))


@app.route("/account/email", methods=["POST"], content_types=FORM)
@page
def account_email_change():
    session, token, form = _posted(linked=True)
    record = accounts.signed_in_account(session, token)
    try:
        change = email_change.parse_change(form.get("change"))
        if change is email_change.Change.REMOVE_SECONDARY:
            applied = email_change.remove_secondary(session, record)
        elif change is email_change.Change.SWAP:
            applied = email_change.swap(session, record)
        else:
            requested = email_change.request_change(
                session, record, change, form.get("email"),
                acknowledged=form.get("acknowledge") == "yes")
            if requested is email_change.Requested.ADVICE:
                return pages.render("email_institutional_advice.html", signed_in=True,
                                    csrf_token=session.csrf_token, change=change.value,
                                    email=form.get("email", "").strip())
            return pages.redirect("/account/email/confirm")
    except NewEmailInvalid as error:
        return pages.render_error(error, **_email_page(session, record))
    return pages.render("email_changed.html", signed_in=True, applied=applied)


@app.route("/account/email/confirm", methods=["GET"])
@page
def account_email_code():
    session = accounts.signed_in_session(_cookie(web.SESSION_COOKIE))
    pending = email_change.pending_change(session)
    if pending is None:
        return pages.redirect("/account/email")
    return pages.render("code_entry.html", **_code_page(
        session, "email_change", pending.new_email, "/account/email/confirm"))


@app.route("/account/email/confirm", methods=["POST"], content_types=FORM)
@page
def account_email_confirm():
    session, token, form = _posted(linked=True)
    record = accounts.signed_in_account(session, token)
    try:
        applied = email_change.confirm_change(session, record, form.get("code"))
    except WrongCode as error:
        return pages.render_error(error, **_code_page(
            session, "email_change", error.context.get("target_email"),
            "/account/email/confirm"))
    return pages.render("email_changed.html", signed_in=True, applied=applied)


@app.route("/account/email/cancel", methods=["POST"], content_types=FORM)
@page
def account_email_cancel():
    session, _, _ = _posted(linked=True)
    email_change.cancel(session)
    return pages.redirect("/account")
