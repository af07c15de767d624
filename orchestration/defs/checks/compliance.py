"""``prod.compliance_report``: what every pipeline run checked and found, an ordinary downstream asset.

It is built once per run, after the run's quality checks and its model steps, from what they left
in the ledgers (orchestration/lakehouse/ledger.py) and from the published tables: one DuckDB query
over views of the current Iceberg snapshots, published with orchestration/lakehouse/publish.py. Its
sections:

- checks: per run, table and kind of check (dbt_test, pandera, card_scan), how many passed and how
  many failed, naming the failures; card_scan: card numbers found per table scanned. Both from
  ``ledger.check_results``, recomputed for every run in the ledger at every build;
- quarantine (rows per quarantine table and rule), masking (card numbers tokenized or masked at
  extraction, as held in curated), fraud (rows of ``prod.high_risk_transactions`` and the run that
  scored them): measured on the data when the run builds the report;
- models: per run, family and stage, which candidate won, the champion kept or why a family skipped,
  from ``ledger.model_outcomes``, recomputed for every run in the ledger;
- summary: the run's totals.

It depends, by asset key, on the tables it reads (their blocking quality checks gate it) and on
every model family's promotion and scoring assets, so it runs after them and reports the fraud,
churn and forecast outcomes of its own run. A model step that skips (a family with too little
history, no champion yet) does not skip the report: the asset is a graph of two ops, and the second
waits for the first (after the quality checks) and for the model steps through one fan-in input,
which Dagster skips only when every step it waits for produced nothing.

A failed blocking check stops everything downstream of it, the report of that run included. So the
step that evaluates a run's last checks writes the run's check results to the ledger itself before
Dagster fails it (the quality-check step; the dbt step when dbt failed): the next build of the
report, in any later run, reports that run's checks, since it recomputes the check sections of every
run in the ledger. The failed run's data sections (quarantine, masking, fraud, summary) are not
reported: they were never measured.

The report's own two checks (pandera schema, card numbers) judge it right after it is published.
They are not blocking: nothing reads the report downstream. They go to the ledger at once and are
in the report from its next build.
"""

import datetime as dt
import time

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.contract.schema import TABLES
from orchestration.defs.checks.quality_checks import check_record, evaluate_table
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import load_catalog, snapshot_property, table_or_none
from orchestration.lakehouse.ledger import (
    CARD_CHECK,
    CHECK_RESULTS_TABLE,
    MODEL_OUTCOMES_SCHEMA,
    MODEL_OUTCOMES_TABLE,
    PANDERA_CHECK,
    add_check_results,
    ensure_ledger,
    ledger_table,
)
from orchestration.lakehouse.publish import PUBLISHED_BY_PROPERTY, write_table
from orchestration.lakehouse.views import create_snapshot_views
from orchestration.policies import DATA_PLATFORM_OWNER, table_pool
from orchestration.resources import LakehouseResource
from orchestration.settings import Settings

COMPLIANCE_REPORT = ("prod", "compliance_report")
REPORT_IDENTIFIER = ".".join(COMPLIANCE_REPORT)
REPORT_KEY = dg.AssetKey(list(COMPLIANCE_REPORT))
HIGH_RISK_TRANSACTIONS = "prod.high_risk_transactions"

# What the report reads, published by dbt and gated by their blocking quality checks.
CHECKED_READS: tuple[tuple[str, str], ...] = (
    *(("quarantine", t.name) for t in TABLES),
    ("curated", "payments"),
    ("curated", "orders"),
    ("curated", "support_tickets"),
)
# Every model family's promotion and scoring assets (ml_assets/*/assets.py), by key: stages never
# import each other. The outcomes they record in ledger.model_outcomes are the report's models section.
MODEL_FAMILIES = ("churn", "fraud", "forecasting")
MODEL_STEPS: tuple[dg.AssetKey, ...] = (
    *(dg.AssetKey(["ml", f"{family}_promotion"]) for family in MODEL_FAMILIES),
    dg.AssetKey(["prod", "churn_scores"]),
    dg.AssetKey(["prod", "fraud_scores"]),
    dg.AssetKey(HIGH_RISK_TRANSACTIONS.split(".")),
    dg.AssetKey(["prod", "demand_forecast"]),
    dg.AssetKey(["prod", "customer_segments"]),
)
SECTIONS = ("checks", "card_scan", "quarantine", "masking", "fraud", "models", "summary")

