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

.PHONY: install prepare demo test dev mlflow sql bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
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
	$(BIN)/dagster job execute -m orchestration.definitions -j shoplake_all
	$(BIN)/shoplake where

test: prepare
	$(BIN)/pytest

dev: prepare
	$(BIN)/dagster dev -w workspace.yaml --host 127.0.0.1 --port $(DEV_PORT)

mlflow: install
	$(BIN)/shoplake mlflow-ui --port $(MLFLOW_PORT)

bench: prepare
	$(PY) -m benchmarks.pipeline --scale $(or $(SCALE),S)
	$(PY) -m benchmarks.report

clean:
	rm -rf "$(HOME_DIR)"/source "$(HOME_DIR)"/lakehouse "$(HOME_DIR)"/mlflow "$(HOME_DIR)"/dagster
