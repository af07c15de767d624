"""Jobs and schedules: what runs every day without anyone watching, and what runs weekly.

- daily_refresh: extract every table, rebuild curated and prod, re-score with the champion models.
- weekly_retrain: retrain every model family, gate the challengers, promote, re-score.
Both carry the writer tag, which the instance's run queue (orchestration/dagster.yaml) limits to one
run at a time: a second run waits in the queue instead of writing the same tables concurrently.
"""

import datetime as dt
import os

import dagster as dg

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
PROD_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25)
)

training_assets = dg.AssetSelection.tag(TRAINING_TAG, "training")

shoplake_all = dg.define_asset_job(
    "shoplake_all",
    selection=dg.AssetSelection.all(),
    tags=WRITER_TAG,
    description="Everything: extract, curated, prod, train, gate, promote, score.",
)
daily_refresh = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all() - training_assets,
    tags={**WRITER_TAG, "shoplake/schedule": "daily"},
    description="Extract every source table, rebuild curated and prod, re-score with the champion models.",
)
weekly_retrain = dg.define_asset_job(
    "weekly_retrain",
    selection=training_assets.downstream(),
    tags={**WRITER_TAG, "shoplake/schedule": "weekly"},
    description="Retrain every model family on the current prod tables, gate and promote, re-score.",
)

daily_refresh_schedule = dg.ScheduleDefinition(
    name="daily_refresh_schedule",
    job=daily_refresh,
    cron_schedule=DAILY_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day (SHOPLAKE_DAILY_CRON, default 02:00 UTC).",
)
weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain_schedule",
    job=weekly_retrain,
    cron_schedule=WEEKLY_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Monday (SHOPLAKE_WEEKLY_CRON, default 04:00 UTC), after that day's refresh.",
)

JOBS = [shoplake_all, daily_refresh, weekly_retrain]
SCHEDULES = [daily_refresh_schedule, weekly_retrain_schedule]
