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
from pathlib import Path

from bench import console_search
from bench.common import Figure, call_counter, fresh_tables, percentile
from chalicelib import clock

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLIENT_ID = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-bench"
APP_BASE_URL = "http://127.0.0.1:8000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """moto server + local Login.gov in this process; the app's environment for children."""

    def __init__(self) -> None:
        from localdev.idp import LocalLoginGov, generate_rsa_key, private_pem, public_pem
        from localdev.moto_support import install_dynamodb_behaviour

        install_dynamodb_behaviour()
        from moto.server import ThreadedMotoServer

        self.moto_port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self.moto.start()
        idp_port = free_port()
        self.idp = LocalLoginGov(issuer=f"http://127.0.0.1:{idp_port}/")
        key = generate_rsa_key()
        self.idp.register_client(
            CLIENT_ID,
            public_pem(key),
            APP_BASE_URL + "/auth/callback",
            APP_BASE_URL + "/signed-out",
        )
        self.idp_server = self.idp.serve_in_thread(port=idp_port)
        self.env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.moto_port}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "TABLE_PREFIX": "bench-",
            "APP_BASE_URL": APP_BASE_URL,
            "LOGIN_GOV_ISSUER": self.idp.issuer,
            "LOGIN_GOV_CLIENT_ID": CLIENT_ID,
            "LOGIN_GOV_PRIVATE_KEY": private_pem(key),
            "HMAC_ROOT_KEY": "bench",
            "MAIL_SENDER": "no-reply@nrcme.example.com",
        }
        os.environ.update(self.env)
        from chalicelib import models

        models.use_table_prefix("bench-")
        for model in models.ALL_MODELS:
            if not model.exists():
                model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        # Mail goes through the outbox: its queues, and a sender SES (moto) accepts.
        import boto3

        from chalicelib.config import outbox_queue_name
        from localdev.outbox_worker import create_queues

        create_queues(outbox_queue_name())
        boto3.client("sesv2").create_email_identity(EmailIdentity=self.env["MAIL_SENDER"])

    def close(self) -> None:
        self.idp_server.shutdown()
        self.moto.stop()


# --- sections ---------------------------------------------------------------------------------

_PACKAGE_DIR = None  # a tempfile.TemporaryDirectory, once built_package() has run


def built_package() -> Path:
    """deployment.zip as `make package` builds it (PIP_NO_DEPS=1, then infra/add_bytecode.py),
    from a copy of the project; built once per bench run."""
    import shutil
    import tempfile

    global _PACKAGE_DIR
    if _PACKAGE_DIR is None:
        _PACKAGE_DIR = tempfile.TemporaryDirectory(prefix="bench-package-")
        tmp = Path(_PACKAGE_DIR.name)
        project = tmp / "project"
        shutil.copytree(
            ROOT,
            project,
            ignore=shutil.ignore_patterns(
                ".venv",
                ".git",
                "node_modules",
                ".local",
                "test-artifacts",
                "build",
                "bench",
                "tests",
                "__pycache__",
                "deployments",
                "deployed",
            ),
        )
        env = {**os.environ, "PIP_NO_DEPS": "1", "AWS_DEFAULT_REGION": "us-east-1"}
        env.pop("AWS_ENDPOINT_URL", None)
        subprocess.run(
            [
                str(Path(sys.executable).parent / "chalice"),
                "package",
                "--stage",
                "prod",
                "--merge-template",
                "infra/template.yaml",
                str(tmp / "out"),
            ],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [sys.executable, "infra/add_bytecode.py", str(tmp / "out" / "deployment.zip")],
            cwd=project,
            check=True,
            capture_output=True,
        )
    return Path(_PACKAGE_DIR.name) / "out" / "deployment.zip"


def lambda_task(into: Path, *, bytecode: bool) -> Path:
    """The zip unpacked as Lambda unpacks it into /var/task; without its bytecode if asked,
    which is how `chalice deploy` alone would ship it."""
    import zipfile

    with zipfile.ZipFile(built_package()) as zipped:
        for name in zipped.namelist():
            if bytecode or not name.endswith(".pyc"):
                zipped.extract(name, into)
    return into


