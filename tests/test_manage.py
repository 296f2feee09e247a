"""The support CLI through manage.main(argv): stage config, commands, output, exit codes."""

from __future__ import annotations

import json
import os
import re
import sys
import types
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

import manage
from chalicelib import sessions
from chalicelib.models import Account, AuditEvent, Challenge, Claim, Flow, expiry_bucket
from supportdesk import desk as support
from tests.support.accounts import csv_row, csv_text, link, make_account, make_flow
from tests.support.desk import run_json

# --- stage environment ------------------------------------------------------------------------


def test_stage_values_fill_in_but_real_environment_variables_win(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "environment_variables": {"NRCME_T_GLOBAL": "global", "NRCME_T_BOTH": "global"},
                "stages": {
                    "dev": {
                        "environment_variables": {"NRCME_T_BOTH": "stage", "NRCME_T_REAL": "stage"}
                    }
                },
            }
        )
    )
    for name in ("NRCME_T_GLOBAL", "NRCME_T_BOTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NRCME_T_REAL", "real")
    applied = manage.apply_stage_environment("dev", path)
    assert sorted(applied) == ["NRCME_T_BOTH", "NRCME_T_GLOBAL"]
    assert os.environ["NRCME_T_GLOBAL"] == "global"
    assert os.environ["NRCME_T_BOTH"] == "stage"  # the stage overrides the top level
    assert os.environ["NRCME_T_REAL"] == "real"  # the real environment overrides both


def test_a_missing_config_or_unknown_stage_is_a_clear_usage_error(tmp_path, stage_config, capsys):
    assert manage.main(["--stage", "dev", "--config", str(tmp_path / "nope.json"), "report"]) == 2
    assert "not found" in capsys.readouterr().err
    assert manage.main(["--stage", "staging", "--config", str(stage_config), "report"]) == 2
    assert "stage 'staging' is not in" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    assert manage.main(["find", "x"]) == 2  # no --stage
    assert manage.main(["--stage", "test", "frobnicate"]) == 2  # unknown command
    assert manage.main(["--stage", "test", "unlink", "1000000001"]) == 2  # no --reason
    capsys.readouterr()


# --- find -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["dr.alice@example.com", "  DR.Alice@EXAMPLE.com ", "alice.home@example.org", "1000000001"],
)
def test_find_by_number_or_any_email_spelling(cli, query):
    make_account("1000000001", "Dr.Alice@example.com", "alice.home@example.org")
    code, found, _ = run_json(cli, "find", query)
    assert code == 0 and len(found) == 1
    view = found[0]
    assert view["nr_number"] == "1000000001"
    assert view["primary_email"] == "Dr.Alice@example.com"
    assert view["primary_email_claim"] == view["secondary_email_claim"] == "ok"
    assert view["linked"] is False and view["linked_sub"] is None


def test_find_shows_link_username_and_recent_events(cli):
    make_account("1000000002", "bob@example.com", legacy_username="bob_legacy")
    link("1000000002", "8d3c9a56-0000-4000-8000-000000000002")
    code, out, _ = cli("find", "bob@example.com")
    assert code == 0
    assert "8d3c9a56-0000-4000-8000-000000000002" in out  # raw sub, for Login.gov support
    assert "bob_legacy" in out and "identity_linked" in out
    _, found, _ = run_json(cli, "find", "1000000002")
    view = found[0]
    assert view["legacy_username_retired"] is True and view["linked_at"]
    assert [e["event"] for e in view["recent_events"]] == ["identity_linked"]


def test_find_returns_at_most_ten_recent_events_newest_first(cli):
    from chalicelib.audit import audit_event

    make_account("1000000003", "carol@example.com")
    for i in range(12):
        event = audit_event("1000000003", f"event_{i:02d}", actor="test")
        event.at_event = f"2030-01-01T00:00:{i:02d}.000000Z#event_{i:02d}#x"
        event.save()
    _, found, _ = run_json(cli, "find", "1000000003")
    assert [e["event"] for e in found[0]["recent_events"]] == [
        f"event_{i:02d}" for i in range(11, 1, -1)
    ]


def test_find_not_found_and_bad_input_exit_codes(cli):
    code, _, err = cli("find", "nobody@example.com")
    assert code == 1 and "no account lists this email" in err
    assert cli("find", "9999999999")[0] == 1
    assert cli("find", "12345")[0] == 2
    assert cli("find", "not an email")[0] == 2


def test_find_a_shared_email_shows_every_account_and_how_it_stands(cli):
    make_account("1000000004", "shared@example.com")
    make_account("1000000005", "own@example.com", "Shared@Example.com")
    code, found, _ = run_json(cli, "find", "shared@example.com")
    assert code == 0
    assert [v["nr_number"] for v in found] == ["1000000004", "1000000005"]
    assert found[0]["primary_email_claim"].startswith("shared with 1000000005")
    assert found[1]["secondary_email_claim"].startswith("shared with 1000000004")
    assert found[1]["primary_email_claim"] == "ok"


def test_find_with_scan_finds_an_address_whose_claim_is_missing(cli):
    make_account("1000000004", "lost.claim@example.com", claims=False)
    assert cli("find", "lost.claim@example.com")[0] == 1
    code, found, _ = run_json(cli, "find", "lost.claim@example.com", "--scan")
    assert code == 0 and found[0]["primary_email_claim"].startswith("MISSING")


# --- unlink -----------------------------------------------------------------------------------


