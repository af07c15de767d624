"""How the ML assets read their data: the published Iceberg tables, pinned, with their lineage.

Every table a model reads is opened once, from one loaded Iceberg metadata file, and the snapshot id
recorded is the one of that same file. So the snapshot ids an MLflow run records are exactly the
data it trained on, even while the pipeline publishes new snapshots next to it.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import load_catalog, table_or_none
from orchestration.settings import Settings

SNAPSHOT_TAG_PREFIX = "iceberg_snapshot."


def open_tables(settings: Settings, identifiers: list[str]) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
    """An in-memory DuckDB with one view per table (``prod.fct_orders`` ...), and the snapshot id of each."""
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    lineage: dict[str, str] = {}
    for ident in identifiers:
        namespace, name = ident.split(".")
        table = table_or_none(catalog, ident)
        snapshot = table.current_snapshot() if table is not None else None
        if snapshot is None:
            raise dg.Failure(
                f"`{ident}` is not published yet: materialize the prod tables first "
                "(`dagster job execute -m orchestration.definitions -j shoplake_all`)"
            )
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {namespace}")
        con.execute(f"CREATE VIEW {namespace}.{name} AS SELECT * FROM iceberg_scan('{table.metadata_location}')")
        lineage[ident] = str(snapshot.snapshot_id)
    return con, lineage


def lineage_tags(run_id: str, lineage: dict[str, str]) -> dict[str, str]:
    """MLflow tags that trace a run to its Dagster run and the Iceberg snapshots it read."""
    return {"dagster_run_id": run_id, **{f"{SNAPSHOT_TAG_PREFIX}{k}": v for k, v in lineage.items()}}