def _time_to_answer(cmd: list[str], **kwargs) -> float:
    """Seconds from starting the process to its answer (its first line of output). A Lambda
    process lives on after its first answer, so its exit is no part of a cold start."""
    started = clock.monotonic()
    child = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    answer = child.stdout.readline()
    elapsed = clock.monotonic() - started
    rest, errors = child.communicate()
    assert child.returncode == 0 and answer.strip() in ("302", "200"), answer + rest + errors
    return elapsed


def cold_start(stack: Stack, runs: int) -> list[Figure]:
    """Fresh process: import app + first GET /login, vs import boto3 + client + one write.

    As on Lambda: the app and its packages are imported from the unpacked deployment zip,
    and nothing is written beside them (PYTHONDONTWRITEBYTECODE: /var/task is read-only), so
    whatever the zip lacks bytecode for is compiled on every cold start. boto3 comes from
    the virtualenv with its bytecode, as the runtime's does: the stricter baseline. A
    measure from the working tree, where __pycache__ persists between runs, is lower. Each
    run is timed to its answer, not to its exit (_time_to_answer).
    """
    import tempfile

    import boto3

    boto3.client("dynamodb").create_table(
        TableName="bench-baseline",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "flow_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "flow_id", "KeyType": "HASH"}],
    )
    env = {
        **os.environ,
        **stack.env,
        "BENCH_BASELINE_TABLE": "bench-baseline",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("PYTHONPATH", None)
    login = [sys.executable, str(ROOT / "bench" / "cold_start_login.py")]
    with tempfile.TemporaryDirectory() as tmp:
        compiled = lambda_task(Path(tmp) / "compiled", bytecode=True)
        sources = lambda_task(Path(tmp) / "sources", bytecode=False)
        commands = {
            "zip with bytecode": (login, {**env, "PYTHONPATH": str(compiled)}),
            "zip without bytecode": (login, {**env, "PYTHONPATH": str(sources)}),
            "baseline": ([sys.executable, str(ROOT / "bench" / "cold_start_baseline.py")], env),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd, cmd_env in commands.values():  # the OS file cache, warm for every one
            _time_to_answer(cmd, cwd=tmp, env=cmd_env)
        for _ in range(runs):
            for name, (cmd, cmd_env) in commands.items():
                times[name].append(_time_to_answer(cmd, cwd=tmp, env=cmd_env))
    ms = {name: statistics.median(values) * 1000 for name, values in times.items()}
    figures = []
    for name, target in (("zip with bytecode", 1.15), ("zip without bytecode", None)):
        ratio = ms[name] / ms["baseline"]
        figures.append(
            Figure(
                f"cold start: first GET /login ({name}) ÷ boto3 client + one write",
                round(ratio, 2),
                f"≤ {target:.2f}" if target else "(shown for comparison)",
                ratio <= target if target else True,
                f"median of {runs} alternating runs: {ms[name]:.0f} ms vs {ms['baseline']:.0f} ms",
            )
        )
    return figures


def lambda_event(
    method: str, path: str, headers: dict | None = None, body: str | None = None
) -> dict:
    """An API Gateway proxy event, as Lambda would receive it."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(path)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} or None
    headers = {"Host": "127.0.0.1:8000", **(headers or {})}
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": parts.path,
            "httpMethod": method,
            "path": parts.path,
            "requestId": "bench",
            "stage": "api",
        },
    }


class LambdaContext:
    aws_request_id = "bench"
    function_name = "nrcme-signin-bench"
    memory_limit_in_mb = 512

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def invoke(method: str, path: str, headers: dict | None = None, form: dict | None = None) -> dict:
    from urllib.parse import urlencode

    import app as app_module

    if form is not None:
        headers = {**(headers or {}), "Content-Type": "application/x-www-form-urlencoded"}
    return app_module.app(
        lambda_event(method, path, headers, urlencode(form) if form is not None else None),
        LambdaContext(),
    )


def first_cookie(response: dict) -> str:
    values = response.get("multiValueHeaders", {}).get("Set-Cookie") or [
        response["headers"]["Set-Cookie"]
    ]
    return values[0].split(";", 1)[0]


def authorize_at_idp(stack: Stack, authorization_url: str, emails: list[str]) -> str:
    """Fill in the local Login.gov's form; returns the app path it redirects back to."""
    import requests

    from localdev.html_forms import parse_forms

    form_page = requests.get(authorization_url, timeout=10)
    fields = parse_forms(form_page.text)[0]["fields"]
    fields.update({"emails": "\n".join(emails), "action": "continue"})
    back = requests.post(
        stack.idp.url("/openid_connect/authorize"), data=fields, allow_redirects=False, timeout=10
    ).headers["Location"]
    return back[len(APP_BASE_URL) :]


def returning_callback(stack: Stack, runs: int) -> list[Figure]:
    """Requests made by a warm container for a returning user's callback."""
    from chalicelib import http_client, login_gov
    from chalicelib.config import reset_settings
    from chalicelib.emails import normalize_email
    from chalicelib.models import Account, Claim

    reset_settings()
    email = "bench.returning@example.com"
    Account(
        "1999999999",
        first_name="Bench",
        last_name="User",
        role="medical_examiner",
        primary_email=email,
        primary_email_normalized=normalize_email(email),
    ).save()
    Claim(Claim.email_key(normalize_email(email)), nr_number="1999999999").save()
    counter = call_counter()

    def sign_in() -> tuple[int, int, int]:
        login = invoke("GET", "/login")
        cookie = first_cookie(login)
        path = authorize_at_idp(stack, login["headers"]["Location"], [email])
        counter.clear()
        http_before, jwks_before = http_client.request_count, login_gov.key_set.fetch_count
        resp = invoke("GET", path, {"Cookie": cookie})
        assert resp["statusCode"] == 302, resp["body"][-600:]
        return (
            http_client.request_count - http_before,
            counter.total("dynamodb"),
            login_gov.key_set.fetch_count - jwks_before,
            counter.total("sqs"),
        )

    sign_in()  # the first sign-in links the account and warms the caches
    samples = [sign_in() for _ in range(runs)]
    counter.uninstall()
    idp_requests = max(s[0] for s in samples)
    ddb_requests = max(s[1] for s in samples)
    jwks = max(s[2] for s in samples)
    sqs_requests = max(s[3] for s in samples)
    return [
        Figure(
            "returning-user callback: requests to the identity provider",
            idp_requests,
            "1",
            idp_requests == 1,
            f"worst of {runs}: the token exchange only",
        ),
        Figure(
            "returning-user callback: requests to DynamoDB",
            ddb_requests,
            "≤ 3",
            ddb_requests <= 3,
            "consume state, read sub claim, write session",
        ),
        Figure(
            "returning-user callback: requests to SQS",
            sqs_requests,
            "0",
            sqs_requests == 0,
            "a returning user is sent no mail",
        ),
        Figure("returning-user callback: JWKS fetches once warm", jwks, "0", jwks == 0),
    ]


def _recovery_session(stack: Stack, email: str) -> tuple[str, str]:
    """A sign-in whose Login.gov address matches nothing: its session cookie and CSRF token."""
    import re

    login = invoke("GET", "/login")
    path = authorize_at_idp(stack, login["headers"]["Location"], [email])
    callback = invoke("GET", path, {"Cookie": first_cookie(login)})
    assert callback["headers"]["Location"] == "/link/no-match", callback["body"][-400:]
    values = callback.get("multiValueHeaders", {}).get("Set-Cookie") or []
    cookie = next(v.split(";", 1)[0] for v in values if v.startswith("nr_session="))
    form = invoke("GET", "/link/recover", {"Cookie": cookie})
    assert form["statusCode"] == 200, form["body"][-400:]
    return cookie, re.search(r'name="csrf_token" value="([^"]+)"', form["body"]).group(1)


def mail_path(stack: Stack, runs: int) -> list[Figure]:
    """Requests that send mail only queue it (chalicelib.outbox), with the worker running
    beside them as in `make run`: a first sign-in with SES hanging vs healthy, and a
    recovery code sent to a registry address vs an unknown one, alternating."""
    import threading

    from botocore.exceptions import ReadTimeoutError

    from chalicelib import clients
    from chalicelib.config import reset_settings
    from chalicelib.emails import normalize_email
    from chalicelib.models import Account, Claim
    from localdev.outbox_worker import drain, serve_outbox

    reset_settings()
    hanging, released = threading.Event(), threading.Event()

    def hang(request, **_):  # SES accepts the connection and never answers in time
        if hanging.is_set():
            released.wait(2)
            raise ReadTimeoutError(endpoint_url=request.url)

    ses = clients.ses()
    ses.meta.events.register_first("before-send.sesv2.SendEmail", hang, unique_id="bench")
    stop = threading.Event()
    worker = serve_outbox(stop)
    samples = max(runs, 5) * 4

    def account(n: int, email: str) -> None:
        Account(
            f"18{n:08d}",
            first_name="Mail",
            last_name=f"Bench{n}",
            role="medical_examiner",
            primary_email=email,
            primary_email_normalized=normalize_email(email),
        ).save()
        Claim(Claim.email_key(normalize_email(email)), nr_number=f"18{n:08d}").save()

    first: dict[bool, list[float]] = {True: [], False: []}
    sends: dict[bool, list[float]] = {True: [], False: []}
    try:
        for i in range(samples):
            email = f"mail.first{i:04d}@example.com"
            account(i, email)
            login = invoke("GET", "/login")
            path = authorize_at_idp(stack, login["headers"]["Location"], [email])
            with_hang = i % 2 == 1
            (hanging.set if with_hang else hanging.clear)()
            started = clock.monotonic()
            resp = invoke("GET", path, {"Cookie": first_cookie(login)})
            first[with_hang].append(clock.monotonic() - started)
            assert resp["statusCode"] == 302 and resp["headers"]["Location"] == "/account", resp[
                "body"
            ][-400:]
        hanging.clear()
        for i in range(samples):
            known = i % 2 == 0
            address = (
                f"mail.known{i:04d}@example.com" if known else f"mail.unknown{i:04d}@example.com"
            )
            if known:
                account(10_000 + i, address)
            cookie, csrf = _recovery_session(stack, f"mail.stranger{i:04d}@example.org")
            started = clock.monotonic()
            resp = invoke(
                "POST",
                "/link/recover",
                {"Cookie": cookie},
                form={"csrf_token": csrf, "email": address},
            )
            sends[known].append(clock.monotonic() - started)
            assert resp["statusCode"] == 302, resp["body"][-400:]
    finally:
        released.set()
        stop.set()
        worker.join(10)
        ses.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="bench")
    drain(visibility_timeout=0)  # what SES refused while it hung is sent now
    p50 = statistics.median
    hang_ratio = p50(first[True]) / p50(first[False])
    send_ratio = p50(sends[True]) / p50(sends[False])
    return [
        Figure(
            "first sign-in callback p50: SES hanging ÷ SES healthy",
            round(hang_ratio, 2),
            "≤ 1.10",
            hang_ratio <= 1.10,
            f"{p50(first[True]) * 1000:.1f} ms vs {p50(first[False]) * 1000:.1f} ms, "
            f"{samples // 2} each, alternating; the worker meanwhile waits on SES",
        ),
        Figure(
            "recovery code send p50: registry address ÷ unknown address",
            round(send_ratio, 2),
            "0.95–1.05",
            0.95 <= send_ratio <= 1.05,
            f"{p50(sends[True]) * 1000:.1f} ms vs {p50(sends[False]) * 1000:.1f} ms, "
            f"{samples // 2} each, alternating",
        ),
    ]


def _run_stack():
    """Start exactly what `make run` starts; returns the process once it prints READY."""
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.run", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "LOGIN_GOV_", "TABLE_", "APP_"))
        },
    )
    ready = threading.Event()

    def pump():
        for line in proc.stdout:
            if line.strip() == "READY":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(180):
        proc.kill()
        raise RuntimeError("make run did not become ready")
    return proc


