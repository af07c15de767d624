"""The quality checks on their own: pandera schemas on hand-made frames, the leak scanner on a
DuckDB relation, the failure metadata, the ledgers, and the compliance report built from them over
hand-made Iceberg tables. No pipeline run needed."""

import datetime as dt
from decimal import Decimal

import dagster as dg
import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow
import pytest

from orchestration.contract.quality_rules import QUARANTINE, RULES
from orchestration.defs.checks.quality_checks import CHECKED_TABLES, failure_metadata, schema_for
from orchestration.defs.checks.schemas_curated import CURATED_SCHEMAS, quarantine_schema, rules_of
from orchestration.defs.checks.schemas_prod import PROD_SCHEMAS
from orchestration.lakehouse import ledger
from orchestration.lakehouse.card_scan import scan_published_table
from orchestration.policies import AUDITED_NAMESPACES
from orchestration.settings import DBT_PROJECT_DIR

T0 = dt.datetime(2026, 5, 1, 10, 0)
CARD = "4539148803436467"  # Luhn-valid, Visa range, not a published test number


def orders_frame(**overrides) -> pl.DataFrame:
    row = {
        "order_id": 1,
        "customer_id": 7,
        "ordered_at": T0,
        "status": "paid",
        "channel": "web",
        "currency": "EUR",
        "shipping_country": "DE",
        "promo_code": None,
        "subtotal": Decimal("19.50"),
        "discount": Decimal("1.00"),
        "shipping_fee": Decimal("4.99"),
        "total": Decimal("23.49"),
        "notes": None,
        "updated_at": T0,
        "_extracted_at": T0,
    }
    rows = [row, {**row, "order_id": 2}]
    rows[1].update(overrides)
    money = pl.Decimal(12, 2)
    schema = {
        "order_id": pl.Int64,
        "customer_id": pl.Int64,
        "ordered_at": pl.Datetime("us"),
        "status": pl.String,
        "channel": pl.String,
        "currency": pl.String,
        "shipping_country": pl.String,
        "promo_code": pl.String,
        "subtotal": money,
        "discount": money,
        "shipping_fee": money,
        "total": money,
        "notes": pl.String,
        "updated_at": pl.Datetime("us"),
        "_extracted_at": pl.Datetime("us"),
    }
    return pl.DataFrame(rows, schema=schema)


def failed_checks(model, frame: pl.DataFrame) -> set[str]:
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return set(errors.failure_cases["check"].to_list())
    return set()


def test_a_valid_order_passes():
    assert failed_checks(CURATED_SCHEMAS["orders"], orders_frame()) == set()


@pytest.mark.parametrize(
    ("override", "check"),
    [
        ({"total": Decimal("23.50")}, "total_adds_up"),  # one cent off
        ({"status": "lost"}, "isin"),
        ({"currency": "eur"}, "str_matches"),
        ({"order_id": 1}, "field_uniqueness"),
        ({"customer_id": None}, "not_nullable"),
        ({"discount": Decimal("-1.00"), "total": Decimal("25.49")}, "greater_than_or_equal_to(0)"),
    ],
)
def test_orders_schema_catches(override, check):
    found = failed_checks(CURATED_SCHEMAS["orders"], orders_frame(**override))
    assert any(check in c for c in found), found


def test_schemas_are_strict_about_columns_and_types():
    frame = orders_frame()
    assert any("column_in_dataframe" in c for c in failed_checks(CURATED_SCHEMAS["orders"], frame.drop("notes")))
    assert any(
        "column_in_schema" in c for c in failed_checks(CURATED_SCHEMAS["orders"], frame.with_columns(extra=pl.lit(1)))
    )
    widened = frame.with_columns(pl.col("total").cast(pl.Decimal(18, 2)))
    assert any("dtype" in c for c in failed_checks(CURATED_SCHEMAS["orders"], widened))


def test_card_details_belong_to_card_payments_only():
    row = {
        "payment_id": 1,
        "order_id": 1,
        "method": "paypal",
        "card_bin": "453914",
        "card_last4": "6467",
        "card_token": "a" * 52,
        "card_country": "DE",
        "ip_country": "DE",
        "device_type": "mobile",
        "amount": Decimal("23.49"),
        "currency": "EUR",
        "status": "captured",
        "paid_at": T0,
        "chargeback_at": None,
        "updated_at": T0,
        "_extracted_at": T0,
    }
    frame = pl.DataFrame(
        [row],
        schema_overrides={
            "amount": pl.Decimal(12, 2),
            "paid_at": pl.Datetime("us"),
            "chargeback_at": pl.Datetime("us"),
            "updated_at": pl.Datetime("us"),
            "_extracted_at": pl.Datetime("us"),
        },
    )
    assert "card_details_only_for_cards" in failed_checks(CURATED_SCHEMAS["payments"], frame)
    assert failed_checks(CURATED_SCHEMAS["payments"], frame.with_columns(method=pl.lit("card"))) == set()


