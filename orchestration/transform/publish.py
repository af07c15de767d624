"""Publish dbt's tables from the writer's DuckDB file to Iceberg, one atomic snapshot per table.

Readers (``shoplake sql``, notebooks, any Iceberg engine) never open the transform database: they
read the published snapshot, which is always complete, and never block the next dbt build.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import commit_with_retry, iceberg_compatible, load_catalog, table_or_none
from orchestration.settings import Settings

PUBLISHED_BY_PROPERTY = "shoplake.dagster_run_id"
PUBLISH_BATCH_ROWS = 1_000_000  # memory holds about one batch of a table while it is published


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
            sql = f'SELECT * FROM "{schema}"."{name}"'
            ice, rows = write_batches(
                catalog, f"{schema}.{name}", lambda: con.execute(sql).fetch_record_batch(PUBLISH_BATCH_ROWS), run_id
            )
            out[(schema, name)] = Published(
                identifier=f"{schema}.{name}",
                rows=rows,
                snapshot_id=ice.current_snapshot().snapshot_id,
                seconds=round(time.perf_counter() - started, 3),
            )
    finally:
        con.close()
    return out


def write_table(catalog: Catalog, identifier: str, data: pa.Table, run_id: str):
    """Replace the Iceberg table `identifier` with `data` in one commit (created if missing)."""
    return write_batches(catalog, identifier, lambda: pa.RecordBatchReader.from_batches(data.schema, data.to_batches()), run_id)[0]


def write_batches(catalog: Catalog, identifier: str, read: Callable[[], pa.RecordBatchReader], run_id: str):
    """Replace the Iceberg table `identifier` with what ``read()`` streams, in one atomic commit.

    The batches are written as they arrive, so memory holds one batch, not the table; readers see
    the old table until the single commit at the end. ``read`` is called again if the commit has
    to be retried. Returns (table, rows written).
    """
    first = read()
    schema = iceberg_compatible(first.schema)
    ice = _table_for(catalog, identifier, schema)
    rows = 0

    def commit(table):
        nonlocal rows, first
        reader, first, rows = first or read(), None, 0
        tx = table.transaction()
        properties = {PUBLISHED_BY_PROPERTY: run_id}
        for batch in _batches(reader, PUBLISH_BATCH_ROWS):
            # the first batch replaces the table's files, the rest add to them: one commit in the end
            (tx.append if rows else tx.overwrite)(batch.cast(schema), snapshot_properties=properties)
            rows += batch.num_rows
        if not rows:
            tx.overwrite(schema.empty_table(), snapshot_properties=properties)
        tx.commit_transaction()

    return commit_with_retry(ice, commit), rows


def _batches(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """Group a reader's (possibly small) record batches into tables of about ``rows`` rows."""
    pending, size = [], 0
    for batch in reader:
        pending.append(batch)
        size += batch.num_rows
        if size >= rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _table_for(catalog: Catalog, identifier: str, schema: pa.Schema):
    ice = table_or_none(catalog, identifier)
    if ice is None:
        ice = catalog.create_table(identifier, schema=schema)
    elif ice.schema().as_arrow().names != schema.names or _types_changed(ice, schema):
        # The model's columns changed: replace the table. Readers holding the old metadata file keep
        # reading the old snapshot; new readers see the new table.
        catalog.drop_table(identifier)
        ice = catalog.create_table(identifier, schema=schema)
    return ice


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
