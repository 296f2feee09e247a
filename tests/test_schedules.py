"""The scheduled functions, invoked as Lambda would invoke them (chalice local runs none)."""

from __future__ import annotations

import time

from chalicelib.models import Flow, SignInState, expiry_bucket


def test_cleanup_schedule_removes_expired_flows_and_keeps_live_ones(app_client):
    now = int(time.time())
    for flow_id, expires in (("signin#old", now - 7200), ("signin#live", now + 600)):
        SignInState(
            flow_id,
            nonce="n" * 43,
            browser_hash="b" * 64,
            return_to="/account",
            created_at=now - 8000,
            expires_at=expires,
            expiry_bucket=expiry_bucket(expires),
        ).save()
    event = app_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    app_client.lambda_.invoke("cleanup_expired_flows", event)
    assert [f.flow_id for f in Flow.scan()] == ["signin#live"]
