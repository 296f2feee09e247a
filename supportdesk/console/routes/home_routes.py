"""The console's home and its search (SEARCH): one box for a registry number, an email
address (registry or Login.gov) or a name; supportdesk/console/search.py finds them, by
index. Each result links to the person's page (person_routes.py)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge
from supportdesk.console import search as finder
from supportdesk.console.edge import access, render
from supportdesk.console.permissions import Permission

bp = Blueprint(__name__)
MAX_QUERY_LENGTH = finder.MAX_QUERY_LENGTH


@bp.route("/home")
@access(Permission.SEARCH)
def home():
    return render("home.html", query=None)


@bp.route("/search")
@access(Permission.SEARCH)
def search():
    query = (edge.query().get("q") or "").strip()[:MAX_QUERY_LENGTH]
    results = finder.search(query) if query else None
    return render("home.html", query=query or None, results=results)
