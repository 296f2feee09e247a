"""`manage.py campaign backfill`: put accounts that existed before the campaign's index
(chalicelib.campaign) into it. Once per stage, after deploying the index; safe to rerun.

The import sets `awaiting_link` on every account it creates and linking and unlinking keep
it right; only accounts created before that carry none. One filtered scan (the only one the
campaign ever needs), then one conditional update per account found: a link committing in
between wins (the condition fails, the account stays out).
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.models import AWAITING_LINK, NO_WAVE, Account
from chalicelib.store import condition_failed


def backfill() -> dict:
    found = added = raced = 0
    missing = Account.linked_sub.does_not_exist() & Account.awaiting_link.does_not_exist()
    for account in Account.scan(missing, attributes_to_get=["nr_number"], page_size=500):
        found += 1
        try:
            # No version: bookkeeping, as the campaign writes it (a link in flight wins).
            Account._get_connection().update_item(
                account.nr_number,
                actions=[
                    Account.awaiting_link.set(AWAITING_LINK),
                    Account.campaign_wave.set(Account.campaign_wave | NO_WAVE),
                ],
                condition=missing & Account.nr_number.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            raced += 1
            continue
        added += 1
    return {"found": found, "added": added, "linked_meanwhile": raced}
