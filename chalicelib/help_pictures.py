"""What /help and the landing page show about the migration: the deadline, and the
pictures of each step of linking.

The pictures are screenshots that a browser test takes of the real pages
(tests/e2e/test_help_pictures.py writes chalicelib/static/help/*.png), so they change when
the pages do. They go into the page as data: URLs: the CSP allows `img-src 'self' data:`,
every answer is `Cache-Control: no-store` anyway (edge.SECURITY_HEADERS), and a binary
route would need API Gateway binary media types matched on the browser's first Accept type.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from chalicelib.config import get_settings

PICTURES = Path(__file__).parent / "static" / "help"

# name -> what the picture shows (its alt text); the order of the steps on /help.
STEPS = {
    "1-sign-in": "The National Registry sign-in page with its “Sign in with Login.gov” button",
    "2-linked": "Your account page saying your National Registry account is now linked",
    "3-no-match": "The page that says we could not find a registry account for your email",
    "4-recover": "The form where you type your registry email address to get a code",
    "5-code": "The page where you type the code we sent to your registry email",
}


@dataclass(frozen=True)
class Picture:
    name: str
    alt: str
    src: str  # a data: URL, or "" when the picture is missing (the step's text stands)


def deadline_text(deadline: date | None = None) -> str | None:
    """The campaign's deadline in words ("March 1, 2027"), or None when there is none."""
    deadline = deadline or get_settings().campaign_deadline
    if deadline is None:
        return None
    return f"{deadline:%B} {deadline.day}, {deadline.year}"


@functools.lru_cache(maxsize=1)
def pictures() -> dict[str, Picture]:
    """Read once per container (the files ship in the zip, they never change there)."""
    found = {}
    for name, alt in STEPS.items():
        path = PICTURES / f"{name}.png"
        src = (
            "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
            if path.exists()
            else ""
        )
        found[name] = Picture(name, alt, src)
    return found
