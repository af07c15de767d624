"""Publish dbt's tables from the writer's DuckDB file to Iceberg, one atomic snapshot per table.

Readers (``shoplake sql``, notebooks, any Iceberg engine) never open the transform database: they
read the published snapshot, which is always complete, and never block the next dbt build.

Only what changed is written. Next to the models, the DuckDB file keeps what each table's current
Iceberg snapshot holds (schema ``_shoplake_publish``): a fingerprint of its content and, for a
table with a publish key (dbt ``meta: {publish_key: <column>}``), a hash per row. A table whose
content is unchanged keeps its snapshot; a keyed table whose rows changed in part gets one commit
that deletes the changed and removed keys and appends their current rows (the rest of its files stay
as they are, so the quality checks look only at the new files: orchestration/lakehouse/increments.py);
anything else is replaced whole. When the Iceberg table is not at the snapshot the state describes
(first publish, a crash between the Iceberg commit and the state update, another writer), the table
is replaced whole, which is always correct.

Write-audit-publish: a table with blocking checks (``audited``) gets its new snapshot on its audit
branch, started from main's current snapshot, and readers keep main until the quality checks pass
and fast-forward it (orchestration/lakehouse/catalog.py, orchestration/defs/checks/audit.py). The state
records the staged snapshot; when its checks fail, main stays behind it, so the next publish sees a
mismatch and replaces the table from main.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import And, BooleanExpression, EqualTo, GreaterThanOrEqual, In, LessThanOrEqual, Or
from pyiceberg.table.refs import MAIN_BRANCH

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import (
    AUDIT_BRANCH,
    branch_head,
    commit_with_retry,
    iceberg_compatible,
    load_catalog,
    staged_snapshot,
    start_audit_branch,
    table_or_none,
)
from orchestration.lakehouse.increments import DELETE_ONLY_PROPERTY
from orchestration.settings import Settings

PUBLISHED_BY_PROPERTY = "shoplake.dagster_run_id"
PUBLISH_BATCH_ROWS = 1_000_000  # memory holds about one batch of a table while it is published


@dataclass(frozen=True)
class Published:
    identifier: str
    rows: int
    snapshot_id: int
    seconds: float
    mode: str = "replaced"  # replaced | changed rows | unchanged
    rows_written: int | None = None
    keys_deleted: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # seconds: hash, diff, write (Iceberg), state
    staged: bool = False  # written on the audit branch: current once its checks pass


class Laps:
    """Seconds per named phase of one table's publish, in the order they ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 3)
        self._last = now


# Data files of about this many Arrow bytes (16 MiB: about 90,000 web events, 2.5 MB of Parquet).
# pyiceberg deletes copy-on-write, rewriting every file that holds a deleted row, and an erased
# customer's events are spread over the whole history: with 1M-row files three erasures rewrote 8.4M
# of curated.web_events' 13.4M rows in 9.8 s, with these 1.7M rows in 3.3 s.
PUBLISHED_FILE_BYTES = 16 * 1024 * 1024
STATE_SCHEMA = "_shoplake_publish"
DIFF_MAX_FRACTION = 0.2  # above this share of changed keys, replacing the table is as cheap as the diff
MAX_DELETE_RANGES = 32


def publish_tables(
    settings: Settings,
    relations: list[tuple[str, str]],
    run_id: str,
    keys: dict[tuple[str, str], str] | None = None,
    audited: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
) -> dict[tuple[str, str], Published]:
    """Copy each DuckDB relation (schema, name) to the Iceberg table of the same name, writing only
    what changed since the previous publish. ``keys``: the publish key column of a relation. A
    relation in ``audited`` is staged on its table's audit branch; the others become current at once."""
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
    out = {}
    try:
        # A full publish sorts the table by its key: within dbt's memory cap, spilling beyond it.
        con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit.replace(chr(39), '')}'")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.published "
            "(identifier VARCHAR PRIMARY KEY, snapshot_id BIGINT, row_count BIGINT, fingerprint VARCHAR)"
        )
        for schema, name in relations:
            started = time.perf_counter()
            branch = AUDIT_BRANCH if (schema, name) in audited else MAIN_BRANCH
            published = _publish(con, catalog, schema, name, (keys or {}).get((schema, name)), run_id, branch)
            out[(schema, name)] = replace(published, seconds=round(time.perf_counter() - started, 3))
    finally:
        con.close()
    return out


