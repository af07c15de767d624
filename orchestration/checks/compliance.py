"""Close a run's quality evaluation: record its check results and rebuild ``prod.compliance_report``.

The report is a dbt model like any other, built by every dbt build. But the checks on the published
curated and prod tables run after dbt, and a failing blocking check stops everything downstream of
it, so no later step could report them. The step that evaluates a run's last checks therefore
finishes the job itself: it writes the run's evaluations to the ledger (results.py), rebuilds the
report with dbt, publishes it to Iceberg and returns its materialization, all before Dagster fails
the step for a failed blocking check. A failed run's report is complete, too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.checks.results import CheckRecord, run_check_records, write_check_results
from orchestration.resources import shoplake_dbt_project
from orchestration.settings import Settings
from orchestration.transform.publish import publish_tables
from orchestration.transform.raw_views import refresh_audit_views

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

    refresh_audit_views(settings)
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
