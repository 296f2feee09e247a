"""Make moto's DynamoDB behave like DynamoDB where our correctness depends on it.

- Concurrency: DynamoDB serializes writes to an item and runs a TransactWriteItems
  atomically. moto's backend does neither under threads: a transaction snapshots whole
  tables and restores them on failure, which can undo a concurrent writer. Tests that race
  sign-ins, and the local server, run moto's calls under one lock so races are decided as
  AWS decides them.
- Transactions at scale: moto backs up every table a transaction touches (a deep copy of the
  whole table) to roll back a failure, which makes each transaction cost as much as the
  table is large: an import of 20,000 accounts, one transaction each, would never end.
  Here only the items a transaction touches are backed up and put back.
- Idempotent transactions: DynamoDB answers a TransactWriteItems that repeats the
  ClientRequestToken (and parameters) of one that committed in the last 10 minutes with
  success, without applying it again; a different request with the same token is an
  IdempotentParameterMismatchException. moto ignores the token, so a retried commit would
  fail its own conditions there; this adds DynamoDB's behaviour.
"""

from __future__ import annotations

import functools
import json
import threading

from chalicelib import clock

_lock = threading.RLock()
# Reads too: a read must not see a transaction's half-applied state.
_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "get_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
)
TOKEN_WINDOW_SECONDS = 600
_installed = False
_committed_tokens: dict[str, tuple[str, float]] = {}


def install_dynamodb_behaviour() -> None:
    """Install the three behaviours above into moto's DynamoDB (once per process)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    for name in _METHODS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, __original=original, **kwargs):
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)

    _back_up_items_not_tables(DynamoDBBackend)
    original_handler = DynamoHandler.transact_write_items

    @functools.wraps(original_handler)
    def idempotent(self):
        token = self.body.get("ClientRequestToken")
        if not token:
            return original_handler(self)
        request = json.dumps(self.body.get("TransactItems"), sort_keys=True)
        with _lock:
            now = clock.monotonic()
            seen = _committed_tokens.get(token)
            if seen is not None and now - seen[1] < TOKEN_WINDOW_SECONDS:
                if seen[0] != request:
                    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

                    raise DynamodbException(
                        ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                        "the token was used for a different request",
                    )
                return _success()
            response = original_handler(self)
            _committed_tokens[token] = (request, now)
            return response

    DynamoHandler.transact_write_items = idempotent
    _installed = True


def _back_up_items_not_tables(backend_class) -> None:
    import copy

    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _NoTableCopies:
        """moto's `copy` module, except that a Table is not deep-copied (see above)."""

        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    backend_module.copy = _NoTableCopies()
    original = backend_class.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self, transact_items):
        with _lock:  # the backup and the transaction, as one step for other writers
            return _with_item_backups(self, transact_items)

    def _with_item_backups(self, transact_items):
        backups = []
        for item in transact_items:
            op_type, op = next(iter(item.items()))
            table = self.tables.get(op.get("TableName"))
            attrs = op.get("Item") if op_type == "Put" else op.get("Key")
            if table is None or not attrs or table.hash_key_attr not in attrs:
                continue
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = (
                DynamoType(attrs[table.range_key_attr])
                if table.range_key_attr and table.range_key_attr in attrs
                else None
            )
            if table.range_key_attr and range_key is None:
                continue
            backups.append(
                (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
            )
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, before in reversed(backups):
                if before is None:
                    if table.get_item(hash_key, range_key) is not None:
                        table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = before
                else:
                    table.items[hash_key] = before
            raise

    backend_class.transact_write_items = transact_write_items


def _success():
    from moto.core.responses import ActionResult

    return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
