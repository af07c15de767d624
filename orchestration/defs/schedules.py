"""Jobs and schedules: what runs every day without anyone watching, and what runs weekly.

- daily_refresh: extract every table, rebuild curated and prod, re-score with the champion models.
- weekly_retrain: retrain every model family, gate the challengers, promote, re-score.
Both carry the writer tag, which the instance's run queue (orchestration/dagster.yaml) limits to one
run at a time: a second run waits in the queue instead of writing the same tables concurrently.
"""

import dagster as dg

from orchestration.policies import DAILY_CRON, TIMEZONE, TRAINING_TAG, WEEKLY_CRON, WRITER_TAG

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
