"""`make run`: the whole service on one machine, with nothing from AWS or Login.gov.

Starts, in this process, an embedded moto server (DynamoDB, SES, CloudFormation) and the
local Login.gov; provisions the tables from infra/template.yaml and imports the demo
accounts through manage.py (the same commands ops use); then serves the app with
`chalice local --no-autoreload` (through localdev/chalice_local.py, which matches `{proxy+}`
routes as API Gateway does). Ctrl-C stops everything it started.

Settings are the local stage's (.chalice/config.json), and real environment variables win,
as for manage.py (the contract in docs/design.md): chalice local itself would put the stage's
values over the environment, so it is started through chalice_local_main below.
- LOGIN_GOV_ISSUER other than the stage's (the local Login.gov, 8001): the stand-in is not
  started and that provider is used, with LOGIN_GOV_CLIENT_ID and the key
  (LOGIN_GOV_PRIVATE_KEY, or LOGIN_GOV_PRIVATE_KEY_FILE: a path, make run only).
- Ports: the app's from APP_BASE_URL (8000), moto's from AWS_ENDPOINT_URL (5000), the
  mailbox's from LOCAL_MAILBOX_PORT (8025, make run only), the support console's from
  CONSOLE_BASE_URL (8002, make run only), the local Login.gov's from LOCAL_LOGIN_GOV_PORT
  (8001, make run only), so a second stack can run beside the usual one.

The support console (console/, its own Chalice project) is served too, with the local Login.gov:
a second `chalice local` with the console's local stage (console/.chalice/config.json), its
own Login.gov client registered at the stand-in (its own key in .local/), and three demo staff
added as ops add them (`manage.py staff add`), pending until they first sign in. With an
outside provider the console starts only when it has a client of its own there:
CONSOLE_LOGIN_GOV_CLIENT_ID and CONSOLE_LOGIN_GOV_PRIVATE_KEY_FILE (or _KEY, the PEM).
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
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib import clock

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_DIR = ROOT / "console"
STATE_DIR = ROOT / ".local"
DEMO_CSV = ROOT / "localdev" / "demo_accounts.csv"
DEFAULT_MAILBOX_PORT = 8025
HOST = "127.0.0.1"


def _local_stage_env() -> dict[str, str]:
    """The local stage's variables, as chalice gives them (top level, then the stage's)."""
    import json

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    values = dict(config.get("environment_variables") or {})
    values.update(config["stages"]["local"].get("environment_variables") or {})
    return {str(k): str(v) for k, v in values.items()}


class SetupError(Exception):
    """A setting make run cannot work with: one line on stderr, exit 2."""


@dataclass(frozen=True)
class Plan:
    """What this run starts, and the environment every part of it gets."""

    env: dict[str, str]
    app_url: str  # APP_BASE_URL, without a trailing slash
    app_port: int
    moto_port: int
    mailbox_port: int
    stand_in_port: int | None  # the local Login.gov's port; None: an outside provider

    @property
    def issuer(self) -> str:
        return self.env["LOGIN_GOV_ISSUER"]


def _port(url: str, name: str) -> int:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        raise SetupError(
            f"{name} must be http://127.0.0.1:PORT or http://localhost:PORT "
            f"for make run, got {url!r}"
        )
    try:
        return parts.port or 80
    except ValueError:
        raise SetupError(f"{name} has no usable port: {url!r}") from None


def plan_run(environ: Mapping[str, str], stage_env: Mapping[str, str]) -> Plan:
    """The stage's values with the real environment's on top; which provider; which ports."""
    env = {**stage_env, **environ}
    stand_in = env["LOGIN_GOV_ISSUER"] == stage_env["LOGIN_GOV_ISSUER"]
    moved = environ.get("LOCAL_LOGIN_GOV_PORT", "")
    if stand_in and moved:  # the stand-in on another port: a second stack beside make run's
        if not moved.isdigit():
            raise SetupError(f"LOCAL_LOGIN_GOV_PORT must be a port number, got {moved!r}")
        env["LOGIN_GOV_ISSUER"] = f"http://{HOST}:{moved}/"
    if not stand_in and not environ.get("LOGIN_GOV_CLIENT_ID"):
        raise SetupError(
            "LOGIN_GOV_ISSUER names an outside provider: set LOGIN_GOV_CLIENT_ID "
            "to the client id registered there"
        )
    if environ.get("LOGIN_GOV_PRIVATE_KEY"):
        key = environ["LOGIN_GOV_PRIVATE_KEY"]
    elif environ.get("LOGIN_GOV_PRIVATE_KEY_FILE"):
        path = Path(environ["LOGIN_GOV_PRIVATE_KEY_FILE"]).expanduser()
        try:
            key = path.read_text()
        except OSError as exc:
            raise SetupError(
                f"LOGIN_GOV_PRIVATE_KEY_FILE: cannot read {path}: {exc.strerror}"
            ) from None
    elif stand_in:
        key = _client_key_pem()
    else:
        raise SetupError(
            "LOGIN_GOV_ISSUER names an outside provider: set "
            "LOGIN_GOV_PRIVATE_KEY_FILE (or LOGIN_GOV_PRIVATE_KEY) to the private "
            "key whose certificate is registered there"
        )
    _check_private_key(key)
    env["LOGIN_GOV_PRIVATE_KEY"] = key
    env["PYTHONUNBUFFERED"] = "1"
    # A campaign under way: its deadline 90 days out (`manage.py --stage local campaign run`
    # mails the demo accounts; CAMPAIGN_DEADLINE= in the environment turns it off).
    if "CAMPAIGN_DEADLINE" not in environ:
        env["CAMPAIGN_DEADLINE"] = (clock.utc_now().date() + timedelta(days=90)).isoformat()
    app_url = env["APP_BASE_URL"].rstrip("/")
    mailbox = env.get("LOCAL_MAILBOX_PORT") or str(DEFAULT_MAILBOX_PORT)
    if not mailbox.isdigit():
        raise SetupError(f"LOCAL_MAILBOX_PORT must be a port number, got {mailbox!r}")
    return Plan(
        env=env,
        app_url=app_url,
        app_port=_port(app_url, "APP_BASE_URL"),
        moto_port=_port(env["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL"),
        mailbox_port=int(mailbox),
        stand_in_port=_port(env["LOGIN_GOV_ISSUER"], "LOGIN_GOV_ISSUER") if stand_in else None,
    )


def _check_private_key(pem: str) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise SetupError(
            f"the Login.gov private key is not an unencrypted PEM key: {exc}"
        ) from None


# --- the support console --------------------------------------------------------------------

# The demo staff of the CONTRACT (DESIGN.md): they sign in at the local Login.gov by email.
DEMO_STAFF = [
    ("viewer@desk.example.gov", "viewer", "searches and reads"),
    ("agent@desk.example.gov", "agent", "also the FAQ's support changes"),
    ("lead@desk.example.gov", "supervisor", "also clear-shared, lift-bar and the staff list"),
]
# What the examiners' app's settings would wrongly tell the console (it has its own).
_NOT_FOR_THE_CONSOLE = (
    "APP_BASE_URL",
    "LOGIN_GOV_CLIENT_ID",
    "LOGIN_GOV_PRIVATE_KEY",
    "LOGIN_GOV_PRIVATE_KEY_FILE",
    "LOGIN_GOV_PRIVATE_KEY_PARAMETER",
    "LOGIN_GOV_ACR_VALUES",
    "LOGIN_GOV_PROMPT",
)


def _console_stage_env() -> dict[str, str]:
    """The console's local stage variables (console/.chalice/config.json)."""
    import json

    config = json.loads((CONSOLE_DIR / ".chalice" / "config.json").read_text())
    values = dict(config.get("environment_variables") or {})
    values.update(config["stages"]["local"].get("environment_variables") or {})
    return {str(k): str(v) for k, v in values.items()}