COLUMNS = {
    "run_id": ("string", "the Dagster run reported on"),
    "reported_at": ("timestamp", "when the figure was measured or the check evaluated (UTC)"),
    "section": ("string", " | ".join(SECTIONS)),
    "table_name": (
        "string",
        "the table the row is about, as users query it (prod.fct_orders), or 'all' for the run's totals",
    ),
    "item": (
        "string",
        "checks: the kind of check (dbt_test, pandera, card_scan); card_scan: card_numbers_found; quarantine: "
        "the rule; masking: masked_card_numbers or masked_card_numbers_in_text; fraud: high_risk_transactions; "
        "models: <family>_<stage> (churn_promotion, fraud_scoring, forecasting_training ...); summary: "
        "checks_passed, checks_failed, card_numbers_found, quarantined_rows, masked_card_numbers, "
        "high_risk_transactions",
    ),
    "status": (
        "string",
        "checks and card_scan: passed | failed; quarantine: quarantined; masking: masked; fraud: scored | "
        "not_scored_yet; models: promoted | champion_kept | no_champion | skipped | scored | not_scored; "
        "summary: total",
    ),
    "value": (
        "int64",
        "checks: number of checks; card_scan: card numbers found; quarantine: rows; masking: rows masked; "
        "fraud: high-risk transactions (NULL until the fraud model has scored); models: the champion version "
        "after the stage (NULL without one); summary: the total",
    ),
    "detail": (
        "string",
        "checks: how many are blocking, or the failed checks with their failing counts; card_scan: rows "
        "scanned; fraud: the run that scored; models: the winning candidate and the scores compared, or the "
        "reason for a skip; summary: what the total counts",
    ),
}
REPORT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("reported_at", pa.timestamp("us")),
        ("section", pa.string()),
        ("table_name", pa.string()),
        ("item", pa.string()),
        ("status", pa.string()),
        ("value", pa.int64()),
        ("detail", pa.string()),
    ]
)
assert REPORT_SCHEMA.names == list(COLUMNS)
REPORT_CHECKS = (PANDERA_CHECK, CARD_CHECK)
CHECK_SPECS = [
    dg.AssetCheckSpec(
        PANDERA_CHECK,
        asset=REPORT_KEY,
        blocking=False,
        description="The published report matches its pandera model (orchestration/defs/checks/schemas_prod.py).",
    ),
    dg.AssetCheckSpec(
        CARD_CHECK,
        asset=REPORT_KEY,
        blocking=False,
        description="No Luhn-valid card number in any string column of the published report.",
    ),
]


def _quarantine_sql() -> str:
    return "\n    UNION ALL\n".join(
        f"    SELECT 'quarantine.{t.name}' AS table_name, rule AS item, count(*) AS value "
        f"FROM quarantine.{t.name} GROUP BY rule"
        for t in TABLES
    )


