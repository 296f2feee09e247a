"""The console's staff list: `manage.py staff add|remove|list` (through manage.main, against
moto), the rules every door shares (supportdesk.console.staff), and the supervisors' staff
page in the console.
"""

from __future__ import annotations

import json

import pytest

from localdev.idp import sub_for_emails
from tests.support.console import signed_in

LEAD, AGENT = "lead@desk.example.gov", "agent@desk.example.gov"


# --- manage.py staff -----------------------------------------------------------------------------


@pytest.fixture
def cli(cli, desk_table, monkeypatch):
    """The support CLI (tests/support/desk.py) with the desk table, run as ops-tester."""
    monkeypatch.setenv("USER", "ops-tester")
    return cli


def desk_events() -> list:
    from supportdesk.console.desk_audit import recent_events

    return list(reversed(recent_events(100)))


def test_staff_add_puts_a_pending_entry_that_binds_later_and_list_shows_it(cli):
    code, out, err = cli("staff", "add", "Lead@Desk.example.gov", "--role", "supervisor")
    assert code == 0, err
    assert "pending" in out and "Lead@Desk.example.gov" in out
    code, out, _ = cli("--json", "staff", "list")
    (row,) = json.loads(out)
    assert (row["email"], row["role"], row["status"], row["sub"]) == (
        "Lead@Desk.example.gov",
        "supervisor",
        "pending",
        None,
    )
    assert row["added_by"] == "ops:ops-tester"
    (event,) = desk_events()
    assert (event.event, event.actor) == ("staff_added_pending", "ops:ops-tester")
    assert event.detail.as_dict() == {"email": "Lead@Desk.example.gov", "role": "supervisor"}


def test_staff_add_with_a_sub_binds_at_once(cli):
    sub = sub_for_emails([AGENT])
    code, out, err = cli("staff", "add", AGENT, "--role", "agent", "--sub", sub, "--reason", "T-1")
    assert code == 0, err
    assert sub in out
    code, out, _ = cli("staff", "list")
    assert sub in out and "active" in out
    (event,) = desk_events()
    assert event.event == "staff_added" and event.detail.as_dict()["reason"] == "T-1"


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (
            ("x@desk.example.gov", "--role", "admin"),
            2,
            "a role is one of viewer, agent, supervisor",
        ),
        (("not an email", "--role", "agent"), 2, "not a usable email address"),
        (
            ("x@desk.example.gov", "--role", "agent", "--sub", "nope"),
            2,
            "a Login.gov sub is a UUID",
        ),
    ],
)
def test_staff_add_refuses_bad_input(cli, argv, code, words):
    got, out, err = cli("staff", "add", *argv)
    assert got == code and words in err
    assert cli("--json", "staff", "list")[1].strip() == "[]"


def test_staff_add_refuses_someone_already_on_the_list(cli):
    assert cli("staff", "add", AGENT, "--role", "agent")[0] == 0
    code, _, err = cli("staff", "add", "AGENT@desk.example.gov", "--role", "viewer")
    assert code == 1 and "already on the staff list" in err
    cli("staff", "add", LEAD, "--role", "supervisor", "--sub", sub_for_emails([LEAD]))
    code, _, err = cli("staff", "add", LEAD, "--role", "viewer")
    assert code == 1 and "already on the staff list" in err


def test_staff_remove_deletes_the_record_ends_every_session_and_is_audited(cli):
    from supportdesk.console import sessions, staff
    from supportdesk.console.models import DeskItem

    sub = sub_for_emails([AGENT])
    cli("staff", "add", AGENT, "--role", "agent", "--sub", sub)
    cli("staff", "add", LEAD, "--role", "supervisor", "--sub", sub_for_emails([LEAD]))
    tokens = [sessions.create(sub, 0)[0] for _ in range(2)]
    kept, _ = sessions.create(sub_for_emails([LEAD]), 0)
    code, out, err = cli("staff", "remove", AGENT, "--reason", "left")
    assert code == 0, err
    assert "2 console session(s) ended" in out
    assert staff.get(sub) is None
    assert [sessions.load(t) for t in tokens] == [None, None]
    assert sessions.load(kept) is not None  # nobody else's
    assert list(DeskItem.by_subject.query(sub)) == []
    event = desk_events()[-1]
    assert (event.event, event.actor) == ("staff_removed", "ops:ops-tester")
    assert event.detail.as_dict() == {"sub": sub, "email": AGENT, "role": "agent", "reason": "left"}


