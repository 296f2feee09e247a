"""The desk operations of manage.py as console forms: unlink (lost-account, not-owner),
disable, enable, end-sessions, set-email (UNLINK ... SET_EMAIL: agents), lift-bar and
clear-shared (supervisors), and the reads trace and export-changes.

Each change is two steps on one URL, `/people/{nr_number}/<operation>`:
1. the confirmation page (GET, or a POST of the operation's own inputs: an address stays
   out of URLs): it names the account and its primary email, says what the change does, and
   carries the preview's `seen` token, a ticket reference and a reason (both required);
2. POST with confirm=yes: supportdesk.console.desk_ops makes the change as this staff member
   (the audit record, in the change's own transaction, names them, their role and the
   ticket); a change the account moved past since step 1 is refused, nothing written.
Every POST carries the CSRF token; every change needs a fresh Login.gov sign-in.
"""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import edge
from supportdesk.console import desk_ops
from supportdesk.console.edge import access, render, signed_in_member
from supportdesk.console.permissions import Permission

bp = Blueprint(__name__)

# The inputs each operation takes besides ticket and reason (from the query or the form).
INPUTS = {
    "unlink": ("mode", "report"),
    "disable": (),
    "enable": (),
    "end-sessions": (),
    "lift-bar": ("sub",),
    "set-email": ("slot", "address"),
    "clear-shared": ("address",),
}
TITLES = {
    "unlink": "Unlink a Login.gov account",
    "disable": "Disable an account",
    "enable": "Enable an account",
    "end-sessions": "Sign the person out everywhere",
    "lift-bar": "Lift a bar on a Login.gov account",
    "set-email": "Correct an email address",
    "clear-shared": "Clear a once-shared address",
    "retry-report": "Tell Login.gov again",
    "retry-end-sessions": "End the sessions again",
    "retry-notices": "Send the email notices again",
}
# Operations whose first page asks for something before it can confirm: an address typed
# (never sent in a URL), or a choice the URL did not make.
ASKS_FIRST = {
    "set-email": "address",
    "clear-shared": "address",
    "lift-bar": "sub",
    "unlink": "mode",
}


def _first_page(operation: str, nr_number: str) -> Response:
    inputs = {name: edge.query().get(name) for name in INPUTS[operation]}
    asked = ASKS_FIRST.get(operation)
    if asked == "address" or (asked and not inputs.get(asked)):
        return render(
            "desk_form.html",
            operation=operation,
            title=TITLES[operation],
            account=desk_ops.account(nr_number),
            inputs=inputs,
        )
    return _confirmation(operation, nr_number, inputs)


def _confirmation(operation: str, nr_number: str, inputs: dict) -> Response:
    return render(
        "desk_confirm.html",
        operation=operation,
        title=TITLES[operation],
        preview=desk_ops.preview(operation, nr_number, **inputs),
        inputs=inputs,
    )


def _posted(operation: str, nr_number: str) -> Response:
    form = edge.form()
    inputs = {name: form.get(name) for name in INPUTS[operation]}
    if form.get("confirm") != "yes":
        return _confirmation(operation, nr_number, inputs)
    result = desk_ops.change(
        operation,
        nr_number,
        signed_in_member(),
        ticket=form.get("ticket"),
        reason=form.get("reason"),
        seen=form.get("seen"),
        **inputs,
    )
    return _done(operation, result)


def _done(operation: str, result: dict) -> Response:
    return render("desk_done.html", operation=operation, title=TITLES[operation], result=result)


# --- the changes: one GET (confirmation) and one POST per operation ------------------------------


@bp.route("/people/{nr_number}/unlink")
@access(Permission.UNLINK)
def unlink_page(nr_number):
    return _first_page("unlink", nr_number)


@bp.route("/people/{nr_number}/unlink", methods=["POST"], content_types=edge.FORM)
@access(Permission.UNLINK)
def unlink(nr_number):
    return _posted("unlink", nr_number)


@bp.route("/people/{nr_number}/disable")
@access(Permission.DISABLE)
def disable_page(nr_number):
    return _first_page("disable", nr_number)


