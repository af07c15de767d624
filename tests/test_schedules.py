"""Schedules produce the right runs; the instance settings serialize lakehouse writers."""

import datetime as dt

import dagster as dg
import pytest
import yaml

from orchestration import policies
from orchestration.defs import schedules
from orchestration.settings import PROJECT_ROOT


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
    training = {k for k in graph.get_all_asset_keys() if graph.get(k).tags.get(policies.TRAINING_TAG) == "training"}
    assert training, "model assets carry the training tag"
    assert not daily & training
    assert training <= weekly
    assert dg.AssetKey(["prod", "churn_scores"]) in daily and dg.AssetKey(["prod", "churn_scores"]) in weekly
    assert dg.AssetKey(["raw", "orders"]) in daily and dg.AssetKey(["raw", "orders"]) not in weekly


def test_instance_settings_queue_a_second_lakehouse_writer():
    settings = yaml.safe_load((PROJECT_ROOT / "orchestration" / "dagster.yaml").read_text())
    [limit] = settings["concurrency"]["runs"]["tag_concurrency_limits"]
    assert (limit["key"], limit["value"], limit["limit"]) == ("shoplake/lakehouse", "writer", 1)
    assert settings["concurrency"]["pools"]["default_limit"] == 1


def test_every_lakehouse_writer_op_is_in_a_writer_pool():
    """Ops that write the DuckDB file share one pool; an op that writes only its own Iceberg table has
    that table's pool, so one run's scoring ops (and the compliance report) can publish side by side but
    never two of one table."""
    from orchestration.definitions import defs

    pools = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if assets_def.is_executable:
            node = assets_def.node_def
            # a graph asset (the compliance report): the pool of the op in it that writes
            [pool] = (
                {n.pool for n in node.iterate_op_defs() if n.pool}
                if isinstance(node, dg.GraphDefinition)
                else [node.pool]
            )
            for key in assets_def.keys:
                pools[key.to_user_string()] = pool
    layers = {pool for k, pool in pools.items() if k.startswith(("raw/", "curated/", "quarantine/"))}
    assert layers == {policies.WRITER_POOL}
    own_table = {
        "prod/churn_scores",
        "prod/demand_forecast",
        "prod/reorder_suggestions",
        "prod/fraud_scores",
        "prod/high_risk_transactions",
        "prod/customer_segments",
        "prod/compliance_report",  # from the ledgers and the published tables, never the DuckDB file
    }
    for key in own_table:
        assert pools[key] == policies.table_pool(key.replace("/", ".")) == f"lakehouse_writer/{key.replace('/', '.')}"
    assert {pools[k] for k in pools if k.startswith("prod/") and k not in own_table} == {policies.WRITER_POOL}
    [checks] = [c for c in defs.asset_checks if c.node_def.name == "lakehouse_quality_checks"]
    assert checks.node_def.pool == policies.WRITER_POOL  # it makes the passing tables current, writes the ledger


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
    with pytest.raises(
        ValueError, match="SHOPLAKE_STEP_START='fork' is not a start method: use one of forkserver, spawn"
    ):
        step_start_method()


def test_the_code_location_loads_without_the_model_libraries():
    """The UI, the daemon and every step that never touches a model load the definitions without
    importing MLflow, scikit-learn, XGBoost or matplotlib (the forked model steps get them preloaded)."""
    import subprocess
    import sys

    probe = (
        "import sys, orchestration.definitions; print(sorted(m for m in ('mlflow', 'sklearn', 'xgboost', "
        "'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_dbt_resource_knows_its_dbt_without_starting_it():
    """dagster-dbt runs `dbt --version` and loads every macro into an adapter before each invocation;
    Shoplake's resource takes the version of the dbt-core installed next to this interpreter, which is
    the executable it runs, and has no adapter (nothing asks dagster-dbt for row counts or columns)."""
    import subprocess

    from orchestration.resources import DBT_EXECUTABLE, dbt_resource

    resource = dbt_resource()
    printed = subprocess.run([DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True).stdout
    assert f"installed: {resource._cli_version}\n" in printed
    assert resource._initialize_dbt_core_adapter(["build"]) is None


def test_dagster_dbt_still_calls_the_private_members_shoplakes_dbt_resource_replaces():
    """ShoplakeDbtCliResource replaces two private members of dagster-dbt's DbtCliResource (see
    orchestration/resources.py for what they cost). An upgrade of dagster-dbt that renames them,
    changes their signatures or stops calling them from ``cli()`` fails here, not in a run: then
    check the release for a public option and measure again."""
    import functools
    import inspect

    from dagster_dbt import DbtCliResource
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    from orchestration.resources import ShoplakeDbtCliResource

    assert isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), functools.cached_property)
    assert isinstance(inspect.getattr_static(ShoplakeDbtCliResource, "_cli_version"), functools.cached_property)
    for cls in (DbtCliResource, ShoplakeDbtCliResource):
        assert list(inspect.signature(cls._initialize_dbt_core_adapter).parameters) == ["self", "args"]
    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli
    assert "adapter = self._initialize_dbt_core_adapter(args)" in cli
    # an invocation without an adapter is one dagster-dbt supports (the Fusion engine has none)
    assert DbtCliInvocation.__dataclass_fields__["adapter"].default is None


def test_nothing_asks_dagster_dbt_for_what_only_its_adapter_knows():
    """Without the adapter, dagster-dbt's fetch_row_counts() and fetch_column_metadata() quietly add
    nothing: a call to them would be a silent no-op with Shoplake's dbt resource."""
    from orchestration.settings import PROJECT_ROOT

    calls = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("orchestration", "ml_assets")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if any(f".{name}(" in path.read_text() for name in ("fetch_row_counts", "fetch_column_metadata"))
    ]
    assert calls == []


def test_a_dbt_invocation_through_shoplakes_resource_runs_without_an_adapter(shoplake_home, tmp_path):
    """A real dbt command through the resource: it succeeds, knows the installed dbt-core's version
    and has no in-process adapter (dagster-dbt's own resource would have built one)."""
    from importlib.metadata import version

    from orchestration.resources import dbt_resource, shoplake_dbt_project

    invocation = (
        dbt_resource()
        .cli(
            ["parse"],
            manifest=shoplake_dbt_project.manifest_path,
            raise_on_error=False,
            target_path=tmp_path / "target",
        )
        .wait()
    )
    assert invocation.is_successful(), invocation.get_error()
    assert str(invocation.cli_version) == version("dbt-core")
    assert invocation.adapter is None
    assert (tmp_path / "target" / "manifest.json").exists()


def test_processes_opening_a_new_mlflow_store_at_once_all_find_it_ready(shoplake_home):
    """Scoring ops run side by side, and on a new install each opens the MLflow store first: MLflow
    creates its database then, and two processes doing it at once collided ("duplicate column name")."""
    import subprocess
    import sys

    code = (
        "from ml_assets import tracking; from orchestration.settings import Settings; "
        "print(len(tracking.configure(Settings.from_env()).search_experiments()))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-1500:] for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["1", "1", "1", "1"]  # one store, with MLflow's Default experiment
