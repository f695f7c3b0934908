# The commands the README names. Everything runs from the project's own virtualenv.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export NIGHTSHIFT_HOME ?= $(CURDIR)/.nightshift

.PHONY: setup demo test test-fast lint typecheck ci airflow summary lock clean bench db-start db-stop db-status

setup: $(BIN)/nightshift  ## create .venv and install the pinned dependencies and the nightshift package

$(BIN)/nightshift: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/nightshift

demo: setup  ## simulate a season and run it through Airflow's scheduler; prints the summary
	$(BIN)/nightshift demo

TEST_WORKERS ?= 2
test: setup  ## the whole test suite, test files spread over TEST_WORKERS processes
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

test-fast: setup  ## everything but the end-to-end season
	$(BIN)/pytest -m "not e2e"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy include/nightshift include/nightshift_dev dags plugins tests

ci: lint typecheck test

airflow: setup  ## Airflow UI, scheduler and DAG processor on the embedded default (http://127.0.0.1:8080); Ctrl+C stops all
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nightshift airflow

db-start db-stop db-status: setup  ## the embedded PostgreSQL under NIGHTSHIFT_HOME
	$(BIN)/nightshift db $(subst db-,,$@)

ROWS ?= 1000000
SIZES ?= 100000,1000000,10000000
BENCH_ARGS ?=

bench: setup  ## the nightly stages against their limits at ROWS rows a night, growth at SIZES (docs/benchmark.md)
	$(BIN)/nightshift bench --rows $(ROWS) --sizes $(SIZES) $(BENCH_ARGS)

summary: setup
	$(BIN)/nightshift summary

lock:  ## re-resolve constraints.txt from requirements-dev.txt in a scratch virtualenv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements-dev.txt
	.lock-venv/bin/pip freeze --exclude-editable > constraints.txt && rm -rf .lock-venv

clean:  ## stop the embedded PostgreSQL and remove everything under .nightshift
	-test -x $(BIN)/nightshift && $(BIN)/nightshift db stop
	rm -rf .nightshift
