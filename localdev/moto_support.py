"""Make moto's DynamoDB behave like DynamoDB under concurrency.

DynamoDB serializes writes to an item and runs a TransactWriteItems atomically. moto's
backend does neither under threads: a transaction snapshots whole tables and restores them
on failure, which can undo a concurrent writer. Tests that race sign-ins, and the local
server, run moto's write calls under one lock so races are decided as AWS decides them.
"""
from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
# Reads too: a read must not see a transaction's half-applied state.
_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "get_item",
            "query", "scan", "batch_get_item", "batch_write_item", "transact_get_items")
_installed = False


def serialize_dynamodb_writes() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _METHODS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, __original=original, **kwargs):
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    _installed = True
