"""The migration report (viewer and up): progress per week with the linked ÷ active chart
(SVG drawn here: the CSP allows no script), the projection against the deadline, and the
stuck cases as lists linking to each person's page, each list and the weekly table as CSV
(formula-safe: supportdesk.csv_cells). One workflow call per request
(supportdesk.report.build_progress)."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.errors import NotFound
from supportdesk import report
from supportdesk.console.edge import access, render
from supportdesk.console.permissions import Permission

bp = Blueprint(__name__)
SHOWN_PER_LIST = 100  # on the page; the CSV has every row
# Where a person's page is (person_routes.py).
PERSON_PAGE = "/people/"


@bp.route("/report")
@access(Permission.REPORT)
def report_page():
    progress = report.build_progress()
    return render(
        "report.html",
        progress=progress,
        rows=report.weekly_rows(progress),
        chart=report.share_chart(progress.weeks),
        lists=report.STUCK_LISTS,
        shown=SHOWN_PER_LIST,
        not_available=report.NOT_AVAILABLE,
        person_page=PERSON_PAGE,
    )


@bp.route("/report/csv/{name}")
@access(Permission.REPORT)
def report_csv(name: str):
    if name != "weekly" and name not in report.STUCK_LISTS:
        raise NotFound("no such report list")
    progress = report.build_progress()
    return Response(
        body=report.progress_csv(progress, name),
        status_code=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="migration-{name}.csv"',
        },
    )
