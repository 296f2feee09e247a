"""The desk operations as console forms (supportdesk/console/routes/desk_routes.py), through
the console's routes against moto and the local Login.gov: who may use each, the two steps
(a confirmation naming the account, then the change with a ticket and a reason), the audit
record in the change's own transaction, stale confirmations, CSRF, and telling Login.gov
of an identity that was not the owner's (a SET the local Login.gov verifies and records).
"""

from __future__ import annotations

import pytest

from chalicelib.models import Account, AuditEvent, Claim
from localdev.html_forms import parse_forms
from localdev.idp import SECURITY_EVENTS_PATH, public_pem, sub_for_emails
from tests.support.accounts import link, make_account
from tests.support.console import DESK_CLIENT_ID, DESK_ENV, DESK_KEY, DeskBrowser, signed_in

VIEWER, AGENT, LEAD = "viewer@desk.example.gov", "agent@desk.example.gov", "lead@desk.example.gov"
ROLE_OF = {VIEWER: "viewer", AGENT: "agent", LEAD: "supervisor"}
NR, OTHER = "1000000101", "1000000102"
OWNER_EMAIL, INTRUDER_EMAIL = "owner.101@example.com", "intruder@example.net"
FRAUD = "https://schemas.login.gov/secevent/risc/event-type/authorization-fraud-detected"

# Each operation's first page, with what it needs in the URL, and who may use it.
FIRST_PAGES = {
    "unlink": ("/people/{nr}/unlink?mode=lost-account", {"agent", "supervisor"}),
    "unlink-not-owner": ("/people/{nr}/unlink?mode=not-owner", {"agent", "supervisor"}),
    "disable": ("/people/{nr}/disable", {"agent", "supervisor"}),
    "enable": ("/people/{nr}/enable", {"agent", "supervisor"}),
    "end-sessions": ("/people/{nr}/end-sessions", {"agent", "supervisor"}),
    "set-email": ("/people/{nr}/set-email", {"agent", "supervisor"}),
    "clear-shared": ("/people/{nr}/clear-shared", {"supervisor"}),
    "lift-bar": ("/people/{nr}/lift-bar", {"supervisor"}),
    "trace": ("/trace", {"agent", "supervisor"}),
    "export-changes": ("/export-changes", {"agent", "supervisor"}),
}


def known_identity(desk_client, idp, email: str) -> str:
    """A Login.gov identity the local Login.gov has issued (it only accepts reports about
    those): the person signs in there once (the console refuses them: not staff)."""
    DeskBrowser(desk_client, idp).sign_in_as(email)
    return sub_for_emails([email])


@pytest.fixture
def linked(desk_client, idp):
    """Account NR, linked to an identity the local Login.gov knows; returns that sub."""
    make_account(NR, OWNER_EMAIL, first_name="Olive", last_name="Owner")
    sub = known_identity(desk_client, idp, INTRUDER_EMAIL)
    link(NR, sub)
    return sub


def as_staff(desk_browser, email: str) -> DeskBrowser:
    return signed_in(desk_browser, email, ROLE_OF[email])


def confirm_form(page) -> dict:
    """The fields of the confirmation page's form (the one with confirm=yes)."""
    assert page.status == 200, (page, page.body[:500])
    (form,) = [f for f in parse_forms(page.body) if f["fields"].get("confirm") == "yes"]
    return dict(form["fields"])


def events(nr: str = NR) -> list[AuditEvent]:
    return list(AuditEvent.query(nr, consistent_read=True))


def desk_events(nr: str = NR) -> list[AuditEvent]:
    return [e for e in events(nr) if e.actor.startswith("staff:")]


def account(nr: str = NR) -> Account:
    return Account.get(nr, consistent_read=True)


# --- who may use what -------------------------------------------------------------------------


@pytest.mark.parametrize("email", [VIEWER, AGENT, LEAD])
@pytest.mark.parametrize("operation", sorted(FIRST_PAGES))
def test_each_operation_is_open_to_the_roles_that_have_it_and_a_403_page_for_others(
    desk_browser, linked, email, operation
):
    path, allowed = FIRST_PAGES[operation]
    with_bar = operation == "lift-bar"
    if with_bar:  # a bar to lift
        tx_account = account()
        tx_account.update(actions=[Account.barred_subs.add({"barred-sub"})])
    as_staff(desk_browser, email)
    page = desk_browser.get(path.format(nr=NR))
    if ROLE_OF[email] in allowed:
        assert page.status == 200, (page, page.body[:400])
        assert "You cannot use this page" not in page.body
    else:
        assert page.status == 403
        assert "You cannot use this page" in page.body


