"""The support console's sign-in, staff list, roles, sessions and page security, through its
routes (console/app.py in Chalice's test client) against moto and the local Login.gov.
"""

from __future__ import annotations

import html
import re

import pytest
from chalice import Blueprint, Chalice
from chalice.test import Client

from chalicelib import edge as shared_edge
from chalicelib.config import ConfigurationError
from localdev.idp import sub_for_emails
from tests.support.browser import query_of
from tests.support.console import (
    ABSOLUTE,
    DESK_BASE,
    DESK_CLIENT_ID,
    FRESH,
    IDLE,
    PHISHING_RESISTANT,
    DeskBrowser,
    add_staff,
    reset_desk_caches,
    signed_in,
)

VIEWER, AGENT, LEAD = "viewer@desk.example.gov", "agent@desk.example.gov", "lead@desk.example.gov"
ROLE_OF = {VIEWER: "viewer", AGENT: "agent", LEAD: "supervisor"}


def sign_in_link(page) -> str:
    """The sign-in link of a "sign in (again)" page: /login with where to come back to."""
    assert page.status in (401, 403), (page, page.body[:300])
    found = re.search(r'href="(/login\?return_to=[^"]+)"', page.body)
    assert found, page.body
    return html.unescape(found.group(1))


def metric(logged, name: str) -> int:
    return sum(r.get(name, 0) for r in logged.records if "_aws" in r)


def desk_sessions() -> list:
    from supportdesk.console.models import DeskItem, DeskSession

    return [item for item in DeskItem.scan() if isinstance(item, DeskSession)]


def staff_subs() -> dict[str, str]:
    from supportdesk.console import staff

    return {m.email: m.sub for m in staff.list_staff()}


def session_cookie(browser) -> str | None:
    return browser.cookies.get("nr_desk")


# --- the sign-in request --------------------------------------------------------------------


def test_login_asks_for_phishing_resistance_a_new_authentication_and_max_age(desk_browser):
    url = desk_browser.start_signin()
    params = query_of(url)
    assert params["client_id"] == DESK_CLIENT_ID
    assert params["redirect_uri"] == DESK_BASE + "/auth/callback"
    assert params["acr_values"].split() == ["urn:acr.login.gov:auth-only", PHISHING_RESISTANT]
    assert params["prompt"] == "login"
    assert params["max_age"] == str(FRESH)
    assert params["code_challenge_method"] == "S256"


def test_a_staff_member_signs_in_and_the_header_names_them_and_their_role(desk_browser):
    signed_in(desk_browser, VIEWER, "viewer")
    page = desk_browser.get("/home")
    assert page.status == 200
    assert f"Signed in as <strong>{VIEWER}</strong> (Viewer)" in page.body
    assert 'action="/logout"' in page.body and 'href="/staff"' not in page.body
    assert set(desk_browser.cookies) == {"nr_desk"}  # its own cookie; not nr_session
    (session,) = desk_sessions()
    assert session.subject == sub_for_emails([VIEWER])


def test_the_session_cookie_is_host_only_http_only_and_lax(desk_browser):
    add_staff(VIEWER, "viewer")
    callback = desk_browser.authorize(desk_browser.start_signin(), [VIEWER])
    resp = desk_browser.client.http.get(
        callback[len(DESK_BASE) :],
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in desk_browser.cookies.items())},
    )
    cookies = resp.headers["Set-Cookie"]
    cookies = cookies if isinstance(cookies, list) else [cookies]
    (session,) = [c for c in cookies if c.startswith("nr_desk=")]
    assert f"Max-Age={ABSOLUTE}" in session and "HttpOnly" in session and "SameSite=Lax" in session
    assert "Domain" not in session and "Path=/" in session


def test_on_https_the_cookie_is_a_host_cookie(monkeypatch, desk_env):
    from chalicelib import web

    monkeypatch.setenv("APP_BASE_URL", "https://desk.nrcme.example.gov")
    reset_desk_caches()
    from supportdesk.console import sessions

    cookie = web.set_cookie(sessions.COOKIE, "token", 60)
    assert cookie.startswith("__Host-nr_desk=token;") and "Secure" in cookie
    assert "Domain" not in cookie


