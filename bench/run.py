"""`make bench`: every speed and cost figure, as ratios against baselines from the same run.

Prints one table (figure, value, target, pass) and writes bench/results/latest.md. Nothing
here is a test: the machines are shared and noisy, so figures are ratios or counts, and
each ratio's two sides are measured alternately in the same run.

Sections register themselves in SECTIONS; `python -m bench.run --only cold_start` runs one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLIENT_ID = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-bench"
APP_BASE_URL = "http://127.0.0.1:8000"


@dataclass
class Figure:
    name: str
    value: float
    target: str
    ok: bool
    detail: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """moto server + local Login.gov in this process; the app's environment for children."""

    def __init__(self) -> None:
        from localdev.idp import LocalLoginGov, generate_rsa_key, private_pem, public_pem
        from localdev.moto_support import serialize_dynamodb_writes

        serialize_dynamodb_writes()
        from moto.server import ThreadedMotoServer

        self.moto_port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port,
                                       verbose=False)
        self.moto.start()
        idp_port = free_port()
        self.idp = LocalLoginGov(issuer=f"http://127.0.0.1:{idp_port}/")
        key = generate_rsa_key()
        self.idp.register_client(CLIENT_ID, public_pem(key), APP_BASE_URL + "/auth/callback",
                                 APP_BASE_URL + "/signed-out")
        self.idp_server = self.idp.serve_in_thread(port=idp_port)
        self.env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.moto_port}",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "TABLE_PREFIX": "bench-", "APP_BASE_URL": APP_BASE_URL,
            "LOGIN_GOV_ISSUER": self.idp.issuer, "LOGIN_GOV_CLIENT_ID": CLIENT_ID,
            "LOGIN_GOV_PRIVATE_KEY": private_pem(key), "LOG_HASH_KEY": "bench",
            "MAIL_SENDER": "no-reply@nrcme.example.com",
        }
        os.environ.update(self.env)
        from chalicelib import models

        models.use_table_prefix("bench-")
        for model in models.ALL_MODELS:
            if not model.exists():
                model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)

    def close(self) -> None:
        self.idp_server.shutdown()
        self.moto.stop()


class CallCounter:
    """Counts AWS API calls made by any botocore client in this process, by operation."""

    def __init__(self) -> None:
        import botocore.client

        self.calls: list[str] = []
        original = botocore.client.BaseClient._make_api_call
        counter = self

        def counting(client, operation_name, api_params):
            counter.calls.append(f"{client.meta.service_model.service_name}:{operation_name}")
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counting

    def reset(self) -> None:
        self.calls.clear()

    def count(self, service: str) -> int:
        return sum(1 for c in self.calls if c.startswith(service + ":"))


# --- sections ---------------------------------------------------------------------------------

def cold_start(stack: Stack, runs: int) -> list[Figure]:
    """Fresh process: import app + first GET /login, vs import boto3 + client + one write."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName="bench-baseline", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "flow_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "flow_id", "KeyType": "HASH"}])
    env = {**os.environ, **stack.env, "BENCH_BASELINE_TABLE": "bench-baseline",
           "PYTHONPATH": str(ROOT)}
    commands = {
        "app": [sys.executable, str(ROOT / "bench" / "cold_start_login.py")],
        "baseline": [sys.executable, str(ROOT / "bench" / "cold_start_baseline.py")],
    }
    times: dict[str, list[float]] = {"app": [], "baseline": []}
    for name, cmd in commands.items():  # warm the OS file cache and .pyc files once
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    for _ in range(runs):
        for name, cmd in commands.items():
            started = time.perf_counter()
            out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True,
                                 text=True)
            times[name].append(time.perf_counter() - started)
            assert out.stdout.strip().endswith(("302", "200")), out.stdout + out.stderr
    app_ms = statistics.median(times["app"]) * 1000
    base_ms = statistics.median(times["baseline"]) * 1000
    ratio = app_ms / base_ms
    return [Figure("cold start: first GET /login ÷ boto3 client + one write", round(ratio, 2),
                   "≤ 1.20", ratio <= 1.20,
                   f"median of {runs} alternating runs: {app_ms:.0f} ms vs {base_ms:.0f} ms")]


def lambda_event(method: str, path: str, headers: dict | None = None) -> dict:
    """An API Gateway proxy event, as Lambda would receive it."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(path)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} or None
    headers = {"Host": "127.0.0.1:8000", **(headers or {})}
    return {
        "resource": parts.path, "path": parts.path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None, "stageVariables": None, "body": None,
        "isBase64Encoded": False,
        "requestContext": {"resourcePath": parts.path, "httpMethod": method,
                           "path": parts.path, "requestId": "bench", "stage": "api"},
    }


