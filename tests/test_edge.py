"""The edge: app.py only registers, routes never catch, one table maps errors to responses,
and a refusal is logged and counted once."""

from __future__ import annotations

import ast
import inspect
import json
import uuid
from pathlib import Path

import pytest

from chalicelib import errors, pages
from tests.support.accounts import make_account

PROJECT = Path(__file__).resolve().parent.parent
ROUTES = sorted((PROJECT / "chalicelib" / "routes").glob("*.py"))


def test_app_py_registers_middleware_and_blueprints_and_nothing_else():
    tree = ast.parse((PROJECT / "app.py").read_text())
    statements = [
        node
        for node in tree.body
        if not isinstance(node, (ast.Import, ast.ImportFrom))
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]
    # The collector is off while the app loads, and what loaded is frozen (cold start).
    assert [ast.unparse(node) for node in statements[:1] + statements[-2:]] == [
        "gc.disable()",
        "gc.freeze()",
        "gc.enable()",
    ]
    statements = statements[1:-2]
    assert isinstance(statements[0], ast.Assign)  # app = Chalice(...)
    calls = [ast.unparse(node.value.func) for node in statements[1:]]
    assert calls[:2] == ["app.register_middleware"] * 2
    assert set(calls[2:]) == {"app.register_blueprint"} and len(calls) == 9
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Try))]


@pytest.mark.parametrize("path", ROUTES, ids=lambda p: p.name)
def test_no_route_body_catches_an_error(path):
    tree = ast.parse(path.read_text())
    tries = [f"{path.name}:{node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Try)]
    assert tries == []


def test_every_service_error_has_exactly_one_response_in_the_table():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in [errors.ServiceError, *subclasses(errors.ServiceError)]:
        if not inspect.getmodule(cls).__name__.startswith("chalicelib"):
            continue
        entry = pages.response_for(cls("probe"))
        assert isinstance(entry, (pages.Page, pages.Redirect)), cls
        if isinstance(entry, pages.Page):
            assert (pages.TEMPLATES / entry.template).exists(), (cls, entry.template)
    # Errors carry meaning only: where they are shown is the table's business.
    assert not [
        cls for cls in subclasses(errors.ServiceError) if {"page", "status"} & set(vars(cls))
    ]


def test_pages_are_only_rendered_for_errors_through_the_table():
    """grep, as a test: outside pages.py and edge.py nobody renders an error template."""
    error_templates = {
        entry.template for entry in pages.ERROR_RESPONSES.values() if isinstance(entry, pages.Page)
    }
    shared = {
        "code_entry.html",
        "link_no_match.html",
        "link_recover.html",
        "account_email.html",
    }  # also normal pages, rendered by their GET routes
    offenders = []
    for path in [*(PROJECT / "chalicelib").rglob("*.py")]:
        if path.name in ("pages.py", "edge.py"):
            continue
        text = path.read_text()
        offenders += [f"{path.name}: {t}" for t in error_templates - shared if f'"{t}"' in text]
        if "render_error(" in text:
            offenders.append(f"{path.name}: render_error")
    assert offenders == []


def test_a_refusal_is_one_log_line_and_one_metric(browser, logged):
    make_account(primary="front.desk@example.com")
    assert browser.sign_in(["front.desk@example.com"]).status == 302
    browser.cookies.clear()
    logged.records.clear()
    page = browser.sign_in(["front.desk@example.com"], sub=str(uuid.uuid4()))
    assert page.status == 409
    refusals = [r for r in logged.records if r.get("event") == "link_refused_shared"]
    metrics = [r for r in logged.records if "RequestRefused" in r]
    assert len(refusals) == 1 and refusals[0]["nr_number"] == "1000000001"
    assert len(metrics) == 1 and metrics[0]["reason"] == "link_refused_shared"
    assert not [r for r in logged.records if "LinkRefusedShared" in json.dumps(r)]


def test_an_error_page_keeps_the_signed_in_header(browser, app_client):
    """A refusal after sign-in still shows "Your account" and "Sign out", not "Sign in"."""
    make_account(primary="dr.alice@example.com")
    assert browser.sign_in(["dr.alice@example.com"]).status == 302
    page = browser.post("/account/email", {"csrf_token": "wrong", "change": "swap"})
    assert page.status == 403
    assert 'href="/logout"' in page.body and "Sign in with Login.gov</a>" not in page.body


def test_every_refusal_page_of_the_table_offers_help_and_support():
    """Refusal pages include the help link and support contact; a form shown again with
    its own inline error (code entry, recovery form, email form) is not a refusal page."""
    missing = sorted(
        {
            entry.template
            for entry in pages.ERROR_RESPONSES.values()
            if isinstance(entry, pages.Page)
            and entry.form is None
            and '{% include "_support.html" %}'
            not in (pages.TEMPLATES / entry.template).read_text()
        }
    )
    assert missing == []


# --- security headers on every answer --------------------------------------------------------------

REQUIRED_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def assert_security_headers(response) -> None:
    headers = {k.lower(): v for k, v in response.headers.items()}
    for name, value in REQUIRED_HEADERS.items():
        assert headers.get(name.lower()) == value, (name, response.status_code, headers)
    assert "frame-ancestors 'none'" in headers.get("content-security-policy", "")


@pytest.mark.parametrize(
    "method, path, headers, status",
    [
        ("GET", "/account", {}, 302),  # redirect to sign in
        ("GET", "/login", {}, 302),  # redirect to Login.gov
        ("GET", "/", {}, 200),
        ("POST", "/api/security-events", {"Content-Type": "application/secevent+jwt"}, 400),
        ("POST", "/api/security-events", {"Content-Type": "application/json"}, 415),  # Chalice's
        ("GET", "/api/security-events", {}, 405),  # JSON too
        ("POST", "/account/email", {"Content-Type": "application/json"}, 415),
    ],
)
def test_every_answer_carries_the_security_headers(app_client, method, path, headers, status):
    response = (
        getattr(app_client.http, method.lower())(path, headers=headers, body=b"x")
        if method == "POST"
        else app_client.http.get(path, headers=headers)
    )
    assert response.status_code == status
    assert_security_headers(response)


def test_a_page_may_not_weaken_the_security_headers(app_client):
    """One place sets them last: whatever a route's response says, these values win."""
    from chalice import Response

    from chalicelib import edge

    weak = Response(body="", status_code=200, headers={"Cache-Control": "public, max-age=60"})
    answer = edge.security_headers(None, lambda event: weak)
    assert_security_headers(answer)


def test_forms_may_lead_only_here_and_to_login_gov(app_client, idp):
    """A form whose answer sends the browser to sign in again (an email change past the
    recent sign-in window) is redirected via /login to Login.gov, and browsers check each
    redirect of a form submission against form-action: Login.gov's origin must be there,
    and nothing else but this site."""
    response = app_client.http.get("/")
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["form-action"].split() == ["'self'", idp.base]
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
