"""Linking by a registry email: the no-match page, sending a code, entering it."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge, pages, sessions, web
from chalicelib.config import get_settings
from chalicelib.logs import keyed_hash, log_event, support_reference

bp = Blueprint(__name__)


@bp.route("/link/no-match")
@edge.page
def link_no_match():
    session = edge.signed_in(linked=None)
    # A refusal page reached by redirect: this line is what its support reference finds,
    # and its subject leads to the sign-in that was refused (manage.py trace).
    log_event("link_no_match_shown", subject=keyed_hash(session.subject))
    return pages.render(
        "link_no_match.html",
        signed_in=True,
        linked=bool(session.nr_number),
        csrf_token=session.csrf_token,
        reference=support_reference(),
    )


@bp.route("/link/recover", methods=["GET"])
@edge.page
def link_recover_form():
    session = edge.signed_in(linked=False)
    return pages.render(
        "link_recover.html",
        signed_in=True,
        linked=False,
        csrf_token=session.csrf_token,
        login_gov_emails=sessions.session_verified_emails(session),
    )


@bp.route("/link/recover", methods=["POST"], content_types=edge.FORM)
@edge.page
def link_recover_send():
    from chalicelib import recovery

    session, form = edge.posted(linked=False)
    recovery.send_recovery_code(session, form.get("email"))
    # The same answer whether or not the address is a registry address.
    return pages.redirect("/link/recover/verify")


@bp.route("/link/recover/verify", methods=["GET"])
@edge.page
def link_recover_code():
    from chalicelib import recovery

    session = edge.signed_in(linked=False)
    target = recovery.pending_target(session)
    if target is None:
        return pages.redirect("/link/recover")
    return pages.render("code_entry.html", **edge.code_page_context("recovery", target))


@bp.route("/link/recover/verify", methods=["POST"], content_types=edge.FORM)
@edge.page
def link_recover_verify():
    from chalicelib import recovery

    session, form = edge.posted(linked=False)
    done = recovery.complete_recovery(session, edge.session_token(), form.get("code"))
    return pages.redirect(
        "/account",
        cookies=[
            web.set_cookie(
                web.SESSION_COOKIE, done.session_token, get_settings().session_absolute_ttl
            )
        ],
    )
