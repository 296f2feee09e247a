"""`chalice local` with API Gateway's greedy path variables: what `make run` serves.

API Gateway matches a `{name+}` path variable against the rest of the path, however many
segments it has, whenever no more specific route matches; chalice local matches it
against one segment only and answers everything else with its own 403
`{"message": "Missing Authentication Token"}`. The app's not-found route is `/{proxy+}`
(chalicelib/routes/help_routes.py), so without this shim `/foo` is the site's 404 page
locally but `/foo/bar` is JSON. Local only, never deployed (it lives in localdev/).

    python -m localdev.chalice_local local --no-autoreload --stage local ...

takes exactly the arguments of the `chalice` command.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import parse_qs, urlparse

from chalice import local

_GREEDY = re.compile(r"^\{(\w+)\+\}$")


class GreedyRouteMatcher(local.RouteMatcher):
    """chalice local's matcher, then API Gateway's `{name+}` for paths it cannot match."""

    def __init__(self, route_urls: list[str]) -> None:
        self.greedy_routes = sorted(
            (r for r in route_urls if _GREEDY.match(r.rsplit("/", 1)[-1])),
            key=lambda r: -r.count("/"),
        )  # deeper prefixes are more specific
        super().__init__([r for r in route_urls if r not in self.greedy_routes])

    def match_route(self, url: str) -> local.MatchResult:
        try:
            return super().match_route(url)
        except ValueError:
            pass
        parsed = urlparse(url)
        path = parsed.path
        if path != "/" and path.endswith("/"):
            path = path[:-1]  # as API Gateway and chalice local do
        parts = path.split("/")
        for route in self.greedy_routes:
            route_parts = route.split("/")
            prefix, last = route_parts[:-1], route_parts[-1]
            if len(parts) <= len(prefix):
                continue  # the greedy variable needs at least one segment
            captured = {}
            # parts is longer than prefix: its tail is the greedy variable's, read below
            for segment, pattern in zip(parts, prefix, strict=False):
                if pattern.startswith("{") and pattern.endswith("}"):
                    captured[pattern[1:-1]] = segment
                elif segment != pattern:
                    break
            else:
                captured[_GREEDY.match(last).group(1)] = "/".join(parts[len(prefix) :])
                return local.MatchResult(
                    route, captured, parse_qs(parsed.query, keep_blank_values=True)
                )
        raise ValueError(f"No matching route found for: {url}")


def install() -> None:
    """Make every LocalGateway created from now on match like API Gateway."""
    local.RouteMatcher = GreedyRouteMatcher


def main() -> int:
    from chalice.cli import main as chalice_main

    install()
    sys.argv[0] = "chalice"
    return chalice_main()


if __name__ == "__main__":
    sys.exit(main())
