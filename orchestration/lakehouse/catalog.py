"""The Iceberg catalog: where raw is written and prod/curated are published for readers.

pyiceberg is the only writer. A SQLite catalog serves one machine; point ``SHOPLAKE_CATALOG_URI`` at
PostgreSQL when runs or readers share it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.table import Table as IcebergTable

from orchestration.settings import Settings

NAMESPACES = ("raw", "curated", "quarantine", "prod")
CATALOG_NAME = "shoplake"


def load_catalog(settings: Settings) -> Catalog:
    if settings.warehouse.startswith("file://"):
        Path(settings.warehouse[len("file://"):]).mkdir(parents=True, exist_ok=True)
    if settings.catalog_uri.startswith("sqlite:///"):
        Path(settings.catalog_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(CATALOG_NAME, uri=settings.catalog_uri, warehouse=settings.warehouse)
    for ns in NAMESPACES:
        try:
            catalog.create_namespace(ns)
        except NamespaceAlreadyExistsError:
            pass
    return catalog


def iceberg_compatible(schema: pa.Schema) -> pa.Schema:
    """Iceberg stores timestamps in microseconds and has no ms type: widen, losslessly."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_timestamp(t) and t.unit != "us":
            t = pa.timestamp("us", tz=t.tz)
        fields.append(pa.field(f.name, t, nullable=True))
    return pa.schema(fields)


# zstd at its fastest level: most of zstd's size benefit at a fraction of the default's CPU.
TABLE_PROPERTIES = {"write.parquet.compression-codec": "zstd", "write.parquet.compression-level": "1"}


def load_or_create(catalog: Catalog, identifier: str, schema: pa.Schema) -> IcebergTable:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return catalog.create_table_if_not_exists(
            identifier, schema=iceberg_compatible(schema), properties=TABLE_PROPERTIES
        )


def table_or_none(catalog: Catalog, identifier: str) -> IcebergTable | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def commit_with_retry(table: IcebergTable, commit: Callable[[IcebergTable], None], attempts: int = 5) -> IcebergTable:
    """Run ``commit`` and retry on a concurrent-commit conflict after refreshing the metadata."""
    for attempt in range(1, attempts + 1):
        try:
            commit(table)
            return table
        except CommitFailedException:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
            table = table.refresh()
    return table


def snapshot_property(table: IcebergTable, key: str) -> str | None:
    snap = table.current_snapshot()
    if snap is None or snap.summary is None:
        return None
    # summary.items() is broken in pyiceberg 0.12; item access works.
    try:
        return snap.summary[key]
    except KeyError:
        return None


def list_tables(catalog: Catalog, namespace: str) -> list[str]:
    return sorted(".".join(ident) for ident in catalog.list_tables(namespace))
