"""Every path no other route has: the console's 404 page (API Gateway sends it to the
greedy {proxy+} resource; make run's chalice local matches it the same way)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.errors import NotFound
from supportdesk.console.edge import access, optional_member
from supportdesk.console.permissions import Open

bp = Blueprint(__name__)


@bp.route("/{proxy+}", methods=["GET"])
@access(Open.PUBLIC)
def not_found():
    optional_member()  # the header says who is signed in
    raise NotFound("no such page")
