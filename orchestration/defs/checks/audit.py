"""Write-audit-publish, the audit half: the checks read each table's staged snapshot, and those that
pass are made current.

The publish (orchestration/lakehouse/publish.py) writes a checked table's new snapshot on the table's
``audit`` branch, started from main; readers (``shoplake sql``, notebooks, the ML assets, any Iceberg
engine) read main. The quality checks read the staged snapshot through the session opened here, and
then every staged table whose blocking checks all passed, and whose upstream tables' checks all
passed, is made current by a fast-forward of main (one commit per table). A table kept back keeps its
last good snapshot for readers; its staged snapshot stays on the branch for inspection until the next
publish replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
from pyiceberg.table import Table as IcebergTable

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import load_catalog, promote, staged_snapshot, table_or_none
from orchestration.settings import Settings


@dataclass(frozen=True)
class AuditedTable:
    table: IcebergTable
    snapshot_id: int  # the snapshot the checks read: staged when ``staged``, else the current one
    staged: bool


@dataclass(frozen=True)
class Promotion:
    promoted: dict[str, int]  # table -> the snapshot now current
    kept_back: dict[str, str]  # table -> why readers keep its last good snapshot

    def describe(self) -> str:
        text = f"made current after their checks: {len(self.promoted)} tables"
        if self.kept_back:
            text += "; kept back (readers keep the last good snapshot): " + "; ".join(
                f"{table} ({why})" for table, why in sorted(self.kept_back.items())
            )
        return text


def open_session(
    settings: Settings, namespaces: Iterable[str]
) -> tuple[duckdb.DuckDBPyConnection, dict[str, AuditedTable]]:
    """An in-memory DuckDB with one view per table (``prod.fct_orders`` ...) over its staged snapshot,
    or its current one when nothing is staged; and what each view reads."""
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    tables: dict[str, AuditedTable] = {}
    for namespace in namespaces:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
        for ident in catalog.list_tables(namespace):
            ice = table_or_none(catalog, ident)
            if ice is None:
                continue  # dropped since it was listed (a publish replacing it)
            staged = staged_snapshot(ice)
            snapshot = staged or ice.current_snapshot()
            if snapshot is None:
                continue
            location = ice.metadata_location.replace("'", "''")
            con.execute(
                f'CREATE VIEW "{namespace}"."{ident[-1]}" AS '
                f"SELECT * FROM iceberg_scan('{location}', snapshot_from_id={snapshot.snapshot_id})"
            )
            tables[f"{namespace}.{ident[-1]}"] = AuditedTable(ice, snapshot.snapshot_id, staged is not None)
    return con, tables


def model_parents(manifest_path: Path) -> dict[str, set[str]]:
    """dbt model (``schema.table``) -> the models it reads, from dbt's manifest."""
    nodes = json.loads(Path(manifest_path).read_text())["nodes"]
    names = {
        uid: f"{n['schema']}.{n.get('alias') or n['name']}" for uid, n in nodes.items() if n["resource_type"] == "model"
    }
    return {
        names[uid]: {names[p] for p in nodes[uid].get("depends_on", {}).get("nodes", []) if p in names} for uid in names
    }


def promote_passing(
    tables: dict[str, AuditedTable], results: list[dg.AssetCheckResult], parents: dict[str, set[str]]
) -> Promotion:
    """Make current every staged table whose checks in ``results`` all passed and none of whose
    upstream models failed one. A staged table not checked here stays staged."""
    checked: dict[str, list[str]] = {}
    for result in results:
        table = ".".join((result.asset_key.path[0], result.asset_key.path[-1]))
        checked.setdefault(table, [])
        if not result.passed:
            checked[table].append(result.check_name)
    failed = {table for table, names in checked.items() if names}

    def failed_upstream(table: str) -> str | None:
        seen, todo = set(), list(parents.get(table, ()))
        while todo:
            parent = todo.pop()
            if parent in failed:
                return parent
            if parent not in seen:
                seen.add(parent)
                todo.extend(parents.get(parent, ()))
        return None

    promoted, kept_back = {}, {}
    for table, audited in sorted(tables.items()):
        if not audited.staged or table not in checked:
            continue
        upstream = failed_upstream(table)
        if checked[table]:
            kept_back[table] = f"{', '.join(sorted(checked[table]))} failed on snapshot {audited.snapshot_id}"
        elif upstream:
            kept_back[table] = f"upstream {upstream} failed its checks"
        elif promote(audited.table, audited.snapshot_id):
            promoted[table] = audited.snapshot_id
        else:
            kept_back[table] = "its table moved since the publish: the next publish replaces it"
    return Promotion(promoted, kept_back)