@pytest.mark.parametrize("email", [VIEWER, AGENT])
def test_a_clear_shared_or_lift_bar_posted_without_the_role_changes_nothing(
    desk_browser, linked, email
):
    as_staff(desk_browser, email)
    token = desk_browser.csrf()
    for path, fields in [
        (f"/people/{NR}/clear-shared", {"address": OWNER_EMAIL}),
        (f"/people/{NR}/lift-bar", {"sub": linked}),
        (f"/people/{NR}/unlink", {"mode": "lost-account"}),
    ]:
        if email == AGENT and path.endswith("unlink"):
            continue
        page = desk_browser.post(
            path,
            {"csrf_token": token, "confirm": "yes", "seen": "v1", "ticket": "T", "reason": "r"}
            | fields,
        )
        assert page.status == 403, page
    assert account().linked_sub == linked
    assert desk_events() == []


# --- unlink, both modes; the audit record; Login.gov told --------------------------------------


def test_an_agent_unlinks_a_lost_account_the_audit_record_names_them_the_ticket_and_reason(
    desk_browser, linked, calls
):
    as_staff(desk_browser, AGENT)
    page = desk_browser.get(f"/people/{NR}/unlink?mode=lost-account")
    assert NR in page.body and OWNER_EMAIL in page.body and "Olive Owner" in page.body
    fields = confirm_form(page)
    calls.clear()
    done = desk_browser.post(
        f"/people/{NR}/unlink", {**fields, "ticket": "SD-101", "reason": "lost phone, verified"}
    )
    assert done.status == 200 and "Done: Unlink" in done.body, done.body[:600]
    assert account().linked_sub is None and not account().barred_subs
    (event,) = desk_events()
    detail = event.detail.as_dict()
    agent_sub = sub_for_emails([AGENT])
    assert event.event == "identity_unlinked" and event.actor == f"staff:{agent_sub}"
    assert detail["actor_email"] == AGENT and detail["actor_role"] == "agent"
    assert detail["ticket"] == "SD-101" and detail["reason"] == "lost phone, verified"
    # One transaction holds the change and its audit record.
    (tx,) = calls.params("TransactWriteItems")
    tables = [next(iter(item.values()))["TableName"] for item in tx["TransactItems"]]
    assert any(t.endswith("accounts") for t in tables) and any(t.endswith("audit") for t in tables)


def test_a_not_owner_unlink_bars_the_identity_and_tells_login_gov_with_a_signed_set(
    desk_browser, linked, idp
):
    import jwt

    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=not-owner"))
    assert fields.get("report") == "yes"  # offered, and ticked
    before = len(idp.received_security_events)
    done = desk_browser.post(
        f"/people/{NR}/unlink", {**fields, "ticket": "SD-102", "reason": "not the owner"}
    )
    assert done.status == 200 and "Login.gov was told" in done.body, done.body[:800]
    assert account().linked_sub is None and account().barred_subs == {linked}

    (received,) = idp.received_security_events[before:]
    assert received["client_id"] == DESK_CLIENT_ID and received["event_type"] == FRAUD
    assert received["sub"] == linked
    # The token itself: signed with the console's own key, from the console, to the endpoint.
    token = received["token"]
    assert jwt.get_unverified_header(token)["typ"] == "secevent+jwt"
    claims = jwt.decode(
        token,
        public_pem(DESK_KEY),
        algorithms=["RS256"],
        audience=idp.url(SECURITY_EVENTS_PATH),
        options={"require": ["iss", "aud", "jti", "iat"]},
    )
    assert claims["iss"] == DESK_CLIENT_ID and "exp" not in claims
    assert claims["events"][FRAUD]["subject"] == {
        "subject_type": "iss-sub",
        "iss": idp.issuer,
        "sub": linked,
    }


