"""Which paths a web ACL's rules match (infra/waf.yaml, infra/console_waf.yaml).

Path matching is evaluated here the way WAF does it: URL-decode the URI path, then the
rule's regular expression (a partial match, as RE2 in WAF; these patterns mean the same in
Python's `re`).
"""

from __future__ import annotations

import re
from urllib.parse import unquote


def as_seen(path: str) -> list[str]:
    """The URI paths WAF sees for one route: on the custom domain, on the default
    execute-api URL (stage prefix), with a trailing slash, and percent-encoded."""
    encoded = path[:-1] + f"%{ord(path[-1]):02X}"
    return [path, f"/prod{path}", f"/dev{path}", path + "/", encoded]


def matches(statement: dict | None, path: str) -> bool:
    """Whether a scope-down statement matches a request for `path` (None: every request)."""
    if statement is None:
        return True
    if "NotStatement" in statement:
        return not matches(statement["NotStatement"]["Statement"], path)
    if "OrStatement" in statement:
        return any(matches(s, path) for s in statement["OrStatement"]["Statements"])
    regex = statement["RegexMatchStatement"]
    assert regex["FieldToMatch"] == {"UriPath": {}}
    value = path
    for transformation in sorted(regex["TextTransformations"], key=lambda t: t["Priority"]):
        assert transformation["Type"] == "URL_DECODE", "teach matches() this transformation"
        value = unquote(value)
    return re.search(regex["RegexString"], value) is not None
