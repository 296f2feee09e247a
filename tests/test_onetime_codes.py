"""One-time codes: made, stored, checked, limited and counted (chalicelib.onetime_codes)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from chalicelib import onetime_codes
from chalicelib.errors import (
    CodeExpired,
    CodeMalformed,
    NoPendingCode,
    TooManyAttempts,
    WrongCode,
)
from chalicelib.models import Challenge
from chalicelib.onetime_codes import Binding, Purpose


def binding(purpose=Purpose.RECOVERY, subject="sub-a", session="session-a") -> Binding:
    return Binding(purpose, subject, session)


def issue(b: Binding, email="dr.alice@example.com", nr_number="1000000001") -> str:
    return onetime_codes.create_challenge(
        b, nr_number=nr_number, target_email=email, target_normalized=email
    )


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.fixture
def logs():
    """Every log line the app writes during the test."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Keep()
    logger = logging.getLogger("nrcme")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_a_code_is_six_digits_and_stored_only_as_a_salted_keyed_hash(app_client, logs):
    first, second = binding(session="s1"), binding(session="s2")
    code = issue(first)
    issue(second)
    assert len(code) == 6 and code.isdigit()
    one, two = Challenge.get(first.challenge_id), Challenge.get(second.challenge_id)
    assert code not in str(one.attribute_values)
    assert len(one.code_hash) == 64 and one.code_salt and one.code_salt != two.code_salt
    assert one.expires_at - one.created_at == 600  # CODE_TTL_SECONDS default
    assert one.subject == "sub-a" and one.session_hash == "s1" and one.purpose == "recovery"
    with pytest.raises(WrongCode):
        onetime_codes.verify(first, wrong(code))
    onetime_codes.verify(first, code)
    assert not any(code in line for line in logs)  # never logged, right or wrong


def test_the_right_code_verifies_and_is_single_use(app_client):
    b = binding()
    code = issue(b)
    challenge = onetime_codes.verify(b, f" {code[:3]} {code[3:]} ")  # spaces are forgiven
    assert challenge.nr_number == "1000000001" and challenge.attempts == 1
    onetime_codes.consume(challenge)
    with pytest.raises(NoPendingCode):
        onetime_codes.verify(b, code)
    with pytest.raises(NoPendingCode):
        onetime_codes.consume(challenge)  # a second use loses the delete


def test_a_verified_code_cannot_use_up_a_newer_challenge(app_client):
    b = binding()
    verified = onetime_codes.verify(b, issue(b))
    newer = issue(b)  # a resend before the first was used
    with pytest.raises(NoPendingCode):
        onetime_codes.consume(verified)
    assert onetime_codes.verify(b, newer)


@pytest.mark.parametrize(
    "typed", ["12345a", "12345", "1234567", "", "one two", "12.34.56", "١٢٣٤٥٦"]
)
def test_text_that_cannot_be_a_code_is_refused_without_using_a_try(app_client, typed):
    b = binding()
    code = issue(b)
    with pytest.raises(CodeMalformed) as refused:
        onetime_codes.verify(b, typed)
    assert refused.value.context == {"purpose": "recovery", "target_email": "dr.alice@example.com"}
    assert Challenge.get(b.challenge_id).attempts == 0
    assert onetime_codes.verify(b, code).nr_number == "1000000001"


@pytest.mark.parametrize(
    "spaced", ["{a} {b}", "{a}-{b}", " {a}\u00a0{b} ", "{a}\u2013{b}", "{a}\t{b}\n"]
)
def test_spaces_and_dashes_inside_a_code_are_forgiven(app_client, spaced):
    b = binding()
    code = issue(b)
    assert onetime_codes.verify(b, spaced.format(a=code[:3], b=code[3:])).nr_number == "1000000001"
    assert Challenge.get(b.challenge_id).attempts == 1


def test_full_width_digits_are_read_as_digits(app_client):
    b = binding()
    code = issue(b)
    full_width = "".join(chr(ord("０") + int(d)) for d in code)
    assert onetime_codes.verify(b, full_width).nr_number == "1000000001"


def test_a_malformed_code_without_a_live_challenge_says_why(app_client):
    with pytest.raises(NoPendingCode):
        onetime_codes.verify(binding(), "abc")


