"""Pages for anyone: the help page, and the not-found page for every unknown path."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge, pages
from chalicelib.config import get_settings
from chalicelib.errors import NotFound

bp = Blueprint(__name__)


@bp.route("/help")
@edge.page
def help_page():
    from chalicelib.help_pictures import deadline_text, pictures

    session = edge.optional_session()
    settings = get_settings()
    return pages.render(
        "help.html",
        deadline=deadline_text(),
        pictures=pictures(),
        signed_in=session is not None,
        linked=bool(session and session.nr_number),
        login_gov_account_url=settings.login_gov_account_url,
        minutes=settings.challenge_ttl // 60,
        max_attempts=settings.code_max_attempts,
        sends_per_hour=settings.code_sends_per_hour,
    )


# API Gateway sends every path no other route has to a greedy {proxy+} resource, so an
# unknown path is the site's 404 page, not its JSON "Missing Authentication Token".
# (chalice local matches one segment per variable: localdev/chalice_local.py makes it
# greedy like API Gateway. Wrong methods are the gateway's: infra/api_responses.yaml.)
@bp.route("/{proxy+}", methods=["GET"])
@edge.page
def not_found():
    edge.optional_session()  # the header says whether you are signed in
    raise NotFound("no such page")
