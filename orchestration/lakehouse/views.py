"""DuckDB views over Iceberg snapshots: the one way Shoplake's readers see its tables.

``create_snapshot_views`` makes one view per table, each reading the metadata file of the table as
it was loaded: iceberg_scan over it is zero-copy, and the view keeps reading that snapshot however
many commits follow. Each reader opens its tables with its own policy and then calls it:

- dbt's ``raw.<table>`` views (``refresh_raw_views`` below), pinned to the metadata read *before*
  dbt starts, so one build sees one consistent snapshot per table even while an extraction commits;
- the analyst's read-only session (orchestration/query.py ``connect``): every published table of the
  prod, curated and quarantine namespaces, then locked down;
- the ML assets (ml_assets/lakehouse_data.py ``open_tables``): named prod tables, with the snapshot
  ids an MLflow run records as its lineage;
- a staged snapshot waiting for its checks (write-audit-publish) is read through ``snapshot_ids``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
from pyiceberg.table import Table as IcebergTable

from orchestration.contract.schema import INVALID_VALUES, TABLES
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import load_catalog, table_or_none
from orchestration.settings import Settings


@dataclass(frozen=True)
class SnapshotView:
    """A view ``create_snapshot_views`` made: its name, the Iceberg table as loaded, what it reads."""

    name: str  # namespace.table
    table: IcebergTable
    snapshot_id: int | None  # None: the table has no snapshot yet (the view is empty but typed)

    @property
    def folder(self) -> str:
        """The table's own folder (its metadata and data files), as a local path ending in '/'."""
        return self.table.location().removeprefix("file://").rstrip("/") + "/"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def create_snapshot_views(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, IcebergTable],
    *,
    snapshot_ids: Mapping[str, int] | None = None,
    extra_columns: Mapping[str, str] | None = None,
    replace: bool = False,
) -> dict[str, SnapshotView]:
    """One view per entry of ``tables`` (view name ``namespace.table`` -> the Iceberg table as loaded),
    creating the namespaces as schemas; returns what each view reads.

    A view reads the current snapshot of the loaded metadata, or the snapshot ``snapshot_ids`` names
    for it (a staged one, not yet current). A table without a snapshot gives an empty view with the
    table's columns. ``extra_columns`` appends select items after ``*`` (``"NULL AS x, 1 AS y"``).
    ``replace`` re-points views that exist (dbt's database); a fresh session needs no replacing.
    """
    snapshot_ids = snapshot_ids or {}
    extra_columns = extra_columns or {}
    made: dict[str, SnapshotView] = {}
    for name, table in tables.items():
        namespace, _, short = name.rpartition(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(namespace)}")
        location = table.metadata_location.replace("'", "''")
        snapshot_id = snapshot_ids.get(name)
        if snapshot_id is None:
            current = table.current_snapshot()
            snapshot_id = current.snapshot_id if current is not None else None
            scan = f"iceberg_scan('{location}')"
        else:
            scan = f"iceberg_scan('{location}', snapshot_from_id={int(snapshot_id)})"
        extra = extra_columns.get(name)
        con.execute(
            f"CREATE {'OR REPLACE ' if replace else ''}VIEW {_quoted(namespace)}.{_quoted(short)} AS "
            f"SELECT *{', ' + extra if extra else ''} FROM {scan}"
        )
        made[name] = SnapshotView(name, table, snapshot_id)
    return made


class RawLayerMissing(RuntimeError):
    pass


def refresh_raw_views(settings: Settings) -> dict[str, int | None]:
    """(Re)create ``raw.<table>`` views in the transform database; returns each table's snapshot id.

    A raw table extracted while its source table was still empty has no snapshot yet (None): its
    view is empty but typed, since iceberg_scan reads the columns from the table's schema, so
    curated and prod build as empty tables until the first rows arrive.
    """
    catalog = load_catalog(settings)
    raw = {t.name: table_or_none(catalog, f"raw.{t.name}") for t in TABLES}
    missing = [name for name, ice in raw.items() if ice is None]
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        found = {f"raw.{name}": ice for name, ice in raw.items() if ice is not None}
        # A table last written before extraction kept the source text of unreadable values has no
        # _invalid_values column yet (it is added at its next commit): the quarantine rules read it.
        kept = {
            name: f"CAST(NULL AS VARCHAR) AS {INVALID_VALUES}"
            for name, ice in found.items()
            if INVALID_VALUES not in ice.schema().column_names
        }
        views = create_snapshot_views(con, found, extra_columns=kept, replace=True)
        snapshots = {name.removeprefix("raw."): view.snapshot_id for name, view in views.items()}
    finally:
        con.close()
    if missing:
        raise RawLayerMissing(
            f"raw tables {', '.join(missing)} have never been extracted: materialize the raw assets first "
            "(`dg launch --job daily_refresh`, or the raw assets in the UI)"
        )
    return snapshots
