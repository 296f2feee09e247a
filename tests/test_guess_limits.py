"""Cumulative caps on wrong one-time codes (chalicelib.guess_limits): per identity per day,
and per registry account per day for recovery, which then pauses and tells the owner."""

from __future__ import annotations

import pytest

from chalicelib.models import Account, Claim
from tests.support.accounts import make_account
from tests.support.browser import (
    Browser,
    csrf_of,
    enter_code,
    request_recovery,
    signed_in_unmatched,
)

PAUSED_NOTICE = "Linking by code is paused on your National Registry account"
VICTIM = "dr.alice@example.com"
ACCOUNT_CAP, IDENTITY_CAP, TRIES = 30, 10, 5


@pytest.fixture(autouse=True)
def caps(monkeypatch):
    """The defaults, named here so each test reads as numbers."""
    from chalicelib import config

    monkeypatch.setenv("RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY", str(ACCOUNT_CAP))
    monkeypatch.setenv("CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY", str(IDENTITY_CAP))
    monkeypatch.setenv("CODE_MAX_ATTEMPTS", str(TRIES))
    config.reset_settings()
    yield
    monkeypatch.undo()
    config.reset_settings()


def wrong_code_for(mailbox, address: str) -> str:
    code = mailbox.code_for(address)
    return f"{(int(code) + 1) % 1_000_000:06d}"


def sub_claims() -> list[Claim]:
    return [c for c in Claim.scan() if c.claim.startswith("sub#")]


def attacker(app_client, idp, n: int) -> Browser:
    b = Browser(app_client, idp)
    signed_in_unmatched(b, f"mallory{n}@example.net")
    return b


def guess_wrong(browser, times: int, code: str = "000000") -> list[int]:
    return [enter_code(browser, "/link/recover/verify", code).status for _ in range(times)]


def test_wrong_codes_from_many_identities_pause_recovery_and_tell_the_owner(
    app_client, idp, mailbox, logged
):
    make_account(primary=VICTIM, secondary="alice.home@example.org")
    cap, tries = ACCOUNT_CAP, TRIES
    # The owner asked for a code earlier and has not entered it yet.
    owner = attacker(app_client, idp, 99)
    request_recovery(owner, VICTIM)
    owners_code = mailbox.code_for(VICTIM)
    # Attackers, each with a Login.gov identity of their own, guess codes sent to the victim.
    wrong = 0
    n = 0
    while wrong < cap:
        n += 1
        mallory = attacker(app_client, idp, n)
        assert request_recovery(mallory, VICTIM).status == 302
        bad = wrong_code_for(mailbox, VICTIM)
        statuses = guess_wrong(mallory, min(tries, cap - wrong), bad)
        wrong += len(statuses)
    assert logged.names().count("recovery_guess_cap_reached") == 1
    assert len([r for r in logged.records if "RecoveryGuessCapReached" in r]) == 1
    assert mailbox.subjects(VICTIM)[-1] == PAUSED_NOTICE
    notices = [m for m in mailbox.messages if m.subject == PAUSED_NOTICE]
    assert [n.destinations["ToAddresses"] for n in notices] == [  # one each, on its own
        [VICTIM],
        ["alice.home@example.org"],
    ]
    # Verifying stops: even the owner's right code is refused today, answered as a wrong
    # code (as a decoy's would be); the page and the pause mail say why it may be.
    page = enter_code(owner, "/link/recover/verify", owners_code)
    assert page.status == 400 and "That code is not right" in page.body
    assert "linking by code is paused on your account, no code works" in page.body
    assert Account.get("1000000001").linked_sub is None and sub_claims() == []
    # Sending stops, and the answer is the one an unknown address gets: no mail goes out.
    mails = len(mailbox.messages)
    late = attacker(app_client, idp, 100)
    page = request_recovery(late, VICTIM)
    assert page.status == 302 and page.location == "/link/recover/verify"
    assert len(mailbox.messages) == mails
    assert "recovery_code_suppressed" in logged.names()
    assert guess_wrong(late, 1) == [400]  # a wrong-code page, as for any address
    assert sub_claims() == []


