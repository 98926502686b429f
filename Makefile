# The two commands a newcomer types: `make test` and `make scenarios`.
# Each sets up whatever is missing (venv, engine, images) and is idempotent:
# a second run installs and builds nothing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup venv engine tools images doctor test test-unit test-ts scenarios scenarios-ts-smoke soak efficacy lint format bench mutation clean

help:
	@echo "make test        set up what is missing, run the harness's own tests"
	@echo "make test-ts     the TypeScript package's tests (packages/net-sync, Node 22 from npm); part of make test"
	@echo "make scenarios   set up what is missing, run scenarios/ and write reports/"
	@echo "make scenarios-ts-smoke  CI's smoke run of the TypeScript implementation (nats-down, every node net-sync-ts)"
	@echo "make soak        the scenarios marked soak, DURATION=10m by default (make soak DURATION=8h)"
	@echo "make efficacy    each planted bug against its scenario: caught, and clean without it (SUT=net-sync-ts: that implementation's)"
	@echo "make setup       venv + Docker engine + images, nothing else"
	@echo "make doctor      what is present, what is missing"
	@echo "make lint        ruff check and format check, actionlint on .github/workflows"
	@echo "make bench       throughput of netsync, bring-up (one NATS server and a 3-node cluster) and reset, the pause paths, the checker (BENCH_BIG=1: 10M lines), the report's log scan, fault lateness"
	@echo "make mutation    N machine-made mutants of netsync against the scenarios of their file: the mutation score (MUTATION_ARGS=\"--n 40 --seed 7\")"
	@echo "make clean       remove leftovers of dead runs"

$(STAMP): pyproject.toml netsync/requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is needed (the images run 3.11): set PYTHON="' \
	  || { echo "need Python 3.11: make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || scripts/ensure-tools.sh python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,netsync]'
	@touch $@

venv: $(STAMP)

engine:
	@scripts/ensure-engine.sh

tools:
	@scripts/ensure-tools.sh

images: venv engine tools
	@$(BIN)/solar-chaos images

setup: images

doctor: venv
	@$(BIN)/solar-chaos doctor

test: setup
	scripts/run-pytest.sh tests/unit tests/integration $(PYTEST_ARGS)
	$(MAKE) test-ts

# packages/net-sync (@root-solar/net-sync, issue 29): Node 22 from the npm registry
# (scripts/node22.sh, cached in ~/.cache/solar-chaos/node22), `npm ci` when the lockfile changed, then its
# node:test suite, which runs netsync's own processes beside it (so `setup` comes first). No file may
# take 5 min (--test-timeout, package.json) nor the suite 15 min: a hang fails here, not at CI's limit.
NET_SYNC := packages/net-sync
WITH_NODE22 = PATH="$$(dirname "$$(scripts/node22.sh)"):$$PATH"
$(NET_SYNC)/node_modules/.package-lock.json: $(NET_SYNC)/package-lock.json
	@command -v npm >/dev/null || scripts/ensure-tools.sh npm
	@$(WITH_NODE22) && cd $(NET_SYNC) && npm ci --no-audit --no-fund

test-ts: setup $(NET_SYNC)/node_modules/.package-lock.json
	@$(WITH_NODE22) && cd $(NET_SYNC) && npm run build && timeout --kill-after=30s 15m npm test

test-unit: venv
	scripts/run-pytest.sh tests/unit $(PYTEST_ARGS)

# Beside each run's report.html: one pytest-html page linking them all, and JUnit XML for CI.
scenarios: setup
	scripts/run-pytest.sh scenarios --html=reports/index.html --self-contained-html \
	  --junitxml=reports/junit.xml $(PYTEST_ARGS)

# CI's smoke run of the TypeScript implementation (.ci/run): one scenario with every node net-sync-ts.
# The mixed clusters (scenarios/mixed-*.yaml) already run in `make scenarios`; every scenario against
# net-sync-ts runs in the nightly workflow (.github/workflows/nightly-ts.yml). docs/operations.md, "CI".
scenarios-ts-smoke: setup
	scripts/run-pytest.sh "scenarios/nats-down.yaml::nats-down[mode=refuse]" --sut net-sync-ts \
	  --html=reports/ts-smoke.html --self-contained-html --junitxml=reports/ts-smoke-junit.xml $(PYTEST_ARGS)

# Soak scenarios (marker soak) for DURATION, with their reports beside the others.
DURATION ?= 10m
soak: setup
	scripts/run-pytest.sh scenarios -m soak --soak-duration $(DURATION) --html=reports/soak.html \
	  --self-contained-html --junitxml=reports/soak-junit.xml $(PYTEST_ARGS)

efficacy: setup
	scripts/run-pytest.sh tests/efficacy $(if $(SUT),--sut $(SUT)) $(PYTEST_ARGS)

# actionlint is built once from its Go module into the cache (scripts/ensure-actionlint.sh).
lint: venv
	$(BIN)/ruff check harness netsync tests docker bench conftest.py
	$(BIN)/ruff format --check harness netsync tests docker bench conftest.py
	actionlint=$$(scripts/ensure-actionlint.sh) && $$actionlint .github/workflows/*.yml

format: venv
	$(BIN)/ruff format harness netsync tests docker bench conftest.py
	$(BIN)/ruff check --fix harness netsync tests docker bench conftest.py

# Speed is measured here, never by timed tests; results land in reports/bench/.
bench: setup
	$(BIN)/pip install -q py-spy==0.4.3 orjson==3.13.0  # orjson: checker_speed's comparison parse
	$(BIN)/python bench/netsync_throughput.py --profile
	$(BIN)/python bench/implementations_throughput.py  # issue 29: netsync and net-sync-ts agents in one run
	$(BIN)/python bench/analytics_lag.py --seconds 20  # issue 30: analytics' lag behind the store at 200, 400, 800 rows/s
	$(BIN)/python bench/bringup.py
	$(BIN)/python bench/bringup.py --nats-nodes 3
	$(BIN)/python bench/pause_paths.py
	$(BIN)/python bench/clock_overhead.py
	$(BIN)/python bench/checker_speed.py $(if $(BENCH_BIG),--big)
	$(BIN)/python bench/report_logs.py
	@# The nemesis's lateness over the run directories already in reports/ (none yet: says so, not an error).
	-$(BIN)/python bench/fault_lateness.py --worst 5

# Mutation testing of the judge (docs/mutation.md): cosmic-ray's mutants of netsync, each run as an
# image of its own; the run directory lands in reports/mutation/. Small by default (10 mutants, 30 min).
MUTATION_ARGS ?=
mutation: setup
	$(BIN)/pip install -q cosmic-ray==8.7.0
	$(BIN)/python -m harness.mutation $(MUTATION_ARGS)

clean: venv
	$(BIN)/solar-chaos clean
