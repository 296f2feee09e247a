"""The console's person page (issue 18, item 3): one screen that answers "why can't they get
in?" — the account, its addresses and their states, the link, holds, bars, Login.gov's
marks, codes and caps, the sign-in refusals with their references, a diagnosis in plain
words with the next step, and the audit trail as a timeline with actor names. Read-only:
a viewer sees it all, in a bounded number of requests, and never a Scan."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from chalicelib import clock, linking
from chalicelib.models import Account
from supportdesk import desk
from supportdesk.person import when
from tests.support.accounts import mail_state, make_account, mark_invited
from tests.support.console import signed_in

VIEWER = "viewer@desk.example.gov"


@pytest.fixture
def viewer(desk_browser):
    return signed_in(desk_browser, VIEWER, "viewer")


def text(fragment: str) -> str:
    """A piece of page as a person reads it: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def findings(page) -> list[tuple[str, str]]:
    """(rule, what the finding says, next step included) of the diagnosis, in order."""
    assert page.status == 200, page.body[:300]
    return [
        (rule, text(body))
        for rule, body in re.findall(
            r'<li class="alert[^"]*" data-rule="(\w+)">(.*?)</li>', page.body, re.S
        )
    ]


def rules(page) -> list[str]:
    return [rule for rule, _ in findings(page)]


def said(page, rule: str) -> str:
    (what,) = [body for r, body in findings(page) if r == rule]
    return what


def section(page, heading_id: str) -> str:
    part = page.body.split(f'id="{heading_id}"', 1)[1]
    return text(part.split("</section>", 1)[0])


def person(browser, nr_number: str):
    return browser.get(f"/people/{nr_number}")


# --- the stuck cases, each with its diagnosis -----------------------------------------------


def test_a_shared_primary_address_names_the_other_holder_and_says_ask_then_set_email(viewer):
    make_account("1000000006", "front.desk@example.com", first_name="Fay", last_name="Ode")
    make_account("1000000007", "front.desk@example.com", first_name="Gil", last_name="Kim")
    page = person(viewer, "1000000006")
    assert rules(page)[0] == "shared_addresses"
    assert said(page, "shared_addresses") == (
        "Blocks sign-in: The primary address front.desk@example.com is shared with "
        "1000000007 (Gil Kim): it links nobody and receives no code. Next step: Ask which "
        "person this is, then give each account its own address (set-email on this account "
        "or on 1000000007 (Gil Kim))."
    )
    addresses = section(page, "addresses-heading")
    assert "shared: links nobody, receives no code" in addresses
    assert "1000000007 (Gil Kim)" in addresses
    assert 'href="/people/1000000007"' in page.body


def test_a_once_shared_address_says_a_supervisor_clears_it(viewer):
    make_account("1000000011", "front.desk@clinic.example.com")
    make_account("1000000012", "front.desk@clinic.example.com")
    desk.set_email(
        "1000000011", slot="primary", address="ivan@example.com", reason="t9", actor="lead"
    )
    page = person(viewer, "1000000012")
    assert rules(page)[0] == "once_shared_addresses"
    assert "was shared with another account" in said(page, "once_shared_addresses")
    assert "a supervisor clears it (clear-shared)" in said(page, "once_shared_addresses")


def test_a_support_hold_says_who_put_it_and_why(viewer):
    make_account("1000000001", "dr.alice@example.com")
    desk.set_status("1000000001", "disabled", reason="ticket 7: fraud report", actor="lead")
    page = person(viewer, "1000000001")
    assert rules(page)[0] == "support_hold"
    what = said(page, "support_hold")
    assert what.startswith("Blocks sign-in: Support put a hold on this account (disabled) since")
    assert "Reason given: ticket 7: fraud report" in what
    assert "an agent lifts it (enable)" in what


def test_a_registry_disabled_or_removed_account_is_the_registrys_to_change(viewer):
    make_account("1000000002", "b@example.com", status="disabled")
    make_account("1000000003", "c@example.com", status="removed")
    assert rules(person(viewer, "1000000002"))[0] == "disabled_by_registry"
    removed = person(viewer, "1000000003")
    assert rules(removed)[0] == "removed"
    assert "Only the registry can re-activate it" in said(removed, "removed")
    assert "released: a removed account holds no address" in section(removed, "addresses-heading")


