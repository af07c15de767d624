"""The whole lakehouse, materialized in-process on the demo shop.

The default profile reuses the session's demo lakehouse; the PostgreSQL profile builds a smaller shop
of its own; the second half advances the shop with `shoplake simulate` and runs again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import psycopg2
import pytest
from dagster import instance_for_test

from orchestration import cli, query
from orchestration.contract.schema import TABLES
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.card_scan import scan_iceberg_table
from orchestration.lakehouse.catalog import NAMESPACES, load_catalog
from orchestration.settings import Settings
from tests.conftest import isolated_env, run_job

pytestmark = pytest.mark.slow

PG = "postgres@127.0.0.1:5432"
# The PostgreSQL profile's shop. The profile is about where the catalog, MLflow and Dagster keep their
# state, not about the shop's size: the smallest shop on which every asset materializes green and every
# model family earns a first champion (as in test_dead_runs' KILL_SHOP) shows it; the demo shop's
# behaviours are the default profile's.
PG_SHOP = {"customers": 300, "days": 200, "seed": 5}

# What a reader asks of prod, each answer a fingerprint of one table's whole content.
READER_QUERIES = {
    "prod.fct_orders": "SELECT count(*), sum(total_usd)::VARCHAR, max(order_id) FROM prod.fct_orders",
    "prod.daily_sales": "SELECT count(*), sum(revenue_usd)::VARCHAR, sum(orders) FROM prod.daily_sales",
    "prod.dim_customers": "SELECT count(*), sum(orders), max(last_order_at)::VARCHAR FROM prod.dim_customers",
}
# An analyst's process querying prod in a loop, a new session (so the newest snapshots) each time,
# until the stop file appears; prints one JSON line per answer or error.
READER = """
import json, sys, time
from pathlib import Path
from orchestration import query
from orchestration.settings import Settings
queries, stop = json.loads(sys.argv[1]), Path(sys.argv[2])
settings = Settings.from_env()
while not stop.exists():
    try:
        con = query.connect(settings)
        for table, sql in queries.items():
            print(json.dumps({"table": table, "answer": [str(v) for v in con.execute(sql).fetchone()]}), flush=True)
        con.close()
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    time.sleep(0.2)
"""


def answers(settings: Settings) -> dict[str, list[str]]:
    con = query.connect(settings)
    return {t: [str(v) for v in con.execute(sql).fetchone()] for t, sql in READER_QUERIES.items()}


def postgres(sql: str, database: str = "postgres") -> list:
    con = psycopg2.connect(f"postgresql://{PG}/{database}")
    con.autocommit = True
    try:
        cur = con.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else []
    finally:
        con.close()


@contextlib.contextmanager
def postgres_instance(database: str):
    with instance_for_test(
        overrides={"storage": {"postgres": {"postgres_url": f"postgresql+psycopg2://{PG}/{database}"}}}
    ) as instance:
        yield instance


@pytest.fixture(scope="module", params=["default", "postgres"])
def lakehouse(request, tmp_path_factory):
    """The same end-to-end run on the default profile (SQLite catalog and stores: the session's demo
    lakehouse) and on the PostgreSQL profile (Iceberg catalog, MLflow backend and Dagster instance
    in PostgreSQL)."""
    if request.param == "default":
        settings, result, checks = request.getfixturevalue("demo_lakehouse")
        yield settings, result, checks, "default", {}
        return
    from demo_shop.generate import ShopConfig, generate_shop

    mp = pytest.MonkeyPatch()
    suffix = uuid.uuid4().hex[:8]
    databases = {role: f"shoplake_test_{role}_{suffix}" for role in ("catalog", "mlflow", "dagster")}
    for db in databases.values():
        postgres(f"CREATE DATABASE {db}")
    try:
        isolated_env(mp, tmp_path_factory.mktemp("lakehouse-postgres"))
        mp.setenv("SHOPLAKE_CATALOG_URI", f"postgresql+psycopg2://{PG}/{databases['catalog']}")
        mp.setenv("MLFLOW_TRACKING_URI", f"postgresql+psycopg2://{PG}/{databases['mlflow']}")
        settings = Settings.from_env()
        generate_shop(
            ShopConfig(**PG_SHOP),
            settings.source_url,
            settings.truth_dir,
            progress=False,
        )
        with postgres_instance(databases["dagster"]) as instance:
            result, checks = run_job("shoplake_all", instance)
        yield settings, result, checks, "postgres", databases
    finally:
        mp.undo()
        for db in databases.values():
            postgres(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def rerun_daily(profile: str, databases: dict):
    if profile == "postgres":
        with postgres_instance(databases["dagster"]) as instance:
            return run_job("daily_refresh", instance)
    return run_job("daily_refresh")


def source_count(settings: Settings, table: str, where: str = "") -> int:
    con = sqlite3.connect(settings.source_url.split(":///", 1)[1])
    try:
        return con.execute(f'SELECT count(*) FROM "{table}" {where}').fetchone()[0]
    finally:
        con.close()


def quarantined_by_generator(settings: Settings) -> pl.DataFrame:
    return pl.read_parquet(settings.truth_dir / "dirty_rows.parquet").filter(pl.col("action") == "quarantine")


def sql(settings: Settings, text: str):
    return query.run_query(query.connect(settings), text).fetchall()


def test_every_asset_materializes_and_every_check_passes(lakehouse):
    settings, result, checks, _, _ = lakehouse
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    failed = [(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed]
    assert failed == []
    assert len(checks) >= len(TABLES)  # at least the card check of every raw table


def test_prod_orders_equal_valid_source_orders(lakehouse, capsys):
    settings, _, _, profile, databases = lakehouse
    dirty_orders = quarantined_by_generator(settings).filter(pl.col("table") == "orders")["key"].n_unique()
    expected = source_count(settings, "orders") - dirty_orders
    assert dirty_orders > 0  # the generator planted some, so the equality below means something
    assert cli.main(["sql", "select count(*) AS n from prod.fct_orders", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == ["n", str(expected)]


def test_counts_reconcile_layer_to_layer(lakehouse):
    settings, _, _, profile, databases = lakehouse
    dirty = quarantined_by_generator(settings)
    raw_con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    for t in TABLES:
        source = source_count(settings, t.name)
        # raw holds personal data before pseudonymization, so readers' sessions refuse it: read it directly
        live_raw = raw_con.execute(
            f"""SELECT count(*) FROM (
                  SELECT _op FROM iceberg_scan('{load_catalog(settings).load_table(f"raw.{t.name}").metadata_location}')
                  QUALIFY row_number() OVER (PARTITION BY {", ".join(t.primary_key)} ORDER BY _extracted_at DESC) = 1
                ) WHERE _op <> 'delete'""",
        ).fetchone()[0]
        curated = sql(settings, f"SELECT count(*) FROM curated.{t.name}")[0][0]
        quarantined = sql(settings, f"SELECT count(DISTINCT ({', '.join(t.primary_key)})) FROM quarantine.{t.name}")[0][
            0
        ]
        planted = dirty.filter(pl.col("table") == t.name)["key"].n_unique()
        assert (live_raw, curated + quarantined, quarantined) == (source, source, planted), t.name


def test_no_card_number_anywhere_in_the_lakehouse(lakehouse):
    settings, _, _, profile, databases = lakehouse
    cards_at_source = source_count(settings, "payments", "WHERE card_number IS NOT NULL")
    assert cards_at_source > 100
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    scanned = 0
    for ns in NAMESPACES:
        for ident in catalog.list_tables(ns):
            result = scan_iceberg_table(con, ".".join(ident), catalog.load_table(ident))
            assert result.leaks == 0, result.samples
            scanned += result.rows
    assert scanned > cards_at_source
    # ...and the masked free text is still there, readable, without the number.
    masked = sql(settings, "SELECT count(*) FROM curated.support_tickets WHERE body LIKE '%[card ****%'")[0][0]
    if profile == "default":  # the demo shop's customers type card numbers into tickets; the small one's did not
        assert masked > 0


def test_mlflow_holds_the_churn_runs_and_a_registered_version(lakehouse):
    settings, _, _, profile, databases = lakehouse
    from ml_assets import tracking

    client = tracking.configure(settings)
    exp = client.get_experiment_by_name("churn")
    runs = client.search_runs([exp.experiment_id])
    assert {r.data.tags["candidate"] for r in runs} == {"logistic_recency", "logistic_rfm", "xgboost"}
    assert all(0.5 < r.data.metrics["roc_auc"] <= 1.0 for r in runs)
    assert all(r.data.tags["dagster_run_id"] for r in runs)
    versions = client.search_model_versions("name='shoplake_churn'")
    assert versions
    champion = client.get_model_version_by_alias("shoplake_churn", "champion")
    assert champion.tags["dagster_run_id"]  # traceable to the run (and its snapshots) that trained it


def test_the_compliance_report_reports_the_scores_and_models_of_its_own_run(lakehouse):
    """The report is built once, after the checks and the model steps: its fraud section counts the
    review queue the same run published, its models section holds that run's outcomes, and the
    ledgers it reads live in their own namespace, not in raw."""
    from orchestration.lakehouse.catalog import snapshot_property
    from orchestration.lakehouse.publish import PUBLISHED_BY_PROPERTY

    settings, result, _, _, _ = lakehouse
    run_id = result.run_id
    report_steps = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert [e.asset_key.to_user_string() for e in report_steps].count("prod/compliance_report") == 1
    catalog = load_catalog(settings)
    assert snapshot_property(catalog.load_table("prod.high_risk_transactions"), PUBLISHED_BY_PROPERTY) == run_id
    queue = sql(settings, "SELECT count(*) FROM prod.high_risk_transactions")[0][0]
    assert queue > 0
    fraud = sql(
        settings,
        f"SELECT status, value, detail FROM prod.compliance_report WHERE run_id = '{run_id}' AND section = 'fraud'",
    )
    assert fraud == [("scored", queue, f"as scored by run {run_id}, this run")]
    models = dict(
        sql(
            settings,
            f"SELECT item, status FROM prod.compliance_report WHERE run_id = '{run_id}' AND section = 'models'",
        )
    )
    for family in ("churn", "fraud", "forecasting"):
        assert models.get(f"{family}_promotion") in ("promoted", "champion_kept"), models
        assert models.get(f"{family}_scoring") == "scored", models
    assert {".".join(t) for t in catalog.list_tables("ledger")} >= {"ledger.check_results", "ledger.model_outcomes"}
    assert not {"check_results", "model_outcomes", "home_pan_scans"} & {t[-1] for t in catalog.list_tables("raw")}


def test_after_simulate_the_next_run_captures_changes_exactly(lakehouse, request):
    settings, _, _, profile, databases = lakehouse
    if profile == "default":
        request.getfixturevalue("demo_lakehouse_to_change")  # the session's lakehouse, put back afterwards
    from demo_shop.simulate import simulate_shop

    simulate_shop(5, settings.source_url, settings.truth_dir, seed=3, progress=False)
    before = answers(settings)
    stop = settings.home / "reader.stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, json.dumps(READER_QUERIES), str(stop)],
        env=dict(os.environ),
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        result, checks = rerun_daily(profile, databases)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
        stop.unlink()
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    after = answers(settings)
    # A reader querying prod all through the run: zero errors, and every answer is the table as it
    # was before the run or as the run left it, never a half-written table.
    seen = [json.loads(line) for line in out.splitlines()]
    assert [s["error"] for s in seen if "error" in s] == []
    assert len(seen) >= 3 * len(READER_QUERIES)
    for table in READER_QUERIES:
        assert before[table] != after[table], table  # the run changed it, so the check below means something
        assert {tuple(s["answer"]) for s in seen if s.get("table") == table} <= {
            tuple(before[table]),
            tuple(after[table]),
        }, table
    assert [c for c in checks if not c.passed] == []
    assert_only_changes_published_and_checked(result, checks)
    dirty = quarantined_by_generator(settings)
    for t in TABLES:
        source = source_count(settings, t.name)
        curated = sql(settings, f"SELECT count(*) FROM curated.{t.name}")[0][0]
        quarantined = sql(settings, f"SELECT count(DISTINCT ({', '.join(t.primary_key)})) FROM quarantine.{t.name}")[0][
            0
        ]
        assert (curated + quarantined, quarantined) == (
            source,
            dirty.filter(pl.col("table") == t.name)["key"].n_unique(),
        ), t.name


def assert_only_changes_published_and_checked(result, checks) -> None:
    """The daily run wrote only what changed and checked only the files its tables gained."""
    published = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and "publish_mode" in e.event_specific_data.materialization.metadata
    }
    mode = {table: m["publish_mode"].value for table, m in published.items()}
    assert set(mode.values()) <= {"replaced", "changed rows", "unchanged"}
    assert mode["curated/categories"] == "unchanged"  # reference data the simulated days never touch
    # (a keyed table is replaced instead when more than a fifth of its keys changed, as the
    # retention job's first days do to web_events)
    diffed = [table for table, m in mode.items() if m == "changed rows"]
    assert "curated/orders" in diffed
    for table in diffed:
        assert published[table]["publish_rows_written"].value < published[table]["dagster/row_count"].value, table
    scope = {
        (c.asset_key.to_user_string(), c.check_name): c.metadata["scope"].value for c in checks if "scope" in c.metadata
    }
    for table in ("raw/web_events", "curated/web_events"):
        assert "added since snapshot" in scope[(table, "no_card_numbers")], table
    assert scope[("curated/categories", "pandera_schema")].startswith("0 of ")


def test_postgres_profile_keeps_catalog_and_mlflow_in_postgres(lakehouse):
    settings, _, _, profile, databases = lakehouse
    if profile != "postgres":
        pytest.skip("only for the PostgreSQL profile")
    tables = postgres("SELECT table_namespace, table_name FROM iceberg_tables", databases["catalog"])
    assert ("prod", "fct_orders") in tables and ("raw", "payments") in tables
    assert postgres("SELECT count(*) FROM runs", databases["mlflow"])[0][0] >= 2
    assert postgres("SELECT count(*) FROM runs", databases["dagster"])[0][0] >= 1
