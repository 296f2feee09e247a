"""The console's search (issue 18, item 2): one box for a registry number, any registry email
(primary, secondary, shared, once-shared), the linked Login.gov email, or a name prefix;
by index, never a Scan, in a bounded number of requests."""

from __future__ import annotations

import html
import re

import pytest

from chalicelib import linking
from chalicelib.models import Account
from supportdesk import desk
from tests.support.accounts import make_account
from tests.support.console import signed_in

VIEWER = "viewer@desk.example.gov"
SEARCH_TABLES = ("accounts", "claims")


@pytest.fixture
def viewer(desk_browser):
    return signed_in(desk_browser, VIEWER, "viewer")


def results(page) -> list[dict]:
    """The result rows of a search page: number, name, primary, status, link, found by."""
    assert page.status == 200, page.body[:300]
    body = (
        page.body.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page.body else ""
    )
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td>(.*?)</td>", row, re.S)
        ]
        link = re.search(r'href="/people/(\d+)"', row)
        rows.append(
            {
                "nr_number": cells[0],
                "name": cells[1],
                "primary": cells[2],
                "status": cells[3],
                "link": cells[4],
                "how": cells[5],
                "href": link.group(1) if link else None,
            }
        )
    return rows


def numbers(page) -> list[str]:
    return [row["nr_number"] for row in results(page)]


def search(browser, text: str):
    from urllib.parse import urlencode

    return browser.get("/search?" + urlencode({"q": text}))


def search_requests(calls) -> list[tuple[str, str]]:
    """(operation, table) of the search's own requests (the console's session and staff
    reads, on the desk table, are every page's)."""
    from localdev.aws_calls import targets

    return [
        (
            c.operation,
            table.rsplit("-", 1)[-1]
            + ("/" + c.params["IndexName"] if c.params.get("IndexName") else ""),
        )
        for c in calls.calls
        if c.service == "dynamodb"
        for table in {t for t, _ in targets(c.operation, c.params)}
        or {c.params.get("TableName", "")}
        if table.rsplit("-", 1)[-1] in SEARCH_TABLES
    ]


# --- by number ------------------------------------------------------------------------------


def test_a_registry_number_finds_its_account_with_one_get(viewer, calls):
    make_account("1000000001", "dr.alice@example.com", first_name="Alice", last_name="Moreno")
    calls.clear()
    page = search(viewer, " 1000000001 ")
    assert results(page) == [
        {
            "nr_number": "1000000001",
            "name": "Alice Moreno",
            "primary": "dr.alice@example.com",
            "status": "active",
            "link": "not linked",
            "how": "registry number",
            "href": "1000000001",
        }
    ]
    assert search_requests(calls) == [("GetItem", "accounts")]
    assert "Scan" not in calls.operations()


def test_a_number_that_is_no_account_or_not_ten_digits_says_so(viewer):
    assert "No account has this registry number" in search(viewer, "1000000099").body
    page = search(viewer, "12345")
    assert "A registry number is exactly 10 digits" in page.body and results(page) == []


# --- by email -------------------------------------------------------------------------------


def test_a_shared_address_lists_every_holder_and_how_each_holds_it(viewer, calls):
    make_account("1000000006", "shared.office@example.com", first_name="Fay", last_name="Ode")
    make_account(
        "1000000007",
        "grace.kim@example.org",
        secondary="Shared.Office@example.com",
        first_name="Grace",
        last_name="Kim",
    )
    make_account("1000000008", "other@example.com")
    calls.clear()
    page = search(viewer, "SHARED.OFFICE@example.com")
    rows = results(page)
    assert [(r["nr_number"], r["how"]) for r in rows] == [
        ("1000000006", "primary email (shared)"),
        ("1000000007", "secondary email (shared)"),
    ]
    assert [r["href"] for r in rows] == ["1000000006", "1000000007"]
    # The claim, the Login.gov email index, then the accounts: no Scan.
    assert search_requests(calls) == [
        ("GetItem", "claims"),
        ("Query", "claims/by_login_gov_email"),
        ("BatchGetItem", "accounts"),
    ]
    assert "Scan" not in calls.operations()