def test_five_wrong_codes_kill_the_code_even_for_the_right_one(app_client):
    b = binding()
    code = issue(b)
    remaining = []
    for _ in range(4):
        with pytest.raises(WrongCode) as refused:
            onetime_codes.verify(b, wrong(code))
        remaining.append(refused.value.context["remaining"])
    assert remaining == [4, 3, 2, 1]
    with pytest.raises(TooManyAttempts):
        onetime_codes.verify(b, wrong(code))  # the fifth wrong try
    with pytest.raises(TooManyAttempts):
        onetime_codes.verify(b, code)
    assert Challenge.get(b.challenge_id).attempts == 5  # the refused right code was not counted
    assert onetime_codes.pending(b) is None


def test_parallel_guesses_cannot_exceed_the_attempt_limit(app_client):
    b = binding()
    code = issue(b)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def guess():
        barrier.wait()
        try:
            onetime_codes.verify(b, wrong(code))
        except (WrongCode, TooManyAttempts) as error:
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert Challenge.get(b.challenge_id).attempts == 5  # never past the limit
    assert len(outcomes) == 20
    # DynamoDB answers each try with its own count: exactly 4 "tries left" answers. moto
    # serializes the writes but renders ALL_NEW after its lock, so under load one try can
    # report a later count: never more than 4 "tries left", though.
    assert 1 <= outcomes.count("WrongCode") <= 4
    with pytest.raises(TooManyAttempts):
        onetime_codes.verify(b, code)


def test_an_expired_code_is_refused(app_client, clock):
    b = binding()
    code = issue(b)
    clock.advance(601)
    with pytest.raises(CodeExpired):
        onetime_codes.verify(b, code)
    assert onetime_codes.pending(b) is None


@pytest.mark.parametrize(
    "other",
    [
        binding(purpose=Purpose.EMAIL_CHANGE),  # same session, another purpose
        binding(session="session-b"),  # same identity, another browser
        binding(subject="sub-b", session="session-b"),  # someone else
    ],
)
def test_a_code_works_only_for_its_purpose_and_session(app_client, other):
    b = binding()
    code = issue(b)
    with pytest.raises(NoPendingCode):
        onetime_codes.verify(other, code)
    assert Challenge.get(b.challenge_id).attempts == 0  # the probe cost the owner nothing
    assert onetime_codes.verify(b, code).nr_number == "1000000001"


def test_a_challenge_keyed_to_this_session_but_bound_elsewhere_is_refused(app_client):
    """Defence in depth: the stored binding is checked, not only the key."""
    b = binding()
    code = issue(b)
    Challenge.get(b.challenge_id).update(actions=[Challenge.subject.set("sub-z")])
    with pytest.raises(NoPendingCode):
        onetime_codes.verify(b, code)


def test_a_new_send_replaces_the_earlier_code(app_client):
    b = binding()
    first = issue(b)
    second = issue(b)
    while second == first:  # one chance in a million
        second = issue(b)
    with pytest.raises(WrongCode):
        onetime_codes.verify(b, first)
    onetime_codes.verify(b, second)


def test_a_decoy_has_no_code_no_account_and_never_verifies(app_client):
    b = binding()
    assert (
        onetime_codes.create_challenge(
            b,
            nr_number="1000000001",
            target_email="x@example.com",
            target_normalized="x@example.com",
            decoy=True,
        )
        is None
    )
    stored = Challenge.get(b.challenge_id)
    assert stored.nr_number is None and stored.expires_at > time.time()
    for guess in ("000000", "123456", "999999"):
        with pytest.raises(WrongCode):
            onetime_codes.verify(b, guess)
    with pytest.raises(CodeMalformed):  # like a real challenge: a typo is no try
        onetime_codes.verify(b, "")


def test_discard_removes_only_this_sessions_challenge(app_client):
    mine, theirs = binding(), binding(subject="sub-b", session="session-b")
    issue(mine)
    code = issue(theirs)
    assert onetime_codes.discard(mine) is True
    assert onetime_codes.discard(mine) is False
    assert onetime_codes.verify(theirs, code)


def test_new_binding_for_each_purpose_and_session_is_a_different_key():
    keys = {binding(p, "s", h).challenge_id for p in Purpose for h in ("h1", "h2")}
    assert len(keys) == 4 and all(k.startswith("challenge#") for k in keys)
    assert binding().challenge_id == binding().challenge_id
