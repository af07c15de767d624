"""Publish dbt's tables from the writer's DuckDB file to Iceberg, one atomic snapshot per table.

Readers (``shoplake sql``, notebooks, any Iceberg engine) never open the transform database: they
read the published snapshot, which is always complete, and never block the next dbt build.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import commit_with_retry, iceberg_compatible, load_catalog, table_or_none
from orchestration.settings import Settings

PUBLISHED_BY_PROPERTY = "shoplake.dagster_run_id"


@dataclass(frozen=True)
class Published:
    identifier: str
    rows: int
    snapshot_id: int
    seconds: float


def publish_tables(settings: Settings, relations: list[tuple[str, str]], run_id: str) -> dict[tuple[str, str], Published]:
    """Copy each DuckDB relation (schema, name) to the Iceberg table of the same name."""
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path), read_only=True)
    out = {}
    try:
        for schema, name in relations:
            started = time.perf_counter()
            data = con.execute(f'SELECT * FROM "{schema}"."{name}"').fetch_arrow_table()
            ice = write_table(catalog, f"{schema}.{name}", data, run_id)
            out[(schema, name)] = Published(
                identifier=f"{schema}.{name}",
                rows=data.num_rows,
                snapshot_id=ice.current_snapshot().snapshot_id,
                seconds=round(time.perf_counter() - started, 3),
            )
    finally:
        con.close()
    return out


def write_table(catalog: Catalog, identifier: str, data: pa.Table, run_id: str):
    """Replace the Iceberg table `identifier` with `data` in one snapshot (created if missing)."""
    schema = iceberg_compatible(data.schema)
    data = data.cast(schema)
    ice = table_or_none(catalog, identifier)
    if ice is None:
        ice = catalog.create_table(identifier, schema=schema)
    elif ice.schema().as_arrow().names != schema.names or _types_changed(ice, schema):
        # The model's columns changed: replace the table. Readers holding the old metadata file keep
        # reading the old snapshot; new readers see the new table.
        catalog.drop_table(identifier)
        ice = catalog.create_table(identifier, schema=schema)
    return commit_with_retry(ice, lambda t: t.overwrite(data, snapshot_properties={PUBLISHED_BY_PROPERTY: run_id}))


def _types_changed(ice, schema: pa.Schema) -> bool:
    # Iceberg hands its schema back with Arrow's large string/binary types: the same Iceberg type.
    current = ice.schema().as_arrow()
    return any(not _iceberg_type(current.field(f.name).type).equals(_iceberg_type(f.type)) for f in schema)


def _iceberg_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    return t
