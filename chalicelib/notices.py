"""Security notices: mail that tells a registry account's owner something changed.

- After any link (automatic or recovered), the account's primary and secondary addresses
  hear that a Login.gov account is now linked, so a wrong link is noticed by its owner.
- After an email change, the address that stopped being (or was never before) where we
  write, hears of it: the old primary or secondary, or the primary when a secondary is added.
- When wrong recovery codes for an account reach the day's cap (chalicelib.guess_limits),
  the account's addresses hear that linking by code is paused, and why.
- When a recovery code is asked for a shared or once-shared address, that mailbox hears
  that the address cannot link and that each person should call the support desk
  (SHARED_ADDRESS_NOTICE, queued by chalicelib.recovery: never on the page).

Each address gets its own message, showing only its own address (an old address must not
learn the new one). Notices are queued in the outbox (chalicelib.outbox) after the change
committed, and are best-effort: a notice the outbox does not take is logged and counted
(`notice_not_sent`, metric NoticeNotSent) and never turns a finished change into an error
page.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib import outbox
from chalicelib.config import get_settings
from chalicelib.errors import MailNotQueued
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.models import Account

LINK_NOTICE = "link_notice"
EMAIL_CHANGED_NOTICE = "email_changed_notice"
RECOVERY_PAUSED_NOTICE = "recovery_paused_notice"
# Queued by chalicelib.recovery in the place of a code (the same request a code costs): a
# shared or once-shared address proves nobody, and only its mailbox may learn why.
SHARED_ADDRESS_NOTICE = "shared_address_notice"


def send_link_notice(nr_number: str, account: Account | None = None) -> bool:
    """Tell every address on the account that it is now linked to a Login.gov account."""
    try:
        if account is None:
            account = Account.get(nr_number, consistent_read=True)
        recipients = _distinct([account.primary_email, account.secondary_email])
        _send(recipients, LINK_NOTICE, account=account)
    # A blanket catch on purpose: the link has committed; nothing about its notice may turn
    # a finished sign-in into an error page. The failure is logged and counted instead.
    except Exception as exc:  # noqa: BLE001
        _not_sent(LINK_NOTICE, nr_number, exc)
        return False
    return True


def send_email_changed_notice(
    to: str, account: Account, *, change: str, old_email: str | None, new_email: str | None
) -> bool:
    """Tell `to` that the account's emails changed (`change` names which way)."""
    try:
        _send(
            [to],
            EMAIL_CHANGED_NOTICE,
            account=account,
            change=change,
            old_email=old_email,
            new_email_hint=mask_email(new_email),
        )
    except Exception as exc:  # noqa: BLE001 - as above: the change has committed
        _not_sent(EMAIL_CHANGED_NOTICE, account.nr_number, exc)
        return False
    return True


def send_recovery_paused_notice(account: Account) -> bool:
    """Tell every address on the account that too many wrong recovery codes paused linking
    by code for 24 hours: the owner learns of an attack, or why their own codes stopped."""
    try:
        recipients = _distinct([account.primary_email, account.secondary_email])
        _send(
            recipients,
            RECOVERY_PAUSED_NOTICE,
            account=account,
            cap=get_settings().recovery_failed_guesses_per_account_per_day,
        )
    except Exception as exc:  # noqa: BLE001 - as above: the pause holds whatever the mail does
        _not_sent(RECOVERY_PAUSED_NOTICE, account.nr_number, exc)
        return False
    return True


def send_recovery_paused(account: Account | None, decoy_to: str | None) -> None:
    """Tell of a recovery pause (a guess_limits.PauseStarted): the account's addresses, or
    for a decoy's pause the same message as a decoy to `decoy_to`, so both cost the same
    request. Best-effort: the pause holds whatever the mail does."""
    if account is not None:
        send_recovery_paused_notice(account)
    elif decoy_to is not None:
        try:
            outbox.enqueue_decoy(
                RECOVERY_PAUSED_NOTICE,
                decoy_to,
                account={"nr_number": "0" * 10, "first_name": ""},
                cap=get_settings().recovery_failed_guesses_per_account_per_day,
            )
        except MailNotQueued:
            pass  # as for a real pause notice: nothing to tell anyone, nothing to undo


def _send(recipients: list[str], template: str, **context: Any) -> None:
    outbox.enqueue_each(template, recipients, **context)
    log_event("notice_queued", notice=template, to=[keyed_hash(r) for r in recipients])


def _not_sent(template: str, nr_number: str, exc: Exception) -> None:
    # The class name only: an exception's text or traceback may carry an address.
    reason = exc.context.get("reason") if isinstance(exc, MailNotQueued) else None
    log_event(
        "notice_not_sent",
        logging.WARNING,
        notice=template,
        nr_number=nr_number,
        error=exc.__class__.__name__,
        reason=reason,
    )
    count("NoticeNotSent", notice=template)


def _distinct(addresses: list[str | None]) -> list[str]:
    seen, result = set(), []
    for address in addresses:
        if address and address.lower() not in seen:
            seen.add(address.lower())
            result.append(address)
    return result


def mask_email(address: str | None) -> str:
    """`p•••@example.com`: enough for the owner to recognise, not to hand an old (perhaps
    an employer's) mailbox the person's new address."""
    if not address or "@" not in address:
        return ""
    local, domain = address.rsplit("@", 1)
    return f"{local[:1]}•••@{domain}"