@dataclass(frozen=True)
class ConsolePlan:
    env: dict[str, str]
    url: str  # CONSOLE_BASE_URL, without a trailing slash
    port: int

    @property
    def client_id(self) -> str:
        return self.env["LOGIN_GOV_CLIENT_ID"]


def plan_console(
    plan: Plan, environ: Mapping[str, str], console_env: Mapping[str, str]
) -> ConsolePlan | None:
    """The console's run: its local stage's values; the stack's moto, tables and Login.gov;
    its own base URL (CONSOLE_BASE_URL), client and key. None with an outside provider for
    which no console client is given (CONSOLE_LOGIN_GOV_CLIENT_ID)."""
    if plan.stand_in_port is None:
        if not environ.get("CONSOLE_LOGIN_GOV_CLIENT_ID"):
            return None
        key = environ.get("CONSOLE_LOGIN_GOV_PRIVATE_KEY") or _read_key_file(
            environ.get("CONSOLE_LOGIN_GOV_PRIVATE_KEY_FILE"), "CONSOLE_LOGIN_GOV_PRIVATE_KEY_FILE"
        )
        _check_private_key(key)
    else:
        key = _client_key_pem("desk_login_gov_client_key.pem")
    env = {k: v for k, v in environ.items() if k not in _NOT_FOR_THE_CONSOLE}
    env.update(console_env)
    for shared in ("AWS_ENDPOINT_URL", "TABLE_PREFIX", "LOGIN_GOV_ISSUER", "PYTHONUNBUFFERED"):
        env[shared] = plan.env[shared]
    if "CAMPAIGN_DEADLINE" in plan.env:  # the report projects against the deadline mailed
        env["CAMPAIGN_DEADLINE"] = plan.env["CAMPAIGN_DEADLINE"]
    env.update({k: v for k, v in environ.items() if k.startswith("DESK_")})  # real env wins
    url = (environ.get("CONSOLE_BASE_URL") or console_env["APP_BASE_URL"]).rstrip("/")
    env["APP_BASE_URL"] = url
    env["LOGIN_GOV_PRIVATE_KEY"] = key
    if plan.stand_in_port is None:
        env["LOGIN_GOV_CLIENT_ID"] = environ["CONSOLE_LOGIN_GOV_CLIENT_ID"]
    port = _port(url, "CONSOLE_BASE_URL")
    taken = {plan.app_port, plan.moto_port, plan.mailbox_port, plan.stand_in_port}
    if port in taken:
        raise SetupError(f"CONSOLE_BASE_URL's port {port} is taken by another part of make run")
    return ConsolePlan(env=env, url=url, port=port)


