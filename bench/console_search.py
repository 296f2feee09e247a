"""`make bench` section console_search: the support console's search and person page on a
registry of 93,000 accounts (issue 18: p50 under 100 ms, by index, never a scan).

The registry is written straight into moto's tables (BatchWriteItem): accounts
with their search keys, their addresses' claims (one in 500 addresses shared by two
accounts), one account in four linked (with its Login.gov email on the identity), a few
thousand live sessions, and an audit trail for the accounts measured. Names are drawn
from 400 last names, so a last name matches about 230 accounts (the size of a common
surname's partition in the name index).

Each request goes through the console's routes (console/app.py, Chalice's test client) as a
signed-in viewer. Figures: the p50 of each kind of search and of the person page, and the
DynamoDB requests each makes (the console's own session and staff reads included).

moto answers a Query of a global secondary index by walking the whole table, where
DynamoDB reads one partition: at 93,000 accounts one such Query takes moto about a second
(its server then times requests out), so this section runs moto in-process (mock_aws) and
measures the time spent inside moto apart. The target is checked on the console's own time
(everything but moto: routing, session check, search, rendering) plus 10 ms per DynamoDB
request (a conservative in-region round trip for a GetItem or a one-page Query).

BENCH_CONSOLE_ACCOUNTS=5000 makes the population smaller while developing.
"""

from __future__ import annotations

import os
import random
import statistics
from contextlib import contextmanager
from typing import Any

from chalicelib import clock

ACCOUNTS = int(os.environ.get("BENCH_CONSOLE_ACCOUNTS", "93000"))
PREFIX = "bench-console-"
STAFF_SUB = "0b5e4c1a-93ab-4c0e-8d18-000000000018"  # a Login.gov sub is a UUID
REQUEST_MS = 10  # the estimate of one DynamoDB round trip in-region (conservative)
TARGET_MS = 100
LAST = [
    f"{a}{b}{c}"
    for a in ("Gar", "Mar", "Rob", "Kim", "Ngu", "Smi", "Joh", "Wil", "Bro", "Dav")
    for b in ("ci", "tin", "ert", "son", "yen", "th", "ns", "lia")
    for c in ("a", "ez", "s", "on", "er")
]
FIRST = ["Maria", "James", "Ana", "Wei", "Olga", "Sean", "Fatima", "John", "Lee", "Zoe"]


def number(i: int) -> str:
    return f"{4000000000 + i}"


