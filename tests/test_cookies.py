"""Cookies are read as browsers send them (RFC 6265 §5.4), and sign-in cookies stay few.

- A cookie planted on the parent domain by a sibling host, whose value hides one of our
  names (`banner=1 nr_signin_<h>=X`), is one cookie named `banner`: it neither finishes the
  attacker's sign-in in the victim's browser nor replaces the victim's session.
- An unrelated cookie with spaces, quotes or non-ASCII in its value hides nothing.
- A name sent twice is read as absent: a planted duplicate can sign you out, never in.
- However often /login is hit, at most three sign-in cookies remain (the oldest go).

Tests run on the http stage, where names carry no `__Host-` prefix; the https names are
covered by the reader's unit tests under an https APP_BASE_URL.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chalicelib import web
from chalicelib.models import Account
from tests.support.accounts import make_account
from tests.support.assertions import sessions_in_table, sub_claims
from tests.support.browser import query_of

VICTIM_EMAIL = "dr.alice@example.com"
ATTACKER_EMAIL = "mallory@example.net"
CONSENT = '{"ads": "no", "v": 2}'


@pytest.fixture
def victim_account(app_client):
    return make_account(primary=VICTIM_EMAIL)


def jar(browser) -> str:
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def get_with(browser, url: str, planted: str):
    """GET as `browser`: its own cookies, then `planted` (set on the parent domain by a
    sibling host, so the browser sends it too, after ours: created later)."""
    return browser.get(url, headers={"Cookie": "; ".join(filter(None, [jar(browser), planted]))})


def signin_cookie_names(browser) -> list[str]:
    return [name for name in browser.cookies if name.startswith(web.SIGNIN_COOKIE)]


def assert_signin_refused(page, browser) -> None:
    """The sign-in error page; no session anywhere; nobody linked."""
    assert page.status == 400, (page.status, page.body[:300])
    assert "Your sign-in took too long or was already finished" in page.body
    assert web.SESSION_COOKIE not in browser.cookies
    assert sessions_in_table() == []
    assert sub_claims() == []
    assert Account.get("1000000001").linked_sub is None


def signed_in_number(browser, planted: str = "") -> str | None:
    """The registry number /account shows this browser, or None when it is sent to sign in."""
    page = get_with(browser, "/account", planted)
    if page.status == 302:
        assert page.location.startswith("/login")
        return None
    assert page.status == 200, page
    return re.search(r"Registry number</dt><dd>(\d+)<", page.body).group(1)


# --- (a) the attack end to end: a binding smuggled inside another cookie's value ----------------


def test_a_binding_smuggled_in_another_cookies_value_cannot_sign_the_victim_in(
    browser, other_browser, victim_account
):
    """The attacker starts a sign-in, signs in at Login.gov as themselves, plants
    `banner=1 nr_signin_<h>=<their binding>` on the parent domain and sends the victim the
    callback URL. The victim must not be signed in as the attacker's identity (which would
    then be offered recovery of the victim's record)."""
    attacker = other_browser
    callback = attacker.authorize(attacker.start_signin(), [ATTACKER_EMAIL])
    state = query_of(callback)["state"]
    name = web.signin_cookie(state)
    planted = f"banner=1 {name}={attacker.cookies[name]}"
    page = get_with(browser, callback, planted)
    assert_signin_refused(page, browser)
    assert browser.get("/link/no-match").status == 302  # no half-session to recover with


# --- (b) the same smuggling against a live session ----------------------------------------------


def test_a_session_smuggled_in_another_cookies_value_does_not_switch_sessions(
    browser, other_browser, victim_account
):
    make_account("1000000002", primary="bob@example.com", legacy_username="bob2")
    assert other_browser.sign_in(["bob@example.com"]).location == "/account"
    attacker_session = other_browser.cookies[web.SESSION_COOKIE]
    assert browser.sign_in([VICTIM_EMAIL]).location == "/account"
    planted = f"banner=1 {web.SESSION_COOKIE}={attacker_session}"
    assert signed_in_number(browser, planted) == "1000000001"
    # Nor does it sign in a browser that has no session of its own.
    victim_session = browser.cookies.pop(web.SESSION_COOKIE)
    assert signed_in_number(browser, planted) is None
    browser.cookies[web.SESSION_COOKIE] = victim_session
    assert signed_in_number(browser) == "1000000001"


# --- (c) odd cookies of other sites break nothing -----------------------------------------------


