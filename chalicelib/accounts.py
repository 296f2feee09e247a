"""Reading registry accounts for the signed-in person: the account page's view of a record."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib import sessions, store
from chalicelib.config import get_settings
from chalicelib.emails import is_institutional
from chalicelib.errors import (
    AccountInactive,
    AlreadyLinked,
    IdentityDisabled,
    NotLinkedYet,
    NotSignedIn,
)
from chalicelib.models import Account, Session

ROLE_LABELS = {
    "medical_examiner": "Certified medical examiner",
    "assistant": "Administrative assistant",
    "third_party": "Third-party organization",
    "administrator": "Registry administrator",
}


def signed_in_session(token: str | None) -> Session:
    """The live session for this cookie, or NotSignedIn."""
    session = sessions.load_session(token)
    if session is None:
        raise NotSignedIn("no live session")
    return session


def require_link_state(session: Session, *, linked: bool | None) -> None:
    """linked=True: the session must hold a registry account; False: it must not (the
    recovery pages); None: either. A session holding no account is refused (and ended)
    while Login.gov says its identity is disabled; one holding an account is checked
    against the account (signed_in_account)."""
    if linked is True and not session.nr_number:
        raise NotLinkedYet("signed in, no registry account linked")
    if linked is False and session.nr_number:
        raise AlreadyLinked("signed in and already linked")
    if not session.nr_number:
        refuse_if_disabled(session)


def refuse_if_disabled(session: Session) -> None:
    """A session with no account (no match, recovery) whose identity Login.gov disabled:
    one a sign-in racing the account-disabled event wrote after the event ended the
    identity's sessions. One read of the identity's `sub#` item."""
    identity = store.identity_claim(session.subject)
    if identity is not None and identity.disabled:
        # A disabled Login.gov account must not send recovery codes or link a record.
        session.delete()
        raise IdentityDisabled("Login.gov disabled this identity", sub=session.subject)


def signed_in_account(session: Session, token: str | None) -> Account:
    """The session's account, which must still exist, be active and be linked to this identity."""
    try:
        account = Account.get(session.nr_number, consistent_read=True)
    except DoesNotExist:
        sessions.end_session(token)
        raise NotSignedIn("account no longer exists") from None
    if account.linked_sub != session.subject:
        # Unlinked by support or by a Login.gov account-purged event since sign-in.
        sessions.end_session(token)
        raise NotSignedIn("account no longer linked to this identity")
    if account.login_gov_disabled:
        # A session a sign-in wrote while the account-disabled event was being handled.
        sessions.end_session(token)
        raise IdentityDisabled(
            "Login.gov disabled this identity",
            sub=session.subject,
            nr_number=account.nr_number,
        )
    if account.status != "active":
        sessions.end_session(token)
        raise AccountInactive(
            f"account is {account.status}", status_name=account.status, nr_number=account.nr_number
        )
    return account


def account_page_context(account: Account) -> dict:
    from chalicelib import mail_feedback

    return {
        "account": account,
        "role_label": ROLE_LABELS.get(account.role, account.role),
        "institutional_primary": is_institutional(account.primary_email_normalized),
        "login_gov_account_url": get_settings().login_gov_account_url,
        # Shown to the signed-in owner only (the recovery page never tells: no oracle).
        "undeliverable_emails": mail_feedback.undeliverable(
            [
                shown
                for shown in (account.primary_email, account.secondary_email)
                if shown is not None
            ]
        ),
    }


def take_link_notice(session: Session) -> bool:
    """True once after a link: the account page says so, then forgets it."""
    if session.notice != "linked":
        return False
    sessions.clear_notice(session)
    return True
