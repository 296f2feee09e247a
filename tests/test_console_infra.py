"""The support console's infrastructure: the desk table in infra/template.yaml matches its
models and is provisioned like the others, the refused-sign-in alarm watches the metric the
console writes, its web ACL (infra/console_waf.yaml) limits what it should, and its
deployment zip holds the shared code while the examiners' zip still holds none of it.

The packaging test runs the Makefile's console steps in a copy of the project (symlinks
kept), so it never touches console/.chalice/deployments; it needs PyPI, as `chalice
deploy` does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto import mock_aws
from pynamodb.attributes import NumberAttribute

from chalicelib import logs
from localdev import provision
from tests.support import PROJECT_DIR
from tests.support.console import console_config
from tests.support.infra import as_set, lambda_like_runtime, load_template, sub
from tests.support.waf import as_seen, matches

BIN_DIR = Path(sys.executable).parent
CONSOLE_WAF = PROJECT_DIR / "infra" / "console_waf.yaml"
STACK_PREFIX = "nrcme-desktest-"


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=900, **kwargs)


# --- the desk table -------------------------------------------------------------------------------


def test_the_desk_table_matches_its_models():
    from supportdesk.console import models

    table = load_template()["Resources"]["DeskTable"]["Properties"]
    schema = models.DeskItem._get_schema()
    assert sub(table["TableName"], TablePrefix="p-") == "p-" + models.TABLE_SUFFIX
    assert as_set(table["KeySchema"]) == as_set(schema["key_schema"])
    assert as_set(table["AttributeDefinitions"]) == as_set(schema["attribute_definitions"])
    template_indexes = {
        index["IndexName"]: (as_set(index["KeySchema"]), index["Projection"])
        for index in table["GlobalSecondaryIndexes"]
    }
    model_indexes = {
        index["index_name"]: (
            as_set(index["key_schema"]),
            {
                "ProjectionType": index["projection"]["ProjectionType"],
                "NonKeyAttributes": index["projection"]["NonKeyAttributes"],
            },
        )
        for index in schema["global_secondary_indexes"]
    }
    assert template_indexes == model_indexes
    # TTL on the sessions' idle deadline, epoch seconds in a Number attribute.
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert isinstance(models.DeskSession.get_attributes()["expires_at"], NumberAttribute)


def test_the_desk_table_is_encrypted_recoverable_protected_and_tagged_like_the_others():
    resource = load_template()["Resources"]["DeskTable"]
    table = resource["Properties"]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert table["DeletionProtectionEnabled"] == {"Fn::If": ["IsDeployed", True, False]}
    assert {tag["Key"] for tag in table["Tags"]} == {"Project", "Stage", "DataClassification"}


def test_refused_staff_sign_ins_raise_an_alarm_on_the_metric_the_console_writes():
    from chalicelib.errors import ServiceError
    from supportdesk.console import errors, pages

    resources = load_template()["Resources"]
    alarm = resources["StaffSignInRefusedAlarm"]
    properties = alarm["Properties"]
    assert alarm["Condition"] == "IsDeployed"
    assert (properties["Namespace"], properties["MetricName"]) == (
        logs.METRIC_NAMESPACE,
        "StaffSignInRefused",
    )
    assert "Dimensions" not in properties  # counted without dimensions (pages.log_refusal)
    assert (properties["Statistic"], properties["Threshold"]) == ("Sum", 1)
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    # Every refusal of a staff sign-in is a StaffSignInRefused; nothing else is.
    refusals = [cls for cls in vars(errors).values() if isinstance(cls, type)]
    counted = {
        cls
        for cls in refusals
        if issubclass(cls, ServiceError) and issubclass(cls, errors.StaffSignInRefused)
    }
    assert counted == {
        errors.StaffSignInRefused,
        errors.NotOnStaffList,
        errors.AssuranceRefused,
        errors.StaleAuthentication,
    }
    assert all(isinstance(pages.response_for(cls("x")), pages.Page) for cls in counted)
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    assert "/aws/lambda/nrcme-desk-${Stage}" in groups


@pytest.fixture
def desk_stack(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from supportdesk.console import models

    with mock_aws():
        outputs = provision.create_stack_from_template(stage="local", table_prefix=STACK_PREFIX)
        models.use_table_prefix(STACK_PREFIX)
        try:
            yield outputs
        finally:
            models.use_table_prefix(os.environ.get("TABLE_PREFIX", "nrcme-local-"))


def test_the_stack_creates_a_desk_table_the_console_can_use(desk_stack):
    from supportdesk.console import models

    assert desk_stack["DeskTableName"] == STACK_PREFIX + "desk"
    assert desk_stack["DeskLoginGovPrivateKeyParameterName"] == (
        "/nrcme/local/desk-login-gov-private-key"
    )
    models.DeskSession(
        "session#abc",
        "session",
        subject="sub-1",
        created_at=1,
        expires_at=2,
        absolute_expires_at=3,
        authenticated_at=1,
        csrf_token="c",
    ).save()
    models.PendingStaff(
        "pending",
        "a@b.gov",
        email="a@b.gov",
        role="viewer",
        added_by="x",
        added_at=datetime(2026, 1, 1, tzinfo=UTC),
    ).save()
    (found,) = models.DeskItem.by_subject.query("sub-1")
    assert isinstance(found, models.DeskSession) and found.pk == "session#abc"
    assert [p.email for p in models.PendingStaff.query("pending")] == ["a@b.gov"]


# --- the console's web ACL --------------------------------------------------------------------


@pytest.fixture(scope="module")
def waf() -> dict:
    return load_template(CONSOLE_WAF)


def test_the_console_web_acl_lints_clean():
    result = run([str(BIN_DIR / "cfn-lint"), "--", str(CONSOLE_WAF)])
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def _rules(waf: dict) -> list[dict]:
    """The rules as deployed with the desk's networks given (the `!If` taken)."""
    found = []
    for rule in waf["Resources"]["WebAcl"]["Properties"]["Rules"]:
        if "Fn::If" in rule:
            condition, when_true, _ = rule["Fn::If"]
            assert condition == "RestrictToDeskNetworks"
            rule = when_true
        found.append(rule)
    return found


