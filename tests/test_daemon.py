"""The daemon runs the daily schedule by itself: a tick launches a `daily_refresh` run that succeeds,
skipping the scoring assets on a new install that has no champion model yet. A writer run killed
before the daemon starts does not hold the queue: run monitoring marks it failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from demo_shop.generate import ShopConfig, generate_shop
from orchestration.settings import PROJECT_ROOT, Settings
from tests.conftest import clean_environ

pytestmark = pytest.mark.slow


def test_daemon_launches_the_scheduled_daily_refresh(tmp_path):
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    dagster_home.mkdir()
    # The project's instance settings, with run monitoring polling every 5 s instead of 30 s: the dead
    # run is found the same way, sooner.
    instance_yaml = (PROJECT_ROOT / "orchestration" / "dagster.yaml").read_text()
    assert "  poll_interval_seconds: 30\n" in instance_yaml
    (dagster_home / "dagster.yaml").write_text(
        instance_yaml.replace("  poll_interval_seconds: 30\n", "  poll_interval_seconds: 5\n")
    )
    settings = Settings.from_env({"SHOPLAKE_HOME": str(home)})
    generate_shop(ShopConfig(customers=120, days=60, seed=2), settings.source_url, settings.truth_dir, progress=False)
    env = clean_environ(
        home,
        DAGSTER_HOME=str(dagster_home),
        SHOPLAKE_DAILY_CRON="* * * * *",  # every minute, so the test sees a tick
    )
    dead_run_id = kill_a_writer_run_holding_its_slot(env, dagster_home, tmp_path)
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        os.environ["DAGSTER_HOME"] = str(dagster_home)
        with DagsterInstance.get() as instance:
            deadline = time.monotonic() + 900
            run = None
            while time.monotonic() < deadline:
                runs = instance.get_runs(RunsFilter(job_name="daily_refresh"))
                if runs and runs[-1].status in (
                    DagsterRunStatus.SUCCESS,
                    DagsterRunStatus.FAILURE,
                    DagsterRunStatus.CANCELED,
                ):
                    run = runs[-1]
                    break
                if daemon.poll() is not None:
                    break
                time.sleep(5)
            assert run is not None, (tmp_path / "daemon.log").read_text()[-3000:]
            assert run.tags.get("dagster/schedule_name") == "daily_refresh_schedule"
            assert run.tags.get("shoplake/lakehouse") == "writer"
            assert run.status == DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]
            # The dead writer run held the queue (one writer run at a time) until run monitoring saw
            # that its worker process was gone.
            assert instance.get_run_by_id(dead_run_id).status == DagsterRunStatus.FAILURE
            [failure] = instance.all_logs(dead_run_id, of_type=DagsterEventType.RUN_FAILURE)
            assert "Detected run worker status FAILED" in failure.message
            assert "is gone (killed or crashed)" in failure.message
            # A new install has no champion model yet: scoring is skipped, not failed.
            events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
            materialized = {
                e.asset_key.to_user_string() for e in events if e.event_type_value == "ASSET_MATERIALIZATION"
            }
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


def kill_a_writer_run_holding_its_slot(env: dict, dagster_home: Path, tmp_path: Path) -> str:
    """A `shoplake_all` run SIGKILLed in its extraction step: STARTED for ever, writer slot held."""
    with open(tmp_path / "killed_run.log", "w") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dg"),
                "launch",
                "--job",
                "shoplake_all",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and process.poll() is None:
                runs = instance.get_runs()
                if runs and instance.all_logs(runs[0].run_id, of_type=DagsterEventType.STEP_START):
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=60)
                    assert instance.get_run_by_id(runs[0].run_id).status == DagsterRunStatus.STARTED
                    return runs[0].run_id
                time.sleep(0.2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError((tmp_path / "killed_run.log").read_text()[-3000:])
