"""From recorded AWS calls to the IAM authorisations they need, and a small IAM evaluator
(Allow statements with Action, Resource and Condition): the machinery of the least-privilege
tests of the examiners' functions (tests/test_policies.py) and of the console's
(tests/test_console_policy.py).

Each call (localdev.aws_calls.Call) becomes the IAM actions that authorise it, with the
resource ARN and request context the deployed stage would give it; a `StageNames` says how a
stage names what the tour touched (its tables, parameters, queue and sender).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tests.support.infra import load_template

REGION = "us-east-1"
ACCOUNT = "123456789012"  # any account: the policies say `*` (static JSON cannot name it)


class StageNames(Protocol):
    """A deployed stage's names for what a tour touched under moto."""

    def table(self, name: str) -> str: ...

    def parameter(self, name: str) -> str: ...

    def queue(self, url: str) -> str: ...

    def sender(self, address: str) -> str: ...


def data_key_alias(stage: str) -> str:
    """The table key's alias in infra/template.yaml, which the policies scope KMS by."""
    template = load_template()
    alias = template["Resources"]["DataKeyAlias"]["Properties"]["AliasName"]["Fn::Sub"]
    return alias.replace("${Stage}", stage)


# --- from calls to IAM: actions, resources, request context ------------------------------------


@dataclass(frozen=True)
class Need:
    """One IAM authorisation a call needs: an action on a resource, with its context."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()
    why: str = ""

    def context_value(self, key: str) -> tuple[str, ...] | None:
        return dict(self.context).get(key)


def request_context(**values) -> tuple:
    """IAM condition keys and their values, `kms__ViaService=` for `kms:ViaService`."""
    return tuple(
        sorted(
            (key.replace("__", ":"), tuple(v if isinstance(v, list) else [v]))
            for key, v in values.items()
        )
    )


def _dynamodb_item(stage: StageNames, action: str, params: dict, why: str) -> list[Need]:
    resource = stage.table(params["TableName"])
    if params.get("IndexName"):
        resource += "/index/" + params["IndexName"]
    return [Need(f"dynamodb:{action}", resource, why=why)]


def _transact_write(stage: StageNames, params: dict, why: str) -> list[Need]:
    # IAM authorises a transaction item by item, each as its single-item action.
    actions = {
        "Put": "PutItem",
        "Update": "UpdateItem",
        "Delete": "DeleteItem",
        "ConditionCheck": "ConditionCheckItem",
    }
    return [
        need
        for item in params["TransactItems"]
        for kind, request in item.items()
        for need in _dynamodb_item(stage, actions[kind], request, f"{why} {kind}")
    ]


def _batch(action: str) -> Callable:
    def needs(stage: StageNames, params: dict, why: str) -> list[Need]:
        return [
            Need(f"dynamodb:{action}", stage.table(table), _leading_keys(request), why=why)
            for table, request in params["RequestItems"].items()
        ]

    return needs


def _leading_keys(request) -> tuple:
    """dynamodb:LeadingKeys of a BatchGetItem: each key's partition key value (PynamoDB puts
    the hash key first)."""
    keys = request.get("Keys") if isinstance(request, dict) else None
    if not keys:
        return ()
    values = [next(iter(next(iter(key.values())).values())) for key in keys]
    return request_context(dynamodb__LeadingKeys=values)


def _single(action: str) -> Callable:
    return lambda stage, params, why: _dynamodb_item(stage, action, params, why)


def _ssm_get_parameter(stage: StageNames, params: dict, why: str) -> list[Need]:
    return [Need("ssm:GetParameter", stage.parameter(params["Name"]), why=why)]


def _ses_send_email(stage: StageNames, params: dict, why: str) -> list[Need]:
    sender = stage.sender(params["FromEmailAddress"])
    identity = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{sender.split('@', 1)[1]}"
    needs = [Need("ses:SendEmail", identity, request_context(ses__FromAddress=sender), why)]
    if params.get("ConfigurationSetName"):
        # Named TABLE_PREFIX + "mail" like the stack's other resources: the stage's prefix.
        name = stage.table(params["ConfigurationSetName"]).rsplit("/", 1)[1]
        arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{name}"
        needs.append(Need("ses:SendEmail", arn, why=why))
    return needs


def _sqs(action: str) -> Callable:
    def needs(stage: StageNames, params: dict, why: str) -> list[Need]:
        return [Need(f"sqs:{action}", stage.queue(params["QueueUrl"]), why=why)]

    return needs


def _sqs_queue_url(stage: StageNames, params: dict, why: str) -> list[Need]:
    return [Need("sqs:GetQueueUrl", stage.queue("/" + params["QueueName"]), why=why)]


# (botocore service, operation) -> the IAM authorisations one call needs.
OPERATIONS: dict[tuple[str, str], Callable[[StageNames, dict, str], list[Need]]] = {
    ("dynamodb", "GetItem"): _single("GetItem"),
    ("dynamodb", "PutItem"): _single("PutItem"),
    ("dynamodb", "UpdateItem"): _single("UpdateItem"),
    ("dynamodb", "DeleteItem"): _single("DeleteItem"),
    ("dynamodb", "Query"): _single("Query"),
    ("dynamodb", "Scan"): _single("Scan"),
    ("dynamodb", "BatchGetItem"): _batch("BatchGetItem"),
    ("dynamodb", "BatchWriteItem"): _batch("BatchWriteItem"),
    ("dynamodb", "TransactWriteItems"): _transact_write,
    ("ssm", "GetParameter"): _ssm_get_parameter,
    ("sesv2", "SendEmail"): _ses_send_email,
    ("sqs", "GetQueueUrl"): _sqs_queue_url,
    ("sqs", "SendMessage"): _sqs("SendMessage"),
    ("sqs", "SendMessageBatch"): _sqs("SendMessage"),  # IAM has no action of its own for it
    ("sqs", "DeleteMessageBatch"): _sqs("DeleteMessage"),
}
KMS_THROUGH_DYNAMODB = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


# --- a small IAM evaluator: Allow statements with Action, Resource and Condition ---------------


def wildcard(pattern: str) -> re.Pattern:
    """IAM's ARN and string matching: `*` any run of characters, `?` one."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z"
    )


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def condition_holds(condition: dict, need: Need) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = need.context_value(key)
            if actual is None:
                return False  # no *IfExists operators here: a missing key fails the test
            expected = as_list(expected)
            if operator in ("StringEquals", "ForAnyValue:StringEquals"):
                ok = any(value in expected for value in actual)
            elif operator in ("StringLike", "ArnLike", "ForAnyValue:StringLike"):
                ok = any(wildcard(e).match(v) for v in actual for e in expected)
            elif operator == "ForAllValues:StringLike":
                ok = all(any(wildcard(e).match(v) for e in expected) for v in actual)
            else:
                raise AssertionError(f"teach condition_holds the {operator} operator")
            if not ok:
                return False
    return True


def grants(statement: dict, need: Need) -> bool:
    return (
        statement["Effect"] == "Allow"
        and any(wildcard(a).match(need.action) for a in as_list(statement["Action"]))
        and any(wildcard(r).match(need.resource) for r in as_list(statement["Resource"]))
        and condition_holds(statement.get("Condition", {}), need)
    )


def unused_grants(statements: list[dict], needs: list[Need]) -> list[str]:
    """Each (statement, action, resource) that no need used."""
    unused = []
    for statement in statements:
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                narrow = {**statement, "Action": action, "Resource": resource}
                if not any(grants(narrow, need) for need in needs):
                    unused.append(f"{statement['Sid']}: {action} on {resource}")
    return unused
