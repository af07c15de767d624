"""Change capture of one source table into its Iceberg ``raw`` table, exactly once.

Each run reads the rows changed since the last watermark (inclusive, minus a look-back window, so
rows sharing the watermark's millisecond or committing late are read again), keeps only versions
raw does not hold yet (primary key + updated_at), finds hard deletes by a key-only scan, and
appends all of it in ONE Iceberg commit whose snapshot properties carry the new watermark and the
Dagster run id. The watermark is read back from the table itself, so a crash anywhere before the
commit leaves raw untouched and the next run re-reads; a crash after it finds nothing new to add.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.extract.protect import protect, protected_schema
from orchestration.extract.schema_drift import SchemaDrift, effective_table  # noqa: F401 (re-exported)
from orchestration.extract.source_reader import read_changed_rows, read_keys
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import (
    iceberg_compatible,
    load_catalog,
    load_or_create,
    snapshot_property,
)
from orchestration.settings import Settings
from orchestration.source.database import SourceDatabase
from orchestration.source.schema import Table

WATERMARK_PROPERTY = "shoplake.watermark"
RUN_ID_PROPERTY = "shoplake.dagster_run_id"
RAW_METADATA = (
    pa.field("_op", pa.string()),  # insert | update | delete
    pa.field("_extracted_at", pa.timestamp("us")),
    pa.field("_dagster_run_id", pa.string()),
)
DEFAULT_LOOKBACK = dt.timedelta(minutes=5)
DEFAULT_CHUNK_ROWS = 500_000


@dataclass(frozen=True)
class ExtractionResult:
    table: str
    rows_read: int
    source_rows: int
    inserted: int
    updated: int
    deleted: int
    card_numbers_masked: int
    watermark: str | None
    snapshot_id: int | None
    full_refresh: bool
    seconds: float

    @property
    def rows_written(self) -> int:
        return self.inserted + self.updated + self.deleted

    def as_metadata(self) -> dict:
        return asdict(self) | {"rows_written": self.rows_written}


def raw_schema(table: Table) -> pa.Schema:
    return iceberg_compatible(pa.schema(list(protected_schema(table)) + list(RAW_METADATA)))


def extract_table(
    table: Table,
    settings: Settings,
    run_id: str,
    full_refresh: bool = False,
    lookback: dt.timedelta = DEFAULT_LOOKBACK,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ExtractionResult:
    started = time.perf_counter()
    db = SourceDatabase(settings.source_url)
    db.ensure_reachable()
    table = effective_table(db, table)  # fails on a dropped/retyped column, adds new ones
    catalog = load_catalog(settings)
    iceberg_table = load_or_create(catalog, f"raw.{table.name}", raw_schema(table))

    previous = None if full_refresh else snapshot_property(iceberg_table, WATERMARK_PROPERTY)
    since = dt.datetime.fromisoformat(previous) - lookback if previous else None
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    counts = {"insert": 0, "update": 0, "delete": 0}
    rows_read = masked = 0
    newest = dt.datetime.fromisoformat(previous) if previous else None

    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    try:
        # Keys first, rows second: a row inserted in between is then never mistaken for a delete.
        # On a first load there is nothing to delete, so the key scan is skipped.
        first_load = iceberg_table.current_snapshot() is None
        keys = None if first_load else read_keys(db, table)
        _load_raw_state(con, table, iceberg_table)
        # One transaction: every chunk's files are written as they come (bounded memory) but the
        # table only changes at the single commit at the end, together with the new watermark.
        tx = iceberg_table.transaction()
        target = _evolve(tx, raw_schema(table))
        pending: pa.Table | None = None
        for rows in read_changed_rows(db, table, since, chunk_rows):
            rows_read += rows.num_rows
            newest = max(filter(None, [newest, pc.max(rows.column("updated_at")).as_py()]))
            protected, n_masked = protect(table, rows, settings.pii_key)
            masked += n_masked
            changes = _new_versions(con, table, protected)
            for op, n in zip(*pc.value_counts(changes.column("_op")).flatten()):
                counts[op.as_py()] += n.as_py()
            if changes.num_rows:
                if pending is not None:
                    tx.append(_with_metadata(pending, target, extracted_at, run_id))
                pending = changes
        markers = None if first_load else _delete_markers(con, table, keys, raw_schema_of=protected_schema(table))
        counts["delete"] = markers.num_rows if markers is not None else 0
        pending = _concat(pending, markers)
        watermark = newest.isoformat(timespec="milliseconds") if newest else None
        snapshot_id = None
        if pending is not None and pending.num_rows:
            tx.append(
                _with_metadata(pending, target, extracted_at, run_id),
                snapshot_properties={WATERMARK_PROPERTY: watermark or "", RUN_ID_PROPERTY: run_id},
            )
            # Raw tables have one writer (runs that write them are serialized), so no retry loop.
            iceberg_table = tx.commit_transaction()
            snapshot_id = iceberg_table.current_snapshot().snapshot_id
    finally:
        con.close()

    return ExtractionResult(
        table=table.name,
        rows_read=rows_read,
        source_rows=rows_read if keys is None else keys.num_rows,
        inserted=counts["insert"],
        updated=counts["update"],
        deleted=counts["delete"],
        card_numbers_masked=masked,
        watermark=watermark,
        snapshot_id=snapshot_id,
        full_refresh=full_refresh,
        seconds=round(time.perf_counter() - started, 3),
    )


def _evolve(tx, target: pa.Schema) -> pa.Schema:
    """Add columns that appeared at the source; returns the raw schema in the table's column order."""
    current = tx.table_metadata.schema().as_arrow()
    if set(target.names) - set(current.names):
        with tx.update_schema() as update:
            update.union_by_name(target)
        current = tx.table_metadata.schema().as_arrow()
    return pa.schema([target.field(n) if n in target.names else current.field(n) for n in current.names])


