# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv and start everything (`aigc-admin up`: SQLite, embedded Redis, local runtime)
#   make test   install into .venv (with [dev]) and run lint, import contracts, types and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

.PHONY: install run test lint schema
install: $(BIN)/.installed

run: install
	$(BIN)/aigc-admin up

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

schema: install
	$(BIN)/aigc-admin generate schema --output schema.graphql
