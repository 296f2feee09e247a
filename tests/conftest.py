"""The tests' support is one plugin, tests/support/: each fixture is defined once there and
registered here; a test module asks for fixtures by name and imports only plain helpers
(from tests.support), never a fixture and never another test module."""

from __future__ import annotations

import pytest

# Failures inside the support's helpers explain themselves as a test's own asserts do.
pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "tests.support.aws",
    "tests.support.recorder",
    "tests.support.service",
    "tests.support.browser",
    "tests.support.mail",
    "tests.support.logs",
    "tests.support.desk",
    "tests.support.console",
    "tests.support.clock",
]
