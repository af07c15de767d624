"""Read-only SQL over the published Iceberg tables: what analysts, notebooks and tests query.

Each query session pins every table to the snapshot current when it opened, so an answer never
mixes two runs, and nothing here ever opens the pipeline's DuckDB file.
"""

from __future__ import annotations

import time

import duckdb
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table as IcebergTable

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import NAMESPACES, load_catalog
from orchestration.settings import Settings

DEFAULT_NAMESPACES = ("prod", "curated", "quarantine")


class UnknownTable(LookupError):
    pass


def connect(
    settings: Settings, namespaces: tuple[str, ...] = DEFAULT_NAMESPACES, tables: dict[str, IcebergTable] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per published table: ``prod.fct_orders`` and so on.

    ``tables``, when given, receives each view's Iceberg table at the snapshot the view reads."""
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    for ns in namespaces:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ns}")
        for ident in catalog.list_tables(ns):
            ice = _published(catalog, ident)
            if ice is not None:
                con.execute(f"CREATE VIEW {ns}.{ident[-1]} AS SELECT * FROM iceberg_scan('{ice.metadata_location}')")
                if tables is not None:
                    tables[f"{ns}.{ident[-1]}"] = ice
    return con


def _published(catalog, ident, attempts: int = 50) -> IcebergTable | None:
    """The table at its current snapshot. A table whose columns changed is replaced
    (dropped, created, written) by the publishing run: for that moment it is missing or empty, so
    wait for it rather than fail (a table that was never written stays absent)."""
    for attempt in range(attempts):
        try:
            ice = catalog.load_table(ident)
            if ice.current_snapshot() is not None:
                return ice
            if attempt == 0 and not _being_replaced(ice):
                return None
        except NoSuchTableError:
            pass
        time.sleep(0.1)
    return None


def _being_replaced(ice) -> bool:
    # Created within the last minute and still without data: the publisher is about to write it.
    return time.time() * 1000 - ice.metadata.last_updated_ms < 60_000


def published_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        f"WHERE table_schema IN ({', '.join(repr(n) for n in NAMESPACES)}) ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def run_query(con: duckdb.DuckDBPyConnection, sql: str):
    """Execute ``sql``; an unknown table or bad SQL becomes an error that lists what exists."""
    try:
        return con.execute(sql)
    except duckdb.CatalogException as exc:
        tables = published_tables(con)
        listing = ", ".join(tables) if tables else "none yet: materialize the pipeline first (make demo)"
        raise UnknownTable(f"{str(exc).splitlines()[0]}\nTables you can query: {listing}") from exc
