"""Infrastructure: the template lints clean, creates tables the models can use, agrees with
.chalice/config.json and the IAM policies, and packages into a small deployment zip.

The packaging tests run `chalice package` in a copy of the project (so they never touch
the shared .chalice/deployments cache) and need PyPI, as `chalice deploy` does.
"""

from __future__ import annotations

import ast
import email.parser
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from moto import mock_aws
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pynamodb.attributes import NumberAttribute

from chalicelib import edge, logs, models
from localdev import provision
from tests.support import stages as policies
from tests.support.infra import (
    LAMBDA_RUNTIME_DISTRIBUTIONS,
    as_set,
    lambda_like_runtime,
    load_template,
    sub,
)
from tests.support.stages import chalice_config, stage_env

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHALICE_DIR = PROJECT_DIR / ".chalice"
BIN_DIR = Path(sys.executable).parent
# Sources and their bytecode (infra/add_bytecode.py): about 8.2 MB; Lambda allows 50.
MAX_ZIP_BYTES = 10_000_000
DEPLOYED_STAGES = ("dev", "prod")
STACK_TEST_PREFIX = "nrcme-infratest-"
TABLE_RESOURCES = {
    models.Account: "AccountsTable",
    models.Claim: "ClaimsTable",
    models.Flow: "FlowsTable",
    models.AuditEvent: "AuditTable",
}


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)


# --- (a) lint --------------------------------------------------------------------------------

# Stacks of their own; api_responses.yaml is a fragment `make package` merges into the app's
# SAM template (linted there, by test_merged_sam_template_has_no_cfn_lint_findings).
TEMPLATES = [
    PROJECT_DIR / "infra" / name for name in ("template.yaml", "waf.yaml", "console_waf.yaml")
]


