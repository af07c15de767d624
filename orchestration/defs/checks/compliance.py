"""Close a run's quality evaluation: record its check results and rebuild ``prod.compliance_report``.

The report is a dbt model like any other, built by every dbt build. But the checks on the published
curated and prod tables run after dbt, and a failing blocking check stops everything downstream of
it, so no later step could report them. The step that evaluates a run's last checks therefore
finishes the job itself: it writes the run's evaluations to the ledger (results.py), rebuilds the
report with dbt, publishes it to Iceberg and returns its materialization, all before Dagster fails
the step for a failed blocking check. A failed run's report is complete, too.

The model steps come after that step; they add their outcomes themselves (``record_model_outcome``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import tempfile
import warnings
from pathlib import Path

import dagster as dg
import pyarrow as pa
from dagster_dbt import DbtCliResource
from pyiceberg.expressions import And, EqualTo

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import commit_with_retry, load_catalog, load_or_create, table_or_none
from orchestration.lakehouse.home_scan import scan_and_record
from orchestration.lakehouse.ledger import CheckRecord, run_check_records, write_check_results
from orchestration.lakehouse.publish import publish_tables
from orchestration.lakehouse.views import refresh_audit_views
from orchestration.resources import shoplake_dbt_project
from orchestration.settings import Settings

COMPLIANCE_REPORT = ("prod", "compliance_report")
RUN_ID_VARIABLE = "SHOPLAKE_RUN_ID"  # read by the model: env_var('SHOPLAKE_RUN_ID')


class ComplianceReportFailed(RuntimeError):
    pass


def dbt_environment(settings: Settings, run_id: str) -> None:
    """dbt runs in its own process and finds its database and the run it reports through the environment."""
    os.environ["SHOPLAKE_DUCKDB_PATH"] = str(settings.duckdb_path)
    os.environ[RUN_ID_VARIABLE] = run_id


def record_and_report(
    context: dg.OpExecutionContext,
    settings: Settings,
    dbt: DbtCliResource,
    own_records: list[CheckRecord] = (),
) -> dg.AssetMaterialization:
    """Write the run's check results (logged ones + ``own_records``) and rebuild the report."""
    run_id = context.run.run_id
    records = {(r.table_name, r.check_name): r for r in run_check_records(context.instance, run_id)}
    records.update({(r.table_name, r.check_name): r for r in own_records})
    written = write_check_results(settings, run_id, list(records.values()))
    context.log.info(f"recorded {written} check results of run {run_id} in raw.check_results")
    scan = scan_and_record(settings, run_id)  # every file under the home, for the report's card-number section
    (context.log.warning if scan.findings else context.log.info)(
        f"home scan for card numbers: {scan.files} files read, {scan.unchanged} unchanged since a clean scan, "
        f"{len(scan.findings)} found" + "".join(f"\n  {f.line()}" for f in scan.findings[:20])
    )

    refresh_audit_views(settings)
    refresh_model_outcomes_view(settings)
    dbt_environment(settings, run_id)
    with tempfile.TemporaryDirectory(prefix="shoplake-compliance-") as target:  # no artifacts pile up per run
        invocation = dbt.cli(
            ["build", "--select", COMPLIANCE_REPORT[1]],
            manifest=shoplake_dbt_project.manifest_path,
            raise_on_error=False,
            target_path=Path(target),
        ).wait()
        if not invocation.is_successful():
            raise ComplianceReportFailed(f"dbt could not rebuild prod.compliance_report: {invocation.get_error()}")
    published = publish_tables(settings, [COMPLIANCE_REPORT], run_id)[COMPLIANCE_REPORT]
    return dg.AssetMaterialization(
        asset_key=list(COMPLIANCE_REPORT),
        description="Rebuilt with every check result of the run",
        metadata={
            "dagster/row_count": published.rows,
            "iceberg_table": published.identifier,
            "iceberg_snapshot_id": str(published.snapshot_id),
            "check_results_recorded": written,
        },
    )


# ---- model outcomes: which candidate won, by how much, or why a family skipped
#
# The model steps run after the quality-check step that rebuilds the report, so they cannot wait for
# a later rebuild: each one records its outcome in the ledger ``raw.model_outcomes`` and writes the
# run's ``models`` section into prod.compliance_report itself (the same rows the dbt model derives
# from the ledger, so a later dbt build keeps them as they are), then publishes the report.