def test_funnel_must_narrow():
    row = {
        "session_date": dt.date(2026, 5, 1),
        "channel": "web",
        "sessions": 10,
        "product_view_sessions": 8,
        "add_to_cart_sessions": 9,
        "checkout_sessions": 2,
        "purchase_sessions": 1,
        "product_view_rate": 0.8,
        "add_to_cart_rate": 9 / 8,
        "checkout_rate": 2 / 9,
        "purchase_rate": 0.5,
        "conversion_rate": 0.1,
        "_extracted_at": T0,
    }
    frame = pl.DataFrame([row], schema_overrides={"_extracted_at": pl.Datetime("us")})
    found = failed_checks(PROD_SCHEMAS["conversion_funnel"], frame)
    assert "funnel_narrows" in found and any("in_range" in c for c in found)


def test_quarantine_schema_knows_the_rules_of_its_table():
    frame = pl.DataFrame(
        {
            "payment_id": [1, 2],
            "rule": ["payment_amount_mismatch", "orphan_customer"],
            "offending_values": ["amount=1", "x"],
            "_extracted_at": [T0, T0],
        },
        schema_overrides={"_extracted_at": pl.Datetime("us")},
    )
    found = failed_checks(quarantine_schema("payments"), frame)
    assert any(c.startswith("isin") for c in found)
    assert rules_of("payments") == [
        "null_required_field",
        "orphan_order",
        "invalid_value",
        "out_of_range",
        "inconsistent_fields",
        "payment_amount_mismatch",
        "missing_fx_rate",
    ]