# --- phishing-resistant authenticators --------------------------------------------------------


def test_a_weak_authenticator_is_refused_counted_and_binds_nothing(desk_browser, idp, logged):
    from supportdesk.console import staff

    add_staff(AGENT, "agent")
    idp.faults["weak_authenticator"] = True
    page = desk_browser.sign_in_as(AGENT)
    assert page.status == 403
    assert "phishing-resistant authenticator" in page.body
    assert "nr_desk" not in desk_browser.cookies and desk_sessions() == []
    assert staff.get_pending("agent@desk.example.gov") is not None  # still pending
    assert staff.list_staff() == []
    assert "staff_signin_refused_assurance" in logged.names()
    assert metric(logged, "StaffSignInRefused") == 1


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        pytest.param({"vot": "C1.C2.Ca"}, True, id="vot-phishing-resistant"),
        pytest.param({"vot": "C1.C2.Cb"}, True, id="vot-piv-cac"),
        pytest.param({"vot": "C1.C2"}, False, id="vot-weaker"),
        pytest.param({"vot": ["C1", "Ca"]}, False, id="vot-not-a-string"),
        pytest.param(
            {"acr": "http://idmanagement.gov/ns/assurance/aal/3"}, False, id="acr-unasked"
        ),
        pytest.param({"acr": "urn:acr.login.gov:verified"}, False, id="acr-another-level"),
        pytest.param({"acr": "urn:acr.login.gov:auth-only"}, False, id="ial-only-not-login-gov"),
    ],
)
def test_the_assurance_the_id_token_asserts_decides(desk_browser, idp, claims, accepted):
    add_staff(AGENT, "agent", bound=True)
    idp.faults["id_token_claims"] = claims
    page = desk_browser.sign_in_as(AGENT)
    if accepted:
        assert page.location == "/home", page
    else:
        assert page.status == 403, page
        assert "nr_desk" not in desk_browser.cookies and desk_sessions() == []


def test_an_ial_only_answer_is_accepted_where_a_setting_says_the_provider_enforces(
    desk_browser, idp, monkeypatch
):
    add_staff(AGENT, "agent", bound=True)
    idp.faults["id_token_claims"] = {"acr": "urn:acr.login.gov:auth-only"}
    monkeypatch.setenv("DESK_ACCEPT_UNASSERTED_AAL", "true")
    reset_desk_caches()
    assert desk_browser.sign_in_as(AGENT).location == "/home"


@pytest.mark.parametrize(
    ("issuer", "setting", "accepts"),
    [
        ("https://secure.login.gov/", "", True),
        ("https://idp.int.identitysandbox.gov/", "auto", True),
        ("https://secure.login.gov/", "false", False),
        ("http://127.0.0.1:8001/", "", False),
        ("https://other.example.gov/", "true", True),
    ],
)
def test_only_login_gov_issuers_are_trusted_to_enforce_without_asserting_by_default(
    desk_env, monkeypatch, issuer, setting, accepts
):
    from supportdesk.console.settings import desk_settings

    monkeypatch.setenv("LOGIN_GOV_ISSUER", issuer)
    monkeypatch.setenv("DESK_ACCEPT_UNASSERTED_AAL", setting)
    reset_desk_caches()
    assert desk_settings().accept_unasserted_aal is accepts


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOGIN_GOV_ACR_VALUES", "urn:acr.login.gov:auth-only"),
        ("LOGIN_GOV_PROMPT", "select_account"),
        ("DESK_SESSION_IDLE_SECONDS", "999999"),
        ("DESK_FRESH_SIGNIN_SECONDS", "0"),
    ],
)
def test_settings_that_undo_a_protection_are_refused(desk_env, monkeypatch, name, value):
    from supportdesk.console.settings import desk_settings

    monkeypatch.setenv(name, value)
    reset_desk_caches()
    with pytest.raises(ConfigurationError):
        desk_settings()


