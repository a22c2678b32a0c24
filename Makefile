# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make run    install the service into .venv and start it on http://127.0.0.1:8000
#   make test   install the service and its test tools (and Chromium), then run every check
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt

.PHONY: run test install install-test system-packages lint screenshots

run: $(VENV)/.installed
	$(BIN)/imgclf serve

test: $(VENV)/.installed-test system-packages lint
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache
	$(BIN)/mypy
	$(BIN)/python scripts/check_function_length.py src tests

# docs/screenshots/*.png, the pages on a desktop and a phone, taken again by the browser tests.
screenshots: $(VENV)/.installed-test system-packages
	IMGCLF_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -k screenshots

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e '.[export,openvino]'
	touch $@

$(VENV)/.installed-test: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e '.[export,openvino,test]'
	touch $@ $(VENV)/.installed

system-packages:
	@scripts/install-system-packages.sh