def test_infra_holds_the_stack_and_the_edge_templates():
    assert sorted(path.name for path in (PROJECT_DIR / "infra").glob("*.yaml")) == [
        "api_responses.yaml",
        "console_waf.yaml",  # the support console's edge (tests/test_console_infra.py)
        "template.yaml",
        "waf.yaml",
    ]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_template_has_no_cfn_lint_findings(template):
    result = run([str(BIN_DIR / "cfn-lint"), "--", str(template)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# --- (b) the models and the template describe the same tables --------------------------------


@pytest.mark.parametrize("model", list(TABLE_RESOURCES), ids=lambda m: m.__name__)
def test_template_table_matches_model_schema(model):
    table = load_template()["Resources"][TABLE_RESOURCES[model]]["Properties"]
    schema = model._get_schema()

    assert sub(table["TableName"], TablePrefix="p-") == "p-" + models.TABLE_SUFFIXES[model]
    assert as_set(table["KeySchema"]) == as_set(schema["key_schema"])
    assert as_set(table["AttributeDefinitions"]) == as_set(schema["attribute_definitions"])
    template_indexes = {
        index["IndexName"]: (as_set(index["KeySchema"]), index["Projection"]["ProjectionType"])
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    model_indexes = {
        index["index_name"]: (as_set(index["key_schema"]), index["projection"]["ProjectionType"])
        for index in schema["global_secondary_indexes"]
    }
    assert template_indexes == model_indexes
    assert not schema["local_secondary_indexes"] and "LocalSecondaryIndexes" not in table


def test_every_table_is_on_demand_encrypted_recoverable_protected_and_tagged():
    template = load_template()
    for logical_id in TABLE_RESOURCES.values():
        resource = template["Resources"][logical_id]
        table = resource["Properties"]
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["SSESpecification"]["SSEType"] == "KMS"
        assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
        assert table["DeletionProtectionEnabled"] == {"Fn::If": ["IsDeployed", True, False]}
        assert {tag["Key"] for tag in table["Tags"]} == {"Project", "Stage", "DataClassification"}
    assert template["Resources"]["DataKey"]["Properties"]["EnableKeyRotation"] is True


def test_cloudwatch_may_use_the_key_only_for_this_accounts_alarms():
    statements = load_template()["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [
        s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    condition = cloudwatch["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert sub(condition["ArnLike"]["aws:SourceArn"]) == (
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
    )
    # Every other principal is the account itself (access delegated to IAM).
    others = [s for s in statements if s is not cloudwatch]
    assert [s["Principal"] for s in others] == [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    ]


def test_a_reached_guess_cap_raises_an_alarm():
    alarm = load_template()["Resources"]["RecoveryGuessCapAlarm"]
    properties = alarm["Properties"]
    assert alarm["Condition"] == "IsDeployed"
    # The app's embedded metric (chalicelib.logs.count): namespace, name, no dimensions.
    assert (properties["Namespace"], properties["MetricName"]) == (
        logs.METRIC_NAMESPACE,
        "RecoveryGuessCapReached",
    )
    assert "Dimensions" not in properties
    assert (
        properties["Statistic"],
        properties["Period"],
        properties["Threshold"],
        properties["ComparisonOperator"],
    ) == ("Sum", 300, 1, "GreaterThanOrEqualToThreshold")
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_flows_ttl_is_the_models_expiry_attribute():
    flows = load_template()["Resources"]["FlowsTable"]["Properties"]
    ttl = flows["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True
    # TTL needs epoch seconds in a Number attribute.
    assert isinstance(models.Flow.get_attributes()[ttl["AttributeName"]], NumberAttribute)


@pytest.fixture
def stack_tables(monkeypatch):
    """An in-process moto account whose tables come from infra/template.yaml."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        outputs = provision.create_stack_from_template(
            stage="local", table_prefix=STACK_TEST_PREFIX
        )
        models.use_table_prefix(STACK_TEST_PREFIX)
        try:
            yield outputs
        finally:
            models.use_table_prefix(os.environ.get("TABLE_PREFIX", "nrcme-local-"))


def test_stack_outputs_name_every_table_key_and_topic(stack_tables):
    for suffix in models.TABLE_SUFFIXES.values():
        name = stack_tables[f"{suffix.capitalize()}TableName"]
        assert name == STACK_TEST_PREFIX + suffix
        assert stack_tables[f"{suffix.capitalize()}TableArn"].endswith(":table/" + name)
    assert stack_tables["DataKeyArn"].startswith("arn:aws:kms:")
    assert stack_tables["AlarmTopicArn"].startswith("arn:aws:sns:")
    assert stack_tables["LoginGovPrivateKeyParameterName"] == "/nrcme/local/login-gov-private-key"


def test_provisioning_twice_leaves_the_stack_and_its_data_alone(stack_tables):
    models.Claim("email#kept@example.com", nr_number="1000000001").save()
    again = provision.create_stack_from_template(stage="local", table_prefix=STACK_TEST_PREFIX)
    assert again == stack_tables
    assert models.Claim.get("email#kept@example.com").nr_number == "1000000001"


def test_models_read_and_write_every_stack_table_and_index(stack_tables):
    now = int(time.time())
    expires = now + 600
    bucket = models.expiry_bucket(expires)
    sub_id = "5f3c1d2e-8a4b-4c6d-9e0f-123456789abc"

    models.Account(
        "1000000001",
        first_name="Alice",
        last_name="Examiner",
        role="medical_examiner",
        primary_email="Alice@Example.com",
        primary_email_normalized="alice@example.com",
    ).save()
    models.Claim(models.Claim.email_key("alice@example.com"), nr_number="1000000001").save()
    models.SignInState(
        "signin#abc",
        expires_at=expires,
        expiry_bucket=bucket,
        created_at=now,
        nonce="n" * 22,
        browser_hash="b" * 64,
        return_to="/account",
    ).save()
    models.Session(
        "session#def",
        expires_at=expires,
        expiry_bucket=bucket,
        created_at=now,
        subject=sub_id,
        nr_number="1000000001",
        absolute_expires_at=now + 3600,
        csrf_token="c" * 32,
    ).save()
    models.AuditEvent(
        "1000000001",
        f"2026-01-01T00:00:00Z#identity_linked#{now}",
        event="identity_linked",
        actor="user",
    ).save()

    assert models.Account.get("1000000001").version == 1
    assert models.Claim.get("email#alice@example.com").nr_number == "1000000001"
    state = models.Flow.get("signin#abc")
    assert isinstance(state, models.SignInState) and state.nonce == "n" * 22
    # Typed queries through the model's own indexes: both project `kind`, the discriminator
    # PynamoDB filters every Flow query on.
    expired_soon = models.Flow.by_expiry.query(bucket, models.Flow.expires_at <= expires)
    assert sorted(item.flow_id for item in expired_soon) == ["session#def", "signin#abc"]
    by_subject = list(models.Flow.by_subject.query(sub_id))
    assert [item.flow_id for item in by_subject] == ["session#def"]
    assert isinstance(by_subject[0], models.Session)
    events = list(models.AuditEvent.query("1000000001"))
    assert [event.event for event in events] == ["identity_linked"]


def test_a_linking_transaction_commits_across_stack_tables(stack_tables):
    from pynamodb.connection import Connection
    from pynamodb.transactions import TransactWrite

    account = models.Account(
        "1000000002",
        first_name="Bo",
        last_name="Examiner",
        role="medical_examiner",
        primary_email="bo@example.com",
        primary_email_normalized="bo@example.com",
    )
    account.save()
    account = models.Account.get("1000000002")
    with TransactWrite(connection=Connection()) as tx:
        tx.save(
            models.Claim("sub#abc", nr_number="1000000002"),
            condition=models.Claim.claim.does_not_exist(),
        )
        tx.update(
            account,
            actions=[models.Account.linked_sub.set("abc")],
            condition=models.Account.linked_sub.does_not_exist(),
        )
        tx.save(
            models.AuditEvent(
                "1000000002",
                "2026-01-01T00:00:00Z#identity_linked#1",
                event="identity_linked",
                actor="user",
            )
        )
    assert models.Account.get("1000000002").linked_sub == "abc"


def test_moto_tables_have_the_templates_indexes(stack_tables):
    import boto3

    def indexes(table: str) -> dict[str, str]:
        described = boto3.client("dynamodb").describe_table(TableName=stack_tables[table])
        return {
            index["IndexName"]: index["Projection"]["ProjectionType"]
            for index in described["Table"].get("GlobalSecondaryIndexes", [])
        }

    assert indexes("FlowsTableName") == {
        "by_expiry": "INCLUDE",
        "by_subject": "INCLUDE",
        "by_account": "INCLUDE",
    }
    # The support console's search (supportdesk/console/search.py); the campaign's sparse
    # index of never-linked accounts (chalicelib/campaign.py).
    assert indexes("AccountsTableName") == {"by_name": "INCLUDE", "by_awaiting_link": "ALL"}
    assert indexes("ClaimsTableName") == {"by_login_gov_email": "INCLUDE"}


# --- config, policies and template agree (they are written by hand in three places) ------------


def test_local_stage_points_at_emulators_and_never_holds_the_private_key():
    env = stage_env("local")
    assert env["LOGIN_GOV_ISSUER"] == "http://127.0.0.1:8001/"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    # `chalice local` lets config override the process environment, where the runner puts it.
    assert "LOGIN_GOV_PRIVATE_KEY" not in env


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_deployed_stage_config_matches_its_policies_and_the_template(stage):
    """The names the config, the template and every function's policy share. What each
    policy may do is tests/test_policies.py's subject."""
    config = chalice_config()
    env = stage_env(stage)
    template = load_template()
    issuers = {"dev": "https://idp.int.identitysandbox.gov/", "prod": "https://secure.login.gov/"}

    assert env["LOGIN_GOV_ISSUER"] == issuers[stage]
    assert env["APP_BASE_URL"].startswith("https://")
    assert "LOGIN_GOV_PRIVATE_KEY" not in env and "AWS_ENDPOINT_URL" not in env
    # The 5XX alarm's Stage dimension and the WAF association are the API Gateway stage.
    assert config["stages"][stage]["api_gateway_stage"] == stage
    assert env["TABLE_PREFIX"] == f"nrcme-{stage}-"

    outputs = template["Outputs"]
    secret_names = {env["LOGIN_GOV_PRIVATE_KEY_PARAMETER"], env["HMAC_ROOT_KEY_PARAMETER"]}
    assert secret_names == {
        sub(outputs["LoginGovPrivateKeyParameterName"]["Value"], Stage=stage),
        sub(outputs["HmacRootKeyParameterName"]["Value"], Stage=stage),
    }
    secret_arns = {f"arn:aws:ssm:us-east-1:*:parameter{name}" for name in secret_names}
    alias = sub(template["Resources"]["DataKeyAlias"]["Properties"]["AliasName"], Stage=stage)

    for function in policies.FUNCTIONS:
        by_sid = {s["Sid"]: s for s in policies.policy(stage, function)["Statement"]}
        if "ReadStageSecrets" in by_sid:
            assert set(by_sid["ReadStageSecrets"]["Resource"]) <= secret_arns
        kms = by_sid["TableKeyOnlyThroughDynamoDB"]["Condition"]
        assert kms["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == alias
        assert kms["StringEquals"]["kms:ViaService"] == "dynamodb.us-east-1.amazonaws.com"
        if "SendMailAsStageSenderOnly" in by_sid:
            mail = by_sid["SendMailAsStageSenderOnly"]
            assert mail["Condition"]["StringEquals"]["ses:FromAddress"] == env["MAIL_SENDER"]
            assert mail["Resource"] == [
                "arn:aws:ses:us-east-1:*:identity/" + env["MAIL_SENDER"].split("@", 1)[1]
            ]


# --- (c), (d) chalice package ------------------------------------------------------------------


def makefile_merge_templates() -> list[str]:
    """The templates `make package` merges (Makefile MERGE_TEMPLATES), in order."""
    for line in (PROJECT_DIR / "Makefile").read_text().splitlines():
        if line.startswith("MERGE_TEMPLATES :="):
            return line.split(":=", 1)[1].split()
    raise AssertionError("Makefile has no MERGE_TEMPLATES")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """`make package STAGE=prod` of a project copy: infra/merge_templates.py merges the
    Makefile's MERGE_TEMPLATES into one file, `chalice package --merge-template` it, and
    infra/add_bytecode.py compiles the zip and the copy `chalice deploy` reuses."""
    root = tmp_path_factory.mktemp("package")
    project = root / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "deployed")
    project.mkdir()
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(PROJECT_DIR / name, project / name)
    for name in ("chalicelib", "infra", ".chalice", "vendor"):
        if (PROJECT_DIR / name).exists():
            shutil.copytree(PROJECT_DIR / name, project / name, ignore=ignore)
    out = root / "out"
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    # The Lambda runtime has boto3/botocore; requirements.txt pins everything else, and
    # PIP_NO_DEPS keeps Chalice's pip from pulling botocore back in through pynamodb.
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "PIP_NO_DEPS": "1"})
    result = run(
        [
            sys.executable,
            "infra/merge_templates.py",
            "--stage",
            "prod",
            "--out",
            str(root / "merge-template.yaml"),
            *makefile_merge_templates(),
        ],
        cwd=project,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(
        [
            str(BIN_DIR / "chalice"),
            "package",
            "--stage",
            "prod",
            "--merge-template",
            str(root / "merge-template.yaml"),
            str(out),
        ],
        cwd=project,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(
        [sys.executable, "infra/add_bytecode.py", "--chalice-cache", str(out / "deployment.zip")],
        cwd=project,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_merged_sam_template_has_no_cfn_lint_findings(packaged):
    # A YAML merge template makes Chalice write sam.yaml rather than sam.json.
    (sam,) = [p for p in (packaged / "sam.yaml", packaged / "sam.json") if p.exists()]
    result = run([str(BIN_DIR / "cfn-lint"), "--", str(sam)])
    assert result.returncode == 0, result.stdout + result.stderr
    resources = load_template(sam)["Resources"]
    assert {"APIHandler", "FlowsTable", "DataKey"} <= set(resources)


def test_api_gateway_answers_unknown_paths_and_methods_with_the_sites_404_page(
    packaged, monkeypatch
):
    from chalicelib import config, pages
    from chalicelib.errors import NotFound

    for name, value in stage_env("prod").items():
        if name.startswith("SUPPORT_"):  # the page names the stage's support desk
            monkeypatch.setenv(name, value)
    (sam,) = [p for p in (packaged / "sam.yaml", packaged / "sam.json") if p.exists()]
    api = load_template(sam)["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert "/{proxy+}" in api["paths"]  # unknown paths: the app's 404 route
    responses = api["x-amazon-apigateway-gateway-responses"]
    entry = pages.response_for(NotFound("probe"))
    config.reset_settings()
    page = pages.render(entry.template, status=entry.status, signed_in=False).body
    assert config.support_contact().phone in page
    for kind in ("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND"):
        response = responses[kind]
        assert int(response["statusCode"]) == entry.status == 404
        assert set(response["responseTemplates"].values()) == {page}
        headers = {
            name.removeprefix("gatewayresponse.header."): value
            for name, value in response["responseParameters"].items()
        }
        assert headers == {
            name: f"'{value}'"
            for name, value in {"Content-Type": pages.HTML, **edge.SECURITY_HEADERS}.items()
        }
    monkeypatch.undo()
    config.reset_settings()


def test_deployment_zip_is_small(packaged):
    size = (packaged / "deployment.zip").stat().st_size
    print(f"deployment.zip: {size:,} bytes ({size / 1e6:.2f} MB)")
    with zipfile.ZipFile(packaged / "deployment.zip") as zipped:
        top_level = {name.split("/", 1)[0] for name in zipped.namelist()}
    assert not top_level & {"boto3", "botocore"}, "the Lambda runtime provides boto3/botocore"
    assert size <= MAX_ZIP_BYTES, f"deployment.zip is {size:,} bytes, over {MAX_ZIP_BYTES:,}"


# Code that runs on a desk or a developer's machine, never in a Lambda function.
NOT_SHIPPED = ("supportdesk", "manage.py", "localdev", "tests", "bench", "infra", "docs")


def test_deployment_zip_holds_no_support_desk_or_local_code(packaged):
    with zipfile.ZipFile(packaged / "deployment.zip") as zipped:
        names = zipped.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert not top_level & set(NOT_SHIPPED), sorted(top_level & set(NOT_SHIPPED))
    ours = sorted(n for n in names if n == "app.py" or n.startswith("chalicelib/"))
    assert "app.py" in ours and "chalicelib/routes/signin_routes.py" in ours
    # Nothing the functions run may reach back to the desk's or local code.
    reaching = [
        path
        for path, text in _shipped_python(packaged)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and {
            (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
            for alias in node.names
        }
        & {"supportdesk", "localdev", "manage"}
    ]
    assert reaching == [], reaching


def _shipped_python(packaged):
    with zipfile.ZipFile(packaged / "deployment.zip") as zipped:
        for name in zipped.namelist():
            if name == "app.py" or (name.startswith("chalicelib/") and name.endswith(".py")):
                yield name, zipped.read(name).decode()


@pytest.fixture(scope="module")
def unpacked(packaged, tmp_path_factory):
    task = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(packaged / "deployment.zip") as zipped:
        zipped.extractall(task)
    return task


def requirements_txt() -> list[Requirement]:
    lines = (
        line.split(" #", 1)[0].strip()
        for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    )
    return [Requirement(line) for line in lines if line and not line.startswith(("#", "-"))]


def test_deployment_zip_holds_every_dependency_of_what_it_ships(unpacked):
    """With PIP_NO_DEPS, requirements.txt must list the whole closure: walk it here."""
    shipped = {}
    for metadata in unpacked.glob("*.dist-info/METADATA"):
        message = email.parser.Parser().parsestr(metadata.read_text(encoding="utf-8"))
        shipped[canonicalize_name(message["Name"])] = message
    wanted = [(canonicalize_name(r.name), frozenset(r.extras)) for r in requirements_txt()]
    missing, seen = set(), set()
    while wanted:
        name, extras = wanted.pop()
        if (name, extras) in seen or name in LAMBDA_RUNTIME_DISTRIBUTIONS:
            continue
        seen.add((name, extras))
        if name not in shipped:
            missing.add(name)
            continue
        # Markers are evaluated for this interpreter: CPython 3.11 on Linux, as on Lambda.
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        for line in shipped[name].get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(
                requirement.marker.evaluate(env) for env in environments
            ):
                wanted.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    assert not missing, f"pin these in requirements.txt: {sorted(missing)}"


def third_party_imports() -> set[str]:
    """Every module app.py and chalicelib import, lazy imports inside functions included."""
    modules = set()
    for path in [PROJECT_DIR / "app.py", *(PROJECT_DIR / "chalicelib").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    local = {"app", "chalicelib", "__future__"} | set(sys.stdlib_module_names)
    return {module for module in modules if module.split(".")[0] not in local}


def test_deployment_zip_imports_on_a_lambda_like_path(unpacked, tmp_path):
    """Only the zip plus what the runtime provides: a missing package fails here, not in AWS."""
    runtime = lambda_like_runtime(tmp_path)
    modules = sorted(third_party_imports())
    assert "pynamodb.models" in modules and "jwt" in modules
    check = (
        "import sys, importlib, pkgutil\n"
        f"sys.path[:0] = [{str(unpacked)!r}, {str(runtime)!r}]\n"
        "import app, chalicelib\n"
        "for m in pkgutil.walk_packages(chalicelib.__path__, 'chalicelib.'):\n"
        "    importlib.import_module(m.name)\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(app.app.app_name)\n"
    )
    # -I -S: no site-packages and no PYTHON* variables, as in a bare Lambda sandbox.
    result = run(
        [sys.executable, "-I", "-S", "-c", check],
        env={"PATH": os.environ.get("PATH", ""), "TABLE_PREFIX": "nrcme-prod-"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "nrcme-signin"


def test_a_cold_start_compiles_nothing_it_ships(unpacked, tmp_path):
    """Every module the first /login imports from the zip comes from its bytecode."""
    runtime = lambda_like_runtime(tmp_path)
    check = (
        f"import sys\nsys.path[:0] = [{str(unpacked)!r}, {str(runtime)!r}]\n"
        "import app, chalicelib.login_gov, pynamodb.models, jinja2, jwt\n"
    )
    # -B: Lambda's code directory is read-only, nothing can be written beside the sources.
    result = run(
        [sys.executable, "-I", "-S", "-B", "-v", "-c", check],
        env={"PATH": os.environ.get("PATH", ""), "TABLE_PREFIX": "nrcme-prod-"},
    )
    assert result.returncode == 0, result.stderr
    loaded = [
        line.split("code object from ", 1)[1].strip("'")
        for line in result.stderr.splitlines()
        if line.startswith("# code object from ") and str(unpacked) in line
    ]
    compiled_here = [path for path in loaded if not path.endswith(".pyc")]
    assert compiled_here == [], compiled_here
    assert any(path.endswith("chalicelib/__pycache__/signin.cpython-311.pyc") for path in loaded)
    assert any("/pynamodb/__pycache__/" in path for path in loaded)


def test_bytecode_that_does_not_match_its_source_is_not_used(unpacked, tmp_path):
    """Checked-hash bytecode: an edited source is what runs, never the old bytecode."""
    task = tmp_path / "task"
    (task / "idna" / "__pycache__").mkdir(parents=True)
    source, bytecode = "idna/package_data.py", "idna/__pycache__/package_data.cpython-311.pyc"
    shutil.copy2(unpacked / source, task / source)
    shutil.copy2(unpacked / bytecode, task / bytecode)
    with (task / source).open("a") as edited:
        edited.write("\nEDITED = True\n")
    result = run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-c",
            f"import sys; sys.path[:0] = [{str(task)!r}]\n"
            "import idna.package_data as m; print(getattr(m, 'EDITED', False))",
        ],
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_add_bytecode_replaces_timestamp_bytecode_and_keeps_every_entry(tmp_path):
    import importlib.util
    import py_compile

    sys.path.insert(0, str(PROJECT_DIR / "infra"))
    try:
        import add_bytecode
    finally:
        sys.path.remove(str(PROJECT_DIR / "infra"))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 1\n")
    stale = py_compile.compile(
        str(tmp_path / "pkg" / "mod.py"),
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
    )
    zip_path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(zip_path, "w") as zipped:
        zipped.writestr("pkg/mod.py", "VALUE = 1\n")
        zipped.write(stale, "pkg/__pycache__/mod.cpython-311.pyc")
        zipped.writestr("pkg/broken.py", "def (:\n")
        zipped.writestr("pkg/data.json", "{}")
    zip_path.chmod(0o644)

    assert add_bytecode.main([str(zip_path)]) == 0
    with zipfile.ZipFile(zip_path) as zipped:
        assert zipped.testzip() is None
        names = set(zipped.namelist())
        header = zipped.read("pkg/__pycache__/mod.cpython-311.pyc")[:8]
    assert names == {
        "pkg/mod.py",
        "pkg/__pycache__/mod.cpython-311.pyc",
        "pkg/broken.py",
        "pkg/data.json",
    }
    assert header == importlib.util.MAGIC_NUMBER + (3).to_bytes(4, "little")  # checked hash
    assert zip_path.stat().st_mode & 0o777 == 0o644
    assert add_bytecode.add_bytecode(zip_path) == 0  # a second run changes nothing


def test_chalice_deploy_reuses_the_compiled_zip(packaged):
    """`chalice deploy` and `chalice package` build through the same cache: packaging the
    unchanged project again must hand out the compiled zip, not a fresh uncompiled one."""
    project = packaged.parent / "project"
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "PIP_NO_DEPS": "1"})
    again = packaged.parent / "again"
    result = run(
        [str(BIN_DIR / "chalice"), "package", "--stage", "prod", str(again)], cwd=project, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(again / "deployment.zip") as zipped:
        names = set(zipped.namelist())
    assert "chalicelib/__pycache__/edge.cpython-311.pyc" in names
    assert "jinja2/__pycache__/environment.cpython-311.pyc" in names


# --- the outbox -------------------------------------------------------------------------------


def test_the_outbox_queue_is_encrypted_redriven_to_a_watched_dead_letter_queue():
    from localdev.outbox_worker import MAX_RECEIVES

    resources = load_template()["Resources"]
    queue, dead = (
        resources["OutboxQueue"]["Properties"],
        resources["OutboxDeadLetterQueue"]["Properties"],
    )
    assert queue["QueueName"] == {"Fn::Sub": "${TablePrefix}outbox"}
    for props in (queue, dead):
        assert props["KmsMasterKeyId"] == {"Ref": "DataKey"}
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["OutboxDeadLetterQueue", "Arn"]},
        "maxReceiveCount": MAX_RECEIVES,
    }
    # AWS: a visibility timeout of at least six times the consumer's timeout.
    worker_timeout = chalice_config()["lambda_functions"]["send_queued_mail"]["lambda_timeout"]
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    alarm = resources["OutboxDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["OutboxDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("stage", ("local",) + DEPLOYED_STAGES)
def test_each_stage_sends_and_reads_the_queue_its_stack_names(stage):
    env = stage_env(stage)
    assert env["OUTBOX_QUEUE_NAME"] == env["TABLE_PREFIX"] + "outbox"


# --- bounces and complaints (chalicelib/mail_feedback.py) -------------------------------------


def test_ses_bounces_and_complaints_reach_the_feedback_queue_under_their_own_key():
    resources = load_template()["Resources"]
    events = resources["MailFeedbackEvents"]["Properties"]
    assert events["ConfigurationSetName"] == {"Ref": "MailConfigurationSet"}
    destination = events["EventDestination"]
    assert destination["Enabled"] is True
    assert sorted(destination["MatchingEventTypes"]) == ["bounce", "complaint"]
    assert destination["SnsDestination"] == {"TopicARN": {"Ref": "MailFeedbackTopic"}}
    subscription = resources["MailFeedbackSubscription"]["Properties"]
    assert subscription == {
        "TopicArn": {"Ref": "MailFeedbackTopic"},
        "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": ["MailFeedbackQueue", "Arn"]},
    }
    (statement,) = resources["MailFeedbackQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    # Only the stage's own topic may write bounces into the queue (forged ones would stop mail).
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "MailFeedbackTopic"}}}
    queue = resources["MailFeedbackQueue"]["Properties"]
    for name in ("MailFeedbackTopic", "MailFeedbackQueue", "MailFeedbackDeadLetterQueue"):
        assert resources[name]["Properties"]["KmsMasterKeyId"] == {"Ref": "MailFeedbackKey"}
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["MailFeedbackDeadLetterQueue", "Arn"]
    }
    handler_timeout = chalice_config()["lambda_functions"]["handle_mail_feedback"]["lambda_timeout"]
    assert queue["VisibilityTimeout"] >= 6 * handler_timeout
    alarm = resources["MailFeedbackDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["MailFeedbackDeadLetterQueue", "QueueName"]}}
    ]
    # SES and SNS may use the feedback key for this account only; the data key admits neither.
    statements = resources["MailFeedbackKey"]["Properties"]["KeyPolicy"]["Statement"]
    services = {
        s["Principal"]["Service"]: s["Condition"] for s in statements if "Service" in s["Principal"]
    }
    assert services == dict.fromkeys(
        ("ses.amazonaws.com", "sns.amazonaws.com"),
        {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    )


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_each_stage_sends_through_its_configuration_set_and_reads_its_feedback_queue(stage):
    env = stage_env(stage)
    resources = load_template()["Resources"]
    assert (
        sub(
            resources["MailFeedbackQueue"]["Properties"]["QueueName"],
            TablePrefix=env["TABLE_PREFIX"],
        )
        == env["MAIL_FEEDBACK_QUEUE_NAME"]
    )
    assert (
        sub(
            resources["MailConfigurationSet"]["Properties"]["Name"], TablePrefix=env["TABLE_PREFIX"]
        )
        == env["SES_CONFIGURATION_SET"]
    )
