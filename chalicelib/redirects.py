"""Where a browser may be sent after sign-in: same-site paths only (open-redirect defence)."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

DEFAULT_RETURN_PATH = "/account"
MAX_RETURN_PATH_LENGTH = 512
# A plain absolute path: one leading slash, then printable ASCII with no backslash.
_SAFE_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]*")  # used with fullmatch: `$` allows "\n"


def safe_return_path(raw: str | None) -> str | None:
    """Return `raw` if it is a same-site relative path, else None.

    Rejects scheme-relative (`//host`), backslash tricks (`/\\host`, which browsers read as
    `//host`), absolute URLs, control characters (tab and newline are stripped by browsers,
    turning `/\\t/host` into `//host`), and any of those hidden behind percent-encoding.
    """
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_RETURN_PATH_LENGTH or not _SAFE_PATH.fullmatch(raw):
        return None
    decoded = raw
    for _ in range(3):  # look through double encoding too
        decoded = unquote(decoded)
        if not _SAFE_PATH.fullmatch(decoded.split("?", 1)[0].split("#", 1)[0] or "/"):
            return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return None
    return raw
