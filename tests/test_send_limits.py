"""Send limits for one-time codes (chalicelib.send_limits): per identity, per (identity,
address), and a larger cap per address."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from chalicelib import send_limits
from chalicelib.config import get_settings
from chalicelib.errors import SendLimitReached
from chalicelib.models import Flow, WindowCounter
from tests.support.accounts import make_account
from tests.support.browser import Browser, request_recovery, signed_in_unmatched


def test_the_default_limits_let_one_identity_use_only_part_of_an_address_allowance(app_client):
    settings = get_settings()
    assert (
        settings.code_sends_per_identity_address_per_hour < settings.code_sends_per_address_per_hour
    )
    assert settings.code_sends_per_identity_address_per_hour <= settings.code_sends_per_hour


def test_sends_are_limited_per_identity(app_client):
    limit = get_settings().code_sends_per_hour
    for i in range(limit):
        send_limits.reserve_send("sub-a", f"a{i}@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-a", "a99@example.com")
    send_limits.reserve_send("sub-b", "a99@example.com")  # another identity is not limited


def test_sends_are_limited_per_identity_and_address(app_client):
    limit = get_settings().code_sends_per_identity_address_per_hour
    for _ in range(limit):
        send_limits.reserve_send("sub-a", "victim@example.com")
    with pytest.raises(SendLimitReached) as refused:
        send_limits.reserve_send("sub-a", "victim@example.com")
    assert refused.value.context["limit"] == "identity_address"
    send_limits.reserve_send("sub-a", "another@example.com")  # the identity has sends left
    send_limits.reserve_send("sub-b", "victim@example.com")  # the address has sends left


def test_an_address_has_a_larger_cap_for_everyone_and_a_refusal_costs_nothing(app_client):
    settings = get_settings()
    per_pair, cap = (
        settings.code_sends_per_identity_address_per_hour,
        settings.code_sends_per_address_per_hour,
    )
    for i in range(cap):
        send_limits.reserve_send(f"sub-{i // per_pair}", "victim@example.com")
    with pytest.raises(SendLimitReached) as refused:
        send_limits.reserve_send("sub-x", "victim@example.com")
    assert refused.value.context["limit"] == "address"
    for i in range(settings.code_sends_per_hour):  # sub-x still has its whole allowance
        send_limits.reserve_send("sub-x", f"other{i}@example.com")


def test_one_identity_cannot_lock_an_owner_out_of_codes(app_client, idp, mailbox):
    """An attacker asks for codes for a doctor's registry address until refused; the doctor,
    signed in with their own Login.gov account, still gets a code."""
    make_account(primary="dr.alice@example.com")
    attacker, owner = Browser(app_client, idp), Browser(app_client, idp)
    form = signed_in_unmatched(attacker, "mallory@example.net")
    statuses = []
    while 429 not in statuses and len(statuses) < 20:
        statuses.append(request_recovery(attacker, "dr.alice@example.com", form).status)
    assert statuses[-1] == 429
    page = request_recovery(
        owner, "dr.alice@example.com", signed_in_unmatched(owner, "alice.personal@example.net")
    )
    assert page.status == 302 and page.location == "/link/recover/verify"
    assert len(mailbox.to("dr.alice@example.com")) == statuses.count(302) + 1


def test_a_given_back_send_can_be_used_again(app_client):
    limit = get_settings().code_sends_per_identity_address_per_hour
    reservations = [send_limits.reserve_send("sub-a", "a@example.com") for _ in range(limit)]
    send_limits.give_back(reservations[-1])
    send_limits.reserve_send("sub-a", "a@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-a", "a@example.com")


def test_the_limits_are_settings(app_client, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("CODE_SENDS_PER_HOUR", "1")
    config.reset_settings()
    send_limits.reserve_send("sub-a", "a@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-a", "b@example.com")
    monkeypatch.setenv("CODE_SENDS_PER_HOUR", "5")
    monkeypatch.setenv("CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR", "1")
    monkeypatch.setenv("CODE_SENDS_PER_ADDRESS_PER_HOUR", "2")
    config.reset_settings()
    send_limits.reserve_send("sub-b", "c@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-b", "c@example.com")
    send_limits.reserve_send("sub-c", "c@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-d", "c@example.com")
    for name in (
        "CODE_SENDS_PER_HOUR",
        "CODE_SENDS_PER_IDENTITY_ADDRESS_PER_HOUR",
        "CODE_SENDS_PER_ADDRESS_PER_HOUR",
    ):
        monkeypatch.delenv(name)
    config.reset_settings()


def test_parallel_sends_cannot_exceed_the_limit(app_client):
    barrier = threading.Barrier(12)
    taken: list[bool] = []

    def send(i):
        barrier.wait()
        try:
            send_limits.reserve_send("sub-a", f"a{i}@example.com")
            taken.append(True)
        except SendLimitReached:
            taken.append(False)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    limit = get_settings().code_sends_per_hour
    assert taken.count(True) == limit
    counters = [f for f in Flow.scan() if isinstance(f, WindowCounter) and f.subject == "sub-a"]
    assert [c.sends for c in counters] == [limit]


def test_counters_are_flow_items_cleanup_can_find(app_client):
    send_limits.reserve_send("sub-a", "a@example.com")
    counters = [f for f in Flow.scan() if isinstance(f, WindowCounter)]
    assert len(counters) == 3  # the identity, the identity and address, the address
    for counter in counters:
        assert counter.expires_at > time.time() and counter.expires_at % 3600 == 0
        assert counter.expiry_bucket and counter.created_at and counter.sends == 1
        assert "a@example.com" not in counter.flow_id and "sub-a" not in counter.flow_id
    assert sorted(str(c.subject) for c in counters) == ["None", "None", "sub-a"]


# --- a sliding hour: no double allowance at the top of the hour ---------------------------------


def at(hour: int, minute: int = 0, second: float = 0.0) -> datetime:
    """An instant on the clock fixture's day (UTC)."""
    whole = int(second)
    return datetime(2026, 6, 9, hour, minute, whole, round((second - whole) * 1e6), tzinfo=UTC)


