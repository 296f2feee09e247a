"""The signed-in person's account: the account page and email changes."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import accounts, edge, pages
from chalicelib.config import get_settings
from chalicelib.errors import ServiceError
from chalicelib.models import Account, Session

bp = Blueprint(__name__)


def _email_page_context(session: Session, record: Account) -> dict:
    from chalicelib import email_change  # the account pages only: keeps /login's imports small

    return email_change.email_page_context(session, record)


def _email_form(current: edge.RequestState, error: ServiceError) -> dict:
    """The email page again, for an email change refused (pages.ERROR_RESPONSES)."""
    if current.session is None or current.account is None:
        return {}  # the email page is only reached signed in
    return _email_page_context(current.session, current.account)


edge.register_form("email", _email_form)


@bp.route("/account")
@edge.page
def account():
    session = edge.signed_in()
    record = edge.signed_in_account()
    just_linked = accounts.take_link_notice(session)
    return pages.render(
        "account_page.html", just_linked=just_linked, **_email_page_context(session, record)
    )


@bp.route("/account/email", methods=["GET"])
@edge.page
def account_email_form():
    session = edge.signed_in()
    record = edge.signed_in_account()
    return pages.render("account_email.html", **_email_page_context(session, record))


@bp.route("/account/email", methods=["POST"], content_types=edge.FORM)
@edge.page
def account_email_change():
    from chalicelib import email_change

    session, form = edge.posted(linked=True)
    record = edge.signed_in_account()
    outcome = email_change.submit(
        session,
        record,
        change=form.get("change"),
        email=form.get("email"),
        acknowledged=form.get("acknowledge") == "yes",
        confirmed=form.get("confirm") == "yes",
    )
    if outcome is email_change.Requested.CONFIRM:
        return pages.render(
            "email_change_confirm.html",
            signed_in=True,
            csrf_token=session.csrf_token,
            change=form.get("change"),
            account=record,
        )
    if outcome is email_change.Requested.ADVICE:
        return pages.render(
            "email_institutional_advice.html",
            signed_in=True,
            csrf_token=session.csrf_token,
            change=form.get("change"),
            email=form.get("email", "").strip(),
        )
    if outcome is email_change.Requested.CODE_SENT:
        return pages.redirect("/account/email/confirm")
    return _changed(record, outcome)


@bp.route("/account/email/confirm", methods=["GET"])
@edge.page
def account_email_code():
    from chalicelib import email_change

    session = edge.signed_in()
    pending = email_change.pending_change(session)
    if pending is None:
        return pages.redirect("/account/email")
    return pages.render(
        "code_entry.html", **edge.code_page_context("email_change", pending.new_email)
    )


@bp.route("/account/email/confirm", methods=["POST"], content_types=edge.FORM)
@edge.page
def account_email_confirm():
    from chalicelib import email_change

    session, form = edge.posted(linked=True)
    record = edge.signed_in_account()
    applied = email_change.confirm_change(session, record, form.get("code"))
    return _changed(record, applied)


def _changed(record, applied):
    # Login.gov keeps its own addresses: the page says to change them there too.
    return pages.render(
        "email_changed.html",
        signed_in=True,
        applied=applied,
        linked_email=record.linked_email,
        login_gov_account_url=get_settings().login_gov_account_url,
    )


@bp.route("/account/email/cancel", methods=["POST"], content_types=edge.FORM)
@edge.page
def account_email_cancel():
    from chalicelib import email_change

    session, _ = edge.posted(linked=True)
    email_change.cancel(session)
    return pages.redirect("/account")
