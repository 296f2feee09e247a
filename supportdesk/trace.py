"""`manage.py trace REFERENCE`: what happened behind the reference a person read out.

Every refusal page shows a short reference: the first characters of its request id
(chalicelib.logs.support_reference). Every log line of that request carries the whole id
(`request_id`), so the reference finds the refusal's line: its event (`link_refused_shared`,
`code_send_limited`...), the registry number when there is one, and `subject`, the keyed
stand-in of the Login.gov identity, which leads to that identity's other requests (the
sign-in before a no-match page, for example).

Not a log reader for AWS: the logs are in CloudWatch Logs, which the desk reads in the
console (or with the AWS CLI). For a stage in AWS this prints the log group and the exact
Logs Insights queries to run there. Given a file of log lines (`make run`'s output, the
browser tests' test-artifacts/e2e/stack.log, or lines exported from CloudWatch), it
searches the file itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from chalicelib.logs import REFERENCE_LENGTH
from supportdesk.desk import Invalid, NotFound

# The reference, or more of the request id (a UUID), as the person read it out.
_REFERENCE = re.compile(rf"^[0-9a-f]{{{REFERENCE_LENGTH}}}[0-9a-f-]{{0,{36 - REFERENCE_LENGTH}}}$")
LOCAL_STAGES = ("local",)
# The fields worth reading in a refusal's line (never an address: logs hold none).
FIELDS = (
    "event",
    "error",
    "detail",
    "nr_number",
    "subject",
    "status_name",
    "reason",
    "purpose",
    "limit",
    "template",
)
# The same for Logs Insights, less `limit`: a word of its query language.
INSIGHTS_FIELDS = tuple(f for f in FIELDS if f != "limit")


def parse_reference(text: str | None) -> str:
    reference = "".join((text or "").split()).lower()
    if not _REFERENCE.match(reference):
        raise Invalid(
            f"a reference is the {REFERENCE_LENGTH} letters and digits (0-9, a-f) "
            "shown on the page, for example 3f2a9c1d"
        )
    return reference


def log_groups(app_name: str, stage: str) -> list[str]:
    """The API handler's log group (infra/template.yaml creates it with its retention):
    every page, so every refusal, is served by that one function."""
    return [f"/aws/lambda/{app_name}-{stage}"]


def request_query(reference: str) -> str:
    return (
        f"fields @timestamp, {', '.join(INSIGHTS_FIELDS)}\n"
        f"| filter request_id like /^{reference}/\n"
        "| sort @timestamp asc\n"
        "| limit 100"
    )


def subject_query(subject: str) -> str:
    return (
        f"fields @timestamp, request_id, {', '.join(INSIGHTS_FIELDS)}\n"
        f'| filter subject = "{subject}" or actor = "subject:{subject}"\n'
        "| sort @timestamp desc\n"
        "| limit 100"
    )


def aws_cli(log_group: str, query: str, days: int) -> str:
    quoted = query.replace("'", "'\\''").replace("\n", " ")
    return (
        f"aws logs start-query --log-group-name {log_group} "
        f"--start-time $(date -u -d '{days} days ago' +%s) --end-time $(date -u +%s) "
        f"--query-string '{quoted}'\n"
        "aws logs get-query-results --query-id QUERY_ID_FROM_ABOVE"
    )


def cloudwatch_instructions(reference: str, app_name: str, stage: str, days: int) -> dict:
    groups = log_groups(app_name, stage)
    query = request_query(reference)
    return {
        "reference": reference,
        "stage": stage,
        "log_groups": groups,
        "query": query,
        "subject_query": subject_query("SUBJECT_FROM_THE_FIRST_QUERY"),
        "aws_cli": aws_cli(groups[0], query, days),
        "days": days,
    }


def _log_lines(path: Path) -> Iterator[dict]:
    """The JSON log lines in a file; other lines (access logs, banners) are skipped."""
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for line in handle:
            start = line.find("{")
            if start < 0:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                # A CloudWatch export wraps the line: {"timestamp":..., "message": "{...}"}.
                yield record
            elif isinstance(record, dict) and isinstance(record.get("message"), str):
                try:
                    inner = json.loads(record["message"])
                except ValueError:
                    continue
                if isinstance(inner, dict) and "event" in inner:
                    yield inner


def search_file(reference: str, path: str | Path) -> dict:
    """The lines of the request, and the other lines of the identities they name."""
    records = list(_log_lines(Path(path)))
    found = [r for r in records if str(r.get("request_id", "")).startswith(reference)]
    if not found:
        raise NotFound(f"no log line in {path} has a request id starting with {reference}")
    request_ids = {r["request_id"] for r in found}
    subjects = {r["subject"] for r in found if r.get("subject")}
    related = [
        r
        for r in records
        if r.get("request_id") not in request_ids
        and (
            r.get("subject") in subjects
            or str(r.get("actor", "")).removeprefix("subject:") in subjects
        )
    ]
    return {
        "reference": reference,
        "log_file": str(path),
        "request_ids": sorted(request_ids),
        "lines": found,
        "related": related,
    }
