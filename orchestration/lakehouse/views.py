"""Expose the current Iceberg raw snapshots to dbt as DuckDB views ``raw.<table>``.

iceberg_scan over a snapshot's metadata file is zero-copy, and pinning the view to the metadata
location read *before* dbt starts makes one dbt build see one consistent snapshot per table, even if
an extraction commits while it runs.

Besides the source tables, ``prod.compliance_report`` reads two tables the orchestration writes:
``raw.check_results`` (the check ledger, orchestration/lakehouse/ledger.py) and, once the fraud model
has scored, ``raw.high_risk_transactions`` (a view of the published ``prod.high_risk_transactions``
with the run that scored it).
"""

from __future__ import annotations

from orchestration.contract.schema import INVALID_VALUES, TABLES
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import load_catalog, snapshot_property, table_or_none
from orchestration.lakehouse.publish import PUBLISHED_BY_PROPERTY
from orchestration.settings import Settings


class RawLayerMissing(RuntimeError):
    pass


def refresh_raw_views(settings: Settings) -> dict[str, int | None]:
    """(Re)create ``raw.<table>`` views in the transform database; returns each table's snapshot id.

    A raw table extracted while its source table was still empty has no snapshot yet (None): its
    view is empty but typed, since iceberg_scan reads the columns from the table's schema, so
    curated and prod build as empty tables until the first rows arrive.
    """
    catalog = load_catalog(settings)
    snapshots, missing = {}, []
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        for t in TABLES:
            ice = table_or_none(catalog, f"raw.{t.name}")
            if ice is None:
                missing.append(t.name)
                continue
            # A table last written before extraction kept the source text of unreadable values has no
            # _invalid_values column yet (it is added at its next commit): the quarantine rules read it.
            kept = "" if INVALID_VALUES in ice.schema().column_names else f", CAST(NULL AS VARCHAR) AS {INVALID_VALUES}"
            con.execute(
                f"CREATE OR REPLACE VIEW raw.{t.name} AS SELECT *{kept} FROM iceberg_scan('{ice.metadata_location}')"
            )
            snapshot = ice.current_snapshot()
            snapshots[t.name] = snapshot.snapshot_id if snapshot else None
        _create_audit_views(con, catalog, settings)
    finally:
        con.close()
    if missing:
        raise RawLayerMissing(
            f"raw tables {', '.join(missing)} have never been extracted: materialize the raw assets first "
            "(`dagster asset materialize -m orchestration.definitions --select 'raw/*'`)"
        )
    return snapshots


HIGH_RISK_TRANSACTIONS = "prod.high_risk_transactions"


def refresh_audit_views(settings: Settings) -> None:
    """Re-point ``raw.check_results`` (and ``raw.high_risk_transactions``) at their current snapshots."""
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        _create_audit_views(con, catalog, settings)
    finally:
        con.close()


def _create_audit_views(con, catalog, settings: Settings) -> None:
    from orchestration.lakehouse.ledger import ensure_ledger  # the ledger's owner; imported late to keep layers apart

    ledger = ensure_ledger(settings)
    con.execute(f"CREATE OR REPLACE VIEW raw.check_results AS SELECT * FROM iceberg_scan('{ledger.metadata_location}')")
    # each run's scan of every file under the home for card numbers (orchestration/lakehouse/home_scan.py)
    home_scans = table_or_none(catalog, "raw.home_pan_scans")
    if home_scans is not None and home_scans.current_snapshot() is not None:
        con.execute(
            f"CREATE OR REPLACE VIEW raw.home_pan_scans AS SELECT * FROM iceberg_scan('{home_scans.metadata_location}')"
        )
    scores = table_or_none(catalog, HIGH_RISK_TRANSACTIONS)
    if scores is None or scores.current_snapshot() is None:
        con.execute("DROP VIEW IF EXISTS raw.high_risk_transactions")
        return
    scored_by = (snapshot_property(scores, PUBLISHED_BY_PROPERTY) or "unknown").replace("'", "''")
    con.execute(
        "CREATE OR REPLACE VIEW raw.high_risk_transactions AS "
        f"SELECT *, '{scored_by}' AS _scored_by_run_id, {scores.current_snapshot().snapshot_id} AS _snapshot_id "
        f"FROM iceberg_scan('{scores.metadata_location}')"
    )