def test_a_sign_in_older_than_max_age_is_refused(desk_browser, idp, logged):
    add_staff(AGENT, "agent", bound=True)
    idp.faults["auth_time_offset"] = -(FRESH + 60)  # a provider that ignored max_age
    page = desk_browser.sign_in_as(AGENT)
    assert page.status == 403 and "did not ask you to sign in again" in page.body
    assert desk_sessions() == []
    assert "staff_signin_refused_stale_authentication" in logged.names()


# --- the staff list at sign-in ------------------------------------------------------------------


def test_an_identity_not_on_the_list_sees_that_page_and_nothing_else(desk_browser, logged):
    page = desk_browser.sign_in_as("stranger@example.gov")
    assert page.status == 403
    assert "not on the support console’s staff list" in page.body
    assert "stranger@example.gov" in page.body and "the desk lead" in page.body
    assert 'action="/logout"' not in page.body and 'href="/home"' not in page.body
    assert "nr_desk" not in desk_browser.cookies and desk_sessions() == []
    assert metric(logged, "StaffSignInRefused") == 1
    # Nothing else is reachable: every page sends them back to sign in.
    for path in ("/home", "/search?q=x", "/staff"):
        assert query_of(sign_in_link(desk_browser.get(path))) == {"return_to": path}
    raw = '"stranger@example.gov"'
    assert not any(raw in str(r) for r in logged.records)  # the email is never logged


def test_a_pending_entry_binds_at_first_sign_in_by_a_verified_email_once(
    desk_browser, other_desk_browser
):
    from supportdesk.console import staff
    from supportdesk.console.models import DeskAuditEvent, DeskItem

    add_staff("New.Agent@Desk.Example.gov", "agent")
    emails = ["personal@example.com", "new.agent@desk.example.gov"]  # the second: all_emails
    assert desk_browser.sign_in(emails).location == "/home"
    sub = sub_for_emails(emails)
    member = staff.get(sub)
    assert (member.email, member.role, member.added_by) == (
        "New.Agent@Desk.Example.gov",
        "agent",
        "ops:test",
    )
    assert staff.list_pending() == []
    bound = [
        e for e in DeskItem.scan() if isinstance(e, DeskAuditEvent) and e.event == "staff_bound"
    ]
    assert [e.detail.as_dict()["sub"] for e in bound] == [sub]
    # The entry is spent: another Login.gov account with the same address is not staff.
    page = other_desk_browser.sign_in(["new.agent@desk.example.gov"])
    assert page.status == 403 and staff.get(sub_for_emails(["new.agent@desk.example.gov"])) is None
    # The bound identity signs in again by its sub.
    assert DeskBrowser(desk_browser.client, desk_browser.idp).sign_in(emails).location == "/home"


def test_an_unverified_email_binds_nothing(desk_browser, idp):
    from supportdesk.console import staff

    add_staff(AGENT, "agent")
    idp.faults["userinfo_email_verified"] = False
    assert desk_browser.sign_in_as(AGENT).status == 403
    assert staff.get_pending(AGENT) is not None and staff.list_staff() == []


def test_two_identities_racing_for_one_pending_entry_one_wins(desk_browser, calls):
    from supportdesk.console import staff

    add_staff(AGENT, "agent")
    rival = "3f1c2b4a-0000-4000-8000-00000000beef"

    def rival_binds_first():
        staff.bind_at_signin(rival, [AGENT], shown_email=AGENT)

    race = calls.interleave("TransactWriteItems", rival_binds_first, table="desk")
    page = desk_browser.sign_in([AGENT, "mine@example.com"])
    assert race.fired == 1
    assert page.status == 403 and "not on the support console’s staff list" in page.body
    assert [(m.sub, m.email) for m in staff.list_staff()] == [(rival, AGENT)]
    assert staff.list_pending() == []