def test_login_gov_unreachable_the_unlink_stands_the_page_says_so_and_the_retry_tells_it(
    desk_browser, linked, idp
):
    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=not-owner"))
    before = len(idp.received_security_events)
    idp.faults["security_events_status"] = 503
    done = desk_browser.post(
        f"/people/{NR}/unlink", {**fields, "ticket": "SD-103", "reason": "not the owner"}
    )
    assert done.status == 200
    assert "Done: do not repeat the change." in done.body
    assert "Telling Login.gov failed" in done.body and "503" in done.body
    assert account().linked_sub is None and account().barred_subs == {linked}
    assert len(idp.received_security_events) == before

    idp.faults.clear()
    (retry,) = [f for f in parse_forms(done.body) if f["action"].endswith("/retry/report")]
    again = desk_browser.post(retry["action"], retry["fields"])
    assert again.status == 200 and "Login.gov was told" in again.body, again.body[:600]
    (received,) = idp.received_security_events[before:]
    assert received["sub"] == linked and received["event_type"] == FRAUD


def test_a_retried_report_is_only_for_an_identity_the_account_bars(desk_browser, linked, idp):
    as_staff(desk_browser, AGENT)
    before = len(idp.received_security_events)
    page = desk_browser.post(
        f"/people/{NR}/retry/report", {"csrf_token": desk_browser.csrf(), "sub": linked}
    )
    assert page.status == 409 and "Nothing was changed" in page.body
    assert len(idp.received_security_events) == before


def test_an_unlinked_identity_cannot_relink_after_not_owner(desk_browser, linked):
    from chalicelib import linking
    from chalicelib.errors import LinkBarred

    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=not-owner"))
    fields.pop("report")
    done = desk_browser.post(f"/people/{NR}/unlink", {**fields, "ticket": "T1", "reason": "r"})
    assert done.status == 200 and "Login.gov was told" not in done.body
    with pytest.raises(LinkBarred):
        linking.link_account(linked, NR, method=linking.LinkMethod.AUTOMATIC)
    assert account().linked_sub is None


# --- ticket, reason, CSRF, stale, faults: nothing changed ----------------------------------------


@pytest.mark.parametrize("missing", ["ticket", "reason"])
def test_a_change_without_a_ticket_or_a_reason_is_refused_and_changes_nothing(
    desk_browser, linked, missing
):
    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/disable"))
    given = {**fields, "ticket": "SD-1", "reason": "asked by phone", missing: "  "}
    page = desk_browser.post(f"/people/{NR}/disable", given)
    assert page.status == 400 and "Nothing was changed" in page.body
    assert missing in page.body
    assert account().status == "active" and desk_events() == []


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(desk_browser, linked):
    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=lost-account"))
    fields.pop("csrf_token")
    page = desk_browser.post(f"/people/{NR}/unlink", {**fields, "ticket": "T", "reason": "r"})
    assert page.status == 403
    assert account().linked_sub == linked and desk_events() == []


def test_a_confirmation_the_account_moved_past_is_refused_and_changes_nothing(desk_browser, linked):
    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/disable"))
    # Meanwhile the account changes (here: the registry's nightly import moves its name).
    account().update(actions=[Account.first_name.set("Olivia")])
    page = desk_browser.post(f"/people/{NR}/disable", {**fields, "ticket": "T", "reason": "r"})
    assert page.status == 409 and "changed since the confirmation was shown" in page.body
    assert "Nothing was changed" in page.body
    assert account().status == "active" and desk_events() == []


def test_unlinking_an_account_already_unlinked_is_refused_with_nothing_changed(
    desk_browser, other_desk_browser, linked
):
    as_staff(desk_browser, AGENT)
    as_staff(other_desk_browser, LEAD)
    first = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=lost-account"))
    second = confirm_form(other_desk_browser.get(f"/people/{NR}/unlink?mode=lost-account"))
    assert desk_browser.post(f"/people/{NR}/unlink", {**first, "ticket": "T", "reason": "r"})
    page = other_desk_browser.post(
        f"/people/{NR}/unlink", {**second, "ticket": "T2", "reason": "r2"}
    )
    assert (
        page.status == 409 and "is not linked" in page.body and "Nothing was changed" in page.body
    )
    assert len(desk_events()) == 1


def test_a_throttled_transaction_writes_neither_the_change_nor_its_audit_record(
    desk_browser, linked, calls
):
    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=not-owner"))
    calls.fail("TransactWriteItems", "ThrottlingException", times=10)
    page = desk_browser.post(f"/people/{NR}/unlink", {**fields, "ticket": "T", "reason": "r"})
    assert page.status == 503 and "Nothing was changed" in page.body
    assert account().linked_sub == linked and not account().barred_subs
    assert desk_events() == []
    assert Claim.get(f"sub#{linked}", consistent_read=True).nr_number == NR


