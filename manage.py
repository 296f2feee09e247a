#!/usr/bin/env python3
"""Support and operations CLI for the NRCME sign-in service. Never shipped in the Lambda.

    python manage.py --stage STAGE [--json] COMMAND ...

--stage reads `.chalice/config.json` (top-level, then stages[STAGE] environment_variables)
into the environment; variables already set in the real environment win. chalicelib reads
its settings (and table names) when first used, not when imported: a process that read them
before --stage applied (tests) reads them again (_sync_chalicelib).

Commands: create-tables, import-accounts, find, unlink, lift-bar, disable, enable,
end-sessions, set-email, clear-shared, export-changes, report, run-cleanup,
send-reminders, campaign status|run|pause|resume|backfill, trace, check-email-keys,
backfill-search-keys, staff add|remove|list (the support console's staff list).
Human-readable output by default, --json for
scripts. Exit codes: 0 ok; 1 not found or refused, or AWS refused (no region,
credentials or permission); 2 usage or validation error (a refused import file: nothing
imported); 3 storage unavailable or throttled (nothing, or only whole accounts, written):
run it again; 4 an import that wrote the file's valid rows but rejected others; 5 the
change was made, but a step after it failed (ending sessions, queuing a notice): do not run
the command again; do the step it names.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
TABLE_STAGES = ("local", "dev")  # create-tables refuses every other stage (prod above all)

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_PARTIAL = 0, 1, 2, 3, 4
EXIT_FOLLOW_UP = 5
EXIT_CODES = (
    "Exit codes: 0 ok; 1 not found or refused, or AWS refused (no region, no "
    "credentials, no permission: the message says what to set); 2 usage or "
    "validation error (import-accounts: the file was refused, nothing imported); 3 "
    "storage unavailable or throttled: nothing, or only whole accounts, were "
    "written: run it again; 4 import-accounts imported the file but rejected some "
    "rows (see the reject report); 5 done, follow-up failed: the change was made "
    "(do not run the command again), but a step after it failed: the message "
    "names the command that does that step (`end-sessions SUB`) or what to tell "
    "the person."
)


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


# --- stage environment ----------------------------------------------------------------------


def stage_environment(stage: str, config_path: Path = DEFAULT_CONFIG) -> dict[str, str]:
    """The environment variables chalice would give the stage's Lambda."""
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"{config_path} not found: --stage needs the Chalice config "
            "(or run from the project directory)"
        ) from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {config_path}: {exc}") from None
    stages = config.get("stages") or {}
    if stage not in stages:
        known = ", ".join(sorted(stages)) or "none"
        raise CliError(f"stage {stage!r} is not in {config_path} (stages: {known})")
    values = dict(config.get("environment_variables") or {})
    values.update(stages[stage].get("environment_variables") or {})
    return {str(k): str(v) for k, v in values.items()}


def apply_stage_environment(
    stage: str, config_path: Path = DEFAULT_CONFIG, environ=None
) -> list[str]:
    """Set the stage's variables that the real environment does not already set."""
    environ = os.environ if environ is None else environ
    applied = []
    for name, value in stage_environment(stage, config_path).items():
        if name not in environ:
            environ[name] = value
            applied.append(name)
    return applied


def _sync_chalicelib() -> None:
    """chalicelib may have read its settings already (tests): make it read them again."""
    from chalicelib import clients, config, models

    config.reset_settings()
    clients.reset()  # built with the settings read before
    models.use_table_prefix(None)


# --- output ---------------------------------------------------------------------------------


def _emit(args, data, human, *, ours: tuple[str, ...] = ()) -> None:
    """--json as JSON (its escapes keep every character inert), else the command's own
    printing, given the data with every text value made safe (supportdesk.safe_text).
    `ours` names keys whose multi-line text this command built itself (trace's queries)."""
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        human(_shown(data, ours))


def _shown(data, ours: tuple[str, ...] = ()):
    """`data` with every string in it (keys too) through safe_text: a Login.gov email, a
    registry value or a log line cannot drive the desk's terminal or reorder its text."""
    from supportdesk.safe_text import safe_text

    if isinstance(data, str):
        return safe_text(data)
    if isinstance(data, dict):
        return {_shown(k): v if k in ours else _shown(v, ours) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_shown(v, ours) for v in data]
    return data


def _error(message: object) -> None:
    from supportdesk.safe_text import safe_text

    print(f"error: {safe_text(message)}", file=sys.stderr)


def _print_pairs(pairs: list[tuple[str, object]]) -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        shown = "-" if value is None or value == "" else value
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        print(f"  {key.ljust(width)}  {shown}")


def _print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _follow_ups(args, data: dict) -> int:
    """The exit code of a change that committed: 5 when a step after it failed (each failed
    step gets the full command line that does it, `run`), else 0."""
    failed = data.get("follow_up_failed") or []
    for step in failed:
        step["run"] = f"manage.py --stage {args.stage} {step['command']}"
    return EXIT_FOLLOW_UP if failed else EXIT_OK


def _sessions_words(d: dict) -> str:
    """ "N session(s) ended", or that ending them failed and the command that ends them."""
    for step in d.get("follow_up_failed") or []:
        if step["step"] == "end-sessions":
            return f"ending its sessions failed ({step['error']}): run `{step['run']}` again"
    return f"{d['sessions_ended']} session(s) ended"