def test_two_pending_entries_for_one_identity_bind_neither(desk_browser):
    from supportdesk.console import staff

    add_staff("a@desk.example.gov", "viewer")
    add_staff("b@desk.example.gov", "supervisor")
    assert desk_browser.sign_in(["a@desk.example.gov", "b@desk.example.gov"]).status == 403
    assert staff.list_staff() == [] and len(staff.list_pending()) == 2


# --- every route declares its access; roles reach exactly what they may ----------------------


def test_every_console_route_declares_its_access(desk_app):
    from supportdesk.console.permissions import Open, Permission

    assert desk_app.routes
    for path, methods in desk_app.routes.items():
        for method, entry in methods.items():
            declared = getattr(entry.view_function, "desk_access", None)
            assert isinstance(declared, (Permission, Open)), (method, path)


def _probe_app(desk_app) -> Chalice:
    """The console's middleware and blueprints, plus a route per permission (GET and POST),
    one route declaring nothing, and one that records that it ran."""
    from supportdesk.console import edge
    from supportdesk.console.permissions import Permission
    from supportdesk.console.routes import auth_routes, home_routes, not_found, staff_routes

    app = Chalice(app_name="nrcme-desk-probe")
    edge.install(app)
    for bp in (auth_routes.bp, home_routes.bp, staff_routes.bp, not_found.bp):
        app.register_blueprint(bp)
    probe = Blueprint("probe")
    for permission in Permission:

        def view(permission=permission):
            return edge.render("home.html", query=f"ran {permission.value}")

        for method in ("GET", "POST"):
            kwargs = {"content_types": edge.FORM} if method == "POST" else {}
            decorated = edge.access(permission)(view)
            probe.route(
                f"/probe/{permission.value}",
                methods=[method],
                name=f"{method}{permission}",
                **kwargs,
            )(decorated)

    @probe.route("/probe-undeclared")
    def undeclared():
        return edge.render("home.html", query="ran undeclared")

    app.register_blueprint(probe)
    return app


def test_a_route_that_declares_nothing_is_refused(desk_browser, desk_app, chalice_project):
    signed_in(desk_browser, LEAD, "supervisor")
    with Client(
        _probe_app(desk_app), stage_name="test", project_dir=str(chalice_project)
    ) as client:
        browser = DeskBrowser(client, desk_browser.idp)
        browser.cookies = dict(desk_browser.cookies)
        page = browser.get("/probe-undeclared")
    assert page.status == 403 and "ran undeclared" not in page.body
    assert page.headers["Content-Security-Policy"] == shared_edge.content_security_policy()


@pytest.mark.parametrize("email", [VIEWER, AGENT, LEAD])
def test_each_role_reaches_exactly_what_its_permissions_allow(
    email, desk_browser, desk_app, chalice_project
):
    """Every route of the console and a probe per permission, GET and POST, for one role."""
    from supportdesk.console.permissions import CHANGES, Permission, allows

    role = ROLE_OF[email]
    signed_in(desk_browser, email, role)
    token = desk_browser.csrf()
    app = _probe_app(desk_app)
    with Client(app, stage_name="test", project_dir=str(chalice_project)) as client:
        browser = DeskBrowser(client, desk_browser.idp)
        browser.cookies = dict(desk_browser.cookies)
        for path, methods in app.routes.items():
            for method, entry in methods.items():
                needed = getattr(entry.view_function, "desk_access", None)
                if not isinstance(needed, Permission):
                    continue
                page = (
                    browser.get(path)
                    if method == "GET"
                    else browser.post(path, {"csrf_token": token})
                )
                if allows(role, needed):
                    assert page.status != 403, (role, method, path, page.body[:300])
                    if path.startswith("/probe/"):
                        assert f"ran {needed.value}" in page.body
                else:
                    assert page.status == 403, (role, method, path)
                    assert "You cannot use this page" in page.body and "ran " not in page.body
    # What the issue names: a viewer reaches no change (and only search, read, report), an
    # agent cannot clear-shared, lift a bar or manage staff, a supervisor can.
    denied = {p for p in Permission if not allows(role, p)}
    if role == "viewer":
        assert denied >= CHANGES
        assert set(Permission) - denied == {Permission.SEARCH, Permission.READ, Permission.REPORT}
    elif role == "agent":
        assert denied == {Permission.CLEAR_SHARED, Permission.LIFT_BAR, Permission.STAFF_ADMIN}
    else:
        assert denied == set()


