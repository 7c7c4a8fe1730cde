# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv, build the engine env, start everything (`aigc-admin up`: SQLite,
#               embedded Redis, local runtime, managed FastChat controller)
#   make test   install into .venv (with [dev]), prepare what the tests run for real (engine, Docker Engine,
#               kube-apiserver), then lint, import contracts, types and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080

# Running needs the package only; the tests and linters need the [dev] extras too.
$(BIN)/.installed: pyproject.toml
	@echo "make: installing aigc-admin into $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

.PHONY: install install-dev run test lint schema engine prepare
install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

# The FastChat engine environment and a tiny local model (cached under ${AIGC_CACHE_DIR:-~/.cache/aigc-admin});
# its progress goes to the terminal.
engine:
	@bash scripts/prepare-engine.sh >/dev/null

# Everything the integration tests run for real: the engine, Docker Engine, a debootstrap base for the images and
# a kube-apiserver built from Debian's source (cached under ~/.cache/aigc-admin; the first build takes ~4 min).
prepare: engine
	bash scripts/prepare-docker.sh
	bash scripts/prepare-base-image.sh >/dev/null
	bash scripts/prepare-kube.sh >/dev/null

# `make run PORT=18080` serves on another port (the managed FastChat processes take free ports when theirs
# are taken by another instance).
run: install engine
	$(BIN)/aigc-admin up -p $(PORT)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint prepare
	$(BIN)/pytest

schema: install-dev
	$(BIN)/aigc-admin generate schema --output schema.graphql