def _read_key_file(name: str | None, setting: str) -> str:
    if not name:
        raise SetupError(
            f"CONSOLE_LOGIN_GOV_CLIENT_ID is set: set {setting} (or "
            "CONSOLE_LOGIN_GOV_PRIVATE_KEY) to the console's private key too"
        )
    path = Path(name).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise SetupError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _seed_staff(env: dict) -> None:
    """The demo staff, added as ops add them: pending until their first console sign-in."""
    for email, role, _ in DEMO_STAFF:
        _manage(
            "staff",
            "add",
            email,
            "--role",
            role,
            "--actor",
            "make-run",
            "--reason",
            "demo",
            env=env,
            quiet=True,
        )
    print(f"Demo: {len(DEMO_STAFF)} support console staff added (manage.py staff add).")


def _client_key_pem(name: str = "login_gov_client_key.pem") -> str:
    """A private_key_jwt key for the local stage (the app's, or the console's): generated
    once, kept in .local/."""
    from localdev.idp import generate_rsa_key, private_pem

    STATE_DIR.mkdir(exist_ok=True)
    path = STATE_DIR / name
    if not path.exists():
        path.write_text(private_pem(generate_rsa_key()))
        path.chmod(0o600)
    return path.read_text()


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = clock.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if clock.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start") from None
            clock.sleep(0.2)


def _manage(*args: str, env: dict, quiet: bool = False) -> None:
    # quiet: the command's own output names addresses; the desk wants that, a log does not.
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "--stage", "local", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=quiet,
    )


def _seed_demo(env: dict) -> None:
    """The demo's history, made with the commands ops and support use: the registry's
    export, two support corrections, then the next nightly import (which keeps them)."""
    STATE_DIR.mkdir(exist_ok=True)
    report = str(STATE_DIR / "demo_import_rejects.csv")
    _manage("import-accounts", str(DEMO_CSV), "--reject-report", report, env=env)
    # Ivan's office address was on June's account too: support gives him his own, which
    # leaves the office address once-shared on June's account.
    _manage(
        "set-email",
        "1000000011",
        "--primary",
        "ivan.petrov@example.com",
        "--reason",
        "demo: office address shared with 1000000012",
        env=env,
        quiet=True,
    )
    # Jon's .gov primary was changed here (the FAQ's advice); the registry never learnt.
    _manage(
        "set-email",
        "1000000013",
        "--primary",
        "jon.reyes@example.net",
        "--reason",
        "demo: moved off a .gov address",
        env=env,
        quiet=True,
    )
    print("Demo: support corrected the addresses of 1000000011 and 1000000013 (set-email).")
    _manage("import-accounts", str(DEMO_CSV), "--reject-report", report, env=env)