@bp.route("/people/{nr_number}/disable", methods=["POST"], content_types=edge.FORM)
@access(Permission.DISABLE)
def disable(nr_number):
    return _posted("disable", nr_number)


@bp.route("/people/{nr_number}/enable")
@access(Permission.ENABLE)
def enable_page(nr_number):
    return _first_page("enable", nr_number)


@bp.route("/people/{nr_number}/enable", methods=["POST"], content_types=edge.FORM)
@access(Permission.ENABLE)
def enable(nr_number):
    return _posted("enable", nr_number)


@bp.route("/people/{nr_number}/end-sessions")
@access(Permission.END_SESSIONS)
def end_sessions_page(nr_number):
    return _first_page("end-sessions", nr_number)


@bp.route("/people/{nr_number}/end-sessions", methods=["POST"], content_types=edge.FORM)
@access(Permission.END_SESSIONS)
def end_sessions(nr_number):
    return _posted("end-sessions", nr_number)


@bp.route("/people/{nr_number}/set-email")
@access(Permission.SET_EMAIL)
def set_email_page(nr_number):
    return _first_page("set-email", nr_number)


@bp.route("/people/{nr_number}/set-email", methods=["POST"], content_types=edge.FORM)
@access(Permission.SET_EMAIL)
def set_email(nr_number):
    return _posted("set-email", nr_number)


@bp.route("/people/{nr_number}/lift-bar")
@access(Permission.LIFT_BAR)
def lift_bar_page(nr_number):
    return _first_page("lift-bar", nr_number)


@bp.route("/people/{nr_number}/lift-bar", methods=["POST"], content_types=edge.FORM)
@access(Permission.LIFT_BAR)
def lift_bar(nr_number):
    return _posted("lift-bar", nr_number)


@bp.route("/people/{nr_number}/clear-shared")
@access(Permission.CLEAR_SHARED)
def clear_shared_page(nr_number):
    return _first_page("clear-shared", nr_number)


@bp.route("/people/{nr_number}/clear-shared", methods=["POST"], content_types=edge.FORM)
@access(Permission.CLEAR_SHARED)
def clear_shared(nr_number):
    return _posted("clear-shared", nr_number)


# --- retries of a committed change's follow-ups ---------------------------------------------------


@bp.route("/people/{nr_number}/retry/report", methods=["POST"], content_types=edge.FORM)
@access(Permission.UNLINK)
def retry_report(nr_number):
    result = desk_ops.retry_report(nr_number, edge.form().get("sub"), signed_in_member())
    return _done("retry-report", result)


@bp.route("/people/{nr_number}/retry/end-sessions", methods=["POST"], content_types=edge.FORM)
@access(Permission.END_SESSIONS)
def retry_end_sessions(nr_number):
    result = desk_ops.retry_end_sessions(nr_number, edge.form().get("sub"), signed_in_member())
    return _done("retry-end-sessions", result)


@bp.route("/people/{nr_number}/retry/notices", methods=["POST"], content_types=edge.FORM)
@access(Permission.SET_EMAIL)
def retry_notices(nr_number):
    addresses = (edge.form().get("addresses") or "").split()
    result = desk_ops.retry_notices(nr_number, addresses, signed_in_member())
    return _done("retry-notices", result)


# --- reads ------------------------------------------------------------------------------------------


@bp.route("/trace")
@access(Permission.TRACE)
def trace():
    reference = edge.query().get("ref")
    found = desk_ops.trace_reference(reference, desk_ops.stage()) if reference else None
    return render("desk_trace.html", found=found)


@bp.route("/export-changes")
@access(Permission.EXPORT_CHANGES)
def export_changes():
    query = edge.query()
    since = query.get("since")
    rows = desk_ops.export_changes(since) if since else None
    if rows is not None and query.get("format") == "csv":
        return Response(
            body=desk_ops.export_csv(rows),
            status_code=200,
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="changes-since-{since}.csv"',
            },
        )
    return render("desk_export.html", since=since, rows=rows)
