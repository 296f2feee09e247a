"""Signing in and out of the console (every route PUBLIC: they run without a session)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge, login_gov, web
from chalicelib import signin as shared_signin
from chalicelib.config import get_settings
from chalicelib.errors import SignInError
from supportdesk.console import pages, sessions
from supportdesk.console import signin as desk_signin
from supportdesk.console.edge import HOME, access, optional_member, render
from supportdesk.console.permissions import Open
from supportdesk.console.settings import desk_settings

bp = Blueprint(__name__)


@bp.route("/")
@access(Open.PUBLIC)
def landing():
    if optional_member() is not None:
        return pages.redirect(HOME)
    return render("landing.html")


@bp.route("/login")
@access(Open.PUBLIC)
def login():
    started = desk_signin.start(edge.query().get("return_to"))
    binding_cookie = web.signin_cookie(started.state)
    if binding_cookie is None:  # a state of our own making always names its cookie
        raise SignInError("sign-in state without a cookie name")
    # At most a few sign-ins in flight per browser (chalicelib.web.stale_signin_cookies).
    cookies = [web.clear_cookie(name) for name in edge.stale_signin_cookies()]
    cookies.append(
        web.set_cookie(
            binding_cookie,
            web.signin_cookie_value(started.browser_binding),
            get_settings().signin_state_ttl,
        )
    )
    return pages.redirect(started.authorization_url, cookies=cookies)


@bp.route("/auth/callback")
@access(Open.PUBLIC)
def auth_callback():
    params = edge.query()
    done = desk_signin.complete(params, edge.signin_binding(params.get("state")))
    # A new session replaces any this browser had: one staff member, one session.
    sessions.end(edge.cookie(sessions.COOKIE))
    binding_cookie = web.signin_cookie(params.get("state"))
    cookies = [web.clear_cookie(binding_cookie)] if binding_cookie else []
    cookies.append(
        web.set_cookie(
            sessions.COOKIE, done.session_token, desk_settings().session_absolute_seconds
        )
    )
    return pages.redirect(done.redirect_to, cookies=cookies)


@bp.route("/logout", methods=["POST"], content_types=edge.FORM)
@access(Open.PUBLIC)  # a session that has already ended can still press "Sign out"
def logout():
    """End the console session, then offer Login.gov's sign-out as a link."""
    token = edge.cookie(sessions.COOKIE)
    session = sessions.load(token)
    if session is not None:
        # Logout CSRF: another site must not sign a staff member out mid-task.
        sessions.check_csrf(session, edge.form().get("csrf_token"))
    sessions.end(token)
    state = login_gov.random_token()
    return render(
        "signed_out.html",
        staff=None,
        via_login_gov=False,
        login_gov_logout_url=login_gov.build_logout_url(state),
        cookies=[
            web.clear_cookie(sessions.COOKIE),
            web.set_cookie(sessions.LOGOUT_COOKIE, state, 600),
        ],
    )


@bp.route("/signed-out")
@access(Open.PUBLIC)
def signed_out():
    """Where Login.gov's sign-out sends the browser back."""
    sessions.end(edge.cookie(sessions.COOKIE))
    via_login_gov = shared_signin.finish_logout(
        None,
        expected_state=edge.cookie(sessions.LOGOUT_COOKIE),
        returned_state=edge.query().get("state"),
    )
    return render(
        "signed_out.html",
        via_login_gov=via_login_gov,
        cookies=[web.clear_cookie(sessions.LOGOUT_COOKIE), web.clear_cookie(sessions.COOKIE)],
    )