def _stop_stack(proc) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _import_into_make_run(emails: list[str]) -> None:
    """One active account per address (17xxxxxxxx), through the support desk's import, into
    the tables of the `make run` stack."""
    import csv
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "nr_number",
                "first_name",
                "last_name",
                "role",
                "primary_email",
                "secondary_email",
                "legacy_username",
                "status",
            ]
        )
        for i, email in enumerate(emails):
            writer.writerow(
                [
                    f"17{i:08d}",
                    "Load",
                    f"User{i}",
                    "medical_examiner",
                    email,
                    "",
                    f"load{i}",
                    "active",
                ]
            )
    local_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOGIN_GOV_", "TABLE_", "APP_"))
    }
    subprocess.run(
        [sys.executable, "manage.py", "--stage", "local", "import-accounts", f.name],
        cwd=ROOT,
        env=local_env,
        check=True,
        capture_output=True,
    )
    os.unlink(f.name)


def load(
    stack: Stack, runs: int, clients: int = 20, signins: int = 500, accounts: int = 200
) -> list[Figure]:
    """Concurrent simulated browsers against the `make run` stack, and a bare-script baseline.

    The first `accounts` sign-ins are first sign-ins (they link); the rest are returning
    users. The baseline makes the returning callback's raw requests itself — the token
    exchange (with a client assertion), then DynamoDB's update, get and put — against the
    same servers, alternating with the app's callbacks.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from localdev.html_forms import parse_forms

    app, idp = "http://127.0.0.1:8000", "http://127.0.0.1:8001"
    proc = _run_stack()
    try:
        emails = [f"load.user{i:04d}@example.com" for i in range(accounts)]
        _import_into_make_run(emails)

        results: list[tuple[str, float, float, bool]] = []
        lock = threading.Lock()

        def one_signin(i: int) -> None:
            email = emails[i % accounts]
            kind = "first" if i < accounts else "returning"
            session = requests.Session()
            ok = False
            started = clock.monotonic()
            callback_seconds = float("nan")
            try:
                login = session.get(app + "/login", allow_redirects=False, timeout=30)
                form = session.get(login.headers["Location"], timeout=30)
                fields = parse_forms(form.text)[0]["fields"]
                fields.update({"emails": email, "action": "continue"})
                back = session.post(
                    idp + "/openid_connect/authorize",
                    data=fields,
                    allow_redirects=False,
                    timeout=30,
                ).headers["Location"]
                t0 = clock.monotonic()
                callback = session.get(back, allow_redirects=False, timeout=30)
                callback_seconds = clock.monotonic() - t0
                page = session.get(app + "/account", timeout=30)
                ok = (
                    callback.status_code == 302
                    and page.status_code == 200
                    and "Registry number" in page.text
                )
            except requests.RequestException:
                ok = False
            with lock:
                results.append((kind, clock.monotonic() - started, callback_seconds, ok))

        began = clock.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one_signin, range(accounts)))  # first sign-ins, concurrently
            list(pool.map(one_signin, range(accounts, signins)))  # then returning users
        wall = clock.monotonic() - began
        errors = sum(1 for r in results if not r[3])
        callbacks = [r[2] for r in results if r[3]]
        returning = [r[2] for r in results if r[3] and r[0] == "returning"]

        app_p50, raw_p50 = _callback_vs_bare_script(app, idp, emails, runs * 5)
    finally:
        _stop_stack(proc)
    ratio = app_p50 / raw_p50
    return [
        Figure(
            f"load: sign-ins per second ({clients} clients, {signins} sign-ins)",
            round(len(results) / wall, 1),
            "report",
            True,
            f"{accounts} first + {signins - accounts} returning in {wall:.1f} s",
        ),
        Figure(
            "load: callback p50 / p95 (ms)",
            f"{percentile(callbacks, 0.5) * 1000:.0f} / {percentile(callbacks, 0.95) * 1000:.0f}",
            "report",
            True,
            f"returning only: {percentile(returning, 0.5) * 1000:.0f} / "
            f"{percentile(returning, 0.95) * 1000:.0f} ms",
        ),
        Figure("load: errors", errors, "0", errors == 0),
        Figure(
            "callback p50 ÷ the same raw requests from a bare script",
            round(ratio, 2),
            "≤ 1.3",
            ratio <= 1.3,
            f"{app_p50 * 1000:.1f} ms vs {raw_p50 * 1000:.1f} ms, returning user, "
            "one client, alternating",
        ),
    ]


def _sub_of(id_token: str) -> str:
    import base64

    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def _session_item(sub: str, now: int) -> dict:
    import secrets as pysecrets

    return {
        "flow_id": {"S": f"session#{pysecrets.token_hex(32)}"},
        "kind": {"S": "session"},
        "subject": {"S": sub},
        "nr_number": {"S": "1700000000"},
        "created_at": {"N": str(now)},
        "expires_at": {"N": str(now + 1800)},
        "expiry_bucket": {"S": "2099-01-01T00"},
        "absolute_expires_at": {"N": str(now)},
        "csrf_token": {"S": pysecrets.token_urlsafe(32)},
    }


def _callback_vs_bare_script(
    app: str, idp: str, emails: list[str], runs: int, *, between=None, all_times: bool = False
):
    """p50 of a returning user's callback vs p50 of its raw requests done directly
    (`all_times`: every sample instead; `between` runs once per pair, e.g. a third timing)."""
    import secrets as pysecrets

    import boto3
    import jwt
    import requests
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from localdev.html_forms import parse_forms

    # Loaded once, as the app does: parsing a PEM per request would flatter the app.
    key = load_pem_private_key((ROOT / ".local" / "login_gov_client_key.pem").read_bytes(), None)
    client_id = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-local"
    token_url = idp + "/api/openid_connect/token"
    ddb = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:5000",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    http = requests.Session()
    ddb.describe_table(TableName="nrcme-local-flows")  # connect once before timing

    def authorize(session, email) -> str:
        login = session.get(app + "/login", allow_redirects=False, timeout=30)
        fields = parse_forms(session.get(login.headers["Location"], timeout=30).text)[0]["fields"]
        fields.update({"emails": email, "action": "continue"})
        return session.post(
            idp + "/openid_connect/authorize", data=fields, allow_redirects=False, timeout=30
        ).headers["Location"]

    app_times, raw_times = [], []
    for i in range(runs):
        email = emails[i % len(emails)]
        browser = requests.Session()
        back = authorize(browser, email)
        t0 = clock.monotonic()
        resp = browser.get(back, allow_redirects=False, timeout=30)
        app_times.append(clock.monotonic() - t0)
        assert resp.status_code == 302, resp.status_code

        code = authorize(requests.Session(), email).split("code=", 1)[1].split("&", 1)[0]
        state_id = f"signin#{pysecrets.token_hex(32)}"
        ddb.put_item(
            TableName="nrcme-local-flows",
            Item={  # what /login stored, untimed
                "flow_id": {"S": state_id},
                "kind": {"S": "signin"},
                "nonce": {"S": "n" * 43},
                "browser_hash": {"S": "b" * 64},
                "return_to": {"S": "/account"},
                "expires_at": {"N": str(clock.epoch_seconds() + 600)},
                "expiry_bucket": {"S": "2099-01-01T00"},
                "created_at": {"N": "0"},
            },
        )
        t0 = clock.monotonic()
        now = clock.epoch_seconds()
        assertion = jwt.encode(
            {
                "iss": client_id,
                "sub": client_id,
                "aud": token_url,
                "jti": pysecrets.token_urlsafe(32),
                "iat": now,
                "exp": now + 300,
            },
            key,
            algorithm="RS256",
        )
        token = http.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
            timeout=30,
        )
        assert token.status_code == 200, token.text
        # The same three DynamoDB requests, shaped as the app sends them: consume a sign-in
        # state with its four conditions, read the sub claim, write a session.
        sub = _sub_of(token.json()["id_token"])
        ddb.update_item(
            TableName="nrcme-local-flows",
            Key={"flow_id": {"S": state_id}},
            UpdateExpression="SET #e = :now",
            ConditionExpression="attribute_exists(#f) AND #k = :k AND #e > :now AND #b = :b",
            ExpressionAttributeNames={
                "#e": "expires_at",
                "#f": "flow_id",
                "#k": "kind",
                "#b": "browser_hash",
            },
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":k": {"S": "signin"},
                ":b": {"S": "b" * 64},
            },
            ReturnValues="ALL_NEW",
        )
        ddb.get_item(
            TableName="nrcme-local-claims", Key={"claim": {"S": "sub#" + sub}}, ConsistentRead=True
        )
        ddb.put_item(
            TableName="nrcme-local-flows",
            Item=_session_item(sub, now),
            ConditionExpression="attribute_not_exists(flow_id)",
        )
        raw_times.append(clock.monotonic() - t0)
        if between is not None:
            between()
    if all_times:
        return app_times, raw_times
    return statistics.median(app_times), statistics.median(raw_times)


def _noop_chalice_local(port: int):
    """chalice local serving bench/noop_app: what a request costs chalice local itself."""
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "chalice"),
            "local",
            "--no-autoreload",
            "--port",
            str(port),
        ],
        cwd=ROOT / "bench" / "noop_app",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import requests

    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=1)
            return proc
        except requests.RequestException:
            clock.sleep(0.1)
    proc.kill()
    raise RuntimeError("the no-op chalice local did not start")


def callback_overhead(stack: Stack, runs: int, samples: int = 60) -> list[Figure]:
    """A returning user's callback through `make run` ÷ the same raw round trips: the token
    request with one RS256 client assertion, DynamoDB's update, get and put, and chalice
    local's own cost for one request (a no-op app), all measured alternately."""
    import requests

    app, idp = "http://127.0.0.1:8000", "http://127.0.0.1:8001"
    proc = _run_stack()
    noop_port = free_port()
    noop = _noop_chalice_local(noop_port)
    try:
        emails = [f"overhead.user{i:02d}@example.com" for i in range(5)]
        _import_into_make_run(emails)
        for email in emails:  # first sign-ins: link, so that every timed one is returning
            _callback_vs_bare_script(app, idp, [email], 1)
        noop_times = []
        session = requests.Session()

        def noop_once() -> None:
            t0 = clock.monotonic()
            session.get(f"http://127.0.0.1:{noop_port}/", allow_redirects=False, timeout=10)
            noop_times.append(clock.monotonic() - t0)

        app_times, raw_times = _callback_vs_bare_script(
            app, idp, emails, samples, between=noop_once, all_times=True
        )
    finally:
        os.killpg(noop.pid, 15)
        _stop_stack(proc)
    app_p50 = statistics.median(app_times)
    raw_p50 = statistics.median([r + n for r, n in zip(raw_times, noop_times, strict=True)])
    ratio = app_p50 / raw_p50
    return [
        Figure(
            "returning-user callback p50 ÷ its raw round trips (incl. one RS256 "
            "assertion and chalice local's own cost)",
            round(ratio, 3),
            "≤ 1.15",
            ratio <= 1.15,
            f"{app_p50 * 1000:.1f} ms vs {raw_p50 * 1000:.1f} ms "
            f"(raw {statistics.median(raw_times) * 1000:.1f} + chalice local "
            f"{statistics.median(noop_times) * 1000:.1f}); {samples} alternating runs",
        )
    ]


