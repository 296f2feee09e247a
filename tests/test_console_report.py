"""The migration report (issue 18 item 5, issue 19 item 4): the console's /report page for
viewers and up, its CSV downloads (formula-safe), the projection's arithmetic on a
hand-built population, and `manage.py report --csv`."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib import clock as clock_module
from chalicelib import guess_limits
from chalicelib.models import WindowCounter, expiry_bucket
from supportdesk import report
from supportdesk.report import AccountFacts
from tests.support.accounts import link, mail_state, make_account, mark_invited
from tests.support.console import signed_in


def facts(n: int, *, linked_on: date | None = None, status: str = "active") -> AccountFacts:
    return AccountFacts(
        f"{2000000000 + n}", "Pat Examiner", status, f"p{n}@example.com", None, linked_on
    )


# --- the projection and the weekly figures, by hand -----------------------------------------------


def test_the_projection_is_the_last_four_weeks_rate_against_the_deadline(clock):
    today = clock.utc_now().date()  # Tuesday 2026-06-09
    population = (
        # 56 links in the 28 days before today: 2 a day, 14 a week.
        [facts(i, linked_on=today - timedelta(days=1 + i % 28)) for i in range(56)]
        # Older links and today's do not count towards the rate.
        + [facts(100 + i, linked_on=today - timedelta(days=40)) for i in range(10)]
        + [facts(200, linked_on=today)]
        # 20 still to link; a removed and a disabled one are not the migration's to reach.
        + [facts(300 + i) for i in range(20)]
        + [facts(400, status="removed"), facts(401, status="disabled")]
    )
    on_time = report.project(population, today, today + timedelta(days=14))
    assert (on_time.remaining, on_time.links_last_four_weeks, on_time.per_week) == (20, 56, 14.0)
    assert on_time.completes_on == today + timedelta(days=10)  # 20 at 2 a day
    assert on_time.on_track is True and on_time.needed_per_week == 10.0
    late = report.project(population, today, today + timedelta(days=7))
    assert late.on_track is False and late.needed_per_week == 20.0
    stalled = report.project(
        [facts(1), facts(2, linked_on=today - timedelta(days=29))], today, None
    )
    assert stalled.completes_on is None and stalled.on_track is None
    assert stalled.needed_per_week is None
    done = report.project([facts(1, linked_on=today - timedelta(days=90))], today, today)
    assert done.remaining == 0 and done.completes_on == today and done.on_track is True


def test_each_week_counts_its_links_and_what_remains_at_its_end(clock):
    today = clock.utc_now().date()  # Tuesday 2026-06-09; weeks start on Mondays
    population = [
        facts(1, linked_on=date(2026, 5, 27)),  # the week of May 25
        facts(2, linked_on=date(2026, 6, 1)),  # the week of June 1
        facts(3, linked_on=date(2026, 6, 7)),
        facts(4, linked_on=date(2026, 6, 9)),  # this week, today
        facts(5),
        facts(6, linked_on=date(2026, 6, 2), status="removed"),  # linked, since removed
    ]
    weeks = report.weekly(population, None, today)
    assert [(w.start, w.linked, w.remaining, w.active) for w in weeks] == [
        (date(2026, 5, 25), 1, 4, 5),
        (date(2026, 6, 1), 3, 2, 5),
        (date(2026, 6, 8), 1, 1, 5),
    ]
    assert weeks[-1].linked_share == pytest.approx(0.8)
    assert {(w.invited, w.bounced, w.median_days_to_link) for w in weeks} == {(None, None, None)}
    assert report.weekly_rows(
        report.Progress("", weeks, report.project(population, today, None), {}, False, 6)
    )[0][1:5] == (
        report.NOT_AVAILABLE,
        1,
        report.NOT_AVAILABLE,
        report.NOT_AVAILABLE,
    )


def test_with_the_campaigns_figures_a_week_shows_invitations_bounces_and_days_to_link(clock):
    today = clock.utc_now().date()
    campaign = report.CampaignFacts(
        first_invited={"2000000001": date(2026, 6, 1), "2000000002": date(2026, 6, 1)},
        bounced={"2000000003": date(2026, 6, 2)},
    )
    population = [
        facts(1, linked_on=date(2026, 6, 4)),
        facts(2, linked_on=date(2026, 6, 10 - 4)),
        facts(3),
    ]
    (week, this_week) = report.weekly(population, campaign, today)
    assert (week.invited, week.linked, week.median_days_to_link, week.bounced) == (2, 2, 4.0, 1)
    assert (this_week.invited, this_week.linked) == (0, 0)
    projection = report.project(population, today, None)
    rows = report.weekly_rows(report.Progress("", [week, this_week], projection, {}, True, 3))
    assert [r[1:6] for r in rows] == [(2, 2, 4.0, 1, 0), (0, 0, "none", 0, 0)]


def _campaign_population(now: datetime) -> None:
    """Two weeks of the campaign (now is Tuesday of the second): invitations, links after
    them, a bounce, a complaint, and what must not count."""

    def at(day: int, hour: int = 15) -> datetime:
        return datetime(now.year, now.month, day, hour, tzinfo=UTC)

    week1, week2 = now.date() - timedelta(days=8), now.date() - timedelta(days=1)
    assert week1.weekday() == week2.weekday() == 0  # Mondays
    # Invited Monday of week 1, linked Thursday: 3 days.
    make_account("1000000001", primary="a@example.com")
    mark_invited("1000000001", at(week1.day))
    # Invited Tuesday of week 1, linked Tuesday of week 2: 7 days; mailed two waves.
    make_account("1000000002", primary="b@example.com")
    mark_invited("1000000002", at(week1.day + 1), waves=(0, 1))
    # Invited in week 1; its only address bounced on Wednesday; and a formula for a name.
    make_account("1000000003", primary="c@example.com", first_name="=SUM(1)")
    mark_invited("1000000003", at(week1.day + 1))
    mail_state(
        "c@example.com",
        undeliverable_at=at(week1.day + 2).timestamp(),
        undeliverable_reason="Permanent/General",
    )
    # Invited Monday of week 2; complained the next day.
    make_account("1000000004", primary="d@example.com")
    mark_invited("1000000004", at(week2.day))
    mail_state("d@example.com", complained_at=at(week2.day + 1, 9).timestamp())
    # Linked without an invitation (no wait to measure); a soft bounce is not a bounce.
    make_account("1000000005", primary="e@example.com")
    mail_state("e@example.com", soft_bounces={str(int(at(week1.day).timestamp()))})
    for nr, day in (
        ("1000000001", week1.day + 3),
        ("1000000005", week1.day + 4),
        ("1000000002", week2.day + 1),
    ):
        with clock_module.using(clock_module.FakeClock(at(day, 8))):
            link(nr, str(uuid.uuid4()))


def test_manage_report_counts_invitations_links_bounces_and_complaints_per_week(
    cli, clock, tmp_path
):
    now = clock.utc_now()  # Tuesday 2026-06-09
    _campaign_population(now)
    path = tmp_path / "weeks.csv"
    code, out, err = cli("report", "--csv", str(path))
    assert code == 0, err
    rows = list(csv.reader(path.open()))
    assert rows[0] == list(report.WEEKLY_HEADER)
    # week, invited, linked, median days, bounced, complaints, remaining, active, linked %
    assert rows[1:] == [
        ["2026-06-01", "3", "2", "3.0", "1", "0", "3", "5", "40.0"],
        ["2026-06-08", "1", "1", "7.0", "0", "1", "2", "5", "60.0"],
    ]
    assert "not yet available" not in out
    code, out, _ = cli("report", "--csv", str(path), "--list", "never-linked")
    assert ["1000000003", "'=SUM(1) Examiner", "c@example.com", "never linked"] in list(
        csv.reader(path.open())
    )


def test_the_report_page_shows_the_campaigns_figures_per_week(desk_browser, fake_clock):
    # A fixed Tuesday, so the weeks are known (the stand-in's tokens keep the real time).
    fake_clock.set(datetime(2026, 6, 9, 9, 30, tzinfo=UTC))
    _campaign_population(fake_clock.utc_now())
    signed_in(desk_browser, "viewer@desk.example.gov", "viewer")
    body = desk_browser.get("/report").body
    assert "not yet available" not in body
    assert (
        "<tr><td>2026-06-08</td><td>1</td><td>1</td><td>7.0</td><td>0</td><td>1</td><td>2</td>"
        "<td>60.0%</td></tr>"
    ) in body
    assert (
        "<tr><td>2026-06-01</td><td>3</td><td>2</td><td>3.0</td><td>1</td><td>0</td><td>3</td>"
        "<td>40.0%</td></tr>"
    ) in body
    weekly = list(csv.reader(io.StringIO(desk_browser.get("/report/csv/weekly").body)))
    assert weekly[1][:6] == ["2026-06-01", "3", "2", "3.0", "1", "0"]


# --- the console page --------------------------------------------------------------------------


def _population(now: datetime) -> None:
    """Linked a week ago and today; a shared address; a .gov primary; a paused recovery; a
    name that is a formula and one that is markup."""
    make_account("1000000001", primary="linked.early@example.com")
    make_account("1000000002", primary="linked.today@example.com")
    with clock_module.using(clock_module.FakeClock(now - timedelta(days=7))):
        link("1000000001", str(uuid.uuid4()))
    link("1000000002", str(uuid.uuid4()))
    make_account("1000000003", primary="office@example.com", first_name="=HYPERLINK(1)")
    make_account("1000000004", primary="office@example.com", first_name="<b>Bold</b>")
    make_account("1000000005", primary="carmen@fmcsa.dot.gov")
    make_account("1000000006", primary="paused@example.com")
    for mark in guess_limits._account_pause_marks("1000000006", now.timestamp()):
        expires = int(now.timestamp()) + 3600
        WindowCounter(
            mark,
            sends=1,
            expires_at=expires,
            expiry_bucket=expiry_bucket(expires),
            created_at=int(now.timestamp()),
        ).save()
    make_account("1000000007", primary="gone@example.com", status="removed")


def test_a_viewer_sees_the_report_with_its_chart_projection_and_stuck_lists(
    desk_browser, fake_clock, monkeypatch
):
    from chalicelib import config

    monkeypatch.setenv(
        "CAMPAIGN_DEADLINE", (fake_clock.utc_now().date() + timedelta(days=30)).isoformat()
    )
    config.reset_settings()
    _population(fake_clock.utc_now())
    signed_in(desk_browser, "viewer@desk.example.gov", "viewer")
    page = desk_browser.get("/report")
    assert page.status == 200, page.body[:500]
    body = page.body
    assert 'href="/report"' in body  # the console's menu offers it
    assert "<svg" in body and "<polyline" in body and "<script" not in body
    assert "Active accounts not linked yet</dt><dd>4</dd>" in body
    assert "not yet available" not in body  # the campaign's figures are connected
    assert "Sign-in refusals by kind" in body
    for name, count in (("shared", 2), ("institutional", 1), ("never-linked", 4), ("paused", 1)):
        assert f'id="list-{name}">' in body and f"({count})</h3>" in body, name
    assert 'href="/people/1000000003"' in body and "shared with 1000000004" in body
    assert 'href="/people/1000000005"' in body and 'href="/people/1000000006"' in body
    assert "&lt;b&gt;Bold&lt;/b&gt;" in body and "<b>Bold</b>" not in body
    assert 'href="/people/1000000007"' not in body  # removed: not the migration's to reach


def test_the_csv_downloads_are_formula_safe(desk_browser, fake_clock):
    _population(fake_clock.utc_now())
    signed_in(desk_browser, "viewer@desk.example.gov", "viewer")
    page = desk_browser.get("/report/csv/shared")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/csv")
    assert 'filename="migration-shared.csv"' in page.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(page.body)))
    assert rows[0] == ["nr_number", "name", "address", "why"]
    assert [
        "1000000003",
        "'=HYPERLINK(1) Examiner",
        "office@example.com",
        "shared with 1000000004",
    ] in rows
    weekly = list(csv.reader(io.StringIO(desk_browser.get("/report/csv/weekly").body)))
    assert weekly[0][:3] == ["week_starting", "invited", "linked"]
    assert [r[2] for r in weekly[1:]] == ["1", "1"] and weekly[-1][1] == "0"
    assert desk_browser.get("/report/csv/everyone").status == 404


def test_someone_signed_out_gets_no_report(desk_browser):
    page = desk_browser.get("/report")
    assert page.status in (302, 401, 403)
    assert "Migration report" not in page.body


# --- manage.py report ------------------------------------------------------------------------------


def test_manage_report_keeps_its_summary_and_adds_the_weeks_and_a_csv(cli, clock, tmp_path):
    clock.set(datetime(2026, 6, 2, 10, 0, tzinfo=UTC))
    make_account("1000000001", primary="a@example.com")
    link("1000000001", str(uuid.uuid4()))
    clock.set(datetime(2026, 6, 9, 10, 0, tzinfo=UTC))
    make_account("1000000002", primary="b@example.com", first_name="@SUM(A1)")
    code, out, _ = cli("report")
    assert code == 0
    assert "accounts" in out and "Links per day:" in out  # as before
    assert "Per week:" in out and "2026-06-01" in out and "2026-06-08" in out
    assert "all linked by" in out
    path = tmp_path / "weeks.csv"
    code, out, _ = cli("report", "--csv", str(path))
    assert code == 0 and str(path) in out
    rows = list(csv.reader(path.open()))
    assert rows[0][0] == "week_starting" and [r[0] for r in rows[1:]] == [
        "2026-06-01",
        "2026-06-08",
    ]
    code, out, _ = cli("report", "--csv", str(path), "--list", "never-linked")
    rows = list(csv.reader(path.open()))
    assert rows[1][:2] == ["1000000002", "'@SUM(A1) Examiner"]