# What each demo account shows: the emails to type at the local Login.gov, and what happens.
DEMO_NOTES = [
    ("1000000001", "dr.alice.moreno@example.com", "links by its primary email"),
    ("1000000002", "bashir.okafor.md@example.com", "links by its secondary email"),
    (
        "1000000003",
        "carmen.lee@fmcsa.dot.gov",
        "links; the account page advises leaving the .gov address",
    ),
    (
        "1000000010",
        "dana.personal@example.net",
        "no match: recover with a code sent to dana.ruiz@va.gov, then change that .gov primary",
    ),
    ("1000000004", "d.ivanov@example.com", "disabled: refused"),
    (
        "1000000005",
        "eve.walsh@example.org",
        "removed: told the registry account is no longer active (contact support)",
    ),
    (
        "1000000006",
        "shared.office@example.com",
        "on 1000000006 and 1000000007: shared, links nobody (contact support)",
    ),
    ("1000000007", "grace.kim@example.org", "links 1000000007 by its own secondary"),
    (
        "1000000012",
        "front.desk@clinic.example.com",
        "once-shared on June Park's account: links nobody until support runs clear-shared",
    ),
    ("1000000011", "ivan.petrov@example.com", "links Ivan (support corrected his address)"),
    (
        "1000000013",
        "jon.reyes@example.net",
        "links Jon: his primary was changed here, and the re-import kept it "
        "(jon.reyes@cdc.gov now matches nothing)",
    ),
    (
        "1000000008",
        "hana.sato@example.com + d.ivanov@example.com",
        "together: emails of two accounts, links neither",
    ),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="less output (tests)")
    args = parser.parse_args(argv)

    try:
        plan = plan_run(os.environ, _local_stage_env())
        console = plan_console(plan, os.environ, _console_stage_env())
    except SetupError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    env = plan.env
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "TABLE_"))})

    from moto.server import ThreadedMotoServer

    from localdev.moto_support import install_dynamodb_behaviour

    install_dynamodb_behaviour()
    # The in-process servers' access logs would print codes and states from query strings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address=HOST, port=plan.moto_port, verbose=False)
    moto.start()
    stopping = threading.Event()
    servers = []
    chalice = None
    desk = None
    try:
        _wait_for(f"http://{HOST}:{plan.moto_port}/moto-api/")
        _manage("create-tables", env=env)
        _seed_demo(env)
        if console is not None:
            _seed_staff(env)
        _verify_mail_sender(env)

        if plan.stand_in_port is not None:
            servers.append(_start_stand_in(plan, console))
        mailbox = _start_mailbox(plan.mailbox_port)
        if mailbox is not None:
            servers.append(mailbox)
        # The outbox's worker (the send_queued_mail Lambda in AWS), in this process, with
        # the environment `chalice local` gets.
        os.environ.update(env)
        from localdev.outbox_worker import serve_outbox

        serve_outbox(stopping)

        chalice = _chalice_local([], plan.app_port, env)
        if console is not None:
            # The support console: its own Chalice project, with its own environment.
            desk = _chalice_local(["--project-dir", str(CONSOLE_DIR)], console.port, console.env)
        _wait_for(f"http://{HOST}:{plan.app_port}/")
        if console is not None:
            _wait_for(f"http://{HOST}:{console.port}/")
        if args.quiet:
            print(
                "\n".join(_provider_lines(plan) + _console_lines(console) + ["READY"]), flush=True
            )
        else:
            _print_banner(plan, mailbox is not None, console)

        def _stop(*_):
            stopping.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stopping.is_set():
            if chalice.poll() is not None or (desk is not None and desk.poll() is not None):
                print("chalice local exited", file=sys.stderr)
                return 1
            stopping.wait(0.5)
        return 0
    finally:
        for process in (chalice, desk):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        for server in servers:
            server.shutdown()
        moto.stop()
        local_login_gov = "the local Login.gov, " if plan.stand_in_port is not None else ""
        console_too = "the support console, " if console is not None else ""
        print(
            f"Stopped the app, {console_too}{local_login_gov}the mailbox, the outbox worker "
            "and moto."
        )


def _chalice_local(project: list[str], port: int, env: dict) -> subprocess.Popen:
    """chalice local, with API Gateway's greedy {proxy+} (localdev/chalice_local.py) and this
    environment over the stage's values (chalice_local_main); its output relayed, redacted."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHALICE_LOCAL,
            *project,
            "local",
            "--no-autoreload",
            "--stage",
            "local",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    threading.Thread(target=_relay_redacted, args=(process.stdout,), daemon=True).start()
    return process


def _start_stand_in(plan: Plan, console: ConsolePlan | None = None):
    """The local Login.gov on the stage issuer's port, with the app registered as a client:
    its key's public half, and this run's redirect and post-logout URIs; the support
    console as a client of its own, likewise."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from localdev.idp import LocalLoginGov, public_pem

    idp = LocalLoginGov(issuer=plan.issuer)
    clients = [(plan.env, plan.app_url)] + ([(console.env, console.url)] if console else [])
    for client_env, url in clients:
        client_key = load_pem_private_key(client_env["LOGIN_GOV_PRIVATE_KEY"].encode(), None)
        idp.register_client(
            client_env["LOGIN_GOV_CLIENT_ID"],
            public_pem(client_key),
            url + "/auth/callback",
            url + "/signed-out",
        )
    return idp.serve_in_thread(HOST, plan.stand_in_port)


