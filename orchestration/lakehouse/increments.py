"""What an Iceberg table gained since an earlier snapshot: the data files to check again.

Iceberg data files are immutable. Every row of the current snapshot lives in a data file that was
either already in an earlier snapshot or has been added since, and a delete that rewrites a file
adds the rewritten file as a new one. So when a row-by-row check (the card-number scan, pandera's
per-row rules) passed on snapshot B, checking only the current snapshot's files that B did not
have gives the same answer as checking the whole table, whatever happened in between: appends,
deletes, rewrites or a full overwrite (then every file is new and the whole table is checked).

The base must still be in the table's history and have the same schema; merge-on-read delete files
(never written by pyiceberg) make the answer "check everything". The snapshot checked may be a staged
one (write-audit-publish: the head of the table's audit branch, a child of main): the files it holds
are compared the same way, and a base that is not its ancestor only costs the rewrite shortcut below.

One kind of new file holds no new row: the rewrite of a copy-on-write delete, which copies the rows
of the files it replaces minus the deleted ones. The publish marks its delete commits with
DELETE_ONLY_PROPERTY; a file such a commit added is as checked as the files it replaced, when those
were checked (in the base, or rewritten from it the same way). So a GDPR erasure that rewrites a
third of a large table does not make its checks read that third again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.table import Table as IcebergTable
from pyiceberg.table.snapshots import ancestors_of

WHOLE_TABLE = "whole table"  # the scope of a check without an increment
# Snapshot property of a commit that only deletes rows: the files it adds are rewrites of the files it
# removes, minus rows (pyiceberg's copy-on-write delete). Written by the publish, trusted here.
DELETE_ONLY_PROPERTY = "shoplake.delete_only"


@dataclass(frozen=True)
class Increment:
    base_snapshot_id: int
    snapshot_id: int
    files: tuple[str, ...]  # data files of the current snapshot the base did not have
    rows: int  # rows in those files
    table_files: int
    table_rows: int
    rewritten_files: int = 0  # files a delete rewrote from checked files since the base: not read
    rewritten_rows: int = 0

    def describe(self) -> str:
        rewritten = (
            f"; {self.rewritten_files} files ({self.rewritten_rows:,} rows) rewritten since by deletes from checked "
            "files, not read"
            if self.rewritten_files
            else ""
        )
        return (
            f"{len(self.files)} of {self.table_files} files ({self.rows:,} of {self.table_rows:,} rows) "
            f"added since snapshot {self.base_snapshot_id}, where the check passed{rewritten}"
        )

    def parquet_source(self) -> str:
        """A DuckDB relation over the new files (the same columns as the table)."""
        paths = ", ".join("'" + path.replace("'", "''") + "'" for path in self.files)
        return f"read_parquet([{paths}])"


def files_since(
    table: IcebergTable, base_snapshot_id: int | None, skip_rewrites: bool = True, snapshot_id: int | None = None
) -> Increment | None:
    """The files of snapshot ``snapshot_id`` (the current one when None; a staged snapshot of the
    audit branch for the quality checks) that snapshot ``base_snapshot_id`` did not have, or None when the
    whole table has to be checked (no base, base expired, schema changed, delete files). Without
    ``skip_rewrites``, delete-only rewrites of checked files are in it too (for comparison)."""
    current = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
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
    checked = before | (_rewritten_from(table, before, base_snapshot_id, current) if skip_rewrites else set())
    new = tuple(sorted(path for path in now if path not in checked))
    rewritten = [path for path in now if path not in before and path in checked]
    return Increment(
        base_snapshot_id=base_snapshot_id,
        snapshot_id=current.snapshot_id,
        files=new,
        rows=sum(now[path] for path in new),
        table_files=len(now),
        table_rows=sum(now.values()),
        rewritten_files=len(rewritten),
        rewritten_rows=sum(now[path] for path in rewritten),
    )


def _rewritten_from(table: IcebergTable, checked: set[str], base_snapshot_id: int, current) -> set[str]:
    """Files added after the base by delete-only commits whose replaced files were all checked, in
    commit order, so a rewrite of a rewrite counts too. Empty when the base is not an ancestor of the
    current snapshot (a rollback, another branch): then every file the base lacks is read."""
    chain = []
    for snapshot in ancestors_of(current, table.metadata):
        if snapshot.snapshot_id == base_snapshot_id:
            break
        chain.append(snapshot)
    else:
        return set()
    checked, rewritten = set(checked), set()
    for snap in reversed(chain):
        if snap.summary is None or snap.summary.get(DELETE_ONLY_PROPERTY) != "true":
            continue
        added, removed = _files_changed_by(table, snap)
        if removed and removed <= checked:
            checked |= added
            rewritten |= added
    return rewritten


def _files_changed_by(table: IcebergTable, snapshot) -> tuple[set[str], set[str]]:
    """(data files added, data files removed) by this snapshot, from its own manifests' entries."""
    from pyiceberg.manifest import ManifestEntryStatus

    added, removed = set(), set()
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if entry.snapshot_id != snapshot.snapshot_id:
                continue
            if entry.status == ManifestEntryStatus.ADDED:
                added.add(entry.data_file.file_path)
            elif entry.status == ManifestEntryStatus.DELETED:
                removed.add(entry.data_file.file_path)
    return added, removed
