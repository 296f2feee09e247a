"""The account lifecycle through its public doors: the registry import, a person's sign-in,
recovery and email changes (routes), the support desk (manage.py) and Login.gov's events.

Each test is one of the ways an ordinary operation used to undo another (issue 11's list),
and each ends with the invariants holding (tests/invariants.py).
"""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest

import manage
from chalicelib import sessions
from chalicelib.models import Account, AuditEvent, Claim
from tests.invariants import assert_invariants
from tests.support import CLIENT_ID
from tests.support.browser import (
    Browser,
    enter_code,
    request_recovery,
    session_csrf,
    signed_in_unmatched,
)

HEADER = "nr_number,first_name,last_name,role,primary_email,secondary_email,legacy_username,status"
SHARED_PAGE = "Your email matches more than one registry account"


@pytest.fixture
def desk(app_client, tmp_path, capsys, monkeypatch):
    """manage.py in-process, against the same moto tables as the app."""
    monkeypatch.setenv("USER", "desk-tester")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "version": "2.0",
                "app_name": "nrcme-signin",
                "stages": {
                    "test": {"environment_variables": {"TABLE_PREFIX": os.environ["TABLE_PREFIX"]}}
                },
            }
        )
    )
    files = iter(range(1000))

    def run(*argv):
        capsys.readouterr()
        code = manage.main(["--stage", "test", "--config", str(config), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    def registry(*rows):
        path = tmp_path / f"export-{next(files)}.csv"
        path.write_text("\n".join((HEADER,) + rows) + "\n")
        code, out, err = run("import-accounts", str(path))
        assert code in (0, 4), (code, out, err)
        return code, out, err

    run.registry = registry
    return run


def row(number, primary, secondary="", *, first="Pat", status="active"):
    return f"{number},{first},Examiner,medical_examiner,{primary},{secondary},,{status}"


def person(app_client, idp) -> Browser:
    return Browser(app_client, idp)


def sign_in(browser, *emails, sub=None):
    return browser.sign_in(list(emails), sub=sub or str(uuid.uuid4()))


def change_email(browser, mailbox, change, new):
    page = browser.post(
        "/account/email",
        {"csrf_token": session_csrf(browser, linked=True), "change": change, "email": new},
    )
    assert page.location == "/account/email/confirm", page.body[:400]
    return enter_code(browser, "/account/email/confirm", mailbox.code_for(new))


def linked_to(nr_number):
    return Account.get(nr_number, consistent_read=True).linked_sub


# --- the registry import and decisions made here --------------------------------------------------


def test_an_import_never_undoes_a_verified_email_change_even_after_unlink(
    app_client, idp, desk, mailbox
):
    original = row("1000000010", "dana.ruiz@va.gov", first="Dana")
    desk.registry(original)
    dana = person(app_client, idp)
    assert sign_in(dana, "dana.ruiz@va.gov").location == "/account"
    assert change_email(dana, mailbox, "primary", "dana.personal@example.net").status == 200
    # She loses her Login.gov account; support unlinks; the nightly import runs.
    assert desk("unlink", "1000000010", "--mode", "lost-account", "--reason", "lost")[0] == 0
    desk.registry(original)
    account = Account.get("1000000010", consistent_read=True)
    assert account.primary_email == "dana.personal@example.net"
    # Her new Login.gov account links; whoever reads the old .gov mailbox links nothing.
    assert sign_in(person(app_client, idp), "dana.personal@example.net").location == "/account"
    assert sign_in(person(app_client, idp), "dana.ruiz@va.gov").location == "/link/no-match"
    assert_invariants()


def test_an_import_never_lifts_supports_disable(app_client, idp, desk):
    desk.registry(row("1000000004", "d.ivanov@example.com"))
    assert desk("disable", "1000000004", "--reason", "reported misuse")[0] == 0
    desk.registry(row("1000000004", "d.ivanov@example.com", first="Dmitri"))
    account = Account.get("1000000004", consistent_read=True)
    assert (account.status, account.first_name) == ("disabled", "Dmitri")
    page = sign_in(person(app_client, idp), "d.ivanov@example.com")
    assert page.status == 403 and linked_to("1000000004") is None
    assert_invariants()


def test_an_import_during_an_email_change_keeps_both(app_client, idp, desk, mailbox, calls):
    desk.registry(row("1000000001", "alice@example.com"))
    alice = person(app_client, idp)
    assert sign_in(alice, "alice@example.com").location == "/account"
    page = alice.post(
        "/account/email",
        {
            "csrf_token": session_csrf(alice, linked=True),
            "change": "primary",
            "email": "alice.new@example.org",
        },
    )
    assert page.location == "/account/email/confirm"
    code = mailbox.code_for("alice.new@example.org")
    token = session_csrf(alice, linked=True)
    # The import read everything; the person confirms; then the import writes.
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: enter_code(alice, "/account/email/confirm", code, token),
        table="accounts",
        key_prefix="1000000001",
    )
    desk.registry(row("1000000001", "alice@example.com", first="Alicia"))
    assert rule.fired == 1
    account = Account.get("1000000001", consistent_read=True)
    assert (account.first_name, account.primary_email) == ("Alicia", "alice.new@example.org")
    with pytest.raises(Claim.DoesNotExist):  # the released claim did not come back
        Claim.get(Claim.email_key("alice@example.com"))
    assert_invariants()


def test_a_throttled_import_stops_cleanly_and_a_rerun_finishes(
    app_client, desk, calls, tmp_path, clock
):
    rows = [row(f"20000000{i:02d}", f"p{i}@example.com") for i in range(5)]
    calls.fail(
        "TransactWriteItems",
        "ThrottlingException",
        table="accounts",
        key_prefix="2000000002",
        times=50,
    )
    path = tmp_path / "throttled.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    code, out, err = desk("import-accounts", str(path))
    assert code == 3 and "STOPPED" in out and "re-run the import" in out
    assert clock.slept == [2.0, 4.0, 8.0]  # its backoff, on the clock: no real wait
    assert "Traceback" not in out + err
    assert_invariants()  # two accounts whole, the rest untouched
    calls.rules.clear()
    code, out, _ = desk("import-accounts", str(path))
    assert code == 0 and Account.count() == 5
    assert_invariants()


# --- shared addresses ---------------------------------------------------------------------------


def test_a_shared_address_proves_nobody_and_each_holder_can_drop_it(app_client, idp, desk, mailbox):
    desk.registry(
        row("1000000006", "frank@example.com", "office@example.com"),
        row("1000000007", "office@example.com", "grace@example.org"),
    )
    # Signing in with it: the shared page. Asking for a recovery code at it: no code, the
    # answer any address gets, and only the mailbox is told why.
    stranger = person(app_client, idp)
    page = sign_in(stranger, "office@example.com")
    assert page.status == 409 and SHARED_PAGE in page.body
    assert linked_to("1000000006") is None and linked_to("1000000007") is None
    unmatched = person(app_client, idp)
    page = request_recovery(
        unmatched, "office@example.com", signed_in_unmatched(unmatched, "someone@example.net")
    )
    assert page.status == 302 and page.location == "/link/recover/verify"
    assert mailbox.codes_for("office@example.com") == []
    assert len(mailbox.to("office@example.com")) == 1
    # No third account can take it by an email change.
    desk.registry(
        row("1000000006", "frank@example.com", "office@example.com"),
        row("1000000007", "office@example.com", "grace@example.org"),
        row("1000000008", "hana@example.com"),
    )
    hana = person(app_client, idp)
    assert sign_in(hana, "hana@example.com").location == "/account"
    page = hana.post(
        "/account/email",
        {
            "csrf_token": session_csrf(hana, linked=True),
            "change": "secondary",
            "email": "office@example.com",
        },
    )
    assert page.status == 409 and len(mailbox.to("office@example.com")) == 1
    # A linked holder removes it from their own account: it stays once-shared for the other.
    frank = person(app_client, idp)
    assert sign_in(frank, "frank@example.com").location == "/account"
    page = frank.post(
        "/account/email",
        {
            "csrf_token": session_csrf(frank, linked=True),
            "change": "remove_secondary",
            "confirm": "yes",
        },
    )
    assert page.status == 200, page.body[:300]
    assert Account.get("1000000006").secondary_email is None
    assert sign_in(person(app_client, idp), "office@example.com").status == 409
    assert_invariants()


def test_a_holder_can_replace_a_shared_primary(app_client, idp, desk, mailbox):
    desk.registry(
        row("1000000006", "office@example.com", "frank@example.com"),
        row("1000000007", "office@example.com"),
    )
    frank = person(app_client, idp)
    assert sign_in(frank, "frank@example.com").location == "/account"
    assert change_email(frank, mailbox, "primary", "frank.personal@example.com").status == 200
    office = Claim.get(Claim.email_key("office@example.com"))
    assert set(office.holders) == {"1000000007"} and office.shared and office.nr_number is None
    assert_invariants()


def test_a_once_shared_address_needs_support_before_it_links(app_client, idp, desk):
    desk.registry(
        row("1000000006", "a.office@example.com"),
        row("1000000007", "a.office@example.com", "b@example.com"),
    )
    # Support corrects A's registry row; the next import leaves the office address to B only.
    desk.registry(
        row("1000000006", "a.own@example.com"),
        row("1000000007", "a.office@example.com", "b@example.com"),
    )
    colleague = person(app_client, idp)  # whoever reads the office mailbox
    page = sign_in(colleague, "a.office@example.com", "colleague@example.net")
    assert page.status == 409 and linked_to("1000000007") is None
    code, out, _ = desk("find", "a.office@example.com")
    assert code == 0 and "once-shared" in out
    # After verifying B by its usual process, support clears it: it proves B again.
    assert desk("clear-shared", "a.office@example.com", "--reason", "called B, verified")[0] == 0
    assert sign_in(person(app_client, idp), "a.office@example.com").location == "/account"
    assert linked_to("1000000007") is not None
    assert "shared_address_cleared" in [e.event for e in AuditEvent.query("1000000007")]
    assert_invariants()


# --- support: evict, correct, explain ------------------------------------------------------------


def test_unlink_not_owner_bars_that_identity_by_every_route_until_lifted(
    app_client, idp, desk, mailbox
):
    desk.registry(row("1000000009", "compliance@saferoads.example.org"))
    wrong = str(uuid.uuid4())
    intruder = person(app_client, idp)
    assert sign_in(intruder, "compliance@saferoads.example.org", sub=wrong).location == "/account"
    assert desk("unlink", "1000000009", "--mode", "not-owner", "--reason", "ticket 9")[0] == 0
    assert intruder.get("/account").status == 302  # its session ended
    # Automatic linking refuses it...
    page = sign_in(person(app_client, idp), "compliance@saferoads.example.org", sub=wrong)
    assert page.status == 403 and "cannot be linked" in page.body
    # ...and so does recovery by a code, even with the right code.
    again = person(app_client, idp)
    unmatched = signed_in_unmatched(again, "intruder.other@example.net", sub=wrong)
    request_recovery(again, "compliance@saferoads.example.org", unmatched)
    code = mailbox.code_for("compliance@saferoads.example.org")
    page = enter_code(again, "/link/recover/verify", code)
    assert page.status == 403 and linked_to("1000000009") is None
    # The owner links with their own identity; support can lift the bar.
    assert desk("lift-bar", "1000000009", wrong, "--reason", "mistake")[0] == 0
    assert (
        sign_in(person(app_client, idp), "compliance@saferoads.example.org", sub=wrong).location
        == "/account"
    )
    assert_invariants()


def test_support_corrects_an_email_and_imports_keep_it(app_client, idp, desk):
    desk.registry(row("1000000003", "carmen.lee@fmcsa.dot.gov"))
    code, out, _ = desk(
        "set-email",
        "1000000003",
        "--primary",
        "carmen@example.com",
        "--reason",
        "verified by phone, ticket 12",
    )
    assert code == 0 and "owned here" in out
    desk.registry(row("1000000003", "carmen.lee@fmcsa.dot.gov"))
    assert Account.get("1000000003").primary_email == "carmen@example.com"
    assert sign_in(person(app_client, idp), "carmen.lee@fmcsa.dot.gov").location == "/link/no-match"
    assert_invariants()


def test_export_changes_lists_what_was_changed_here(app_client, idp, desk, mailbox):
    desk.registry(row("1000000001", "alice@example.com"), row("1000000002", "bob@example.com"))
    alice = person(app_client, idp)
    sign_in(alice, "alice@example.com")
    change_email(alice, mailbox, "primary", "alice.home@example.org")
    desk("set-email", "1000000002", "--secondary", "bob.home@example.org", "--reason", "t1")
    desk("disable", "1000000002", "--reason", "t2")
    from datetime import date

    code, out, _ = desk("export-changes", "--since", date.today().isoformat(), "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == "at,nr_number,field,old,new,event,actor"
    changes = {(line.split(",")[1], line.split(",")[2], line.split(",")[4]) for line in lines[1:]}
    assert changes == {
        ("1000000001", "primary_email", "alice.home@example.org"),
        ("1000000002", "secondary_email", "bob.home@example.org"),
        ("1000000002", "support_hold", "on"),
    }


def test_a_committed_unlink_whose_answer_was_lost_is_reported_done(app_client, idp, desk, calls):
    desk.registry(row("1000000005", "eve@example.org"))
    eve = person(app_client, idp)
    sign_in(eve, "eve@example.org")
    rule = calls.lose_answer("TransactWriteItems", table="accounts", key_prefix="1000000005")
    code, out, err = desk("unlink", "1000000005", "--mode", "lost-account", "--reason", "r")
    assert rule.fired == 1
    assert code == 0 and "session(s) ended" in out, (out, err)
    assert linked_to("1000000005") is None and eve.get("/account").status == 302
    assert [e.event for e in AuditEvent.query("1000000005")].count("identity_unlinked") == 1
    assert_invariants()


# --- linking re-checks what it matched ----------------------------------------------------------


def test_an_import_moving_the_address_mid_sign_in_links_nothing(app_client, idp, desk, calls):
    desk.registry(row("1000000001", "moving@example.com"), row("1000000002", "b@example.com"))
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: desk.registry(
            row("1000000001", "a.fixed@example.com"),
            row("1000000002", "b@example.com", "moving@example.com"),
        ),
        table="claims",
        key_prefix="sub#",
    )
    page = sign_in(person(app_client, idp), "moving@example.com")
    assert rule.fired == 1
    assert page.status == 409 and "changed while you were linking" in page.body
    assert linked_to("1000000001") is None and linked_to("1000000002") is None
    assert_invariants()


def test_a_code_sent_before_a_registry_correction_links_nothing(app_client, idp, desk, mailbox):
    desk.registry(row("1000000001", "old.address@example.com"))
    browser = person(app_client, idp)
    request_recovery(browser, "old.address@example.com", signed_in_unmatched(browser))
    code = mailbox.code_for("old.address@example.com")
    desk.registry(row("1000000001", "corrected@example.com"))
    page = enter_code(browser, "/link/recover/verify", code)
    assert page.status == 409 and linked_to("1000000001") is None
    assert_invariants()


def test_a_purge_racing_a_first_sign_in_leaves_no_link(app_client, idp, desk, calls):
    desk.registry(row("1000000001", "purged.person@example.com"))
    sub = str(uuid.uuid4())

    def login_gov_purges():
        token = idp.security_event_token(CLIENT_ID, "account-purged", sub)
        response = app_client.http.post(
            "/api/security-events", body=token, headers={"Content-Type": "application/secevent+jwt"}
        )
        assert response.status_code == 202

    rule = calls.interleave(
        "TransactWriteItems", login_gov_purges, table="claims", key_prefix="sub#"
    )
    page = sign_in(person(app_client, idp), "purged.person@example.com", sub=sub)
    assert rule.fired == 1
    assert page.status == 400 and linked_to("1000000001") is None
    assert sessions_for(sub) == []
    assert_invariants()


def sessions_for(sub):
    from chalicelib.models import Flow

    return [f for f in Flow.by_subject.query(sub) if f.flow_id.startswith("session#")]


def test_support_unlink_of_a_removed_session_holder_ends_sessions(app_client, idp, desk):
    desk.registry(row("1000000008", "hana.sato@example.com"))
    hana = person(app_client, idp)
    sign_in(hana, "hana.sato@example.com")
    sub = linked_to("1000000008")
    assert len(sessions_for(sub)) == 1
    desk("unlink", "1000000008", "--mode", "lost-account", "--reason", "r")
    assert sessions_for(sub) == [] and sessions.load_session(None) is None


# --- removed accounts ----------------------------------------------------------------------------


def test_a_renumbered_person_links_their_new_account(app_client, idp, desk):
    desk.registry(row("1000000001", "renumbered@example.com"))
    # The registry removes the old number and adds a new one with the same address.
    code, out, _ = desk.registry(
        row("1000000001", "renumbered@example.com", status="removed"),
        row("1000000002", "renumbered@example.com"),
    )
    assert code == 0 and re.search(r"shared emails +0\n", out)
    assert sign_in(person(app_client, idp), "renumbered@example.com").location == "/account"
    assert linked_to("1000000002") is not None and linked_to("1000000001") is None
    assert_invariants()


def test_a_removed_account_keeps_its_link_and_the_same_identity_signs_back_in_when_re_added(
    app_client, idp, desk
):
    desk.registry(row("1000000003", "comes.back@example.com"))
    sub = str(uuid.uuid4())
    assert (
        sign_in(person(app_client, idp), "comes.back@example.com", sub=sub).location == "/account"
    )
    desk.registry(row("1000000003", "comes.back@example.com", status="removed"))
    assert linked_to("1000000003") == sub  # the link stays
    removed = person(app_client, idp)
    assert removed.follow(sign_in(removed, "comes.back@example.com", sub=sub)).status == 403
    code, out, _ = desk("find", "1000000003")
    assert code == 0 and "removed" in out
    desk.registry(row("1000000003", "comes.back@example.com"))
    back = person(app_client, idp)
    assert back.follow(sign_in(back, "comes.back@example.com", sub=sub)).status == 200
    assert_invariants()


def test_support_does_not_set_an_email_on_a_removed_account(app_client, desk):
    desk.registry(row("1000000004", "gone@example.com", status="removed"))
    code, _, err = desk(
        "set-email", "1000000004", "--primary", "new@example.com", "--reason", "ticket 5"
    )
    assert code == 1 and "removed" in err
    assert Account.get("1000000004").primary_email == "gone@example.com"
    code, out, err = desk("find", "gone@example.com")
    assert code == 1 and "--scan" in err
    code, out, _ = desk("find", "gone@example.com", "--scan")
    assert code == 0 and "removed: holds no address" in out
    assert_invariants()


# --- the desk's confirmations and notices ---------------------------------------------------------


def test_every_desk_confirmation_names_the_account_and_its_primary(app_client, idp, desk):
    desk.registry(
        row("1000000009", "pat.owner@example.com", first="Patricia"),
        row("1000000008", "office@example.com"),
        row("1000000007", "office@example.com"),
    )
    wrong = str(uuid.uuid4())
    sign_in(person(app_client, idp), "pat.owner@example.com", sub=wrong)
    who = "(Patricia Examiner, pat.owner@example.com)"
    outputs = [
        desk("unlink", "1000000009", "--mode", "not-owner", "--reason", "t1"),
        desk("lift-bar", "1000000009", wrong, "--reason", "t2"),
        desk("disable", "1000000009", "--reason", "t3"),
        desk("enable", "1000000009", "--reason", "t4"),
        desk("set-email", "1000000009", "--secondary", "pat.home@example.org", "--reason", "t5"),
    ]
    for code, out, err in outputs:
        assert code == 0 and who in out, (out, err)
    desk("set-email", "1000000008", "--primary", "own@example.com", "--reason", "t6")
    code, out, _ = desk("clear-shared", "office@example.com", "--reason", "t7")
    assert code == 0 and "(Pat Examiner, office@example.com)" in out
    assert_invariants()


@pytest.mark.parametrize(
    "argv, told",
    [
        (
            ("--primary", "new.primary@example.com"),
            {"old.primary@example.com": "was changed from this address"},
        ),
        (
            ("--secondary", "new.second@example.org"),
            {
                "old.second@example.org": "was changed from this address",
                "old.primary@example.com": "secondary email address of your National Registry account",
            },
        ),
        (
            ("--remove-secondary",),
            {
                "old.second@example.org": "This address was removed",
                "old.primary@example.com": "was removed. This address stays your primary",
            },
        ),
    ],
)
def test_set_email_tells_the_replaced_address_as_a_persons_own_change_does(
    app_client, desk, mailbox, argv, told
):
    desk.registry(row("1000000010", "old.primary@example.com", "old.second@example.org"))
    code, out, _ = desk("set-email", "1000000010", *argv, "--reason", "ticket 8")
    assert code == 0
    for address, text in told.items():
        (notice,) = mailbox.to(address)
        assert notice.subject.startswith("The email addresses on your National Registry")
        assert text in notice.body and "registry number ending 0010" in notice.body
        assert address in out  # the desk is told who was told
    assert "notice" in out
    new = [a for a in ("new.primary@example.com", "new.second@example.org") if a in argv]
    assert all(mailbox.to(a) == [] for a in new)


def test_set_email_adding_a_secondary_tells_the_primary(app_client, desk, mailbox):
    desk.registry(row("1000000011", "only.primary@example.com"))
    code, out, _ = desk(
        "set-email", "1000000011", "--secondary", "added@example.org", "--reason", "ticket 9"
    )
    assert code == 0 and "only.primary@example.com" in out
    (notice,) = mailbox.to("only.primary@example.com")
    assert "was added" in notice.body


def test_set_email_says_there_is_no_secondary_instead_of_none(app_client, desk):
    desk.registry(row("1000000012", "no.second@example.com"))
    code, out, err = desk("set-email", "1000000012", "--remove-secondary", "--reason", "t")
    assert code == 1 and "there is no secondary email" in err
    assert "None" not in out + err


def test_a_re_key_by_set_email_says_re_keyed_tells_nobody_and_is_not_exported(
    app_client, desk, mailbox
):
    from datetime import date

    from tests.support.accounts import stored_under_the_old_rule

    desk.registry(row("1000000013", "b.okafor@example.org", "baſhir.okafor.md@example.com"))
    stored_under_the_old_rule("1000000013", secondary="bashir.okafor.md@example.com")
    code, out, _ = desk(
        "set-email",
        "1000000013",
        "--secondary",
        "baſhir.okafor.md@example.com",
        "--reason",
        "check-email-keys",
    )
    assert code == 0 and "re-keyed" in out
    assert "baſhir.okafor.md@example.com -> baſhir.okafor.md@example.com" not in out
    assert mailbox.to("b.okafor@example.org") == []
    assert mailbox.to("baſhir.okafor.md@example.com") == []
    assert desk("check-email-keys")[0] == 0
    code, out, _ = desk("export-changes", "--since", date.today().isoformat())
    assert code == 0 and "1000000013" not in out
    assert_invariants()