@pytest.mark.parametrize(
    "name, value", [("consent", CONSENT), ("lang", "café"), ("pref", '"a b"'), ("q", "x=y=z")]
)
def test_an_unrelated_cookie_with_spaces_quotes_or_non_ascii_breaks_nothing(
    browser, victim_account, name, value
):
    browser.cookies[name] = value  # first in the header: it was there before we were
    assert browser.sign_in([VICTIM_EMAIL]).location == "/account"
    assert list(browser.cookies)[0] == name
    assert signed_in_number(browser) == "1000000001"
    # A callback still completes (the binding is read next to the odd cookie).
    page = browser.sign_in([VICTIM_EMAIL], return_to="/help")
    assert page.status == 302 and page.location == "/help"


# --- (d) a name sent twice is read as absent ----------------------------------------------------


def test_a_duplicated_session_cookie_signs_out_never_in_as_either(
    browser, other_browser, victim_account
):
    make_account("1000000002", primary="bob@example.com", legacy_username="bob2")
    assert other_browser.sign_in(["bob@example.com"]).location == "/account"
    theirs = other_browser.cookies[web.SESSION_COOKIE]
    assert browser.sign_in([VICTIM_EMAIL]).location == "/account"
    ours = browser.cookies.pop(web.SESSION_COOKIE)
    for first, second in [(ours, theirs), (theirs, ours), (ours, ours)]:
        header = f"{web.SESSION_COOKIE}={first}; {web.SESSION_COOKIE}={second}"
        assert signed_in_number(browser, header) is None
    # Nothing was ended: the real cookie alone still works.
    assert signed_in_number(browser, f"{web.SESSION_COOKIE}={ours}") == "1000000001"


def test_a_duplicated_binding_cookie_is_a_sign_in_error_never_a_sign_in(
    browser, other_browser, victim_account
):
    attacker = other_browser
    callback = attacker.authorize(attacker.start_signin(), [ATTACKER_EMAIL])
    name = web.signin_cookie(query_of(callback)["state"])
    theirs = attacker.cookies[name]
    for header in [f"{name}=x; {name}={theirs}", f"{name}={theirs}; {name}=x"]:
        assert_signin_refused(get_with(browser, callback, header), browser)
    # The victim's own sign-in with a planted duplicate of its name: refused too.
    own = browser.authorize(browser.start_signin(), [VICTIM_EMAIL])
    own_name = web.signin_cookie(query_of(own)["state"])
    value = browser.cookies.pop(own_name)
    page = get_with(browser, own, f"{own_name}=planted; {own_name}={value}")
    assert_signin_refused(page, browser)


# --- (e) sign-in cookies stay few -----------------------------------------------------------------


def test_many_logins_leave_at_most_three_signin_cookies_and_the_last_completes(
    browser, victim_account
):
    most = 0
    for _ in range(200):
        url = browser.start_signin()
        most = max(most, len(signin_cookie_names(browser)))
    assert most == 3 and len(signin_cookie_names(browser)) == 3
    assert len(jar(browser).encode()) < 1024
    page = browser.get(browser.authorize(url, [VICTIM_EMAIL]))
    assert page.status == 302 and page.location == "/account"
    assert signed_in_number(browser) == "1000000001"


def test_each_login_drops_the_oldest_signin_cookie_beyond_the_limit(
    browser, victim_account, monkeypatch
):
    """Oldest by the issue time the cookie carries, not by its place in the header; known
    without reading DynamoDB, and the new cookie still expires with its state."""
    from chalicelib.config import get_settings
    from localdev import aws_calls

    urls = [browser.start_signin() for _ in range(3)]
    names = [web.signin_cookie(query_of(u)["state"]) for u in urls]
    assert signin_cookie_names(browser) == names
    for name, issued in zip(names, [3000, 1000, 2000], strict=True):  # the second is the oldest
        binding = web.signin_cookie_binding(browser.cookies[name])
        browser.cookies[name] = web.signin_cookie_value(binding, issued)
    calls = aws_calls.watching(monkeypatch)
    resp = browser.client.http.get("/login", headers={"Cookie": jar(browser)})
    assert calls.operations() == ["PutItem"]  # the new state, as with no cookie at all
    calls.close()
    set_cookies = resp.headers["Set-Cookie"]
    assert [c.split("=", 1)[0] for c in set_cookies if "Max-Age=0" in c] == [names[1]]
    (new,) = [c for c in set_cookies if "Max-Age=0" not in c]
    assert f"Max-Age={get_settings().signin_state_ttl};" in new
    browser._store_cookies(resp.headers)
    fourth = resp.headers["Location"]
    assert len(signin_cookie_names(browser)) == 3
    callbacks = [browser.authorize(u, [VICTIM_EMAIL]) for u in [*urls, fourth]]
    assert_signin_refused(browser.get(callbacks[1]), browser)  # its cookie is gone
    for callback in [callbacks[0], callbacks[2], callbacks[3]]:
        assert browser.get(callback).status == 302
    assert signed_in_number(browser) == "1000000001"


