"""Sign-in: the landing page, /login, the Login.gov callback, and signing out."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge, login_gov, pages, sessions, signin, web
from chalicelib.config import get_settings

bp = Blueprint(__name__)


@bp.route("/")
@edge.page
def landing():
    session = edge.optional_session()  # one read, and only with a session cookie
    return pages.render(
        "landing.html", signed_in=session is not None, linked=bool(session and session.nr_number)
    )


@bp.route("/login")
@edge.page
def login():
    started = signin.start_signin(edge.query().get("return_to"))
    # Cookie bombing by repetition: past a few sign-ins in flight the oldest cookies go, so
    # the Cookie header never outgrows API Gateway's limit (each also expires with its state).
    cookies = [web.clear_cookie(name) for name in edge.stale_signin_cookies()]
    cookie_name = web.signin_cookie(started.state)
    if cookie_name is None:
        raise ValueError("start_signin made a state signin_cookie refuses")  # a bug of ours
    cookies.append(
        web.set_cookie(
            cookie_name,
            web.signin_cookie_value(started.browser_binding),
            get_settings().signin_state_ttl,
        )
    )
    return pages.redirect(started.authorization_url, cookies=cookies)


@bp.route("/auth/callback")
@edge.page
def auth_callback():
    params = edge.query()
    done = signin.complete_signin(
        params,
        edge.signin_binding(params.get("state")),
        session_token=edge.cookie(web.SESSION_COOKIE),
    )
    # This sign-in's binding has done its work; a new session replaces the cookie, if any.
    binding_cookie = web.signin_cookie(params.get("state"))
    cookies = [web.clear_cookie(binding_cookie)] if binding_cookie else []
    if done.session_token:
        cookies.append(
            web.set_cookie(
                web.SESSION_COOKIE, done.session_token, get_settings().session_absolute_ttl
            )
        )
    return pages.redirect(done.redirect_to, cookies=cookies)


@bp.route("/logout")
@edge.page
def logout():
    sessions.end_session(edge.cookie(web.SESSION_COOKIE))
    state = login_gov.random_token()
    return pages.redirect(
        login_gov.build_logout_url(state),
        cookies=[
            web.clear_cookie(web.SESSION_COOKIE),
            web.set_cookie(web.LOGOUT_COOKIE, state, 600),
        ],
    )


@bp.route("/signed-out")
@edge.page
def signed_out():
    via_login_gov = signin.finish_logout(
        edge.cookie(web.SESSION_COOKIE),
        expected_state=edge.cookie(web.LOGOUT_COOKIE),
        returned_state=edge.query().get("state"),
    )
    return pages.render(
        "signed_out.html",
        via_login_gov=via_login_gov,
        cookies=[web.clear_cookie(web.LOGOUT_COOKIE), web.clear_cookie(web.SESSION_COOKIE)],
    )