def test_a_once_shared_address_finds_the_one_account_left(viewer):
    make_account("1000000011", "front.desk@clinic.example.com")
    make_account("1000000012", "front.desk@clinic.example.com")
    desk.set_email(
        "1000000011",
        slot="primary",
        address="ivan.petrov@example.com",
        reason="ticket 9: his own address",
        actor="lead",
    )
    rows = results(search(viewer, "front.desk@clinic.example.com"))
    assert [(r["nr_number"], r["how"]) for r in rows] == [
        ("1000000012", "primary email (once-shared)")
    ]


def test_the_linked_login_gov_email_finds_the_account_until_it_is_unlinked(viewer, calls):
    make_account("1000000010", "dana.ruiz@va.gov", first_name="Dana", last_name="Ruiz")
    linking.link_account(
        "sub-dana",
        "1000000010",
        method=linking.LinkMethod.RECOVERY,
        matched="dana.ruiz@va.gov",
        login_gov_email="Dana.Personal@example.net",
    )
    calls.clear()
    rows = results(search(viewer, "dana.personal@EXAMPLE.net"))
    assert [(r["nr_number"], r["link"], r["how"]) for r in rows] == [
        ("1000000010", "linked", "Login.gov email of the link")
    ]
    assert "Scan" not in calls.operations()
    desk.unlink("1000000010", reason="ticket 3: lost it", actor="lead", mode="lost-account")
    page = search(viewer, "dana.personal@example.net")
    assert results(page) == []
    assert "A removed account holds no address — search by number or name." in page.body


def test_a_removed_account_holds_no_address_so_its_email_finds_nothing(viewer):
    make_account("1000000005", "eve.walsh@example.org", status="removed", last_name="Walsh")
    page = search(viewer, "eve.walsh@example.org")
    assert results(page) == []
    assert "No account holds this address" in page.body
    assert "A removed account holds no address — search by number or name." in page.body
    # ... and it is found by its name.
    assert numbers(search(viewer, "walsh")) == ["1000000005"]


def test_text_with_an_at_sign_that_is_no_address_says_so(viewer):
    assert "not a usable email address" in search(viewer, "someone@").body


# --- by name --------------------------------------------------------------------------------


@pytest.fixture
def people():
    make_account("1000000021", "m1@example.com", first_name="María José", last_name="García-López")
    make_account("1000000022", "m2@example.com", first_name="Marco", last_name="GARCIA")
    make_account("1000000023", "m3@example.com", first_name="Ana", last_name="de la Cruz")
    make_account("1000000024", "m4@example.com", first_name="Seán", last_name="O'Brien")
    make_account("1000000025", "m5@example.com", first_name="Garcia", last_name="Smith")


@pytest.mark.parametrize(
    "query, found",
    [
        ("garcia", ["1000000022", "1000000021"]),  # "garcia m…" sorts before "garcialopez …"
        ("GARCÍA", ["1000000022", "1000000021"]),
        ("García-López", ["1000000021"]),
        ("garcia lopez", ["1000000021"]),
        ("garcia-lopez, maria", ["1000000021"]),
        ("garcia, marco", ["1000000022"]),
        ("garcia,", ["1000000022"]),  # exactly that last name
        ("garcia ma", ["1000000022"]),  # last name, then the start of a first name
        ("marco garcia", ["1000000022"]),  # first name, then the last name
        ("de la cruz", ["1000000023"]),
        ("DELACRUZ", ["1000000023"]),
        ("o'brien", ["1000000024"]),
        ("OBrien Sean", ["1000000024"]),
        ("smith", ["1000000025"]),
        ("lopez", []),  # a prefix of the last name, not a word inside it
    ],
)
def test_a_name_prefix_matches_without_accents_case_or_punctuation(viewer, people, query, found):
    assert numbers(search(viewer, query)) == found


def test_names_are_shown_as_stored(viewer, people):
    (row,) = results(search(viewer, "garcia lopez"))
    assert row["name"] == "María José García-López" and row["how"] == "name"


def test_a_name_search_is_at_most_three_queries_of_the_name_index(viewer, people, calls):
    for query in ("garcia", "garcia ma", "maria jose garcia lopez", "garcia, m"):
        calls.clear()
        search(viewer, query)
        asked = search_requests(calls)
        assert asked and len(asked) <= 3, (query, asked)
        assert set(asked) == {("Query", "accounts/by_name")}, (query, asked)
        assert "Scan" not in calls.operations()


