"""Assertions and helpers shared by the sign-in, hostile-provider, fault and fuzz tests.

`assert_refused` is what "fail closed" means for a callback: a 4xx HTML page, no session
cookie, no session record, no `sub#` claim, and the account still unlinked.
`assert_nothing_half_written` is the invariant every storage fault must leave intact:
a link is the sub claim, the account's linked_sub and one audit event, all or none.
"""

from __future__ import annotations

from chalicelib.logs import keyed_hash
from chalicelib.models import Account, AuditEvent, Claim, Flow


def sessions_in_table() -> list:
    return [f for f in Flow.scan() if f.flow_id.startswith("session#")]


def signin_states_in_table() -> list:
    return [f for f in Flow.scan() if f.flow_id.startswith("signin#")]


def sub_claims() -> list[Claim]:
    """The `sub#` items that link an identity (one without an account only carries
    Login.gov's disabled/enabled marks: no link)."""
    return [c for c in Claim.scan() if c.claim.startswith("sub#") and c.nr_number]


def assert_refused(page, browser, status_range=(400, 499), nr_number="1000000001"):
    assert status_range[0] <= page.status <= status_range[1], (page.status, page.body[:300])
    assert "text/html" in page.headers.get("Content-Type", "")
    assert "nr_session" not in browser.cookies
    assert sessions_in_table() == []
    assert Account.get(nr_number).linked_sub is None
    assert sub_claims() == []


def assert_nothing_half_written() -> None:
    """Every link is whole (claim + account + one audit event) and every session honest.

    - a `sub#` claim names an account whose linked_sub is that sub, and back again;
    - an account has exactly one `identity_linked` audit event if linked, none if not,
      written by that identity (no audit event without its change, no change without it);
    - a session that names an account names one linked to the session's identity.
    """
    accounts = {a.nr_number: a for a in Account.scan()}
    claimed = {c.claim[len("sub#") :]: c.nr_number for c in sub_claims()}
    for sub, nr_number in claimed.items():
        assert nr_number in accounts, f"sub claim for missing account {nr_number}"
        assert accounts[nr_number].linked_sub == sub, f"sub claim without link on {nr_number}"
    for nr_number, account in accounts.items():
        linked_events = [e for e in AuditEvent.query(nr_number) if e.event == "identity_linked"]
        if account.linked_sub:
            assert claimed.get(account.linked_sub) == nr_number, f"link without claim {nr_number}"
            assert account.linked_at is not None and account.legacy_username_retired
            assert [e.actor for e in linked_events] == [f"subject:{keyed_hash(account.linked_sub)}"]
        else:
            assert account.linked_at is None
            assert linked_events == [], f"audit event without its link on {nr_number}"
    for session in sessions_in_table():
        if session.nr_number:
            assert accounts[session.nr_number].linked_sub == session.subject


def warm_key_cache(browser):
    """Complete one sign-in for someone else, then forget it: the app now holds the keys."""
    browser.sign_in(["someone.else@example.com"])
    for flow in Flow.scan():
        flow.delete()
    browser.cookies.clear()
