"""`manage.py check-email-keys`: the stored keys the normalization rule would change.

Data written before the rule stopped case-folding holds keys like `bashir...` for an
address typed `baſhir...`. The check lists them (read-only) so support can re-key them.
"""

from __future__ import annotations

from chalicelib.models import Account, Claim
from tests.support.accounts import make_account, stored_under_the_old_rule
from tests.support.desk import run_json


def test_nothing_to_re_key_exits_0(cli):
    make_account("1000000001", primary="Dr.Alice@Example.com", secondary="ÜNÏ@example.com")
    code, out, _ = cli("check-email-keys")
    assert code == 0
    assert "No stored email key would change" in out


def test_keys_the_rule_would_change_are_listed_and_nothing_is_written(cli):
    make_account("1000000001", primary="dr.alice@example.com")
    make_account(
        "1000000002", primary="b.okafor@example.org", secondary="baſhir.okafor.md@example.com"
    )
    make_account("1000000003", primary="Straße@example.com")
    make_account("1000000004", primary="strasse@example.com", claims=False)
    stored_under_the_old_rule("1000000002", secondary="bashir.okafor.md@example.com")
    stored_under_the_old_rule("1000000003", primary="strasse@example.com")
    before = sorted((c.claim, c.nr_number) for c in Claim.scan())

    code, report, _ = run_json(cli, "check-email-keys")
    assert code == 1
    assert report["accounts_checked"] == 4
    rows = {(r["nr_number"], r["field"]): r for r in report["changes"]}
    assert set(rows) == {("1000000002", "secondary"), ("1000000003", "primary")}
    bashir = rows[("1000000002", "secondary")]
    assert bashir["email"] == "baſhir.okafor.md@example.com"
    assert bashir["stored_key"] == "bashir.okafor.md@example.com"
    assert bashir["new_key"] == "baſhir.okafor.md@example.com"
    assert bashir["stored_key_holder"] == "1000000002" and bashir["new_key_holder"] is None
    assert bashir["conflict"] is False
    # 1000000004 spells strasse with two s: the old key is its address, claimed by 1000000003.
    strasse = rows[("1000000003", "primary")]
    assert (strasse["stored_key"], strasse["new_key"]) == (
        "strasse@example.com",
        "straße@example.com",
    )
    assert strasse["stored_key_holder"] == "1000000003"
    assert strasse["stored_key_also_used_by"] == ["1000000004"]
    # Read-only: the tables are as they were.
    assert sorted((c.claim, c.nr_number) for c in Claim.scan()) == before
    assert Account.get("1000000002").secondary_email_normalized == "bashir.okafor.md@example.com"

    code, out, _ = cli("check-email-keys")
    assert code == 1
    assert "2 stored email keys would change" in out
    assert "baſhir.okafor.md@example.com" in out and "1000000002" in out


def test_a_new_key_another_account_holds_is_a_conflict(cli):
    make_account("1000000001", primary="oﬃce@example.com")
    make_account("1000000002", primary="other@example.com")
    stored_under_the_old_rule("1000000001", primary="office@example.com")
    Claim(Claim.email_key("oﬃce@example.com"), nr_number="1000000002").save()
    code, report, _ = run_json(cli, "check-email-keys")
    assert code == 1
    (row,) = report["changes"]
    assert row["new_key_holder"] == "1000000002" and row["conflict"] is True