def test_a_barred_identity_is_shown_with_who_barred_it(viewer):
    make_account("1000000001", "dr.alice@example.com")
    linking.link_account("sub-stranger", "1000000001", method=linking.LinkMethod.AUTOMATIC)
    desk.unlink("1000000001", reason="ticket 5: not hers", actor="lead", mode="not-owner")
    page = person(viewer, "1000000001")
    assert "bars" in rules(page)
    assert "(Login.gov sub sub-stranger). It can never link to this record." in said(page, "bars")
    assert "a supervisor lifts the bar" in said(page, "bars")
    assert "sub-stranger : barred" in section(page, "link-heading")


def test_a_linked_account_says_how_and_when_it_was_linked(viewer):
    make_account("1000000010", "dana.ruiz@example.com", secondary="dana.r@example.net")
    linking.link_account(
        "sub-dana",
        "1000000010",
        method=linking.LinkMethod.RECOVERY,
        matched="dana.r@example.net",
        login_gov_email="Dana.Personal@example.net",
    )
    page = person(viewer, "1000000010")
    what = said(page, "linked")
    assert what.startswith("Information: Linked to the Login.gov account Dana.Personal@example.net")
    assert what.endswith(
        "by a code sent to its secondary email. Next step: If the caller says this Login.gov "
        "account is not theirs: unlink as not-owner (it is then barred from this record). If "
        "they lost it: unlink as lost-account."
    )
    link = section(page, "link-heading")
    assert "How by a code sent to its secondary email" in link
    assert rules(page)[-1] == "nothing_stops"


def test_an_account_nobody_signed_in_to_says_how_to_link(viewer):
    make_account("1000000001", "dr.alice@example.com")
    page = person(viewer, "1000000001")
    assert said(page, "not_linked") == (
        "Information: Not linked, and nobody has signed in to it yet. Next step: The person "
        "signs in at Login.gov with dr.alice@example.com (their Login.gov account must have it "
        "as a verified email), or links by a code sent there."
    )
    assert "nothing_stops" in rules(page)


def test_a_work_primary_address_is_advised_against(viewer):
    make_account("1000000001", "dr.alice@va.gov")
    page = person(viewer, "1000000001")
    assert "is a work or school (.gov, .mil, .edu) address" in said(page, "institutional_primary")


@pytest.fixture
def small_caps(monkeypatch):
    """2 wrong codes per identity, 3 per account: two identities pause an account."""
    from chalicelib import config

    monkeypatch.setenv("CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY", "2")
    monkeypatch.setenv("RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY", "3")
    config.reset_settings()
    yield
    monkeypatch.undo()
    config.reset_settings()


def wrong_code_for(mailbox, address: str) -> str:
    return f"{(int(mailbox.code_for(address)) + 1) % 1_000_000:06d}"


def test_paused_recovery_says_no_code_works_until_when_and_what_to_do(
    viewer, app_client, idp, mailbox, small_caps
):
    from tests.support.browser import Browser, enter_code, request_recovery, signed_in_unmatched

    make_account("1000000001", "dr.alice@example.com")
    for n, wrong in enumerate((2, 1)):
        burner = Browser(app_client, idp)
        signed_in_unmatched(burner, f"mallory{n}@example.net")
        assert request_recovery(burner, "dr.alice@example.com").status == 302
        bad = wrong_code_for(mailbox, "dr.alice@example.com")
        for _ in range(wrong):
            assert enter_code(burner, "/link/recover/verify", bad).status == 400
    page = person(viewer, "1000000001")
    assert rules(page)[0] == "recovery_paused"
    what = said(page, "recovery_paused")
    assert what.startswith(
        "Blocks sign-in: Linking by a code is paused: too many wrong codes were tried for this "
        "account (3 wrong codes in 24 hours, the limit is 3). No code works until then, even "
        "the right one. It resumes at "
    )
    assert "consider a hold (disable)" in what
    assert "recovery codes paused until" in section(page, "addresses-heading")
    # The codes the attackers asked for are pending, and were asked by other identities.
    codes = section(page, "codes-heading")
    assert "recovery (link by code) dr.alice@example.com" in codes
    assert "another Login.gov account" in codes


