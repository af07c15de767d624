"""Policies every stage shares: the assets' owners, the writer tag and pools that keep runs from writing
the lakehouse concurrently, the training tag, the schedules' clock and prod's freshness policy.

Stages and the ML families import these; nothing here imports a stage.
"""

import datetime as dt
import os
from collections.abc import Mapping

import dagster as dg
import pyarrow as pa

# Who answers for an asset: Dagster shows owners in the asset catalog and filters by them. The data
# platform team owns extraction, the dbt models and the quality checks; data science owns the models,
# their gates and the scores they publish.
DATA_PLATFORM_OWNER = "team:data-platform"
DATA_SCIENCE_OWNER = "team:data-science"


def column_schema(schema: pa.Schema, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """A table's columns as the asset catalog shows them (``dagster/column_schema``): Arrow type names,
    the same for raw tables and the ML outputs."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type), description=descriptions.get(f.name)) for f in schema]
    )


WRITER_TAG = {"shoplake/lakehouse": "writer"}
TRAINING_TAG = "shoplake/role"
TRAINING = {TRAINING_TAG: "training"}
# Every op that writes the DuckDB file (extraction, dbt and its publish, the checks' ledger and report)
# runs in this pool (limit 1 per instance), so even ad hoc runs launched from the UI never write the
# lakehouse concurrently.
WRITER_POOL = "lakehouse_writer"


def table_pool(identifier: str) -> str:
    """The pool of an op that writes only its own Iceberg table ("prod.churn_scores"), never the DuckDB
    file: two runs never write that table at once, while one run's scoring ops publish side by side."""
    return f"{WRITER_POOL}/{identifier}"


DAILY_CRON = os.environ.get("SHOPLAKE_DAILY_CRON", "0 2 * * *")
WEEKLY_CRON = os.environ.get("SHOPLAKE_WEEKLY_CRON", "0 4 * * 1")
TIMEZONE = os.environ.get("SHOPLAKE_TIMEZONE", "UTC")

# Prod is refreshed daily; a day and two hours without a refresh is a failure the UI shows.
PROD_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25))

# Every table dbt publishes to these namespaces has blocking quality checks (pandera and the card
# scan, orchestration/defs/checks/quality_checks.py; tests/test_quality_checks.py holds the two
# lists together), so it is published write-audit-publish: staged until the checks pass it.
AUDITED_NAMESPACES = frozenset({"curated", "quarantine", "prod"})

# Freshness mode (orchestration/defs/freshness): how often the source-change sensor looks at the source
# tables, and the job whose assets its micro-batch runs are a subset of (the daily refresh: no training).
FRESHNESS_INTERVAL_S = int(os.environ.get("SHOPLAKE_FRESHNESS_INTERVAL", "60"))
FRESHNESS_JOB = "daily_refresh"
FRESHNESS_TAG = {"shoplake/schedule": "fresh"}
