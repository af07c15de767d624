"""What an Iceberg table gained since an earlier snapshot: the data files to check again.

Iceberg data files are immutable. Every row of the current snapshot lives in a data file that was
either already in an earlier snapshot or has been added since, and a delete that rewrites a file
adds the rewritten file as a new one. So when a row-by-row check (the card-number scan, pandera's
per-row rules) passed on snapshot B, checking only the current snapshot's files that B did not
have gives the same answer as checking the whole table, whatever happened in between: appends,
deletes, rewrites or a full overwrite (then every file is new and the whole table is checked).

The base must still be in the table's history and have the same schema; merge-on-read delete files
(never written by pyiceberg) make the answer "check everything".
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.table import Table as IcebergTable

WHOLE_TABLE = "whole table"  # the scope of a check without an increment


@dataclass(frozen=True)
class Increment:
    base_snapshot_id: int
    snapshot_id: int
    files: tuple[str, ...]  # data files of the current snapshot the base did not have
    rows: int  # rows in those files
    table_files: int
    table_rows: int

    def describe(self) -> str:
        return (
            f"{len(self.files)} of {self.table_files} files ({self.rows:,} of {self.table_rows:,} rows) "
            f"added since snapshot {self.base_snapshot_id}, where the check passed"
        )

    def parquet_source(self) -> str:
        """A DuckDB relation over the new files (the same columns as the table)."""
        paths = ", ".join("'" + path.replace("'", "''") + "'" for path in self.files)
        return f"read_parquet([{paths}])"


def files_since(table: IcebergTable, base_snapshot_id: int | None) -> Increment | None:
    """The current snapshot's files that snapshot ``base_snapshot_id`` did not have, or None when the
    whole table has to be checked (no base, base expired, schema changed, delete files)."""
    current = table.current_snapshot()
    if base_snapshot_id is None or current is None:
        return None
    base = table.snapshot_by_id(base_snapshot_id)
    if base is None or base.schema_id != current.schema_id:
        return None
    now = {}
    for task in table.scan(snapshot_id=current.snapshot_id).plan_files():
        if task.delete_files:
            return None
        now[task.file.file_path] = task.file.record_count
    before = {task.file.file_path for task in table.scan(snapshot_id=base_snapshot_id).plan_files()}
    new = tuple(sorted(path for path in now if path not in before))
    return Increment(
        base_snapshot_id=base_snapshot_id,
        snapshot_id=current.snapshot_id,
        files=new,
        rows=sum(now[path] for path in new),
        table_files=len(now),
        table_rows=sum(now.values()),
    )
