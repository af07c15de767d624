# Shoplake's command surface. Every target installs what it needs first, so a fresh clone only
# needs Python 3.11 and make.
VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
HOME_DIR := $(or $(SHOPLAKE_HOME),$(CURDIR)/data)
export DAGSTER_HOME ?= $(HOME_DIR)/dagster

# Big enough for every model family to train and earn its first champion (fraud needs enough
# labelled chargebacks, which arrive weeks after payment).
DEMO_CUSTOMERS ?= 3000
DEMO_DAYS      ?= 540
DEMO_SEED      ?= 5
DEV_PORT       ?= 3000
MLFLOW_PORT    ?= 5000
NOTEBOOK_PORT  ?= 8888

.PHONY: install prepare demo summary test check lint dev mlflow notebooks sql bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,lint,notebooks]"
	touch $@

install: $(VENV)/.installed

# dagster-dbt needs dbt's manifest before the Dagster definitions are imported.
prepare: install
	@mkdir -p "$(DAGSTER_HOME)"
	$(BIN)/shoplake prepare

# A fresh demo every time: a new shop, and the lakehouse and models built from the previous one removed.
demo: prepare
	rm -rf "$(HOME_DIR)"/lakehouse "$(HOME_DIR)"/mlflow
	$(BIN)/shoplake generate --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --seed $(DEMO_SEED) --overwrite
	$(BIN)/dg launch --job shoplake_all
	@$(BIN)/shoplake where
	@$(BIN)/shoplake summary

# What the last run left: checks passed and failed, champion models, the review queue, low stock.
summary: install
	@$(BIN)/shoplake summary

test: prepare
	$(BIN)/pytest

# Style (ruff: Python; sqlfluff: the dbt models, .sqlfluff) and the import rules (.importlinter).
lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	@# its worker pool's exit may print a resource_tracker UserWarning about a semaphore, which is harmless
	PYTHONWARNINGS=ignore::UserWarning:multiprocessing.resource_tracker $(BIN)/sqlfluff lint dbt_project --processes 2
	$(BIN)/lint-imports

# Before a commit: the lint and the tests that start no server and build no whole pipeline.
check: lint prepare
	$(BIN)/pytest -m "not slow"

dev: prepare
	$(BIN)/dg dev --host 127.0.0.1 --port $(DEV_PORT)

mlflow: install
	$(BIN)/shoplake mlflow-ui --port $(MLFLOW_PORT)

# JupyterLab on the notebooks (they read the published tables of SHOPLAKE_HOME, default data/).
notebooks: install
	SHOPLAKE_HOME="$(HOME_DIR)" $(BIN)/jupyter lab --notebook-dir=notebooks --ip 127.0.0.1 --port $(NOTEBOOK_PORT) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

bench: prepare
	$(PY) -m benchmarks.pipeline --scale $(or $(SCALE),S)
	$(PY) -m benchmarks.report

clean:
	rm -rf "$(HOME_DIR)"/source "$(HOME_DIR)"/lakehouse "$(HOME_DIR)"/mlflow "$(HOME_DIR)"/dagster
