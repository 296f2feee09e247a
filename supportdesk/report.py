"""The migration report: progress counts for the support desk and the project team.

Offline only (it scans accounts and flows; the service never scans). `render_report_html`
fills `supportdesk/templates/report.html` (Jinja2, autoescaped, every value through
supportdesk.safe_text): one self-contained page with inline CSS and an SVG bar chart of
links per day, no script, no external assets.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from chalicelib import clock
from chalicelib.emails import is_institutional
from chalicelib.models import Account, Challenge, Flow
from supportdesk.safe_text import safe_text

TEMPLATES = Path(__file__).parent / "templates"


def build_report(now: float | None = None) -> dict:
    """Migration progress. Offline only: it scans accounts and flows (never run by the app)."""
    now = clock.now() if now is None else now
    total = linked = institutional = institutional_linked = 0
    by_status: Counter[str] = Counter()
    by_role: Counter[str] = Counter()
    per_day: Counter[str] = Counter()
    attributes = [
        "nr_number",
        "status",
        "role",
        "primary_email_normalized",
        "linked_sub",
        "linked_at",
    ]
    for account in Account.scan(attributes_to_get=attributes):
        total += 1
        by_status[account.status] += 1
        by_role[account.role] += 1
        if account.linked_sub:
            linked += 1
        if account.linked_at:
            per_day[account.linked_at.astimezone(UTC).strftime("%Y-%m-%d")] += 1
        if is_institutional(account.primary_email_normalized):
            institutional += 1
            institutional_linked += bool(account.linked_sub)
    # A scan of the flows table is acceptable here only: this is an offline report, and
    # challenges have no index by purpose. The service itself never scans.
    pending = sum(
        1
        for _ in Challenge.scan(
            filter_condition=Challenge.purpose.startswith("email_change") & (Flow.expires_at > now),
            attributes_to_get=["flow_id", "kind"],
        )
    )
    return {
        "generated_at": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "total": total,
        "linked": linked,
        "unlinked": total - linked,
        "by_status": dict(sorted(by_status.items())),
        "by_role": dict(sorted(by_role.items())),
        "institutional_primary": institutional,
        "institutional_primary_linked": institutional_linked,
        "pending_email_changes": pending,
        "links_per_day": dict(sorted(per_day.items())),
    }


def chart_geometry(per_day: dict[str, int]) -> dict:
    """Where each bar of the links-per-day chart goes (the template draws them)."""
    bar, gap, height, top, bottom, left = 18, 4, 200, 20, 70, 40
    peak = max(per_day.values(), default=0)
    bars = []
    for i, (day, n) in enumerate(per_day.items()):
        x = left + gap + i * (bar + gap)
        h = max(1, math.ceil(height * n / peak)) if n else 0
        bars.append(
            {
                "day": day,
                "count": int(n),
                "x": x,
                "y": top + height - h,
                "height": h,
                "label_x": x + bar / 2,
                "label_y": top + height + 8,
            }
        )
    return {
        "bars": bars,
        "peak": peak,
        "bar_width": bar,
        "left": left,
        "top": top,
        "axis_y": top + height,
        "width": left + len(per_day) * (bar + gap) + gap,
        "height": height + top + bottom,
    }


def render_report_html(report: dict) -> str:
    """A self-contained page: inline CSS and SVG, every value escaped."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default=True),
        # Escape values as html.escape does (quotes as &quot;): one spelling
        # for every page the desk produces. Before that, control and
        # bidirectional characters as escapes: HTML escaping leaves them be.
        finalize=lambda v: v if isinstance(v, Markup) else Markup(html.escape(safe_text(v))),
    )
    totals = {
        "Accounts": report["total"],
        "Linked to Login.gov": report["linked"],
        "Not linked yet": report["unlinked"],
        "Institutional (.gov/.mil/.edu) primary email": report["institutional_primary"],
        "… of which linked": report["institutional_primary_linked"],
        "Email changes pending": report["pending_email_changes"],
    }
    return env.get_template("report.html").render(
        report=report, totals=totals, chart=chart_geometry(report["links_per_day"])
    )


# --- progress per week, the projection, and the stuck cases (issue 19 item 4, 18 item 5) -------
#
# One full read, unavoidable: the accounts table has no index by link date or status, and
# the weekly figures need every account's status and link day (`read_accounts`: one
# projected Scan, measured in docs/support-desk.md). Nothing else is read per account: the
# stuck lists come from that read, and the pause marks alive now from the flows' expiry
# index (guess_limits.paused_accounts).

WEEKS_SHOWN = 104  # two years of weeks at most, newest last
PROJECTION_DAYS = 28  # "the last four weeks' rate"
NOT_AVAILABLE = "not yet available"


