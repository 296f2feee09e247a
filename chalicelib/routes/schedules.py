"""Scheduled functions (chalice local runs none: use `manage.py run-cleanup`,
`manage.py send-reminders` and `manage.py campaign run`)."""

from __future__ import annotations

from chalice import Blueprint, Cron, Rate

bp = Blueprint(__name__)


@bp.schedule(Rate(5, unit=Rate.MINUTES), name="cleanup_expired_flows")
def cleanup_expired_flows(event):
    from chalicelib import cleanup

    # 200 items per run every 5 minutes outpaces peak sign-in traffic; TTL catches the rest.
    cleanup.cleanup_expired_flows()


@bp.schedule(Cron(0, 15, "*", "*", "?", "*"), name="send_institutional_email_reminders")
def send_institutional_email_reminders(event):
    from chalicelib import reminders

    # Daily at 15:00 UTC (10:00 Eastern): during the working day, when people act on mail.
    reminders.send_institutional_email_reminders()


@bp.schedule(Cron(0, 14, "*", "*", "?", "*"), name="run_campaign")
def run_campaign(event):
    from chalicelib import campaign

    # Daily at 14:00 UTC (campaign.RUN_HOUR): invitations and reminders before the deadline.
    campaign.run()
