"""Stored email keys the normalization rule would change: `manage.py check-email-keys`.

The rule (chalicelib.emails) once case-folded the local part, which merged different
mailboxes (`baſhir` and `bashir`). Keys written then — an account's `*_email_normalized`
and the `email#<key>` claim that names it — are not what the rule gives today for the
address as the account holds it. Such an address no longer links or recovers until it is
re-keyed, and its old key may still block the real owner of that key.

This check is read-only: it scans the accounts (support desk only, never the service),
recomputes each address's key, and for each one that differs says who holds the stored
key and the new key, and which other accounts use either, so support can re-key safely:
move the claim when the new key is free, and sort out a conflict by hand first.
"""

from __future__ import annotations

from collections import defaultdict

from chalicelib import claims
from chalicelib.emails import try_normalize_email
from chalicelib.models import Account

FIELDS = ("primary", "secondary")
_ATTRIBUTES = [
    "nr_number",
    "primary_email",
    "primary_email_normalized",
    "secondary_email",
    "secondary_email_normalized",
]


def check_email_keys() -> dict:
    """{"accounts_checked": n, "changes": [one dict per address whose key would change]}."""
    checked = 0
    addresses = []  # (nr_number, field, email, stored key, new key)
    users_of_stored: dict[str, set[str]] = defaultdict(set)
    users_of_new: dict[str, set[str]] = defaultdict(set)
    for account in Account.scan(attributes_to_get=_ATTRIBUTES):
        checked += 1
        for field in FIELDS:
            email = getattr(account, f"{field}_email")
            stored = getattr(account, f"{field}_email_normalized")
            if not email and not stored:
                continue
            new = try_normalize_email(email)
            addresses.append((account.nr_number, field, email, stored, new))
            if stored:
                users_of_stored[stored].add(account.nr_number)
            if new:
                users_of_new[new].add(account.nr_number)

    changed = [a for a in addresses if a[3] != a[4]]
    found = claims.read_many({key for a in changed for key in (a[3], a[4]) if key})

    def holders(key: str | None) -> str | None:
        claim = found.get(key) if key else None
        return ",".join(sorted(claim.holders)) if claim else None

    rows = []
    for nr_number, field, email, stored, new in sorted(changed, key=lambda a: (a[0], a[1])):
        new_holder = holders(new)
        rows.append(
            {
                "nr_number": nr_number,
                "field": field,
                "email": email,
                "stored_key": stored,
                "new_key": new,  # None: the address is no longer a valid address
                "stored_key_holder": holders(stored),
                "new_key_holder": new_holder,
                "stored_key_also_used_by": sorted(users_of_stored.get(stored, set()) - {nr_number}),
                "new_key_also_used_by": sorted(
                    (users_of_new.get(new, set()) if new else set()) - {nr_number}
                ),
                # Another account's claim on the new key: re-keying would fail or take it.
                "conflict": new is None or new_holder not in (None, nr_number),
            }
        )
    return {"accounts_checked": checked, "changes": rows}
