"""Create the stage's tables by deploying infra/template.yaml as a CloudFormation stack.

Local runs and tests get their tables from the same template as dev and prod (moto runs
the template), so a table or index missing from the template fails here, not in AWS.
Works in-process under `moto.mock_aws` and against a moto server (AWS_ENDPOINT_URL),
and against real AWS for dev, where ops may also use `aws cloudformation deploy`.

    python -m localdev.provision --stage local --table-prefix nrcme-local-
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from chalicelib import clock

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"

# A first creation that failed and rolled back: nothing in it to keep, and AWS accepts no
# update to it, so it is deleted and created again.
_FAILED_CREATION = "ROLLBACK_COMPLETE"


def stack_name_for(table_prefix: str) -> str:
    """One stack per table prefix: "nrcme-local-" -> "nrcme-local-infra"."""
    return re.sub(r"[^A-Za-z0-9-]", "-", table_prefix).strip("-") + "-infra"


def _client():
    import boto3

    # boto3 reads AWS_ENDPOINT_URL itself (moto server locally, unset in AWS).
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return boto3.client("cloudformation", region_name=region)


def _describe(cfn, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _settled(cfn, name: str, timeout_seconds: float = 1800) -> dict | None:
    """The stack once no operation is in progress on it (another runner may be deploying)."""
    deadline = clock.monotonic() + timeout_seconds
    while True:
        stack = _describe(cfn, name)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if clock.monotonic() > deadline:
            raise RuntimeError(f"stack {name} is still {stack['StackStatus']}")
        clock.sleep(10)


def _wait(cfn, waiter_name: str, name: str) -> None:
    from botocore.exceptions import WaiterError

    try:
        # Moto finishes at once (no sleep happens); AWS takes a minute or two.
        cfn.get_waiter(waiter_name).wait(
            StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
        )
    except WaiterError as exc:
        reasons = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
            if e.get("ResourceStatus", "").endswith("FAILED")
        ]
        raise RuntimeError(f"stack {name} did not reach {waiter_name}: {reasons or exc}") from exc


def create_stack_from_template(
    stage: str = "local", table_prefix: str = "nrcme-local-", alarm_email: str | None = None
) -> dict[str, str]:
    """Create the stack, or bring an existing one up to date; return its outputs.

    Idempotent: an unchanged stack is left alone, a changed template is applied as an
    update (the tables are retained), a stack whose creation failed is replaced.
    """
    cfn = _client()
    name = stack_name_for(table_prefix)
    template = TEMPLATE_PATH.read_text()
    parameters: list[dict[str, str | bool]] = [
        {"ParameterKey": "Stage", "ParameterValue": stage},
        {"ParameterKey": "TablePrefix", "ParameterValue": table_prefix},
    ]
    if alarm_email is not None:
        parameters.append({"ParameterKey": "AlarmEmail", "ParameterValue": alarm_email})

    existing = _settled(cfn, name)
    if existing and existing["StackStatus"] == _FAILED_CREATION:
        cfn.delete_stack(StackName=name)
        _wait(cfn, "stack_delete_complete", name)
        existing = None

    if existing is None:
        cfn.create_stack(
            StackName=name,
            TemplateBody=template,
            Parameters=parameters,
            # Dev and prod stacks hold the registry; nobody deletes them by accident.
            EnableTerminationProtection=stage != "local",
            Tags=[{"Key": "Project", "Value": "nrcme-signin"}, {"Key": "Stage", "Value": stage}],
        )
        _wait(cfn, "stack_create_complete", name)
    else:
        if alarm_email is None:
            parameters.append({"ParameterKey": "AlarmEmail", "UsePreviousValue": True})
        if _update(cfn, name, template, parameters):
            _wait(cfn, "stack_update_complete", name)

    stack = _describe(cfn, name) or {}
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _update(cfn, name: str, template: str, parameters: list[dict]) -> bool:
    """Apply the template; False when there is nothing to change."""
    from botocore.exceptions import ClientError

    try:
        cfn.update_stack(StackName=name, TemplateBody=template, Parameters=parameters)
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return False
        raise
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="local", choices=("local", "dev", "prod"))
    parser.add_argument("--table-prefix", default=None, help="defaults to nrcme-<stage>-")
    parser.add_argument("--alarm-email", default=None)
    args = parser.parse_args(argv)
    prefix = args.table_prefix or f"nrcme-{args.stage}-"
    outputs = create_stack_from_template(args.stage, prefix, alarm_email=args.alarm_email)
    for key in sorted(outputs):
        print(f"{key}\t{outputs[key]}")


if __name__ == "__main__":
    main()
