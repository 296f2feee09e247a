"""`make bench`, section `campaign`: the migration campaign (chalicelib.campaign) on a
93,000-account registry in moto, as bench/run.py's Stack runs it.

The registry: 60% linked (out of the campaign's sparse index), 40% never linked, of which a
few are removed, disabled or hold only a shared address. Figures:

- a day's run at the default cap (CAMPAIGN_MAX_SENDS_PER_RUN, 2,000 mails): its time, and
  AWS requests per mail queued (DynamoDB and SQS together);
- the whole wave, run to the end: items read per never-linked account (index items and the
  address items of the BatchGetItem), and linked accounts read (0: the index holds none);
- a rerun the same day: mails queued (0) and index items read (only the skipped ones).

moto is far slower than DynamoDB per request (an HTTP round trip into a Python server), so
the times are upper bounds for Lambda's 15 minutes, not predictions.
"""

from __future__ import annotations

import os
from datetime import timedelta

from chalicelib import clock

ACCOUNTS = 93_000
WAVE_ACCOUNTS = 3_000
NEVER_LINKED_SHARE = 0.4
PREFIX = "bench-campaign-"


def _seed(accounts: int) -> dict[str, int]:
    """The registry, written with BatchWriteItem; returns how many of each kind."""
    from chalicelib.models import AWAITING_LINK, NO_WAVE, Account, Claim

    kinds = {"linked": 0, "never_linked": 0, "removed": 0, "disabled": 0, "shared": 0}
    with Account.batch_write() as accounts_batch, Claim.batch_write() as claims_batch:
        for i in range(accounts):
            number = f"3{i:09d}"
            address = f"examiner{i:06d}@example.com"
            never_linked = i % 10 < NEVER_LINKED_SHARE * 10
            status, shared = "active", False
            if never_linked:
                if i % 1000 == 1:
                    status = "removed"
                elif i % 1000 == 2:
                    status = "disabled"
                elif i % 1000 == 3:
                    shared = True
            account = Account(
                number,
                first_name="Pat",
                last_name=f"Examiner{i}",
                role="medical_examiner",
                status=status,
                primary_email=address,
                primary_email_normalized=address,
                version=1,
            )
            if never_linked:
                account.awaiting_link = AWAITING_LINK
                account.campaign_wave = NO_WAVE
                kinds["never_linked"] += 1
                kinds[status] = kinds.get(status, 0) + (status != "active")
                kinds["shared"] += shared
            else:
                account.linked_sub = f"sub-{i}"
                kinds["linked"] += 1
            accounts_batch.save(account)
            if status != "removed":
                claim = Claim(Claim.email_key(address), holders={number}, revision=1)
                if shared:
                    claim.shared = True
                else:
                    claim.nr_number = number
                claims_batch.save(claim)
    return kinds


def _batch_get_keys(counter) -> int:
    return sum(
        len(request["Keys"])
        for params in counter.params("BatchGetItem")
        for request in params["RequestItems"].values()
    )


def campaign(stack, runs: int, accounts: int = ACCOUNTS, wave_accounts: int = WAVE_ACCOUNTS):
    from bench.common import Figure, call_counter, fresh_tables
    from chalicelib import campaign as campaign_module
    from chalicelib.config import get_settings, reset_settings
    from chalicelib.models import Account

    # moto's index query sorts the whole table on every page (seconds at 93,000 items);
    # DynamoDB answers in milliseconds. Only the bench waits longer for it.
    timeout = Account.Meta.read_timeout_seconds
    Account.Meta.read_timeout_seconds = 120
    os.environ["CAMPAIGN_DEADLINE"] = (clock.utc_now().date() + timedelta(days=90)).isoformat()
    # moto under load answers slower than the outbox's 2 s: a refused batch is only retried.
    os.environ["OUTBOX_READ_TIMEOUT_MS"] = "20000"
    reset_settings()
    cap = get_settings().campaign_max_sends_per_run
    counter = call_counter()
    try:
        # A day's run on the whole registry.
        fresh_tables(PREFIX + "day-")
        started = clock.monotonic()
        kinds = _seed(accounts)
        seeded = clock.monotonic() - started
        counter.clear()
        t0 = clock.monotonic()
        day = campaign_module.run()
        day_seconds = clock.monotonic() - t0
        day_requests = counter.total("dynamodb") + counter.total("sqs")
        linked_read = day.skipped["linked"]

        # A whole wave to its end (as many runs as it takes: moto is slow enough to meet
        # the run's time budget), then a rerun, on a smaller registry (moto's query time grows
        # with the table; the ratios do not).
        fresh_tables(PREFIX + "wave-")
        small = _seed(wave_accounts)
        counter.clear()
        t0 = clock.monotonic()
        wave_runs, wave_read, wave_sent = 0, 0, 0
        while wave_runs < 20:
            wave = campaign_module.run(limit=10**9)
            wave_runs += 1
            wave_read += wave.read
            wave_sent += wave.sent
            if not (wave.more_remaining or wave.not_queued):
                break
        wave_seconds = clock.monotonic() - t0
        keys = _batch_get_keys(counter)
        wave_requests = counter.total("dynamodb") + counter.total("sqs")
        counter.clear()
        rerun = campaign_module.run(limit=10**9)
        rerun_requests = counter.total("dynamodb") + counter.total("sqs")
    finally:
        counter.uninstall()
        Account.Meta.read_timeout_seconds = timeout
        os.environ.pop("CAMPAIGN_DEADLINE", None)
        os.environ.pop("OUTBOX_READ_TIMEOUT_MS", None)
        reset_settings()
        fresh_tables("bench-")
    never = small["never_linked"]
    skipped = small["removed"] + small["disabled"] + small["shared"]
    per_mail = day_requests / max(day.sent, 1)
    return [
        Figure(
            f"campaign: a day's run ({cap:,} mails; {accounts:,} accounts, "
            f"{kinds['never_linked']:,} never linked): seconds",
            round(day_seconds, 1),
            "≤ 900",
            day_seconds <= 900 and day.sent == cap,
            f"{day.sent} queued, {day.read} index items read, {linked_read} linked; in moto, "
            f"an upper bound (seeding took {seeded:.0f} s)",
        ),
        Figure(
            "campaign: AWS requests per mail queued (a day's run)",
            round(per_mail, 2),
            "≤ 1.5",
            per_mail <= 1.5,
            f"{day_requests} requests (DynamoDB + SQS) for {day.sent} mails",
        ),
        Figure(
            f"campaign: index items read per never-linked account (a whole wave, "
            f"{wave_accounts:,} accounts)",
            round(wave_read / never, 3),
            "≤ 1.05",
            wave_read <= 1.05 * never and wave_sent == never - skipped,
            f"{wave_read} read for {never:,} never linked ({wave_accounts - never:,} linked: "
            f"none read) in {wave_runs} run(s); {wave_sent:,} mailed, {skipped} skipped; "
            f"{wave_requests} requests, {wave_seconds:.0f} s",
        ),
        Figure(
            "campaign: address items read per never-linked account (claim + mail state)",
            round(keys / never, 2),
            "≤ 2",
            keys / never <= 2,
            f"{keys} keys in BatchGetItem, one address each",
        ),
        Figure(
            "campaign: a rerun the same day: mails queued",
            rerun.sent,
            "0",
            rerun.sent == 0 and rerun.read == skipped,
            f"{rerun.read} index items read (the {skipped} skipped), {rerun_requests} requests",
        ),
    ]
