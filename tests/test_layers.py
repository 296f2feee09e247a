"""The layers of chalicelib (docs/architecture.md): routes, edge, workflows, rules, store.
Three leaks once crossed them; these keep them closed, read from the modules' imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHALICELIB = Path(__file__).resolve().parent.parent / "chalicelib"


def imported(module: str) -> set[str]:
    """Every chalicelib module a module imports, at its top or inside a function."""
    tree = ast.parse((CHALICELIB / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "chalicelib":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("chalicelib."):
                found.add(node.module.removeprefix("chalicelib."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("chalicelib.")
                for a in node.names
                if a.name.startswith("chalicelib.")
            )
    return found


@pytest.mark.parametrize(
    ("module", "must_not_import"),
    [
        # The edge sits below the workflows: a workflow's page context lives with it.
        ("edge", {"email_change", "recovery", "signin", "linking"}),
        # A rule returns what happened; the workflow queues the mail.
        ("guess_limits", {"notices", "outbox", "mail"}),
        ("onetime_codes", {"notices", "outbox", "mail"}),
        ("send_limits", {"notices", "outbox", "mail"}),
        # Mail renders its own templates: it reads nothing of the pages.
        ("mail", {"pages", "edge"}),
    ],
)
def test_no_layer_reaches_across(module, must_not_import):
    assert not imported(module) & must_not_import
