"""Read the forms of an HTML page (field names and values): for tests and the benchmark."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "fields": {}})
        elif tag in ("input", "textarea") and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")


def parse_forms(html: str) -> list[dict]:
    """[{"action": ..., "fields": {name: value}}] for each <form> in the page."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms
