"""The deployed stages as .chalice/config.json declares them: each stage's environment and
each function's IAM policy file (Chalice's own lookup rules)."""

from __future__ import annotations

import json

from chalice.config import Config

from tests.support import PROJECT_DIR

CHALICE_DIR = PROJECT_DIR / ".chalice"
API_HANDLER = "api_handler"


def chalice_config() -> dict:
    return json.loads((CHALICE_DIR / "config.json").read_text())


# Every function the stages deploy: the API handler and the config's other functions
# (tests/test_policies.py checks these are exactly the app's).
FUNCTIONS = (API_HANDLER, *chalice_config()["lambda_functions"])


def stage_env(stage: str) -> dict[str, str]:
    config = chalice_config()
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def policy_file(stage: str, function: str) -> str | None:
    """The policy file Chalice gives this function in this stage (its own lookup rules)."""
    config = Config(chalice_stage=stage, config_from_disk=chalice_config())
    return config.scope(stage, function).iam_policy_file


def policy(stage: str, function: str) -> dict:
    name = policy_file(stage, function)
    assert name is not None, f"{function} has no policy file in {stage}"
    return json.loads((CHALICE_DIR / name).read_text())
