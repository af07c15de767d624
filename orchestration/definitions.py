"""The Shoplake code location: every asset, check, job and resource, by layer.

raw (extraction) -> curated + quarantine -> prod (dbt, published to Iceberg) -> ml (MLflow)
"""

import os

import dagster as dg

from ml_assets.definitions import ML_ASSET_CHECKS, ML_ASSETS, ML_RUNTIME_MODULES
from orchestration.defs.alerts.sensors import ALERT_SENSORS
from orchestration.defs.checks.definitions import CHECKS_ASSETS, QUALITY_CHECKS
from orchestration.defs.extract.assets import extract_source_tables
from orchestration.defs.freshness.sensors import FRESHNESS_SENSORS
from orchestration.defs.schedules import JOBS, SCHEDULES
from orchestration.defs.transform.assets import dbt_curated_and_prod
from orchestration.resources import LakehouseResource, dbt_resource
from orchestration.run_health import multiprocess_health_checked_executor

START_METHODS = ("forkserver", "spawn")
MAX_CONCURRENT_STEPS = 2  # two cores: more parallel steps only add start-up


def step_start_method() -> dict:
    """How step processes start (at most MAX_CONCURRENT_STEPS at a time). Each step keeps its own
    process (a crash or a leak stays in its step, memory is returned when it ends), forked from a
    server that imported these definitions and the model libraries once per run: a spawned process
    spends several seconds importing Dagster, dbt, MLflow and scikit-learn before its step starts
    (docs/performance.md, Findings). SHOPLAKE_STEP_START=spawn is the fallback for a library that
    cannot live in a forked process."""
    method = os.environ.get("SHOPLAKE_STEP_START") or "forkserver"
    if method not in START_METHODS:
        raise ValueError(f"SHOPLAKE_STEP_START={method!r} is not a start method: use one of {', '.join(START_METHODS)}")
    if method == "spawn":
        return {"spawn": {}}
    return {"forkserver": {"preload_modules": ["orchestration.definitions", *ML_RUNTIME_MODULES]}}


defs = dg.Definitions(
    assets=[extract_source_tables, dbt_curated_and_prod, *CHECKS_ASSETS, *ML_ASSETS],
    asset_checks=[*QUALITY_CHECKS, *ML_ASSET_CHECKS],
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[*ALERT_SENSORS, *FRESHNESS_SENSORS],
    resources={"lakehouse": LakehouseResource(), "dbt": dbt_resource()},
    # Dagster's multiprocess executor, after clearing runs whose process died (orchestration/run_health.py)
    executor=multiprocess_health_checked_executor.configured(
        {"max_concurrent": MAX_CONCURRENT_STEPS, "start_method": step_start_method()}
    ),
)
