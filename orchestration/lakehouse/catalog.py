"""The Iceberg catalog: where raw is written and prod/curated are published for readers.

pyiceberg is the only writer. A SQLite catalog serves one machine; point ``SHOPLAKE_CATALOG_URI`` at
PostgreSQL when runs or readers share it.

Readers read a table's current snapshot (its ``main`` branch). A table with blocking checks is
published write-audit-publish: its new snapshot is written on the table's ``audit`` branch, started
from main (``start_audit_branch``), checked there (``staged_snapshot``), and made current by a
fast-forward of main when its checks pass (``promote``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.table import Table as IcebergTable
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Snapshot, ancestors_of

from orchestration.settings import Settings

NAMESPACES = ("raw", "curated", "quarantine", "prod")
AUDIT_BRANCH = "audit"  # where a checked table's next snapshot waits for its checks
CATALOG_NAME = "shoplake"


def load_catalog(settings: Settings) -> Catalog:
    if settings.warehouse.startswith("file://"):
        Path(settings.warehouse[len("file://") :]).mkdir(parents=True, exist_ok=True)
    if settings.catalog_uri.startswith("sqlite:///"):
        Path(settings.catalog_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
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
            with warnings.catch_warnings():
                # pyiceberg warns when an overwrite's delete finds no rows: replacing a table that is
                # new or empty, or a ledger's rows of a run that has none yet. Nothing is lost then.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
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


def branch_head(table: IcebergTable, branch: str = MAIN_BRANCH) -> Snapshot | None:
    return table.metadata.snapshot_by_name(branch)


def staged_snapshot(table: IcebergTable) -> Snapshot | None:
    """The audit branch's head when it is ahead of main: written, not yet current.

    None when the branch is absent or at main, or when main moved since the branch left it (another
    writer): a fast-forward of main to it would then lose that writer's commit."""
    head, main = branch_head(table, AUDIT_BRANCH), table.current_snapshot()
    if head is None or (main is not None and head.snapshot_id == main.snapshot_id):
        return None
    if main is None or any(s.snapshot_id == main.snapshot_id for s in ancestors_of(head, table.metadata)):
        return head
    return None


def start_audit_branch(table: IcebergTable) -> IcebergTable:
    """Point the audit branch at main's current snapshot, so that what is written on it starts from
    what readers see. After a promotion the branch already is there: no commit."""
    main, head = table.current_snapshot(), branch_head(table, AUDIT_BRANCH)
    if main is not None and (head is None or head.snapshot_id != main.snapshot_id):
        table.manage_snapshots().create_branch(main.snapshot_id, AUDIT_BRANCH).commit()
    elif main is None and AUDIT_BRANCH in table.metadata.refs:  # a new table: its first snapshot has no parent
        table.manage_snapshots().remove_branch(AUDIT_BRANCH).commit()
    return table


def promote(table: IcebergTable, snapshot_id: int, attempts: int = 3) -> bool:
    """Make the staged snapshot ``snapshot_id`` current: one commit that fast-forwards main to it.

    The commit requires main to be where it was when the table was loaded, so a concurrent writer
    is never overwritten. False when ``snapshot_id`` is no longer the staged snapshot ahead of main:
    it stays on the audit branch and the next publish replaces the table."""
    for _ in range(attempts):
        staged = staged_snapshot(table)
        if staged is None or staged.snapshot_id != snapshot_id:
            return False
        try:
            table.manage_snapshots().set_current_snapshot(snapshot_id=snapshot_id).commit()
            return True
        except CommitFailedException:
            table = table.refresh()
    return False
