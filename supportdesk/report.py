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
from datetime import UTC, datetime
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