def test_one_letter_is_not_a_search(viewer, people, calls):
    calls.clear()
    page = search(viewer, "g")
    assert "Type at least two letters" in page.body and results(page) == []
    assert search_requests(calls) == []


def test_many_matches_show_the_first_page_and_ask_for_more_letters(viewer):
    from supportdesk.console.search import MAX_RESULTS

    for i in range(MAX_RESULTS + 3):
        make_account(
            f"10000001{i:02d}", f"p{i}@example.com", first_name=f"Pat{i:02d}", last_name="Lee"
        )
    page = search(viewer, "lee")
    assert len(results(page)) == MAX_RESULTS
    assert "More people match than are shown" in page.body


def test_an_import_keys_names_and_keeps_them_with_a_renaming(viewer, cli, tmp_path):
    from tests.support.accounts import csv_row, csv_text

    path = tmp_path / "registry.csv"
    path.write_text(csv_text(csv_row("1000000031", "zoe@example.com", first="Zoë", last="Ngô")))
    assert cli("import-accounts", str(path))[0] == 0
    assert numbers(search(viewer, "ngo zoe")) == ["1000000031"]
    path.write_text(csv_text(csv_row("1000000031", "zoe@example.com", first="Zoë", last="Adébayo")))
    assert cli("import-accounts", str(path))[0] == 0
    assert numbers(search(viewer, "ngo")) == []
    assert numbers(search(viewer, "adebayo")) == ["1000000031"]


# --- what a result shows, and who may search ------------------------------------------------


def test_a_result_shows_the_link_state_and_status(viewer):
    make_account("1000000041", "a@example.com", last_name="Quinn", status="disabled")
    make_account("1000000042", "b@example.com", last_name="Quinn")
    linking.link_account("sub-b", "1000000042", method=linking.LinkMethod.AUTOMATIC)
    rows = results(search(viewer, "quinn"))
    assert [(r["nr_number"], r["status"], r["link"]) for r in rows] == [
        ("1000000041", "disabled", "not linked"),
        ("1000000042", "active", "linked"),
    ]


def test_hostile_names_and_addresses_are_shown_escaped(viewer):
    hostile = "<script>alert(1)</script>\u202e"
    make_account("1000000051", "x@example.com", first_name=hostile, last_name="Evil<b>")
    Account.get("1000000051").update(actions=[Account.primary_email.set('"<img src=x>"@e.com')])
    for query in ("evil", "1000000051"):
        page = search(viewer, query)
        assert "<script>alert(1)" not in page.body and "&lt;script&gt;" in page.body
        assert "<img src=x>" not in page.body and "<b>" not in page.body.split("<main")[1]
        assert "\u202e" not in page.body and "\\u202e" in page.body
    page = search(viewer, "<script>@x")
    assert "<script>@x" not in page.body and "&lt;script&gt;@x" in page.body


def test_the_backfill_gives_older_accounts_and_links_their_search_keys(viewer, cli, calls):
    make_account("1000000061", "old@example.com", first_name="Olde", last_name="Tymer")
    linking.link_account(
        "sub-old",
        "1000000061",
        method=linking.LinkMethod.AUTOMATIC,
        matched="old@example.com",
        login_gov_email="old.personal@example.net",
    )
    # As written before the console's search: no name keys, no Login.gov email key.
    from chalicelib.models import Claim

    Account.get("1000000061").update(
        actions=[Account.name_prefix.remove(), Account.name_key.remove()]
    )
    Claim.get(Claim.sub_key("sub-old")).update(actions=[Claim.login_gov_email.remove()])
    assert numbers(search(viewer, "tymer")) == []
    assert numbers(search(viewer, "old.personal@example.net")) == []

    code, out, err = cli("backfill-search-keys")
    assert code == 0, err
    assert "Name keys: 1 written" in out and "Login.gov email keys: 1 written" in out
    assert numbers(search(viewer, "tymer")) == ["1000000061"]
    assert numbers(search(viewer, "old.personal@example.net")) == ["1000000061"]
    # Idempotent: a second run writes nothing.
    calls.clear()
    code, out, _ = cli("backfill-search-keys")
    assert code == 0 and "Name keys: 0 written, 1 already current" in out
    assert calls.count_targeting("UpdateItem") == 0
