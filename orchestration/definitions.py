"""The Shoplake code location: every asset, check, job and resource, by layer.

raw (extraction) -> curated + quarantine -> prod (dbt, published to Iceberg) -> ml (MLflow)
"""

import dagster as dg

from ml_assets.definitions import ML_ASSET_CHECKS, ML_ASSETS
from orchestration.checks.definitions import QUALITY_CHECKS
from orchestration.extract.assets import extract_source_tables
from orchestration.resources import LakehouseResource, dbt_resource
from orchestration.schedules import JOBS, SCHEDULES
from orchestration.transform.assets import dbt_curated_and_prod

defs = dg.Definitions(
    assets=[extract_source_tables, dbt_curated_and_prod, *ML_ASSETS],
    asset_checks=[*QUALITY_CHECKS, *ML_ASSET_CHECKS],
    jobs=JOBS,
    schedules=SCHEDULES,
    resources={"lakehouse": LakehouseResource(), "dbt": dbt_resource()},
    # Two cores: more parallel steps only add process start-up. Each step still gets its own process
    # (isolation, memory returned when it ends), forked from a server that imported these definitions
    # once per run: a spawned process would spend 5-10 s importing Dagster, dbt, MLflow, scikit-learn.
    executor=dg.multiprocess_executor.configured(
        {"max_concurrent": 2, "start_method": {"forkserver": {"preload_modules": ["orchestration.definitions"]}}}
    ),
)