def publish_keys(manifest_path: Path) -> dict[tuple[str, str], str]:
    """(schema, table) -> publish key column, from the models' ``meta: {publish_key: ...}`` in dbt's manifest."""
    nodes = json.loads(Path(manifest_path).read_text())["nodes"].values()
    return {
        (node["schema"], node.get("alias") or node["name"]): node["config"]["meta"]["publish_key"]
        for node in nodes
        if node["resource_type"] == "model" and node.get("config", {}).get("meta", {}).get("publish_key")
    }


def _publish(
    con, catalog: Catalog, schema: str, name: str, key: str | None, run_id: str, branch: str = MAIN_BRANCH
) -> Published:
    identifier, relation = f"{schema}.{name}", f'"{schema}"."{name}"'
    state = f'{STATE_SCHEMA}."{schema}__{name}"'
    laps = Laps()
    # The relation's rows as (key, row hash); its fingerprint is the row count and the sum of the hashes.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE publish_now AS SELECT {_quoted(key) if key else 'NULL'} AS k, hash(t) "
        f"AS h FROM {relation} AS t"
    )
    rows, fingerprint, null_keys = con.execute(
        "SELECT count(*), CAST(coalesce(sum(h), 0) AS VARCHAR), count(*) FILTER (k IS NULL) FROM publish_now"
    ).fetchone()
    laps.lap("hash")
    ice = table_or_none(catalog, identifier)
    snapshot = ice.current_snapshot() if ice is not None else None
    before = con.execute(
        f"SELECT snapshot_id, row_count, fingerprint FROM {STATE_SCHEMA}.published WHERE identifier = ?", [identifier]
    ).fetchone()
    relation_schema = iceberg_compatible(con.execute(f"SELECT * FROM {relation} LIMIT 0").fetch_arrow_table().schema)
    in_step = (
        snapshot is not None
        and before is not None
        and before[0] == snapshot.snapshot_id
        and not _columns_changed(ice, relation_schema)
        and _in_published_layout(ice)  # else replaced once, in today's layout
    )

    if in_step and (before[1], before[2]) == (rows, fingerprint):
        if branch != MAIN_BRANCH and staged_snapshot(ice) is not None:
            start_audit_branch(ice)  # a staged snapshot the state does not describe (a crash): never promote it
        laps.lap("diff")
        return Published(
            identifier, rows, snapshot.snapshot_id, 0.0, mode="unchanged", rows_written=0, phases=laps.seconds
        )

    has_state = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [STATE_SCHEMA, f"{schema}__{name}"],
    ).fetchone()[0]
    if key and in_step and has_state and not null_keys:
        diff = _publish_changed_rows(con, ice, identifier, relation, state, key, rows, run_id, laps, branch)
        if diff is not None:
            _remember(con, identifier, state, key, diff.snapshot_id, rows, fingerprint, only_touched=True)
            laps.lap("state")
            return replace(diff, phases=laps.seconds, staged=branch != MAIN_BRANCH)

    order = f" ORDER BY {_quoted(key)}" if key else ""  # key ranges per file: a later diff rewrites few files
    sql = f"SELECT * FROM {relation}{order}"
    laps.lap("diff")

    def read() -> pa.RecordBatchReader:
        return con.execute(sql).fetch_record_batch(PUBLISH_BATCH_ROWS)

    ice, written = write_batches(catalog, identifier, read, run_id, branch)
    snapshot_id = branch_head(ice, branch).snapshot_id
    laps.lap("write")
    _remember(con, identifier, state, key, snapshot_id, rows, fingerprint)
    laps.lap("state")
    return Published(
        identifier,
        written,
        snapshot_id,
        0.0,
        mode="replaced",
        rows_written=written,
        phases=laps.seconds,
        staged=branch != MAIN_BRANCH,
    )