MODEL_OUTCOMES_TABLE = "raw.model_outcomes"
MODEL_OUTCOME_STATUSES = ("promoted", "champion_kept", "no_champion", "skipped", "scored", "not_scored")
MODEL_OUTCOMES_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us")),
        ("family", pa.string()),  # churn | fraud | forecasting
        ("stage", pa.string()),  # training | promotion | scoring
        ("table_name", pa.string()),  # the prod table the family publishes
        ("status", pa.string()),  # one of MODEL_OUTCOME_STATUSES
        ("champion_version", pa.int64()),
        ("candidate", pa.string()),  # the winning candidate, when one won
        ("detail", pa.string()),  # why: the scores compared, or the reason for a skip
    ]
)
# The report's `models` section from the ledger view; compliance_report.sql selects the same columns.
MODELS_SECTION_SQL = """
    SELECT run_id, recorded_at AS reported_at, 'models' AS section, table_name, family || '_' || stage AS item,
           status, champion_version AS value, detail
    FROM raw.model_outcomes WHERE run_id = $run_id
"""
_REPORT_LOCK = ".compliance-report.lock"


def record_model_outcome(
    settings: Settings,
    run_id: str,
    family: str,
    stage: str,
    table_name: str,
    status: str,
    detail: str,
    champion_version: str | int | None = None,
    candidate: str | None = None,
) -> None:
    """Record one family's outcome at one stage of the run (idempotent per run, family and stage) and
    write it into prod.compliance_report."""
    if status not in MODEL_OUTCOME_STATUSES:
        raise ValueError(f"model outcome status {status!r} is not one of {MODEL_OUTCOME_STATUSES}")
    row = {
        "run_id": run_id,
        "recorded_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "family": family,
        "stage": stage,
        "table_name": table_name,
        "status": status,
        "champion_version": None if champion_version is None else int(champion_version),
        "candidate": candidate,
        "detail": detail,
    }
    data = pa.Table.from_pylist([row], schema=MODEL_OUTCOMES_SCHEMA)
    ledger = load_or_create(load_catalog(settings), MODEL_OUTCOMES_TABLE, MODEL_OUTCOMES_SCHEMA)

    def replace(table):
        with warnings.catch_warnings():  # the first outcome has nothing to replace
            warnings.filterwarnings("ignore", message="Delete operation did not match any records")
            table.overwrite(
                data,
                overwrite_filter=And(EqualTo("run_id", run_id), EqualTo("family", family), EqualTo("stage", stage)),
            )

    commit_with_retry(ledger, replace)
    report_model_outcomes(settings, run_id)


def refresh_model_outcomes_view(settings: Settings) -> None:
    """Point ``raw.model_outcomes`` in the transform database at the ledger's current snapshot (the
    report's dbt model reads it when it exists)."""
    ledger = table_or_none(load_catalog(settings), MODEL_OUTCOMES_TABLE)
    if ledger is None:
        return
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
    try:
        _outcomes_view(con, ledger)
    finally:
        con.close()


def _outcomes_view(con, ledger) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"CREATE OR REPLACE VIEW raw.model_outcomes AS SELECT * FROM iceberg_scan('{ledger.metadata_location}')"
    )


def report_model_outcomes(settings: Settings, run_id: str) -> int:
    """Rewrite the run's ``models`` section of prod.compliance_report from the ledger and publish the
    report; returns its rows. Nothing to do before dbt has built the report once."""
    ledger = table_or_none(load_catalog(settings), MODEL_OUTCOMES_TABLE)
    if ledger is None or not settings.duckdb_path.exists():
        return 0
    settings.home.mkdir(parents=True, exist_ok=True)
    # Two model steps of a run may finish together: one writer of the DuckDB file at a time.
    with open(settings.home / _REPORT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
        try:
            _outcomes_view(con, ledger)
            exists = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'prod' AND table_name = 'compliance_report'"
            ).fetchone()[0]
            if not exists:
                return 0
            con.execute(
                "DELETE FROM prod.compliance_report WHERE run_id = $run_id AND section = 'models'", {"run_id": run_id}
            )
            con.execute(f"INSERT INTO prod.compliance_report BY NAME {MODELS_SECTION_SQL}", {"run_id": run_id})
            rows = con.execute(
                "SELECT count(*) FROM prod.compliance_report WHERE run_id = $run_id AND section = 'models'",
                {"run_id": run_id},
            ).fetchone()[0]
        finally:
            con.close()
        publish_tables(settings, [COMPLIANCE_REPORT], run_id)
    return int(rows)