class LambdaContext:
    aws_request_id = "bench"
    function_name = "nrcme-signin-bench"
    memory_limit_in_mb = 512

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def invoke(method: str, path: str, headers: dict | None = None) -> dict:
    import app as app_module

    return app_module.app(lambda_event(method, path, headers), LambdaContext())


def first_cookie(response: dict) -> str:
    values = response.get("multiValueHeaders", {}).get("Set-Cookie") or \
        [response["headers"]["Set-Cookie"]]
    return values[0].split(";", 1)[0]


def authorize_at_idp(stack: Stack, authorization_url: str, emails: list[str]) -> str:
    """Fill in the local Login.gov's form; returns the app path it redirects back to."""
    import requests

    from localdev.html_forms import parse_forms

    form_page = requests.get(authorization_url, timeout=10)
    fields = parse_forms(form_page.text)[0]["fields"]
    fields.update({"emails": "\n".join(emails), "action": "continue"})
    back = requests.post(stack.idp.url("/openid_connect/authorize"), data=fields,
                         allow_redirects=False, timeout=10).headers["Location"]
    return back[len(APP_BASE_URL):]


def returning_callback(stack: Stack, runs: int) -> list[Figure]:
    """Requests made by a warm container for a returning user's callback."""
    from chalicelib import http_client, login_gov
    from chalicelib.config import reset_settings
    from chalicelib.emails import normalize_email
    from chalicelib.models import Account, Claim

    reset_settings()
    email = "bench.returning@example.com"
    Account("1999999999", first_name="Bench", last_name="User", role="medical_examiner",
            primary_email=email, primary_email_normalized=normalize_email(email)).save()
    Claim(Claim.email_key(normalize_email(email)), nr_number="1999999999").save()
    counter = CallCounter()

    def sign_in() -> tuple[int, int, int]:
        login = invoke("GET", "/login")
        cookie = first_cookie(login)
        path = authorize_at_idp(stack, login["headers"]["Location"], [email])
        counter.reset()
        http_before, jwks_before = http_client.request_count, login_gov.key_set.fetch_count
        resp = invoke("GET", path, {"Cookie": cookie})
        assert resp["statusCode"] == 302, resp["body"][-600:]
        return (http_client.request_count - http_before, counter.count("dynamodb"),
                login_gov.key_set.fetch_count - jwks_before)

    sign_in()  # the first sign-in links the account and warms the caches
    samples = [sign_in() for _ in range(runs)]
    idp_requests = max(s[0] for s in samples)
    ddb_requests = max(s[1] for s in samples)
    jwks = max(s[2] for s in samples)
    return [
        Figure("returning-user callback: requests to the identity provider", idp_requests,
               "≤ 2", idp_requests <= 2, f"worst of {runs}: the token exchange only"),
        Figure("returning-user callback: requests to DynamoDB", ddb_requests, "≤ 3",
               ddb_requests <= 3, "consume state, read sub claim, write session"),
        Figure("returning-user callback: JWKS fetches once warm", jwks, "0", jwks == 0),
    ]


SECTIONS = {
    "cold_start": cold_start,
    "returning_callback": returning_callback,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS))
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    stack = Stack()
    figures: list[Figure] = []
    try:
        for name, section in SECTIONS.items():
            if args.only and name not in args.only:
                continue
            print(f"… {name}", file=sys.stderr, flush=True)
            figures.extend(section(stack, args.runs))
    finally:
        stack.close()
    report = render(figures)
    print(report)
    if not args.only:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.md").write_text(report + "\n")
    return 0


def render(figures: list[Figure]) -> str:
    width = max(len(f.name) for f in figures)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# make bench — {when} — {platform.node()} ({os.cpu_count()} cores)", "",
             f"| {'figure':<{width}} | value | target | ok | detail |",
             f"|{'-' * (width + 2)}|-------|--------|----|--------|"]
    for f in figures:
        lines.append(f"| {f.name:<{width}} | {f.value} | {f.target} | "
                     f"{'yes' if f.ok else 'NO'} | {f.detail} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