def test_codes_sent_near_the_limit_say_when_another_can_be_sent(
    viewer, app_client, idp, mailbox, monkeypatch
):
    from chalicelib import config
    from tests.support.browser import Browser, request_recovery, signed_in_unmatched

    monkeypatch.setenv("CODE_SENDS_PER_ADDRESS_PER_HOUR", "3")
    config.reset_settings()
    make_account("1000000001", "dr.alice@example.com")
    for n in range(2):
        sender = Browser(app_client, idp)
        signed_in_unmatched(sender, f"someone{n}@example.net")
        assert request_recovery(sender, "dr.alice@example.com").status == 302
    page = person(viewer, "1000000001")
    what = said(page, "codes_near_cap")
    assert what.startswith(
        "Warning: 2 codes were sent to dr.alice@example.com in the last hour (the limit is 3). "
        "Next step: Another code can be sent after "
    )
    assert "2 of 3" in section(page, "addresses-heading")


# --- refusals recorded by the sign-in service, shown with their reference --------------------


def reference_on(page) -> str:
    (reference,) = re.findall(r'<strong class="reference">([^<]+)</strong>', page.body)
    return reference


def refusal_rows(page) -> list[list[str]]:
    part = page.body.split('id="refusals-heading"', 1)[1].split("</section>", 1)[0]
    body = part.split("<tbody>", 1)[1] if "<tbody>" in part else ""
    return [
        [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.mark.parametrize(
    "case, status, meaning",
    [
        ("disabled", 403, "the account was not active (disabled or removed)"),
        ("linked", 409, "another Login.gov account is already linked to this record"),
        ("barred", 403, "their Login.gov account is barred from this record"),
    ],
)
def test_an_examiners_refused_sign_in_is_on_the_person_page_with_its_reference(
    viewer, browser, other_browser, case, status, meaning
):
    make_account("1000000001", "dr.alice@example.com", status="active")
    if case == "disabled":
        desk.set_status("1000000001", "disabled", reason="ticket 1", actor="lead")
    if case == "linked":
        assert other_browser.sign_in(["dr.alice@example.com"], sub="sub-owner").status == 302
    if case == "barred":
        linking.link_account("sub-barred", "1000000001", method=linking.LinkMethod.AUTOMATIC)
        desk.unlink("1000000001", reason="ticket 2", actor="lead", mode="not-owner")
    refused = browser.sign_in(["dr.alice@example.com"], sub="sub-barred")
    assert refused.status == status, refused.body[:300]
    reference = reference_on(refused)

    page = person(viewer, "1000000001")
    (row,) = refusal_rows(page)
    assert row[1] == reference and meaning in row[2]
    if case == "linked":  # while that link stands: refused_while_linked says it
        assert f"(reference {reference})." in said(page, "refused_while_linked")
    else:
        assert f"(reference {reference}): {meaning}" in said(page, "last_refusal")


def test_login_gov_disabling_the_linked_account_says_only_login_gov_can_lift_it(
    viewer, browser, app_client, idp
):
    import os

    make_account("1000000001", "dr.alice@example.com")
    assert browser.sign_in(["dr.alice@example.com"], sub="sub-alice").status == 302
    # Login.gov pushes account-disabled for the linked identity (RISC, as it sends it).
    token = idp.security_event_token(
        os.environ["LOGIN_GOV_CLIENT_ID"], "account-disabled", "sub-alice"
    )
    pushed = app_client.http.post(
        "/api/security-events", body=token, headers={"Content-Type": "application/secevent+jwt"}
    )
    assert pushed.status_code == 202

    page = person(viewer, "1000000001")
    assert rules(page)[0] == "login_gov_disabled"
    what = said(page, "login_gov_disabled")
    assert what.startswith(
        "Blocks sign-in: Login.gov disabled the Login.gov account linked to this record"
    )
    assert "The person must contact Login.gov" in what
    assert "disabled by Login.gov" in section(page, "link-heading")
    assert "Login.gov disabled the identity (the Login.gov account linked here)" in section(
        page, "timeline-heading"
    )


def test_a_sign_in_with_a_shared_address_names_no_account_so_the_person_page_shows_none(
    viewer, browser
):
    make_account("1000000006", "front.desk@example.com")
    make_account("1000000007", "front.desk@example.com")
    refused = browser.sign_in(["front.desk@example.com"])
    assert refused.status in (403, 409), refused
    # A shared address proves neither holder: recording the refusal on either account would
    # put a stranger's attempt in both trails. The diagnosis explains it instead.
    for number in ("1000000006", "1000000007"):
        page = person(viewer, number)
        assert refusal_rows(page) == []
        assert rules(page)[0] == "shared_addresses"


# --- the timeline, access, escaping, requests ----------------------------------------------


def test_the_timeline_names_the_actors_in_words(viewer):
    make_account("1000000001", "dr.alice@example.com")
    linking.link_account("sub-alice", "1000000001", method=linking.LinkMethod.AUTOMATIC)
    desk.set_status("1000000001", "disabled", reason="ticket 7", actor="lead")
    timeline = section(person(viewer, "1000000001"), "timeline-heading")
    assert "The person (their Login.gov account)" in timeline
    assert "lead (support" in timeline


def test_an_unknown_or_malformed_number_is_a_404_page(viewer):
    assert person(viewer, "1000000099").status == 404
    page = person(viewer, "12<b>x")
    assert page.status == 404 and "<b>x" not in page.body


def test_the_person_page_escapes_what_people_supplied(viewer):
    make_account("1000000051", "x@example.com", first_name="<script>x()</script>\u202e")
    Account.get("1000000051").update(actions=[Account.primary_email.set('"<img src=x>"@e.com')])
    page = person(viewer, "1000000051")
    assert page.status == 200
    assert "<script>x()" not in page.body and "&lt;script&gt;" in page.body
    assert "<img src=x>" not in page.body
    assert "\u202e" not in page.body


def test_the_person_page_reads_by_key_and_index_never_a_scan(viewer, calls):
    make_account("1000000006", "front.desk@example.com")
    make_account("1000000007", "front.desk@example.com")
    calls.clear()
    assert person(viewer, "1000000006").status == 200
    assert "Scan" not in calls.operations()
    assert len([c for c in calls.calls if c.service == "dynamodb"]) <= 12


def test_manage_find_prints_the_same_diagnosis(cli):
    make_account("1000000006", "front.desk@example.com", first_name="Fay", last_name="Ode")
    make_account("1000000007", "front.desk@example.com", first_name="Gil", last_name="Kim")
    code, out, _ = cli("find", "1000000006")
    assert code == 0
    diagnosis = out.split("Why can't they get in?", 1)[1]
    assert (
        "Blocks sign-in: The primary address front.desk@example.com is shared with "
        "1000000007 (Gil Kim): it links nobody and receives no code." in diagnosis
    )
    assert "Next step: Ask which person this is" in diagnosis
    # --json stays the account views scripts read.
    code, out, _ = cli("--json", "find", "1000000006")
    assert code == 0 and "Why can't they get in?" not in out


def actions_offered(page) -> list[str]:
    part = page.body.split('id="actions-heading"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<a class="action" href="([^"]+)"', part)


def test_the_page_offers_the_forms_the_role_allows_and_none_to_a_viewer(viewer, other_desk_browser):
    make_account("1000000011", "front.desk@clinic.example.com")
    make_account("1000000012", "front.desk@clinic.example.com")
    desk.set_email("1000000011", slot="primary", address="i@example.com", reason="t", actor="l")
    linking.link_account("sub-june", "1000000012", method=linking.LinkMethod.AUTOMATIC)
    assert actions_offered(person(viewer, "1000000012")) == []
    assert "your role reads only" in person(viewer, "1000000012").body
    agent = signed_in(other_desk_browser, "agent@desk.example.gov", "agent")
    assert actions_offered(person(agent, "1000000012")) == [
        "/people/1000000012/set-email",
        "/people/1000000012/unlink",
        "/people/1000000012/end-sessions",
        "/people/1000000012/disable",
    ]
    # A supervisor also clears the once-shared address.
    desk_browser_lead = signed_in(other_desk_browser, "lead@desk.example.gov", "supervisor")
    assert "/people/1000000012/clear-shared" in actions_offered(
        person(desk_browser_lead, "1000000012")
    )


def test_someone_elses_link_and_the_owner_refused_is_no_nothing_stops_them(
    viewer, browser, other_browser
):
    make_account("1000000001", "dr.alice@example.com", status="active")
    assert other_browser.sign_in(["dr.alice@example.com"], sub="sub-someone-else").status == 302
    refused = browser.sign_in(["dr.alice@example.com"], sub="sub-alice")
    assert refused.status == 409, refused.body[:300]
    reference = reference_on(refused)

    page = person(viewer, "1000000001")
    assert "nothing_stops" not in rules(page)
    (at,) = re.findall(r"someone was refused at (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", page.body)
    assert said(page, "refused_while_linked") == (
        "Warning: Another Login.gov account is linked to this record, and someone was refused "
        f"at {at} (reference {reference}). Next step: If the caller is the owner, verify "
        "them, then unlink as not-owner."
    )
    # Said once: the last refusal's own finding is this one.
    assert "last_refusal" not in rules(page)


def test_a_once_shared_address_hands_off_to_a_supervisor_for_roles_that_cannot_clear_it(
    viewer, other_desk_browser
):
    make_account("1000000011", "front.desk@clinic.example.com")
    make_account("1000000012", "front.desk@clinic.example.com")
    desk.set_email("1000000011", slot="primary", address="i@example.com", reason="t", actor="l")
    hand_off = "Only a supervisor can clear a once-shared address: pass the ticket to a supervisor."
    agent = signed_in(other_desk_browser, "agent@desk.example.gov", "agent")
    assert hand_off in section(person(agent, "1000000012"), "actions-heading")
    assert hand_off in section(person(viewer, "1000000012"), "actions-heading")
    lead = signed_in(other_desk_browser, "lead@desk.example.gov", "supervisor")
    assert hand_off not in person(lead, "1000000012").body
    # Nothing to hand off where no address was shared.
    assert hand_off not in person(agent, "1000000011").body


# --- what SES reported, and the invitation campaign ------------------------------------------


def test_every_address_undeliverable_says_verify_then_set_email(viewer):
    now = clock.utc_now()
    make_account("1000000001", "old@example.com", secondary="older@example.org")
    mark_invited("1000000001", now - timedelta(days=9), waves=(0, 1, 2))
    bounced = (now - timedelta(days=8)).timestamp()
    mail_state("old@example.com", undeliverable_at=bounced, undeliverable_reason="hard bounce")
    mail_state(
        "older@example.org",
        undeliverable_at=bounced,
        undeliverable_reason="3 soft bounces in 30 days",
        soft_bounces={f"{int(bounced) - 60 * i}-m{i}" for i in range(3)},
    )
    page = person(viewer, "1000000001")
    assert rules(page)[0] == "undeliverable_addresses"
    assert said(page, "undeliverable_addresses") == (
        "Blocks sign-in: None of this person's registry addresses can receive mail (SES "
        "reported them undeliverable). Next step: Verify the caller, then set-email to an "
        "address they read."
    )
    addresses = section(page, "addresses-heading")
    assert f"Mail undeliverable since {when(bounced)} (hard bounce)" in addresses
    assert (
        f"Mail undeliverable since {when(bounced)} (3 soft bounces in 30 days); "
        "3 soft bounces in 30 days"
    ) in addresses
    assert "does not record bounces" not in page.body
    account = section(page, "account-heading")
    assert f"Migration campaign invited {when(now - timedelta(days=9))}; 2 reminders since" in (
        account
    )


def test_one_address_bounced_or_a_complaint_is_shown_but_blocks_nothing(viewer):
    now = clock.utc_now()
    make_account("1000000001", "gone@example.com", secondary="reads@example.org")
    mark_invited("1000000001", now - timedelta(days=3))
    mail_state("gone@example.com", undeliverable_at=now.timestamp() - 86400)
    mail_state(
        "reads@example.org",
        complained_at=now.timestamp() - 3600,
        soft_bounces={f"{int(now.timestamp()) - 40 * 86400}-old", f"{int(now.timestamp())}-x"},
    )
    page = person(viewer, "1000000001")
    assert "undeliverable_addresses" not in rules(page)
    addresses = section(page, "addresses-heading")
    assert f"undeliverable since {when(now.timestamp() - 86400)}" in addresses
    # The soft bounce of 40 days ago is out of the window.
    assert (
        f"Mail complained {when(now.timestamp() - 3600)} (marked our mail as spam); "
        "1 soft bounce in 30 days"
    ) in addresses
    assert "no reminder since" in section(page, "account-heading")


def test_an_account_the_campaign_did_not_mail_says_why(viewer):
    make_account("1000000006", "front.desk@example.com")
    make_account("1000000007", "front.desk@example.com")
    make_account("1000000008", "plain@example.com")
    make_account("1000000009", "bounced@example.com")
    mail_state("bounced@example.com", undeliverable_at=clock.utc_now().timestamp())
    shared = section(person(viewer, "1000000006"), "account-heading")
    assert "Migration campaign not mailed yet: no address of its own" in shared
    plain = section(person(viewer, "1000000008"), "account-heading")
    assert "Migration campaign not mailed yet: no campaign is set (CAMPAIGN_DEADLINE)" in plain
    plain = section(person(viewer, "1000000009"), "account-heading")
    assert "not mailed yet: SES reported its addresses undeliverable" in plain
    assert "no bounce or complaint reported" in section(
        person(viewer, "1000000008"), "addresses-heading"
    )