def test_staff_remove_by_sub_and_of_a_pending_entry(cli):
    sub = sub_for_emails([AGENT])
    cli("staff", "add", AGENT, "--role", "agent", "--sub", sub)
    cli("staff", "add", "new@desk.example.gov", "--role", "viewer")
    assert cli("staff", "remove", sub)[0] == 0
    code, out, _ = cli("staff", "remove", "NEW@desk.example.gov")
    assert code == 0 and "pending" in out
    assert cli("--json", "staff", "list")[1].strip() == "[]"
    code, _, err = cli("staff", "remove", "nobody@desk.example.gov")
    assert code == 1 and "nobody on the staff list has that email" in err


def test_ops_may_remove_the_last_supervisor_and_are_told(cli):
    cli("staff", "add", LEAD, "--role", "supervisor", "--sub", sub_for_emails([LEAD]))
    code, out, _ = cli("staff", "remove", LEAD)
    assert code == 0 and "No supervisor is left" in out


def test_staff_list_on_an_empty_list_says_how_to_add_the_first_supervisor(cli):
    code, out, _ = cli("staff", "list")
    assert code == 0 and "staff add EMAIL --role supervisor" in out


def test_staff_output_shows_supplied_text_safely(cli):
    from supportdesk.console import staff
    from supportdesk.console.desk_audit import Actor

    staff.add(AGENT, "agent", actor=Actor("ops:\x1b[2Jevil\u202e"))
    code, out, _ = cli("staff", "list")
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[2Jevil\\u202e" in out


# --- the rules every door shares -----------------------------------------------------------------


def _bound(email: str, role: str):
    from supportdesk.console import staff
    from supportdesk.console.desk_audit import Actor

    return staff.add(email, role, actor=Actor("ops:t"), sub=sub_for_emails([email]))


def test_the_console_never_leaves_the_desk_without_a_supervisor(desk_table):
    from supportdesk.console import staff
    from supportdesk.console.errors import StaffChangeRefused

    lead = _bound(LEAD, "supervisor")
    actor = staff.staff_actor(lead)
    for change in (
        lambda: staff.change_role(lead.sub, "agent", actor=actor, reason="x"),
        lambda: staff.remove(lead.sub, actor=actor, reason="x"),
    ):
        with pytest.raises(StaffChangeRefused) as refused:
            change()
        assert refused.value.context["reason"] == "last_supervisor"
    assert staff.get(lead.sub).role == "supervisor"
    other = _bound("other@desk.example.gov", "supervisor")
    staff.change_role(lead.sub, "agent", actor=actor, reason="handing over")
    assert staff.get(lead.sub).role == "agent" and staff.get(other.sub).role == "supervisor"


def test_two_supervisors_demoting_each_other_at_once_leave_one(desk_table, calls):
    from supportdesk.console import staff
    from supportdesk.console.errors import StaffChangeRefused

    a, b = _bound("a@desk.example.gov", "supervisor"), _bound("b@desk.example.gov", "supervisor")

    def b_demotes_a_meanwhile():
        staff.change_role(a.sub, "agent", actor=staff.staff_actor(b), reason="race")

    race = calls.interleave("TransactWriteItems", b_demotes_a_meanwhile, table="desk")
    with pytest.raises(StaffChangeRefused):
        staff.change_role(b.sub, "agent", actor=staff.staff_actor(a), reason="race")
    assert race.fired == 1
    assert [(m.email, m.role) for m in staff.list_staff()] == [
        ("a@desk.example.gov", "agent"),
        ("b@desk.example.gov", "supervisor"),
    ]


def test_a_change_made_on_a_stale_read_is_refused(desk_table, calls):
    from supportdesk.console import staff
    from supportdesk.console.errors import StaffChangeRefused

    _bound(LEAD, "supervisor")
    agent = _bound(AGENT, "agent")
    actor = staff.operator("t")
    race = calls.interleave(
        "TransactWriteItems",
        lambda: staff.change_role(agent.sub, "viewer", actor=actor, reason="first"),
        table="desk",
    )
    with pytest.raises(StaffChangeRefused):
        staff.remove(agent.sub, actor=actor, reason="second")
    assert race.fired == 1 and staff.get(agent.sub).role == "viewer"


# --- the supervisors' staff page ----------------------------------------------------------------


def _post(browser, path, **fields):
    from chalicelib import clock

    clock.current().advance(1)  # a second between clicks: the audit stream's order is time
    return browser.post(path, {"csrf_token": browser.csrf(), **fields})


def test_a_supervisor_adds_re_roles_and_removes_with_a_confirmation_and_a_reason(desk_browser):
    from supportdesk.console import staff

    signed_in(desk_browser, LEAD, "supervisor")
    lead_sub = sub_for_emails([LEAD])
    page = _post(desk_browser, "/staff/add", email="New@Desk.example.gov", role="agent")
    assert page.status == 200 and "Confirm the staff change" in page.body
    assert staff.list_pending() == []  # the confirmation changes nothing
    refused = _post(
        desk_browser, "/staff/add", email="new@desk.example.gov", role="agent", confirm="yes"
    )
    assert refused.status == 400 and staff.list_pending() == []  # no reason, no change
    done = _post(
        desk_browser,
        "/staff/add",
        email="New@Desk.example.gov",
        role="agent",
        confirm="yes",
        reason="ticket 12",
    )
    assert done.location == "/staff?done=added"
    (entry,) = staff.list_pending()
    assert (entry.email, entry.role, entry.added_by) == (
        "New@Desk.example.gov",
        "agent",
        f"staff:{lead_sub}",
    )

    agent = _bound(AGENT, "agent")
    page = _post(desk_browser, "/staff/role", sub=agent.sub, role="viewer")
    assert (
        page.status == 200 and "from <strong>Agent</strong> to <strong>Viewer</strong>" in page.body
    )
    done = _post(
        desk_browser, "/staff/role", sub=agent.sub, role="viewer", confirm="yes", reason="r"
    )
    assert done.location == "/staff?done=role" and staff.get(agent.sub).role == "viewer"

    done = _post(
        desk_browser, "/staff/remove", email="new@desk.example.gov", confirm="yes", reason="r"
    )
    assert done.location == "/staff?done=removed" and staff.list_pending() == []
    listing = desk_browser.get("/staff?done=removed")
    assert "Removed from the staff list" in listing.body
    events = [e.event for e in desk_events()]
    assert events[-3:] == ["staff_added_pending", "staff_role_changed", "staff_pending_removed"]
    actors = {e.detail.as_dict().get("actor_email") for e in desk_events()[-3:]}
    assert actors == {LEAD}


def test_the_last_supervisor_cannot_demote_or_remove_themselves(desk_browser):
    from supportdesk.console import staff

    signed_in(desk_browser, LEAD, "supervisor")
    sub = sub_for_emails([LEAD])
    for path, fields in (("/staff/role", {"role": "agent"}), ("/staff/remove", {})):
        page = _post(desk_browser, path, sub=sub, confirm="yes", reason="bye", **fields)
        assert page.status == 409 and "last supervisor" in page.body
    assert staff.get(sub).role == "supervisor"


def test_a_supervisor_who_removes_themselves_is_signed_out(desk_browser):
    from supportdesk.console import staff

    _bound("other.lead@desk.example.gov", "supervisor")
    signed_in(desk_browser, LEAD, "supervisor")
    sub = sub_for_emails([LEAD])
    page = _post(desk_browser, "/staff/remove", sub=sub)
    assert "This is you: you will be signed out" in page.body
    done = _post(desk_browser, "/staff/remove", sub=sub, confirm="yes", reason="leaving")
    assert done.location == "/" and "nr_desk" not in desk_browser.cookies
    assert staff.get(sub) is None
