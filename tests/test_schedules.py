"""Schedules produce the right runs; the instance settings serialize lakehouse writers."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import yaml

from orchestration import schedules


def test_daily_tick_requests_the_refresh_job_with_the_writer_tag():
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC))
    result = schedules.daily_refresh_schedule.evaluate_tick(context)
    [request] = result.run_requests
    assert request.job_name in (None, "daily_refresh")
    assert schedules.daily_refresh_schedule.job_name == "daily_refresh"
    # Runs of the job carry the writer tag the instance's run queue limits to one at a time.
    assert schedules.daily_refresh.tags == {"shoplake/lakehouse": "writer", "shoplake/schedule": "daily"}
    assert schedules.daily_refresh_schedule.cron_schedule == "0 2 * * *"
    assert schedules.daily_refresh_schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_weekly_retrain_runs_after_monday_refresh():
    assert schedules.weekly_retrain_schedule.cron_schedule == "0 4 * * 1"
    assert schedules.weekly_retrain_schedule.job_name == "weekly_retrain"


def test_daily_refresh_scores_but_never_trains():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    daily = schedules.daily_refresh.selection.resolve(graph)
    weekly = schedules.weekly_retrain.selection.resolve(graph)
    training = {k for k in graph.get_all_asset_keys() if graph.get(k).tags.get(schedules.TRAINING_TAG) == "training"}
    assert training, "model assets carry the training tag"
    assert not daily & training
    assert training <= weekly
    assert dg.AssetKey(["prod", "churn_scores"]) in daily and dg.AssetKey(["prod", "churn_scores"]) in weekly
    assert dg.AssetKey(["raw", "orders"]) in daily and dg.AssetKey(["raw", "orders"]) not in weekly


def test_instance_settings_queue_a_second_lakehouse_writer():
    settings = yaml.safe_load((Path(schedules.__file__).with_name("dagster.yaml")).read_text())
    [limit] = settings["concurrency"]["runs"]["tag_concurrency_limits"]
    assert (limit["key"], limit["value"], limit["limit"]) == ("shoplake/lakehouse", "writer", 1)
    assert settings["concurrency"]["pools"]["default_limit"] == 1


def test_every_lakehouse_writer_op_is_in_the_writer_pool():
    from orchestration.definitions import defs

    pools = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if assets_def.is_executable:
            for key in assets_def.keys:
                pools[key.path[0]] = pools.get(key.path[0], set()) | {assets_def.node_def.pool}
    assert pools["raw"] == {schedules.WRITER_POOL}
    assert pools["curated"] == {schedules.WRITER_POOL}
    assert pools["prod"] == {schedules.WRITER_POOL}


def test_steps_are_forked_from_a_preloaded_server_unless_told_to_spawn(monkeypatch):
    import importlib.util

    from orchestration.definitions import step_start_method

    monkeypatch.delenv("SHOPLAKE_STEP_START", raising=False)
    preloaded = step_start_method()["forkserver"]["preload_modules"]
    assert preloaded[0] == "orchestration.definitions"
    assert {"ml_assets.churn.train", "ml_assets.fraud.train", "ml_assets.forecasting.train"} <= set(preloaded)
    assert all(importlib.util.find_spec(name) is not None for name in preloaded)
    monkeypatch.setenv("SHOPLAKE_STEP_START", "spawn")
    assert step_start_method() == {"spawn": {}}
    monkeypatch.setenv("SHOPLAKE_STEP_START", "fork")
    with pytest.raises(ValueError, match="SHOPLAKE_STEP_START='fork' is not a start method: use one of forkserver, spawn"):
        step_start_method()


def test_the_code_location_loads_without_the_model_libraries():
    """The UI, the daemon and every step that never touches a model load the definitions without
    importing MLflow, scikit-learn, XGBoost or matplotlib (the forked model steps get them preloaded)."""
    import subprocess
    import sys

    probe = "import sys, orchestration.definitions; print(sorted(m for m in ('mlflow', 'sklearn', 'xgboost', 'matplotlib') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
