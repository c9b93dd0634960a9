# Everything a fresh Debian machine (Python 3.11, Node 20, root) needs, installed on demand.
# make demo   the chat example on http://127.0.0.1:8000
# make test   lint, type checks, Python, JavaScript and browser tests
# make bench  the side-by-side benchmark (docs/benchmarks.md)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JS := js-client
APT_STAMP := $(VENV)/.apt-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test test-fast lint pytest jstest bench bench-smoke system venv js clean

demo: venv js
	@echo "microsockets chat: open http://127.0.0.1:8000 in several tabs (Ctrl+C stops)"
	$(PY) example.py

test: system venv js lint pytest jstest

# The Python suite alone, without the browser and Node parts.
test-fast: venv lint
	$(PY) -m pytest -q -m "not browser"

PY_SOURCES := microsockets tests $(wildcard bench example.py)

lint: venv
	$(PY) -m ruff check $(PY_SOURCES)
	$(PY) -m ruff format --check $(PY_SOURCES)
	$(PY) -m mypy --strict microsockets

pytest: system venv js
	$(PY) -m pytest -q --cov --cov-report=term

# A test that leaves a handle open fails after 15 minutes instead of hanging CI. (node's
# --test-force-exit would bound it too, but it drops the last file's results and still
# exits 0: nodejs/node#64833.)
jstest: system venv js
	cd $(JS) && timeout --kill-after=10 900 npm test --silent

bench: system venv
	$(PY) bench/run.py

bench-smoke: venv
	$(PY) bench/run.py --smoke

# Debian packages the tests need, installed only when absent.
system: $(APT_STAMP)
$(APT_STAMP): | $(VENV)/bin/python
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
$(VENV)/.stamp: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

# The official AsyncAPI parser, for tests/test_typing.py (no install scripts: nothing runs or
# reports home; tools/asyncapi/validate.mjs refuses every network call).
TOOLS := tools/asyncapi
js: $(JS)/node_modules/.stamp $(JS)/dist/.stamp $(TOOLS)/node_modules/.stamp
$(TOOLS)/node_modules/.stamp: $(TOOLS)/package.json $(TOOLS)/package-lock.json
	cd $(TOOLS) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@
$(JS)/node_modules/.stamp: $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund
	@touch $@
$(JS)/dist/.stamp: $(JS)/node_modules/.stamp $(wildcard $(JS)/src/*.ts) $(JS)/package.json
	cd $(JS) && npm run build --silent
	@touch $@

clean:
	rm -rf $(VENV) $(JS)/node_modules $(JS)/dist $(TOOLS)/node_modules .pytest_cache .mypy_cache .ruff_cache .coverage
