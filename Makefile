# The two commands of the README:  make demo  (the main job)  and  make test  (the whole suite).
# Both install what they need into .venv first; the Kafka broker comes from Maven Central
# (scripts/kafka-local), cached in ~/.cache/amlstream.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The lock: every package of the runtime and the dev tools, exact versions with hashes, made by
# uv from pyproject.toml (make lock); the install takes exactly these, and nothing else.
LOCK := requirements.lock
PIP_VERSION := 26.3
UV_VERSION := 0.13.9
LOCK_TOOL := $(HOME)/.cache/amlstream/uv-$(UV_VERSION)
LOCK_ARGS ?=

.PHONY: demo test lint install lock clean bench

# A fresh venv each time pyproject.toml or the lock changes, so it holds what the lock says and
# nothing left over; pip check fails if pyproject.toml asks for something the lock lacks.
$(BIN)/.installed: pyproject.toml $(LOCK)
	@echo "installing amlstream and its locked dependencies into $(VENV) ..."
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	@touch $@

install: $(BIN)/.installed

# Refresh the lock from pyproject.toml (pins already in it are kept while they still fit;
# make lock LOCK_ARGS=--upgrade moves every package to its newest version within the bounds).
$(LOCK_TOOL)/bin/uv:
	$(PYTHON) -m venv $(LOCK_TOOL)
	$(LOCK_TOOL)/bin/pip install --quiet uv==$(UV_VERSION)

lock: $(LOCK_TOOL)/bin/uv
	$(LOCK_TOOL)/bin/uv pip compile pyproject.toml --extra dev --universal \
		--python-version 3.11 --generate-hashes --custom-compile-command "make lock" \
		$(LOCK_ARGS) -o $(LOCK)

demo: $(BIN)/.installed
	$(BIN)/amlstream demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy schemas streams

# scripts/system-deps installs the Debian packages the tests need (chromium, promtool,
# docker-compose) when missing.
test: lint
	scripts/system-deps
	$(BIN)/python -m pytest

# The benchmark (not part of the tests): python -m bench --help for its options. Each run is
# added at the top of docs/performance.md, the measurement history.
bench: $(BIN)/.installed
	$(BIN)/python -m bench --record docs/performance.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