def _with_metadata(changes: pa.Table, target: pa.Schema, extracted_at: dt.datetime, run_id: str) -> pa.Table:
    n = changes.num_rows
    changes = changes.append_column(RAW_METADATA[1], pa.array([extracted_at] * n, pa.timestamp("us")))
    changes = changes.append_column(RAW_METADATA[2], pa.array([run_id] * n, pa.string()))
    columns = [changes.column(f.name) if f.name in changes.column_names else pa.nulls(n, f.type) for f in target]
    return pa.Table.from_arrays(columns, names=target.names).cast(target)


def _concat(a: pa.Table | None, b: pa.Table | None) -> pa.Table | None:
    if a is None or not a.num_rows:
        return b
    if b is None or not b.num_rows:
        return a
    return pa.concat_tables([a, b.cast(a.schema)])


def _load_raw_state(con: duckdb.DuckDBPyConnection, table: Table, iceberg_table) -> None:
    """The latest version of every key raw already holds: (primary key, updated_at, _op)."""
    pk = ", ".join(table.primary_key)
    if iceberg_table.current_snapshot() is None:
        types = {f.name: f.type for f in protected_schema(table)}
        con.register("empty_keys", pa.schema([pa.field(k, types[k]) for k in table.primary_key]).empty_table())
        con.execute(f"CREATE TEMP TABLE st AS SELECT {pk}, NULL::TIMESTAMP AS updated_at, 'insert' AS _op FROM empty_keys")
        return
    con.execute(
        f"""
        CREATE TEMP TABLE st AS
        SELECT {pk}, updated_at, _op FROM iceberg_scan('{iceberg_table.metadata_location}')
        QUALIFY row_number() OVER (PARTITION BY {pk} ORDER BY _extracted_at DESC, updated_at DESC NULLS LAST) = 1
        """
    )


def _new_versions(con: duckdb.DuckDBPyConnection, table: Table, rows: pa.Table) -> pa.Table:
    """Rows whose (key, updated_at) raw does not hold yet, tagged insert or update."""
    pk = table.primary_key
    if not con.execute("SELECT count(*) FROM st").fetchone()[0]:  # first load: everything is new
        return rows.append_column(pa.field("_op", pa.string()), pa.array(["insert"] * rows.num_rows, pa.string()))
    on = " AND ".join(f"s.{k} = st.{k}" for k in pk)
    con.register("src", rows)
    versions = con.execute(
        f"""
        SELECT s.*, CASE WHEN st.{pk[0]} IS NULL OR st._op = 'delete' THEN 'insert' ELSE 'update' END AS _op
        FROM src s LEFT JOIN st ON {on}
        WHERE st.{pk[0]} IS NULL OR st._op = 'delete' OR st.updated_at IS DISTINCT FROM s.updated_at
        ORDER BY {', '.join(f's.{k}' for k in pk)}
        """
    ).fetch_arrow_table()
    con.unregister("src")
    return versions.cast(pa.schema([*rows.schema, pa.field("_op", pa.string())]))


def _delete_markers(con: duckdb.DuckDBPyConnection, table: Table, keys: pa.Table, raw_schema_of: pa.Schema) -> pa.Table | None:
    """Keys raw holds as live that the source no longer has: one delete marker each."""
    pk = table.primary_key
    con.register("source_keys", keys)
    gone = con.execute(
        f"""
        SELECT {', '.join(f'st.{k}' for k in pk)} FROM st
        WHERE st._op <> 'delete' AND NOT EXISTS (
            SELECT 1 FROM source_keys s WHERE {' AND '.join(f's.{k} = st.{k}' for k in pk)})
        ORDER BY {', '.join(f'st.{k}' for k in pk)}
        """
    ).fetch_arrow_table()
    if not gone.num_rows:
        return None
    schema = pa.schema([*raw_schema_of, pa.field("_op", pa.string())])
    columns = [
        gone.column(f.name).cast(f.type) if f.name in pk else pa.nulls(gone.num_rows, f.type) for f in raw_schema_of
    ]
    columns.append(pa.array(["delete"] * gone.num_rows, pa.string()))
    return pa.Table.from_arrays(columns, schema=schema)
