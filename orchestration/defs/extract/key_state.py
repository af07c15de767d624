"""The live keys of a raw table, kept beside it so an incremental run need not rescan raw.

Each extraction needs, per primary key, the ``updated_at`` of the latest version raw holds (to skip
versions it already has) and the set of keys still alive (to find hard deletes). Deriving that from
raw takes a window over the whole change history, which grows with every run. Instead, each commit
writes the new key state as one Arrow file next to the table and names it in the same snapshot's
properties: the state and the data it describes change in one atomic commit, so a crash leaves
either both or neither. A state that is missing or unreadable (a lakehouse from before this file
existed, a table rolled back) is rebuilt from raw, and a full refresh always rebuilds it.
"""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table as IcebergTable

from orchestration.contract.schema import Table
from orchestration.defs.extract.protect import protected_schema
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import snapshot_property
from orchestration.settings import Settings

STATE_PROPERTY = "shoplake.key_state"
HELD = "_held_updated_at"
IS_HELD = "_is_held"


class KeyState:
    """One row per live key: the primary key columns and the ``updated_at`` raw holds for it.

    Membership tests between key sets are the whole cost at scale (millions of live keys against
    millions of source keys): dense integer keys use a bitmap over their range (numpy's ``isin``
    with ``kind="table"``, ~10x faster than hashing), other keys an Arrow hash join.
    """

    def __init__(self, table: Table, live: pa.Table, origin: str):
        self.table = table
        self.pk = list(table.primary_key)
        self.live = live.cast(state_schema(table))
        self.origin = origin  # empty | stored | rebuilt from raw
        self._integer_keys: np.ndarray | None = None

    @classmethod
    def load(cls, table: Table, iceberg_table: IcebergTable, settings: Settings, rebuild: bool = False) -> KeyState:
        if iceberg_table.current_snapshot() is None:
            return cls(table, state_schema(table).empty_table(), "empty")
        path = None if rebuild else stored_path(iceberg_table)
        if path:
            try:
                with iceberg_table.io.new_input(path).open() as f:
                    return cls(table, pa.ipc.open_file(f).read_all(), "stored")
            except (FileNotFoundError, OSError, pa.ArrowInvalid):
                pass  # rebuilt below
        pk = ", ".join(table.primary_key)
        con = duckdb_extensions.connect(settings.duckdb_extension_dir)
        try:
            live = con.execute(
                f"""
                SELECT {pk}, updated_at FROM (
                    SELECT {pk}, updated_at, _op FROM iceberg_scan('{iceberg_table.metadata_location}')
                    QUALIFY row_number() OVER (
                        PARTITION BY {pk} ORDER BY _extracted_at DESC, updated_at DESC NULLS LAST
                    ) = 1
                ) WHERE _op <> 'delete'
                """
            ).fetch_arrow_table()
        finally:
            con.close()
        return cls(table, live, "rebuilt from raw")

    def new_versions(self, rows: pa.Table) -> pa.Table:
        """The rows whose (key, updated_at) raw does not hold yet, with ``_op`` insert or update."""
        if not self.live.num_rows:
            return rows.append_column(pa.field("_op", pa.string()), pa.array(["insert"] * rows.num_rows, pa.string()))
        held = self.live.filter(self._live_in(rows))
        held = held.rename_columns([*self.pk, HELD]).append_column(IS_HELD, pa.array(np.ones(held.num_rows, bool)))
        joined = rows.join(held, keys=self.pk, join_type="left outer")
        known = pc.fill_null(joined.column(IS_HELD), False)
        held_at = joined.column(HELD)
        read_at = pc.cast(joined.column("updated_at"), held_at.type)
        # a NULL updated_at (a zero date at the source) held and read again is the same version
        both_null = pc.and_(pc.is_null(held_at), pc.is_null(read_at))
        same = pc.or_(pc.fill_null(pc.equal(held_at, read_at), False), both_null)
        versions = joined.filter(pc.or_(pc.invert(known), pc.invert(same)))
        op = pc.if_else(pc.fill_null(versions.column(IS_HELD), False), "update", "insert")
        versions = versions.select(rows.column_names).append_column(pa.field("_op", pa.string()), op)
        return versions.sort_by([(k, "ascending") for k in self.pk])

    def gone(self, source_keys: pa.Table, read_this_run: list[pa.Table] = ()) -> pa.Table:
        """Live keys the source no longer has.

        A key whose row this run read is not gone, whatever the key scan saw: the scan runs beside
        the read, so a row deleted and re-inserted between the two must not get a delete marker in
        the same commit as its new version (the marker would win). A row deleted after the read is
        found by the next run.
        """
        present = pa.concat_tables(
            [k.select(self.pk).cast(self.live.select(self.pk).schema) for k in [source_keys, *read_this_run]]
        )
        gone = self.live.select(self.pk).filter(np.logical_not(self._live_in(present)))
        return gone.sort_by([(k, "ascending") for k in self.pk])

    def after(self, changes: list[pa.Table], deleted: pa.Table | None) -> pa.Table:
        """The live keys once this run's changes and deletes are committed."""
        schema = state_schema(self.table)
        added = (
            pa.concat_tables([c.select(schema.names).cast(schema) for c in changes])
            if changes
            else schema.empty_table()
        )
        removed = [added.select(self.pk)]
        if deleted is not None and deleted.num_rows:
            removed.append(deleted.select(self.pk).cast(removed[0].schema))
        kept = self.live.filter(np.logical_not(self._live_in(pa.concat_tables(removed))))
        return pa.concat_tables([kept, added])

    def _live_in(self, keys: pa.Table) -> np.ndarray:
        """For each live key, whether it is among ``keys``."""
        keys = keys.select(self.pk).cast(self.live.select(self.pk).schema)
        if self._integer_keys is None and len(self.pk) == 1 and pa.types.is_integer(self.live.schema.field(0).type):
            self._integer_keys = self.live.column(0).to_numpy()  # once: the live keys do not change
        if self._integer_keys is not None and keys.num_rows:
            b = keys.column(0).to_numpy()
            if int(b.max()) - int(b.min()) <= 8 * (self._integer_keys.size + b.size):  # dense: a bitmap of the range
                return np.isin(self._integer_keys, b, kind="table")
        indexed = self.live.select(self.pk).append_column("_row", pa.array(np.arange(self.live.num_rows)))
        hits = indexed.join(keys, keys=self.pk, join_type="left semi").column("_row").to_numpy()
        mask = np.zeros(self.live.num_rows, dtype=bool)
        mask[hits] = True
        return mask


def stored_path(iceberg_table: IcebergTable) -> str | None:
    return snapshot_property(iceberg_table, STATE_PROPERTY) if iceberg_table.current_snapshot() else None


def write(iceberg_table: IcebergTable, state: pa.Table) -> str:
    """Write the state file a commit will name; returns its location."""
    path = f"{iceberg_table.location().rstrip('/')}/key_state/{uuid.uuid4().hex}.arrow"
    with iceberg_table.io.new_output(path).create(overwrite=True) as f:
        with pa.ipc.new_file(f, state.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
            writer.write_table(state, max_chunksize=1_000_000)
    return path


def discard(iceberg_table: IcebergTable, path: str | None) -> None:
    """Remove a state file no snapshot will read again (superseded, or its commit failed)."""
    if path:
        try:
            iceberg_table.io.delete(path)
        except (FileNotFoundError, OSError):
            pass


def state_schema(table: Table) -> pa.Schema:
    types = {f.name: f.type for f in protected_schema(table)}
    return pa.schema([pa.field(k, types[k]) for k in table.primary_key] + [pa.field("updated_at", pa.timestamp("us"))])
