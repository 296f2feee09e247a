"""The one file `chalice package --merge-template` takes, made from several.

`chalice package` merges exactly one template into the SAM template it generates. `make
package` merges several (the tables stack, the API's gateway responses, ...): this script
deep-merges them in order, with Chalice's own rule (chalice.package.TemplateDeepMerger:
mappings merge key by key, anything else in a later file wins), and writes one YAML file.

It also renders the pages the gateway responses serve: a `!Page TEMPLATE` value becomes
that page of chalicelib/templates, as the app renders it for a person who is not signed in,
with the stage's support desk (SUPPORT_* from .chalice/config.json). Run from the project
folder:

    python infra/merge_templates.py --stage prod --out build/merge-template.yaml \\
        infra/template.yaml infra/api_responses.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
PAGE_TAG = "Fn::Page"  # how Chalice's YAML loader reads `!Page x` ({"Fn::Page": "x"})
# API Gateway's mapping templates are Velocity (VTL): a page must not hold anything VTL
# would read as a reference, a comment or a directive.
_VTL = re.compile(
    r"\$|##|#\*|#\{|#(set|if|elseif|else|end|foreach|include|parse|stop|break|"
    r"evaluate|define|macro)\b"
)


def load(path: Path) -> dict:
    from chalice.package import YAMLTemplateSerializer

    return YAMLTemplateSerializer().load_template(path.read_text(encoding="utf-8"), str(path))


def merge(templates: list[dict]) -> dict:
    from chalice.package import TemplateDeepMerger

    merged: dict = {}
    for template in templates:
        merged = TemplateDeepMerger().merge(template, merged)
    return merged


def render_page(template: str, stage_env: dict[str, str]) -> str:
    """A page as the app renders it (no session, no reference), checked to be VTL-safe."""
    saved = {k: os.environ.get(k) for k in stage_env}
    os.environ.update(stage_env)
    try:
        from chalicelib import config, pages

        config.reset_settings()
        html = pages.render(template, status=404, signed_in=False).body
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.reset_settings()
    found = _VTL.search(html)
    if found:
        raise ValueError(
            f"{template} holds {found.group(0)!r}, which API Gateway's template "
            "engine (VTL) would interpret"
        )
    return html


def fill_pages(node, stage_env: dict[str, str]):
    if isinstance(node, dict):
        if set(node) == {PAGE_TAG}:
            return render_page(node[PAGE_TAG], stage_env)
        return {key: fill_pages(value, stage_env) for key, value in node.items()}
    if isinstance(node, list):
        return [fill_pages(value, stage_env) for value in node]
    return node


def support_env(stage: str, config_path: Path) -> dict[str, str]:
    """The stage's SUPPORT_* settings (the rest of the page does not depend on the stage)."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    values = {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }
    return {k: str(v) for k, v in values.items() if k.startswith("SUPPORT_")}


def build(paths: list[Path], stage: str, config_path: Path) -> dict:
    env = support_env(stage, config_path)
    return fill_pages(merge([load(p) for p in paths]), env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", type=Path, default=PROJECT_DIR / ".chalice" / "config.json")
    parser.add_argument("templates", nargs="+", type=Path)
    args = parser.parse_args(argv)
    from chalice.package import YAMLTemplateSerializer

    merged = build(args.templates, args.stage, args.config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(YAMLTemplateSerializer().serialize_template(merged), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_DIR))  # chalicelib, when run as infra/merge_templates.py
    sys.exit(main())
