"""HTML responses: Jinja2 templates (autoescaped) and the one map from errors to pages."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from chalice import Response

from chalicelib.errors import ServiceError
from chalicelib.logs import count, log_event

TEMPLATES = Path(__file__).parent / "templates"
SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    # Pages carry their own CSS and no scripts: nothing else may load, nothing may frame us.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}


@functools.lru_cache(maxsize=1)
def _environment():
    # Imported on first render: /login and /auth/callback answer with redirects and never
    # pay for Jinja2 on a cold start.
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "txt"], default=True),
        auto_reload=False,
    )


def render(template: str, status: int = 200, cookies: list[str] | None = None,
           **context) -> Response:
    body = _environment().get_template(template).render(**context)
    headers: dict = dict(SECURITY_HEADERS)
    if cookies:
        headers["Set-Cookie"] = cookies
    return Response(body=body, status_code=status, headers=headers)


def redirect(location: str, cookies: list[str] | None = None) -> Response:
    headers: dict = {"Location": location, "Cache-Control": "no-store"}
    if cookies:
        headers["Set-Cookie"] = cookies
    return Response(body="", status_code=302, headers=headers)


def render_error(error: ServiceError, cookies: list[str] | None = None, **context) -> Response:
    """The one place a typed error becomes a page."""
    log_event(error.event, logging.WARNING, error=error.__class__.__name__, detail=str(error))
    count("RequestRefused", reason=error.event)
    return render(error.page, status=error.status, cookies=cookies, error=error, **context)