def test_ending_the_sessions_failed_after_the_unlink_the_page_says_done_and_retries_it(
    desk_browser, linked, calls
):
    as_staff(desk_browser, AGENT)
    fields = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=lost-account"))
    calls.fail("Query", "ProvisionedThroughputExceededException", table="flows", times=50)
    done = desk_browser.post(f"/people/{NR}/unlink", {**fields, "ticket": "T", "reason": "r"})
    assert done.status == 200 and "Done: do not repeat the change." in done.body
    assert "Ending the sessions failed" in done.body
    assert account().linked_sub is None and len(desk_events()) == 1

    calls.rules.clear()
    (retry,) = [f for f in parse_forms(done.body) if f["action"].endswith("/retry/end-sessions")]
    assert retry["fields"]["sub"] == linked
    again = desk_browser.post(retry["action"], retry["fields"])
    assert again.status == 200 and f"Sessions of {linked} ended" in again.body
    assert len(desk_events()) == 1  # a retry changes no record


def test_a_notice_that_could_not_be_queued_is_shown_and_sent_again(desk_browser, linked, calls):
    as_staff(desk_browser, AGENT)
    entry = {"csrf_token": desk_browser.csrf(), "slot": "primary", "address": "o.new@example.com"}
    fields = confirm_form(desk_browser.post(f"/people/{NR}/set-email", entry))
    calls.fail("SendMessage", "ServiceUnavailable", times=5)
    calls.fail("SendMessageBatch", "ServiceUnavailable", times=5)
    done = desk_browser.post(f"/people/{NR}/set-email", {**fields, "ticket": "T", "reason": "r"})
    assert done.status == 200 and "Done: do not repeat the change." in done.body
    assert f"could not be queued for {OWNER_EMAIL}" in done.body
    assert account().primary_email == "o.new@example.com"

    calls.rules.clear()
    (retry,) = [f for f in parse_forms(done.body) if f["action"].endswith("/retry/notices")]
    again = desk_browser.post(retry["action"], retry["fields"])
    assert again.status == 200 and f"Told: {OWNER_EMAIL}" in again.body, again.body[:600]


# --- the other operations ---------------------------------------------------------------------------


def test_set_email_asks_first_then_confirms_old_and_new_then_corrects_it(desk_browser, linked):
    as_staff(desk_browser, AGENT)
    first = desk_browser.get(f"/people/{NR}/set-email")
    assert first.status == 200 and OWNER_EMAIL in first.body
    (entry,) = [f for f in parse_forms(first.body) if f["action"].endswith("/set-email")]
    page = desk_browser.post(
        entry["action"],
        {**entry["fields"], "slot": "primary", "address": "owner.new@example.com"},
    )
    assert "owner.new@example.com" in page.body and OWNER_EMAIL in page.body
    fields = confirm_form(page)
    done = desk_browser.post(entry["action"], {**fields, "ticket": "SD-5", "reason": "verified"})
    assert done.status == 200 and "owner.new@example.com" in done.body
    assert account().primary_email == "owner.new@example.com"
    (event,) = desk_events()
    assert event.event == "email_set_by_support" and event.detail.as_dict()["ticket"] == "SD-5"


def test_a_supervisor_clears_a_once_shared_address(desk_browser, desk_client, idp):
    from chalicelib import claims

    make_account(NR, "front.desk@example.com")
    make_account(OTHER, "front.desk@example.com")  # shared by both
    as_staff(desk_browser, LEAD)
    # The desk gives the other account its own address first (set-email), then clears.
    entry = confirm_form(
        desk_browser.post(
            f"/people/{OTHER}/set-email",
            {"csrf_token": desk_browser.csrf(), "slot": "primary", "address": "own@example.com"},
        )
    )
    assert (
        desk_browser.post(
            f"/people/{OTHER}/set-email", {**entry, "ticket": "T", "reason": "r"}
        ).status
        == 200
    )
    assert claims.read("front.desk@example.com").once_shared
    page = desk_browser.post(
        f"/people/{NR}/clear-shared",
        {"csrf_token": desk_browser.csrf(), "address": "front.desk@example.com"},
    )
    fields = confirm_form(page)
    done = desk_browser.post(f"/people/{NR}/clear-shared", {**fields, "ticket": "T", "reason": "r"})
    assert done.status == 200 and "is cleared" in done.body
    assert not claims.read("front.desk@example.com").shared