@dataclass(frozen=True)
class AccountFacts:
    """What the report needs of one account."""

    nr_number: str
    name: str
    status: str
    primary: str
    secondary: str | None
    linked_on: date | None
    invited_on: date | None = None  # the campaign's first mail (campaign.account_campaign)

    @property
    def waiting(self) -> bool:
        """Active and never linked: one the migration still has to reach."""
        return self.status == "active" and self.linked_on is None


@dataclass(frozen=True)
class CampaignFacts:
    """What the campaign knows: the day each account was first invited (by registry number),
    and the day each address was marked undeliverable or complained of (by address)."""

    first_invited: dict[str, date]
    bounced: dict[str, date]
    complained: dict[str, date] = field(default_factory=dict)


def campaign_facts(accounts: Sequence[AccountFacts]) -> CampaignFacts:
    """The campaign's invitations (from the accounts already read: no request) and SES's
    bounces and complaints (campaign.all_address_states: one filtered scan of the few
    `mailstate#` items)."""
    from chalicelib import campaign

    def day(epoch: float) -> date:
        return datetime.fromtimestamp(epoch, UTC).date()

    states = campaign.all_address_states()
    return CampaignFacts(
        first_invited={a.nr_number: a.invited_on for a in accounts if a.invited_on},
        bounced={s.address: day(s.undeliverable_at) for s in states if s.undeliverable_at},
        complained={s.address: day(s.complained_at) for s in states if s.complained_at},
    )


@dataclass(frozen=True)
class Week:
    start: date  # a Monday
    invited: int | None  # first invitations sent that week (None: not available)
    linked: int  # links made that week
    median_days_to_link: float | None  # of that week's links: days since first invitation
    bounced: int | None  # addresses SES marked undeliverable that week
    complaints: int | None  # addresses whose owner complained that week
    remaining: int  # active, never linked, at the week's end
    active: int
    linked_share: float  # linked ÷ active at the week's end (0..1)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)


@dataclass(frozen=True)
class Projection:
    today: date
    deadline: date | None
    remaining: int
    links_last_four_weeks: int
    per_week: float  # the last four weeks' rate
    completes_on: date | None  # None: no links in four weeks, no projection
    needed_per_week: float | None  # to finish by the deadline (None: no deadline, or past)

    @property
    def on_track(self) -> bool | None:
        if self.deadline is None:
            return None
        if self.remaining == 0:
            return True
        return self.completes_on is not None and self.completes_on <= self.deadline


@dataclass(frozen=True)
class StuckCase:
    nr_number: str
    name: str
    address: str
    why: str


@dataclass(frozen=True)
class Progress:
    generated_at: str
    weeks: list[Week]
    projection: Projection
    stuck: dict[str, list[StuckCase]]
    campaign_available: bool
    accounts_read: int


STUCK_LISTS = {
    "shared": "Shared addresses: their only address is on another account too",
    "institutional": "Institutional (.gov, .mil, .edu) primary addresses, not linked yet",
    "never-linked": "Never linked (never signed in here)",
    "paused": "Recovery paused (too many wrong codes in a day)",
}


def read_accounts() -> list[AccountFacts]:
    """Every account's status, addresses, link day and first campaign mail: one projected
    Scan (see above)."""
    from chalicelib import campaign

    attributes = [
        "nr_number",
        "first_name",
        "last_name",
        "status",
        "primary_email_normalized",
        "secondary_email_normalized",
        "linked_sub",
        "linked_at",
        "campaign_wave",
        "campaign_waves",
        "campaign_invited_at",
    ]
    return [
        AccountFacts(
            a.nr_number,
            f"{a.first_name or ''} {a.last_name or ''}".strip(),
            a.status,
            a.primary_email_normalized or "",
            a.secondary_email_normalized,
            a.linked_at.astimezone(UTC).date() if a.linked_sub and a.linked_at else None,
            _day(campaign.account_campaign(a).invited_at),
        )
        for a in Account.scan(attributes_to_get=attributes)
    ]