def test_roles_only_ever_add_permissions():
    from supportdesk.console.permissions import ROLE_PERMISSIONS, ROLES, Permission, allows

    for lower, higher in zip(ROLES, ROLES[1:], strict=False):
        assert ROLE_PERMISSIONS[lower] < ROLE_PERMISSIONS[higher]
    assert not any(allows(None, p) or allows("admin", p) for p in Permission)


# --- removal and role changes take effect at the next click ---------------------------------


def test_a_removed_staff_members_next_click_signs_them_out_and_their_sessions_are_gone(
    desk_browser, other_desk_browser, desk_client
):
    from supportdesk.console.models import DeskItem

    signed_in(desk_browser, AGENT, "agent")
    second = DeskBrowser(desk_client, desk_browser.idp)
    assert second.sign_in_as(AGENT).location == "/home"  # the same agent, a second browser
    agent_sub = sub_for_emails([AGENT])
    assert len(list(DeskItem.by_subject.query(agent_sub))) == 2

    lead = signed_in(other_desk_browser, LEAD, "supervisor")
    token = lead.csrf()
    confirm = lead.post("/staff/remove", {"csrf_token": token, "sub": agent_sub})
    assert confirm.status == 200 and "Their console sessions end at once" in confirm.body
    done = lead.post(
        "/staff/remove",
        {"csrf_token": token, "sub": agent_sub, "confirm": "yes", "reason": "left the desk"},
    )
    assert done.location == "/staff?done=removed"
    assert list(DeskItem.by_subject.query(agent_sub)) == []  # every session, at once

    for browser in (desk_browser, second):
        page = browser.get("/home")
        assert sign_in_link(page) == "/login?return_to=%2Fhome"
        assert "nr_desk" not in browser.cookies  # the cookie is cleared too


def test_a_session_whose_staff_record_is_gone_ends_at_the_next_click(desk_browser):
    from supportdesk.console.models import StaffMember

    signed_in(desk_browser, AGENT, "agent", bound=True)
    StaffMember.get("staff", sub_for_emails([AGENT])).delete()  # behind the sessions' back
    page = desk_browser.get("/home")
    assert page.status == 403 and "Your access to the console has ended" in page.body
    assert "nr_desk" not in desk_browser.cookies and desk_sessions() == []


def test_a_new_role_applies_at_the_next_click(desk_browser):
    from supportdesk.console import staff
    from supportdesk.console.desk_audit import Actor

    add_staff("other.lead@desk.example.gov", "supervisor", bound=True)
    signed_in(desk_browser, LEAD, "supervisor")
    assert desk_browser.get("/staff").status == 200
    staff.change_role(sub_for_emails([LEAD]), "viewer", actor=Actor("ops:test"), reason="moved")
    assert desk_browser.get("/staff").status == 403
    assert "(Viewer)" in desk_browser.get("/home").body


# --- idle and absolute lifetimes ----------------------------------------------------------------


def test_a_session_idle_for_15_minutes_ends(desk_browser, fake_clock):
    signed_in(desk_browser, VIEWER, "viewer")
    for _ in range(3):
        fake_clock.advance(IDLE - 1)  # just inside: each request moves the deadline on
        assert desk_browser.get("/home").status == 200
    fake_clock.advance(IDLE + 1)
    page = desk_browser.get("/search?q=1000000001")
    assert page.status == 401 and "15 minutes without activity" in page.body
    assert query_of(sign_in_link(page)) == {"return_to": "/search?q=1000000001"}
    assert "nr_desk" not in desk_browser.cookies