def test_unlink_removes_link_and_claim_ends_sessions_and_audits(cli):
    sub = "0f0e0d0c-0000-4000-8000-000000000006"
    make_account("1000000006", "dan@example.com", legacy_username="dan")
    link("1000000006", sub)
    token, session = sessions.create_session(sub, "1000000006")
    other_token, _ = sessions.create_session("someone-else", "1000000099")
    code, result, _ = run_json(
        cli,
        "unlink",
        "1000000006",
        "--mode",
        "lost-account",
        "--reason",
        "signed in with the wrong Login.gov account",
    )
    assert code == 0 and result["unlinked_sub"] == sub and result["sub_claim_removed"] is True
    account = Account.get("1000000006", consistent_read=True)
    assert account.linked_sub is None and account.linked_at is None
    assert account.legacy_username_retired is True  # usernames stay retired
    with pytest.raises(Claim.DoesNotExist):
        Claim.get(Claim.sub_key(sub), consistent_read=True)
    assert Claim.get(Claim.email_key("dan@example.com")).nr_number == "1000000006"
    events = [e for e in AuditEvent.query("1000000006") if e.event == "identity_unlinked"]
    assert len(events) == 1
    assert events[0].actor == "support:support-tester"
    assert events[0].detail.as_dict()["reason"] == "signed in with the wrong Login.gov account"
    # The identity's sessions are gone, and nobody else's.
    assert sessions.load_session(token) is None, (
        "session survived unlink: sessions.end_sessions_for_subject found nothing"
    )
    assert result["sessions_ended"] == 1
    assert sessions.load_session(other_token) is not None


def test_find_and_unlink_say_when_login_gov_disabled_the_identity(cli):
    """The mark Login.gov's account-disabled left stays with the identity through an
    unlink: the desk reads that from both outputs, not only from --json."""
    sub = "0f0e0d0c-0000-4000-8000-00000000000d"
    make_account("1000000013", "dis@example.com")
    link("1000000013", sub)
    Claim(Claim.sub_key(sub)).update(actions=[Claim.disabled_at.set(1_700_000_000)])
    Account.get("1000000013").update(actions=[Account.login_gov_disabled.set(True)])
    code, out, _ = cli("find", "1000000013")
    assert code == 0 and re.search(r"disabled by Login.gov\s+yes", out)
    code, out, _ = cli("unlink", "1000000013", "--mode", "lost-account", "--reason", "t 1")
    assert code == 0 and "Login.gov has disabled that identity" in out
    assert Claim.get(Claim.sub_key(sub), consistent_read=True).disabled


def test_after_unlink_the_person_can_link_again(cli):
    from chalicelib.linking import LinkMethod, LinkOutcome, link_account

    make_account("1000000007", "erin@example.com")
    link("1000000007", "sub-old")
    assert cli("unlink", "1000000007", "--mode", "lost-account", "--reason", "lost")[0] == 0
    assert (
        link_account("sub-new", "1000000007", method=LinkMethod.AUTOMATIC).outcome
        is LinkOutcome.LINKED
    )


def test_unlink_refuses_an_unlinked_or_unknown_account_and_changes_nothing(cli):
    make_account("1000000008", "fay@example.com")
    code, _, err = cli("unlink", "1000000008", "--mode", "lost-account", "--reason", "x")
    assert code == 1 and "not linked" in err
    assert cli("unlink", "9999999998", "--mode", "lost-account", "--reason", "x")[0] == 1
    assert cli("unlink", "1000000008", "--mode", "lost-account", "--reason", "   ")[0] == 2
    assert cli("unlink", "1000000008", "--reason", "no mode given")[0] == 2
    assert list(AuditEvent.query("1000000008")) == []


def test_unlink_is_one_transaction_that_fails_whole_if_the_link_changed(aws, monkeypatch):
    make_account("1000000009", "gus@example.com")
    link("1000000009", "sub-first")
    real_get = support._get_account

    def stale_read(number):
        account = real_get(number)
        # Between support's read and its write, the link is replaced.
        fresh = Account.get(number, consistent_read=True)
        fresh.update(actions=[Account.linked_sub.set("sub-second")])
        return account

    monkeypatch.setattr(support, "_get_account", stale_read)
    with pytest.raises(support.Refused, match="changed while unlinking"):
        support.unlink("1000000009", reason="test", actor="me", mode="lost-account")
    # Nothing of the transaction happened: claim, account and audit all unchanged.
    assert Claim.get(Claim.sub_key("sub-first")).nr_number == "1000000009"
    assert Account.get("1000000009", consistent_read=True).linked_sub == "sub-second"
    assert [e.event for e in AuditEvent.query("1000000009")] == ["identity_linked"]


# --- disable / enable ---------------------------------------------------------------------------


def test_disable_then_enable(cli):
    sub = "sub-hal"
    make_account("1000000010", "hal@example.com")
    link("1000000010", sub)
    token, _ = sessions.create_session(sub, "1000000010")
    code, result, _ = run_json(
        cli, "disable", "1000000010", "--reason", "reported shared", "--actor", "jdoe"
    )
    assert code == 0 and result["changed"] and result["previous_status"] == "active"
    account = Account.get("1000000010", consistent_read=True)
    assert account.status == "disabled" and account.linked_sub == sub  # the link stays
    assert sessions.load_session(token) is None, (
        "session survived disable: sessions.end_sessions_for_subject found nothing"
    )
    code, result, _ = run_json(cli, "disable", "1000000010", "--reason", "again")
    assert code == 0 and result["changed"] is False
    assert cli("enable", "1000000010", "--reason", "verified owner")[0] == 0
    assert Account.get("1000000010", consistent_read=True).status == "active"
    events = [
        (e.event, e.actor, e.detail.as_dict()["reason"])
        for e in AuditEvent.query("1000000010")
        if e.event.startswith("account_")
    ]
    assert events == [
        ("account_disabled", "support:jdoe", "reported shared"),
        ("account_enabled", "support:support-tester", "verified owner"),
    ]


