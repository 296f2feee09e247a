"""Scheduled clean-up of expired flows (sign-in states, sessions, challenges, send counters).

DynamoDB TTL deletes expired items eventually (typically within 48 hours), and every read
of a flow checks `expires_at` itself, so this job is housekeeping, not security: it keeps
the table and the by_subject index small between TTL sweeps.

It reads ONLY expired items: for each hourly `expiry_bucket` from LOOKBACK_HOURS ago up to
the current hour it queries the by_expiry index for `expires_at <= now` — no scan. Each run
handles at most `batch_size` items (default CLEANUP_BATCH_SIZE) and says whether more
remain; the next run continues, oldest hour first.

Every delete is conditional on `expires_at <= now`: the index is eventually consistent, and
a session refreshed since it was read (sessions.py moves `expires_at` and `expiry_bucket`
together) must survive. A delete that finds the item gone or refreshed counts as
`skipped`, so two runs at once are harmless. That condition is why this is one DeleteItem
per item, not BatchWriteItem (which takes no conditions).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from pynamodb.exceptions import DeleteError

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.logs import log_event
from chalicelib.models import Flow, expiry_bucket
from chalicelib.store import condition_failed

# TTL may lag up to 48 h; look a day further back. Older leftovers are TTL's to remove.
LOOKBACK_HOURS = 72
_HOUR = 3600


@dataclass(frozen=True)
class CleanupSummary:
    items_read: int  # items the index returned (all of them expired when read)
    deleted: int
    skipped: int  # gone or refreshed before our delete: another run, or a live session
    more_remaining: bool  # the run stopped at its bound; run again to continue
    buckets_queried: int

    def as_dict(self) -> dict:
        return asdict(self)


def expiry_buckets(now: float, lookback_hours: int = LOOKBACK_HOURS) -> list[str]:
    """The hourly buckets from `lookback_hours` before `now` to now's hour, oldest first."""
    current = int(now) // _HOUR
    return [expiry_bucket(hour * _HOUR) for hour in range(current - lookback_hours, current + 1)]


def _delete_if_expired(flow_id: str, now: float) -> bool:
    """Delete one flow if it is still expired; False if it was gone or refreshed."""
    try:
        Flow(flow_id).delete(condition=Flow.expires_at <= now)
    except DeleteError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def cleanup_expired_flows(
    now: float | None = None, batch_size: int | None = None, lookback_hours: int = LOOKBACK_HOURS
) -> CleanupSummary:
    """Delete up to `batch_size` expired flows; logs one `cleanup_finished` line."""
    now = clock.now() if now is None else now
    limit = batch_size if batch_size is not None else get_settings().cleanup_batch_size
    if limit < 1:
        raise ValueError("batch_size must be at least 1")
    read = deleted = skipped = buckets = 0
    more = False
    error: str | None = None
    try:
        for bucket in expiry_buckets(now, lookback_hours):
            if read >= limit:
                more = True  # buckets left unread
                break
            buckets += 1
            # The index projects keys and `kind` only: enough to know what to delete.
            expired = Flow.by_expiry.query(bucket, Flow.expires_at <= now, limit=limit - read)
            for item in expired:
                read += 1
                if _delete_if_expired(item.flow_id, now):
                    deleted += 1
                else:
                    skipped += 1
            if read >= limit and expired.last_evaluated_key is not None:
                more = True  # this bucket has more than we may handle this run
                break
    except Exception as exc:
        error = type(exc).__name__
        more = True
        raise
    finally:
        if error:
            log_event(
                "cleanup_finished",
                logging.ERROR,
                read=read,
                deleted=deleted,
                skipped=skipped,
                more=more,
                error=error,
            )
        else:
            log_event("cleanup_finished", read=read, deleted=deleted, skipped=skipped, more=more)
    return CleanupSummary(
        items_read=read,
        deleted=deleted,
        skipped=skipped,
        more_remaining=more,
        buckets_queried=buckets,
    )