def _limits(waf: dict, path: str) -> list[int]:
    return [
        rule["Statement"]["RateBasedStatement"]["Limit"]
        for rule in _rules(waf)
        if "RateBasedStatement" in rule["Statement"]
        and matches(rule["Statement"]["RateBasedStatement"].get("ScopeDownStatement"), path)
    ]


@pytest.mark.parametrize("path", ["/login", "/auth/callback"])
def test_the_consoles_sign_in_paths_have_their_own_rate_limit(waf, path):
    for seen in as_seen(path):
        limits = _limits(waf, seen)
        assert len(limits) == 2 and min(limits) < max(limits), (seen, limits)


@pytest.mark.parametrize("path", ["/", "/home", "/staff", "/staff/add", "/loginx", "/search"])
def test_other_console_paths_have_the_general_ceiling(waf, path):
    for seen in as_seen(path):
        assert len(_limits(waf, seen)) == 1, seen


def test_the_console_web_acl_keeps_to_the_desks_networks_when_given_and_has_the_managed_rules(
    waf,
):
    rules = _rules(waf)
    names = [rule["Name"] for rule in rules]
    assert len(set(names)) == len(names)
    assert len({rule["Priority"] for rule in rules}) == len(rules)
    (desk_only,) = [r for r in rules if r["Name"] == "desk-networks-only"]
    statement = desk_only["Statement"]["NotStatement"]["Statement"]["IPSetReferenceStatement"]
    assert statement["Arn"] == {"Fn::GetAtt": ["DeskNetworks", "Arn"]}
    assert desk_only["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 403
    assert waf["Resources"]["DeskNetworks"]["Condition"] == "RestrictToDeskNetworks"
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in rules
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert managed == {
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesCommonRuleSet",
    }
    for rule in rules:
        if "RateBasedStatement" in rule["Statement"]:
            assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
            assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429


def test_the_console_web_acl_is_attached_to_the_consoles_stage_and_alarms(waf):
    association = waf["Resources"]["WebAclAssociation"]["Properties"]
    assert association["ResourceArn"] == {
        "Fn::Sub": (
            "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestApiId}"
            "/stages/${Stage}"
        )
    }
    for stage in waf["Parameters"]["Stage"]["AllowedValues"]:
        assert console_config()["stages"][stage]["api_gateway_stage"] == stage
    alarm = waf["Resources"]["BlockedRequestsAlarm"]["Properties"]
    acl_name = waf["Resources"]["WebAcl"]["Properties"]["Name"]
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["WebACL"] == acl_name
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopicArn"}]
    assert sub(acl_name, Stage="prod") == "nrcme-desk-prod"


# --- packaging: the console's zip, and the examiners' zip without it ------------------------------


def makefile_value(name: str) -> list[str]:
    for line in (PROJECT_DIR / "Makefile").read_text().splitlines():
        if line.startswith(f"{name} :="):
            return line.split(":=", 1)[1].split()
    raise AssertionError(f"Makefile has no {name}")


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    """The parts of the project `make package` reads, symlinks kept as symlinks."""
    project = tmp_path_factory.mktemp("desk-package") / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "deployed")
    project.mkdir()
    for name in ("app.py", "requirements.txt", "Makefile"):
        shutil.copy2(PROJECT_DIR / name, project / name)
    for name in ("chalicelib", "supportdesk", "infra", ".chalice", "console"):
        shutil.copytree(PROJECT_DIR / name, project / name, symlinks=True, ignore=ignore)
    return project


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "PIP_NO_DEPS": "1"})
    return env


