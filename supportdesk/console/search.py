"""The console's search: one box, and what it finds. By index, never by scanning a table.

What the text is decides how it is looked up:

- 10 digits: a registry number, one GetItem.
- an email address: the `email#` claim of that address (one GetItem: every account that
  lists it as primary or secondary, shared and once-shared included), and the linked
  identities that shared it as their Login.gov email (one Query of the claims table's
  index by_login_gov_email); then the accounts, one BatchGetItem. A removed account holds
  no address (chalicelib.claims), so it is found by number or name, never by email.
- anything else, at least two letters: a name (supportdesk.search_keys): a begins_with
  Query of the accounts table's index by_name per reading of the words: "garcia" a last
  name; "garcia ma" or "garcia, ma" a last name and the start of a first name; "maria
  garcia" a first name then a last name; "de la cruz" a last name in several words. At
  most three Queries, each one page of MAX_RESULTS.

Results are rows (number, name, primary email, status, link state, why it matched), at most
MAX_RESULTS; `more` says there were more, and the page asks for a longer name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib import claims, store
from chalicelib.emails import InvalidEmail, normalize_email
from chalicelib.models import Account, Claim
from supportdesk.search_keys import PREFIX_LENGTH, fold

MAX_RESULTS = 25
MAX_QUERY_LENGTH = 254
MAX_NAME_WORDS = 6


class Kind(StrEnum):
    NUMBER = "number"
    EMAIL = "email"
    NAME = "name"


@dataclass(frozen=True)
class Match:
    """One account found, as its result row shows it."""

    nr_number: str
    first_name: str
    last_name: str
    primary_email: str
    status: str
    linked: bool
    how: tuple[str, ...] = ()  # why it matched: "primary email (shared)", "Login.gov email"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class Results:
    query: str
    kind: Kind | None = None
    matches: list[Match] = field(default_factory=list)
    more: bool = False  # more than MAX_RESULTS matched: the page asks for more letters
    problem: str | None = None  # the query cannot be searched, and why (shown as typed)


def search(text: str | None) -> Results:
    """Find the accounts `text` names (see the module docstring)."""
    query = " ".join((text or "").split())[:MAX_QUERY_LENGTH]
    if not query:
        return Results(query, problem="Type a registry number, an email address or a name.")
    if query.isdigit():
        if not store.is_registry_number(query):
            return Results(query, Kind.NUMBER, problem="A registry number is exactly 10 digits.")
        return _by_number(query)
    if "@" in query:
        try:
            return _by_email(query, normalize_email(query))
        except InvalidEmail:
            return Results(query, Kind.EMAIL, problem="That is not a usable email address.")
    return _by_name(query)


def _match(account: Account, how: tuple[str, ...] = ()) -> Match:
    return Match(
        nr_number=account.nr_number,
        first_name=account.first_name or "",
        last_name=account.last_name or "",
        primary_email=account.primary_email or "",
        status=account.status or "",
        linked=account.linked_at is not None or bool(getattr(account, "linked_sub", None)),
        how=how,
    )


def _by_number(number: str) -> Results:
    account = store.get_account(number)
    return Results(number, Kind.NUMBER, [_match(account, ("registry number",))] if account else [])


def _by_email(query: str, address: str) -> Results:
    claim = claims.read(address)
    linked = [
        item.nr_number
        for item in Claim.by_login_gov_email.query(address, limit=MAX_RESULTS + 1)
        if item.nr_number
    ]
    numbers = sorted(set(claim.holders if claim else ()) | set(linked))
    found = {a.nr_number: a for a in Account.batch_get(numbers[:MAX_RESULTS])} if numbers else {}
    matches = []
    for number in numbers[:MAX_RESULTS]:
        account = found.get(number)
        if account is None:
            continue  # a claim naming no account: the invariants forbid it; nothing to show
        how = []
        if claim is not None and claim.names(number):
            slot = "primary" if account.primary_email_normalized == address else "secondary"
            state = " (shared)" if claim.contested else " (once-shared)" if claim.shared else ""
            how.append(f"{slot} email{state}")
        if number in linked:
            how.append("Login.gov email of the link")
        matches.append(_match(account, tuple(how)))
    return Results(query, Kind.EMAIL, matches, more=len(numbers) > MAX_RESULTS)


def name_readings(query: str) -> list[str]:
    """The begins_with prefixes a name query is read as (see the module docstring), each
    with at least PREFIX_LENGTH letters before its first space; [] when none has."""
    if "," in query:
        last, _, first = query.partition(",")
        last_key, first_key = fold(last), fold(first)
        # "garcia," is that last name exactly; "garcia, ma" also a first name starting "ma".
        readings = [f"{last_key} {first_key}" if first_key else f"{last_key} "]
    else:
        words = [fold(word) for word in query.split()][:MAX_NAME_WORDS]
        words = [word for word in words if word]
        readings = ["".join(words)]  # a last name, in one word or several ("de la cruz")
        if len(words) > 1:
            readings.append(f"{''.join(words[:-1])} {words[-1]}")  # last name, first name
            readings.append(f"{''.join(words[1:])} {words[0]}")  # first name, last name
    unique = dict.fromkeys(r for r in readings if len(r.split(" ", 1)[0]) >= PREFIX_LENGTH)
    return list(unique)


def _by_name(query: str) -> Results:
    readings = name_readings(query)
    if not readings:
        return Results(
            query,
            Kind.NAME,
            problem="Type at least two letters of the last name (or a number or an email).",
        )
    found: dict[str, Account] = {}
    more = False
    for prefix in readings:
        page = Account.by_name.query(
            prefix[:PREFIX_LENGTH],
            Account.name_key.startswith(prefix),
            limit=MAX_RESULTS + 1,
        )
        items = list(page)
        more = more or len(items) > MAX_RESULTS
        for account in items[:MAX_RESULTS]:
            found.setdefault(account.nr_number, account)
    ordered = sorted(found.values(), key=lambda a: a.name_key or "")
    matches = [_match(account, ("name",)) for account in ordered[:MAX_RESULTS]]
    return Results(query, Kind.NAME, matches, more=more or len(ordered) > MAX_RESULTS)
