"""Quality gates on a materialized lakehouse: quarantine catches exactly what the generator planted,
a failing blocking check stops the ML assets of its run, and the compliance report tells the truth.

One generated shop and one in-process run (extraction, dbt, quality checks, the compliance report; no
ML) serve the module; the blocking test adds a second run of the whole job with one check made to fail.
"""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from dagster import DagsterInstance

from orchestration import query
from orchestration.contract.quality_rules import QUARANTINE, RULES
from orchestration.contract.schema import TABLES
from orchestration.defs.checks import quality_checks
from orchestration.settings import DBT_PROJECT_DIR, Settings

pytestmark = pytest.mark.slow

CUSTOMERS, DAYS, SEED = 600, 150, 5
ENV = (
    "SHOPLAKE_SOURCE_URL",
    "SHOPLAKE_CATALOG_URI",
    "SHOPLAKE_WAREHOUSE",
    "SHOPLAKE_DUCKDB_PATH",
    "MLFLOW_TRACKING_URI",
)


def run_job(selection: list[dg.AssetKey] | None = None):
    from orchestration.definitions import defs

    job = defs.resolve_job_def("shoplake_all")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, asset_selection=selection)
        evaluations = [
            e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
    return result, evaluations


REPORT = dg.AssetKey(["prod", "compliance_report"])


def lakehouse_keys() -> list[dg.AssetKey]:
    """Everything but the ML assets: extraction, dbt and the compliance report (their checks come along)."""
    from orchestration.defs.extract.assets import extract_source_tables
    from orchestration.defs.transform.assets import dbt_curated_and_prod

    return sorted(extract_source_tables.keys | dbt_curated_and_prod.keys | {REPORT})


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    from demo_shop.generate import ShopConfig, generate_shop

    mp = pytest.MonkeyPatch()
    for var in ENV:
        mp.delenv(var, raising=False)
    mp.setenv("SHOPLAKE_HOME", str(tmp_path_factory.mktemp("quality")))
    settings = Settings.from_env()
    generate_shop(
        ShopConfig(customers=CUSTOMERS, days=DAYS, seed=SEED), settings.source_url, settings.truth_dir, progress=False
    )
    result, evaluations = run_job(lakehouse_keys())
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    yield settings, result, evaluations
    mp.undo()


KINDS = {"no_card_numbers": "card_scan", "pandera_schema": "pandera"}


def is_ours(evaluation) -> bool:
    """A blocking quality check on curated, quarantine or prod (the report checks itself, not blocking)."""
    return evaluation.check_name in KINDS and evaluation.asset_key.path[0] != "raw" and evaluation.asset_key != REPORT


def table_name(evaluation) -> str:
    return ".".join((evaluation.asset_key.path[0], evaluation.asset_key.path[-1]))


def planted(settings: Settings) -> pl.DataFrame:
    return pl.read_parquet(settings.truth_dir / "dirty_rows.parquet").filter(pl.col("action") == QUARANTINE)


def quarantined_keys(settings: Settings) -> dict[tuple[str, str], set[str]]:
    con = query.connect(settings)
    found: dict[tuple[str, str], set[str]] = {}
    for t in TABLES:
        key = " || '|' || ".join(f"CAST({k} AS VARCHAR)" for k in t.primary_key)
        for rule, k in con.execute(f"SELECT rule, {key} FROM quarantine.{t.name}").fetchall():
            found.setdefault((t.name, rule), set()).add(k)
    return found


def test_quarantine_holds_exactly_the_planted_rows_under_their_rule(lakehouse):
    settings, _, _ = lakehouse
    expected: dict[tuple[str, str], set[str]] = {}
    for table, key, rule in planted(settings).select("table", "key", "rule").iter_rows():
        expected.setdefault((table, rule), set()).add(key)
    assert len(expected) >= 7  # every kind the generator plants
    found = quarantined_keys(settings)
    assert {k: len(v) for k, v in found.items()} == {k: len(v) for k, v in expected.items()}
    assert found == expected  # same keys under the same rule: no clean row in quarantine, no planted row missed


def test_rules_the_generator_never_breaks_are_unit_tested(lakehouse):
    """Each quarantine rule without planted rows has a dbt unit test that expects it, and they pass."""
    settings, _, _ = lakehouse
    never_planted = {r for r, (_, action, _) in RULES.items() if action == QUARANTINE} - set(planted(settings)["rule"])
    assert {
        "order_total_mismatch",
        "payment_amount_mismatch",
        "shipped_before_ordered",
        "return_exceeds_purchase",
        "negative_stock",
        "missing_fx_rate",
    } <= never_planted
    unit_tests = yaml.safe_load((DBT_PROJECT_DIR / "models" / "quarantine" / "unit_tests.yml").read_text())[
        "unit_tests"
    ]
    expected_rules = {row["rule"] for t in unit_tests for row in t["expect"]["rows"]}
    assert never_planted <= expected_rules
    dbt = Path(sys.executable).parent / "dbt"
    run = subprocess.run(
        [
            str(dbt),
            "test",
            "--select",
            "test_type:unit",
            "--profiles-dir",
            ".",
            "--target-path",
            str(settings.home / "dbt-target"),
        ],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "SHOPLAKE_DUCKDB_PATH": str(settings.duckdb_path)},
    )
    assert run.returncode == 0, run.stdout[-3000:]
    every_unit_test = sum(
        len(yaml.safe_load(f.read_text())["unit_tests"]) for f in DBT_PROJECT_DIR.glob("models/*/unit_tests.yml")
    )
    assert every_unit_test > len(unit_tests)  # the marts' own (dim_customers' RFM ties) run too
    assert f"PASS={every_unit_test}" in run.stdout