@pytest.fixture(scope="module")
def console_zip(project_copy) -> Path:
    """The Makefile's console steps: merge its templates, `chalice --project-dir console
    package --stage dev`, compile the zip."""
    out = project_copy.parent / "console-out"
    merged = project_copy.parent / "console-merge-template.yaml"
    steps = [
        [
            sys.executable,
            "infra/merge_templates.py",
            "--stage",
            "dev",
            "--out",
            str(merged),
            *makefile_value("CONSOLE_MERGE_TEMPLATES"),
        ],
        [
            str(BIN_DIR / "chalice"),
            "--project-dir",
            "console",
            "package",
            "--stage",
            "dev",
            "--merge-template",
            str(merged),
            str(out),
        ],
        [
            sys.executable,
            "infra/add_bytecode.py",
            "--chalice-cache",
            "--project-dir",
            "console",
            str(out / "deployment.zip"),
        ],
    ]
    for step in steps:
        result = run(step, cwd=project_copy, env=_env())
        assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_console_is_shared_code_by_symlinks_chalice_packages():
    console = PROJECT_DIR / "console"
    assert os.readlink(console / "chalicelib") == "../chalicelib"
    assert os.readlink(console / "vendor" / "supportdesk") == "../../supportdesk"
    assert os.readlink(console / "requirements.txt") == "../requirements.txt"
    assert not (PROJECT_DIR / "vendor").exists()  # the examiners' app vendors nothing


def test_the_console_zip_holds_its_app_the_shared_code_and_nothing_local(console_zip):
    with zipfile.ZipFile(console_zip / "deployment.zip") as zipped:
        names = set(zipped.namelist())
        app_source = zipped.read("app.py").decode()
    assert 'Chalice(app_name="nrcme-desk")' in app_source
    for name in (
        "chalicelib/signin.py",
        "chalicelib/login_gov.py",
        "chalicelib/templates/base.html",
        "supportdesk/desk.py",  # the desk operations, one implementation with manage.py
        "supportdesk/safe_text.py",
        "supportdesk/console/edge.py",
        "supportdesk/console/routes/staff_routes.py",
        "supportdesk/console/templates/base.html",
        "supportdesk/console/__pycache__/edge.cpython-311.pyc",  # compiled (add_bytecode)
        "pynamodb/models.py",
        "jinja2/environment.py",
    ):
        assert name in names, name
    top = {name.split("/", 1)[0] for name in names}
    assert not top & {
        "localdev",
        "tests",
        "manage.py",
        "bench",
        "infra",
        "console",
        "boto3",
        "botocore",
    }


def test_the_console_sam_template_names_its_own_function_and_lints_clean(console_zip):
    (sam,) = [p for p in (console_zip / "sam.yaml", console_zip / "sam.json") if p.exists()]
    result = run([str(BIN_DIR / "cfn-lint"), "--", str(sam)])
    assert result.returncode == 0, result.stdout + result.stderr
    resources = load_template(sam)["Resources"]
    assert "APIHandler" in resources and "DeskTable" not in resources  # tables: the infra stack
    responses = resources["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"
    ]
    assert int(responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"]) == 404


def test_the_console_zip_imports_on_a_lambda_like_path(console_zip, tmp_path):
    task = tmp_path / "task"
    with zipfile.ZipFile(console_zip / "deployment.zip") as zipped:
        zipped.extractall(task)
    runtime = lambda_like_runtime(tmp_path)
    check = (
        "import sys\n"
        f"sys.path[:0] = [{str(task)!r}, {str(runtime)!r}]\n"
        "import app\n"
        "print(app.app.app_name, sorted(app.app.routes))\n"
    )
    result = run(
        [sys.executable, "-I", "-S", "-c", check],
        env={"PATH": os.environ.get("PATH", ""), "TABLE_PREFIX": "nrcme-dev-"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nrcme-desk ") and "'/staff'" in result.stdout


def test_the_examiners_zip_still_holds_no_support_desk_and_no_console(project_copy):
    out = project_copy.parent / "examiners-out"
    result = run(
        [str(BIN_DIR / "chalice"), "package", "--stage", "dev", str(out)],
        cwd=project_copy,
        env=_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(out / "deployment.zip") as zipped:
        names = zipped.namelist()
        app_source = zipped.read("app.py").decode()
    top = {name.split("/", 1)[0] for name in names}
    assert not top & {"supportdesk", "console", "vendor"}
    assert 'Chalice(app_name="nrcme-signin")' in app_source
    assert not any(re.search(r"desk", name) for name in names if name.startswith("chalicelib/"))
