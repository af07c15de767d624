"""Change capture of one source table into its Iceberg ``raw`` table, exactly once.

Each run reads the rows changed since the last watermark (inclusive, minus a look-back window, so
rows sharing the watermark's millisecond or committing late are read again), keeps only versions
raw does not hold yet (primary key + updated_at), finds hard deletes by a key-only scan, and
appends all of it in ONE Iceberg commit whose snapshot properties carry the new watermark and the
Dagster run id. The watermark is read back from the table itself, so a crash anywhere before the
commit leaves raw untouched and the next run re-reads; a crash after it finds nothing new to add.

The watermark never passes the source's own clock: a row stamped in the future (a wrong client
clock, a typo) is extracted and counted, but cannot move the cursor past changes the source has yet
to make. Such rows are simply read again by later runs, and skipped there because raw already holds
their version. The clock is read before the rows and, when some row is ahead of it, once more after
them: a row written while the read ran is then not mistaken for one from the future.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

from orchestration.contract.database import SourceDatabase
from orchestration.contract.schema import Table
from orchestration.defs.extract import key_state
from orchestration.defs.extract.protect import protect, protected_schema
from orchestration.defs.extract.schema_drift import SchemaDrift, effective_table  # noqa: F401 (re-exported)
from orchestration.defs.extract.source_reader import INVALID_VALUES, read_changed_rows, read_keys
from orchestration.lakehouse.catalog import (
    iceberg_compatible,
    load_catalog,
    load_or_create,
    snapshot_property,
)
from orchestration.settings import Settings

WATERMARK_PROPERTY = "shoplake.watermark"
RUN_ID_PROPERTY = "shoplake.dagster_run_id"
RAW_METADATA = (
    pa.field("_op", pa.string()),  # insert | update | delete
    pa.field("_extracted_at", pa.timestamp("us")),
    pa.field("_dagster_run_id", pa.string()),
)
INVALID_FIELD = pa.field(INVALID_VALUES, pa.string())  # see source_reader.INVALID_VALUES
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
    rows_from_the_future: int = 0
    """Rows read whose updated_at is ahead of the source's clock (they do not move the watermark)."""
    source_clock: str | None = None
    rows_with_invalid_values: int = 0
    """Rows read with a value no Arrow type holds (zero dates): NULL in raw, the text in _invalid_values."""

    @property
    def rows_written(self) -> int:
        return self.inserted + self.updated + self.deleted

    def as_metadata(self) -> dict:
        return asdict(self) | {"rows_written": self.rows_written}


def raw_schema(table: Table) -> pa.Schema:
    return iceberg_compatible(pa.schema([*protected_schema(table), INVALID_FIELD, *RAW_METADATA]))