@pytest.fixture
def registry(cli, tmp_path):
    """Import rows as the registry's export, through manage.py; returns (code, out, err)."""
    files = iter(range(1000))

    def run(*rows, extra=()):
        path = tmp_path / f"registry-{next(files)}.csv"
        path.write_text(csv_text(*rows))
        return cli("import-accounts", str(path), *extra)

    return run


def test_supports_hold_is_exported_as_its_own_field_never_as_the_registrys_status(
    cli, registry, clock
):
    registry(csv_row("1000000020", "held@example.com"))
    assert cli("disable", "1000000020", "--reason", "misuse")[0] == 0
    assert cli("enable", "1000000020", "--reason", "resolved")[0] == 0
    today = clock.utc_now().strftime("%Y-%m-%d")
    code, rows, _ = run_json(cli, "export-changes", "--since", today)
    assert code == 0
    assert [(r["field"], r["old"], r["new"]) for r in rows] == [
        ("support_hold", "off", "on"),
        ("support_hold", "on", "off"),
    ]


def test_enable_refuses_when_only_the_registry_says_disabled(cli, registry):
    registry(csv_row("1000000021", "reg.disabled@example.com", status="disabled"))
    code, out, err = cli("enable", "1000000021", "--reason", "person called")
    assert code == 1 and out == ""
    assert "the registry says disabled; support has no hold to lift" in err
    assert [e.event for e in AuditEvent.query("1000000021")] == ["account_imported"]


def test_disable_on_a_registry_disabled_account_sets_the_hold_and_says_so(cli, registry):
    registry(csv_row("1000000022", "both@example.com", status="disabled"))
    code, out, _ = cli("disable", "1000000022", "--reason", "misuse reported")
    assert code == 0 and "hold is on" in out and "registry also says disabled" in out
    # The registry re-activates it: the hold keeps it disabled until support lifts it.
    registry(csv_row("1000000022", "both@example.com", status="active"))
    assert Account.get("1000000022", consistent_read=True).status == "disabled"
    code, out, _ = cli("enable", "1000000022", "--reason", "resolved")
    assert code == 0 and "hold lifted" in out and "active" in out
    assert Account.get("1000000022", consistent_read=True).status == "active"


def test_enable_after_the_registry_took_a_disable_says_the_account_stays_disabled(cli, registry):
    # Before the hold had its own field, an export could hand the registry "disabled".
    registry(csv_row("1000000023", "old.export@example.com"))
    assert cli("disable", "1000000023", "--reason", "misuse")[0] == 0
    registry(csv_row("1000000023", "old.export@example.com", status="disabled"))
    code, out, _ = cli("enable", "1000000023", "--reason", "resolved")
    assert code == 0 and "hold lifted" in out
    assert "stays disabled" in out and "the registry says disabled" in out
    assert "disabled -> disabled" not in out
    code, _, err = cli("enable", "1000000023", "--reason", "again")
    assert code == 1 and "the registry says disabled; support has no hold to lift" in err


def test_disable_and_enable_that_change_nothing_say_why(cli, registry):
    registry(csv_row("1000000024", "quiet@example.com"))
    code, out, _ = cli("enable", "1000000024", "--reason", "check")
    assert code == 0 and "support has no hold" in out and "nothing changed" in out
    cli("disable", "1000000024", "--reason", "misuse")
    code, out, _ = cli("disable", "1000000024", "--reason", "again")
    assert code == 0 and "hold is already on" in out and "nothing changed" in out


def test_a_removed_account_is_not_enabled_by_support(cli):
    make_account("1000000011", "ivy@example.com", status="removed")
    code, _, err = cli("enable", "1000000011", "--reason", "asked")
    assert code == 1 and "removed" in err
    assert Account.get("1000000011").status == "removed"


# --- report -----------------------------------------------------------------------------------


def _set_linked(nr_number: str, sub: str, when: datetime) -> None:
    Account.get(nr_number).update(
        actions=[Account.linked_sub.set(sub), Account.linked_at.set(when)]
    )


def _challenge(flow_id: str, purpose: str, expires_at: int) -> None:
    Challenge(
        f"challenge#{flow_id}",
        purpose=purpose,
        session_hash="h",
        target_email="t",
        target_email_normalized="t",
        code_hash="c",
        expires_at=expires_at,
        expiry_bucket=expiry_bucket(expires_at),
        created_at=expires_at - 600,
    ).save()


def test_report_counts(cli):
    day1 = datetime(2030, 3, 1, 15, tzinfo=UTC)
    make_account("2000000001", "a@example.com")
    make_account("2000000002", "b@va.gov")
    make_account("2000000003", "c@army.mil", status="disabled")
    make_account("2000000004", "d@example.edu", status="removed", role="assistant")
    _set_linked("2000000001", "s1", day1)
    _set_linked("2000000002", "s2", day1 + timedelta(hours=3))
    _set_linked("2000000003", "s3", day1 + timedelta(days=2))
    now = int(datetime.now(UTC).timestamp())
    _challenge("p1", "email_change", now + 300)
    _challenge("p2", "email_change_notice", now + 300)
    _challenge("old", "email_change", now - 10)  # expired: not pending
    _challenge("rec", "recovery", now + 300)  # another purpose
    make_flow("noise", now + 300)
    code, report, _ = run_json(cli, "report")
    assert code == 0
    assert (report["total"], report["linked"], report["unlinked"]) == (4, 3, 1)
    assert report["by_status"] == {"active": 2, "disabled": 1, "removed": 1}
    assert report["by_role"] == {"assistant": 1, "medical_examiner": 3}
    assert report["institutional_primary"] == 3
    assert report["institutional_primary_linked"] == 2
    assert report["pending_email_changes"] == 2
    assert report["links_per_day"] == {"2030-03-01": 2, "2030-03-03": 1}


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_report_html_is_self_contained_escaped_and_charts_links(cli, tmp_path):
    make_account("2100000001", "x@example.com", role='<script>alert("r")</script>')
    make_account("2100000002", "y@example.com")
    _set_linked("2100000002", "s", datetime(2030, 5, 6, tzinfo=UTC))
    page = tmp_path / "report.html"
    code, out, _ = cli("report", "--html", str(page))
    assert code == 0 and str(page) in out
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(&quot;r&quot;)" in text
    parser = _Collect()
    parser.feed(text)
    tags = [tag for tag, _ in parser.tags]
    assert "svg" in tags
    bars = [attrs for tag, attrs in parser.tags if tag == "rect"]
    assert len(bars) == 1 and float(bars[0]["height"]) > 0
    assert "2030-05-06" in "".join(parser.text)
    # Self-contained: nothing fetched from elsewhere.
    for tag, attrs in parser.tags:
        assert not {"src", "href"} & set(attrs), (tag, attrs)
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