def test_every_curated_and_prod_table_passed_its_blocking_checks(lakehouse):
    _, _, evaluations = lakehouse
    ours = [e for e in evaluations if is_ours(e)]
    assert len(ours) == 2 * len(quality_checks.CHECKED_TABLES)
    assert all(e.blocking for e in ours)
    assert [e.asset_key.to_user_string() + ":" + e.check_name for e in ours if not e.passed] == []
    rows = {
        e.asset_key.to_user_string(): e.metadata["rows_validated"].value
        for e in ours
        if e.check_name == "pandera_schema"
    }
    assert rows["curated/web_events"] > 10_000 and rows["prod/fct_orders"] > 500


def test_compliance_report_shows_what_the_checks_found(lakehouse):
    settings, result, evaluations = lakehouse
    run_id = result.run_id
    con = query.connect(settings)
    checks = con.execute(
        "SELECT table_name, item, status, value FROM prod.compliance_report WHERE run_id = ? AND section = 'checks'",
        [run_id],
    ).fetchall()
    # every check the run evaluated, except the two that judge the report itself (they are in the
    # ledger, and in the report from its next build on)
    reported = [e for e in evaluations if e.asset_key != REPORT]
    report_checks = [e for e in evaluations if e.asset_key == REPORT]
    assert sorted((e.check_name, e.passed, e.blocking) for e in report_checks) == [
        ("no_card_numbers", True, False),
        ("pandera_schema", True, False),
    ]
    expected = Counter(
        (table_name(e), KINDS.get(e.check_name, "dbt_test"), "passed" if e.passed else "failed") for e in reported
    )
    assert {(t, i, s): v for t, i, s, v in checks} == dict(expected)
    summary = dict(
        con.execute(
            "SELECT item, value FROM prod.compliance_report WHERE run_id = ? AND section = 'summary'", [run_id]
        ).fetchall()
    )
    assert summary["checks_passed"] == len(reported) and summary["checks_failed"] == 0
    assert summary["quarantined_rows"] == planted(settings).height
    assert summary["card_numbers_found"] == 0
    masked = con.execute("SELECT count(*) FROM curated.payments WHERE card_token IS NOT NULL").fetchone()[0]
    assert (
        con.execute(
            "SELECT value FROM prod.compliance_report WHERE run_id = ? AND item = 'masked_card_numbers' AND "
            "section = 'masking'",
            [run_id],
        ).fetchone()[0]
        == masked
        > 0
    )
    by_rule = dict(
        con.execute(
            "SELECT table_name || ':' || item, value FROM prod.compliance_report WHERE run_id = ? AND section "
            "= 'quarantine'",
            [run_id],
        ).fetchall()
    )
    assert by_rule == {
        f"quarantine.{t}:{r}": n for t, r, n in planted(settings).group_by("table", "rule").len().iter_rows()
    }


def _impossible_rule(cls, data):
    """A rule no real order meets: a stand-in for a bad row that dbt tests let through."""
    return data.lazyframe.select(pl.col("total_usd") > 1_000_000)