def _default_actor() -> str:
    for name in ("USER", "LOGNAME", "USERNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database entry in a container
        return ""


# --- commands -------------------------------------------------------------------------------


def cmd_create_tables(args) -> int:
    if args.stage not in TABLE_STAGES:
        raise CliError(
            f"create-tables is for the {' and '.join(TABLE_STAGES)} stages only; "
            f"{args.stage!r} tables come from the infra/ stack deploy",
            EXIT_REFUSED,
        )
    try:
        from localdev.provision import create_stack_from_template
    except ImportError as exc:
        raise CliError(f"localdev/provision.py is not available ({exc})", EXIT_REFUSED) from None
    from chalicelib.config import get_settings

    prefix = get_settings().table_prefix
    result = create_stack_from_template(args.stage, prefix)
    data = {"stage": args.stage, "table_prefix": prefix, "result": result}
    _emit(
        args,
        data,
        lambda d: print(
            f"Tables for stage {d['stage']} (prefix {prefix!r}) "
            f"are ready.{'' if result is None else f' {result}'}"
        ),
    )
    return EXIT_OK


def _check_report_path(path: str) -> None:
    """Refuse a reject report that cannot be written before the import writes anything."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        problem = "that is a folder"
    elif not folder.is_dir():
        problem = f"folder {folder} does not exist"
    elif not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        problem = "not allowed to write there"
    else:
        return
    raise CliError(f"cannot write the reject report to {path}: {problem}; nothing was imported")


def _reject_report(args, result) -> tuple[str | None, str | None]:
    """Write (or clear) the reject report: (where it is, or None; what was removed, or None).

    The default report (FILE.rejects.csv) is written when the run has anything to report
    and removed when it has nothing: a report left from an earlier run must not be taken
    for this one's. An explicit --reject-report is always written (the header alone when
    nothing is to report)."""
    from supportdesk import registry_sync

    if args.reject_report is not None:
        registry_sync.write_reject_report(args.reject_report, result.issues)
        return args.reject_report, None
    default = Path(str(args.file) + ".rejects.csv")
    if result.issues:
        registry_sync.write_reject_report(default, result.issues)
        return str(default), None
    if default.is_file():
        default.unlink()
        return None, str(default)
    return None, None


def _export_date(text: str | None) -> str | None:
    """--exported-on: a real day, not after tomorrow (UTC; the registry may be a day ahead)."""
    if text is None:
        return None
    from datetime import date, timedelta

    from chalicelib import clock

    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            "--exported-on takes the day the registry produced the file: YYYY-MM-DD"
        ) from None
    if day > clock.utc_now().date() + timedelta(days=1):
        raise CliError(f"--exported-on {day.isoformat()} is in the future")
    return day.isoformat()


def cmd_import_accounts(args) -> int:
    from supportdesk import registry_sync

    exported_on = _export_date(args.exported_on)
    if args.reject_report is not None:
        _check_report_path(args.reject_report)
    try:
        validation = registry_sync.validate_file(args.file)
    except registry_sync.ImportFileError as exc:
        raise CliError(f"{exc}; nothing was imported") from None
    result = registry_sync.import_accounts(
        validation,
        actor=f"import:{args.actor or _default_actor() or 'unknown'}",
        dry_run=args.dry_run,
        exported_on=exported_on,
    )
    report_error = None
    try:
        report_path, removed = _reject_report(args, result)
    except OSError as exc:
        report_path, removed = None, None
        report_error = (
            f"the import finished (summary above), but its reject report could "
            f"not be written to {args.reject_report or str(args.file) + '.rejects.csv'}"
            f": {exc.strerror or exc}; run it again with --reject-report PATH "
            "(it writes nothing twice)"
        )
    data = result.summary()
    data["reject_report"] = report_path
    data["reject_report_removed"] = removed
    reported = len(result.issues)

    def human(d):
        if d["stopped"]:
            print(f"Import STOPPED: {d['stopped']}")
        else:
            print("Dry run: nothing written." if d["dry_run"] else "Import finished.")
        if d["reject_report"]:
            report = f"{d['reject_report']} ({reported} row{'s' if reported != 1 else ''})"
        elif report_error:
            report = "NOT WRITTEN (see the error below)"
        elif d["reject_report_removed"]:
            report = f"none (nothing to report; removed the old {d['reject_report_removed']})"
        else:
            report = "none (nothing to report)"
        _print_pairs(
            [
                ("rows read", d["rows_read"]),
                ("imported (new)", d["imported"]),
                ("updated", d["updated"]),
                ("unchanged", d["unchanged"]),
                ("rejected", d["rejected"]),
                ("conflicts (nothing applied)", d["conflicts"]),
                ("shared emails", d["shared_emails"]),
                ("warnings", d["warnings"]),
                ("older than imported (not applied)", d["older"]),
                ("claims written", d["claims_written"]),
                ("transactions", d["transactions"]),
                ("items read", d["items_read"]),
                ("reject report", report),
            ]
        )

    _emit(args, data, human)
    if report_error:
        _error(report_error)
    if result.stopped:
        return EXIT_INCOMPLETE
    if report_error:
        return EXIT_REFUSED
    return EXIT_PARTIAL if result.rejected else EXIT_OK


def _who(d: dict) -> str:
    """`Account N (Name, primary@example.com)`: so a mistyped number is noticed."""
    return f"Account {d['nr_number']} ({d['name']}, {d['primary_email']})"


def _print_account(view: dict) -> None:
    print(f"Account {view['nr_number']}")
    _print_pairs(
        [
            ("name", view["name"]),
            ("role", view["role"]),
            ("status", view["status"]),
            ("  registry says", view["registry_status"]),
            ("  support hold", view["support_hold"]),
            ("primary email", view["primary_email"]),
            ("  claim", view["primary_email_claim"]),
            ("  mail", view.get("primary_email_mail_state")),
            ("  institutional", view["primary_email_institutional"]),
            ("secondary email", view["secondary_email"]),
            ("  claim", view["secondary_email_claim"]),
            ("  mail", view.get("secondary_email_mail_state")),
            ("linked", view["linked"]),
            ("Login.gov sub", view["linked_sub"]),
            ("  disabled by Login.gov", view["login_gov_disabled"]),
            ("linked at", view["linked_at"]),
            ("Login.gov email", view["linked_email"]),
            ("barred identities", ", ".join(view["barred_subs"]) or None),
            (
                "changed here",
                "; ".join(f"{k} {v}" for k, v in view["changed_here"].items()) or None,
            ),
            ("legacy username", view["legacy_username"]),
            ("  retired", view["legacy_username_retired"]),
            ("last reminder", view["last_reminder_at"]),
        ]
    )
    print(f"Recent events ({len(view['recent_events'])}):")
    if view["recent_events"]:
        _print_table(
            ["at", "event", "actor", "detail"],
            [
                [
                    e["at"],
                    e["event"],
                    e["actor"],
                    ", ".join(f"{k}={v}" for k, v in sorted(e["detail"].items())),
                ]
                for e in view["recent_events"]
            ],
        )
    else:
        print("  none")


def cmd_find(args) -> int:
    from supportdesk import desk as support

    views = [_with_mail_states(view) for view in support.find(args.query, scan=args.scan)]
    # The console's diagnosis too (human output only: --json stays the account views).
    findings = {} if args.json else _shown(_diagnoses(v["nr_number"] for v in views))

    def human(found):
        if len(found) > 1:
            print(f"{len(found)} accounts list this email (shared):")
        for i, view in enumerate(found):
            if i:
                print()
            _print_account(view)
            _print_diagnosis(findings.get(view["nr_number"], []))

    _emit(args, views, human)
    return EXIT_OK


def _with_mail_states(view: dict) -> dict:
    """What SES reported of the account's addresses (chalicelib.mail_feedback): the desk sees
    it, the person asking for a code is never told (no oracle)."""
    from chalicelib.campaign import address_states
    from chalicelib.emails import try_normalize_email

    keys = {slot: try_normalize_email(view[f"{slot}_email"]) for slot in ("primary", "secondary")}
    states = address_states([k for k in keys.values() if k])
    for slot, key in keys.items():
        state = states.get(key) if key else None
        words = []
        if state is not None and state.undeliverable:
            words.append(f"undeliverable ({state.undeliverable_reason})")
        if state is not None and state.complained:
            words.append("complained (no campaign mail or notices)")
        if state is not None and not words and state.soft_bounces:
            words.append(f"{len(state.soft_bounces)} soft bounce(s)")
        view[f"{slot}_email_mail_state"] = "; ".join(words) or ("ok" if key else None)
    return view


def _diagnoses(numbers) -> dict[str, list[dict]]:
    """nr_number -> its findings (supportdesk.diagnosis), as plain text."""
    from supportdesk import diagnosis, person

    found = {}
    for number in numbers:
        facts = person.load(number)
        if facts is not None:
            found[number] = [
                {"severity": f.severity.label, "what": f.what, "next": f.next_step or ""}
                for f in diagnosis.diagnose(facts)
            ]
    return found


def _print_diagnosis(findings: list[dict]) -> None:
    print("Why can't they get in?")
    for finding in findings:
        print(f"  - {finding['severity']}: {finding['what']}")
        if finding["next"]:
            print(f"    Next step: {finding['next']}")


def cmd_backfill_search_keys(args) -> int:
    from supportdesk.search_keys import backfill_search_keys

    result = backfill_search_keys(page_size=args.page_size).as_dict()

    def human(d):
        print(
            f"{d['accounts_read']} accounts read in {d['pages']} pages. Name keys: "
            f"{d['name_keys_written']} written, {d['name_keys_current']} already current. "
            f"Login.gov email keys: {d['login_gov_keys_written']} written, "
            f"{d['login_gov_keys_current']} already current. Changed while running (their "
            f"own write kept the keys): {d['changed_meanwhile']}."
        )

    _emit(args, result, human)
    return EXIT_OK


UNLINK_USAGE = (
    "unlink needs --mode and --reason. Choose the mode by what happened: "
    "--mode lost-account: the person lost their Login.gov account (and made a new one); "
    "their new Login.gov account links at their next sign-in. "
    "--mode not-owner: the Login.gov account linked is not the account's owner's; it is "
    "barred from this account until `lift-bar`, and the owner links their own. "
    "--reason: why, in words (a ticket, how you verified the person); it is kept in the "
    'audit trail. For example: unlink 1000000001 --mode lost-account --reason "ticket 42, '
    'verified by phone"'
)


def cmd_unlink(args) -> int:
    from supportdesk import desk as support

    if args.mode not in support.UNLINK_MODES or not (args.reason or "").strip():
        raise CliError(UNLINK_USAGE)
    result = support.unlink(
        args.nr_number,
        reason=args.reason,
        actor=args.actor or _default_actor(),
        mode=args.mode,
        ticket=args.ticket,
    )
    code = _follow_ups(args, result)

    def human(d):
        print(
            f"{_who(d)} unlinked from Login.gov sub {d['unlinked_sub']}; "
            f"{_sessions_words(d)}; the legacy username stays retired."
        )
        if code == EXIT_FOLLOW_UP:
            print("The unlink itself is done: do not run `unlink` again.")
        if d["barred"]:
            print(
                "That Login.gov identity is barred from this account until "
                f"`lift-bar {d['nr_number']} {d['unlinked_sub']}`. The owner links with "
                "their own Login.gov account at their next sign-in (or by a recovery "
                "code)."
            )
        else:
            print("The person links their new Login.gov account at their next sign-in.")
        if d["login_gov_disabled"]:
            print(
                "Login.gov has disabled that identity: it cannot sign in or link anywhere "
                "here until Login.gov enables it again (the mark stays with it)."
            )

    _emit(args, result, human)
    return code


def cmd_end_sessions(args) -> int:
    from supportdesk import desk as support

    result = support.end_sessions(args.sub)
    _emit(
        args,
        result,
        lambda d: print(f"{d['sessions_ended']} session(s) of Login.gov sub {d['sub']} ended."),
    )
    return EXIT_OK


def cmd_lift_bar(args) -> int:
    from supportdesk import desk as support

    result = support.lift_bar(
        args.nr_number,
        args.sub,
        reason=args.reason,
        actor=args.actor or _default_actor(),
        ticket=args.ticket,
    )
    _emit(
        args,
        result,
        lambda d: print(f"{_who(d)}: Login.gov sub {d['bar_lifted_for']} may link to it again."),
    )
    return EXIT_OK


def cmd_set_email(args) -> int:
    from supportdesk import desk as support

    if args.remove_secondary:
        slot, address = "secondary", None
    else:
        slot = "primary" if args.primary else "secondary"
        address = args.primary or args.secondary
    result = support.set_email(
        args.nr_number,
        slot=slot,
        address=address,
        reason=args.reason,
        actor=args.actor or _default_actor(),
        ticket=args.ticket,
    )

    def human(d):
        if d["rekeyed"]:
            print(
                f"{_who(d)}: {d['field']} {d['new']} re-keyed (stored key "
                f"{d['old_key'] or '(none)'} -> {d['new_key']}). The address did not "
                "change: nobody was told, "
                "nothing to export, the field stays the registry's."
            )
            return
        print(
            f"{_who(d)}: {d['field']} {d['old'] or '(none)'} -> {d['new'] or '(none)'}. "
            "The field is now owned here: imports will not undo it; `export-changes` "
            "hands it to the registry."
        )
        if d["notified"]:
            print("Email-changed notice queued to: " + ", ".join(d["notified"]) + ".")
        if d["not_notified"]:
            print(
                "The email-changed notice to " + ", ".join(d["not_notified"]) + " could "
                "not be queued (logged as notice_not_sent): tell the person yourself. "
                "The correction itself is done: do not run `set-email` again."
            )

    _emit(args, result, human)
    # A notice that could not be queued is a step after the commit that failed.
    return EXIT_FOLLOW_UP if result["not_notified"] else EXIT_OK


def cmd_clear_shared(args) -> int:
    from supportdesk import desk as support

    result = support.clear_shared(
        args.address, reason=args.reason, actor=args.actor or _default_actor(), ticket=args.ticket
    )
    _emit(
        args,
        result,
        lambda d: print(
            f"{_who(d)}: {d['address']} proves this account again (links, recovery codes)."
        ),
    )
    return EXIT_OK


def cmd_export_changes(args) -> int:
    from supportdesk import desk as support

    rows = support.export_changes(args.since)
    if args.format == "csv" and not args.json:
        from supportdesk.csv_cells import write_rows

        write_rows(
            sys.stdout,
            support.EXPORT_COLUMNS,
            ([row[c] for c in support.EXPORT_COLUMNS] for row in rows),
        )
        return EXIT_OK
    _emit(
        args,
        rows,
        lambda found: (
            _print_table(
                list(support.EXPORT_COLUMNS),
                [[r[c] for c in support.EXPORT_COLUMNS] for r in found],
            )
            if found
            else print(f"No email or status changes made here since {args.since}.")
        ),
    )
    return EXIT_OK


def _cmd_status(args, status: str) -> int:
    from supportdesk import desk as support

    result = support.set_status(
        args.nr_number,
        status,
        reason=args.reason,
        actor=args.actor or _default_actor(),
        ticket=args.ticket,
    )
    code = _follow_ups(args, result)

    def human(d):
        who = _who(d)
        ended = ""
        if d["support_hold"]:
            words = _sessions_words(d)
            ended = f" {words[0].upper()}{words[1:]}."
        if d["support_hold"] and not d["changed"]:
            print(f"{who}: support's hold is already on; nothing changed.{ended}")
        elif d["support_hold"] and d["registry_status"] == "disabled":
            print(
                f"{who}: support's hold is on (the registry also says disabled; the hold "
                f"stays if the registry re-activates the account).{ended}"
            )
        elif d["support_hold"]:
            print(f"{who}: support's hold is on; {d['previous_status']} -> {d['status']}.{ended}")
        elif not d["changed"]:
            print(f"{who} is {d['status']} and support has no hold on it; nothing changed.")
        elif d["status"] == "disabled":
            print(
                f"{who}: support's hold lifted, but the account stays disabled: the "
                "registry says disabled (its next export decides)."
            )
        else:
            print(f"{who}: support's hold lifted; the account is {d['status']}.")
        if code == EXIT_FOLLOW_UP:
            print("The hold itself is on: do not run `disable` again.")

    _emit(args, result, human)
    return code


def cmd_report(args) -> int:
    from supportdesk import report as migration_report

    report = migration_report.build_report()
    if args.html:
        Path(args.html).write_text(migration_report.render_report_html(report), encoding="utf-8")
    progress = migration_report.build_progress()
    report["per_week"] = migration_report.progress_dict(progress)
    if args.csv:
        Path(args.csv).write_text(
            migration_report.progress_csv(progress, args.list), encoding="utf-8"
        )

    def human(r):
        print(f"Migration report ({r['generated_at']})")
        _print_pairs(
            [
                ("accounts", r["total"]),
                ("linked", r["linked"]),
                ("not linked", r["unlinked"]),
                ("institutional primary", r["institutional_primary"]),
                ("  of which linked", r["institutional_primary_linked"]),
                ("pending email changes", r["pending_email_changes"]),
            ]
        )
        print("By status:")
        _print_pairs(list(r["by_status"].items()))
        print("By role:")
        _print_pairs(list(r["by_role"].items()))
        print("Links per day:")
        _print_pairs(list(r["links_per_day"].items()) or [("none", None)])
        print(migration_report.progress_text(r["per_week"]))
        if args.html:
            print(f"HTML report written to {args.html}")
        if args.csv:
            print(f"CSV ({args.list}) written to {args.csv}")

    _emit(args, report, human)
    return EXIT_OK


def cmd_run_cleanup(args) -> int:
    from chalicelib.cleanup import cleanup_expired_flows

    summary = cleanup_expired_flows(batch_size=args.batch_size)

    def human(d):
        print("Cleanup finished.")
        _print_pairs(
            [
                ("expired items read", d["items_read"]),
                ("deleted", d["deleted"]),
                ("skipped (gone or refreshed)", d["skipped"]),
                ("more remaining", d["more_remaining"]),
            ]
        )

    _emit(args, summary.as_dict(), human)
    return EXIT_OK


def cmd_send_reminders(args) -> int:
    from chalicelib.reminders import send_institutional_email_reminders

    data = send_institutional_email_reminders().as_dict()
    _emit(args, data, lambda d: print("Reminders: " + ", ".join(f"{k} {v}" for k, v in d.items())))
    return EXIT_OK


def cmd_campaign(args) -> int:
    """The migration campaign (chalicelib.campaign): one implementation with the function."""
    from chalicelib import campaign

    if args.campaign_command == "backfill":
        from supportdesk.campaign_index import backfill

        data = backfill()
        _emit(
            args,
            data,
            lambda d: print(
                f"Index: {d['added']} accounts added of {d['found']} not linked "
                f"({d['linked_meanwhile']} linked meanwhile)"
            ),
        )
        return EXIT_OK
    if args.campaign_command == "run":
        data = campaign.run(limit=args.limit).as_dict()
        _emit(args, data, _print_campaign_run)
        return EXIT_OK
    if args.campaign_command in ("pause", "resume"):
        actor = args.actor or _default_actor() or "unknown"
        data = campaign.set_paused(args.campaign_command == "pause", actor)
    else:
        data = campaign.status()
    _emit(args, data, _print_campaign_status)
    return EXIT_OK


def _print_campaign_run(d: dict) -> None:
    if d["wave"] is None:
        print(f"Campaign {d['day']}: no campaign (no CAMPAIGN_DEADLINE, or it has passed)")
        return
    if d["paused"]:
        print(f"Campaign {d['day']}: paused, nothing sent (`campaign resume` to go on)")
        return
    print(f"Campaign {d['day']}, wave {d['wave']}: {d['sent']} mails queued, {d['read']} read")
    _print_pairs([(f"skipped {k}", v) for k, v in d["skipped"].items()])
    if d["not_queued"]:
        print(f"  {d['not_queued']} not taken by the outbox: the next run tries them again")
    if d["more_remaining"]:
        print("  more remain (send cap or time budget): the next run goes on")


def _print_campaign_status(d: dict) -> None:
    if d["deadline"] is None:
        print("No campaign: CAMPAIGN_DEADLINE is not set.")
        return
    _print_pairs(
        [
            ("deadline", d["deadline"]),
            ("paused", d["paused"]),
            ("due wave", d["due_wave"]),
            ("sends per run", d["max_sends_per_run"]),
            ("next run (UTC)", d["next_run"]),
        ]
    )
    _print_table(
        ["wave", "kind", "from", "sent"],
        [[w["wave"], w["kind"], w["starts"] or "first run", w["sent"]] for w in d["waves"]],
    )
    last = d["last_run"]
    if last:
        print(f"Last run {last['finished_at']}: wave {last['wave']}, {last['sent']} queued")
        _print_pairs([(f"skipped {k}", v) for k, v in last["skipped"].items()])


def cmd_trace(args) -> int:
    from supportdesk import trace

    reference = trace.parse_reference(args.reference)
    if args.log_file:
        result = trace.search_file(reference, args.log_file)

        def human(d):
            print(f"Reference {d['reference']}: request {', '.join(d['request_ids'])}")
            _print_records(d["lines"])
            if d["related"]:
                print("Other requests of the same Login.gov identity (subject):")
                _print_records(d["related"], with_request=True)

        _emit(args, result, human)
        return EXIT_OK
    if args.stage in trace.LOCAL_STAGES:
        raise CliError(
            "the local stage logs to the terminal of `make run` (the browser tests "
            "keep it in test-artifacts/e2e/stack.log): pass --log-file FILE"
        )
    app_name = json.loads(Path(args.config).read_text(encoding="utf-8"))["app_name"]
    result = trace.cloudwatch_instructions(reference, app_name, args.stage, args.days)

    def instructions(d):
        print(
            f"Reference {d['reference']} is the start of a request id. That request's log "
            "lines are in CloudWatch Logs,"
        )
        print(
            f"log group {', '.join(d['log_groups'])}. This command does not read AWS: in the "
            "console open"
        )
        print(
            "CloudWatch > Logs Insights, choose that log group and a time range that covers "
            "when the person"
        )
        print("saw the page, and run:\n")
        print("\n".join("    " + line for line in d["query"].splitlines()))
        print(
            "\nThe `event` field names what the person was refused; `nr_number` the account "
            "when there is one."
        )
        print(
            "To see the other requests of the same Login.gov identity (the sign-in before a "
            "no-match page,"
        )
        print("for example), run this with the `subject` value from the first query:\n")
        print("\n".join("    " + line for line in d["subject_query"].splitlines()))
        print(f"\nOr from a shell with read access to the logs (last {d['days']} days):\n")
        print("\n".join("    " + line for line in d["aws_cli"].splitlines()))

    _emit(args, result, instructions, ours=("query", "subject_query", "aws_cli"))
    return EXIT_OK


def _print_records(records: list[dict], with_request: bool = False) -> None:
    from supportdesk.trace import FIELDS

    for record in records:
        shown = [(k, record[k]) for k in FIELDS if record.get(k) not in (None, "")]
        prefix = f"  [{record.get('request_id', '-')[:8]}] " if with_request else "  "
        print(prefix + ", ".join(f"{k}={v}" for k, v in shown))


def cmd_check_email_keys(args) -> int:
    from supportdesk.email_keys import check_email_keys

    result = check_email_keys()

    def human(d):
        rows = d["changes"]
        if not rows:
            print(f"No stored email key would change ({d['accounts_checked']} accounts checked).")
            return
        keys = "key would" if len(rows) == 1 else "keys would"
        print(f"{len(rows)} stored email {keys} change ({d['accounts_checked']} accounts checked):")
        _print_table(
            [
                "account",
                "field",
                "email",
                "stored key",
                "new key",
                "stored key held by",
                "new key held by",
                "note",
            ],
            [
                [
                    r["nr_number"],
                    r["field"],
                    r["email"] or "-",
                    r["stored_key"] or "-",
                    r["new_key"] or "(invalid)",
                    r["stored_key_holder"] or "-",
                    r["new_key_holder"] or "-",
                    _key_note(r),
                ]
                for r in rows
            ],
        )

    _emit(args, result, human)
    return EXIT_REFUSED if result["changes"] else EXIT_OK


def _key_note(row: dict) -> str:
    notes = []
    if row["new_key"] is None:
        notes.append("address no longer valid")
    elif row["conflict"]:
        notes.append("CONFLICT: new key held by another account")
    if row["stored_key_also_used_by"]:
        notes.append("old key also on " + " ".join(row["stored_key_also_used_by"]))
    if row["new_key_also_used_by"]:
        notes.append("new key also on " + " ".join(row["new_key_also_used_by"]))
    return "; ".join(notes) or "new key free"


# --- the support console's staff list (supportdesk.console.staff) ---------------------------


def _staff_module():
    """supportdesk.console.staff, its models pointed at this stage's desk table."""
    from chalicelib.config import table_prefix
    from supportdesk.console import models, staff

    models.use_table_prefix(table_prefix())
    return staff


