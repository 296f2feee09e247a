"""Staff administration, for supervisors: the staff list, and adding, re-roling and removing
staff members, each with a confirmation page and a reason (the desk audit trail keeps it).

Each change is a two-step POST: the first shows what will happen (nothing changes), the
second, with confirm=yes and a reason, makes the change (supportdesk.console.staff). Both
carry the CSRF token and need a fresh Login.gov sign-in (STAFF_ADMIN is a change).
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge, web
from supportdesk.console import desk_audit, pages, sessions, staff
from supportdesk.console.edge import access, render, signed_in_member
from supportdesk.console.errors import StaffChangeRefused
from supportdesk.console.permissions import ROLE_LABELS, ROLES, Permission

bp = Blueprint(__name__)
STAFF_PAGE = "/staff"
DONE = {"added": "added", "role": "role", "removed": "removed"}


@bp.route("/staff")
@access(Permission.STAFF_ADMIN, fresh=False)  # looking is not changing
def staff_page():
    members = staff.list_staff()
    return render(
        "staff.html",
        members=members,
        # "staff:<sub>" in added_by, and in the audit stream, read as that person's email.
        names={staff.staff_actor(m).name: m.email for m in members},
        pending=staff.list_pending(),
        events=desk_audit.recent_events(),
        roles=ROLES,
        role_labels=ROLE_LABELS,
        done=DONE.get(edge.query().get("done", "")),
    )


@bp.route("/staff/add", methods=["POST"], content_types=edge.FORM)
@access(Permission.STAFF_ADMIN, back_to=STAFF_PAGE)
def staff_add():
    form = edge.form()
    if form.get("confirm") != "yes":
        given, _ = staff.check_email(form.get("email"))
        role = staff.check_role(form.get("role"))
        return _confirm("add", email=given, role=role)
    staff.add(
        form.get("email"),
        form.get("role"),
        actor=staff.staff_actor(signed_in_member()),
        reason=form.get("reason"),
        reason_required=True,
    )
    return pages.redirect(f"{STAFF_PAGE}?done=added")


@bp.route("/staff/role", methods=["POST"], content_types=edge.FORM)
@access(Permission.STAFF_ADMIN, back_to=STAFF_PAGE)
def staff_role():
    form = edge.form()
    me = signed_in_member()
    if form.get("confirm") != "yes":
        member = _member(form.get("sub"))
        role = staff.check_role(form.get("role"))
        if role == member.role:
            raise StaffChangeRefused(f"{member.email} is already {role}", reason="unchanged")
        return _confirm("role", member=member, role=role, yourself=member.sub == me.sub)
    staff.change_role(
        form.get("sub") or "",
        form.get("role"),
        actor=staff.staff_actor(me),
        reason=form.get("reason"),
    )
    return pages.redirect(f"{STAFF_PAGE}?done=role")


@bp.route("/staff/remove", methods=["POST"], content_types=edge.FORM)
@access(Permission.STAFF_ADMIN, back_to=STAFF_PAGE)
def staff_remove():
    form = edge.form()
    me = signed_in_member()
    actor = staff.staff_actor(me)
    sub, email = form.get("sub"), form.get("email")
    if form.get("confirm") != "yes":
        if sub:
            member = _member(sub)
            return _confirm("remove", member=member, yourself=member.sub == me.sub)
        given, normalized = staff.check_email(email)
        entry = staff.get_pending(normalized)
        if entry is None:
            raise StaffChangeRefused(f"{given} is not pending", reason="not_found")
        return _confirm("remove", pending=entry)
    if not sub:
        staff.remove_pending(email or "", actor=actor, reason=form.get("reason"))
        return pages.redirect(f"{STAFF_PAGE}?done=removed")
    staff.remove(sub, actor=actor, reason=form.get("reason"))
    if sub == me.sub:
        # They removed themselves: their sessions ended with the record.
        return pages.redirect("/", cookies=[web.clear_cookie(sessions.COOKIE)])
    return pages.redirect(f"{STAFF_PAGE}?done=removed")


def _member(sub: str | None):
    member = staff.get((sub or "").strip())
    if member is None:
        raise StaffChangeRefused("no staff member has that Login.gov sub", reason="not_found")
    return member


def _confirm(action: str, **context):
    return render("staff_confirm.html", action=action, role_labels=ROLE_LABELS, **context)
