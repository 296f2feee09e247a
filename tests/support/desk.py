"""`cli`: the support CLI (manage.main) in-process against moto; `stage_config`: the
.chalice/config.json it reads."""

from __future__ import annotations

import json
import os

import pytest

import manage
from tests.support.aws import APP_ENV


@pytest.fixture
def stage_config(tmp_path, monkeypatch):
    """A .chalice/config.json whose `test` stage sets only what the environment already has."""
    path = tmp_path / "config.json"
    env = {"TABLE_PREFIX": os.environ.get("TABLE_PREFIX", "test-"), **APP_ENV}
    path.write_text(
        json.dumps(
            {
                "version": "2.0",
                "app_name": "nrcme-signin",
                "stages": {
                    "test": {"environment_variables": env},
                    "prod": {"environment_variables": env},
                },
            }
        )
    )
    return path


@pytest.fixture
def cli(aws, stage_config, capsys, monkeypatch):
    """Run manage.py in-process against moto; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("USER", "support-tester")

    def run(*argv, stage="test"):
        capsys.readouterr()
        code = manage.main(["--stage", stage, "--config", str(stage_config), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_json(cli, *argv):
    code, out, err = cli("--json", *argv)
    return code, (json.loads(out) if out.strip() else None), err