def _day(at: datetime | None) -> date | None:
    return at.astimezone(UTC).date() if at else None


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly(
    accounts: Sequence[AccountFacts], campaign: CampaignFacts | None, today: date
) -> list[Week]:
    """One row per week, from the first link or invitation to this week (ends today).
    "Active" is today's status: the tables keep no history of it."""
    active = [a for a in accounts if a.status == "active"]
    firsts = [a.linked_on for a in accounts if a.linked_on]
    if campaign:
        firsts += list(campaign.first_invited.values())
    first_week = max(
        _monday(min(firsts, default=today)), _monday(today) - timedelta(weeks=WEEKS_SHOWN - 1)
    )
    linked_in: Counter[date] = Counter()
    active_linked_in: Counter[date] = Counter()
    waits: dict[date, list[int]] = {}
    for a in accounts:
        if a.linked_on is None or a.linked_on > today:
            continue
        week = max(_monday(a.linked_on), first_week)
        active_linked_in[week] += a.status == "active"
        if _monday(a.linked_on) < first_week:
            continue  # before the weeks shown: only in the running total
        linked_in[week] += 1
        invited = campaign.first_invited.get(a.nr_number) if campaign else None
        # Linked before the first mail (a race with the run): no wait to measure.
        if invited is not None and invited <= a.linked_on:
            waits.setdefault(week, []).append((a.linked_on - invited).days)
    invited_in: Counter[date] = Counter()
    bounced_in: Counter[date] = Counter()
    complained_in: Counter[date] = Counter()
    if campaign:
        invited_in.update(_monday(d) for d in campaign.first_invited.values())
        bounced_in.update(_monday(d) for d in campaign.bounced.values())
        complained_in.update(_monday(d) for d in campaign.complained.values())
    weeks = []
    linked_active = 0
    start = first_week
    while start <= today:
        linked_active += active_linked_in[start]
        weeks.append(
            Week(
                start=start,
                invited=invited_in[start] if campaign else None,
                linked=linked_in[start],
                median_days_to_link=_median(sorted(waits.get(start, []))) if campaign else None,
                bounced=bounced_in[start] if campaign else None,
                complaints=complained_in[start] if campaign else None,
                remaining=len(active) - linked_active,
                active=len(active),
                linked_share=(linked_active / len(active)) if active else 0.0,
            )
        )
        start += timedelta(weeks=1)
    return weeks


def _median(values: Sequence[int]) -> float | None:
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return float(values[middle])
    return (values[middle - 1] + values[middle]) / 2


def project(accounts: Sequence[AccountFacts], today: date, deadline: date | None) -> Projection:
    """When the accounts still to link will have linked at the last four weeks' rate (the
    28 days before today), and the rate the deadline needs."""
    remaining = sum(1 for a in accounts if a.waiting)
    since = today - timedelta(days=PROJECTION_DAYS)
    recent = sum(1 for a in accounts if a.linked_on and since <= a.linked_on < today)
    per_day = recent / PROJECTION_DAYS
    if remaining == 0:
        completes_on: date | None = today
    elif per_day > 0:
        completes_on = today + timedelta(days=math.ceil(remaining / per_day))
    else:
        completes_on = None
    needed = None
    if deadline is not None and deadline > today:
        needed = remaining * 7 / (deadline - today).days
    return Projection(today, deadline, remaining, recent, per_day * 7, completes_on, needed)


def stuck_cases(accounts: Sequence[AccountFacts], now: float) -> dict[str, list[StuckCase]]:
    """The lists an agent works through, among the accounts still to link. Shared addresses
    come from the accounts read (an address on two accounts that are not removed), paused
    recoveries from the pause marks alive now (guess_limits.paused_accounts): no read per
    account. A once-shared address (one holder left, not yet cleared) is in no list here:
    only its claim says so, and the person page shows it."""
    from chalicelib import guess_limits

    holders: dict[str, set[str]] = {}
    for a in accounts:
        if a.status != "removed":
            for x in (a.primary, a.secondary):
                if x:
                    holders.setdefault(x, set()).add(a.nr_number)
    paused = guess_limits.paused_accounts(now)
    lists: dict[str, list[StuckCase]] = {name: [] for name in STUCK_LISTS}
    for a in sorted((a for a in accounts if a.waiting), key=lambda a: a.nr_number):
        own = [x for x in (a.primary, a.secondary) if x]
        shared = [x for x in own if len(holders.get(x, ())) > 1]
        if own and len(shared) == len(own):
            others = sorted({n for x in shared for n in holders[x]} - {a.nr_number})
            why = "shared with " + ", ".join(others)
            lists["shared"].append(StuckCase(a.nr_number, a.name, shared[0], why))
        if is_institutional(a.primary):
            lists["institutional"].append(
                StuckCase(a.nr_number, a.name, a.primary, "primary is institutional")
            )
        lists["never-linked"].append(StuckCase(a.nr_number, a.name, a.primary, "never linked"))
        if a.nr_number in paused:
            lists["paused"].append(
                StuckCase(a.nr_number, a.name, a.primary, "recovery paused for 24 hours")
            )
    return lists


def build_progress(today: date | None = None, deadline: date | None = None) -> Progress:
    """The weekly figures, the projection and the stuck lists, from one read of the
    accounts (and the campaign's figures when it has them)."""
    from chalicelib.config import get_settings

    now = clock.now()
    today = today or clock.utc_now().date()
    deadline = deadline if deadline is not None else get_settings().campaign_deadline
    accounts = read_accounts()
    campaign = campaign_facts(accounts)
    return Progress(
        generated_at=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        weeks=weekly(accounts, campaign, today),
        projection=project(accounts, today, deadline),
        stuck=stuck_cases(accounts, now),
        campaign_available=campaign is not None,
        accounts_read=len(accounts),
    )