def test_disable_then_enable_and_a_supervisor_lifts_a_bar(desk_browser, linked):
    as_staff(desk_browser, LEAD)
    for operation, status in (("disable", "disabled"), ("enable", "active")):
        fields = confirm_form(desk_browser.get(f"/people/{NR}/{operation}"))
        done = desk_browser.post(
            f"/people/{NR}/{operation}", {**fields, "ticket": "T", "reason": "r"}
        )
        assert done.status == 200 and account().status == status
    fields = confirm_form(desk_browser.get(f"/people/{NR}/unlink?mode=not-owner"))
    fields.pop("report")
    desk_browser.post(f"/people/{NR}/unlink", {**fields, "ticket": "T", "reason": "r"})
    chooser = desk_browser.get(f"/people/{NR}/lift-bar")
    assert linked in chooser.body
    fields = confirm_form(desk_browser.get(f"/people/{NR}/lift-bar?sub={linked}"))
    done = desk_browser.post(f"/people/{NR}/lift-bar", {**fields, "ticket": "T", "reason": "r"})
    assert done.status == 200 and not account().barred_subs
    assert "identity_bar_lifted" in [e.event for e in desk_events()]


def test_trace_and_export_changes_are_forms_for_agents(desk_browser, linked):
    as_staff(desk_browser, AGENT)
    page = desk_browser.get("/trace?ref=3f2a9c1d")
    assert page.status == 200 and "request_id like /^3f2a9c1d/" in page.body
    assert desk_browser.get("/trace?ref=nope").status == 400
    fields = confirm_form(desk_browser.get(f"/people/{NR}/disable"))
    desk_browser.post(f"/people/{NR}/disable", {**fields, "ticket": "T", "reason": "r"})
    from chalicelib import clock

    today = clock.utc_now().strftime("%Y-%m-%d")
    page = desk_browser.get(f"/export-changes?since={today}")
    assert page.status == 200 and NR in page.body
    csv = desk_browser.get(f"/export-changes?since={today}&format=csv")
    assert csv.headers["Content-Type"].startswith("text/csv") and NR in csv.body


# --- the local Login.gov checks what it is told, as Login.gov does ------------------------------


@pytest.mark.parametrize(
    ("change", "err"),
    [
        ({"key": "another"}, "jws"),
        ({"aud": "https://elsewhere.example/api/risc/security_events"}, "jwtAud"),
        ({"exp": 4102444800}, "setData"),
        ({"typ": "JWT"}, "jwtHdr"),
        ({"sub": "not-issued-by-it"}, "setData"),
        (
            {"event": "https://schemas.openid.net/secevent/risc/event-type/account-disabled"},
            "setType",
        ),
    ],
)
def test_the_local_login_gov_refuses_a_set_it_would_not_accept(desk_client, idp, change, err):
    import jwt
    import requests

    from localdev.idp import generate_rsa_key, private_pem

    sub = known_identity(desk_client, idp, "someone.reported@example.net")
    endpoint = idp.url(SECURITY_EVENTS_PATH)
    event = change.get("event", FRAUD)
    claims = {
        "iss": DESK_CLIENT_ID,
        "jti": f"jti-{err}-{len(idp.received_security_events)}-{sorted(change)}",
        "iat": 1,
        "aud": change.get("aud", endpoint),
        "events": {
            event: {
                "subject": {
                    "subject_type": "iss-sub",
                    "iss": idp.issuer,
                    "sub": change.get("sub", sub),
                }
            }
        },
        **({"exp": change["exp"]} if "exp" in change else {}),
    }
    key = private_pem(generate_rsa_key()) if "key" in change else DESK_ENV["LOGIN_GOV_PRIVATE_KEY"]
    token = jwt.encode(
        claims, key, algorithm="RS256", headers={"typ": change.get("typ", "secevent+jwt")}
    )
    before = len(idp.received_security_events)
    answer = requests.post(
        endpoint, data=token, headers={"Content-Type": "application/secevent+jwt"}, timeout=10
    )
    assert answer.status_code == 400 and answer.json()["err"] == err, answer.text
    assert len(idp.received_security_events) == before
