"""The console's home: a search box. Searching a person is the next part to build: GET
/search receives the query (escaped wherever it is shown) and renders the results block of
home.html; supportdesk/console/README.md says where the search itself goes."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge
from supportdesk.console.edge import access, render
from supportdesk.console.permissions import Permission

bp = Blueprint(__name__)
MAX_QUERY_LENGTH = 254


@bp.route("/home")
@access(Permission.SEARCH)
def home():
    return render("home.html", query=None)


@bp.route("/search")
@access(Permission.SEARCH)
def search():
    query = (edge.query().get("q") or "").strip()[:MAX_QUERY_LENGTH]
    return render("home.html", query=query or None, results=None)