# The sections, in DuckDB SQL. $run_id, $reported_at, $scored_by (the run that published
# prod.high_risk_transactions, NULL when nobody has yet).
SECTIONS_SQL = f"""
WITH ledger AS (
    SELECT * FROM ledger.check_results
),
-- checks: per run, table and kind of check, how many passed and how many failed (and which)
checks AS (
    SELECT
        run_id,
        max(evaluated_at) AS reported_at,
        'checks' AS section,
        table_name,
        check_kind AS item,
        CASE WHEN passed THEN 'passed' ELSE 'failed' END AS status,
        count(*) AS value,
        CASE
            WHEN passed THEN CAST(sum(CASE WHEN blocking THEN 1 ELSE 0 END) AS VARCHAR) || ' of them blocking'
            ELSE string_agg(
                check_name || ' (' || coalesce(CAST(failures AS VARCHAR), '?') || ' failing)', '; ' ORDER BY check_name
            )
        END AS detail
    FROM ledger
    GROUP BY run_id, table_name, check_kind, passed
),
card_scans AS (
    SELECT
        run_id,
        evaluated_at AS reported_at,
        'card_scan' AS section,
        table_name,
        'card_numbers_found' AS item,
        CASE WHEN passed THEN 'passed' ELSE 'failed' END AS status,
        coalesce(failures, 0) AS value,
        'rows scanned: ' || coalesce(CAST(rows_checked AS VARCHAR), 'unknown') AS detail
    FROM ledger
    WHERE check_kind = 'card_scan'
),
quarantine AS (
{_quarantine_sql()}
),
quarantined AS (
    SELECT
        $run_id AS run_id,
        $reported_at AS reported_at,
        'quarantine' AS section,
        table_name,
        item,
        'quarantined' AS status,
        value,
        'rows moved out of curated by this rule' AS detail
    FROM quarantine
),
masking AS (
    SELECT
        'curated.payments' AS table_name,
        'masked_card_numbers' AS item,
        count(*) AS value,
        'payments whose card number extraction replaced with BIN, last four digits and keyed token' AS detail
    FROM curated.payments
    WHERE card_token IS NOT NULL
    UNION ALL
    SELECT
        'curated.orders',
        'masked_card_numbers_in_text',
        count(*),
        'orders whose notes held a card number, masked at extraction'
    FROM curated.orders
    WHERE notes LIKE '%[card ****%'
    UNION ALL
    SELECT
        'curated.support_tickets',
        'masked_card_numbers_in_text',
        count(*),
        'tickets whose body held a card number, masked at extraction'
    FROM curated.support_tickets
    WHERE body LIKE '%[card ****%'
),
masked AS (
    SELECT
        $run_id AS run_id,
        $reported_at AS reported_at,
        'masking' AS section,
        table_name,
        item,
        'masked' AS status,
        value,
        detail
    FROM masking
),
fraud AS (
    SELECT
        $run_id AS run_id,
        $reported_at AS reported_at,
        'fraud' AS section,
        '{HIGH_RISK_TRANSACTIONS}' AS table_name,
        'high_risk_transactions' AS item,
        CASE WHEN $scored_by IS NULL THEN 'not_scored_yet' ELSE 'scored' END AS status,
        CASE WHEN $scored_by IS NULL THEN NULL ELSE (SELECT count(*) FROM high_risk) END AS value,
        CASE
            WHEN $scored_by IS NULL THEN 'the fraud model has not published {HIGH_RISK_TRANSACTIONS} yet'
            WHEN $scored_by = $run_id THEN 'as scored by run ' || $scored_by || ', this run'
            ELSE 'as scored by run ' || $scored_by || ', an earlier run: this run did not score'
        END AS detail
),
-- models: per run, family and stage (training, promotion, scoring), the outcome
models AS (
    SELECT
        run_id,
        recorded_at AS reported_at,
        'models' AS section,
        table_name,
        family || '_' || stage AS item,
        status,
        champion_version AS value,
        detail
    FROM ledger.model_outcomes
),
current_run_checks AS (
    SELECT * FROM ledger WHERE run_id = $run_id
),
summary AS (
    SELECT
        $run_id AS run_id,
        $reported_at AS reported_at,
        'summary' AS section,
        'all' AS table_name,
        figures.item,
        'total' AS status,
        figures.value,
        figures.detail
    FROM (
        SELECT 'checks_passed' AS item, count(*) AS value, 'checks of this run that passed' AS detail
        FROM current_run_checks WHERE passed
        UNION ALL
        SELECT
            'checks_failed',
            count(*),
            coalesce(string_agg(table_name || ': ' || check_name, '; ' ORDER BY table_name, check_name), 'none')
        FROM current_run_checks WHERE NOT passed
        UNION ALL
        SELECT 'card_numbers_found', coalesce(sum(failures), 0), CAST(count(*) AS VARCHAR) || ' tables scanned'
        FROM current_run_checks WHERE check_kind = 'card_scan'
        UNION ALL
        SELECT 'quarantined_rows', coalesce(sum(value), 0), 'rows in quarantine, all tables and rules'
        FROM quarantine
        UNION ALL
        SELECT
            'masked_card_numbers',
            coalesce(sum(value), 0),
            'card numbers masked or tokenized at extraction, as held in curated'
        FROM masking
        UNION ALL
        SELECT 'high_risk_transactions', max(value), max(detail)
        FROM fraud
    ) AS figures
),
sections AS (
    SELECT * FROM checks
    UNION ALL SELECT * FROM card_scans
    UNION ALL SELECT * FROM quarantined
    UNION ALL SELECT * FROM masked
    UNION ALL SELECT * FROM fraud
    UNION ALL SELECT * FROM models
    UNION ALL SELECT * FROM summary
)
SELECT
    CAST(run_id AS VARCHAR) AS run_id,
    CAST(reported_at AS TIMESTAMP) AS reported_at,
    CAST(section AS VARCHAR) AS section,
    CAST(table_name AS VARCHAR) AS table_name,
    CAST(item AS VARCHAR) AS item,
    CAST(status AS VARCHAR) AS status,
    CAST(value AS BIGINT) AS value,
    CAST(detail AS VARCHAR) AS detail
FROM sections
"""

