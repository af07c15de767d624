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
from orchestration.lakehouse.views import create_snapshot_views
from orchestration.settings import Settings

SNAPSHOT_TAG_PREFIX = "iceberg_snapshot."


def open_tables(settings: Settings, identifiers: list[str]) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
    """An in-memory DuckDB with one view per table (``prod.fct_orders`` ...), and the snapshot id of each."""
    catalog = load_catalog(settings)
    tables = {}
    for ident in identifiers:
        table = table_or_none(catalog, ident)
        if table is None or table.current_snapshot() is None:
            raise dg.Failure(
                f"`{ident}` is not published yet: materialize the prod tables first "
                "(`dagster job execute -m orchestration.definitions -j shoplake_all`)"
            )
        tables[ident] = table
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    views = create_snapshot_views(con, tables)
    return con, {ident: str(view.snapshot_id) for ident, view in views.items()}


def lineage_tags(run_id: str, lineage: dict[str, str]) -> dict[str, str]:
    """MLflow tags that trace a run to its Dagster run and the Iceberg snapshots it read."""
    return {"dagster_run_id": run_id, **{f"{SNAPSHOT_TAG_PREFIX}{k}": v for k, v in lineage.items()}}
