"""The daemon runs the daily schedule by itself: a tick launches a `daily_refresh` run that succeeds,
skipping the scoring assets on a new install that has no champion model yet."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from orchestration.settings import PROJECT_ROOT, Settings
from orchestration.source.generate import ShopConfig, generate_shop

pytestmark = pytest.mark.slow


def test_daemon_launches_the_scheduled_daily_refresh(tmp_path):
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", dagster_home / "dagster.yaml")
    settings = Settings.from_env({"SHOPLAKE_HOME": str(home)})
    generate_shop(ShopConfig(customers=120, days=60, seed=2), settings.source_url, settings.truth_dir, progress=False)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SHOPLAKE_", "MLFLOW_", "DAGSTER_"))},
        "SHOPLAKE_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "SHOPLAKE_DAILY_CRON": "* * * * *",  # every minute, so the test sees a tick
    }
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        os.environ["DAGSTER_HOME"] = str(dagster_home)
        with DagsterInstance.get() as instance:
            deadline = time.monotonic() + 420
            run = None
            while time.monotonic() < deadline:
                runs = instance.get_runs(RunsFilter(job_name="daily_refresh"))
                if runs and runs[-1].status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                    run = runs[-1]
                    break
                if daemon.poll() is not None:
                    break
                time.sleep(5)
            assert run is not None, (tmp_path / "daemon.log").read_text()[-3000:]
            assert run.tags.get("dagster/schedule_name") == "daily_refresh_schedule"
            assert run.tags.get("shoplake/lakehouse") == "writer"
            assert run.status == DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]
            # A new install has no champion model yet: scoring is skipped, not failed.
            events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
            materialized = {e.asset_key.to_user_string() for e in events if e.event_type_value == "ASSET_MATERIALIZATION"}
            skipped = {e.step_key for e in events if e.event_type_value == "STEP_SKIPPED"}
            assert "prod/fct_orders" in materialized and "raw/orders" in materialized
            assert not {"prod/churn_scores", "prod/fraud_scores", "prod/demand_forecast"} & materialized
            assert {"prod__high_risk_transactions", "prod__reorder_suggestions"} <= skipped
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        os.killpg(daemon.pid, signal.SIGINT)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        log.close()
