"""The CloudFormation templates in infra/ as the tests read them, and what the Lambda
Python runtime provides (for importing a deployment zip as Lambda would)."""

from __future__ import annotations

from pathlib import Path

from cfnlint.decode import decode

from tests.support import PROJECT_DIR

TEMPLATE = PROJECT_DIR / "infra" / "template.yaml"

# What the Lambda Python runtime provides: boto3 and the packages it depends on.
LAMBDA_RUNTIME_DISTRIBUTIONS = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
}
LAMBDA_RUNTIME_MODULES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
)


def load_template(path: Path = TEMPLATE) -> dict:
    template, matches = decode(str(path))
    assert not matches, matches
    return template


def sub(value, **names: str) -> str:
    """Resolve a template's `!Sub "..${Name}.."` for the given parameter values."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    for name, replacement in names.items():
        text = text.replace(f"${{{name}}}", replacement)
    return text


def as_set(entries) -> set[tuple[str, str]]:
    return {tuple(sorted(entry.items())) for entry in entries}


def lambda_like_runtime(tmp_path: Path) -> Path:
    """A directory holding only what the runtime provides (symlinks to this venv's copies)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in LAMBDA_RUNTIME_MODULES:
        found = __import__(name).__file__
        assert found is not None, name
        source = Path(found)
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)
    return runtime