def _staff_errors(call):
    """The staff list's typed errors as the desk's exit codes: 2 bad input, 1 refused."""
    from supportdesk.console.errors import StaffChangeInvalid, StaffChangeRefused

    try:
        return call()
    except StaffChangeInvalid as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except StaffChangeRefused as exc:
        raise CliError(str(exc), EXIT_REFUSED) from None


def cmd_staff_add(args) -> int:
    staff = _staff_module()
    from supportdesk.console.models import StaffMember

    item = _staff_errors(
        lambda: staff.add(
            args.email,
            args.role,
            actor=staff.operator(args.actor or _default_actor()),
            reason=args.reason,
            sub=args.sub,
        )
    )
    view = staff.member_view(item) if isinstance(item, StaffMember) else staff.pending_view(item)

    def human(d):
        if d["status"] == "pending":
            print(
                f"Added {d['email']} to the console's staff list as {d['role']}, pending: "
                "it becomes theirs at their first console sign-in with a Login.gov account "
                "that has this email, verified."
            )
        else:
            print(
                f"Added {d['email']} to the console's staff list as {d['role']}, "
                f"Login.gov sub {d['sub']}."
            )

    _emit(args, view, human)
    return EXIT_OK


def cmd_staff_remove(args) -> int:
    staff = _staff_module()
    actor = _staff_errors(lambda: staff.operator(args.actor or _default_actor()))
    found = _staff_errors(lambda: staff.find(args.who))
    if found.pending is not None:
        entry = _staff_errors(
            lambda: staff.remove_pending(
                found.pending.email, actor=actor, reason=args.reason, reason_required=False
            )
        )
        data = {**staff.pending_view(entry), "sessions_ended": 0, "sessions_error": None}
    else:
        result = _staff_errors(
            lambda: staff.remove(
                found.member.sub,
                actor=actor,
                reason=args.reason,
                # Ops are the root of trust (they add the first supervisor): they may leave
                # none, and are told so.
                keep_a_supervisor=False,
                reason_required=False,
            )
        )
        data = {**result["member"], **result}
        data.pop("member")
    data["supervisor_left"] = staff.any_supervisor()

    def human(d):
        sessions = (
            f"ending their console sessions failed ({d['sessions_error']}); each is refused at "
            "its next request all the same"
            if d["sessions_error"]
            else f"{d['sessions_ended']} console session(s) ended"
        )
        print(f"Removed {d['email']} ({d['role']}, {d['status']}) from the staff list; {sessions}.")
        if not d["supervisor_left"]:
            print(
                "No supervisor is left: add one with `manage.py --stage "
                f"{args.stage} staff add EMAIL --role supervisor`."
            )

    _emit(args, data, human)
    return EXIT_OK


