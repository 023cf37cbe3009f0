# Two commands: `make run` serves the playground, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The versions the suite passed with (uv pip compile, every platform); installs never resolve anew.
LOCK := requirements.lock

.PHONY: run test bench lint format lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	touch $@ $(VENV)/.installed

# Re-resolve the newest versions pyproject.toml allows into the lock: run `make test`, then commit it.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 --quiet -o $(LOCK)

# `make run PORT=8001 HOST=0.0.0.0`, else PLAYGROUND_PORT / PLAYGROUND_HOST, else 127.0.0.1:8000.
# Only from make's command line: a shell's own HOST or PORT variable must not leak in.
run: $(VENV)/.installed
	$(BIN)/playground serve \
	  $(if $(filter command line,$(origin PORT)),--port $(PORT)) \
	  $(if $(filter command line,$(origin HOST)),--host $(HOST))

# Two workers (tests/conftest.py splits the suite): the browser's side waits on pages, the other computes.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n 2

bench: $(VENV)/.installed
	$(BIN)/playground bench

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