# The child's command: chalice local through localdev/chalice_local.py, environment first.
CHALICE_LOCAL = "from localdev import run; raise SystemExit(run.chalice_local_main())"


def chalice_local_main() -> int:
    """`chalice local` (localdev/chalice_local.py) with this process's environment winning
    over the stage's variables. Chalice loads a stage's variables over os.environ just
    before it imports app.py; make run has already merged them under the real environment
    (plan_run), so every variable this process has keeps its value."""
    from chalice.cli.factory import CLIFactory

    from localdev import chalice_local

    load_chalice_app = CLIFactory.load_chalice_app

    def load_with_the_environment_winning(self, environment_variables=None, *args, **kwargs):
        if environment_variables is not None:
            environment_variables = {
                name: os.environ.get(name, value) for name, value in environment_variables.items()
            }
        return load_chalice_app(self, environment_variables, *args, **kwargs)

    CLIFactory.load_chalice_app = load_with_the_environment_winning
    return chalice_local.main()


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


def _start_mailbox(port: int):
    try:
        from localdev.mailbox import serve_mailbox
    except ImportError:
        return None
    return serve_mailbox(HOST, port)


def _provider_lines(plan: Plan) -> list[str]:
    """Which Login.gov this run uses, and what to register there (no secrets)."""
    if plan.stand_in_port is not None:
        return [f"Login.gov: the local stand-in, {plan.issuer} (started by this run)"]
    return [
        f"Login.gov: an outside provider, {plan.issuer} (the local stand-in is not started)",
        f"  client id:                 {plan.env['LOGIN_GOV_CLIENT_ID']}",
        f"  register as redirect URI:  {plan.app_url}/auth/callback",
        f"  and as post-logout URI:    {plan.app_url}/signed-out",
    ]


def _console_lines(console: ConsolePlan | None, plan: Plan | None = None) -> list[str]:
    if console is None:
        return [
            "Support console: not started (it needs the local Login.gov, or a console "
            "client of its own: CONSOLE_LOGIN_GOV_CLIENT_ID)"
        ]
    lines = [f"Support console: {console.url}"]
    if plan is not None and plan.stand_in_port is None:
        lines += [
            f"  its client id:             {console.client_id}",
            f"  register as redirect URI:  {console.url}/auth/callback",
            f"  and as post-logout URI:    {console.url}/signed-out",
        ]
    return lines


def _print_banner(plan: Plan, with_mailbox: bool, console: ConsolePlan | None = None) -> None:
    lines = ["", f"  National Registry sign-in is running at {plan.app_url}"]
    lines += [f"  {line}" for line in _console_lines(console, plan)]
    lines += [f"  {line}" for line in _provider_lines(plan)]
    if with_mailbox:
        lines.append(
            f"  Local mailbox:     http://{HOST}:{plan.mailbox_port}/  (one-time codes and notices)"
        )
    if plan.stand_in_port is not None:
        lines += [
            "  (at the local Login.gov, type any email; same emails, same identity)",
            "",
            "  Demo registry accounts (sign in at the local Login.gov with these emails):",
        ]
        for number, emails, note in DEMO_NOTES:
            lines.append(f"    {number}  {emails}")
            lines.append(f"                {note}")
        lines += ["    any other email   no match: link with a code sent to a registry email"]
    else:
        lines += [
            "",
            "  Sign in with your account at that provider. Unless its email is a",
            '  demo account\'s, you land on "no match": link a demo account (e.g.',
            "  1000000001, dr.alice.moreno@example.com) with the code sent there,",
            "  read in the local mailbox.",
        ]
    deadline = plan.env.get("CAMPAIGN_DEADLINE")
    if deadline:
        # manage.py reads the stage's file, which holds no deadline: pass this run's.
        lines += [
            "",
            f"  Migration campaign: deadline {deadline}; mail the never-linked accounts with",
            f"    CAMPAIGN_DEADLINE={deadline} .venv/bin/python manage.py --stage local "
            "campaign run",
        ]
    if console is not None:
        lines += ["", f"  Support console staff (sign in at {console.url} with these emails):"]
        for email, role, note in DEMO_STAFF:
            lines.append(f"    {email:<26}  {role}: {note}")
    lines += ["", "  Ctrl-C stops everything.", "READY", ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