WEEKLY_HEADER = (
    "week_starting",
    "invited",
    "linked",
    "median_days_from_invitation_to_link",
    "bounced",
    "complaints",
    "remaining_active_never_linked",
    "active",
    "linked_share_percent",
)
STUCK_HEADER = ("nr_number", "name", "address", "why")


def _shown(value: object) -> object:
    return NOT_AVAILABLE if value is None else value


def weekly_rows(progress: Progress) -> list[tuple]:
    return [
        (
            w.start.isoformat(),
            _shown(w.invited),
            w.linked,
            (
                (w.median_days_to_link if w.median_days_to_link is not None else "none")
                if progress.campaign_available
                else NOT_AVAILABLE
            ),
            _shown(w.bounced),
            _shown(w.complaints),
            w.remaining,
            w.active,
            f"{100 * w.linked_share:.1f}",
        )
        for w in progress.weeks
    ]


def progress_csv(progress: Progress, which: str = "weekly") -> str:
    """One CSV: the weekly table, or one of STUCK_LISTS; every cell formula-safe."""
    import io

    from supportdesk.csv_cells import write_rows

    out = io.StringIO()
    if which == "weekly":
        write_rows(out, WEEKLY_HEADER, weekly_rows(progress))
    else:
        cases = progress.stuck[which]  # KeyError: not a list
        write_rows(out, STUCK_HEADER, [(c.nr_number, c.name, c.address, c.why) for c in cases])
    return out.getvalue()


def share_chart(weeks: Sequence[Week]) -> dict:
    """The linked ÷ active line (SVG, drawn by the template): points and axis labels."""
    width, height, left, top, bottom = 640, 220, 48, 16, 40
    plot_w, plot_h = width - left - 16, height - top - bottom
    step = plot_w / max(1, len(weeks) - 1)
    points = [
        (round(left + i * step, 1), round(top + plot_h * (1 - w.linked_share), 1))
        for i, w in enumerate(weeks)
    ]
    every = max(1, math.ceil(len(weeks) / 8))
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "bottom_y": top + plot_h,
        "right_x": left + plot_w,
        "points": " ".join(f"{x},{y}" for x, y in points),
        "dots": points,
        "grid": [
            {"y": round(top + plot_h * (1 - p / 100), 1), "label": f"{p}%"}
            for p in (0, 25, 50, 75, 100)
        ],
        "labels": [
            {"x": points[i][0], "text": f"{weeks[i].start:%b} {weeks[i].start.day}"}
            for i in range(0, len(weeks), every)
        ],
    }


def progress_dict(progress: Progress) -> dict:
    """The weekly table, the projection and the lists' sizes, as plain values (--json)."""
    p = progress.projection
    return {
        "weeks": [dict(zip(WEEKLY_HEADER, row, strict=True)) for row in weekly_rows(progress)],
        "projection": {
            "today": p.today.isoformat(),
            "deadline": p.deadline.isoformat() if p.deadline else None,
            "remaining": p.remaining,
            "links_last_four_weeks": p.links_last_four_weeks,
            "per_week": round(p.per_week, 1),
            "completes_on": p.completes_on.isoformat() if p.completes_on else None,
            "needed_per_week": None if p.needed_per_week is None else round(p.needed_per_week, 1),
            "on_track": p.on_track,
        },
        "stuck": {name: len(cases) for name, cases in progress.stuck.items()},
    }


def progress_text(data: dict) -> str:
    """progress_dict as the desk's terminal shows it."""
    lines = ["Per week:"]
    lines.append(
        "  week of     invited  linked  days to link  bounced  complaints  remaining  linked/active"
    )
    for w in data["weeks"]:
        lines.append(
            f"  {w['week_starting']}  {w['invited']!s:>7}  {w['linked']:>6}  "
            f"{w['median_days_from_invitation_to_link']!s:>12}  {w['bounced']!s:>7}  "
            f"{w['complaints']!s:>10}  "
            f"{w['remaining_active_never_linked']:>9}  {w['linked_share_percent']:>12}%"
        )
    p = data["projection"]
    lines.append("Projection (the last four weeks' rate):")
    lines.append(f"  remaining          {p['remaining']}")
    lines.append(f"  links a week       {p['per_week']}")
    lines.append(f"  deadline           {p['deadline'] or 'none set'}")
    lines.append(f"  all linked by      {p['completes_on'] or 'no links in four weeks'}")
    if p["needed_per_week"] is not None:
        lines.append(f"  needed a week      {p['needed_per_week']}")
    lines.append("Stuck cases: " + ", ".join(f"{k} {v}" for k, v in data["stuck"].items()))
    return "\n".join(lines)
