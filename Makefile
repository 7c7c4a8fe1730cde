# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv, build the engine env, start everything (`aigc-admin up`: SQLite,
#               embedded Redis, local runtime, managed FastChat controller)
#   make test   install into .venv (with [dev]), prepare what the tests run for real (engine, Docker Engine,
#               kube-apiserver), then lint, import contracts, types and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

.PHONY: install run test lint schema engine prepare
install: $(BIN)/.installed

# The FastChat engine environment and a tiny local model (cached under ~/.cache/aigc-admin).
engine:
	bash scripts/prepare-engine.sh >/dev/null

# Everything the integration tests run for real: the engine, Docker Engine and a kube-apiserver built from
# Debian's source (cached under ~/.cache/aigc-admin; the first build takes ~4 min).
prepare: engine
	bash scripts/prepare-docker.sh
	bash scripts/prepare-kube.sh >/dev/null

run: install engine
	$(BIN)/aigc-admin up

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint prepare
	$(BIN)/pytest

schema: install
	$(BIN)/aigc-admin generate schema --output schema.graphql
