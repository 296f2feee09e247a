"""`make run`: the whole service on one machine, with nothing from AWS or Login.gov.

Starts, in this process, an embedded moto server (DynamoDB, SES, CloudFormation) and the
local Login.gov; provisions the tables from infra/template.yaml and imports the demo
accounts through manage.py (the same commands ops use); then serves the app with
`chalice local --no-autoreload` (through localdev/chalice_local.py, which matches `{proxy+}`
routes as API Gateway does). Ctrl-C stops everything it started.

Ports are fixed because the local stage in .chalice/config.json names them:
app 8000, local Login.gov 8001, moto 5000, local mailbox 8025.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local"
DEMO_CSV = ROOT / "localdev" / "demo_accounts.csv"
APP_PORT, IDP_PORT, MOTO_PORT, MAILBOX_PORT = 8000, 8001, 5000, 8025
HOST = "127.0.0.1"
APP_URL = f"http://{HOST}:{APP_PORT}"
CLIENT_ID = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-local"


def _local_stage_env() -> dict[str, str]:
    import json

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return dict(config["stages"]["local"].get("environment_variables", {}))


def _client_key_pem() -> str:
    """The app's private_key_jwt key for the local stage: generated once, kept in .local/."""
    from localdev.idp import generate_rsa_key, private_pem

    STATE_DIR.mkdir(exist_ok=True)
    path = STATE_DIR / "login_gov_client_key.pem"
    if not path.exists():
        path.write_text(private_pem(generate_rsa_key()))
        path.chmod(0o600)
    return path.read_text()


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start")
            time.sleep(0.2)


def _manage(*args: str, env: dict, quiet: bool = False) -> None:
    # quiet: the command's own output names addresses; the desk wants that, a log does not.
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "--stage", "local", *args],
                   cwd=ROOT, env=env, check=True, capture_output=quiet)


def _seed_demo(env: dict) -> None:
    """The demo's history, made with the commands ops and support use: the registry's
    export, two support corrections, then the next nightly import (which keeps them)."""
    report = str(STATE_DIR / "demo_import_rejects.csv")
    _manage("import-accounts", str(DEMO_CSV), "--reject-report", report, env=env)
    # Ivan's office address was on June's account too: support gives him his own, which
    # leaves the office address once-shared on June's account.
    _manage("set-email", "1000000011", "--primary", "ivan.petrov@example.com",
            "--reason", "demo: office address shared with 1000000012", env=env, quiet=True)
    # Jon's .gov primary was changed here (the FAQ's advice); the registry never learnt.
    _manage("set-email", "1000000013", "--primary", "jon.reyes@example.net",
            "--reason", "demo: moved off a .gov address", env=env, quiet=True)
    print("Demo: support corrected the addresses of 1000000011 and 1000000013 (set-email).")
    _manage("import-accounts", str(DEMO_CSV), "--reject-report", report, env=env)