def test_a_session_ends_at_its_absolute_lifetime_however_busy(desk_browser, fake_clock):
    signed_in(desk_browser, VIEWER, "viewer")
    elapsed = 0
    while elapsed + 600 < ABSOLUTE:
        fake_clock.advance(600)
        elapsed += 600
        assert desk_browser.get("/home").status == 200, elapsed
    fake_clock.advance(ABSOLUTE - elapsed)
    assert sign_in_link(desk_browser.get("/home")) == "/login?return_to=%2Fhome"


# --- CSRF -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong-token", "é" * 43])
def test_every_form_post_without_the_sessions_csrf_token_is_refused(desk_browser, desk_app, token):
    from supportdesk.console import staff

    signed_in(desk_browser, LEAD, "supervisor")
    before = [(m.sub, m.role) for m in staff.list_staff()]
    posts = [path for path, methods in desk_app.routes.items() if "POST" in methods]
    desk_operations = {"unlink", "disable", "enable", "end-sessions", "set-email", "lift-bar"}
    desk_posts = {f"/people/{{nr_number}}/{op}" for op in desk_operations | {"clear-shared"}}
    retries = {
        f"/people/{{nr_number}}/retry/{step}" for step in ("report", "end-sessions", "notices")
    }
    assert (
        set(posts)
        == {"/logout", "/staff/add", "/staff/role", "/staff/remove"} | desk_posts | retries
    )
    sub = sub_for_emails([LEAD])
    fields = {
        "email": "x@desk.example.gov",
        "role": "viewer",
        "sub": sub,
        "confirm": "yes",
        "reason": "csrf",
    }
    if token is not None:
        fields["csrf_token"] = token
    for path in posts:
        page = desk_browser.post(path, fields)
        assert page.status == 403 and "This form has expired" in page.body, path
    assert [(m.sub, m.role) for m in staff.list_staff()] == before
    assert staff.list_pending() == [] and len(desk_sessions()) == 1


# --- a fresh sign-in for every change ------------------------------------------------------------


def test_a_change_needs_a_recent_sign_in_and_comes_back_to_its_page(desk_browser, fake_clock):
    from supportdesk.console import staff

    signed_in(desk_browser, LEAD, "supervisor")
    fake_clock.advance(FRESH + 1)
    assert desk_browser.get("/staff").status == 200  # looking needs no fresh sign-in
    token = desk_browser.csrf()
    fields = {"csrf_token": token, "email": "n@desk.example.gov", "role": "viewer"}
    page = desk_browser.post("/staff/add", fields)
    assert page.status == 403 and "Sign in again to make this change" in page.body
    link = sign_in_link(page)
    assert query_of(link) == {"return_to": "/staff"}  # the page the form is on
    authorize = desk_browser.get(link).location
    assert query_of(authorize)["prompt"] == "login"
    assert query_of(authorize)["max_age"] == str(FRESH)
    back = desk_browser.get(desk_browser.authorize(authorize, [LEAD]))
    assert back.location == "/staff"
    fields["csrf_token"] = desk_browser.csrf()  # a new session, a new token
    assert desk_browser.post("/staff/add", fields).status == 200  # the confirmation
    done = desk_browser.post("/staff/add", {**fields, "confirm": "yes", "reason": "ticket 7"})
    assert done.location == "/staff?done=added"
    assert [p.email for p in staff.list_pending()] == ["n@desk.example.gov"]


def test_only_changes_need_the_fresh_sign_in(desk_browser, desk_app, chalice_project, fake_clock):
    from supportdesk.console.permissions import CHANGES, Permission

    signed_in(desk_browser, LEAD, "supervisor")
    fake_clock.advance(FRESH + 1)
    with Client(
        _probe_app(desk_app), stage_name="test", project_dir=str(chalice_project)
    ) as client:
        browser = DeskBrowser(client, desk_browser.idp)
        browser.cookies = dict(desk_browser.cookies)
        for permission in Permission:
            page = browser.get(f"/probe/{permission.value}")
            if permission in CHANGES:
                assert page.status == 403 and "ran " not in page.body, permission
                assert query_of(sign_in_link(page)) == {"return_to": f"/probe/{permission}"}
            else:
                assert page.status == 200 and f"ran {permission.value}" in page.body