def _populate(count: int, sample: list[int]) -> None:
    from chalicelib import claims
    from chalicelib.audit import audit_event
    from chalicelib.models import Account, AuditEvent, Claim, Flow, Session, expiry_bucket
    from supportdesk.search_keys import name_keys

    rng = random.Random(18)
    now = clock.utc_now()
    epoch = clock.epoch_seconds()
    shared = {i for i in range(0, count, 500)}  # i and i + 1 share i's address
    with Account.batch_write() as accounts, Claim.batch_write() as claim_items:
        for i in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            nr = number(i)
            primary = (
                f"examiner{i - 1}@example.com" if i - 1 in shared else f"examiner{i}@example.com"
            )
            secondary = f"home{i}@example.org" if i % 3 == 0 else None
            keys = name_keys(first, last, nr)
            linked = i % 4 == 1
            account = Account(
                nr,
                first_name=first,
                last_name=last,
                role="medical_examiner",
                status="active",
                primary_email=primary,
                primary_email_normalized=primary,
                secondary_email=secondary,
                secondary_email_normalized=secondary,
                name_prefix=keys.prefix,
                name_key=keys.key,
            )
            if linked:
                account.linked_sub = f"sub-{i}"
                account.linked_email = f"personal{i}@example.net"
                account.linked_at = now
                claim_items.save(
                    Claim(
                        Claim.sub_key(f"sub-{i}"),
                        nr_number=nr,
                        login_gov_email=f"personal{i}@example.net",
                    )
                )
            accounts.save(account)
            if i - 1 not in shared:
                holders = frozenset({nr, number(i + 1)} if i in shared else {nr})
                claim_items.save(claims._item(primary, holders, i in shared, 1))
            if secondary:
                claim_items.save(claims._item(secondary, frozenset({nr}), False, 1))
    with Flow.batch_write() as flows:
        for i in range(0, count, max(count // 5000, 1)):
            expires = epoch + 1800
            flows.save(
                Session(
                    f"session#bench{i:08d}",
                    subject=f"sub-{i}",
                    nr_number=number(i),
                    created_at=epoch - 60,
                    expires_at=expires,
                    expiry_bucket=expiry_bucket(expires),
                    absolute_expires_at=expires,
                    csrf_token="x",
                )
            )
    with AuditEvent.batch_write() as events:
        for i in sample:
            for name in ("account_imported", "identity_linked", "signin_refused"):
                events.save(audit_event(number(i), name, actor="service"))


# The console's own settings (tests/support/console.py sets the same for the tests).
DESK_ENV = {
    "LOGIN_GOV_ACR_VALUES": "urn:acr.login.gov:auth-only "
    "http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true",
    "LOGIN_GOV_PROMPT": "login",
    "DESK_SESSION_IDLE_SECONDS": "900",
    "DESK_SESSION_ABSOLUTE_SECONDS": "28800",
    "DESK_FRESH_SIGNIN_SECONDS": "600",
    "DESK_SUPERVISOR_CONTACT": "the desk lead",
}


def load_console_app():
    """console/app.py as the module `nrcme_desk_app` (the examiners' app is `app`)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "nrcme_desk_app"
    if name not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "console" / "app.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].app


@contextmanager
def _console():
    """The console's app and a signed-in viewer's cookie, on this section's moto."""
    from chalice.test import Client

    from chalicelib import models
    from supportdesk.console import models as desk_models
    from supportdesk.console import pages, sessions, settings, staff
    from supportdesk.console.desk_audit import Actor

    saved = dict(os.environ)
    os.environ.update({**DESK_ENV, "TABLE_PREFIX": PREFIX})
    settings.reset_desk_settings()
    pages.environment.cache_clear()
    models.use_table_prefix(PREFIX)
    desk_models.use_table_prefix(PREFIX)
    try:
        if not desk_models.DeskItem.exists():
            desk_models.DeskItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        staff.add("viewer@bench.example.gov", "viewer", actor=Actor("ops:bench"), sub=STAFF_SUB)
        token, _ = sessions.create(STAFF_SUB, clock.epoch_seconds())
        with Client(load_console_app()) as client:
            yield client, f"{sessions.COOKIE}={token}"
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.reset_desk_settings()
        pages.environment.cache_clear()


@contextmanager
def _in_process_moto():
    """moto in this process (mock_aws) instead of the bench's server, for this section."""
    from moto import mock_aws

    from chalicelib import models

    endpoint = os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            yield
    finally:
        if endpoint:
            os.environ["AWS_ENDPOINT_URL"] = endpoint
        models.use_table_prefix("bench-")  # clients bound to the server again


def console_search(stack, runs: int) -> list:
    with _in_process_moto():
        return _measure(runs)


def _measure(runs: int) -> list:
    from bench.common import Figure, call_counter, fresh_tables, percentile

    count = ACCOUNTS
    rng = random.Random(93)
    sample = rng.sample(range(2, count - 2), 60)
    fresh_tables(PREFIX)
    began = clock.monotonic()
    _populate(count, sample)
    built = clock.monotonic() - began

    kinds = {
        "number": [number(i) for i in sample],
        "registry email": [f"examiner{i}@example.com" for i in sample],
        "shared email": [f"examiner{i}@example.com" for i in range(0, count - 1, 500)][:60],
        "Login.gov email": [f"personal{i}@example.net" for i in sample if i % 4 == 1]
        or ["personal1@example.net"],
        "name": [f"{rng.choice(LAST).lower()[:4]}" for _ in sample],
        "last, first": [f"{rng.choice(LAST)}, {rng.choice(FIRST)[:2]}" for _ in sample],
    }
    figures = []
    counter = call_counter()
    moto_ms: list[float] = []

    import botocore.client

    counted = botocore.client.BaseClient._make_api_call

    def timed(client, operation, params):  # the time spent in a request to moto
        t0 = clock.monotonic()
        try:
            return counted(client, operation, params)
        finally:
            moto_ms.append((clock.monotonic() - t0) * 1000)

    botocore.client.BaseClient._make_api_call = timed
    try:
        with _console() as (client, cookie):

            def fetch(path: str) -> tuple[float, float, int, bool]:
                counter.clear()
                moto_ms.clear()
                t0 = clock.monotonic()
                response = client.http.get(path, headers={"Cookie": cookie})
                total = (clock.monotonic() - t0) * 1000
                requests = sum(counter.count("dynamodb").values())
                scans = counter.count("dynamodb")["Scan"]
                ok = response.status_code == 200 and scans == 0
                return total, total - sum(moto_ms), requests, ok

            for kind, queries in kinds.items():
                from urllib.parse import urlencode

                rows = [fetch("/search?" + urlencode({"q": q})) for q in queries[: runs * 3]]
                figures.append(_figure(Figure, percentile, f"console search by {kind}", rows))
            rows = [fetch(f"/people/{number(i)}") for i in sample[: runs * 3]]
            figures.append(_figure(Figure, percentile, "console person page", rows))
    finally:
        botocore.client.BaseClient._make_api_call = counted
        counter.uninstall()
    figures[0].detail += f"; {count:,} accounts written in {built:.0f} s"
    return figures


def _figure(Figure, percentile, name: str, rows: list) -> Any:
    totals = [r[0] for r in rows]
    own = [r[1] for r in rows]
    requests = statistics.median(r[2] for r in rows)
    estimate = percentile(own, 0.5) + requests * REQUEST_MS
    ok = all(r[3] for r in rows) and estimate < TARGET_MS
    return Figure(
        f"{name}: p50 ms (console + {REQUEST_MS} ms per request)",
        round(estimate),
        f"< {TARGET_MS}",
        ok,
        f"{requests:g} DynamoDB requests (session and staff reads included), no Scan; "
        f"console's own p50 {percentile(own, 0.5):.1f} ms; against moto {percentile(totals, 0.5):.0f}"
        f" / p95 {percentile(totals, 0.95):.0f} ms ({ACCOUNTS:,} accounts; moto walks the table "
        f"for an index query); n={len(rows)}",
    )
