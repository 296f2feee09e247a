"""A removed examiner is told so (issue 19, item 6): an address that only an account the
registry removed held, and that nobody holds now, signs in to "your registry account is no
longer active — contact support", not to "no account found" and a recovery form whose
code never arrives. Imports go through the registry import; the lifecycle invariants hold
after each step (a `removed#` marker only on an address nobody holds, naming removed
accounts only)."""

from __future__ import annotations

import pytest

from chalicelib import config
from chalicelib.models import Account, Claim
from supportdesk.registry_sync import import_accounts, validate_text
from tests.invariants import assert_invariants
from tests.support.accounts import csv_row, csv_text
from tests.support.browser import Browser, csrf_of, request_recovery, signed_in_unmatched

REMOVED_PAGE = "Your registry account is no longer active"
NO_MATCH = "/link/no-match"


@pytest.fixture
def support(monkeypatch):
    monkeypatch.setenv("SUPPORT_PHONE", "(202) 555-0177")
    monkeypatch.setenv("SUPPORT_EMAIL", "desk@registry.example.gov")
    config.reset_settings()
    yield
    config.reset_settings()


def registry(*rows: str) -> None:
    import_accounts(validate_text(csv_text(*rows)))
    assert_invariants()


def marker(address: str) -> set[str] | None:
    try:
        return set(Claim.get(Claim.removed_key(address), consistent_read=True).holders or ())
    except Claim.DoesNotExist:
        return None


def test_an_address_a_removal_released_signs_in_to_the_no_longer_active_page(browser, support):
    registry(csv_row("1000000001", "gone@example.com", "Gone.Home@example.org"))
    registry(csv_row("1000000001", "gone@example.com", "Gone.Home@example.org", status="removed"))
    assert marker("gone@example.com") == marker("gone.home@example.org") == {"1000000001"}
    for address in ("gone@example.com", "GONE.HOME@example.org"):
        person = Browser(browser.client, browser.idp)
        page = person.sign_in([address])
        assert page.status == 403, page
        assert REMOVED_PAGE in page.body and "contact the National Registry support desk" in (
            page.body
        )
        assert "(202) 555-0177" in page.body and "mailto:desk@registry.example.gov" in page.body
        assert 'href="/help#removed"' in page.body
        assert "could not find" not in page.body and 'action="/link/recover"' not in page.body
        assert "nr_session" not in person.cookies  # no session, no recovery form behind it
    assert Account.get("1000000001").linked_sub is None
    help_page = browser.get("/help")
    assert 'id="removed"' in help_page.body and REMOVED_PAGE in help_page.body
    assert_invariants()


def test_a_row_that_arrives_removed_marks_its_addresses_too(browser):
    registry(csv_row("1000000002", "never.here@example.com", status="removed"))
    assert REMOVED_PAGE in browser.sign_in(["never.here@example.com"]).body


def test_an_address_someone_else_holds_links_them_and_its_marker_goes(browser):
    registry(csv_row("1000000001", "renumbered@example.com"))
    registry(csv_row("1000000001", "renumbered@example.com", status="removed"))
    # The registry gives the address to the person's new number: it proves that one.
    registry(
        csv_row("1000000001", "renumbered@example.com", status="removed"),
        csv_row("1000000003", "renumbered@example.com"),
    )
    assert marker("renumbered@example.com") is None
    assert browser.sign_in(["renumbered@example.com"]).location == "/account"
    assert Account.get("1000000003").linked_sub is not None


def test_a_re_activated_account_takes_its_address_back_and_links(browser):
    registry(csv_row("1000000004", "back@example.com"))
    registry(csv_row("1000000004", "back@example.com", status="removed"))
    registry(csv_row("1000000004", "back@example.com"))
    assert marker("back@example.com") is None
    assert browser.sign_in(["back@example.com"]).location == "/account"


def test_an_address_removed_while_shared_is_not_marked_while_its_other_holder_has_it(browser):
    registry(
        csv_row("1000000005", "office@example.com"),
        csv_row("1000000006", "office@example.com", "own@example.com"),
    )
    registry(
        csv_row("1000000005", "office@example.com", status="removed"),
        csv_row("1000000006", "office@example.com", "own@example.com"),
    )
    assert marker("office@example.com") is None  # 1000000006 still holds it
    assert browser.sign_in(["office@example.com"]).status == 409  # still shared: no link


def test_the_recovery_form_answers_a_removed_address_as_an_unknown_one(app_client, idp, mailbox):
    """A stranger (a Login.gov identity that does not own the address) learns nothing: the
    same answer and code page as for an address nobody ever had, and no mail."""
    registry(csv_row("1000000007", "gone@example.com"))
    registry(csv_row("1000000007", "gone@example.com", status="removed"))
    pages = {}
    for email in ("gone@example.com", "nobody@example.com"):
        stranger = Browser(app_client, idp)
        form = signed_in_unmatched(stranger, "stranger@example.net")
        answer = request_recovery(stranger, email, form)
        code_page = stranger.get(answer.location)
        pages[email] = (
            answer.status,
            answer.location,
            code_page.body.replace(email, "X").replace(csrf_of(code_page), "T"),
        )
    assert pages["gone@example.com"] == pages["nobody@example.com"]
    assert mailbox.to("gone@example.com") == []


def test_an_email_change_to_a_removed_address_takes_it_and_drops_the_marker(browser, mailbox):
    from supportdesk import desk

    registry(csv_row("1000000008", "gone@example.com"), csv_row("1000000009", "kim@example.com"))
    registry(
        csv_row("1000000008", "gone@example.com", status="removed"),
        csv_row("1000000009", "kim@example.com"),
    )
    desk.set_email(
        "1000000009", slot="secondary", address="gone@example.com", reason="t 1", actor="tester"
    )
    assert marker("gone@example.com") is None
    assert_invariants()
    assert browser.sign_in(["gone@example.com"]).location == "/account"


def test_a_re_activated_account_with_new_addresses_leaves_no_marker_on_its_old_ones(browser):
    registry(csv_row("1000000010", "old@example.com"))
    registry(csv_row("1000000010", "old@example.com", status="removed"))
    assert marker("old@example.com") == {"1000000010"}
    registry(csv_row("1000000010", "new@example.com"))  # back, with another address
    assert marker("old@example.com") is None
    assert browser.sign_in(["old@example.com"]).location == "/link/no-match"


def test_addresses_a_removed_account_is_given_meanwhile_leave_no_marker_on_the_old_ones(browser):
    registry(csv_row("1000000011", "first@example.com"))
    registry(csv_row("1000000011", "first@example.com", status="removed"))
    registry(csv_row("1000000011", "second@example.com", status="removed"))
    assert marker("first@example.com") is None
    registry(csv_row("1000000011", "third@example.com"))
    assert_invariants()


def test_a_marker_left_naming_a_re_activated_account_tells_nobody_it_was_removed(browser):
    """The lifecycle machine found imports that leave a marker naming an account the
    registry re-activated since. The account's own status decides what a person is told:
    such an address is an unknown one (no match, with recovery), never "no longer active"."""
    registry(csv_row("1000000003", "moved.on@example.com"))
    registry(csv_row("1000000003", "moved.on@example.com", status="removed"))
    registry(csv_row("1000000003", "new.home@example.com"))  # back, with another address
    # What the machine found: the old address's marker still naming the account.
    Claim(Claim.removed_key("moved.on@example.com"), holders={"1000000003"}).save()
    page = browser.sign_in(["moved.on@example.com"])
    assert REMOVED_PAGE not in page.body
    assert page.status == 302 and page.location == NO_MATCH
