"""Smoke: the support console that `make run` serves on 8002, in Chromium. Each demo staff
member signs in at the local Login.gov by email and sees the pages their role allows; an
identity not on the staff list sees only that. The console's behaviour is tested through
its routes in tests/test_console_*.py; this checks the pages render and are accessible.
"""

from __future__ import annotations

import pytest

from tests.support.e2e import assert_accessible, sign_in_at_local_login_gov

CONSOLE = "http://127.0.0.1:8002"


def sign_in_to_the_console(page, email: str) -> None:
    page.goto(CONSOLE + "/")
    assert_accessible(page)
    sign_in_at_local_login_gov(page, [email], start=CONSOLE + "/login")


@pytest.mark.parametrize(
    ("email", "role"),
    [
        ("viewer@desk.example.gov", "Viewer"),
        ("agent@desk.example.gov", "Agent"),
        ("lead@desk.example.gov", "Supervisor"),
    ],
)
def test_each_demo_staff_member_signs_in_and_sees_what_their_role_allows(page, email, role):
    sign_in_to_the_console(page, email)
    assert page.url == CONSOLE + "/home"
    assert page.get_by_role("heading", name="Find a person").is_visible()
    assert f"({role})" in page.content() and email in page.content()
    assert_accessible(page)
    page.get_by_label("Registry number, email, or name").fill("<b>1000000001</b>")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(CONSOLE + "/search?**")
    assert "&lt;b&gt;1000000001" in page.content()  # what an agent types, escaped
    if role == "Supervisor":
        page.get_by_role("link", name="Staff", exact=True).click()
        page.wait_for_url(CONSOLE + "/staff")
        assert page.get_by_role("heading", name="Staff list").is_visible()
        assert_accessible(page)
    else:
        assert page.get_by_role("link", name="Staff").count() == 0
        page.goto(CONSOLE + "/staff")
        assert page.get_by_role("heading", name="You cannot use this page").is_visible()
    page.goto(CONSOLE + "/home")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(CONSOLE + "/logout")
    assert page.get_by_role("heading", name="You are signed out").is_visible()
    assert_accessible(page)


def test_an_identity_not_on_the_staff_list_sees_only_that(page):
    sign_in_to_the_console(page, "not.staff@example.gov")
    heading = "You are not on the support console’s staff list"
    assert page.get_by_role("heading", name=heading).is_visible()
    assert "not.staff@example.gov" in page.content()
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert_accessible(page)
    page.goto(CONSOLE + "/home")
    assert page.get_by_role("heading", name="Sign in to continue").is_visible()