# The report's history, less what this build recomputes (per run and section), plus the new rows.
MERGE_SQL = """
SELECT * FROM earlier
WHERE NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.run_id = earlier.run_id AND fresh.section = earlier.section)
UNION ALL
SELECT * FROM fresh
ORDER BY reported_at, run_id, section, table_name, item, status
"""


class ReportInputMissing(RuntimeError):
    pass


def open_report_session(settings: Settings) -> tuple[duckdb.DuckDBPyConnection, str | None]:
    """An in-memory DuckDB with views over the current snapshots of what the report reads: the
    ledgers, the checked tables, ``high_risk`` and ``earlier`` (the report as published). Returns it
    and the run that published prod.high_risk_transactions (None: not published yet)."""
    catalog = load_catalog(settings)
    tables = {
        CHECK_RESULTS_TABLE: ensure_ledger(settings),
        MODEL_OUTCOMES_TABLE: ledger_table(settings, MODEL_OUTCOMES_TABLE, MODEL_OUTCOMES_SCHEMA),
    }
    missing = []
    for layer, name in CHECKED_READS:
        ice = table_or_none(catalog, f"{layer}.{name}")
        if ice is None or ice.current_snapshot() is None:
            missing.append(f"{layer}.{name}")
        else:
            tables[f"{layer}.{name}"] = ice
    if missing:
        raise ReportInputMissing(
            f"{', '.join(missing)} not published yet: materialize the dbt assets before {REPORT_IDENTIFIER}"
        )
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    create_snapshot_views(con, tables)
    scores = table_or_none(catalog, HIGH_RISK_TRANSACTIONS)
    scored_by = None
    if scores is not None and scores.current_snapshot() is not None:
        scored_by = snapshot_property(scores, PUBLISHED_BY_PROPERTY) or "unknown"
        create_snapshot_views(con, {"main.high_risk": scores})
    else:
        con.execute("CREATE VIEW main.high_risk AS SELECT NULL AS payment_id WHERE false")
    earlier = table_or_none(catalog, REPORT_IDENTIFIER)
    if earlier is not None and earlier.current_snapshot() is not None:
        create_snapshot_views(con, {"main.earlier": earlier})
    else:
        con.register("earlier", REPORT_SCHEMA.empty_table())
    return con, scored_by


def build_report(settings: Settings, run_id: str) -> tuple[pa.Table, str | None]:
    """The report with this run's sections: every row, history included; and who scored fraud."""
    con, scored_by = open_report_session(settings)
    try:
        reported_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        params = {"run_id": run_id, "reported_at": reported_at, "scored_by": scored_by}
        con.execute(f"CREATE TEMP TABLE fresh AS {SECTIONS_SQL}", params)
        report = con.execute(MERGE_SQL).fetch_arrow_table()
    finally:
        con.close()
    return report.cast(REPORT_SCHEMA), scored_by


