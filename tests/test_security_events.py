"""Login.gov security events: each type acts as documented; forged and replayed ones don't.

Tokens are built as Login.gov's identity-idp builds them (app/services/push_notification):
each event under the prefix Login.gov sends it with, an iss-sub subject (or an email
subject for identifier-changed / identifier-recycled), `exp` 12 hours after `iat`.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest

from chalicelib import linking
from chalicelib.errors import IdentityDisabled
from chalicelib.models import Account, AuditEvent, Claim, Flow
from localdev.idp import generate_rsa_key
from tests.invariants import assert_invariants
from tests.support.accounts import make_account
from tests.support.browser import request_recovery, signed_in_unmatched
from tests.support.security_events import AUDIENCE, LOGIN_GOV, PREFIXES, RISC, set_for

EMAIL = "dr.alice@example.com"
NR = "1000000001"
DISABLED_PAGE = "Login.gov has disabled this Login.gov account"

ISS_SUB_EVENTS = sorted(set(PREFIXES) - {"identifier-changed", "identifier-recycled"})


@pytest.fixture
def linked(browser):
    """A linked account with a live session; returns (browser, sub)."""
    make_account(primary=EMAIL)
    sub = str(uuid.uuid4())
    browser.follow(browser.sign_in([EMAIL], sub=sub))
    assert browser.get("/account").status == 200
    return browser, sub


def push(app_client, token: str, content_type="application/secevent+jwt"):
    resp = app_client.http.post(
        "/api/security-events", body=token, headers={"Content-Type": content_type}
    )
    body = json.loads(resp.body) if resp.body else None
    return resp.status_code, body


def sessions_of(sub: str) -> list:
    return [f for f in Flow.scan() if f.flow_id.startswith("session#") and f.subject == sub]


def audit_names(nr=NR) -> list[str]:
    return [e.event for e in AuditEvent.query(nr)]


def jtis_recorded() -> int:
    return sum(1 for f in Flow.scan() if f.flow_id.startswith("setjti#"))


def identity_item(sub: str) -> Claim | None:
    try:
        return Claim.get(Claim.sub_key(sub), consistent_read=True)
    except Claim.DoesNotExist:
        return None


def tables() -> tuple:
    """Everything but the flows (sessions, jtis): accounts, claims, audit."""
    return (
        sorted(json.dumps(a.serialize(), sort_keys=True) for a in Account.scan()),
        sorted(json.dumps(c.serialize(), sort_keys=True) for c in Claim.scan()),
        sorted(json.dumps(e.serialize(), sort_keys=True) for e in AuditEvent.scan()),
    )


# --- account-purged, -disabled, -enabled on a linked identity -------------------------------------


def test_account_purged_unlinks_so_the_person_can_relink(app_client, idp, linked):
    browser, sub = linked
    status, _ = push(app_client, set_for(idp, "account-purged", sub))
    assert status == 202
    account = Account.get(NR)
    assert account.linked_sub is None and account.legacy_username_retired
    with pytest.raises(Claim.DoesNotExist):
        Claim.get(Claim.sub_key(sub))
    assert sessions_of(sub) == []
    assert browser.get("/account").status == 302
    assert "identity_unlinked_purged" in audit_names()
    # The person re-registers at Login.gov (a new sub) and links again by email.
    browser.cookies.clear()
    assert browser.sign_in([EMAIL], sub=str(uuid.uuid4())).location == "/account"


def test_account_disabled_ends_sessions_but_keeps_the_link(app_client, idp, linked):
    browser, sub = linked
    status, _ = push(app_client, set_for(idp, "account-disabled", sub))
    assert status == 202
    assert sessions_of(sub) == []
    assert browser.get("/account").status == 302
    assert Account.get(NR).linked_sub == sub
    assert "login_gov_account_disabled" in audit_names()


def test_a_disabled_identity_signs_in_again_only_once_login_gov_enables_it(app_client, idp, linked):
    browser, sub = linked
    now = int(time.time())
    assert push(app_client, set_for(idp, "account-disabled", sub, iat=now - 10))[0] == 202
    browser.cookies.clear()
    page = browser.sign_in([EMAIL], sub=sub)
    assert page.status == 400 and DISABLED_PAGE in page.body
    assert sessions_of(sub) == [] and Account.get(NR).linked_sub == sub
    assert push(app_client, set_for(idp, "account-enabled", sub, iat=now))[0] == 202
    assert browser.sign_in([EMAIL], sub=sub).location == "/account"


def test_a_session_a_racing_sign_in_left_after_the_disable_is_refused_at_its_next_use(
    app_client, idp, linked
):
    """A sign-in that read the link before the disabled mark committed, and wrote its
    session after the event ended the identity's sessions, leaves one session behind: the
    account carries the mark too, so the session opens nothing and is ended."""
    from chalicelib import signin, web

    browser, sub = linked
    assert push(app_client, set_for(idp, "account-disabled", sub))[0] == 202
    assert Account.get(NR).login_gov_disabled is True
    for path in ("/account", "/account/email"):
        browser.cookies[web.cookie_name(web.SESSION_COOKIE)] = signin.start_linked_session(
            sub, NR, notice=None
        )
        assert len(sessions_of(sub)) == 1
        page = browser.get(path)
        assert page.status == 400 and DISABLED_PAGE in page.body
        assert sessions_of(sub) == []
    # Enabled again: the mark goes from the account as from the link, and sign-in works.
    assert push(app_client, set_for(idp, "account-enabled", sub))[0] == 202
    assert not Account.get(NR).login_gov_disabled
    browser.cookies.clear()
    assert browser.sign_in([EMAIL], sub=sub).location == "/account"
    assert browser.get("/account").status == 200


def test_an_older_disable_delivered_after_the_enable_does_not_lock_anyone_out(
    app_client, idp, linked
):
    """Login.gov may deliver events late and out of order: their own times decide."""
    browser, sub = linked
    now = int(time.time())
    for event, issued in (("account-enabled", now), ("account-disabled", now - 60)):
        assert push(app_client, set_for(idp, event, sub, iat=issued))[0] == 202
    browser.cookies.clear()
    assert browser.sign_in([EMAIL], sub=sub).location == "/account"
    claim = Claim.get(Claim.sub_key(sub))
    assert (claim.disabled_at, claim.enabled_at, claim.disabled) == (now - 60, now, False)


# --- the disabled mark belongs to the identity, linked or not ------------------------------------


def put_back(session) -> None:
    """Restore a session the event ended, as a sign-in racing the event would have left it."""
    session.save()


def test_an_unlinked_identity_login_gov_disabled_neither_signs_in_nor_recovers_until_enabled(
    app_client, idp, browser, other_browser, mailbox
):
    """Issue 16: the mark was kept only on a link, so a disabled identity that was not
    linked yet signed in again and linked a record (by email or by a recovery code)."""
    make_account(primary=EMAIL)
    sub, now = str(uuid.uuid4()), int(time.time())
    # Not linked yet: signed in with an address the registry does not know, and a recovery
    # code asked for the registry's address.
    page = request_recovery(
        browser, EMAIL, signed_in_unmatched(browser, "alice.new@example.net", sub=sub)
    )
    assert page.location == "/link/recover/verify"
    code = mailbox.code_for(EMAIL)
    (session,) = sessions_of(sub)

    assert push(app_client, set_for(idp, "account-disabled", sub, iat=now - 30)) == (202, None)
    assert sessions_of(sub) == []
    assert identity_item(sub).disabled and identity_item(sub).nr_number is None

    # A sign-in, by the registry's own address or any other, is refused.
    for emails in ([EMAIL], ["alice.new@example.net"]):
        page = other_browser.sign_in(emails, sub=sub)
        assert page.status == 400 and DISABLED_PAGE in page.body
        assert sessions_of(sub) == [] and "nr_session" not in other_browser.cookies
    # A session left behind (a sign-in racing the event) opens no recovery page, sends no
    # code and links nothing with the code it already had; each refusal ends it.
    mails = len(mailbox.messages)
    for method, path, fields in (
        ("GET", "/link/no-match", None),
        ("GET", "/link/recover", None),
        ("GET", "/link/recover/verify", None),
        ("POST", "/link/recover", {"email": EMAIL}),
        ("POST", "/link/recover/verify", {"code": code}),
    ):
        put_back(session)
        page = (
            browser.get(path)
            if method == "GET"
            else browser.post(path, {"csrf_token": session.csrf_token, **fields})
        )
        assert page.status == 400 and DISABLED_PAGE in page.body, (path, page.status)
        assert sessions_of(sub) == [], path
    assert len(mailbox.messages) == mails
    assert Account.get(NR).linked_sub is None
    # The link's own transaction refuses it too (the database decides, not a read).
    with pytest.raises(IdentityDisabled):
        linking.link_account(sub, NR, method=linking.LinkMethod.RECOVERY, matched=EMAIL)
    assert Account.get(NR).linked_sub is None and identity_item(sub).nr_number is None
    assert_invariants()

    # Login.gov enables it (a later event): it signs in and links as anyone would.
    assert push(app_client, set_for(idp, "account-enabled", sub, iat=now)) == (202, None)
    assert other_browser.sign_in([EMAIL], sub=sub).location == "/account"
    assert Account.get(NR).linked_sub == sub
    item = identity_item(sub)
    assert (item.nr_number, item.disabled_at, item.enabled_at) == (NR, now - 30, now)
    assert_invariants()


def test_an_enable_remembered_for_an_unknown_identity_outranks_an_older_disable(
    app_client, idp, browser
):
    make_account(primary=EMAIL)
    sub, now = str(uuid.uuid4()), int(time.time())
    assert push(app_client, set_for(idp, "account-enabled", sub, iat=now)) == (202, None)
    assert push(app_client, set_for(idp, "account-disabled", sub, iat=now - 60)) == (202, None)
    assert browser.sign_in([EMAIL], sub=sub).location == "/account"
    assert_invariants()


def test_a_purge_drops_an_unlinked_identitys_marks_and_remembers_the_purge(
    app_client, idp, browser
):
    make_account(primary=EMAIL)
    sub = str(uuid.uuid4())
    assert push(app_client, set_for(idp, "account-disabled", sub)) == (202, None)
    assert push(app_client, set_for(idp, "account-purged", sub)) == (202, None)
    assert identity_item(sub) is None
    assert Claim.get(Claim.purged_key(sub)) is not None
    assert browser.sign_in([EMAIL], sub=sub).status == 400  # purged: never links
    assert Account.get(NR).linked_sub is None
    assert_invariants()


@pytest.mark.parametrize("mode", ["lost-account", "not-owner"])
def test_support_unlinking_a_disabled_identity_keeps_its_mark(app_client, idp, linked, mode):
    """Issue 16: the unlink deleted the mark with the link, so the still-disabled identity
    linked again at its next sign-in."""
    from supportdesk import desk

    browser, sub = linked
    now = int(time.time())
    assert push(app_client, set_for(idp, "account-disabled", sub, iat=now - 30))[0] == 202
    assert desk.find(NR)[0]["login_gov_disabled"] is True
    result = desk.unlink(NR, reason="ticket 7", actor="desk", mode=mode)
    assert result["login_gov_disabled"] is True
    item = identity_item(sub)
    assert item.nr_number is None and item.disabled
    account = Account.get(NR)
    assert account.linked_sub is None and not account.login_gov_disabled
    assert_invariants()
    browser.cookies.clear()
    page = browser.sign_in([EMAIL], sub=sub)
    assert page.status == 400 and DISABLED_PAGE in page.body
    assert Account.get(NR).linked_sub is None and sessions_of(sub) == []
    # Enabled: lost-account relinks by email; not-owner is still barred from this account.
    assert push(app_client, set_for(idp, "account-enabled", sub, iat=now))[0] == 202
    page = browser.sign_in([EMAIL], sub=sub)
    if mode == "lost-account":
        assert page.location == "/account" and Account.get(NR).linked_sub == sub
    else:
        assert page.status == 403 and Account.get(NR).linked_sub is None
    assert_invariants()


def test_support_unlinking_an_identity_without_marks_leaves_no_item(app_client, idp, linked):
    from supportdesk import desk

    _, sub = linked
    result = desk.unlink(NR, reason="ticket 8", actor="desk", mode="lost-account")
    assert result["login_gov_disabled"] is False
    assert identity_item(sub) is None
    assert_invariants()


def test_a_disable_committing_during_a_first_sign_in_refuses_its_link(
    app_client, idp, calls, browser
):
    """The sign-in read the identity before the disable committed (not disabled, not
    linked); the disable commits before the link's transaction: the link is refused by
    the database, with the disabled page, and nothing is linked."""
    make_account(primary=EMAIL)
    sub = str(uuid.uuid4())
    answers = []
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: answers.append(push(app_client, set_for(idp, "account-disabled", sub))),
        table="accounts",
    )
    page = browser.sign_in([EMAIL], sub=sub)
    assert rule.fired == 1 and answers == [(202, None)]
    assert page.status == 400 and DISABLED_PAGE in page.body
    assert Account.get(NR).linked_sub is None and sessions_of(sub) == []
    assert identity_item(sub).disabled and identity_item(sub).nr_number is None
    assert_invariants()


def test_a_first_sign_in_linking_while_a_disable_is_handled_ends_marked_and_signed_out(
    app_client, idp, calls, browser
):
    """The event read the identity (not linked), then a first sign-in linked it before the
    event committed: the event's write is refused, it reads again, and marks the new link
    and its account alike; the sign-in's session is ended."""
    make_account(primary=EMAIL)
    sub = str(uuid.uuid4())
    made = []
    rule = calls.interleave(
        "TransactWriteItems",
        lambda: made.append(browser.sign_in([EMAIL], sub=sub).location),
        table="flows",
        key_prefix="setjti#",
    )
    assert push(app_client, set_for(idp, "account-disabled", sub)) == (202, None)
    assert rule.fired == 1 and made == ["/account"]
    account, item = Account.get(NR), identity_item(sub)
    assert account.linked_sub == sub and item.nr_number == NR
    assert item.disabled and account.login_gov_disabled
    assert sessions_of(sub) == [] and browser.get("/account").status == 302
    assert_invariants()


