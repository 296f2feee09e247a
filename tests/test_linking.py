"""Linking rules: who links to which registry account, and every way it is refused."""

from __future__ import annotations

import threading
import uuid

import pytest

from chalicelib import linking, store
from chalicelib.errors import (
    AccountAlreadyLinked,
    AccountInactive,
    AmbiguousMatch,
    IdentityDisabled,
    NoMatchingAccount,
)
from chalicelib.models import Account, AuditEvent, Claim, Flow
from tests.support.accounts import make_account
from tests.support.browser import Browser


def sub_claims() -> list[Claim]:
    return [c for c in Claim.scan() if c.claim.startswith("sub#")]


def test_secondary_email_links(browser):
    make_account(primary="dr.bob@example.com", secondary="bob.personal@example.org")
    page = browser.follow(browser.sign_in(["bob.personal@example.org"]))
    assert page.status == 200
    assert "1000000001" in page.body and "dr.bob@example.com" in page.body
    assert "bob.personal@example.org" in page.body


def test_any_verified_email_among_all_emails_links(browser):
    make_account(primary="dr.carol@example.com")
    page = browser.sign_in(["carol.new@example.net", "DR.Carol@Example.com"])
    assert page.location == "/account"


def test_first_link_page_says_username_is_retired_once(browser):
    make_account(primary="dr.alice@example.com", legacy_username="alice1")
    page = browser.follow(browser.sign_in(["dr.alice@example.com"]))
    assert "now linked to Login.gov" in page.body
    assert "old registry username no longer signs you in" in page.body
    account = Account.get("1000000001")
    assert account.legacy_username_retired is True
    assert account.legacy_username == "alice1"  # kept for the support desk
    assert "now linked" not in browser.get("/account").body


def test_link_writes_claim_account_and_audit_together(browser):
    make_account(primary="dr.alice@example.com")
    browser.sign_in(["dr.alice@example.com"])
    account = Account.get("1000000001")
    (claim,) = sub_claims()
    assert claim.claim == f"sub#{account.linked_sub}" and claim.nr_number == "1000000001"
    events = [e.event for e in AuditEvent.query("1000000001")]
    assert events == ["identity_linked"]


def test_returning_user_is_found_by_sub_whatever_email_login_gov_sends(browser, idp):
    make_account(primary="dr.alice@example.com")
    sub = str(uuid.uuid4())
    browser.sign_in(["dr.alice@example.com"], sub=sub)
    browser.cookies.clear()
    idp.request_log.clear()
    page = browser.sign_in(["brand.new.address@example.net"], sub=sub)
    assert page.status == 302 and page.location == "/account"
    assert "/api/openid_connect/userinfo" not in idp.request_log
    assert [e.event for e in AuditEvent.query("1000000001")] == ["identity_linked"]


def test_no_match_offers_recovery_and_links_nothing(browser):
    make_account(primary="dr.alice@example.com")
    page = browser.sign_in(["stranger@example.net"])
    assert page.status == 302 and page.location == "/link/no-match"
    page = browser.get(page.location)
    assert page.status == 200
    assert "could not find a registry account" in page.body
    assert 'action="/link/recover"' in page.body
    assert sub_claims() == [] and Account.get("1000000001").linked_sub is None
    # Not linked: the account page sends the person back to the explanation.
    assert browser.get("/account").location == "/link/no-match"


def test_emails_matching_two_accounts_link_neither(browser):
    make_account("1000000001", primary="dr.alice@example.com")
    make_account("1000000002", primary="alice.office@example.org")
    page = browser.sign_in(["dr.alice@example.com", "alice.office@example.org"])
    assert page.status == 409
    assert "matches more than one registry account" in page.body
    assert "nr_session" not in browser.cookies
    assert sub_claims() == []


def test_account_linked_to_someone_else_is_not_shared(browser, other_browser):
    make_account(primary="shared.office@example.com")
    assert browser.sign_in(["shared.office@example.com"], sub=str(uuid.uuid4())).status == 302
    page = other_browser.sign_in(["shared.office@example.com"], sub=str(uuid.uuid4()))
    assert page.status == 409
    assert "cannot be shared" in page.body and "own Login.gov account" in page.body
    assert "nr_session" not in other_browser.cookies
    assert len(sub_claims()) == 1


def test_disabled_accounts_do_not_link(browser):
    make_account(primary="dr.alice@example.com", status="disabled")
    page = browser.sign_in(["dr.alice@example.com"])
    assert page.status == 403
    assert "has been disabled" in page.body
    assert sub_claims() == [] and "nr_session" not in browser.cookies