def test_every_published_dbt_model_has_a_pandera_schema():
    """The checked tables are exactly the curated, quarantine and prod relations dbt builds."""
    import json

    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    built = {
        (node["schema"], node.get("alias") or node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed") and node["schema"] in ("curated", "quarantine", "prod")
    }
    assert set(CHECKED_TABLES) == built
    for layer, table in CHECKED_TABLES:
        assert schema_for(layer, table) is not None
    # so the transform step stages every table it publishes there until these checks pass it
    assert {layer for layer, _ in built} == AUDITED_NAMESPACES
    # the compliance report is an asset of its own, built after these checks, and checks itself
    assert ("prod", "compliance_report") not in built and schema_for("prod", "compliance_report") is not None


def test_every_quarantine_rule_is_a_dbt_rule():
    """Each quarantine rule of quality_rules.RULES is in the accepted values of its quarantine models."""
    import yaml

    models = yaml.safe_load((DBT_PROJECT_DIR / "models" / "quarantine" / "schema.yml").read_text())["models"]
    accepted = {}
    for model in models:
        for column in model["columns"]:
            for test in column.get("data_tests", []):
                if isinstance(test, dict) and "accepted_values" in test:
                    accepted[model["name"].removeprefix("quarantine_")] = set(
                        test["accepted_values"]["arguments"]["values"]
                    )
    for rule, (tables, action, _) in RULES.items():
        for table in tables:
            if action == QUARANTINE:
                assert rule in accepted.get(table, set()), (rule, table)


def test_failure_metadata_never_shows_a_card_number():
    cases = pl.DataFrame(
        {
            "failure_case": [f"note with {CARD} inside", "x"],
            "schema_context": ["Column", "Column"],
            "column": ["notes", "notes"],
            "check": ["str_length", "str_length"],
            "check_number": [0, 0],
            "index": [3, 4],
        }
    )
    metadata = failure_metadata(cases)
    assert metadata["failure_cases"] == 2
    text = metadata["failure_case_sample"].value + metadata["failures_by_check"].value
    assert CARD not in text and "[card ****6467]" in text


def test_card_scan_reads_every_string_column_of_a_published_relation():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA prod")
    con.execute(
        f"CREATE TABLE prod.t AS SELECT 1 AS id, 'call me' AS a, 'card {CARD[:4]} {CARD[4:8]} {CARD[8:12]} "
        f"{CARD[12:]}' AS b"
    )
    scan = scan_published_table(con, "prod.t")
    assert (scan.rows, scan.string_columns, scan.leaks) == (1, ["a", "b"], 1)
    assert scan.samples == ["b: 453914******6467"]


def test_ledger_rows_are_replaced_per_run(shoplake_home):
    def record(run_id, passed):
        return ledger.make_record(
            run_id,
            dg.AssetKey(["prod", "fct_orders"]),
            "pandera_schema",
            passed,
            True,
            {"failure_cases": 0 if passed else 3, "rows_validated": 10},
            T0,
        )

    ledger.write_check_results(shoplake_home, "run-1", [record("run-1", True)])
    ledger.write_check_results(shoplake_home, "run-2", [record("run-2", False)])
    ledger.write_check_results(shoplake_home, "run-2", [record("run-2", False), record("run-2", True)])  # a retry
    rows = ledger.ensure_ledger(shoplake_home).scan().to_arrow().to_pylist()
    assert sorted((r["run_id"], r["passed"]) for r in rows) == [("run-1", True), ("run-2", False), ("run-2", True)]
    failed = next(r for r in rows if not r["passed"])
    assert (failed["table_name"], failed["check_kind"], failed["failures"], failed["rows_checked"]) == (
        "prod.fct_orders",
        "pandera",
        3,
        10,
    )


def test_the_latest_passing_result_of_this_check_version_is_the_base_and_old_ledgers_gain_the_columns(shoplake_home):
    from orchestration.lakehouse.catalog import load_catalog

    # A ledger written before the snapshot and version columns existed, in raw, where ledgers lived then.
    old_schema = pa_arrow.schema([f for f in ledger.SCHEMA if f.name not in ("snapshot_id", "check_version")])
    old = load_catalog(shoplake_home).create_table("raw.check_results", schema=old_schema)
    old.append(
        pa_arrow.Table.from_pylist(
            [
                dict(
                    zip(
                        old_schema.names,
                        [
                            "run-0",
                            T0,
                            "prod",
                            "prod.fct_orders",
                            "pandera_schema",
                            "pandera",
                            True,
                            True,
                            0,
                            10,
                            "valid",
                        ],
                    )
                )
            ],
            schema=old_schema,
        )
    )

    def record(run_id, passed, snapshot, version=ledger.CHECK_VERSION, minutes=0):
        metadata = {ledger.SNAPSHOT_METADATA: str(snapshot), ledger.VERSION_METADATA: version}
        return ledger.make_record(
            run_id,
            dg.AssetKey(["prod", "fct_orders"]),
            "pandera_schema",
            passed,
            True,
            metadata,
            T0 + dt.timedelta(minutes=minutes),
        )

    ledger.write_check_results(shoplake_home, "run-1", [record("run-1", True, 11, minutes=1)])
    ledger.write_check_results(shoplake_home, "run-2", [record("run-2", True, 22, version="older rules", minutes=2)])
    ledger.write_check_results(shoplake_home, "run-3", [record("run-3", False, 33, minutes=3)])
    assert ledger.last_passed_snapshots(shoplake_home, "pandera_schema") == {
        ("prod.fct_orders", ledger.CHECK_VERSION): 11,
        ("prod.fct_orders", "older rules"): 22,
    }
    assert ledger.last_passed_snapshots(shoplake_home, "no_card_numbers") == {}
    rows = ledger.ensure_ledger(shoplake_home).scan().to_arrow().to_pylist()
    assert sorted((r["run_id"], r["snapshot_id"]) for r in rows) == [
        ("run-0", None),
        ("run-1", 11),
        ("run-2", 22),
        ("run-3", 33),
    ]
    # the ledger moved to its own namespace, history and all: raw holds source data only
    catalog = load_catalog(shoplake_home)
    assert catalog.list_tables("raw") == [] and catalog.list_tables("ledger") == [("ledger", "check_results")]


def test_every_ledger_found_in_raw_moves_to_the_ledger_namespace_once(shoplake_home):
    from orchestration.lakehouse.catalog import load_catalog
    from orchestration.lakehouse.home_scan import HOME_SCANS_SCHEMA, HOME_SCANS_TABLE, HomeScan, record_home_scan

    catalog = load_catalog(shoplake_home)
    outcomes = catalog.create_table("raw.model_outcomes", schema=ledger.MODEL_OUTCOMES_SCHEMA)
    earlier = {
        "run_id": "run-0",
        "recorded_at": T0,
        "family": "churn",
        "stage": "training",
        "table_name": "prod.churn_scores",
    }
    earlier |= {"status": "skipped", "champion_version": None, "candidate": None, "detail": "too young"}
    outcomes.append(pa_arrow.Table.from_pylist([earlier], schema=ledger.MODEL_OUTCOMES_SCHEMA))
    scans = catalog.create_table("raw.home_pan_scans", schema=HOME_SCANS_SCHEMA)
    scans.append(
        pa_arrow.Table.from_pylist(
            [{"scan_id": "run-0", "scanned_at": T0, "root": "/home", "files_scanned": 3, "findings": 0}],
            schema=HOME_SCANS_SCHEMA,
        )
    )

    ledger.record_model_outcome(shoplake_home, "run-1", "churn", "scoring", "prod.churn_scores", "scored", "v1", 1)
    ledger.record_model_outcome(shoplake_home, "run-1", "churn", "scoring", "prod.churn_scores", "scored", "v2", 2)
    record_home_scan(shoplake_home, HomeScan(root="/home", files=5), "run-1")

    catalog = load_catalog(shoplake_home)
    assert catalog.list_tables("raw") == []
    assert sorted(catalog.list_tables("ledger")) == [("ledger", "home_pan_scans"), ("ledger", "model_outcomes")]
    rows = catalog.load_table(ledger.MODEL_OUTCOMES_TABLE).scan().to_arrow().to_pylist()
    assert sorted((r["run_id"], r["stage"], r["status"], r["detail"]) for r in rows) == [
        ("run-0", "training", "skipped", "too young"),
        ("run-1", "scoring", "scored", "v2"),  # a retried step replaces its row
    ]
    rows = catalog.load_table(HOME_SCANS_TABLE).scan().to_arrow().to_pylist()
    assert sorted((r["scan_id"], r["files_scanned"]) for r in rows) == [("run-0", 3), ("run-1", 5)]
    with pytest.raises(ValueError, match="not one of"):
        ledger.record_model_outcome(shoplake_home, "run-1", "churn", "scoring", "prod.churn_scores", "won", "?")


def _small_lakehouse(settings, high_risk_by: str | None) -> None:
    """Published tables the compliance report reads, by hand: two quarantined customers and one order,
    three tokenized payments (one not), one order note and no ticket masked; high-risk transactions
    published by ``high_risk_by``."""
    from orchestration.contract.schema import TABLES
    from orchestration.lakehouse.catalog import load_catalog
    from orchestration.lakehouse.publish import write_table

    catalog = load_catalog(settings)
    rules = {"customers": ["invalid_email", "invalid_email"], "orders": ["orphan_customer"]}
    for t in TABLES:
        rows = [{"rule": r} for r in rules.get(t.name, [])]
        write_table(
            catalog,
            f"quarantine.{t.name}",
            pa_arrow.Table.from_pylist(rows, pa_arrow.schema([("rule", pa_arrow.string())])),
            "run-x",
        )
    text = pa_arrow.string()
    write_table(
        catalog,
        "curated.payments",
        pa_arrow.table({"card_token": ["a", "b", "c", None]}, pa_arrow.schema([("card_token", text)])),
        "run-x",
    )
    write_table(
        catalog,
        "curated.orders",
        pa_arrow.table({"notes": ["call [card ****6467] back", None]}, pa_arrow.schema([("notes", text)])),
        "run-x",
    )
    write_table(
        catalog,
        "curated.support_tickets",
        pa_arrow.table({"body": ["hello"]}, pa_arrow.schema([("body", text)])),
        "run-x",
    )
    if high_risk_by:
        queue = pa_arrow.table({"payment_id": [11, 12]}, pa_arrow.schema([("payment_id", pa_arrow.int64())]))
        write_table(catalog, "prod.high_risk_transactions", queue, high_risk_by)


def _check(run_id: str, table: str, check: str, passed: bool, failures: int = 0) -> "ledger.CheckRecord":
    layer, name = table.split(".")
    metadata = {"failure_cases": failures, "card_numbers_found": failures, "rows_scanned": 10}
    return ledger.make_record(run_id, dg.AssetKey([layer, name]), check, passed, True, metadata, T0)


def test_the_compliance_report_reports_the_ledgers_and_the_published_tables(shoplake_home):
    from orchestration.defs.checks.compliance import REPORT_SCHEMA, build_report

    settings = shoplake_home
    _small_lakehouse(settings, high_risk_by="run-2")
    # run-1 failed a blocking check: its report was skipped, its checks are in the ledger
    ledger.write_check_results(settings, "run-1", [_check("run-1", "prod.fct_orders", "pandera_schema", False, 3)])
    ledger.write_check_results(
        settings,
        "run-2",
        [
            _check("run-2", "prod.fct_orders", "pandera_schema", True),
            _check("run-2", "prod.fct_orders", "no_card_numbers", True),
            _check("run-2", "raw.orders", "no_card_numbers", True),
        ],
    )
    ledger.record_model_outcome(settings, "run-2", "churn", "training", "prod.churn_scores", "skipped", "too young")
    ledger.record_model_outcome(settings, "run-2", "fraud", "scoring", "prod.fraud_scores", "scored", "by v3", 3)

    report, scored_by = build_report(settings, "run-2")
    assert report.schema == REPORT_SCHEMA and scored_by == "run-2"
    rows = {
        (r["run_id"], r["section"], r["table_name"], r["item"], r["status"]): (r["value"], r["detail"])
        for r in report.to_pylist()
    }
    assert len(rows) == report.num_rows  # one row per run, section, table, item and status
    assert rows[("run-1", "checks", "prod.fct_orders", "pandera", "failed")] == (1, "pandera_schema (3 failing)")
    assert rows[("run-2", "checks", "prod.fct_orders", "pandera", "passed")] == (1, "1 of them blocking")
    assert rows[("run-2", "card_scan", "raw.orders", "card_numbers_found", "passed")] == (0, "rows scanned: 10")
    assert rows[("run-2", "quarantine", "quarantine.customers", "invalid_email", "quarantined")][0] == 2
    assert rows[("run-2", "quarantine", "quarantine.orders", "orphan_customer", "quarantined")][0] == 1
    assert rows[("run-2", "masking", "curated.payments", "masked_card_numbers", "masked")][0] == 3
    assert rows[("run-2", "masking", "curated.orders", "masked_card_numbers_in_text", "masked")][0] == 1
    assert rows[("run-2", "masking", "curated.support_tickets", "masked_card_numbers_in_text", "masked")][0] == 0
    assert rows[("run-2", "fraud", "prod.high_risk_transactions", "high_risk_transactions", "scored")] == (
        2,
        "as scored by run run-2, this run",
    )
    assert rows[("run-2", "models", "prod.churn_scores", "churn_training", "skipped")] == (None, "too young")
    assert rows[("run-2", "models", "prod.fraud_scores", "fraud_scoring", "scored")] == (3, "by v3")
    summary = {
        item: value for (run, section, _, item, _), (value, _) in rows.items() if (run, section) == ("run-2", "summary")
    }
    assert summary == {
        "checks_passed": 3,
        "checks_failed": 0,
        "card_numbers_found": 0,
        "quarantined_rows": 3,
        "masked_card_numbers": 4,
        "high_risk_transactions": 2,
    }
    assert {r for r, section, *_ in rows if section in ("quarantine", "masking", "fraud", "summary")} == {"run-2"}
    schema_for("prod", "compliance_report").validate(pl.from_arrow(report))  # what its own check validates


def test_the_compliance_report_keeps_its_history_and_says_who_scored(shoplake_home):
    from orchestration.defs.checks.compliance import REPORT_IDENTIFIER, build_report
    from orchestration.lakehouse.catalog import load_catalog
    from orchestration.lakehouse.publish import write_table

    settings = shoplake_home
    _small_lakehouse(settings, high_risk_by=None)
    ledger.write_check_results(settings, "run-1", [_check("run-1", "prod.fct_orders", "pandera_schema", True)])
    first, scored_by = build_report(settings, "run-1")
    fraud = [r for r in first.to_pylist() if r["section"] == "fraud"]
    assert scored_by is None and [(r["status"], r["value"]) for r in fraud] == [("not_scored_yet", None)]
    write_table(load_catalog(settings), REPORT_IDENTIFIER, first, "run-1")

    # the next run: a day's new quarantined row, run-1's report checks added to the ledger afterwards,
    # and fraud scored by run-1 (this run did not score)
    _small_lakehouse(settings, high_risk_by="run-1")
    ledger.add_check_results(settings, "run-1", [_check("run-1", "prod.compliance_report", "pandera_schema", True)])
    second, _ = build_report(settings, "run-2")
    rows = second.to_pylist()

    def section(run_id, name):
        return sorted(
            (r["table_name"], r["item"], r["status"], r["value"])
            for r in rows
            if (r["run_id"], r["section"]) == (run_id, name)
        )

    # run-1's measured sections are kept as they were; its check sections are recomputed from the ledger
    assert section("run-1", "quarantine") == sorted(
        (r["table_name"], r["item"], r["status"], r["value"]) for r in first.to_pylist() if r["section"] == "quarantine"
    )
    assert section("run-1", "fraud") == [
        ("prod.high_risk_transactions", "high_risk_transactions", "not_scored_yet", None)
    ]
    assert section("run-1", "checks") == [
        ("prod.compliance_report", "pandera", "passed", 1),
        ("prod.fct_orders", "pandera", "passed", 1),
    ]
    fraud = [r for r in rows if (r["run_id"], r["section"]) == ("run-2", "fraud")]
    assert [(r["status"], r["value"], r["detail"]) for r in fraud] == [
        ("scored", 2, "as scored by run run-1, an earlier run: this run did not score")
    ]
    assert len(rows) == len(first) + 1 + len([r for r in rows if r["run_id"] == "run-2"])


def test_batched_pandera_validation_finds_what_whole_table_validation_finds():
    import duckdb
    import pandera.polars as pa_pl

    from orchestration.defs.checks import pandera_batches

    schema = pa_pl.DataFrameSchema(
        {
            "id": pa_pl.Column(pl.Int64, pa_pl.Check.ge(1), unique=True),
            "shop": pa_pl.Column(pl.String),
            "day": pa_pl.Column(pl.Int64, pa_pl.Check.in_range(1, 31)),
        },
        unique=["shop", "day"],
        name="visits",
        strict=True,
    )
    con = duckdb.connect()
    # id 2 repeats across batches of 3, (a, 5) repeats, day 40 and id 0 are out of range in the 2nd/3rd batch.
    con.execute("""CREATE TABLE visits AS SELECT id::BIGINT AS id, shop, day::BIGINT AS day FROM (VALUES
        (1, 'a', 5), (2, 'b', 6), (3, 'c', 7), (4, 'a', 5), (2, 'd', 40), (5, 'e', 9), (0, 'f', 10))
        t(id, shop, day)""")
    con.execute("CREATE TABLE wrong_type AS SELECT id::INTEGER AS id, shop, day FROM visits")

    def summary(cases):
        # pandera shows a repeated row's every column; the batched check shows its key columns
        cases = cases.with_columns(
            pl.when(pl.col("check") == "multiple_fields_uniqueness")
            .then(None)
            .otherwise(pl.col("failure_case"))
            .alias("failure_case")
        )
        return sorted(cases.group_by("column", "check", "failure_case").len().rows(), key=str)

    whole_rows, whole, _ = pandera_batches.failure_cases(con, "visits", schema, batch_rows=100)
    batched_rows, batched, _ = pandera_batches.failure_cases(con, "visits", schema, batch_rows=3)
    assert whole_rows == batched_rows == 7
    assert summary(batched) == summary(whole)
    assert ("day", "in_range(1, 31)", "40", 1) in summary(batched)
    assert ("id", "field_uniqueness", "2", 2) in summary(batched)
    # a row-level failure keeps its position in the table, not in its batch
    assert batched.filter(pl.col("failure_case") == "40")["index"].to_list() == [4]
    # a wrong dtype is one failure of the table, not one per batch
    assert summary(pandera_batches.failure_cases(con, "wrong_type", schema, batch_rows=3)[1]) == summary(
        pandera_batches.failure_cases(con, "wrong_type", schema, batch_rows=100)[1]
    )


def test_low_stock_at_exactly_fourteen_days_of_cover_is_decided_exactly():
    # Regression: 18 on hand and 36 sold in 28 days is exactly 14 days of cover; in floating point
    # the model and the check rounded it to different sides and the daily refresh at scale M failed.
    def frame(low_stock: bool) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "product_id": [91],
                "sku": ["HOM-000091"],
                "name": ["Candle"],
                "category_id": pl.Series([2], dtype=pl.Int32),
                "is_active": [True],
                "quantity_on_hand": pl.Series([18], dtype=pl.Int32),
                "reorder_point": pl.Series([5], dtype=pl.Int32),
                "last_restocked_at": [T0],
                "as_of_date": [T0.date()],
                "units_sold_28d": [36],
                "avg_daily_units_28d": [36 / 28],
                "days_of_cover": [18 / (36 / 28)],
                "low_stock": [low_stock],
            }
        )

    schema = PROD_SCHEMAS["inventory_status"]
    schema.validate(frame(low_stock=False))  # 14 days is not fewer than 14
    with pytest.raises(pa.errors.SchemaError, match="cover_and_flag_agree"):
        schema.validate(frame(low_stock=True))