# --- every documented event: acknowledged and recorded ------------------------------------------


@pytest.mark.parametrize(
    "event", [e for e in ISS_SUB_EVENTS if e not in ("account-purged", "account-disabled")]
)
def test_other_events_are_audited_and_change_nothing_else(app_client, idp, linked, event):
    """Under the prefix Login.gov sends each with: password-reset, reproof-completed and
    mfa-limit-account-locked are Login.gov's own (schemas.login.gov)."""
    browser, sub = linked
    status, _ = push(app_client, set_for(idp, event, sub))
    assert status == 202
    assert f"login_gov_{event.replace('-', '_')}" in audit_names()
    assert Account.get(NR).linked_sub == sub
    assert browser.get("/account").status == 200


@pytest.mark.parametrize("event", ["identifier-recycled", "identifier-changed"])
def test_an_address_event_is_recorded_on_every_account_holding_the_address(
    app_client, idp, linked, event, logged
):
    """Login.gov's email-subject events: recorded on each registry account whose primary or
    secondary address it is (a shared address: on each), and no claim or link changes."""
    browser, sub = linked
    make_account("1000000002", primary="bo@example.com", secondary="office@example.com")
    make_account("1000000003", primary="cy@example.com", secondary="office@example.com")
    before = tables()[1]
    for address in ("  DR.Alice@Example.COM ", "office@example.com"):
        assert push(app_client, set_for(idp, event, email=address)) == (202, None)
    name = f"login_gov_{event.replace('-', '_')}"
    for nr, slot in ((NR, "primary"), ("1000000002", "secondary"), ("1000000003", "secondary")):
        (record,) = [e for e in AuditEvent.query(nr) if e.event == name]
        assert record.actor == "login.gov:risc" and record.detail["address"] == slot
    assert tables()[1] == before  # no claim changed
    assert Account.get(NR).linked_sub == sub and browser.get("/account").status == 200
    lines = [r for r in logged.records if r.get("event") == "security_event_received"]
    assert len(lines) == 2 and all(r["risc_event"] == event for r in lines)
    said = json.dumps(logged.records).lower()
    assert "alice" not in said and "office@" not in said  # keyed stand-ins only