@pytest.mark.parametrize("tabs", [2, 3])
def test_tabs_signing_in_at_once_all_complete(browser, victim_account, tabs):
    callbacks = [
        browser.authorize(browser.start_signin(return_to=f"/help?tab={i}"), [VICTIM_EMAIL])
        for i in range(tabs)
    ]
    for i, callback in enumerate(callbacks):
        page = browser.get(callback)
        assert page.status == 302, page
        assert page.location == ("/account" if i == 0 else f"/help?tab={i}")
    assert signin_cookie_names(browser) == []


# --- every Cookie header field is read (HTTP/2 sends one per cookie) -----------------------------


def proxy_event(path: str, cookie_fields: list[str]) -> dict:
    """An API Gateway REST proxy event: `headers` holds the last field of a repeated
    header, `multiValueHeaders` all of them."""
    headers = {"Host": "127.0.0.1:8000"}
    multi = {"Host": ["127.0.0.1:8000"]}
    if cookie_fields:
        headers["cookie"], multi["cookie"] = cookie_fields[-1], list(cookie_fields)
    return {
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": "GET",
            "path": path,
            "requestId": "cookies-test",
            "stage": "api",
        },
    }


class LambdaContext:
    aws_request_id = "cookies-test"
    function_name = "nrcme-signin-test"
    memory_limit_in_mb = 512

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def invoke_account(cookie_fields: list[str]) -> int:
    import app as app_module

    return app_module.app(proxy_event("/account", cookie_fields), LambdaContext())["statusCode"]


def test_every_cookie_header_field_is_read_and_duplicates_across_fields_count(
    browser, other_browser, victim_account
):
    assert browser.sign_in([VICTIM_EMAIL]).location == "/account"
    session = f"{web.SESSION_COOKIE}={browser.cookies[web.SESSION_COOKIE]}"
    assert invoke_account([session, "theme=dark"]) == 200
    assert invoke_account(["theme=dark", session]) == 200
    assert invoke_account([]) == 302
    # A second session cookie in another field is a duplicate like any other.
    other_browser.sign_in(["someone@example.org"])
    theirs = f"{web.SESSION_COOKIE}={other_browser.cookies[web.SESSION_COOKIE]}"
    assert invoke_account([session, theirs]) == 302


# --- the reader, unit by unit -------------------------------------------------------------------


def request_with(*cookie_fields: str, multi: bool = True):
    from chalice.app import Request

    event = {
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "requestContext": {"httpMethod": "GET", "resourcePath": "/"},
        "headers": {"cookie": cookie_fields[-1]} if cookie_fields else {},
    }
    if multi:
        event["multiValueHeaders"] = {"cookie": list(cookie_fields)} if cookie_fields else {}
    return Request(event)


@pytest.fixture
def https_names(monkeypatch, idp):
    from chalicelib.config import reset_settings

    monkeypatch.setenv("APP_BASE_URL", "https://signin.nrcme.example.gov")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


@pytest.mark.parametrize(
    "base", [web.SESSION_COOKIE, web.LOGOUT_COOKIE, web.SIGNIN_COOKIE + "_0123456789abcdef"]
)
def test_on_https_a_host_cookie_hidden_in_a_value_or_unprefixed_is_not_read(https_names, base):
    host_name = "__Host-" + base
    assert web.cookie_name(base) == host_name
    assert web.read_cookie(request_with(f"banner=1 {host_name}=X"), base) is None
    assert web.read_cookie(request_with(f'x="a {host_name}=X"'), base) is None
    assert web.read_cookie(request_with(f"{base}=X"), base) is None  # a sibling can set this
    assert web.read_cookie(request_with(f"{host_name}=X; {host_name}=Y"), base) is None
    assert web.read_cookie(request_with(f"{host_name}=X", f"{host_name}=Y"), base) is None
    assert web.read_cookie(request_with(f"banner=1; {host_name}=X"), base) == "X"
    assert web.read_cookie(request_with(f"{base}=Y;{host_name}=X"), base) == "X"


def test_the_reader_skips_malformed_pairs_and_keeps_odd_values_whole(aws, idp):
    header = (
        f'consent={CONSENT}; junk; =nameless; lang=café;{web.SESSION_COOKIE}=S=1 ; \tq="x y"; ;'
    )
    request = request_with(header)
    assert web.read_cookie(request, "consent") == CONSENT
    assert web.read_cookie(request, "lang") == "café"
    assert web.read_cookie(request, web.SESSION_COOKIE) == "S=1"
    assert web.read_cookie(request, "q") == '"x y"'
    assert web.read_cookie(request, "junk") is None
    assert web.read_cookie(request, "") is None
    assert web.read_cookie(request_with(f"{web.SESSION_COOKIE}="), web.SESSION_COOKIE) is None


