"""Accounts, flows and registry export rows as the tests build them."""

from __future__ import annotations

import time

from chalicelib import store


def make_account(
    nr_number="1000000001",
    primary="dr.alice@example.com",
    secondary=None,
    status="active",
    role="medical_examiner",
    legacy_username="alice1",
    first_name="Alice",
    last_name="Examiner",
    claims=True,
):
    """Create an account and (by default) its email claims, as the import does: the row is
    its imported base, its names are keyed for the console's name search, an address
    another account already holds becomes shared, and a removed account holds no address."""
    from chalicelib import claims as address_claims
    from chalicelib.emails import normalize_email
    from chalicelib.models import AWAITING_LINK, NO_WAVE, Account
    from supportdesk.search_keys import name_keys

    row = {
        "first_name": first_name,
        "last_name": last_name,
        "role": role,
        "status": status,
        "primary_email": primary,
        "secondary_email": secondary,
        "legacy_username": legacy_username,
    }
    keys = name_keys(first_name, last_name, nr_number)
    account = Account(
        nr_number,
        first_name=first_name,
        last_name=last_name,
        role=role,
        status=status,
        primary_email=primary,
        primary_email_normalized=normalize_email(primary),
        secondary_email=secondary,
        secondary_email_normalized=normalize_email(secondary) if secondary else None,
        legacy_username=legacy_username,
        imported=row,
        name_prefix=keys.prefix,
        name_key=keys.key,
        # As the import creates it: never linked, so in the campaign's index.
        awaiting_link=AWAITING_LINK,
        campaign_wave=NO_WAVE,
    )
    account.save()
    for email in account.normalized_emails() if claims and status != "removed" else []:
        tx = store.Transaction()
        address_claims.add_holder(tx, "claim", email, nr_number, address_claims.read(email))
        tx.commit()
    return account


def link(nr_number: str, sub: str):
    """Link as the service does (linking.link_account), returning the fresh account."""
    from chalicelib.linking import LinkMethod, link_account
    from chalicelib.models import Account

    link_account(sub, nr_number, method=LinkMethod.AUTOMATIC)
    return Account.get(nr_number, consistent_read=True)


def stored_under_the_old_rule(nr_number: str, **old_keys: str) -> None:
    """Rewrite an account's stored keys (and its claims) as case folding made them."""
    from chalicelib.models import Account, Claim

    account = Account.get(nr_number)
    for field, key in old_keys.items():
        attribute = getattr(Account, f"{field}_email_normalized")
        current = getattr(account, attribute.attr_name)
        Claim(Claim.email_key(current)).delete()
        Claim(Claim.email_key(key), nr_number=nr_number).save()
        account.update(actions=[attribute.set(key)])


def make_flow(flow_id: str, expires_at: float, *, subject: str | None = None):
    """A send counter (the smallest flow) that expires at `expires_at`."""
    from chalicelib.models import WindowCounter, expiry_bucket

    flow = WindowCounter(
        f"sendcount#{flow_id}",
        expires_at=int(expires_at),
        expiry_bucket=expiry_bucket(int(expires_at)),
        subject=subject,
        created_at=int(time.time()),
        sends=1,
    )
    flow.save()
    return flow


def flow_exists(flow_id: str) -> bool:
    from chalicelib.models import Flow

    try:
        Flow.get(flow_id, consistent_read=True)
    except Flow.DoesNotExist:
        return False
    return True


CSV_HEADER = ",".join(store.CSV_HEADER)


def csv_text(*rows: str) -> str:
    return "\n".join((CSV_HEADER,) + rows) + "\n"


def csv_row(
    nr_number: str,
    primary: str,
    secondary: str = "",
    *,
    first="Pat",
    last="Examiner",
    role="medical_examiner",
    username="",
    status="active",
) -> str:
    return ",".join([nr_number, first, last, role, primary, secondary, username, status])


def mark_invited(nr_number: str, at, waves=(0,)) -> None:
    """The campaign's marks on an account, as a run leaves them (chalicelib.campaign
    _claim_wave): first mailed `at`, the waves mailed, the latest."""
    from chalicelib.models import Account

    Account._get_connection().update_item(
        nr_number,
        actions=[
            Account.campaign_wave.set(max(waves)),
            Account.campaign_waves.set(set(waves)),
            Account.campaign_invited_at.set(at),
        ],
    )


def mail_state(address: str, **fields) -> None:
    """What SES reported of an address (chalicelib.mail_feedback's item): undeliverable_at,
    undeliverable_reason, complained_at (epoch seconds), soft_bounces (a set of epoch strings)."""
    from chalicelib.models import MailState

    MailState(MailState.key(address), **fields).save()