def test_a_failing_blocking_check_stops_the_ml_assets_of_its_run(lakehouse, monkeypatch):
    import pandera.polars as pa

    settings, _, _ = lakehouse
    failing = type(
        "FailingFctOrders",
        (quality_checks.PROD_SCHEMAS["fct_orders"],),
        {"implausibly_large": pa.dataframe_check(_impossible_rule)},
    )
    monkeypatch.setitem(quality_checks.PROD_SCHEMAS, "fct_orders", failing)

    result, evaluations = run_job()  # the whole job, ML included
    assert not result.success
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    assert failed == [("prod/fct_orders", "pandera_schema")]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "prod/fct_orders" in materialized and "prod/compliance_report" not in materialized
    assert not [k for k in materialized if k.startswith("ml/")], materialized
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert {"extract_source_tables", "dbt_curated_and_prod", "lakehouse_quality_checks"} <= started
    # the ML steps and the run's compliance report never started
    assert not [s for s in started if s.startswith(("ml__", "prod__"))], started
    # ...but the check step kept the run's checks in the ledger before it failed, so the report's
    # next build, in a later run, says why
    report = run_job([REPORT])[0]
    assert report.success and {e.asset_key for e in report.get_asset_materialization_events()} == {REPORT}
    con = query.connect(settings)
    row = con.execute(
        "SELECT value, detail FROM prod.compliance_report WHERE run_id = ? AND section = 'checks' "
        "AND table_name = 'prod.fct_orders' AND item = 'pandera' AND status = 'failed'",
        [result.run_id],
    ).fetchone()
    assert row[0] == 1 and "pandera_schema" in row[1]
    failed_run = dict(
        con.execute(
            "SELECT status, sum(value) FROM prod.compliance_report WHERE run_id = ? AND section = 'checks' GROUP BY 1",
            [result.run_id],
        ).fetchall()
    )
    assert failed_run["failed"] == 1 and failed_run["passed"] > 50
    # the report of the first run now also holds the checks that judged that run's report
    earlier = con.execute(
        "SELECT count(*) FROM prod.compliance_report WHERE run_id NOT IN (?, ?) AND section = 'checks' "
        "AND table_name = 'prod.compliance_report' AND item IN ('pandera', 'card_scan') AND status = 'passed'",
        [result.run_id, report.run_id],
    ).fetchone()[0]
    assert earlier == 2


def test_a_free_item_is_legal_in_curated_and_prod_and_a_negative_price_is_not():
    """Issue 19: a line at 0.00 stopped the run at the blocking pandera check (unit_price > 0)."""
    import datetime as dt
    from decimal import Decimal

    import pandera.polars as pa

    from orchestration.defs.checks.schemas_curated import CURATED_SCHEMAS
    from orchestration.defs.checks.schemas_prod import PROD_SCHEMAS

    t0 = dt.datetime(2026, 5, 1, 10, 0)
    money, money18, rate = pl.Decimal(12, 2), pl.Decimal(18, 2), pl.Decimal(18, 8)
    line = {
        "order_item_id": 1,
        "order_id": 1,
        "product_id": 1,
        "quantity": 2,
        "unit_price": Decimal("0.00"),
        "line_discount": Decimal("0.00"),
        "updated_at": t0,
        "_extracted_at": t0,
    }
    curated_types = {
        "order_item_id": pl.Int64,
        "order_id": pl.Int64,
        "product_id": pl.Int64,
        "quantity": pl.Int32,
        "unit_price": money,
        "line_discount": money,
        "updated_at": pl.Datetime("us"),
        "_extracted_at": pl.Datetime("us"),
    }
    fact = {
        **line,
        "customer_id": 1,
        "category_id": 1,
        "ordered_at": t0,
        "order_date": t0.date(),
        "status": "paid",
        "is_cancelled": False,
        "channel": "web",
        "shipping_country": "DE",
        "region": "europe",
        "currency": "EUR",
        "line_revenue": Decimal("0.00"),
        "usd_per_unit": Decimal("1.10000000"),
        "line_revenue_usd": Decimal("0.00"),
        "returned_units": 0,
        "refund_amount": Decimal("0.00"),
        "refund_usd": Decimal("0.00"),
    }
    fact_types = {
        **curated_types,
        "customer_id": pl.Int64,
        "category_id": pl.Int32,
        "ordered_at": pl.Datetime("us"),
        "order_date": pl.Date,
        "status": pl.String,
        "is_cancelled": pl.Boolean,
        "channel": pl.String,
        "shipping_country": pl.String,
        "region": pl.String,
        "currency": pl.String,
        "line_revenue": money18,
        "usd_per_unit": rate,
        "line_revenue_usd": money18,
        "returned_units": pl.Int64,
        "refund_amount": money18,
        "refund_usd": money18,
    }
    fact_types.pop("updated_at")
    fact.pop("updated_at")

    def frame(row: dict, types: dict) -> pl.DataFrame:
        return pl.DataFrame([row], schema=types).select(
            list(PROD_SCHEMAS["fct_order_items"].to_schema().columns) if "line_revenue" in row else list(types)
        )

    CURATED_SCHEMAS["order_items"].validate(frame(line, curated_types), lazy=True)
    PROD_SCHEMAS["fct_order_items"].validate(frame(fact, fact_types), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors, match="unit_price"):
        CURATED_SCHEMAS["order_items"].validate(
            frame({**line, "unit_price": Decimal("-0.01")}, curated_types), lazy=True
        )
