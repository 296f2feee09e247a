"""The desk operations as the console runs them: supportdesk.desk (manage.py's own
implementation) with the signed-in staff member as actor, their ticket and reason, and the
confirmation page's `seen` token, so a change confirmed on a page the account has moved past
is refused (DeskChangeStale) and nothing is written.

What the console adds to desk.py:
- desk.py's errors become the console's typed errors (one page each, pages.ERROR_PAGES);
- a `not-owner` unlink may also tell Login.gov (supportdesk.login_gov_report): after the
  unlink has committed, never undoing it; a failure is a follow-up the page shows with a
  retry, as are failed "end sessions" and email notices;
- the retries, each limited to what the account itself names (a forged form cannot end the
  sessions of, or report, an unrelated identity).

Each function takes plain values and returns desk.py's plain dict; routes render it.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ServiceError
from chalicelib.logs import keyed_hash, log_event
from supportdesk import desk, login_gov_report, trace
from supportdesk.console.errors import (
    DeskAccountNotFound,
    DeskChangeInvalid,
    DeskChangeRefused,
    DeskChangeStale,
)
from supportdesk.console.models import StaffMember

REPORT_STEP = "report-login-gov"


def actor(member: StaffMember) -> desk.Actor:
    """The staff member as every account's audit trail names them: staff:<sub>, with their
    email and role beside the ticket and the reason."""
    return desk.staff_actor(member.sub, member.email, member.role)


@contextlib.contextmanager
def _console_errors():
    try:
        yield
    except desk.Stale as exc:
        raise DeskChangeStale(str(exc), reason="stale") from None
    except desk.NotFound as exc:
        raise DeskAccountNotFound(str(exc), reason="not_found") from None
    except desk.Refused as exc:
        raise DeskChangeRefused(str(exc), reason="refused") from None
    except desk.Invalid as exc:
        raise DeskChangeInvalid(str(exc), reason="invalid") from None


def account(nr_number: str) -> dict:
    """The account a form is about (its name and primary email), or DeskAccountNotFound."""
    with _console_errors():
        return desk.find(nr_number)[0]


# --- previews: what the confirmation page names, with its `seen` token --------------------------


def preview(operation: str, nr_number: str, **inputs) -> dict:
    with _console_errors():
        if operation == "unlink":
            return desk.preview_unlink(nr_number, inputs.get("mode") or "")
        if operation in ("disable", "enable"):
            status = "disabled" if operation == "disable" else "active"
            return desk.preview_set_status(nr_number, status)
        if operation == "end-sessions":
            return desk.preview_end_account_sessions(nr_number)
        if operation == "lift-bar":
            return desk.preview_lift_bar(nr_number, inputs.get("sub"))
        if operation == "set-email":
            return desk.preview_set_email(
                nr_number, slot=inputs.get("slot") or "", address=_address(inputs)
            )
        if operation == "clear-shared":
            return desk.preview_clear_shared(inputs.get("address") or "", nr_number=nr_number)
    raise DeskChangeInvalid("no such desk operation", reason="operation")


def _address(inputs: dict) -> str | None:
    # An empty secondary means "remove it" (the confirmation page says so); desk.py refuses
    # an empty primary.
    text = (inputs.get("address") or "").strip()
    return text or None


# --- the changes ----------------------------------------------------------------------------------


def change(
    operation: str,
    nr_number: str,
    member: StaffMember,
    *,
    ticket: str | None,
    reason: str | None,
    seen: str | None,
    **inputs,
) -> dict:
    """Make the change the confirmation page showed, as `member`. `seen` is required: the
    console only changes what a confirmation page showed."""
    if not seen:
        raise DeskChangeInvalid("confirm the change on its confirmation page", reason="seen")
    who = actor(member)
    why: dict[str, Any] = {"reason": reason or "", "actor": who, "ticket": ticket, "seen": seen}
    with _console_errors():
        if operation == "unlink":
            result = desk.unlink(nr_number, mode=inputs.get("mode") or "", **why)
            if result["mode"] == "not-owner" and inputs.get("report"):
                _report(result, result["unlinked_sub"], who)
            return result
        if operation in ("disable", "enable"):
            status = "disabled" if operation == "disable" else "active"
            return desk.set_status(nr_number, status, **why)
        if operation == "end-sessions":
            return desk.end_account_sessions(nr_number, **why)
        if operation == "lift-bar":
            return desk.lift_bar(nr_number, inputs.get("sub") or "", **why)
        if operation == "set-email":
            return desk.set_email(
                nr_number, slot=inputs.get("slot") or "", address=_address(inputs), **why
            )
        if operation == "clear-shared":
            return desk.clear_shared(inputs.get("address") or "", nr_number=nr_number, **why)
    raise DeskChangeInvalid("no such desk operation", reason="operation")


def _report(result: dict, sub: str, who: desk.Actor) -> None:
    """Tell Login.gov, after the unlink committed: a failure is reported on the page as a
    follow-up to retry, and the unlink stands."""
    try:
        login_gov_report.report_authorization_fraud(
            sub, nr_number=result["nr_number"], actor=who.name
        )
    except (login_gov_report.ReportFailed, ServiceError, BotoCoreError, ClientError) as exc:
        result.setdefault("follow_up_failed", []).append(
            {"step": REPORT_STEP, "error": str(exc), "sub": sub}
        )
        result["login_gov_told"] = False
        return
    result["login_gov_told"] = True


# --- retries of follow-ups ------------------------------------------------------------------------


def retry_report(nr_number: str, sub: str | None, member: StaffMember) -> dict:
    """Tell Login.gov again about an identity this account bars (the not-owner unlink made
    the bar): a forged form cannot report an identity the desk never evicted."""
    who = actor(member)
    view = account(nr_number)
    subject = (sub or "").strip()
    # Reporting an identity as fraudulent can lock a stranger out of Login.gov: only one
    # the desk barred from this account.
    if not subject or subject not in view["barred_subs"]:
        raise DeskChangeRefused(
            f"that Login.gov identity is not barred from account {view['nr_number']}: "
            "nothing to report",
            reason="not_barred",
        )
    result = {"nr_number": view["nr_number"], "name": view["name"], "sub": subject}
    result["primary_email"] = view["primary_email"]
    _report(result, subject, who)
    log_event(
        "login_gov_report_retried",
        nr_number=view["nr_number"],
        actor=who.name,
        subject=keyed_hash(subject),
        told=result["login_gov_told"],
    )
    return result


def retry_end_sessions(nr_number: str, sub: str | None, member: StaffMember) -> dict:
    with _console_errors():
        return desk.retry_end_sessions(nr_number, sub, actor=actor(member))


def retry_notices(nr_number: str, addresses: list[str], member: StaffMember) -> dict:
    with _console_errors():
        return desk.retry_notices(nr_number, addresses, actor=actor(member))


# --- reads: trace a reference, export the changes ---------------------------------------------


def stage() -> str:
    """The stage this console runs in, from its Lambda function's name (nrcme-desk-<stage>);
    "local" outside Lambda."""
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    return name.removeprefix("nrcme-desk-") if name.startswith("nrcme-desk-") else "local"


def trace_reference(reference: str | None, stage: str, days: int = 7) -> dict:
    """The CloudWatch Logs Insights queries that find a reference, for both apps."""
    with _console_errors():
        ref = trace.parse_reference(reference)
        return {
            "reference": ref,
            "apps": [
                trace.cloudwatch_instructions(ref, app, stage, days)
                for app in ("nrcme-signin", "nrcme-desk")
            ],
        }


def export_changes(since: str | None) -> list[dict]:
    with _console_errors():
        return desk.export_changes(since or "")


def export_csv(rows: list[dict]) -> str:
    from supportdesk.csv_cells import write_rows

    out = io.StringIO()
    write_rows(out, desk.EXPORT_COLUMNS, ([row[c] for c in desk.EXPORT_COLUMNS] for row in rows))
    return out.getvalue()
