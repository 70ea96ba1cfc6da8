# Two commands for a fresh machine: `make run` and `make test` (see README.md and docs/).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
LOCK_TOOLS := $(VENV)-lock-tools
PIP_TOOLS := pip-tools==7.6.2
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve bench test test-fast lint venv migrate demo clean node-deps js js-test system-tools messages deploy-local lock upgrade-deps example-service mutation

venv: $(STAMP)

# Exactly the lock: every file checked against its hash, then anything installed that the lock does
# not pin (a package an older lock had, the setuptools a new venv starts with) uninstalled.
$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	$(PY) scripts/venv_lock.py prune
	rm -f $(VENV)/.installed-*
	touch $@

# Recompile requirements.txt from requirements.in at the versions it names (docs/dependencies.md).
# pip-tools runs in a venv of its own, so the project's venv holds only what the lock pins.
$(LOCK_TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet --disable-pip-version-check $(PIP_TOOLS)

lock: $(LOCK_TOOLS)/bin/pip-compile
	$(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links $(LOCK_ARGS) --output-file requirements.txt requirements.in
	$(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links $(LOCK_ARGS) --output-file requirements-mutation.txt requirements-mutation.in

# The same, also moving every dependency that requirements.in does not pin to its newest release.
upgrade-deps: LOCK_ARGS = --upgrade
upgrade-deps: lock

migrate: venv
	$(PY) manage.py migrate --noinput --verbosity 0

demo: migrate
	$(PY) manage.py demo_data

# Set up everything and serve the desk, the admin and the WebSocket on $(HOST):$(PORT).
run: demo
	@echo "Serving on http://$(HOST):$(PORT)/  (stop with Ctrl-C); the event flow log is off, REALTIME_FLOW_LOG_LEVEL=INFO shows it"
	$(PY) manage.py runserver $(HOST):$(PORT)

# Two daphne processes behind nginx on the local PostgreSQL and Redis (see deploy/, docs/scale-out.md).
deploy-local: venv system-tools
	PY=$(PY) deploy/run-local.sh

# Production-style: daphne pings a socket silent for 35 s (longer than the spec client's 30 s
# heartbeat, so live desks cost no pings) and closes it after 30 s without answer; the
# client message size limit the protocol enforces; set DJANGO_DEBUG=0 and friends (docs/configuration.md).
serve: migrate
	$(PY) -m realtime.server -b $(HOST) -p $(PORT) --ping-interval 35 --ping-timeout 30 \
		--websocket-max-message-size 65536 --websocket_connect_timeout 30 aktienanalyse.asgi:application

# The example news service on the bus of a gateway run with REDIS_URL and BUS_FORWARDED_COMMANDS=get_news
# (docs/service-library.md); it imports the service library from clients/python/src, uninstalled.
example-service: venv
	PYTHONPATH=clients/python/src $(PY) clients/python/examples/news_service.py

# Side-by-side benchmark against a bare websockets server, then a neighbour's command latency while
# another user abuses replay (needs Redis and PostgreSQL; docs/benchmarks.md).
bench: venv
	cd bench && npm ci --no-audit --no-fund --silent
	$(PY) bench/run.py
	$(PY) bench/replay_abuse.py

# Set up everything and run the whole test suite on PostgreSQL and Redis: DATABASE_URL/REDIS_URL,
# else the machine's own, else servers of the run's own (scripts/with-test-services.sh).
test: venv lint js-test system-tools messages
	PY=$(PY) scripts/with-test-services.sh $(PY) -m pytest $(PYTEST_ARGS)

# The edit-run lane: the in-process tests only (no browser, no server processes: not marked e2e),
# on the same PostgreSQL and Redis as `make test`, stopping at the first failure.
test-fast: venv
	PY=$(PY) scripts/with-test-services.sh $(PY) -m pytest -m "not e2e" -x -q $(PYTEST_ARGS)

# Lint the Python (ruff.toml: pyflakes, pycodestyle's errors, bugbear; one format), check its types
# (mypy.ini) and hold the imports to the contracts of .importlinter (the apps through realtime.api,
# realtime's layers); part of `make test`.
MYPY_PATHS := aktienanalyse core realtime market trading portfolio clients/python/src scripts bench tests
lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy $(MYPY_PATHS)
	$(VENV)/bin/lint-imports --no-cache

# Mutation testing of the core modules against their fast tests (docs/mutation-testing.md); not part
# of `make test`. mutmut runs in a venv of its own, installed from requirements-mutation.txt.
# MUTATION_ARGS: module paths to run only those, or --report for the table of the last runs.
MUTATION_VENV := .venv-mutation
MUTATION_STAMP := $(MUTATION_VENV)/.installed-$(shell cat requirements-mutation.txt | cksum | cut -d' ' -f1)

$(MUTATION_STAMP): requirements-mutation.txt
	test -x $(MUTATION_VENV)/bin/python || $(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-mutation.txt
	rm -f $(MUTATION_VENV)/.installed-*
	touch $@

mutation: $(MUTATION_STAMP)
	nice -n 10 $(MUTATION_VENV)/bin/python scripts/mutation.py $(MUTATION_ARGS)

# The desk's TypeScript client: Node is needed to build and test it, never to run the app.
node-deps:
	npm ci --no-audit --no-fund

# Rebuild static/js/ and static/vendor/ with the pinned compiler (commit the result).
js: node-deps
	npm run --silent build

# Type-check all TypeScript strictly (the desk's and the npm package's build), fail when the
# committed build is stale, then run the client's unit tests.
js-test: node-deps
	npm run --silent typecheck
	node scripts/check-build.mjs
	node --test --test-timeout=30000 --test-reporter=spec tests/js/*.test.mjs

# Debian's chromium for the browser tests and gettext for the translations, when missing.
system-tools:
	scripts/ensure-system-tools.sh

# Compile the translations (.po -> .mo; the .mo files are committed so `make run` needs no gettext).
messages: venv system-tools
	$(PY) manage.py compilemessages --ignore=.venv --ignore=node_modules

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) $(MUTATION_VENV) .mutation var/*.sqlite3 .pytest_cache node_modules

# Rolling-restart drill: the local deployment (nginx, 3 daphnes, 2 feeds) under load, every gateway
# process restarted in turn, twice (docs/benchmarks.md). Heavy at its default 500 desks; a smaller
# run: make drill DRILL_ARGS="--desks 50 --rounds 1".
.PHONY: drill
drill: venv
	$(PY) bench/drill.py $(DRILL_ARGS)

# Soak: one gateway process and the market feed under steady mixed load (churn, 1000 subscribers,
# orders, analyses) for 30 minutes, sampled every minute; fails when RSS, descriptors or Redis keys
# grow or the log has warnings (docs/benchmarks.md). A short run: make soak SOAK_ARGS="--minutes 3 --warmup 1".
.PHONY: soak
soak: venv system-tools
	cd bench && npm ci --no-audit --no-fund --silent
	$(PY) bench/soak.py $(SOAK_ARGS)