def test_one_identity_can_never_pause_an_account(app_client, idp, mailbox, monkeypatch):
    """The default caps: one identity's whole day of wrong codes (10) is a third of an
    account's (30), so pausing someone's recovery takes three Login.gov identities."""
    from chalicelib import config

    for name in (
        "RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY",
        "CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY",
        "CODE_MAX_ATTEMPTS",
    ):
        monkeypatch.delenv(name)
    config.reset_settings()
    make_account(primary=VICTIM)
    identities = []
    for n in (1, 2, 3):
        mallory = attacker(app_client, idp, n)
        identities.append(mallory)
        statuses = []
        while len(statuses) < 10:  # the identity's day, over as many sends
            assert request_recovery(mallory, VICTIM).status == 302
            statuses += guess_wrong(
                mallory, min(5, 10 - len(statuses)), wrong_code_for(mailbox, VICTIM)
            )
        # Its own day is over, on a fresh code too.
        assert request_recovery(mallory, VICTIM).status == 302
        page = enter_code(mallory, "/link/recover/verify", "000000")
        assert page.status == 429 and "for your Login.gov account" in page.body
        if n < 3:
            # The owner still gets a code, and it works.
            assert PAUSED_NOTICE not in mailbox.subjects(VICTIM)
    # The third identity's tenth wrong code was the account's thirtieth: paused.
    assert mailbox.subjects(VICTIM)[-1] == PAUSED_NOTICE


def test_the_owner_gets_a_code_after_one_identity_spent_its_day(
    app_client, idp, mailbox, monkeypatch
):
    from chalicelib import config

    for name in (
        "RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY",
        "CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY",
        "CODE_MAX_ATTEMPTS",
    ):
        monkeypatch.delenv(name)
    config.reset_settings()
    make_account(primary=VICTIM)
    mallory = attacker(app_client, idp, 1)
    for _ in range(2):  # 2 sends x 5 tries: the identity's day
        assert request_recovery(mallory, VICTIM).status == 302
        guess_wrong(mallory, 5, wrong_code_for(mailbox, VICTIM))
    owner = attacker(app_client, idp, 2)
    before = len(mailbox.to(VICTIM))
    assert request_recovery(owner, VICTIM).status == 302
    assert len(mailbox.to(VICTIM)) == before + 1  # a code reached the owner
    page = enter_code(owner, "/link/recover/verify", mailbox.code_for(VICTIM))
    assert page.status == 302 and page.location == "/account"
    assert Account.get("1000000001").linked_sub and PAUSED_NOTICE not in mailbox.subjects(VICTIM)


@pytest.mark.parametrize("account_cap", ["10", "9"])
def test_an_account_cap_one_identity_could_fill_is_a_configuration_error(monkeypatch, account_cap):
    from chalicelib import config

    monkeypatch.setenv("LOGIN_GOV_ISSUER", "http://127.0.0.1:8001/")
    monkeypatch.setenv("RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY", account_cap)
    config.reset_settings()
    with pytest.raises(config.ConfigurationError, match="RECOVERY_FAILED_GUESSES"):
        config.get_settings()


