# The two commands of the README:  make demo  (the main job)  and  make test  (the whole suite).
# Both install what they need into .venv first; the Kafka broker comes from Maven Central
# (scripts/kafka-local), cached in ~/.cache/amlstream.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install clean bench

$(BIN)/.installed: pyproject.toml
	@echo "installing amlstream and its dependencies into $(VENV) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/amlstream demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy schemas streams

test: lint
	$(BIN)/python -m pytest

# The benchmark (not part of the tests): python -m bench --help for its options.
bench: $(BIN)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