def test_a_removed_accounts_address_is_free_and_links_nothing(browser):
    # The registry decides who is certified: a removed account holds no address.
    make_account(primary="dr.alice@example.com", status="removed")
    page = browser.sign_in(["dr.alice@example.com"])
    assert page.location == "/link/no-match"
    assert sub_claims() == [] and Account.get("1000000001").linked_sub is None


def test_an_identity_linked_to_an_account_the_registry_removed_is_told_so(browser):
    make_account(primary="dr.alice@example.com")
    browser.follow(browser.sign_in(["dr.alice@example.com"]))
    Account.get("1000000001").update(actions=[Account.status.set("removed")])
    page = browser.get("/account")
    assert page.status == 403 and "has been removed" in page.body


def test_disabled_after_linking_ends_access_at_next_request(browser):
    make_account(primary="dr.alice@example.com")
    browser.follow(browser.sign_in(["dr.alice@example.com"]))
    account = Account.get("1000000001")
    account.update(actions=[Account.status.set("disabled")])
    page = browser.get("/account")
    assert page.status == 403 and "has been disabled" in page.body
    assert [f for f in Flow.scan() if f.flow_id.startswith("session#")] == []


@pytest.mark.parametrize(
    "primary, advised",
    [
        ("examiner@fmcsa.dot.gov", True),
        ("examiner@army.mil", True),
        ("examiner@med.state.edu", True),
        ("Examiner@VA.GOV", True),
        ("examiner@gov.example.com", False),
        ("examiner@example.com", False),
    ],
)
def test_institutional_primary_email_advice(browser, primary, advised):
    make_account(primary=primary)
    page = browser.follow(browser.sign_in([primary]))
    assert page.status == 200
    assert ("Change your primary email to a personal address" in page.body) is advised


@pytest.mark.parametrize(
    "registry, login_gov",
    [
        ("Dr.Alice@Example.COM", "dr.alice@example.com"),
        ("dr.alice@example.com", "  DR.ALICE@EXAMPLE.COM  "),
        ("alice@bücher.example.com", "alice@xn--bcher-kva.example.com"),
        ("alice@XN--BCHER-KVA.example.com", "Alice@Bücher.Example.com"),
    ],
)
def test_email_variants_match(app_client, registry, login_gov):
    make_account(primary=registry)
    result = linking.link_by_verified_emails(str(uuid.uuid4()), [login_gov])
    assert result.outcome is linking.LinkOutcome.LINKED and result.nr_number == "1000000001"


def test_invalid_login_gov_emails_are_ignored_not_fatal(app_client):
    make_account(primary="dr.alice@example.com")
    with pytest.raises(NoMatchingAccount):
        linking.link_by_verified_emails(str(uuid.uuid4()), ["not an email", "", "@@"])
    result = linking.link_by_verified_emails(
        str(uuid.uuid4()), ["not an email", "dr.alice@example.com"]
    )
    assert result.outcome is linking.LinkOutcome.LINKED


def test_one_identity_cannot_hold_two_accounts(app_client):
    make_account("1000000001", primary="a@example.com")
    make_account("1000000002", primary="b@example.com")
    sub = str(uuid.uuid4())
    linking.link_account(sub, "1000000001", method=linking.LinkMethod.AUTOMATIC)
    with pytest.raises(AccountAlreadyLinked):
        linking.link_account(sub, "1000000002", method=linking.LinkMethod.RECOVERY)
    assert Account.get("1000000002").linked_sub is None


def test_linking_twice_for_the_same_identity_is_idempotent(app_client):
    make_account(primary="a@example.com")
    sub = str(uuid.uuid4())
    first = linking.link_account(sub, "1000000001", method=linking.LinkMethod.AUTOMATIC)
    again = linking.link_account(sub, "1000000001", method=linking.LinkMethod.AUTOMATIC)
    assert first.outcome is linking.LinkOutcome.LINKED
    assert again.outcome is linking.LinkOutcome.RETURNING
    assert len(list(AuditEvent.query("1000000001"))) == 1


def test_the_identity_item_keeps_login_gov_marks_through_a_link_and_an_unlink(app_client):
    """The `sub#` item is the identity's record: Login.gov's times written before the
    link stay on it while linked and after the unlink; an item without marks goes."""
    make_account(primary="a@example.com")
    sub, bare = str(uuid.uuid4()), str(uuid.uuid4())
    Claim(Claim.sub_key(sub), disabled_at=50, enabled_at=100).save()  # enabled since
    assert linking.find_linked_account(sub) is None
    linking.link_account(sub, "1000000001", method=linking.LinkMethod.AUTOMATIC)
    item = Claim.get(Claim.sub_key(sub))
    assert (item.nr_number, item.disabled_at, item.enabled_at) == ("1000000001", 50, 100)
    linking.unlink_identity(
        Account.get("1000000001"),
        sub,
        store.identity_claim(sub),
        event="identity_unlinked",
        actor="support:t",
    )
    item = Claim.get(Claim.sub_key(sub))
    assert (item.nr_number, item.disabled_at, item.enabled_at) == (None, 50, 100)
    linking.link_account(bare, "1000000001", method=linking.LinkMethod.AUTOMATIC)
    linking.unlink_identity(
        Account.get("1000000001"),
        bare,
        store.identity_claim(bare),
        event="identity_unlinked",
        actor="support:t",
    )
    assert [c.claim for c in sub_claims()] == [Claim.sub_key(sub)]