@pytest.mark.parametrize("address", ["nobody@example.com", "not an address"])
def test_an_address_event_matching_no_account_writes_nothing_but_its_jti(
    app_client, idp, linked, address
):
    before = tables()
    assert push(app_client, set_for(idp, "identifier-recycled", email=address)) == (202, None)
    assert tables() == before and jtis_recorded() == 1


@pytest.mark.parametrize(
    "case",
    [
        "unknown-event",
        "unknown-prefix",
        "unknown-subject-type",
        "email-subject-on-an-identity-event",
    ],
)
def test_events_login_gov_does_not_document_are_acknowledged_and_logged(
    app_client, idp, linked, case, logged
):
    """Login.gov retries anything but a 2xx: an event we cannot act on is acknowledged,
    logged (its type, cut short and made safe) and remembered, never refused."""
    _, sub = linked
    tokens = {
        "unknown-event": lambda: set_for(
            idp, "x", sub, uri=RISC + "account-exploded\n" + "x" * 300
        ),
        "unknown-prefix": lambda: set_for(idp, "x", sub, uri=LOGIN_GOV + "account-purged"),
        "unknown-subject-type": lambda: set_for(
            idp,
            "account-disabled",
            sub,
            subject={"subject_type": "phone", "phone_number": "+12025550100"},
        ),
        "email-subject-on-an-identity-event": lambda: set_for(
            idp, "account-purged", sub, subject={"subject_type": "email", "email": EMAIL}
        ),
    }
    token = tokens[case]()
    before = tables()
    assert push(app_client, token) == (202, None)
    assert tables() == before and jtis_recorded() == 1
    assert sessions_of(sub) and Account.get(NR).linked_sub == sub
    (line,) = [r for r in logged.records if r.get("event") == "security_event_ignored"]
    assert len(line["risc_event"]) <= 120 and "\n" not in line["risc_event"]
    assert "+1202" not in json.dumps(logged.records) and EMAIL not in json.dumps(logged.records)
    # Delivered again: a duplicate, acknowledged once more and remembered once.
    assert push(app_client, token) == (202, None)
    assert jtis_recorded() == 1