def _publish_changed_rows(
    con,
    ice,
    identifier: str,
    relation: str,
    state: str,
    key: str,
    rows: int,
    run_id: str,
    laps: Laps,
    branch: str = MAIN_BRANCH,
) -> Published | None:
    """One commit on ``branch``: delete the keys whose published rows changed or left, append their
    current rows. None when too much changed for that to pay (the caller replaces the table)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE publish_gone AS
            SELECT DISTINCT s.k FROM {state} AS s ANTI JOIN publish_now AS n ON s.k = n.k AND s.h = n.h;
        CREATE OR REPLACE TEMP TABLE publish_touched AS
            SELECT k FROM publish_gone
            UNION SELECT n.k FROM publish_now AS n ANTI JOIN {state} AS s ON s.k = n.k AND s.h = n.h;
        """
    )
    touched = con.execute("SELECT count(*) FROM publish_touched").fetchone()[0]
    laps.lap("diff")
    if touched > DIFF_MAX_FRACTION * max(rows, 1):
        return None
    gone = [k for (k,) in con.execute("SELECT k FROM publish_gone ORDER BY k").fetchall()]
    reader = con.execute(
        f"SELECT t.* FROM {relation} AS t SEMI JOIN publish_touched AS c ON t.{_quoted(key)} = c.k ORDER BY "
        f"t.{_quoted(key)}"
    ).fetch_record_batch(PUBLISH_BATCH_ROWS)
    schema = iceberg_compatible(reader.schema)
    properties = {PUBLISHED_BY_PROPERTY: run_id}
    if branch != MAIN_BRANCH:
        start_audit_branch(ice)  # the diff applies to what readers see
    tx = ice.transaction()
    if gone:
        # marked delete-only: its rewritten files hold no row the checks have not seen (increments.py)
        only_deletes = {**properties, DELETE_ONLY_PROPERTY: "true"}
        tx.delete(key_filter(key, gone), snapshot_properties=only_deletes, branch=branch)
    written = 0
    for batch in _batches(reader, PUBLISH_BATCH_ROWS):
        tx.append(batch.cast(schema), snapshot_properties=properties, branch=branch)
        written += batch.num_rows
    try:
        tx.commit_transaction()
    except CommitFailedException:
        return None  # another writer moved the table: the caller replaces it
    snapshot_id = branch_head(ice.refresh(), branch).snapshot_id
    laps.lap("write")
    return Published(
        identifier, rows, snapshot_id, 0.0, mode="changed rows", rows_written=written, keys_deleted=len(gone)
    )


def key_filter(key: str, keys: list, max_ranges: int = MAX_DELETE_RANGES) -> BooleanExpression:
    """``key IN keys`` as ranges Iceberg can prune files with.

    Iceberg skips a file only when its column statistics rule a predicate out, and pyiceberg does not
    try that for an IN list of more than 200 values. So the sorted keys are cut at their widest gaps
    into at most ``max_ranges`` runs, each ``key BETWEEN first AND last AND key IN (run)``: only the
    files whose key range meets a run are read (a full publish writes files in key order)."""
    keys = sorted(keys)
    gaps = sorted(range(1, len(keys)), key=lambda i: _gap(keys[i - 1], keys[i]), reverse=True)[: max_ranges - 1]
    bounds = [0, *sorted(gaps), len(keys)]
    runs = [keys[a:b] for a, b in zip(bounds, bounds[1:])]
    parts = [
        EqualTo(key, run[0])
        if len(run) == 1
        else And(GreaterThanOrEqual(key, run[0]), LessThanOrEqual(key, run[-1]), In(key, run))
        for run in runs
    ]
    return parts[0] if len(parts) == 1 else Or(*parts)


def _gap(a, b) -> float:
    return float(b - a) if isinstance(a, int | float) else 0.0  # text keys: one range