def cleanup(stack: Stack, runs: int) -> list[Figure]:
    """Items the cleanup reads ÷ items that had expired, with a large live table, at two sizes."""
    from chalicelib.cleanup import cleanup_expired_flows
    from chalicelib.models import Flow, Session, expiry_bucket

    figures = []
    for live, expired in ((2_000, 200), (8_000, 200)):
        fresh_tables(f"bench-cleanup-{live}-")
        now = clock.epoch_seconds()
        with Flow.batch_write() as batch:
            for i in range(live + expired):
                gone = i < expired
                expires = now - 60 - i if gone else now + 1800 + i
                batch.save(
                    Session(
                        f"session#{i:08d}",
                        subject=f"sub-{i}",
                        nr_number=None,
                        created_at=now - 3600,
                        expires_at=expires,
                        expiry_bucket=expiry_bucket(expires),
                        absolute_expires_at=expires,
                        csrf_token="x",
                    )
                )
        counter = call_counter()
        read = deleted = 0
        while True:
            summary = cleanup_expired_flows(batch_size=100)
            read += summary.items_read
            deleted += summary.deleted
            if not summary.more_remaining:
                break
        scans = counter.count("dynamodb")["Scan"]
        ratio = read / expired
        figures.append(
            Figure(
                f"cleanup: items read ÷ expired ({live:,} live items)",
                round(ratio, 2),
                "≤ 2, flat",
                ratio <= 2 and scans == 0 and deleted == expired,
                f"{read} read, {deleted} deleted, {expired} expired; {scans} scans",
            )
        )
        counter.uninstall()
    fresh_tables("bench-")
    return figures


