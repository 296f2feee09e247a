"""The local mailbox: a page listing the mail the app sent through moto's SES.

Local stage only, never deployed (it lives outside chalicelib/). `make run` serves it on
http://127.0.0.1:8025/ so a person can read one-time codes and notices. It reads moto's
in-process SES backend directly (localdev/run.py runs moto's ThreadedMotoServer in the same
process), newest first, every value escaped.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass
from html.parser import HTMLParser

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class SentMail:
    message_id: str
    source: str
    to: list[str]
    subject: str
    body: str  # what SES kept: the HTML body when there was one, else the text


def sent_mail() -> list[SentMail]:
    """Every message moto's SES (v1 and v2 share a backend) accepted, oldest first."""
    from moto.ses.models import ses_backends

    found = []
    for _account, _region, backend in ses_backends.iter_backends():
        for message in list(getattr(backend, "sent_messages", [])):
            destinations = getattr(message, "destinations", {}) or {}
            if isinstance(destinations, dict):
                to = [
                    a
                    for key in ("ToAddresses", "CcAddresses", "BccAddresses")
                    for a in destinations.get(key, [])
                ]
            else:
                to = list(destinations)
            found.append(
                SentMail(
                    message_id=getattr(message, "id", ""),
                    source=getattr(message, "source", ""),
                    to=to,
                    subject=getattr(message, "subject", "") or "",
                    body=getattr(message, "body", None) or getattr(message, "raw_data", "") or "",
                )
            )
    return found


class _Text(HTMLParser):
    """An HTML body as readable text (scripts and styles dropped)."""

    _SKIP = frozenset({"script", "style", "title", "head"})
    _BREAK = frozenset({"p", "br", "div", "h1", "h2", "h3", "li", "tr", "hr"})

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0
        self._hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":  # the address a link leads to, shown after its words, as a mail app does
            self._hrefs.append(dict(attrs).get("href") or "")
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "a" and self._hrefs:
            href = self._hrefs.pop()
            if href.startswith(("http://", "https://")) and not self._skipping:
                self.parts.append(f" ({href})")
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def as_text(body: str) -> str:
    if "<" not in body:
        return body.strip()
    parser = _Text()
    parser.feed(body)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    return re.sub(r" \((https?://\S+)\) \(\1\)", r" (\1)", text)  # the mail wrote it too


def render_page(messages: list[SentMail]) -> str:
    items = []
    for mail in reversed(messages):  # newest first
        items.append(
            "<article>"
            f"<h2>{html.escape(mail.subject)}</h2>"
            f'<p class="meta">To: {html.escape(", ".join(mail.to))}'
            f" · From: {html.escape(mail.source)}</p>"
            f"<pre>{html.escape(as_text(mail.body))}</pre>"
            "</article>"
        )
    body = "".join(items) or "<p>No mail yet. Ask the app for a code, then reload.</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="10">'
        "<title>Local mailbox | National Registry sign-in (local)</title>"
        "<style>body{font-family:Arial,sans-serif;max-width:48rem;margin:1rem auto;"
        "padding:0 1rem;color:#1b1b1b}article{border:1px solid #dfe1e2;padding:0.5rem 1rem;"
        "margin:1rem 0}pre{white-space:pre-wrap;font-size:1rem}.meta{color:#565c65}</style>"
        "</head><body><main><h1>Local mailbox</h1>"
        f"<p>{len(messages)} message(s) sent through the local SES (moto), newest first. "
        "Local stage only: nothing here is real mail.</p>"
        f"{body}</main></body></html>"
    )


def _application(environ, start_response):
    request = Request(environ)
    if request.method != "GET" or request.path not in ("/", "/index.html"):
        response = Response("not found", status=404, content_type="text/plain")
    else:
        response = Response(
            render_page(sent_mail()),
            content_type="text/html; charset=utf-8",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )
    return response(environ, start_response)


def serve_mailbox(host: str = "127.0.0.1", port: int = 8025):
    """Serve the mailbox page in a daemon thread; the returned server has .shutdown()."""
    server = make_server(host, port, _application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
