"""Delivering a one-time code: the one place a code, its send allowance and its mail meet.

chalicelib.onetime_codes issues and checks codes, chalicelib.send_limits counts sends,
chalicelib.outbox queues the mail; this joins them so that none of the three imports
another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import onetime_codes, outbox
from chalicelib.config import get_settings
from chalicelib.errors import MailNotQueued
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.onetime_codes import Binding, Purpose
from chalicelib.send_limits import SendReservation, give_back


def send_code(
    binding: Binding,
    reservation: SendReservation,
    *,
    to: str,
    template: str,
    nr_number: str | None,
    target_email: str,
    target_normalized: str,
    details: dict | None = None,
    **mail_context: Any,
) -> None:
    """Create the challenge and queue its mail; if the outbox does not take it, undo both
    (MailNotQueued).

    While an account's recovery is paused (too many wrong codes today,
    chalicelib.guess_limits) a recovery send becomes a decoy: a challenge no code
    verifies, and no mail, exactly what an address that is no registry address gets.
    """
    if binding.purpose is Purpose.RECOVERY and reservation.recovery_paused:
        log_event(
            "recovery_code_suppressed", nr_number=nr_number, subject=keyed_hash(binding.subject)
        )
        count("RecoveryCodeSuppressed")
        send_without_code(
            binding,
            reservation,
            to=to,
            template=template,
            target_email=target_email,
            target_normalized=target_normalized,
            **mail_context,
        )
        return
    code = onetime_codes.create_challenge(
        binding,
        nr_number=nr_number,
        target_email=target_email,
        target_normalized=target_normalized,
        details=details,
    )
    _queue(
        binding,
        reservation,
        lambda: outbox.enqueue(
            template, to, code=code, minutes=get_settings().challenge_ttl // 60, **mail_context
        ),
    )


def send_without_code(
    binding: Binding,
    reservation: SendReservation,
    *,
    to: str,
    template: str,
    target_email: str,
    target_normalized: str,
    notice: str | None = None,
    **mail_context: Any,
) -> None:
    """What a send costs, with no code that could verify: a decoy challenge, and in the
    place of the code's mail either a decoy message (`template`'s, which the outbox worker
    drops) or `notice`, a real mail that holds no code (why no code was sent).

    The same requests in the same order as send_code, failure included: a stranger must
    not learn from the answer, or its cost, which one it was.
    """
    onetime_codes.create_challenge(
        binding,
        nr_number=None,
        target_email=target_email,
        target_normalized=target_normalized,
        decoy=True,
    )
    if notice is None:
        _queue(
            binding,
            reservation,
            lambda: outbox.enqueue_decoy(
                template,
                to,
                code="0" * onetime_codes.CODE_DIGITS,
                minutes=get_settings().challenge_ttl // 60,
                **mail_context,
            ),
        )
    else:
        _queue(binding, reservation, lambda: outbox.enqueue(notice, to, **mail_context))


def _queue(binding: Binding, reservation: SendReservation, enqueue: Callable[[], None]) -> None:
    """Queue the mail; if the outbox does not take it, give the allowance back and discard
    the challenge (a failed send is not the person's fault, and leaves no dead code)."""
    try:
        enqueue()
    except MailNotQueued:
        give_back(reservation)
        onetime_codes.discard(binding)
        raise
