"""The baseline cold start: import boto3, make a DynamoDB client, write one item."""

import os
import uuid

import boto3

client = boto3.client("dynamodb")
client.put_item(
    TableName=os.environ["BENCH_BASELINE_TABLE"],
    Item={"flow_id": {"S": f"baseline#{uuid.uuid4()}"}},
)
print(200, flush=True)  # the answer: bench/run.py times the process until this line