# --- sign-out -------------------------------------------------------------------------------------


def test_sign_out_ends_the_session_and_offers_login_govs_sign_out(desk_browser):
    signed_in(desk_browser, VIEWER, "viewer")
    page = desk_browser.post("/logout", {"csrf_token": desk_browser.csrf()})
    assert page.status == 200 and "You have signed out of the support console." in page.body
    assert desk_sessions() == [] and "nr_desk" not in desk_browser.cookies
    (link,) = re.findall(r'href="(http[^"]+/openid_connect/logout[^"]+)"', page.body)
    params = query_of(html.unescape(link))
    assert params["client_id"] == DESK_CLIENT_ID
    assert params["post_logout_redirect_uri"] == DESK_BASE + "/signed-out"
    back = desk_browser.get(desk_browser.get(html.unescape(link)).location)
    assert back.status == 200 and "support console and Login.gov" in back.body
    assert desk_browser.get("/home").status == 401


# --- headers, the 404 page, escaping --------------------------------------------------------------


def test_every_console_answer_carries_the_examiners_security_headers(desk_browser, desk_client):
    pages = [
        desk_browser.get("/"),
        desk_browser.get("/login"),
        desk_browser.get("/home"),  # a redirect
        desk_browser.get("/no/such/page"),
        desk_browser.post("/logout", {}),
        desk_browser.sign_in_as("nobody@example.gov"),  # the refusal page
    ]
    signed_in(desk_browser, VIEWER, "viewer")
    pages += [
        desk_browser.get("/home"),
        desk_browser.get("/staff"),
        desk_browser.post("/staff/add", {}),
    ]
    resp = desk_client.http.put("/home")  # Chalice's own 405
    for page in pages:
        expected = {
            **shared_edge.SECURITY_HEADERS,
            "Content-Security-Policy": shared_edge.content_security_policy(),
        }
        for name, value in expected.items():
            assert page.headers.get(name) == value, (page, name)
    assert resp.status_code == 405
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/nope", "/staff/nope/deeper", "/auth"])
def test_unknown_paths_are_the_consoles_404_page(desk_browser, path):
    page = desk_browser.get(path)
    assert page.status == 404 and "Page not found" in page.body
    assert "National Registry support console" in page.body
    assert page.headers["Content-Type"].startswith("text/html")


def test_nothing_typed_or_supplied_is_shown_unescaped(desk_browser, other_desk_browser):
    from supportdesk.console.models import StaffMember

    hostile = "<script>alert(1)</script>\u202egro.elpmaxe@x\x1b[2J"
    signed_in(desk_browser, LEAD, "supervisor")
    page = desk_browser.get("/search?" + "q=" + hostile.replace("&", "%26"))
    assert "<script>alert(1)" not in page.body and "&lt;script&gt;alert(1)" in page.body
    assert "\u202e" not in page.body and "\\u202e" in page.body and "\\x1b" in page.body
    # A staff record holding what Login.gov or a typo supplied.
    StaffMember(
        "staff",
        "0b6f0000-0000-4000-8000-000000000001",
        email=hostile,
        email_normalized="h@x",
        role="viewer",
        added_by="ops:<b>x</b>",
        added_at=StaffMember.get("staff", sub_for_emails([LEAD])).added_at,
    ).save()
    page = desk_browser.get("/staff")
    assert "<script>alert(1)" not in page.body and "<b>x</b>" not in page.body
    assert "\u202e" not in page.body and "\x1b" not in page.body
    # The Login.gov email on the refusal page.
    refused = other_desk_browser.sign_in(['"<img src=x>"\u202e@example.com'])
    assert refused.status == 403
    assert "<img src=x>" not in refused.body and "&lt;img src=x&gt;" in refused.body
    assert "\u202e" not in refused.body