def test_a_disabled_identity_links_nowhere_by_the_databases_condition(app_client):
    """link_account reads the account, not the identity: the transaction's condition on
    the `sub#` item refuses it, and the refusal is the disabled page's error."""
    make_account(primary="a@example.com")
    sub = str(uuid.uuid4())
    Claim(Claim.sub_key(sub), disabled_at=100, enabled_at=50).save()
    for method in linking.LinkMethod:
        with pytest.raises(IdentityDisabled):
            linking.link_account(sub, "1000000001", method=method, matched="a@example.com")
    assert Account.get("1000000001").linked_sub is None
    assert Claim.get(Claim.sub_key(sub)).nr_number is None
    assert list(AuditEvent.query("1000000001")) == []


def test_an_unlink_that_read_no_mark_is_refused_when_a_disable_committed_since(app_client):
    """Support read the identity before Login.gov's disable committed: deleting the item
    would lose the mark, so the unlink fails whole and support looks again."""
    make_account(primary="a@example.com")
    sub = str(uuid.uuid4())
    linking.link_account(sub, "1000000001", method=linking.LinkMethod.AUTOMATIC)
    as_read = store.identity_claim(sub)
    Claim(Claim.sub_key(sub)).update(actions=[Claim.disabled_at.set(100)])
    with pytest.raises(linking.LinkChangeConflict):
        linking.unlink_identity(
            Account.get("1000000001"), sub, as_read, event="identity_unlinked", actor="support:t"
        )
    item = Claim.get(Claim.sub_key(sub))
    assert (item.nr_number, item.disabled_at) == ("1000000001", 100)
    assert Account.get("1000000001").linked_sub == sub


def test_domain_refusals_are_typed(app_client):
    make_account("1000000001", primary="a@example.com", status="disabled")
    with pytest.raises(AccountInactive):
        linking.link_by_verified_emails(str(uuid.uuid4()), ["a@example.com"])
    make_account("1000000002", primary="b@example.com")
    make_account("1000000003", primary="c@example.com")
    with pytest.raises(AmbiguousMatch):
        linking.link_by_verified_emails(str(uuid.uuid4()), ["b@example.com", "c@example.com"])


def test_twenty_racing_first_signins_link_exactly_one(app_client, idp):
    """20 people with one registry email finish their first sign-in at the same moment.

    Each thread runs the callback's whole domain path (state, token exchange, ID token,
    userinfo, link, session) and the page its outcome maps to. Threads call
    `signin.complete_signin` directly: Chalice's test client shares one current_request
    between threads, which a Lambda container (one request at a time) never does.
    """
    from chalicelib import pages, signin
    from chalicelib.errors import ServiceError
    from tests.support.browser import query_of

    make_account(primary="front.desk@example.com")
    attempts = []
    for _ in range(20):
        b = Browser(app_client, idp)
        callback = b.authorize(b.start_signin(), ["front.desk@example.com"], sub=str(uuid.uuid4()))
        params = query_of(callback)
        attempts.append((params, b.signin_binding(params["state"])))
    barrier = threading.Barrier(20)
    results = [None] * 20

    def finish(i):
        params, binding = attempts[i]
        barrier.wait()
        try:
            done = signin.complete_signin(params, binding)
            results[i] = (302, done.redirect_to)
        except ServiceError as error:
            response = pages.render_error(error)
            results[i] = (response.status_code, response.body)
        except Exception as exc:  # noqa: BLE001 - recorded as the 5xx it would become
            results[i] = (500, repr(exc))

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    statuses = sorted(status for status, _ in results)
    assert statuses == [302] + [409] * 19, results
    assert all("cannot be shared" in body for status, body in results if status == 409)
    (claim,) = sub_claims()
    assert Account.get("1000000001").linked_sub == claim.claim.split("#", 1)[1]
    assert len(list(AuditEvent.query("1000000001"))) == 1
    assert len([f for f in Flow.scan() if f.flow_id.startswith("session#")]) == 1
