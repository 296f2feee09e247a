"""Watch and break AWS calls at botocore, below PynamoDB, boto3 and all of our code.

One helper for the tests and the benchmark (never deployed):

- `AwsCalls` records every API call any botocore client makes: service, operation and
  parameters. Tests count requests per workflow with it; `make bench` counts them per
  sign-in.
- Its fault rules make DynamoDB (and SQS, by operation and queue URL) misbehave as they do
  in production: `fail` answers the next matching calls with the error AWS would send
  after botocore's own retries
  (throttling, a cancelled transaction with its reasons), `interleave` runs another writer
  just before a call (to stage a lost race), `unreachable` makes every HTTP attempt of an
  operation fail to connect (to count botocore's retries), and `lose_answer` lets a call
  reach DynamoDB but loses its answer, so botocore sends it again (a write that committed
  but was not acknowledged).

Install with `watching(monkeypatch)` in a test, or `install()` / `uninstall()` in a script.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import botocore.client
import botocore.exceptions

_HASH_KEYS = ("flow_id", "claim", "nr_number")


class Call(NamedTuple):
    service: str
    operation: str
    params: dict


def _hash_value(item: dict | None) -> str | None:
    for name in _HASH_KEYS:
        if item and name in item:
            return item[name].get("S")
    return None


def targets(operation: str, params: dict) -> list[tuple[str, str | None]]:
    """(table, hash key) pairs a DynamoDB request touches."""
    if operation == "TransactWriteItems":
        return [
            (op["TableName"], _hash_value(op.get("Key") or op.get("Item")))
            for item in params["TransactItems"]
            for op in item.values()
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        found = []
        for table, request in params["RequestItems"].items():
            entries = (
                request["Keys"]
                if operation == "BatchGetItem"
                else [
                    r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key")
                    for r in request
                ]
            )
            found.extend((table, _hash_value(entry)) for entry in entries)
        return found
    if "QueueUrl" in params:  # SQS: the queue is the "table"
        return [(params["QueueUrl"], None)]
    return [(params.get("TableName", ""), _hash_value(params.get("Key") or params.get("Item")))]


def client_error(
    code: str, reasons: list[str] | None = None, status: int = 400
) -> Callable[[str], Exception]:
    """What botocore raises for a DynamoDB error answer (after its own retries)."""

    def build(operation: str) -> Exception:
        response = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        if reasons is not None:
            response["CancellationReasons"] = [
                {"Code": r} if r == "None" else {"Code": r, "Message": f"injected {r}"}
                for r in reasons
            ]
        return botocore.exceptions.ClientError(response, operation)

    return build


@dataclass
class Rule:
    operation: str
    table: str | None
    key_prefix: str | None
    times: int
    error: Callable[[str], Exception] | None = None
    before: Callable[[], None] | None = None
    lose_answer: bool = False
    fired: int = 0

    def matches(self, operation: str, params: dict) -> bool:
        if operation != self.operation or self.fired >= self.times:
            return False
        return any(
            (self.table is None or table.endswith(self.table))
            and (self.key_prefix is None or (key or "").startswith(self.key_prefix))
            for table, key in targets(operation, params)
        )


@dataclass
class AwsCalls:
    """Every AWS call made while installed, and the DynamoDB faults to inject."""

    calls: list[Call] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # HTTP attempts of unreachable operations
    _original: Callable | None = None
    _unreachable: set[str] = field(default_factory=set)
    _hooked: list = field(default_factory=list)

    # --- reading ---------------------------------------------------------------------------

    def operations(self, service: str = "dynamodb") -> list[str]:
        return [c.operation for c in self.calls if c.service == service]

    def count(self, service: str = "dynamodb") -> Counter:
        return Counter(self.operations(service))

    def total(self, service: str) -> int:
        return sum(1 for c in self.calls if c.service == service)

    def params(self, operation: str) -> list[dict]:
        return [c.params for c in self.calls if c.operation == operation]

    def count_targeting(
        self, operation: str, table: str | None = None, key_prefix: str | None = None
    ) -> int:
        return sum(
            1
            for c in self.calls
            if c.operation == operation
            and any(
                (table is None or t.endswith(table))
                and (key_prefix is None or (k or "").startswith(key_prefix))
                for t, k in targets(c.operation, c.params)
            )
        )

    def batch_write_sizes(self) -> list[int]:
        return [
            sum(len(reqs) for reqs in params["RequestItems"].values())
            for params in self.params("BatchWriteItem")
        ]

    def clear(self) -> None:
        self.calls.clear()

    @contextlib.contextmanager
    def paused(self):
        """Calls made inside are not recorded (another actor's: a local worker's drain)."""
        kept = len(self.calls)
        try:
            yield
        finally:
            del self.calls[kept:]

    # --- faults ----------------------------------------------------------------------------

    def fail(self, operation, code, *, table=None, key_prefix=None, times=1, reasons=None):
        """The next `times` matching calls fail with `code` and change nothing."""
        rule = Rule(operation, table, key_prefix, times, error=client_error(code, reasons))
        self.rules.append(rule)
        return rule

    def interleave(self, operation, action, *, table=None, key_prefix=None, times=1):
        """Run `action` (another writer) just before each of the next `times` matching calls."""
        rule = Rule(operation, table, key_prefix, times, before=action)
        self.rules.append(rule)
        return rule

    def lose_answer(self, operation, *, table=None, key_prefix=None, times=1):
        """The next matching call reaches DynamoDB, but its answer is lost (a 500 after the
        write): botocore sends the very same request again, as it does in production."""
        rule = Rule(operation, table, key_prefix, times, lose_answer=True)
        self.rules.append(rule)
        return rule

    def unreachable(self, operation):
        """Every HTTP attempt of `operation` fails to connect, beneath botocore's retries."""
        self._unreachable.add(operation)

    # --- the hook --------------------------------------------------------------------------

    def _refuse_connections(self, client, operation):
        def refuse(request, **_):
            self.attempts.append(operation)
            raise botocore.exceptions.ConnectTimeoutError(endpoint_url=request.url)

        event, unique_id = f"before-send.dynamodb.{operation}", f"fault-{operation}"
        client.meta.events.register_first(event, refuse, unique_id=unique_id)
        self._hooked.append((client, event, unique_id))

    def __call__(self, client, operation, params):
        service = client.meta.service_model.service_name
        self.calls.append(Call(service, operation, params))
        if (
            operation in self._unreachable
            and service == "dynamodb"
            and not any(c is client and e.endswith(operation) for c, e, _ in self._hooked)
        ):
            self._refuse_connections(client, operation)
        for rule in self.rules:
            if rule.matches(operation, params):
                rule.fired += 1  # before the action: its own calls must not re-trigger it
                if rule.before is not None:
                    rule.before()
                if rule.error is not None:
                    raise rule.error(operation)
                if rule.lose_answer:
                    self._original(client, operation, params)  # it happened...
                    # ...and botocore, having seen no answer, sends the same request again.
                    self.calls.append(Call(service, operation, params))
        return self._original(client, operation, params)

    def install(self) -> AwsCalls:
        self._original = botocore.client.BaseClient._make_api_call
        recorder = self

        def patched(client, operation, params):
            return recorder(client, operation, params)

        botocore.client.BaseClient._make_api_call = patched
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.client.BaseClient._make_api_call = self._original
        self.close()

    def close(self) -> None:
        """Remove the connection-refusing hooks `unreachable` put on clients."""
        for client, event, unique_id in self._hooked:
            client.meta.events.unregister(event, unique_id=unique_id)
        self._hooked.clear()


def watching(monkeypatch) -> AwsCalls:
    """AwsCalls installed for one test; monkeypatch puts botocore back afterwards (call
    `close()` too when the test used `unreachable`)."""
    recorder = AwsCalls(_original=botocore.client.BaseClient._make_api_call)

    def patched(client, operation, params):
        return recorder(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", patched)
    return recorder
