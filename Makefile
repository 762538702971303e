# The two commands first: `make run` serves the app on SQLite; `make test` runs the whole suite.
VENV := .venv
PY := $(VENV)/bin/python
PERSONAS := $(VENV)/bin/personas
STAMP := $(VENV)/.installed

.PHONY: run test lint worker bench install vendor browser clean

run: install vendor
	$(PERSONAS) init-db
	$(PERSONAS) seed-demo
	IN_PROCESS_REAPER=1 $(PERSONAS) run --host 127.0.0.1 --port 5000

test: install vendor browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Ruff's rules in pyproject.toml: pyflakes, pycodestyle, bugbear, import order, complexity. .ci/run runs it first.
lint: install
	$(VENV)/bin/ruff check .

worker: install
	$(PERSONAS) worker

# Figures, not a test: wipes BENCH_DATABASE_URL (default personas_bench) and flushes BENCH_REDIS_URL's db.
bench: install
	$(PY) bench/bench.py $(BENCH_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# htmx comes from the npm lock file, never from the repository.
vendor: static/vendor/htmx.min.js

static/vendor/htmx.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js

# Browser tests drive Debian's Chromium; install it when missing and we may.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
		echo "Chromium is not installed: browser tests will be skipped."

clean:
	rm -rf $(VENV) node_modules static/vendor