def cmd_staff_list(args) -> int:
    staff = _staff_module()
    rows = [staff.member_view(m) for m in staff.list_staff()]
    rows += [staff.pending_view(p) for p in staff.list_pending()]

    def human(found):
        if not found:
            print(
                "Nobody is on the console's staff list: add the first supervisor with "
                f"`manage.py --stage {args.stage} staff add EMAIL --role supervisor`."
            )
            return
        _print_table(
            ["email", "role", "status", "Login.gov sub", "added by", "added at"],
            [
                [r["email"], r["role"], r["status"], r["sub"] or "-", r["added_by"], r["added_at"]]
                for r in found
            ],
        )

    _emit(args, rows, human)
    return EXIT_OK


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # Table names are read again once --stage has set the environment (_sync_chalicelib).
    from chalicelib.store import CSV_HEADER

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser = argparse.ArgumentParser(
        prog="manage.py",
        description="NRCME sign-in: support and operations commands.",
        epilog=EXIT_CODES,
    )
    parser.add_argument(
        "--stage", required=True, help="stage in .chalice/config.json (local, dev, prod)"
    )
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help=argparse.SUPPRESS)
    parser.add_argument(
        "--json", action="store_true", default=False, help="machine-readable output"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "create-tables", parents=[common], help="create the tables (local/dev only)"
    )
    p.set_defaults(handler=cmd_create_tables)

    p = commands.add_parser(
        "import-accounts", parents=[common], help="import registry accounts from CSV"
    )
    p.add_argument("file", help="CSV with header " + ",".join(CSV_HEADER))
    p.add_argument(
        "--reject-report",
        metavar="PATH",
        help="where to write rejected rows, conflicts and warnings (default: "
        "FILE.rejects.csv when there are any; a clean run removes it)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and compare with the table, write nothing (the counts are the real run's)",
    )
    p.add_argument(
        "--exported-on",
        metavar="YYYY-MM-DD",
        help="the day the registry produced the file: a row older than the "
        "export an account was last changed from is not applied (a "
        "warning); without it, every row is applied as before",
    )
    p.add_argument("--actor", help="name in the audit history, as import:NAME (default $USER)")
    p.set_defaults(handler=cmd_import_accounts)

    p = commands.add_parser(
        "find", parents=[common], help="show an account by registry number or email"
    )
    p.add_argument("query", metavar="EMAIL_OR_NUMBER")
    p.add_argument(
        "--scan",
        action="store_true",
        help="also scan every account for the email (finds a missing claim)",
    )
    p.set_defaults(handler=cmd_find)

    def audited(parser_, required=True):
        parser_.add_argument("--reason", required=required, help="why (kept in the audit history)")
        parser_.add_argument(
            "--ticket",
            metavar="REF",
            help="the desk's ticket for this case (kept in the audit history; optional "
            "here, required in the support console)",
        )
        parser_.add_argument("--actor", help="support person's name (default $USER)")

    p = commands.add_parser(
        "unlink", parents=[common], help="remove the Login.gov link of an account"
    )
    p.add_argument("nr_number", metavar="NUMBER")
    # Checked by cmd_unlink, which explains both choices in words when one is missing.
    p.add_argument(
        "--mode",
        metavar="lost-account|not-owner",
        help="lost-account: the person lost their Login.gov account (they link a "
        "new one); not-owner: the linked identity is not the owner (it is "
        "barred from this account until lift-bar). Required",
    )
    audited(p, required=False)
    p.set_defaults(handler=cmd_unlink)

    p = commands.add_parser(
        "lift-bar",
        parents=[common],
        help="let a barred Login.gov identity link to an account again",
    )
    p.add_argument("nr_number", metavar="NUMBER")
    p.add_argument("sub", metavar="LOGIN_GOV_SUB")
    audited(p)
    p.set_defaults(handler=cmd_lift_bar)

    p = commands.add_parser(
        "end-sessions",
        parents=[common],
        help="end every session of one Login.gov identity (idempotent; "
        "what unlink and disable do after their change)",
    )
    p.add_argument("sub", metavar="LOGIN_GOV_SUB")
    p.set_defaults(handler=cmd_end_sessions)

    for name, helptext in (
        ("disable", "disable an account: support's hold (ends sessions)"),
        ("enable", "lift support's hold on an account"),
    ):
        p = commands.add_parser(name, parents=[common], help=helptext)
        p.add_argument("nr_number", metavar="NUMBER")
        audited(p)
        p.set_defaults(
            handler={
                "disable": lambda a: _cmd_status(a, "disabled"),
                "enable": lambda a: _cmd_status(a, "active"),
            }[name]
        )

    p = commands.add_parser(
        "set-email",
        parents=[common],
        help="correct an account's primary or secondary email (after verifying the person)",
    )
    p.add_argument("nr_number", metavar="NUMBER")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--primary", metavar="ADDRESS")
    which.add_argument("--secondary", metavar="ADDRESS")
    which.add_argument("--remove-secondary", action="store_true")
    audited(p)
    p.set_defaults(handler=cmd_set_email)

    p = commands.add_parser(
        "clear-shared",
        parents=[common],
        help="let a once-shared address prove its one account again (after verifying the person)",
    )
    p.add_argument("address", metavar="ADDRESS")
    audited(p)
    p.set_defaults(handler=cmd_clear_shared)

    p = commands.add_parser(
        "export-changes",
        parents=[common],
        help="email and status changes made here since a date, for the registry",
    )
    p.add_argument("--since", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(handler=cmd_export_changes)

    p = commands.add_parser("report", parents=[common], help="migration progress counts")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    p.add_argument("--csv", metavar="FILE", help="also write the weekly table (or --list) as CSV")
    p.add_argument(
        "--list",
        default="weekly",
        choices=["weekly", "shared", "institutional", "never-linked", "paused"],
        help="what --csv holds: the weekly table (default) or a list of stuck cases",
    )
    p.set_defaults(handler=cmd_report)

    p = commands.add_parser(
        "run-cleanup", parents=[common], help="delete expired flows now (one bounded run)"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="items per run (default CLEANUP_BATCH_SIZE)"
    )
    p.set_defaults(handler=cmd_run_cleanup)

    p = commands.add_parser(
        "send-reminders",
        parents=[common],
        help="email reminders about institutional primary emails",
    )
    p.set_defaults(handler=cmd_send_reminders)

    p = commands.add_parser(
        "campaign",
        parents=[common],
        help="the migration campaign's mail: status, run now, pause, resume",
    )
    campaign_commands = p.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")
    q = campaign_commands.add_parser(
        "status", parents=[common], help="waves, mails per wave, the last run, the next"
    )
    q.set_defaults(handler=cmd_campaign)
    q = campaign_commands.add_parser(
        "run", parents=[common], help="run the campaign now, as the daily function does"
    )
    q.add_argument(
        "--limit", type=int, default=None, help="mails at most (default CAMPAIGN_MAX_SENDS_PER_RUN)"
    )
    q.set_defaults(handler=cmd_campaign)
    q = campaign_commands.add_parser(
        "backfill",
        parents=[common],
        help="put accounts created before the campaign's index into it (once per stage)",
    )
    q.set_defaults(handler=cmd_campaign)
    for name, helptext in (
        ("pause", "stop the campaign's mail from the next run on (no deploy)"),
        ("resume", "let the campaign mail again"),
    ):
        q = campaign_commands.add_parser(name, parents=[common], help=helptext)
        q.add_argument("--actor", help="your name (default $USER)")
        q.set_defaults(handler=cmd_campaign)

    p = commands.add_parser(
        "trace",
        parents=[common],
        help="find the request behind a reference shown on a refusal page",
    )
    p.add_argument(
        "reference",
        metavar="REFERENCE",
        help="the reference the person read from the page (8 letters and digits)",
    )
    p.add_argument(
        "--log-file",
        metavar="FILE",
        help="search this file of log lines (make run's output, a CloudWatch "
        "export) instead of printing the CloudWatch Logs Insights query",
    )
    p.add_argument(
        "--days", type=int, default=7, help="time range of the printed AWS CLI command (default 7)"
    )
    p.set_defaults(handler=cmd_trace)

    p = commands.add_parser(
        "backfill-search-keys",
        parents=[common],
        help="give older accounts the support console's search keys (names, Login.gov "
        "email); once after deploying the console's search; idempotent",
    )
    p.add_argument(
        "--page-size", type=int, default=500, help="accounts read per page (default 500)"
    )
    p.set_defaults(handler=cmd_backfill_search_keys)

    p = commands.add_parser(
        "check-email-keys",
        parents=[common],
        help="list stored email keys the normalization rule would change "
        "(read-only; exit 1 when there are any)",
    )
    p.set_defaults(handler=cmd_check_email_keys)

    p = commands.add_parser(
        "staff", parents=[common], help="the support console's staff list: add, remove, list"
    )
    staff_commands = p.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    q = staff_commands.add_parser(
        "add",
        parents=[common],
        help="put someone on the staff list (pending until their first console sign-in)",
    )
    q.add_argument("email", metavar="EMAIL", help="the email of their Login.gov account")
    q.add_argument("--role", required=True, help="viewer, agent or supervisor")
    q.add_argument(
        "--sub",
        metavar="LOGIN_GOV_SUB",
        help="bind to this Login.gov identity at once instead of at their first sign-in",
    )
    q.add_argument("--reason", help="why (kept in the desk audit trail)")
    q.add_argument("--actor", help="your name in the desk audit trail (default $USER)")
    q.set_defaults(handler=cmd_staff_add)
    q = staff_commands.add_parser(
        "remove",
        parents=[common],
        help="take someone off the staff list; their console sessions end at once",
    )
    q.add_argument("who", metavar="EMAIL_OR_SUB")
    q.add_argument("--reason", help="why (kept in the desk audit trail)")
    q.add_argument("--actor", help="your name in the desk audit trail (default $USER)")
    q.set_defaults(handler=cmd_staff_remove)
    q = staff_commands.add_parser("list", parents=[common], help="the staff list")
    q.set_defaults(handler=cmd_staff_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return int(exit_.code or 0)
    if getattr(args, "batch_size", None) is not None and args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "page_size", 1) < 1:
        print("error: --page-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        apply_stage_environment(args.stage, Path(args.config))
        _sync_chalicelib()
        from chalicelib import logs
        from chalicelib.config import ConfigurationError
        from supportdesk.aws_trouble import explain as explain_aws_trouble
        from supportdesk.desk import SupportError
    except CliError as exc:
        _error(exc)
        return exc.exit_code

    # Log lines go to stderr here, so stdout stays clean for --json.
    handlers = [h for h in logs.logger.handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        return args.handler(args)
    except CliError as exc:
        _error(exc)
        return exc.exit_code
    except SupportError as exc:
        _error(exc)
        return exc.exit_code
    except ConfigurationError as exc:
        _error(f"configuration: {exc}")
        return EXIT_USAGE
    except Exception as exc:
        trouble = explain_aws_trouble(exc)
        if trouble is None:
            raise  # a bug: the traceback is what an engineer needs
        _error(trouble.message)
        return trouble.exit_code
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.setStream(stream)


if __name__ == "__main__":
    sys.exit(main())