# --- import, cleanup, create-tables, reminders ----------------------------------------------------


def test_import_accounts_command_reports_and_exits_4_when_it_rejected_rows(cli, tmp_path):
    data = tmp_path / "accounts.csv"
    data.write_text(
        csv_text(csv_row("3000000001", "one@example.com"), csv_row("bad", "two@example.com"))
    )
    report = tmp_path / "rejects.csv"
    code, summary, _ = run_json(cli, "import-accounts", str(data), "--reject-report", str(report))
    assert code == 4  # wrote the valid rows: not a refused file (2)
    assert (summary["rows_read"], summary["imported"], summary["rejected"]) == (2, 1, 1)
    assert "bad,rejected,nr_number must be exactly 10 digits" in report.read_text()
    code, summary, _ = run_json(cli, "import-accounts", str(data), "--reject-report", str(report))
    assert summary["unchanged"] == 1 and summary["transactions"] == 0


def test_import_accounts_clean_file_exits_0_and_a_bad_header_exits_2(cli, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(csv_text(csv_row("3100000001", "one@example.com")))
    code, out, _ = cli("import-accounts", str(good))
    assert code == 0 and "imported (new)" in out
    assert not (tmp_path / "good.csv.rejects.csv").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("number,email\n1,a@example.com\n")
    code, _, err = cli("import-accounts", str(bad))
    assert code == 2 and "header must be exactly" in err
    assert Account.count() == 1


def test_run_cleanup_prints_the_summary_and_keeps_stdout_json(cli):
    make_flow("gone", int(datetime.now(UTC).timestamp()) - 60)
    code, summary, err = run_json(cli, "run-cleanup", "--batch-size", "10")
    assert code == 0
    assert summary["deleted"] == 1 and summary["more_remaining"] is False
    assert "cleanup_finished" in err  # the log line went to stderr, not into the JSON
    assert Flow.count() == 0
    code, out, _ = cli("run-cleanup", "--json")  # --json also works after the command
    assert code == 0 and json.loads(out)["items_read"] == 0
    assert cli("run-cleanup", "--batch-size", "0")[0] == 2


def test_create_tables_refuses_prod(cli):
    code, _, err = cli("create-tables", stage="prod")
    assert code == 1 and "local and dev" in err


def test_create_tables_calls_the_provisioner_for_local_stages(cli, monkeypatch):
    calls = []
    fake = types.ModuleType("localdev.provision")
    fake.create_stack_from_template = lambda stage, prefix: calls.append((stage, prefix))
    monkeypatch.setitem(sys.modules, "localdev.provision", fake)
    monkeypatch.setattr(manage, "TABLE_STAGES", ("local", "dev", "test"))
    assert cli("create-tables")[0] == 0
    assert calls == [("test", os.environ["TABLE_PREFIX"])]


def test_send_reminders_mails_linked_institutional_primaries(cli):
    import boto3

    from chalicelib import clients
    from chalicelib.models import Account

    clients.reset()
    boto3.client("sesv2").create_email_identity(EmailIdentity=os.environ["MAIL_SENDER"])
    make_account("1000000001", primary="examiner@fmcsa.dot.gov")
    Account.get("1000000001").update(actions=[Account.linked_sub.set("sub-1")])
    make_account("1000000002", primary="examiner@example.com")
    code, result, _ = run_json(cli, "send-reminders")
    assert code == 0 and result["sent"] == 1 and result["candidates"] == 1
    code, result, _ = run_json(cli, "send-reminders")
    assert code == 0 and result["sent"] == 0  # once per 30 days


# --- trace: the reference on a refusal page ----------------------------------------------------

REQUEST = "3f2a9c1d-7b7e-4c43-9d55-1f0e5a2b6c7d"
SIGNIN = "0b1c2d3e-aaaa-4bbb-8ccc-000000000001"


@pytest.fixture
def log_file(tmp_path):
    """Lines as `make run` prints them: access log, JSON lines, a CloudWatch export line."""
    path = tmp_path / "stack.log"
    lines = [
        '127.0.0.1 - - [01/Jan/2026 10:00:00] "GET /auth/callback?[redacted] HTTP/1.1" 302 -',
        json.dumps(
            {
                "event": "link_refused_no_match",
                "request_id": SIGNIN,
                "subject": "c6f316d1daf64bf0",
                "emails": 1,
            }
        ),
        json.dumps(
            {
                "event": "signin_returning",
                "request_id": "ffff0000-0000-4000-8000-000000000000",
                "subject": "someoneelse00000",
            }
        ),
        json.dumps(
            {
                "timestamp": 1767261600000,
                "message": json.dumps(
                    {
                        "event": "link_no_match_shown",
                        "request_id": REQUEST,
                        "subject": "c6f316d1daf64bf0",
                    }
                ),
            }
        ),
        "not json {at all",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_trace_finds_the_request_and_the_same_identitys_sign_in_in_a_log_file(cli, log_file):
    code, data, _ = run_json(cli, "trace", "3F2A 9C1D", "--log-file", str(log_file))
    assert code == 0
    assert data["request_ids"] == [REQUEST]
    assert [r["event"] for r in data["lines"]] == ["link_no_match_shown"]
    assert [r["request_id"] for r in data["related"]] == [SIGNIN]
    code, out, _ = cli("trace", "3f2a9c1d", "--log-file", str(log_file))
    assert code == 0 and "event=link_no_match_shown" in out
    assert f"[{SIGNIN[:8]}] event=link_refused_no_match" in out


def test_trace_says_when_a_reference_is_not_in_the_file(cli, log_file):
    code, _, err = cli("trace", "deadbeef", "--log-file", str(log_file))
    assert code == 1 and "no log line" in err


@pytest.mark.parametrize("typed", ["3f2a9c1", "3f2a9c1g", "", "abc' or 1=1"])
def test_trace_refuses_what_cannot_be_a_reference(cli, typed):
    code, _, err = cli("trace", typed, stage="prod")
    assert code == 2 and "for example 3f2a9c1d" in err


def test_trace_for_a_deployed_stage_prints_the_logs_insights_query_and_log_group(cli):
    code, out, _ = cli("--json", "trace", "3f2a9c1d", stage="prod")
    data = json.loads(out)
    assert code == 0
    assert data["log_groups"] == ["/aws/lambda/nrcme-signin-prod"]
    assert "| filter request_id like /^3f2a9c1d/" in data["query"]
    assert "--log-group-name /aws/lambda/nrcme-signin-prod" in data["aws_cli"]
    code, out, _ = cli("trace", "3f2a9c1d", stage="prod")
    assert code == 0 and "Logs Insights" in out and "/aws/lambda/nrcme-signin-prod" in out
    assert "does not read AWS" in out


def test_trace_log_group_is_the_one_the_infra_stack_creates():
    from cfnlint.decode import decode

    from supportdesk import trace

    template, _ = decode(str(manage.PROJECT_DIR / "infra" / "template.yaml"))
    group = template["Resources"]["ApiHandlerLogGroup"]["Properties"]["LogGroupName"]
    app_name = json.loads(manage.DEFAULT_CONFIG.read_text())["app_name"]
    assert trace.log_groups(app_name, "prod") == [group["Fn::Sub"].replace("${Stage}", "prod")]


def test_trace_on_the_local_stage_asks_for_the_log_file(cli, stage_config):
    config = json.loads(stage_config.read_text())
    config["stages"]["local"] = {}
    stage_config.write_text(json.dumps(config))
    code, _, err = cli("trace", "3f2a9c1d", stage="local")
    assert code == 2 and "--log-file" in err


# --- storage and environment trouble: one line and an exit code, never a traceback -------------


THROTTLED = "ProvisionedThroughputExceededException"


@pytest.mark.parametrize(
    "operation, argv",
    [
        (
            "TransactWriteItems",
            ("set-email", "1000000030", "--primary", "new@example.com", "--reason", "ticket 1"),
        ),
        ("TransactWriteItems", ("disable", "1000000030", "--reason", "ticket 2")),
        ("GetItem", ("find", "1000000030")),
        ("Scan", ("check-email-keys",)),
        ("Query", ("export-changes", "--since", "2020-01-01")),
        ("Query", ("end-sessions", "sub-throttled")),
    ],
)
def test_a_throttled_desk_command_says_so_in_one_line_and_exits_3(cli, calls, operation, argv):
    make_account("1000000030", "throttled@example.com")
    calls.fail(operation, THROTTLED, times=50)
    code, out, err = cli(*argv)
    assert code == 3, (out, err)
    assert "Traceback" not in out + err
    (line,) = [entry for entry in err.splitlines() if entry.startswith("error:")]
    assert "throttled" in line and "run the command again" in line and THROTTLED in line
    calls.rules.clear()
    assert Account.get("1000000030", consistent_read=True).primary_email == "throttled@example.com"


def test_an_import_retries_throttled_reads_and_stops_cleanly_when_they_go_on(
    cli, registry, calls, clock
):
    calls.fail("BatchGetItem", THROTTLED, times=2)
    code, out, err = registry(csv_row("1000000031", "read.retry@example.com"))
    assert code == 0 and Account.count() == 1, (out, err)
    calls.fail("BatchGetItem", THROTTLED, times=50)
    code, out, err = registry(csv_row("1000000032", "read.stop@example.com"))
    assert code == 3 and "Traceback" not in out + err
    assert "STOPPED" in out and "nothing was written" in out and "re-run the import" in out
    assert Account.count() == 1
    assert clock.slept == [2.0, 4.0, 2.0, 4.0, 8.0]  # the backoff, on the clock


def test_an_import_whose_fresh_read_is_throttled_stops_cleanly(cli, registry, calls, clock):
    registry(csv_row("1000000033", "race@example.com"))

    def someone_edits_the_account():  # the import's write is refused: it reads again...
        Account.get("1000000033").update(actions=[Account.first_name.set("Edited")])
        calls.fail("GetItem", THROTTLED, times=50)  # ...and that read is throttled

    calls.interleave(
        "TransactWriteItems", someone_edits_the_account, table="accounts", key_prefix="1000000033"
    )
    code, out, err = registry(csv_row("1000000033", "race@example.com", first="Registry"))
    assert code == 3 and "STOPPED" in out and "Traceback" not in out + err
    assert clock.slept == [2.0, 4.0, 8.0]


def test_an_unwritable_reject_report_is_refused_before_anything_is_imported(cli, tmp_path):
    data = tmp_path / "accounts.csv"
    data.write_text(csv_text(csv_row("1000000034", "one@example.com"), "bad,row"))
    code, out, err = cli(
        "import-accounts",
        str(data),
        "--reject-report",
        str(tmp_path / "no-such-dir" / "rejects.csv"),
    )
    assert code == 2 and "reject report" in err and "nothing was imported" in err
    assert Account.count() == 0 and "Traceback" not in out + err


def test_a_reject_report_that_cannot_be_written_after_the_import_still_shows_the_summary(
    cli, tmp_path
):
    data = tmp_path / "accounts.csv"
    data.write_text(csv_text(csv_row("1000000035", "one@example.com"), "bad,row"))
    (tmp_path / "accounts.csv.rejects.csv").mkdir()  # the default report path is taken
    code, out, err = cli("import-accounts", str(data))
    assert code == 1 and "imported (new)" in out and "Traceback" not in out + err
    assert "reject report could not be written" in err and Account.count() == 1


@pytest.fixture
def bare_aws(monkeypatch, stage_config):
    """No moto and no AWS settings at all: what a desk machine without setup has. A table
    prefix of its own makes PynamoDB open new connections (reading the environment)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(stage_config.parent / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(stage_config.parent / "no-creds"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("TABLE_PREFIX", "bare-aws-")
    yield
    from chalicelib import models

    monkeypatch.undo()
    models.use_table_prefix(os.environ["TABLE_PREFIX"])


def test_no_aws_region_is_a_one_line_hint(bare_aws, stage_config, capsys):
    code = manage.main(["--stage", "test", "--config", str(stage_config), "find", "1000000001"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert "no AWS region" in err and "AWS_DEFAULT_REGION" in err


def test_no_aws_credentials_is_a_one_line_hint(bare_aws, stage_config, capsys, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    code = manage.main(["--stage", "test", "--config", str(stage_config), "find", "1000000001"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert "no AWS credentials" in err and "docs/support-desk.md" in err


def test_access_denied_on_ssm_names_the_permission(cli, calls, monkeypatch):
    from chalicelib import secrets

    make_account("1000000036", "ssm@example.com")
    link("1000000036", "sub-ssm")
    monkeypatch.setenv("HMAC_ROOT_KEY", "")
    monkeypatch.setenv("HMAC_ROOT_KEY_PARAMETER", "/nrcme/test/hmac-root-key")
    secrets.reset_secrets()
    calls.fail("GetParameter", "AccessDeniedException", times=5)
    code, out, err = cli("unlink", "1000000036", "--mode", "lost-account", "--reason", "t")
    secrets.reset_secrets()
    assert code == 1 and "Traceback" not in out + err
    assert (
        "AccessDeniedException" in err and "GetParameter" in err and "docs/support-desk.md" in err
    )
    assert Account.get("1000000036", consistent_read=True).linked_sub == "sub-ssm"


def test_a_clean_run_removes_the_default_reject_report_and_says_there_is_none(cli, tmp_path):
    nightly = tmp_path / "nightly.csv"
    nightly.write_text(csv_text(csv_row("1000000040", "a@example.com"), "bad,row"))
    code, out, _ = cli("import-accounts", str(nightly))
    report = tmp_path / "nightly.csv.rejects.csv"
    assert code == 4 and report.is_file() and f"{report} (1 row)" in out
    nightly.write_text(csv_text(csv_row("1000000040", "a@example.com")))
    code, out, _ = cli("import-accounts", str(nightly))
    assert code == 0 and not report.exists()
    assert f"none (nothing to report; removed the old {report})" in out
    code, out, _ = cli("import-accounts", str(nightly))
    assert code == 0 and "none (nothing to report)" in out


def test_help_lists_the_exit_codes(capsys):
    assert manage.main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "3 storage unavailable or throttled" in text
    assert "4 import-accounts imported the file but rejected some rows" in text
    assert "5 done, follow-up failed" in text


def test_import_exported_on_skips_an_older_file_and_checks_the_date(cli, registry, tmp_path):
    assert (
        registry(
            csv_row("1000000041", "d@example.com", status="removed"),
            extra=("--exported-on", "2026-03-03"),
        )[0]
        == 0
    )
    code, out, _ = registry(
        csv_row("1000000041", "d@example.com"), extra=("--exported-on", "2026-03-02")
    )
    assert code == 0 and re.search(r"older than imported \(not applied\) +1\n", out)
    report = (tmp_path / "registry-1.csv.rejects.csv").read_text()
    assert "older than the export of 2026-03-03 already imported" in report
    assert Account.get("1000000041").status == "removed"
    for bad in ("03/02/2026", "2026-02-30", "2999-01-01"):
        code, _, err = registry(
            csv_row("1000000041", "d@example.com"), extra=("--exported-on", bad)
        )
        assert code == 2 and "--exported-on" in err


def test_export_changes_csv_writes_no_formula_cells(cli, registry, clock):
    registry(csv_row("1000000042", "formula@example.com"))
    assert (
        cli(
            "set-email",
            "1000000042",
            "--secondary",
            "=1+2@example.com",
            "--reason",
            "as typed by the person",
        )[0]
        == 0
    )
    today = clock.utc_now().strftime("%Y-%m-%d")
    code, out, _ = cli("export-changes", "--since", today, "--format", "csv")
    import csv as csv_module

    rows = list(csv_module.reader(out.splitlines()))
    assert code == 0 and rows[1][2:5] == ["secondary_email", "", "'=1+2@example.com"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


@pytest.mark.parametrize(
    "argv",
    [
        ("unlink", "1000000043"),
        ("unlink", "1000000043", "--reason", "ticket 4"),
        ("unlink", "1000000043", "--mode", "lost", "--reason", "ticket 4"),
        ("unlink", "1000000043", "--mode", "not-owner"),
    ],
)
def test_unlink_without_a_mode_or_reason_explains_both_choices_in_plain_words(cli, argv):
    make_account("1000000043", "linked@example.com")
    link("1000000043", "sub-43")
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    text = " ".join(err.split())
    assert "--mode lost-account" in text and "lost their Login.gov account" in text
    assert "--mode not-owner" in text and "not the account's owner" in text
    assert "--reason" in text and "audit" in text
    assert Account.get("1000000043", consistent_read=True).linked_sub == "sub-43"


# --- the ticket reference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("unlink", "{nr}", "--mode", "lost-account"),
        ("disable", "{nr}"),
        ("set-email", "{nr}", "--secondary", "second.{nr}@example.com"),
    ],
)
def test_a_ticket_is_recorded_with_the_change_and_optional_from_the_cli(cli, argv):
    """--ticket goes into the audit record beside the reason; without it the command works
    as before and the record has no ticket (the console requires one, manage.py does not)."""
    make_account("1000000044", "ticketed@example.com")
    link("1000000044", "sub-44")
    ticketed = [a.format(nr="1000000044") for a in argv]
    code, out, err = cli(*ticketed, "--reason", "verified by phone", "--ticket", " SD-4411 ")
    assert code == 0, (out, err)
    (event,) = [e for e in AuditEvent.query("1000000044") if e.event != "identity_linked"]
    detail = event.detail.as_dict()
    assert detail["ticket"] == "SD-4411" and detail["reason"] == "verified by phone"
    assert event.actor == "support:support-tester" and "actor_email" not in detail

    make_account("1000000045", "unticketed@example.com")
    link("1000000045", "sub-45")
    unticketed = [a.format(nr="1000000045") for a in argv]
    assert cli(*unticketed, "--reason", "verified by phone")[0] == 0
    (event,) = [e for e in AuditEvent.query("1000000045") if e.event != "identity_linked"]
    assert "ticket" not in event.detail.as_dict()


@pytest.mark.parametrize("ticket", ["SD-1\x1b[2J", "SD-\u202e1", "x" * 65])
def test_a_ticket_with_invisible_characters_or_too_long_is_refused_and_changes_nothing(cli, ticket):
    make_account("1000000046", "bad.ticket@example.com")
    link("1000000046", "sub-46")
    code, _, err = cli(
        "unlink", "1000000046", "--mode", "lost-account", "--reason", "r", "--ticket", ticket
    )
    assert code == 2 and "ticket reference" in err
    assert Account.get("1000000046", consistent_read=True).linked_sub == "sub-46"
    assert [e.event for e in AuditEvent.query("1000000046")] == ["identity_linked"]


# --- a step after a committed change: reported as done, follow-up failed (exit 5) ---------------


@pytest.mark.parametrize("operation", ["Query", "DeleteItem"])
@pytest.mark.parametrize(
    "argv, done",
    [
        (
            ("unlink", "1000000050", "--mode", "lost-account", "--reason", "ticket 9"),
            "The unlink itself is done: do not run `unlink` again.",
        ),
        (
            ("disable", "1000000050", "--reason", "ticket 9"),
            "The hold itself is on: do not run `disable` again.",
        ),
    ],
)
def test_a_change_that_committed_then_could_not_end_sessions_says_so_and_exits_5(
    cli, calls, operation, argv, done
):
    sub = "8d3c9a56-0000-4000-8000-000000000050"
    make_account("1000000050", "follow.up@example.com")
    link("1000000050", sub)
    token, _ = sessions.create_session(sub, "1000000050")
    calls.fail(operation, THROTTLED, table="flows", times=50)
    code, out, err = cli(*argv)
    assert code == 5, (out, err)
    assert "Traceback" not in out + err and "run the command again" not in out + err
    text = " ".join(out.split())
    assert "Account 1000000050 (" in text and done in text
    assert (
        f"ending its sessions failed (DynamoDB throttled: {operation} {THROTTLED}): run "
        f"`manage.py --stage test end-sessions {sub}` again"
    ) in text.replace("Ending its", "ending its")
    account = Account.get("1000000050", consistent_read=True)
    assert account.linked_sub is None if argv[0] == "unlink" else account.status == "disabled"
    calls.rules.clear()
    assert sessions.load_session(token) is not None  # the step that failed
    code, out, _ = cli("end-sessions", sub)
    assert code == 0 and f"1 session(s) of Login.gov sub {sub} ended." in out
    assert sessions.load_session(token) is None
    assert cli("end-sessions", sub)[:2] == (0, f"0 session(s) of Login.gov sub {sub} ended.\n")


def test_a_follow_up_that_failed_is_in_the_json_with_the_command_that_does_it(cli, calls):
    make_account("1000000051", "json.follow@example.com")
    link("1000000051", "sub-51")
    calls.fail("Query", THROTTLED, table="flows", times=50)
    code, result, _ = run_json(
        cli, "unlink", "1000000051", "--mode", "not-owner", "--reason", "ticket 10"
    )
    assert code == 5 and result["unlinked_sub"] == "sub-51" and result["barred"] is True
    assert result["sessions_ended"] is None
    assert result["follow_up_failed"] == [
        {
            "step": "end-sessions",
            "command": "end-sessions sub-51",
            "run": "manage.py --stage test end-sessions sub-51",
            "error": f"DynamoDB throttled: Query {THROTTLED}",
            "sub": "sub-51",
        }
    ]


def test_a_correction_whose_notice_could_not_be_queued_exits_5(cli, registry, calls):
    registry(csv_row("1000000052", "old.primary@example.com"))
    calls.fail("SendMessage", "ServiceUnavailable", times=5)
    calls.fail("SendMessageBatch", "ServiceUnavailable", times=5)
    code, out, err = cli(
        "set-email", "1000000052", "--primary", "new.primary@example.com", "--reason", "ticket 11"
    )
    assert code == 5 and "Traceback" not in out + err
    text = " ".join(out.split())
    assert "old.primary@example.com could not be queued" in text
    assert "tell the person yourself" in text and "do not run `set-email` again" in text
    assert (
        Account.get("1000000052", consistent_read=True).primary_email == "new.primary@example.com"
    )


def test_end_sessions_needs_a_sub(cli):
    assert cli("end-sessions", "  ")[0] == 2


# --- every desk output shows control and bidi characters escaped (supportdesk.safe_text) -------

# Clears the terminal, then shows "...example.net" reversed: what a hostile Login.gov email
# (or a registry value, a typed reason) may hold.
HOSTILE = "mallory\x1b[2J\u202eten.elpmaxe@example.net"
SHOWN = "mallory\\x1b[2J\\u202eten.elpmaxe@example.net"
RAW = ("\x1b", "\u202e")


def _no_raw(text: str) -> None:
    assert not any(ch in text for ch in RAW), repr(text)


def test_safe_text_escapes_controls_and_bidi_and_invisible_formatting_only():
    from supportdesk.safe_text import safe_text

    hidden = "".join(
        chr(c)
        for c in [
            *range(0x20),
            0x7F,
            *range(0x80, 0xA0),
            0x061C,
            *range(0x200B, 0x2010),
            *range(0x202A, 0x202F),
            *range(0x2060, 0x206A),
            0xFEFF,
        ]
    )
    shown = safe_text(hidden)
    assert shown.isascii() and shown.isprintable()
    assert shown.startswith("\\x00\\x01") and "\\x1b" in shown and "\\x7f\\x80" in shown
    assert "\\u061c" in shown and "\\u202e" in shown and "\\u2065" in shown
    assert shown.endswith("\\ufeff") and shown.count("\\") == len(hidden)
    for kept in ("Dr. Zoë O'Brien-Ñúñez", "straße@exämple.de", "李小龙", "a b", ""):
        assert safe_text(kept) == kept
    assert safe_text(None) == "" and safe_text(12) == "12"


def test_find_shows_a_hostile_login_gov_email_escaped(cli):
    from chalicelib.linking import LinkMethod, link_account

    make_account("1000000060", "linked.hostile@example.com")
    link_account("sub-60", "1000000060", method=LinkMethod.AUTOMATIC, login_gov_email=HOSTILE)
    code, out, err = cli("find", "1000000060")
    assert code == 0
    _no_raw(out + err)
    assert SHOWN in out
    code, found, _ = run_json(cli, "find", "1000000060")  # JSON keeps the value, escaped
    assert found[0]["linked_email"] == HOSTILE


def test_every_desk_print_path_escapes_what_a_person_typed(cli, registry, clock):
    """The audit trail (find's events), export-changes, unlink's and lift-bar's lines, and
    error lines: a typed actor, reason or sub cannot reach the terminal raw."""
    registry(csv_row("1000000061", "typed@example.com"))
    link("1000000061", "sub-61")
    code, out, err = cli(
        "unlink",
        "1000000061",
        "--mode",
        "not-owner",
        "--reason",
        f"ticket {HOSTILE}",
        "--actor",
        HOSTILE,
    )
    assert code == 0
    code2, out2, err2 = cli("find", "1000000061")
    today = clock.utc_now().strftime("%Y-%m-%d")
    cli(
        "set-email",
        "1000000061",
        "--secondary",
        "new.typed@example.com",
        "--reason",
        "ticket",
        "--actor",
        HOSTILE,
    )
    code3, out3, err3 = cli("export-changes", "--since", today)
    code4, out4, err4 = cli("lift-bar", "1000000061", HOSTILE, "--reason", "ticket")
    assert (code2, code3, code4) == (0, 0, 1)
    everything = out + err + out2 + err2 + out3 + err3 + out4 + err4
    _no_raw(everything)
    assert f"support:{SHOWN}" in out2 and f"ticket {SHOWN}" in out2
    assert f"support:{SHOWN}" in out3
    assert f"Login.gov sub {SHOWN} is not barred" in err4


def test_csv_cells_show_hostile_text_escaped(cli, registry, tmp_path, clock):
    today = clock.utc_now().strftime("%Y-%m-%d")
    registry(csv_row("1000000062", "csv.hostile@example.com"))
    assert (
        cli(
            "set-email",
            "1000000062",
            "--secondary",
            "csv.new@example.com",
            "--reason",
            "ticket",
            "--actor",
            HOSTILE,
        )[0]
        == 0
    )
    code, out, _ = cli("export-changes", "--since", today, "--format", "csv")
    assert code == 0
    _no_raw(out)
    import csv as csv_module

    (_, row) = list(csv_module.reader(out.splitlines()))
    assert row[6] == f"support:{SHOWN}"
    # The import's reject report: a row's offending value, shown in its reason.
    code, out, _ = registry(csv_row("1000000063", "rejected@example.com", first="Pat\x1b[2J\u202e"))
    report = (tmp_path / "registry-1.csv.rejects.csv").read_text(encoding="utf-8")
    _no_raw(report + out)
    assert "Pat\\x1b[2J\\u202e" in report


def test_report_html_and_text_show_hostile_text_escaped(cli, tmp_path):
    make_account("2100000003", "role.hostile@example.com", role=HOSTILE)
    page = tmp_path / "report.html"
    code, out, _ = cli("report", "--html", str(page))
    assert code == 0
    html = page.read_text(encoding="utf-8")
    _no_raw(html + out)
    assert SHOWN in html and SHOWN in out


def test_trace_shows_a_hostile_log_field_escaped(cli, tmp_path):
    path = tmp_path / "hostile.log"
    path.write_text(
        json.dumps({"event": "link_refused_no_match", "request_id": REQUEST, "detail": HOSTILE})
        + "\n"
    )
    code, out, _ = cli("trace", REQUEST[:8], "--log-file", str(path))
    assert code == 0
    _no_raw(out)
    assert f"detail={SHOWN}" in out