@pytest.mark.parametrize("event", ["password-reset", "identifier-recycled"])
def test_a_duplicate_delivery_is_accepted_and_changes_nothing(app_client, idp, linked, event):
    """Exactly once in effect: Login.gov may deliver a SET twice (a lost 202); the second
    delivery is answered 202 like the first and acts no more."""
    _, sub = linked
    token = (
        set_for(idp, event, email=EMAIL)
        if event.startswith("identifier")
        else set_for(idp, event, sub)
    )
    assert push(app_client, token) == (202, None)
    assert push(app_client, token) == (202, None)
    assert audit_names().count(f"login_gov_{event.replace('-', '_')}") == 1
    assert jtis_recorded() == 1


def test_event_for_an_unknown_subject_is_accepted_and_changes_nothing(app_client, idp, linked):
    _, sub = linked
    assert push(app_client, set_for(idp, "account-purged", str(uuid.uuid4())))[0] == 202
    assert Account.get(NR).linked_sub == sub


# --- what is still refused: tokens that fail verification, payloads that are not events ----------


@pytest.mark.parametrize(
    "case, expected_err",
    [
        ("forged-signature", "invalid_key"),
        ("wrong-aud", "invalid_audience"),
        ("wrong-iss", "invalid_issuer"),
        ("missing-jti", "invalid_request"),
        ("too-old", "invalid_request"),
        ("subject-from-other-issuer", "invalid_request"),
        ("iss-sub-without-sub", "invalid_request"),
        ("email-subject-without-email", "invalid_request"),
        ("no-event", "invalid_request"),
        ("not-a-jwt", "invalid_request"),
        ("alg-none", "invalid_key"),
    ],
)
def test_forged_or_malformed_tokens_are_refused(app_client, idp, linked, case, expected_err):
    _, sub = linked
    make = idp.security_event_token
    tokens = {
        "forged-signature": lambda: make(AUDIENCE, "account-purged", sub, key=generate_rsa_key()),
        "wrong-aud": lambda: make("urn:someone:else", "account-purged", sub),
        "wrong-iss": lambda: make(AUDIENCE, "account-purged", sub, iss="https://evil.example/"),
        "missing-jti": lambda: make(AUDIENCE, "account-purged", sub, omit=("jti",)),
        "too-old": lambda: make(AUDIENCE, "account-purged", sub, iat=int(time.time()) - 3 * 86400),
        "subject-from-other-issuer": lambda: set_for(
            idp,
            "account-purged",
            subject={"subject_type": "iss-sub", "iss": "https://evil.example/", "sub": sub},
        ),
        "iss-sub-without-sub": lambda: set_for(
            idp, "account-purged", subject={"subject_type": "iss-sub", "iss": idp.issuer}
        ),
        "email-subject-without-email": lambda: set_for(
            idp, "identifier-recycled", subject={"subject_type": "email"}
        ),
        "no-event": lambda: make(AUDIENCE, "account-purged", sub, events={}),
        "not-a-jwt": lambda: "hello",
        "alg-none": lambda: _alg_none(idp, sub),
    }
    status, body = push(app_client, tokens[case]())
    assert status == 400 and body["err"] == expected_err
    assert Account.get(NR).linked_sub == sub
    assert sessions_of(sub) and jtis_recorded() == 0
    assert not [n for n in audit_names() if n.startswith("login_gov_") or "purged" in n]


