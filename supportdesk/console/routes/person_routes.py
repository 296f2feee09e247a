"""One screen per person (READ): GET /people/<nr_number>, `?before=` for older events."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge, store
from supportdesk.console import person
from supportdesk.console.edge import access, render
from supportdesk.console.permissions import Permission

bp = Blueprint(__name__)


@bp.route("/people/{nr_number}")
@access(Permission.READ)
def person_page(nr_number: str):
    number = (nr_number or "").strip()
    found = (
        person.page(number, edge.query().get("before"))
        if store.is_registry_number(number)
        else None
    )
    if found is None:
        return render("person_missing.html", status=404, nr_number=number)
    return render("person.html", page=found, person=found.facts, **found.helpers())