# What each demo account shows: the emails to type at the local Login.gov, and what happens.
DEMO_NOTES = [
    ("1000000001", "dr.alice.moreno@example.com", "links by its primary email"),
    ("1000000002", "bashir.okafor.md@example.com", "links by its secondary email"),
    ("1000000003", "carmen.lee@fmcsa.dot.gov",
     "links; the account page advises leaving the .gov address"),
    ("1000000010", "dana.personal@example.net",
     "no match: recover with a code sent to dana.ruiz@va.gov, then change that .gov primary"),
    ("1000000004", "d.ivanov@example.com", "disabled: refused"),
    ("1000000005", "eve.walsh@example.org",
     "removed: a removed account holds no address, so it matches nothing (no match)"),
    ("1000000006", "shared.office@example.com",
     "on 1000000006 and 1000000007: shared, links nobody (contact support)"),
    ("1000000007", "grace.kim@example.org", "links 1000000007 by its own secondary"),
    ("1000000012", "front.desk@clinic.example.com",
     "once-shared on June Park's account: links nobody until support runs clear-shared"),
    ("1000000011", "ivan.petrov@example.com", "links Ivan (support corrected his address)"),
    ("1000000013", "jon.reyes@example.net",
     "links Jon: his primary was changed here, and the re-import kept it "
     "(jon.reyes@cdc.gov now matches nothing)"),
    ("1000000008", "hana.sato@example.com + d.ivanov@example.com",
     "together: emails of two accounts, links neither"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="less output (tests)")
    args = parser.parse_args(argv)

    stage_env = _local_stage_env()
    env = {**os.environ, **stage_env, "LOGIN_GOV_PRIVATE_KEY": _client_key_pem(),
           "PYTHONUNBUFFERED": "1"}
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "TABLE_"))})

    from moto.server import ThreadedMotoServer

    from localdev.idp import LocalLoginGov, public_pem
    from localdev.moto_support import serialize_dynamodb_writes

    serialize_dynamodb_writes()
    # The in-process servers' access logs would print codes and states from query strings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address=HOST, port=MOTO_PORT, verbose=False)
    moto.start()
    stopping = threading.Event()
    servers = []
    chalice = None
    try:
        _wait_for(f"http://{HOST}:{MOTO_PORT}/moto-api/")
        _manage("create-tables", env=env)
        _seed_demo(env)
        _verify_mail_sender(env)

        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        idp = LocalLoginGov(issuer=stage_env["LOGIN_GOV_ISSUER"])
        client_key = load_pem_private_key(env["LOGIN_GOV_PRIVATE_KEY"].encode(), None)
        idp.register_client(stage_env["LOGIN_GOV_CLIENT_ID"], public_pem(client_key),
                            APP_URL + "/auth/callback", APP_URL + "/signed-out")
        servers.append(idp.serve_in_thread(HOST, IDP_PORT))
        mailbox = _start_mailbox()
        if mailbox is not None:
            servers.append(mailbox)
        # The outbox's worker (the send_queued_mail Lambda in AWS), in this process, with
        # the environment `chalice local` gets (the stage's values win, as they do there).
        os.environ.update(env)
        from localdev.outbox_worker import serve_outbox

        serve_outbox(stopping)

        chalice = subprocess.Popen(
            # chalice local, with API Gateway's greedy {proxy+} (localdev/chalice_local.py).
            [sys.executable, "-m", "localdev.chalice_local", "local", "--no-autoreload",
             "--stage", "local", "--host", HOST, "--port", str(APP_PORT)],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=_relay_redacted, args=(chalice.stdout,), daemon=True).start()
        _wait_for(APP_URL + "/")
        if args.quiet:
            print("READY", flush=True)
        else:
            _print_banner(mailbox is not None)

        def _stop(*_):
            stopping.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stopping.is_set():
            if chalice.poll() is not None:
                print("chalice local exited", file=sys.stderr)
                return 1
            stopping.wait(0.5)
        return 0
    finally:
        if chalice is not None and chalice.poll() is None:
            os.killpg(chalice.pid, signal.SIGTERM)
            try:
                chalice.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(chalice.pid, signal.SIGKILL)
        for server in servers:
            server.shutdown()
        moto.stop()
        print("Stopped the app, the local Login.gov, the mailbox, the outbox worker and moto.")


# chalice local's access log prints whole request lines; codes and states live in the query.
_REQUEST_QUERY = re.compile(r'("[A-Z]+ [^ ?"]*)\?[^ "]*')


def _relay_redacted(stream) -> None:
    """Copy chalice local's output to ours with query strings cut from request lines."""
    for line in stream:
        sys.stdout.write(_REQUEST_QUERY.sub(r"\1?[redacted]", line))
        sys.stdout.flush()


def _verify_mail_sender(env: dict) -> None:
    """SES (moto too) sends only from a verified identity."""
    import boto3

    sender = env.get("MAIL_SENDER", "no-reply@nrcme.example.gov")
    boto3.client("sesv2").create_email_identity(EmailIdentity=sender)


def _start_mailbox():
    try:
        from localdev.mailbox import serve_mailbox
    except ImportError:
        return None
    return serve_mailbox(HOST, MAILBOX_PORT)


def _print_banner(with_mailbox: bool) -> None:
    lines = [
        "",
        f"  National Registry sign-in is running at {APP_URL}",
        f"  Local Login.gov:   http://{HOST}:{IDP_PORT}/  (type any email; same emails, same identity)",
    ]
    if with_mailbox:
        lines.append(f"  Local mailbox:     http://{HOST}:{MAILBOX_PORT}/  (one-time codes and notices)")
    lines += ["", "  Demo registry accounts (sign in at the local Login.gov with these emails):"]
    for number, emails, note in DEMO_NOTES:
        lines.append(f"    {number}  {emails}")
        lines.append(f"                {note}")
    lines += ["    any other email   no match: link with a code sent to a registry email",
              "", "  Ctrl-C stops everything.", "READY", ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
