"""Read-only SQL over the published Iceberg tables: what analysts, notebooks and tests query.

Each query session pins every table to the snapshot current when it opened, so an answer never
mixes two runs, and nothing here ever opens the pipeline's DuckDB file.

A session is read-only by construction. Once its views exist, DuckDB's own settings close it:
``enable_external_access=false`` (no ATTACH of a file, no INSTALL or LOAD, no reading any file by
path), ``allowed_directories`` reopening only the published tables' own folders (their Iceberg
metadata and data files: not the raw layer, not anything else on the machine), extension auto-install
and community extensions off, then ``lock_configuration=true`` so no SET can undo any of it. DuckDB
still lets a statement *write* inside an allowed folder (``COPY ... TO`` a published data file
overwrote it), so the session also runs only what DuckDB's own parser calls a SELECT or an
EXPLAIN: every other statement is refused before it runs. Results leave through Python
(``shoplake sql --output``), never through SQL.
"""

from __future__ import annotations

import re
import time

import duckdb
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table as IcebergTable

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import NAMESPACES, load_catalog
from orchestration.lakehouse.views import create_snapshot_views
from orchestration.settings import Settings

DEFAULT_NAMESPACES = ("prod", "curated", "quarantine")


READABLE_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})  # DESCRIBE, SHOW, SUMMARIZE and FROM-first parse as SELECT
# What a result can be read with; nothing that writes (a relation's to_parquet, register, cursor).
_RESULT_METHODS = frozenset(
    {
        "fetchall",
        "fetchone",
        "fetchmany",
        "fetchdf",
        "df",
        "pl",
        "arrow",
        "fetch_arrow_table",
        "fetch_record_batch",
        "fetchnumpy",
        "fetch_df",
        "description",
        "rowcount",
        "close",
        "interrupt",
        "extract_statements",
    }
)
_LOCKDOWN = (
    "enable_external_access = false",
    "autoinstall_known_extensions = false",
    "autoload_known_extensions = false",
    "allow_community_extensions = false",
    "lock_configuration = true",
)


class UnknownTable(LookupError):
    pass


class NotAllowed(Exception):
    """A statement a read-only session refuses: the message is one line naming it."""


class ReadOnlySession:
    """A DuckDB session over the published tables that can only read them (see the module docstring).

    ``execute``/``sql``/``query`` run SELECT and EXPLAIN statements and return the session, whose
    fetch methods (``fetchall``, ``df``, ``pl``, ``fetch_arrow_table``, ...) read the result."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def execute(self, sql: str, parameters=None) -> ReadOnlySession:
        statements = self._con.extract_statements(sql)
        for statement in statements:
            kind = statement.type.name
            if kind not in READABLE_STATEMENTS:
                raise NotAllowed(refusal(kind, sql))
        try:
            if parameters is None:
                self._con.execute(sql)
            else:
                self._con.execute(sql, parameters)
        except duckdb.PermissionException as exc:
            path = re.search(r'"([^"]*)"', str(exc))
            what = f"reading {path.group(1)}" if path else str(exc).splitlines()[0]
            raise NotAllowed(
                f"{what} is not allowed: Shoplake SQL reads only the published prod, curated and "
                "quarantine tables (shoplake tables lists them)"
            ) from None
        return self

    sql = query = execute

    def __getattr__(self, name: str):
        if name in _RESULT_METHODS:
            return getattr(self._con, name)
        raise AttributeError(f"a read-only Shoplake SQL session has no {name!r}: run queries with execute() or sql()")

    def __enter__(self) -> ReadOnlySession:
        return self

    def __exit__(self, *exc) -> None:
        self._con.close()


def refusal(kind: str, sql: str) -> str:
    """The one line a refused statement gets."""
    verb = {
        "LOAD": sql.strip().split(None, 1)[0].upper() if sql.strip() else "LOAD",
        "CALL": "CALL/CHECKPOINT",
        "SET": "SET/RESET/USE",
        "TRANSACTION": "BEGIN/COMMIT",
        "VACUUM": "VACUUM/ANALYZE",
    }.get(kind, kind)
    hint = " (to save a result, use shoplake sql --output FILE)" if kind in ("COPY", "EXPORT") else ""
    return f"{verb} is not allowed: Shoplake SQL is read-only, only SELECT queries over the published tables run{hint}"


def connect(
    settings: Settings, namespaces: tuple[str, ...] = DEFAULT_NAMESPACES, tables: dict[str, IcebergTable] | None = None
) -> ReadOnlySession:
    """A read-only session with one view per published table: ``prod.fct_orders`` and so on.

    ``tables``, when given, receives each view's Iceberg table at the snapshot the view reads."""
    catalog = load_catalog(settings)
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    published: dict[str, IcebergTable] = {}
    for ns in namespaces:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ns}")
        for ident in catalog.list_tables(ns):
            ice = _published(catalog, ident)
            if ice is not None:
                published[f"{ns}.{ident[-1]}"] = ice
    views = create_snapshot_views(con, published)
    if tables is not None:
        tables.update(published)
    folders = [view.folder for view in views.values()]
    if folders:
        con.execute("SET allowed_directories = [" + ", ".join("'" + f.replace("'", "''") + "'" for f in folders) + "]")
    for setting in _LOCKDOWN:
        con.execute(f"SET {setting}")
    return ReadOnlySession(con)


def _published(catalog, ident, attempts: int = 50) -> IcebergTable | None:
    """The table at its current snapshot. A table whose columns changed is replaced
    (dropped, created, written) by the publishing run: for that moment it is missing or empty, so
    wait for it rather than fail (a table that was never written stays absent)."""
    for attempt in range(attempts):
        try:
            ice = catalog.load_table(ident)
            if ice.current_snapshot() is not None:
                return ice
            if attempt == 0 and not _being_replaced(ice):
                return None
        except NoSuchTableError:
            pass
        time.sleep(0.1)
    return None


def _being_replaced(ice) -> bool:
    # Created within the last minute and still without data: the publisher is about to write it.
    # A table with snapshots but none current was written and waits for its checks (write-audit-
    # publish, orchestration/defs/checks/audit.py): not published yet, however long they take.
    return not ice.metadata.snapshots and time.time() * 1000 - ice.metadata.last_updated_ms < 60_000


def published_tables(con: ReadOnlySession) -> list[str]:
    rows = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        f"WHERE table_schema IN ({', '.join(repr(n) for n in NAMESPACES)}) ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def run_query(con: ReadOnlySession, sql: str):
    """Execute ``sql``; an unknown table or bad SQL becomes an error that lists what exists."""
    try:
        return con.execute(sql)
    except duckdb.CatalogException as exc:
        tables = published_tables(con)
        listing = ", ".join(tables) if tables else "none yet: materialize the pipeline first (make demo)"
        raise UnknownTable(f"{str(exc).splitlines()[0]}\nTables you can query: {listing}") from exc
