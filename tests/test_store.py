"""store.Transaction: named items, per-item reasons, retries that are recognised as done."""

from __future__ import annotations

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib import store
from chalicelib.audit import audit_event
from chalicelib.models import Account, AuditEvent, Claim
from tests.support.accounts import make_account


def test_a_refusal_names_the_item_whose_condition_failed(aws):
    make_account("1000000001", "a@example.com")
    make_account("1000000002", "b@example.com")
    Claim(Claim.sub_key("taken"), nr_number="1000000002").save()
    account = Account.get("1000000001")
    tx = store.Transaction()
    tx.check("still_active", Account, "1000000002", condition=Account.status == "active")
    tx.put(
        "sub_claim",
        Claim(Claim.sub_key("taken"), nr_number="1000000001"),
        condition=Claim.claim.does_not_exist(),
    )
    tx.update("account", account, actions=[Account.first_name.set("X")])
    tx.audit(audit_event("1000000001", "test_event", actor="t"))
    with pytest.raises(store.TransactionRefused) as refused:
        tx.commit()
    assert refused.value.failed == {"sub_claim": "ConditionalCheckFailed"}
    assert refused.value.refused("sub_claim") and not refused.value.refused("account")
    assert Account.get("1000000001").first_name == "Alice"  # nothing written
    assert list(AuditEvent.query("1000000001")) == []


def test_request_order_is_pynamodbs_grouping(aws, calls):
    """Reasons are mapped to names by the order PynamoDB sends items in: checked here, so a
    PynamoDB upgrade that changes it fails loudly instead of misnaming refusals."""
    make_account("1000000001", "a@example.com")
    make_account("1000000002", "b@example.com")
    calls.clear()
    tx = store.Transaction()
    tx.update("u", Account.get("1000000001"), actions=[Account.first_name.set("Y")])
    tx.put("p", Claim(Claim.sub_key("s1"), nr_number="1000000001"))
    tx.delete("d", Claim(Claim.sub_key("none")))
    tx.check("c", Account, "1000000002", condition=Account.status == "active")
    tx.commit()
    (params,) = calls.params("TransactWriteItems")
    kinds = [next(iter(item)) for item in params["TransactItems"]]
    assert kinds == ["ConditionCheck", "Delete", "Put", "Update"]
    assert tx.request_order() == ["c", "d", "p", "u"]


def test_a_conflict_is_retried_once_with_a_new_request(aws, calls):
    make_account("1000000001", "a@example.com")
    calls.clear()
    calls.fail(
        "TransactWriteItems",
        "TransactionCanceledException",
        reasons=["TransactionConflict", "None"],
    )
    tx = store.Transaction()
    tx.update("account", Account.get("1000000001"), actions=[Account.first_name.set("Z")])
    tx.audit(audit_event("1000000001", "test_event", actor="t"))
    tx.commit()
    tokens = [p["ClientRequestToken"] for p in calls.params("TransactWriteItems")]
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    assert Account.get("1000000001").first_name == "Z"


def test_throttling_is_trouble_not_a_refusal(aws, calls):
    make_account("1000000001", "a@example.com")
    calls.fail(
        "TransactWriteItems", "TransactionCanceledException", reasons=["ThrottlingError", "None"]
    )
    tx = store.Transaction()
    tx.update("account", Account.get("1000000001"), actions=[Account.first_name.set("Z")])
    tx.audit(audit_event("1000000001", "test_event", actor="t"))
    with pytest.raises(TransactWriteError):
        tx.commit()


def test_a_retry_of_a_committed_transaction_is_recognised_as_done(aws, calls):
    """botocore resends a request whose answer was lost; DynamoDB (and moto, through
    localdev.moto_support) answers a repeated client request token with success."""
    make_account("1000000001", "a@example.com")
    calls.clear()
    rule = calls.lose_answer("TransactWriteItems")
    tx = store.Transaction()
    tx.put(
        "sub_claim",
        Claim(Claim.sub_key("once"), nr_number="1000000001"),
        condition=Claim.claim.does_not_exist(),
    )
    tx.audit(audit_event("1000000001", "test_event", actor="t"))
    tx.commit()
    assert rule.fired == 1 and len(calls.params("TransactWriteItems")) == 2
    assert len(list(AuditEvent.query("1000000001"))) == 1


def test_without_the_token_the_audit_record_proves_the_earlier_commit(aws):
    """Past the token's window (or any resend without it): the change's own audit record
    already exists, so its condition is what fails, and that means done, not conflict."""
    make_account("1000000001", "a@example.com")
    event = audit_event("1000000001", "test_event", actor="t")

    def attempt():
        tx = store.Transaction()
        tx.put(
            "sub_claim",
            Claim(Claim.sub_key("once"), nr_number="1000000001"),
            condition=Claim.claim.does_not_exist(),
        )
        tx.audit(event)
        tx.commit()

    attempt()
    attempt()  # the same write again, with a new token: recognised as already committed
    assert len(list(AuditEvent.query("1000000001"))) == 1


def test_a_token_reused_for_another_request_is_an_error_as_in_dynamodb(aws):
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("dynamodb")
    item = {
        "Put": {
            "TableName": Claim.Meta.table_name,
            "Item": {"claim": {"S": "sub#x"}, "nr_number": {"S": "1"}},
        }
    }
    client.transact_write_items(TransactItems=[item], ClientRequestToken="t" * 36)
    client.transact_write_items(TransactItems=[item], ClientRequestToken="t" * 36)
    other = {"Put": {**item["Put"], "Item": {"claim": {"S": "sub#y"}, "nr_number": {"S": "1"}}}}
    with pytest.raises(ClientError, match="IdempotentParameterMismatch"):
        client.transact_write_items(TransactItems=[other], ClientRequestToken="t" * 36)
