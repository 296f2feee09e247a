"""The keys the support console searches names by (index by_name on the accounts table), one
rule for the registry import that writes them, `manage.py backfill-search-keys` that writes
them on older accounts, and the search that reads them.

A name is matched, never shown, in its normalized form: compatibility-decomposed (NFKD),
accents and other combining marks dropped, case-folded, and only letters and digits kept,
so "García-López", "garcia lopez" and "GARCIALOPEZ" are one key and "O'Brien" is "obrien".
Pages show the names as the registry stored them. (Emails are never normalized like this:
chalicelib.emails keeps distinct mailboxes distinct; a name search only finds candidates,
and the person page shows the stored record.)

- `name_key`: "<last> <first> <nr_number>" (normalized last and first names): the index's
  sort key. A search is begins_with on it: "garcia" finds every Garcia, "garcia ma" Maria
  and Marco Garcia. The registry number makes each key unique and sorts namesakes.
- `name_prefix`: the first two characters of the normalized last name (the first name
  stands in for a missing last name): the index's partition key. A search needs at least that
  many letters, which keeps every Query inside one partition.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the import reads no table: these are for the annotations only
    from pynamodb.connection import TableConnection
    from pynamodb.expressions.update import Action

    from chalicelib.models import Account

PREFIX_LENGTH = 2


def fold(text: str | None) -> str:
    """A name part as it is matched: no accents, case-folded, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in kept.casefold() if ch.isalnum())


@dataclass(frozen=True)
class NameKeys:
    prefix: str | None
    key: str | None

    def actions(self, model: type[Account]) -> list[Action]:
        """PynamoDB update actions that give an item of `model` (Account) these keys."""
        return [
            model.name_prefix.set(self.prefix) if self.prefix else model.name_prefix.remove(),
            model.name_key.set(self.key) if self.key else model.name_key.remove(),
        ]


def name_keys(first_name: str | None, last_name: str | None, nr_number: str) -> NameKeys:
    """The by_name keys of an account. None for both when the name has no letter at all (the
    account is then found by number or email only)."""
    words = [part for part in (fold(last_name), fold(first_name)) if part]
    if not words:
        return NameKeys(None, None)
    # No last name: the first name stands in its place (a search starts with it).
    return NameKeys(words[0][:PREFIX_LENGTH], " ".join([*words, nr_number]))


def keys_of(account: Account) -> NameKeys:
    """The keys an account should carry, from its stored names."""
    return name_keys(account.first_name, account.last_name, account.nr_number)


# --- manage.py backfill-search-keys ---------------------------------------------------------------


@dataclass
class Backfill:
    """What `backfill_search_keys` did; running it again writes only what is still missing."""

    accounts_read: int = 0
    name_keys_written: int = 0
    name_keys_current: int = 0
    login_gov_keys_written: int = 0
    login_gov_keys_current: int = 0
    changed_meanwhile: int = 0  # a name or link changed between the read and the write
    pages: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def backfill_search_keys(*, page_size: int = 500) -> Backfill:
    """Give every account the console's search keys: its name keys (accounts table) and, when
    linked, its identity's Login.gov email key (the `sub#` item). For accounts and links made
    before the console's search; new ones get them when written. Idempotent: an item whose
    keys are current is not written. Reads the accounts table page by page (a Scan: a one-off
    operation, never a search), then each page's linked identities (BatchGetItem)."""
    from chalicelib.models import Account

    result = Backfill()
    # Not Model.update: it bumps the version, which would refuse a link or an email change
    # racing the backfill for no reason. The names as read are the condition instead; the
    # model's own table connection (its endpoint, region and timeouts).
    accounts = Account._get_connection()
    page: list = []
    for account in Account.scan(page_size=page_size):
        page.append(account)
        if len(page) == page_size:
            _backfill_page(page, accounts, result)
            page = []
    if page:
        _backfill_page(page, accounts, result)
    return result


def _backfill_page(page: list[Account], accounts: TableConnection, result: Backfill) -> None:
    from pynamodb.exceptions import UpdateError

    from chalicelib.emails import try_normalize_email
    from chalicelib.models import Account, Claim
    from chalicelib.store import as_read, condition_failed

    result.pages += 1
    result.accounts_read += len(page)
    for account in page:
        keys = keys_of(account)
        if (keys.prefix, keys.key) == (account.name_prefix, account.name_key):
            result.name_keys_current += 1
            continue
        try:
            accounts.update_item(
                account.nr_number,
                actions=keys.actions(Account),
                condition=Account.nr_number.exists()
                & as_read(Account.first_name, account.first_name)
                & as_read(Account.last_name, account.last_name),
            )
            result.name_keys_written += 1
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            result.changed_meanwhile += 1  # renamed meanwhile: that write set the keys
    linked = {a.linked_sub: a for a in page if a.linked_sub}
    identities = Claim.batch_get([Claim.sub_key(s) for s in linked], consistent_read=True)
    for identity in identities:
        account = linked[identity.claim[len(Claim.SUB_PREFIX) :]]
        wanted = try_normalize_email(account.linked_email)
        if identity.nr_number != account.nr_number or identity.login_gov_email == wanted:
            result.login_gov_keys_current += 1
            continue
        action = Claim.login_gov_email.set(wanted) if wanted else Claim.login_gov_email.remove()
        try:
            # Only while it still names this account: an unlink meanwhile removed the link.
            Claim(identity.claim).update(
                actions=[action], condition=Claim.nr_number == account.nr_number
            )
            result.login_gov_keys_written += 1
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            result.changed_meanwhile += 1
