# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast e2e bench lint browser clean package deploy

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## make run: moto + local Login.gov + demo accounts + chalice local on http://127.0.0.1:8000,
## and the support console (console/) on http://127.0.0.1:8002 with three demo staff
run: $(STAMP)
	$(BIN)/python -m localdev.run

# axe-core (npm) is injected into each page by the browser tests' accessibility check.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## make test: the whole suite (unit, infra, packaging, browser end-to-end)
test: $(STAMP) browser node_modules/.installed
	$(BIN)/python -m pytest -q

## make test-fast: everything but the browser end-to-end tests
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

e2e: $(STAMP) browser node_modules/.installed
	$(BIN)/python -m pytest -q -m e2e

## make bench: figures as ratios against baselines measured in the same run
bench: $(STAMP)
	$(BIN)/python -m bench.run

# infra/api_responses.yaml is a fragment, not a template (no Type on its one resource): the
# SAM template it is merged into is linted whole by tests/test_infra.py
# (test_merged_sam_template_has_no_cfn_lint_findings).
CFN_TEMPLATES := $(filter-out infra/api_responses.yaml,$(wildcard infra/*.yaml))

## make lint: ruff (lint and format), mypy, cfn-lint; the same checks as .pre-commit-config.yaml
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint $(CFN_TEMPLATES)

# PIP_NO_DEPS=1: pip installs exactly requirements.txt, so botocore (in the Lambda runtime)
# stays out of the zip. STAGE=dev|prod; see docs/operations.md.
STAGE ?= dev
# chalice package merges one template: infra/merge_templates.py makes it from these, in order.
MERGE_TEMPLATES := infra/template.yaml infra/api_responses.yaml
# The support console (console/, a Chalice project of its own) gets only the gateway's own
# answers: its tables are the infra stack's (infra/template.yaml), deployed once. With
# --project-dir, chalice reads relative paths from console/: hence $(CURDIR) below.
CONSOLE_MERGE_TEMPLATES := infra/api_responses.yaml
package: $(STAMP)
	rm -rf build/package build/console-package && $(BIN)/python infra/merge_templates.py \
	  --stage $(STAGE) --out build/merge-template.yaml $(MERGE_TEMPLATES)
	PIP_NO_DEPS=1 $(BIN)/chalice package --stage $(STAGE) \
	  --merge-template build/merge-template.yaml build/package
	$(BIN)/python infra/add_bytecode.py --chalice-cache build/package/deployment.zip
	$(BIN)/python infra/merge_templates.py --stage $(STAGE) \
	  --out build/console-merge-template.yaml $(CONSOLE_MERGE_TEMPLATES)
	PIP_NO_DEPS=1 $(BIN)/chalice --project-dir console package --stage $(STAGE) \
	  --merge-template $(CURDIR)/build/console-merge-template.yaml \
	  $(CURDIR)/build/console-package
	$(BIN)/python infra/add_bytecode.py --chalice-cache --project-dir console \
	  build/console-package/deployment.zip

# chalice deploy reuses the zips `make package` built and compiled (infra/add_bytecode.py):
# the examiners' app, then the support console.
deploy: package
	PIP_NO_DEPS=1 $(BIN)/chalice deploy --stage $(STAGE)
	PIP_NO_DEPS=1 $(BIN)/chalice --project-dir console deploy --stage $(STAGE)

# Debian's Chromium for the Playwright end-to-end tests (Playwright's own download cannot
# work here). Installs only when missing and when we may (root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: run 'sudo apt-get install chromium' (Debian)"; exit 1; fi; }

clean:
	rm -rf $(VENV) .local .pytest_cache test-artifacts node_modules