def bulk_import(stack: Stack, runs: int, rows: int = 20_000) -> list[Figure]:
    """The registry sync at 20,000 rows: first import, unchanged re-import, 1% changed."""
    import io

    from supportdesk.registry_sync import import_accounts, validate_csv

    def export(changed: set[int]) -> io.StringIO:
        out = io.StringIO()
        out.write(
            "nr_number,first_name,last_name,role,primary_email,secondary_email,"
            "legacy_username,status\n"
        )
        for i in range(rows):
            secondary = f"home{i}@example.org" if i % 3 == 0 else ""
            primary = (
                f"examiner{i}.moved@example.com" if i in changed else f"examiner{i}@example.com"
            )
            first = f"First{i}x" if i in changed else f"First{i}"
            out.write(
                f"{3000000000 + i},{first},Last{i},medical_examiner,"
                f"{primary},{secondary},user{i},active\n"
            )
        out.seek(0)
        return out

    fresh_tables("bench-import-")
    counter = call_counter()
    try:
        began = clock.monotonic()
        first = import_accounts(validate_csv(export(set())))
        first_seconds = clock.monotonic() - began
        counter.clear()
        began = clock.monotonic()
        again = import_accounts(validate_csv(export(set())))
        again_seconds = clock.monotonic() - began
        unchanged_writes = sum(
            counter.count("dynamodb")[op]
            for op in (
                "TransactWriteItems",
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "BatchWriteItem",
            )
        )
        changed = set(range(0, rows, 100))  # 1%: a new primary and a new first name
        counter.clear()
        some = import_accounts(validate_csv(export(changed)))
        some_writes = sum(
            counter.count("dynamodb")[op]
            for op in (
                "TransactWriteItems",
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "BatchWriteItem",
            )
        )
    finally:
        counter.uninstall()
    fresh_tables("bench-")
    per_changed = some_writes / len(changed)
    return [
        Figure(
            "import 20,000 new rows: transactions ÷ accounts",
            round(first.transactions / rows, 3),
            "report",
            first.imported == rows,
            f"{first.transactions:,} TransactWriteItems, one per account; "
            f"{rows / first_seconds:.0f} rows/s (moto server)",
        ),
        Figure(
            "re-import of the unchanged 20,000 rows: write requests",
            unchanged_writes,
            "0",
            unchanged_writes == 0 and again.unchanged == rows,
            f"{rows / again_seconds:.0f} rows/s; {again.items_read:,} items read = "
            f"{again.items_read / rows:.2f} per row (accounts and their claims)",
        ),
        Figure(
            "re-import with 1% of rows changed: write requests ÷ changed accounts",
            round(per_changed, 3),
            "≤ 1.05",
            per_changed <= 1.05 and some.updated == len(changed),
            f"{some_writes} writes for {len(changed)} changed accounts",
        ),
    ]


