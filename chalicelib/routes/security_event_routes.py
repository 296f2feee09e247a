"""Login.gov security events (RISC push, RFC 8935): a JSON API, not pages."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import edge
from chalicelib.errors import SecurityEventDeferred, SecurityEventRejected

bp = Blueprint(__name__)


def _rejected(error: SecurityEventRejected) -> tuple[int, dict]:
    return 400, {"err": error.code, "description": error.description}


def _deferred(error: SecurityEventDeferred) -> tuple[int, dict]:
    # Not a refusal: 503 asks Login.gov to deliver the event again later.
    return 503, {"err": "temporarily_unavailable", "description": str(error)}


@bp.route(
    "/api/security-events",
    methods=["POST"],
    content_types=["application/secevent+jwt", "application/jwt", "text/plain"],
)
@edge.api(
    "security_event_rejected", {SecurityEventRejected: _rejected, SecurityEventDeferred: _deferred}
)
def receive_security_event():
    from chalicelib import security_events  # on first use: see chalicelib/routes/__init__.py

    security_events.handle_security_event(edge.raw_body().decode("ascii", "replace").strip())
    return edge.json_response(202, None)