def test_the_reader_joins_every_field_and_falls_back_to_the_single_header(aws, idp):
    session = web.SESSION_COOKIE
    assert web.read_cookie(request_with(f"{session}=S", "a=1"), session) == "S"
    assert web.read_cookie(request_with("a=1", f"{session}=S"), session) == "S"
    # Fields are joined with "; " (RFC 9113 §8.2.3): the end of one never runs into the next.
    assert web.read_cookie(request_with("a=1 ", f"{session}=S"), session) == "S"
    assert web.read_cookie(request_with("a=1", f"{session}=S", multi=False), session) == "S"
    assert web.read_cookie(request_with(multi=False), session) is None


# --- properties of the parser ---------------------------------------------------------------------

OURS = [web.SESSION_COOKIE, web.LOGOUT_COOKIE, web.SIGNIN_COOKIE + "_0123456789abcdef"]
WSP = " \t"

# Names as a browser may hold them: no ";" or "=", no surrounding space; ours often.
other_names = st.text(min_size=1, max_size=12).filter(
    lambda n: ";" not in n and "=" not in n and n == n.strip(WSP)
)
names = st.one_of(
    st.sampled_from(OURS), st.sampled_from(["__Host-" + n for n in OURS]), other_names
)
# Values never hold ";" (browsers cannot store one), but anything else, our names included.
hiding = [f"1 {n}=X" for n in OURS] + [f'"a {n}=X"' for n in OURS] + [CONSENT, "café", '"']
values = st.one_of(st.sampled_from(hiding), st.text(max_size=30).filter(lambda v: ";" not in v))
# A malformed piece: no "=" (for instance what follows a ";" inside a quoted value).
junk = st.text(max_size=10).filter(lambda j: ";" not in j and "=" not in j)
separators = st.sampled_from([";", "; ", ";  ", ";\t", " ; "])


@st.composite
def cookie_headers(draw):
    """(header text, the pairs it really holds): pairs and junk, joined by separators."""
    pieces = draw(st.lists(st.one_of(st.tuples(names, values), junk), max_size=8))
    text, pairs = "", []
    for i, piece in enumerate(pieces):
        if i:
            text += draw(separators)
        if isinstance(piece, tuple):
            text += f"{piece[0]}={piece[1]}"
            pairs.append((piece[0], piece[1].strip(WSP)))
        else:
            text += piece
    return text, pairs


PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(fields=st.lists(st.text(max_size=200), max_size=4), name=st.sampled_from(OURS))
@example(fields=[f'x="a; {web.SESSION_COOKIE}=b"'], name=web.SESSION_COOKIE)
@example(fields=[f"{OURS[2]}={'9' * 5000}.x", "nr_signin_0000000000000000=."], name=OURS[2])
def test_any_cookie_header_text_is_read_without_raising(aws, idp, fields, name):
    request = request_with(*fields)
    value = web.read_cookie(request, name)
    assert value is None or (isinstance(value, str) and ";" not in value)
    stale = web.stale_signin_cookies(request)
    assert all(re.fullmatch(r"nr_signin_[0-9a-f]{16}", n) for n in stale)


@PROPERTY
@given(header=cookie_headers())
@example(header=(f"banner=1 {web.SESSION_COOKIE}=X", [("banner", f"1 {web.SESSION_COOKIE}=X")]))
@example(header=(f'x="a; {web.SESSION_COOKIE}=b"', [("x", '"a'), (web.SESSION_COOKIE, 'b"')]))
@example(header=(f'x="a; b"; {web.SESSION_COOKIE}=S', [("x", '"a'), (web.SESSION_COOKIE, "S")]))
def test_our_cookie_is_read_only_where_its_name_begins_a_pair(aws, idp, header):
    """A value with spaces, quotes or our names inside (or "; " inside quotes, where the
    ";" ends the pair as in every browser) yields our name only where it begins a pair,
    and a name that begins two pairs is not read at all."""
    text, pairs = header
    request = request_with(text)
    for name in OURS:
        found = [value for pair_name, value in pairs if pair_name == name]
        expected = found[0] or None if len(found) == 1 else None
        assert web.read_cookie(request, name) == expected, (text, name)


# --- one reader ---------------------------------------------------------------------------------

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [
        *PROJECT.glob("*.py"),
        *(PROJECT / "chalicelib").rglob("*.py"),
        *(PROJECT / "localdev").rglob("*.py"),
        *(PROJECT / "supportdesk").rglob("*.py"),
    ]
)


def test_no_code_parses_cookies_with_the_standard_library_or_reads_the_header_itself():
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        modules = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {"http.cookies", "Cookie"} & modules, path
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not {"SimpleCookie", "BaseCookie"} & used, path
        if path.parent.name == "chalicelib" and path.name != "web.py":
            strings = {
                node.value.lower()
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
            }
            assert "cookie" not in strings, f"{path}: read cookies through web.read_cookie"
