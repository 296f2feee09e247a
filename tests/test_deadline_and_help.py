"""The migration's deadline on the landing page and /help (CAMPAIGN_DEADLINE; none when
empty), and /help's pictures of each step of linking (taken by tests/e2e/test_help_pictures.py,
shown as data: URLs, which the site's CSP allows)."""

from __future__ import annotations

import re
import struct

import pytest

from chalicelib import config, help_pictures
from chalicelib.config import ConfigurationError
from tests.support.accounts import make_account


@pytest.fixture
def deadline(monkeypatch):
    def set_to(value: str) -> None:
        monkeypatch.setenv("CAMPAIGN_DEADLINE", value)
        config.reset_settings()

    yield set_to
    monkeypatch.delenv("CAMPAIGN_DEADLINE", raising=False)
    config.reset_settings()


def test_the_landing_page_and_help_say_link_by_the_deadline(browser, deadline):
    deadline("2027-03-01")
    landing = browser.get("/").body
    assert "Link your registry account to Login.gov by March 1, 2027." in landing
    assert "Link your account by March 1, 2027." in browser.get("/help").body


def test_without_a_deadline_neither_page_names_one(browser, deadline):
    deadline("")
    assert "Link your registry account to Login.gov by" not in browser.get("/").body
    assert "Link your account by" not in browser.get("/help").body


def test_a_signed_in_person_not_yet_linked_sees_the_deadline_and_a_linked_one_does_not(
    browser, other_browser, deadline
):
    deadline("2027-03-01")
    browser.sign_in(["stranger@example.net"])
    assert "Link your account by March 1, 2027." in browser.get("/").body
    make_account(primary="dr.alice@example.com")
    other_browser.follow(other_browser.sign_in(["dr.alice@example.com"]))
    assert "March 1, 2027" not in other_browser.get("/").body


def test_a_deadline_that_is_not_a_date_is_refused_at_start(deadline):
    deadline("1 March 2027")
    with pytest.raises(ConfigurationError, match="CAMPAIGN_DEADLINE"):
        config.get_settings()


def test_help_shows_a_picture_of_each_step_from_the_files_the_browser_test_took(browser):
    body = browser.get("/help").body
    section = body.split('id="create-account"', 1)[1].split("</section>", 1)[0]
    shown = re.findall(
        r'<img class="step-picture" src="data:image/png;base64,([^"]+)" alt="([^"]+)"', section
    )
    assert [alt for _, alt in shown] == [a.replace("“", "“") for a in help_pictures.STEPS.values()]
    for name in help_pictures.STEPS:
        data = (help_pictures.PICTURES / f"{name}.png").read_bytes()
        width, _ = struct.unpack(">II", data[16:24])
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and width <= 1280 and len(data) < 150_000, name


def test_a_missing_picture_leaves_the_step_in_words(browser, monkeypatch, tmp_path):
    monkeypatch.setattr(help_pictures, "PICTURES", tmp_path)
    help_pictures.pictures.cache_clear()
    try:
        body = browser.get("/help").body
    finally:
        help_pictures.pictures.cache_clear()
    assert "<img" not in body and "choose <strong>Sign in with Login.gov</strong>" in body