@pytest.mark.parametrize(
    "issued, status",
    [
        pytest.param(-24 * 3600, 202, id="a-day-old"),
        pytest.param(-24 * 3600 - 1, 400, id="older-than-a-day"),
        pytest.param(10, 202, id="iat-future-within-leeway"),
        pytest.param(11, 400, id="iat-future-beyond-leeway"),
    ],
)
def test_a_security_event_token_is_fresh_by_our_clock(clock, app_client, idp, issued, status):
    """Issued a day ago at most (its exp aside), and in the future only within the leeway.
    By our clock, far from the wall clock here."""
    now = int(clock.time())
    token = set_for(idp, "password-reset", str(uuid.uuid4()), iat=now + issued, exp=now + 60)
    code, body = push(app_client, token)
    assert code == status
    if status == 400:
        assert body["err"] == "invalid_request"


def _alg_none(idp, sub):
    import jwt

    return jwt.encode(
        {
            "iss": idp.issuer,
            "aud": AUDIENCE,
            "iat": int(time.time()),
            "jti": "j" * 10,
            "events": {},
        },
        None,
        algorithm="none",
    )


def test_pushed_over_http_by_the_local_identity_provider(app_client, idp, linked):
    """The emulator's push helper sends exactly what the endpoint accepts."""
    _, sub = linked
    token = set_for(idp, "account-disabled", sub)
    header = token.split(".")[0]
    import base64

    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    assert decoded["typ"] == "secevent+jwt" and decoded["alg"] == "RS256" and decoded["kid"]
    assert push(app_client, token, content_type="application/secevent+jwt")[0] == 202


