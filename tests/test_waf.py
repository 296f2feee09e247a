"""Edge limits (infra/waf.yaml): every sign-in, recovery and security-event path has a
per-address rate limit, the managed rule groups are on, and the web ACL is attached to the
API's stage. cfn-lint (tests/test_infra.py) checks the template against the WAF schema;
these check what the schema cannot: which paths each rule really matches (evaluated as WAF
does: tests/support/waf.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.infra import load_template
from tests.support.stages import chalice_config
from tests.support.waf import as_seen, matches

WAF_TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "waf.yaml"
# The paths an anonymous client can make us do work on, each with its own limit.
LIMITED_PATHS = (
    "/login",
    "/auth/callback",
    "/link/recover",
    "/link/recover/verify",
    "/api/security-events",
)
OTHER_PATHS = (
    "/",
    "/account",
    "/account/email",
    "/link/no-match",
    "/logout",
    "/signed-out",
    "/loginx",
    "/link/recovery",
    "/api/security-events-x",
)
MANAGED_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesCommonRuleSet",
)
WINDOWS = (60, 120, 300, 600)
RATE_LIMIT_RANGE = (10, 2_000_000_000)


@pytest.fixture(scope="module")
def waf() -> dict:
    return load_template(WAF_TEMPLATE)


def rules(waf: dict) -> list[dict]:
    return waf["Resources"]["WebAcl"]["Properties"]["Rules"]


def rate_rules(waf: dict) -> list[dict]:
    return [rule for rule in rules(waf) if "RateBasedStatement" in rule["Statement"]]


def limits_for(waf: dict, path: str) -> list[int]:
    return [
        rule["Statement"]["RateBasedStatement"]["Limit"]
        for rule in rate_rules(waf)
        if matches(rule["Statement"]["RateBasedStatement"].get("ScopeDownStatement"), path)
    ]


def test_the_web_acl_is_regional_and_allows_what_no_rule_blocks(waf):
    acl = waf["Resources"]["WebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL"  # API Gateway REST stages take regional web ACLs
    assert acl["DefaultAction"] == {"Allow": {}}
    names = [rule["Name"] for rule in rules(waf)]
    priorities = [rule["Priority"] for rule in rules(waf)]
    assert len(set(names)) == len(names) and len(set(priorities)) == len(priorities)


@pytest.mark.parametrize("path", LIMITED_PATHS)
def test_each_limited_path_has_its_own_rate_limit_below_the_general_ceiling(waf, path):
    (ceiling,) = [
        rule["Statement"]["RateBasedStatement"]["Limit"]
        for rule in rate_rules(waf)
        if "ScopeDownStatement" not in rule["Statement"]["RateBasedStatement"]
    ]
    for seen in as_seen(path):
        limits = limits_for(waf, seen)
        # Its own rule plus the ceiling; its own is the tighter one, or it would never fire.
        assert len(limits) == 2 and min(limits) < ceiling, (seen, limits)


@pytest.mark.parametrize("path", OTHER_PATHS)
def test_other_paths_have_only_the_general_ceiling(waf, path):
    for seen in as_seen(path):
        assert len(limits_for(waf, seen)) == 1, seen


def test_rate_rules_count_per_client_address_and_block_with_a_429(waf):
    body_keys = set(waf["Resources"]["WebAcl"]["Properties"]["CustomResponseBodies"])
    assert len(rate_rules(waf)) == 5
    for rule in rate_rules(waf):
        rate = rule["Statement"]["RateBasedStatement"]
        assert rate["AggregateKeyType"] == "IP", rule["Name"]
        assert rate["EvaluationWindowSec"] in WINDOWS, rule["Name"]
        assert RATE_LIMIT_RANGE[0] <= rate["Limit"] <= RATE_LIMIT_RANGE[1], rule["Name"]
        response = rule["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        assert response["CustomResponseBodyKey"] in body_keys
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True


def test_the_managed_rule_groups_block_and_the_common_set_spares_only_login_gov(waf):
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]: rule
        for rule in rules(waf)
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert set(managed) == set(MANAGED_GROUPS)
    for name, rule in managed.items():
        group = rule["Statement"]["ManagedRuleGroupStatement"]
        assert group["VendorName"] == "AWS"
        # Blocking as AWS ships them: no group in Count, no rule overridden.
        assert rule["OverrideAction"] == {"None": {}}, name
        assert "RuleActionOverrides" not in group and "ExcludedRules" not in group, name
    common = managed["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    scope = common["ScopeDownStatement"]
    for path in LIMITED_PATHS + OTHER_PATHS:
        for seen in as_seen(path):
            assert matches(scope, seen) is (path != "/api/security-events"), seen
    for name in ("AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesKnownBadInputsRuleSet"):
        assert "ScopeDownStatement" not in managed[name]["Statement"]["ManagedRuleGroupStatement"]


def test_the_web_acl_is_attached_to_the_chalice_apis_stage(waf):
    association = waf["Resources"]["WebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert association["ResourceArn"] == {
        "Fn::Sub": (
            "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestApiId}"
            "/stages/${Stage}"
        )
    }
    parameters = waf["Parameters"]
    assert re.fullmatch(parameters["RestApiId"]["AllowedPattern"], "a1b2c3d4e5")
    # The stage name in the ARN is the API Gateway stage Chalice deploys.
    for stage in parameters["Stage"]["AllowedValues"]:
        assert chalice_config()["stages"][stage]["api_gateway_stage"] == stage


def test_blocked_requests_raise_an_alarm_on_the_stage_topic(waf):
    alarm = waf["Resources"]["BlockedRequestsAlarm"]["Properties"]
    acl_name = waf["Resources"]["WebAcl"]["Properties"]["Name"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/WAFV2", "BlockedRequests")
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "WebACL": acl_name,
        "Region": {"Ref": "AWS::Region"},
        "Rule": "ALL",
    }
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopicArn"}]
    assert re.fullmatch(
        waf["Parameters"]["AlarmTopicArn"]["AllowedPattern"],
        "arn:aws:sns:us-east-1:123456789012:nrcme-signin-prod-alarms",
    )