def _remember(
    con,
    identifier: str,
    state: str,
    key: str | None,
    snapshot_id: int,
    rows: int,
    fingerprint: str,
    only_touched: bool = False,
) -> None:
    """Record what the Iceberg snapshot now holds, in one DuckDB transaction (after a diff, only the
    touched keys' hashes change)."""
    con.execute("BEGIN")
    if key and only_touched:
        con.execute(f"DELETE FROM {state} WHERE k IN (SELECT k FROM publish_touched)")
        con.execute(f"INSERT INTO {state} SELECT k, h FROM publish_now SEMI JOIN publish_touched USING (k)")
    elif key:
        con.execute(f"CREATE OR REPLACE TABLE {state} AS SELECT k, h FROM publish_now")
    con.execute(f"DELETE FROM {STATE_SCHEMA}.published WHERE identifier = ?", [identifier])
    con.execute(
        f"INSERT INTO {STATE_SCHEMA}.published VALUES (?, ?, ?, ?)", [identifier, snapshot_id, rows, fingerprint]
    )
    con.execute("COMMIT")


def _columns_changed(ice, schema: pa.Schema) -> bool:
    return ice.schema().as_arrow().names != schema.names or _types_changed(ice, schema)


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def write_table(catalog: Catalog, identifier: str, data: pa.Table, run_id: str):
    """Replace the Iceberg table `identifier` with `data` in one commit (created if missing)."""
    return write_batches(
        catalog, identifier, lambda: pa.RecordBatchReader.from_batches(data.schema, data.to_batches()), run_id
    )[0]


def write_batches(
    catalog: Catalog, identifier: str, read: Callable[[], pa.RecordBatchReader], run_id: str, branch: str = MAIN_BRANCH
):
    """Replace the Iceberg table `identifier` (on ``branch``) with what ``read()`` streams, in one atomic commit.

    The batches are written as they arrive, so memory holds one batch, not the table; readers see
    the old table until the single commit at the end. ``read`` is called again if the commit has
    to be retried. Returns (table, rows written).
    """
    first = read()
    schema = iceberg_compatible(first.schema)
    ice = _table_for(catalog, identifier, schema)
    if branch != MAIN_BRANCH:
        ice = start_audit_branch(ice)  # the replace's parent is what readers see
    rows = 0

    def cast(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for table in _batches(reader, PUBLISH_BATCH_ROWS):
            rows += table.num_rows
            yield from table.cast(schema).to_batches()

    def commit(table):
        nonlocal rows, first
        reader, first, rows = first or read(), None, 0
        tx = table.transaction()
        properties = {PUBLISHED_BY_PROPERTY: run_id}
        if branch != MAIN_BRANCH and not table.metadata.snapshots:
            # Iceberg lets a table without snapshots commit only to main: its first snapshot is
            # written unreferenced (one streaming append), then the audit branch is pointed at it.
            stream = pa.RecordBatchReader.from_batches(schema, cast(reader))
            tx.append(stream, snapshot_properties=properties, branch=None)
            tx.commit_transaction()
            table.manage_snapshots().create_branch(table.metadata.snapshots[-1].snapshot_id, branch).commit()
            return
        for batch in _batches(reader, PUBLISH_BATCH_ROWS):
            # the first batch replaces the table's files, the rest add to them: one commit in the end
            (tx.append if rows else tx.overwrite)(batch.cast(schema), snapshot_properties=properties, branch=branch)
            rows += batch.num_rows
        if not rows:
            tx.overwrite(schema.empty_table(), snapshot_properties=properties, branch=branch)
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


def _published_properties() -> dict[str, str]:
    return {"write.target-file-size-bytes": str(PUBLISHED_FILE_BYTES)}


def _in_published_layout(ice) -> bool:
    return all(ice.properties.get(k) == v for k, v in _published_properties().items())


def _table_for(catalog: Catalog, identifier: str, schema: pa.Schema):
    properties = _published_properties()
    ice = table_or_none(catalog, identifier)
    if ice is None:
        ice = catalog.create_table(identifier, schema=schema, properties=properties)
    elif _columns_changed(ice, schema):
        # The model's columns changed: replace the table. Readers holding the old metadata file keep
        # reading the old snapshot; new readers see the new table.
        catalog.drop_table(identifier)
        ice = catalog.create_table(identifier, schema=schema, properties=properties)
    elif not _in_published_layout(ice):
        ice = ice.transaction().set_properties(properties).commit_transaction()  # published before them
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