# --- what Login.gov's own tokens look like ------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    ["password-reset", "reproof-completed", "mfa-limit-account-locked", "recovery-activated"],
)
def test_the_local_login_gov_sends_each_event_under_its_real_prefix(app_client, idp, linked, event):
    """The stand-in's tokens are what Login.gov pushes: its own three events under
    schemas.login.gov, the rest under schemas.openid.net; each is recorded, not ignored."""
    _, sub = linked
    token = idp.security_event_token(AUDIENCE, event, sub)
    (uri,) = jwt.decode(token, options={"verify_signature": False})["events"]
    assert uri == PREFIXES[event] + event
    assert push(app_client, token) == (202, None)
    assert f"login_gov_{event.replace('-', '_')}" in audit_names()


def test_a_token_without_kid_is_checked_against_every_published_key(app_client, idp, linked):
    """Login.gov's older security event tokens carry no `kid`; during a key rotation two
    keys are published. The signature decides: a token signed by either verifies, one
    signed by any other key is refused."""
    _, sub = linked
    idp.rotate_keys()  # two keys published; the new one signs
    assert push(
        app_client, idp.security_event_token(AUDIENCE, "password-reset", sub, with_kid=False)
    ) == (202, None)
    forged = idp.security_event_token(
        AUDIENCE, "account-purged", sub, with_kid=False, key=generate_rsa_key()
    )
    status, body = push(app_client, forged)
    assert status == 400 and body["err"] == "invalid_key"
    assert Account.get(NR).linked_sub == sub