def extract_table(
    table: Table,
    settings: Settings,
    run_id: str,
    full_refresh: bool = False,
    lookback: dt.timedelta = DEFAULT_LOOKBACK,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ExtractionResult:
    started = time.perf_counter()
    db = SourceDatabase(
        settings.source_url, connect_timeout=settings.source_connect_timeout, read_timeout=settings.source_read_timeout
    )
    source_now = db.clock()  # also the reachability check
    table = effective_table(db, table)  # fails on a dropped/retyped column, adds new ones
    catalog = load_catalog(settings)
    iceberg_table = load_or_create(catalog, f"raw.{table.name}", raw_schema(table))

    previous = None if full_refresh else snapshot_property(iceberg_table, WATERMARK_PROPERTY)
    # min(): a watermark written before it was capped (or a source clock set back) may be ahead of the source
    newest = min(dt.datetime.fromisoformat(previous), source_now) if previous else None
    since = newest - lookback if newest else None
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    counts = {"insert": 0, "update": 0, "delete": 0}
    rows_read = masked = invalid = 0
    newest_read = None
    ahead: list[pa.ChunkedArray] = []  # stamps past the clock read before the rows

    state_path = None
    # The key-only scan for deletes runs on its own connection while the changed rows are read and
    # diffed: the source answers both at once. Their order does not matter: only keys raw holds as
    # live before this run, absent from the scan and not read by it, get a delete marker
    # (KeyState.gone). On a first load there is nothing to delete.
    first_load = iceberg_table.current_snapshot() is None
    key_scan = ThreadPoolExecutor(max_workers=1)
    try:
        keys_future = None if first_load else key_scan.submit(read_keys, db, table)
        state = key_state.KeyState.load(table, iceberg_table, settings, rebuild=full_refresh)
        # One transaction: every chunk's files are written as they come (bounded memory) but the
        # table only changes at the single commit at the end, together with the new watermark.
        tx = iceberg_table.transaction()
        target = _evolve(tx, raw_schema(table))
        pending: pa.Table | None = None
        changed_keys: list[pa.Table] = []
        for rows in read_changed_rows(db, table, since, chunk_rows):
            rows_read += rows.num_rows
            stamps = rows.column("updated_at")
            ahead.append(stamps.filter(pc.greater(stamps, pa.scalar(source_now, stamps.type))))
            newest_read = max(filter(None, [newest_read, pc.max(stamps).as_py()]), default=None)
            invalid_values = rows.column(INVALID_VALUES)
            invalid += len(invalid_values) - invalid_values.null_count
            protected, n_masked = protect(table, rows.drop_columns([INVALID_VALUES]), settings.pii_key)
            protected = protected.append_column(INVALID_FIELD, invalid_values)
            masked += n_masked
            changes = state.new_versions(protected)
            for op, n in zip(*pc.value_counts(changes.column("_op")).flatten()):
                counts[op.as_py()] += n.as_py()
            if changes.num_rows:
                changed_keys.append(changes.select([*table.primary_key, "updated_at"]))
                if pending is not None:
                    tx.append(_with_metadata(pending, target, extracted_at, run_id))
                pending = changes
        if any(len(a) for a in ahead):
            source_now = db.clock()
        future = sum(pc.sum(pc.greater(a, pa.scalar(source_now, a.type))).as_py() or 0 for a in ahead)
        newest = _latest(newest, newest_read, source_now)
        keys = None if keys_future is None else keys_future.result()
        markers = (
            None
            if keys is None
            else _delete_markers(state.gone(keys, changed_keys), pa.schema([*protected_schema(table), INVALID_FIELD]))
        )
        counts["delete"] = markers.num_rows if markers is not None else 0
        pending = _concat(pending, markers)
        watermark = newest.isoformat(timespec="milliseconds") if newest else None
        snapshot_id = None
        if pending is not None and pending.num_rows:
            previous_state = key_state.stored_path(iceberg_table)
            state_path = key_state.write(iceberg_table, state.after(changed_keys, markers))
            tx.append(
                _with_metadata(pending, target, extracted_at, run_id),
                snapshot_properties={
                    WATERMARK_PROPERTY: watermark or "",
                    RUN_ID_PROPERTY: run_id,
                    key_state.STATE_PROPERTY: state_path,
                },
            )
            # Raw tables have one writer (runs that write them are serialized), so no retry loop.
            iceberg_table = tx.commit_transaction()
            state_path = None  # committed: the table owns it now
            key_state.discard(iceberg_table, previous_state)
            snapshot_id = iceberg_table.current_snapshot().snapshot_id
    finally:
        key_scan.shutdown(wait=True, cancel_futures=True)
        key_state.discard(iceberg_table, state_path)  # written, but its commit never happened

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
        rows_from_the_future=future,
        source_clock=source_now.isoformat(timespec="milliseconds"),
        rows_with_invalid_values=invalid,
    )


def _latest(newest: dt.datetime | None, read: dt.datetime | None, source_now: dt.datetime) -> dt.datetime | None:
    """The watermark once the greatest updated_at read is ``read`` (None: no row, or only NULL
    stamps): never behind the previous one, never ahead of the source's clock."""
    if read is None:
        return newest
    read = min(read, source_now)
    return read if newest is None else max(newest, read)


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


def _delete_markers(gone: pa.Table, raw_schema_of: pa.Schema) -> pa.Table | None:
    """One delete marker per key that left the source: the key, every other column null."""
    if not gone.num_rows:
        return None
    pk = gone.column_names
    schema = pa.schema([*raw_schema_of, pa.field("_op", pa.string())])
    columns = [
        gone.column(f.name).cast(f.type) if f.name in pk else pa.nulls(gone.num_rows, f.type) for f in raw_schema_of
    ]
    columns.append(pa.array(["delete"] * gone.num_rows, pa.string()))
    return pa.Table.from_arrays(columns, schema=schema)