def test_a_right_code_is_not_a_failed_guess(app_client, idp, mailbox, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY", "2")
    monkeypatch.setenv("RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY", "3")
    config.reset_settings()
    make_account(primary=VICTIM)
    mallory = attacker(app_client, idp, 1)
    request_recovery(mallory, VICTIM)
    assert guess_wrong(mallory, 2, wrong_code_for(mailbox, VICTIM)) == [400, 400]
    owner = attacker(app_client, idp, 2)
    request_recovery(owner, VICTIM)
    assert enter_code(owner, "/link/recover/verify", mailbox.code_for(VICTIM)).status == 302
    assert PAUSED_NOTICE not in mailbox.subjects(VICTIM)
    assert Account.get("1000000001").linked_sub


def test_one_identity_has_a_daily_cap_on_wrong_codes(browser, mailbox):
    """Every send gives fresh tries; the identity's day does not."""
    cap, tries = IDENTITY_CAP, TRIES
    form = signed_in_unmatched(browser)
    wrong, n = 0, 0
    while wrong < cap:
        n += 1
        assert request_recovery(browser, f"nobody{n}@example.com", form).status == 302
        wrong += len(guess_wrong(browser, min(tries, cap - wrong)))
    assert request_recovery(browser, "nobody-else@example.com", form).status == 302
    page = enter_code(browser, "/link/recover/verify", "000000")
    assert page.status == 429
    assert "Too many wrong codes were entered in the last 24 hours for your Login.gov" in page.body


def test_the_identity_cap_counts_email_change_codes_too(browser, mailbox, monkeypatch):
    import uuid

    from chalicelib import config

    monkeypatch.setenv("CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY", "2")
    config.reset_settings()
    make_account(primary=VICTIM)
    assert browser.sign_in([VICTIM], sub=str(uuid.uuid4())).location == "/account"
    token = csrf_of(browser.get("/account/email"))
    browser.post(
        "/account/email",
        {"csrf_token": token, "change": "secondary", "email": "alice.home@example.org"},
    )
    statuses = [enter_code(browser, "/account/email/confirm", "000000").status for _ in range(3)]
    assert statuses == [400, 400, 429]
    right = enter_code(
        browser, "/account/email/confirm", mailbox.code_for("alice.home@example.org")
    )
    assert right.status == 429 and Account.get("1000000001").secondary_email is None


# --- a pause tells a stranger nothing ------------------------------------------------------------


def spend_days_on(app_client, idp, mailbox, address: str, tag: str, identities: int = 3):
    """`identities` Login.gov identities each spend their day of wrong codes on `address`."""
    for n in range(identities):
        burner = attacker(app_client, idp, f"{tag}{n}")
        wrong = 0
        while wrong < IDENTITY_CAP:
            assert request_recovery(burner, address).status == 302
            bad = wrong_code_for(mailbox, address) if address == VICTIM else "000000"
            wrong += len(guess_wrong(burner, min(TRIES, IDENTITY_CAP - wrong), bad))


def comparable(page, typed: str) -> tuple:
    import re

    body = page.body.replace(typed, "ADDRESS")
    body = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', body)
    body = re.sub(r'class="reference">[^<]*<', 'class="reference"><', body)
    # Each probe signs in with its own Login.gov email, which the code page names.
    body = re.sub(r"mallory[^@<]*@example\.net", "LOGIN_GOV_EMAIL", body)
    headers = {k.lower(): v for k, v in page.headers.items()}
    return page.status, headers, body


def test_a_paused_account_answers_guesses_as_an_unknown_address_does(app_client, idp, mailbox):
    """Pausing an account must not tell whether an address is a registry address: a guess
    on a code sent before the pause, even the right one, is answered as on a decoy."""
    make_account(primary=VICTIM)
    answers = {}
    for name, target in (("known", VICTIM), ("unknown", "nobody@example.com")):
        probe = attacker(app_client, idp, f"probe-{name}")
        assert request_recovery(probe, target).status == 302  # a code before the pause
        first = mailbox.code_for(VICTIM) if name == "known" else "123456"  # the right code
        spend_days_on(app_client, idp, mailbox, target, f"burner-{name}")
        pages = [
            enter_code(probe, "/link/recover/verify", code)
            for code in (first, "000000", "000001", "000002", "000003")
        ]
        answers[name] = [comparable(page, target) for page in pages]
    assert mailbox.subjects(VICTIM)[-1] == PAUSED_NOTICE
    assert [a[0] for a in answers["known"]] == [400, 400, 400, 400, 429]
    assert "That code is not right. You have 4 tries left." in answers["known"][0][2]
    for known, unknown in zip(answers["known"], answers["unknown"], strict=False):
        assert known == unknown
    assert Account.get("1000000001").linked_sub is None and sub_claims() == []


# --- a sliding 24 hours: no second allowance at midnight, a pause lasts 24 hours ----------------


def day_and_time(day: int, hour: int, minute: int = 0, second: float = 0.0):
    from datetime import UTC, datetime

    whole = int(second)
    return datetime(2026, 6, day, hour, minute, whole, round((second - whole) * 1e6), tzinfo=UTC)


@pytest.fixture
def small_caps(monkeypatch):
    """2 wrong codes per identity, 3 per account: two identities pause an account."""
    from chalicelib import config

    monkeypatch.setenv("CODE_FAILED_GUESSES_PER_IDENTITY_PER_DAY", "2")
    monkeypatch.setenv("RECOVERY_FAILED_GUESSES_PER_ACCOUNT_PER_DAY", "3")
    config.reset_settings()


def pause_victim(app_client, idp, mailbox, tag: str, wrong_codes=(2, 1)) -> None:
    """Identities of their own enter these many wrong codes each on codes sent to VICTIM."""
    for n, wrong in enumerate(wrong_codes):
        burner = attacker(app_client, idp, f"{tag}{n}")
        assert request_recovery(burner, VICTIM).status == 302
        assert guess_wrong(burner, wrong, wrong_code_for(mailbox, VICTIM)) == [400] * wrong


def test_an_identity_gets_no_second_day_of_wrong_codes_at_midnight(
    app_client, idp, small_caps, clock
):
    """Its wrong codes count for 24 hours, not until the UTC day ends."""
    clock.set(day_and_time(9, 23, 59, 59.9))
    browser = attacker(app_client, idp, 1)
    assert request_recovery(browser, "nobody1@example.com").status == 302
    assert guess_wrong(browser, 2) == [400, 400]
    clock.set(day_and_time(10, 0, 0, 0.1))
    assert request_recovery(browser, "nobody2@example.com").status == 302
    assert enter_code(browser, "/link/recover/verify", "000000").status == 429
    # A whole 24 hours later (a new sign-in: the session ended meanwhile), they count no more.
    clock.set(day_and_time(10, 23, 59, 59.8))
    browser = attacker(app_client, idp, 1)
    assert request_recovery(browser, "nobody3@example.com").status == 302
    assert enter_code(browser, "/link/recover/verify", "000000").status == 429
    clock.set(day_and_time(11, 0, 0, 0.0))
    assert guess_wrong(browser, 1) == [400]


def test_a_pause_lasts_24_hours_across_midnight(app_client, idp, mailbox, small_caps, clock):
    """A pause just before midnight UTC once ended at midnight; now it lasts 24 hours."""
    make_account(primary=VICTIM)
    clock.set(day_and_time(9, 23, 50))
    pause_victim(app_client, idp, mailbox, "burner")
    assert mailbox.subjects(VICTIM)[-1] == PAUSED_NOTICE
    for when in (day_and_time(10, 0, 10), day_and_time(10, 23, 49)):
        clock.set(when)
        mails = len(mailbox.messages)
        owner = attacker(app_client, idp, f"owner-{when.hour}")
        assert request_recovery(owner, VICTIM).status == 302
        assert len(mailbox.messages) == mails  # a decoy: no code goes out
    clock.set(day_and_time(10, 23, 51))
    owner = attacker(app_client, idp, "owner-after")
    assert request_recovery(owner, VICTIM).status == 302
    page = enter_code(owner, "/link/recover/verify", mailbox.code_for(VICTIM))
    assert page.status == 302 and page.location == "/account"
    assert Account.get("1000000001").linked_sub
    (notice,) = [m for m in mailbox.messages if m.subject == PAUSED_NOTICE]
    assert "paused on your account for 24 hours from this email" in notice.body


def test_no_code_verifies_while_paused_even_once_the_guesses_have_aged(
    app_client, idp, mailbox, small_caps, clock
):
    """The pause is the account's for 24 hours, whatever its sliding count says by then: a
    code sent just before the pause stays refused, even the right one."""
    make_account(primary=VICTIM)
    clock.set(day_and_time(9, 12, 0))
    # One identity spends its wrong codes early; the owner asks for a code much later,
    # just before another identity's wrong code fills the cap.
    pause_victim(app_client, idp, mailbox, "early", wrong_codes=(2,))
    clock.set(day_and_time(10, 11, 55))
    owner = attacker(app_client, idp, "owner")
    assert request_recovery(owner, VICTIM).status == 302
    owners_code = mailbox.code_for(VICTIM)
    pause_victim(app_client, idp, mailbox, "late", wrong_codes=(1,))
    assert mailbox.subjects(VICTIM)[-1] == PAUSED_NOTICE
    # At 12:01 the early wrong codes are 24 hours old: the count alone would let codes
    # through again; the pause does not.
    clock.set(day_and_time(10, 12, 1))
    page = enter_code(owner, "/link/recover/verify", owners_code)
    assert page.status == 400 and "That code is not right" in page.body
    assert Account.get("1000000001").linked_sub is None and sub_claims() == []
