"""Compare the live source table with the contract before anything is read.

A new source column is welcome: it is added to raw by Iceberg schema evolution and everything
downstream keeps working (curated models select their columns by name). A contract column that was
dropped or changed type stops that table's extraction with a message naming table, column and
change, before anything is committed.
"""

from __future__ import annotations

import re
from dataclasses import replace

from orchestration.contract.database import SourceDatabase, SourceUnavailable
from orchestration.contract.schema import Column, Table, sqlite_type

NEW_COLUMN_DOC = "added at the source after the contract was written (schema evolution)"


class SchemaDrift(RuntimeError):
    """A contract column is gone or changed type at the source."""


def live_columns(db: SourceDatabase, table: Table) -> dict[str, str]:
    """Column name -> declared type, in source order."""
    con = db.connect()
    try:
        cur = con.cursor()
        if db.kind == "sqlite":
            cur.execute(f'PRAGMA table_info("{table.name}")')
            cols = {row[1]: (row[2] or "TEXT").upper() for row in cur.fetchall()}
        else:
            cur.execute(
                "SELECT column_name, column_type FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position",
                (table.name,),
            )
            cols = {row[0]: row[1].upper() for row in cur.fetchall()}
    except Exception as exc:
        if db.kind == "sqlite":
            raise
        # pymysql's read timeout or a lost connection: the server stopped answering
        raise SourceUnavailable(
            f"the source database {db.redacted_url} did not answer while reading the columns of {table.name}: "
            f"{exc}. Check that the server is running and reachable, then run again: nothing was committed."
        ) from exc
    finally:
        con.close()
    if not cols:
        raise SchemaDrift(
            f"source table {table.name} does not exist in {db.redacted_url}: create it from "
            "orchestration/contract/schema.sql (or run `shoplake generate` for the demo shop)"
        )
    return cols


def _mysql_normalize(column_type: str) -> str:
    t = column_type.upper().replace(" UNSIGNED", "")
    if t == "LONGTEXT":  # MariaDB reports JSON columns as LONGTEXT
        return "TEXT"
    if re.fullmatch(r"(BIG|SMALL|MEDIUM)?INT\(\d+\)", t):
        t = t.split("(")[0]
    if t.startswith(("VARCHAR", "CHAR")) or t in ("TEXT", "MEDIUMTEXT", "TINYTEXT", "JSON"):
        return "TEXT"
    return t


def _same_type(db: SourceDatabase, contract: Column, declared: str) -> bool:
    if db.kind == "sqlite":
        return sqlite_type(contract) == declared
    mine, theirs = _mysql_normalize(contract.sql_type), _mysql_normalize(declared)
    return mine == theirs or {mine, theirs} <= {"INT", "MEDIUMINT"}


def _new_column(db: SourceDatabase, name: str, declared: str) -> Column:
    t = declared.upper() if db.kind == "mysql" else declared
    if db.kind == "sqlite":
        sql_type = {
            "INTEGER": "BIGINT",
            "REAL": "DOUBLE",
            "BOOLEAN": "TINYINT(1)",
            "DATETIME": "DATETIME(3)",
            "DATE": "DATE",
        }.get(t, "TEXT")
    else:
        base = _mysql_normalize(t)
        if base in ("BIGINT", "INT", "SMALLINT", "MEDIUMINT", "TINYINT(1)", "DATE"):
            sql_type = {"MEDIUMINT": "INT"}.get(base, base)
        elif base.startswith("DECIMAL"):
            sql_type = base.replace(" ", "")
        elif base.startswith(("DATETIME", "TIMESTAMP")):
            sql_type = "DATETIME(3)"
        elif base in ("DOUBLE", "FLOAT"):
            sql_type = "DOUBLE"
        else:
            sql_type = "TEXT"
    return Column(name=name, sql_type=sql_type, nullable=True, doc=NEW_COLUMN_DOC)


def effective_table(db: SourceDatabase, table: Table) -> Table:
    """The contract plus any new source columns; raises SchemaDrift on a dropped or retyped column."""
    live = live_columns(db, table)
    problems = []
    for col in table.columns:
        if col.name not in live:
            problems.append(f"column {col.name} ({col.sql_type}) was dropped")
        elif not _same_type(db, col, live[col.name]):
            problems.append(f"column {col.name} changed type from {col.sql_type} to {live[col.name]}")
    if problems:
        raise SchemaDrift(
            f"source table {table.name}: {'; '.join(problems)}. Nothing was extracted or committed for "
            f"{table.name}. Restore the column at the source, or change the contract in "
            "orchestration/contract/schema.py and the dbt models that use it."
        )
    extra = [_new_column(db, name, declared) for name, declared in live.items() if name not in table.column_names]
    return replace(table, columns=table.columns + tuple(extra)) if extra else table