def send_to_victim(sent: list[float], clock, n: int) -> bool:
    """One send to the victim's address from a fresh identity (so only the address's cap
    binds); records its time when it was counted."""
    try:
        send_limits.reserve_send(f"sub-{n}", "victim@example.com")
    except SendLimitReached as refused:
        assert refused.context["limit"] == "address"
        return False
    sent.append(clock.time())
    return True


def most_in_any_hour(times: list[float]) -> int:
    """The most sends in any 60 minutes, (t - 3600, t], ending at a send."""
    return max(sum(1 for s in times if t - 3600 < s <= t) for t in times)


def test_the_address_allowance_is_not_doubled_across_the_top_of_the_hour(app_client, clock):
    cap = get_settings().code_sends_per_address_per_hour
    sent: list[float] = []
    # Half of the allowance spread over the hour before, the rest at 12:59:59.9.
    for i, minute in enumerate((10, 20, 30, 40, 50)):
        clock.set(at(12, minute))
        assert send_to_victim(sent, clock, i)
    clock.set(at(12, 59, 59.9))
    assert all(send_to_victim(sent, clock, i) for i in range(5, cap))
    assert not send_to_victim(sent, clock, 99)
    # A new clock hour: fixed windows gave a whole new allowance here.
    clock.set(at(13, 0, 0.1))
    assert not send_to_victim(sent, clock, 100)
    # Over the next hour, in steps of 5 minutes, sending whenever one is allowed: each send
    # comes back 60 minutes after it was made, and no more.
    n = 101
    while clock.time() < at(14, 0, 0.1).timestamp():
        clock.advance(300)
        while send_to_victim(sent, clock, n):
            n += 1
    returned = [datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S") for t in sent[cap:]]
    assert returned == ["13:10:00", "13:20:00", "13:30:00", "13:40:00", "13:50:00"] + [
        "14:00:00"
    ] * (cap - 5)
    assert most_in_any_hour(sent) == cap


@pytest.mark.parametrize("limit", ["identity", "identity_address"])
def test_the_other_send_limits_slide_too(app_client, clock, limit):
    settings = get_settings()
    cap = {
        "identity": settings.code_sends_per_hour,
        "identity_address": settings.code_sends_per_identity_address_per_hour,
    }[limit]

    def send(i: int):
        address = f"a{i}@example.com" if limit == "identity" else "a@example.com"
        return send_limits.reserve_send("sub-a", address)

    clock.set(at(12, 59, 59.9))
    for i in range(cap):
        send(i)
    clock.set(at(13, 0, 0.1))
    with pytest.raises(SendLimitReached) as refused:
        send(cap)
    assert refused.value.context["limit"] == limit
    clock.set(at(13, 59, 59.8))
    with pytest.raises(SendLimitReached):
        send(cap)
    clock.set(at(14, 0, 0.0))
    send(cap)


def test_a_given_back_send_leaves_the_sliding_hour_too(app_client, clock):
    """A send given back (the mail did not go out) no longer counts in the next hour."""
    limit = get_settings().code_sends_per_identity_address_per_hour
    clock.set(at(12, 59, 59.9))
    reservations = [send_limits.reserve_send("sub-a", "a@example.com") for _ in range(limit)]
    send_limits.give_back(reservations[0])
    clock.set(at(13, 0, 0.1))
    send_limits.reserve_send("sub-a", "a@example.com")
    with pytest.raises(SendLimitReached):
        send_limits.reserve_send("sub-a", "a@example.com")


def test_an_hour_counted_before_sends_were_stamped_counts_whole_in_the_next(app_client, clock):
    """Counters written before this change carry no stamps: the hour after one is full, it
    still refuses (as the fixed hour did not), then it is forgotten."""
    from chalicelib.logs import keyed_hash
    from chalicelib.models import expiry_bucket

    cap = get_settings().code_sends_per_address_per_hour
    hour = int(at(12, 30).timestamp()) // 3600
    WindowCounter(
        f"sendcount#address-{keyed_hash('victim@example.com')}#{hour}",
        sends=cap,
        created_at=hour * 3600,
        expires_at=(hour + 1) * 3600,
        expiry_bucket=expiry_bucket((hour + 1) * 3600),
    ).save()
    sent: list[float] = []
    clock.set(at(13, 30))
    assert not send_to_victim(sent, clock, 1)
    clock.set(at(14, 0))
    assert send_to_victim(sent, clock, 2)