def package_size(stack: Stack, runs: int) -> list[Figure]:
    """`make package`'s zip (PIP_NO_DEPS=1: botocore is in the runtime; with bytecode)."""
    size = built_package().stat().st_size
    return [
        Figure(
            "make package: deployment.zip (MB)",
            round(size / 1_000_000, 2),
            "≤ 10",
            size <= 10_000_000,
            "PIP_NO_DEPS=1, sources and bytecode, as `make package`/`make deploy` build it",
        )
    ]


def lifecycle_soak(stack: Stack, runs: int, examples: int = 120, steps: int = 50) -> list[Figure]:
    """The lifecycle state machine of `make test`, at random and much longer."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOGIN_GOV_", "TABLE_PREFIX", "APP_"))
    }
    env.update(
        {
            "LIFECYCLE_EXAMPLES": str(examples),
            "LIFECYCLE_STEPS": str(steps),
            "LIFECYCLE_RANDOM": "1",
        }
    )
    began = clock.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "tests/test_lifecycle_machine.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = clock.monotonic() - began
    tail = (result.stdout.strip().splitlines() or ["?"])[-1]
    return [
        Figure(
            f"lifecycle soak: {examples} random interleavings × {steps} steps",
            "pass" if result.returncode == 0 else "FAIL",
            "pass",
            result.returncode == 0,
            f"{seconds:.0f} s; {tail}",
        )
    ]


def campaign(stack: Stack, runs: int) -> list[Figure]:
    """The migration campaign on 93,000 accounts (bench/campaign.py)."""
    from bench.campaign import campaign as campaign_run

    return campaign_run(stack, runs)


SECTIONS = {
    "cold_start": cold_start,
    "returning_callback": returning_callback,
    "cleanup": cleanup,
    "bulk_import": bulk_import,
    "package_size": package_size,
    "load": load,
    "lifecycle_soak": lifecycle_soak,
    "callback_overhead": callback_overhead,
    "mail_path": mail_path,
    "campaign": campaign,
    "console_search": console_search.console_search,  # bench/console_search.py
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
    when = clock.utc_now().strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# make bench — {when} — {platform.node()} ({os.cpu_count()} cores)",
        "",
        f"| {'figure':<{width}} | value | target | ok | detail |",
        f"|{'-' * (width + 2)}|-------|--------|----|--------|",
    ]
    for f in figures:
        lines.append(
            f"| {f.name:<{width}} | {f.value} | {f.target} | "
            f"{'yes' if f.ok else 'NO'} | {f.detail} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
