"""`make run` against an outside OpenID provider, chosen by environment settings alone.

A second local Login.gov, started here on a free port with a client id and a key of its own,
stands for the Login.gov sandbox. `python -m localdev.run --quiet` runs beside the e2e
session's stack (free ports for the app, moto and the mailbox), must not start the stand-in
on 8001, and must let a person sign in through that provider and reach their linked demo
account. No browser: `requests` follows the redirects a browser would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from localdev.html_forms import parse_forms
from localdev.idp import LocalLoginGov, generate_rsa_key, private_pem, public_pem

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "urn:gov:gsa:openidconnect.profiles:sp:sso:dot:nrcme-outside-provider-test"
STAND_IN_PORT = 8001  # the local stage's issuer: the port make run's own stand-in takes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_ports(pid: int) -> set[int]:
    """TCP ports a process and its descendants listen on (Linux /proc): this run's own
    sockets, whatever else on the machine listens on the same ports."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    pids, queue = set(), [pid]
    while queue:
        current = queue.pop()
        pids.add(current)
        queue.extend(
            child for child, parent in parents.items() if parent == current and child not in pids
        )
    inodes = set()
    for current in pids:
        for fd in Path(f"/proc/{current}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def outside_provider():
    key = generate_rsa_key()
    port = free_port()
    provider = LocalLoginGov(issuer=f"http://127.0.0.1:{port}/")
    server = provider.serve_in_thread(port=port)
    yield provider, key
    server.shutdown()


def test_make_run_uses_an_outside_provider_by_settings_alone(outside_provider, tmp_path):
    provider, key = outside_provider
    app_port, moto_port, mailbox_port = free_port(), free_port(), free_port()
    app = f"http://127.0.0.1:{app_port}"
    provider.register_client(
        CLIENT_ID, public_pem(key), app + "/auth/callback", app + "/signed-out"
    )
    key_file = tmp_path / "login_gov_private_key.pem"
    key_file.write_text(private_pem(key))
    key_file.chmod(0o600)
    # Only environment settings, nothing else: the stage's values stay for the rest.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOGIN_GOV_", "TABLE_PREFIX", "APP_"))
    }
    env.update(
        {
            "APP_BASE_URL": app,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "LOCAL_MAILBOX_PORT": str(mailbox_port),
            "LOGIN_GOV_ISSUER": provider.issuer,
            "LOGIN_GOV_CLIENT_ID": CLIENT_ID,
            "LOGIN_GOV_PRIVATE_KEY_FILE": str(key_file),
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.run", "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump():
        for line in proc.stdout:
            output.append(line)
            if line.strip() == "READY":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        # Stop waiting as soon as the run exits (a setting it refused, a failed step).
        while not ready.wait(0.5) and proc.poll() is None and time.monotonic() < deadline:
            pass
        assert ready.is_set(), "".join(output)[-3000:]
        said = "".join(output)
        assert f"an outside provider, {provider.issuer}" in said
        assert f"redirect URI:  {app}/auth/callback" in said
        assert f"post-logout URI:    {app}/signed-out" in said
        ports = listening_ports(proc.pid)
        assert STAND_IN_PORT not in ports
        assert {app_port, moto_port, mailbox_port} <= ports, ports

        # A sign-in, as a browser makes it: /login -> the provider's form -> callback.
        browser = requests.Session()
        login = browser.get(app + "/login", allow_redirects=False, timeout=30)
        assert login.status_code == 302, login.text[-500:]
        authorize = login.headers["Location"]
        assert authorize.startswith(provider.url("/openid_connect/authorize?"))
        form = parse_forms(browser.get(authorize, timeout=30).text)[0]
        fields = dict(form["fields"], emails="dr.alice.moreno@example.com", action="continue")
        back = browser.post(
            provider.url(form["action"]), data=fields, allow_redirects=False, timeout=30
        )
        assert back.status_code == 302 and back.headers["Location"].startswith(
            app + "/auth/callback?"
        ), back.text[-500:]
        callback = browser.get(back.headers["Location"], allow_redirects=False, timeout=30)
        assert callback.status_code == 302 and callback.headers["Location"] == "/account", (
            callback.text[-500:]
        )
        account = browser.get(app + "/account", allow_redirects=False, timeout=30)
        assert account.status_code == 200 and "1000000001" in account.text
        # The provider saw this run's client, PKCE included (it refuses sign-ins without).
        assert provider.count("/api/openid_connect/token") == 1
        assert STAND_IN_PORT not in listening_ports(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    assert proc.returncode == 0, "".join(output)[-3000:]
    assert "Stopped the app, the mailbox, the outbox worker and moto." in "".join(output)