def check_report(settings: Settings, snapshot_table) -> list[dg.AssetCheckResult]:
    """The report's own checks over the snapshot just published."""
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    try:
        create_snapshot_views(con, {REPORT_IDENTIFIER: snapshot_table})
        results = list(evaluate_table(con, COMPLIANCE_REPORT, set(REPORT_CHECKS)))
    finally:
        con.close()
    # not blocking: a failure marks the check, never stops the run
    return [
        dg.AssetCheckResult(
            asset_key=r.asset_key,
            check_name=r.check_name,
            passed=r.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=r.metadata,
        )
        for r in results
    ]


@dg.op(
    ins={f"{layer}__{name}": dg.In(dg.Nothing) for layer, name in CHECKED_READS},
    out=dg.Out(dg.Nothing),
    description="Waits for the tables the report reads and their blocking quality checks.",
)
def after_quality_checks() -> None:
    pass


_CHECK_OUTPUTS = {check: f"{REPORT_KEY.to_python_identifier()}_{check}" for check in REPORT_CHECKS}


@dg.op(
    ins={"after": dg.In(dg.Nothing)},
    out={
        "result": dg.Out(dg.Nothing),
        **{output: dg.Out(dg.Nothing, is_required=False) for output in _CHECK_OUTPUTS.values()},
    },
    pool=table_pool(REPORT_IDENTIFIER),  # one run at a time rewrites the report
    description="Builds prod.compliance_report from the ledgers and the published tables, publishes it, checks it.",
)
def build_compliance_report(context: dg.OpExecutionContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    run_id = context.run.run_id
    started = time.perf_counter()
    report, scored_by = build_report(settings, run_id)
    published = write_table(load_catalog(settings), REPORT_IDENTIFIER, report, run_id)
    seconds = round(time.perf_counter() - started, 3)
    this_run = report.filter(pc.equal(report["run_id"], run_id))
    context.log.info(
        f"{REPORT_IDENTIFIER}: {this_run.num_rows} rows for run {run_id}, {report.num_rows} in all, in {seconds:.2f}s"
    )
    yield dg.Output(
        None,
        "result",
        metadata={
            "dagster/row_count": report.num_rows,
            "rows_this_run": this_run.num_rows,
            "fraud_scored_by_run": scored_by or "none yet",
            "iceberg_table": REPORT_IDENTIFIER,
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
            "seconds": seconds,
        },
    )
    results = check_report(settings, published)
    add_check_results(settings, run_id, [check_record(run_id, r, blocking=False) for r in results])
    yield from results


def _graph_inputs() -> dict[str, dg.AssetIn]:
    ins = {f"{layer}__{name}": dg.AssetIn(key=[layer, name], dagster_type=dg.Nothing) for layer, name in CHECKED_READS}
    ins.update({key.to_python_identifier(): dg.AssetIn(key=key, dagster_type=dg.Nothing) for key in MODEL_STEPS})
    return ins


@dg.graph_asset(
    key=REPORT_KEY,
    ins=_graph_inputs(),
    check_specs=CHECK_SPECS,
    group_name="prod",
    kinds={"duckdb", "iceberg"},
    owners=[DATA_PLATFORM_OWNER],
    description="What each pipeline run checked and found, for auditors: one row per run, section, table, "
    "item and status (sections: " + ", ".join(SECTIONS) + "). Built once per run after the quality checks "
    "and the model steps, from the ledgers (ledger.check_results, ledger.model_outcomes) and the published "
    "tables; a run stopped by a failed blocking check is reported (its checks) by the next build.",
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, kind, description=text) for name, (kind, text) in COLUMNS.items()]
        ),
        "dagster/table_name": REPORT_IDENTIFIER,
    },
)
def compliance_report(**inputs):
    checked = after_quality_checks(**{f"{layer}__{name}": inputs[f"{layer}__{name}"] for layer, name in CHECKED_READS})
    # one fan-in input: skipped only if every step it waits for produced nothing (after_quality_checks always does)
    outputs = build_compliance_report(after=[checked, *(inputs[key.to_python_identifier()] for key in MODEL_STEPS)])
    result, *checks = outputs
    return {"result": result, **dict(zip(_CHECK_OUTPUTS.values(), checks))}
