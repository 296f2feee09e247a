"""Delivering a one-time code: the one place a code, its send allowance and its mail meet.

chalicelib.onetime_codes issues and checks codes, chalicelib.send_limits counts sends,
chalicelib.outbox queues the mail; this joins them so that none of the three imports
another.
"""
from __future__ import annotations

from chalicelib import onetime_codes, outbox
from chalicelib.config import get_settings
from chalicelib.errors import MailNotQueued
from chalicelib.logs import count, keyed_hash, log_event
from chalicelib.onetime_codes import Binding, Purpose
from chalicelib.send_limits import SendReservation, give_back


def send_code(binding: Binding, reservation: SendReservation, *, to: str, template: str,
              nr_number: str | None, target_email: str, target_normalized: str,
              details: dict | None = None, **mail_context) -> None:
    """Create the challenge and queue its mail; if the outbox does not take it, undo both
    (MailNotQueued).

    A failed send is not the person's fault: their allowance comes back and no dead code
    is left behind. While an account's recovery is paused (too many wrong codes today,
    chalicelib.guess_limits) a recovery send becomes a decoy: a challenge no code
    verifies, and no mail, exactly what an address that is no registry address gets.
    """
    if binding.purpose is Purpose.RECOVERY and reservation.recovery_paused:
        onetime_codes.create_challenge(binding, nr_number=None, target_email=target_email,
                                       target_normalized=target_normalized, decoy=True)
        outbox.enqueue_decoy(template, to, code="0" * onetime_codes.CODE_DIGITS,
                             minutes=get_settings().challenge_ttl // 60, **mail_context)
        log_event("recovery_code_suppressed", nr_number=nr_number,
                  subject=keyed_hash(binding.subject))
        count("RecoveryCodeSuppressed")
        return
    code = onetime_codes.create_challenge(binding, nr_number=nr_number,
                                          target_email=target_email,
                                          target_normalized=target_normalized, details=details)
    try:
        outbox.enqueue(template, to, code=code, minutes=get_settings().challenge_ttl // 60,
                       **mail_context)
    except MailNotQueued:
        give_back(reservation)
        onetime_codes.discard(binding)
        raise
