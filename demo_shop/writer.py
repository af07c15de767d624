"""Writing a run to the source database, SQLite or MySQL, with progress bars.

A generate is a bulk load (no durability until the end, secondary indexes rebuilt after the
inserts); a simulate is one ordinary transaction of deletes, inserts and updates, like a shop's.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from orchestration.contract import schema
from orchestration.contract.database import SourceDatabase, _python_rows

INSERT_CHUNK = 100_000
# children before parents, as a shop deletes them
DELETE_ORDER = (
    "returns",
    "shipments",
    "payments",
    "order_items",
    "orders",
    "support_tickets",
    "web_events",
    "customers",
)


def connect(db: SourceDatabase, bulk: bool):
    con = db.connect(create=True)
    if db.kind == "sqlite":
        con.execute("PRAGMA synchronous=OFF" if bulk else "PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA cache_size=-262144")
    return con


def insert_all(
    db: SourceDatabase, con, inserts: dict[str, list[pa.Table]], progress: bool, commit_each: bool
) -> dict[str, int]:
    counts = {}
    for t in schema.TABLES:
        parts = inserts.get(t.name)
        if not parts:
            continue
        data = pa.concat_tables(parts)
        n = data.num_rows
        with tqdm(
            total=n, desc=f"{t.name:>16}", unit=" rows", disable=not progress, leave=True, dynamic_ncols=True
        ) as bar:
            for off in range(0, n, INSERT_CHUNK):
                chunk = data.slice(off, INSERT_CHUNK)
                db.insert(con, t.name, chunk, batch_rows=INSERT_CHUNK if db.kind == "sqlite" else 5_000)
                bar.update(chunk.num_rows)
        if commit_each:
            con.commit()
        counts[t.name] = n
    return counts


def update_all(db: SourceDatabase, con, updates: dict[str, list[pa.Table]], progress: bool) -> dict[str, int]:
    counts = {}
    for t in schema.TABLES:
        parts = updates.get(t.name)
        if not parts:
            continue
        data = pa.concat_tables(parts)
        pk = list(t.primary_key)
        sets = [c for c in data.column_names if c not in pk]
        data = data.select(sets + pk)
        ph = db.placeholder()
        sql = (
            f"UPDATE {db.quote(t.name)} SET {', '.join(f'{db.quote(c)} = {ph}' for c in sets)} "
            f"WHERE {' AND '.join(f'{db.quote(k)} = {ph}' for k in pk)}"
        )
        cur = con.cursor()
        with tqdm(
            total=data.num_rows,
            desc=f"{t.name:>16}",
            unit=" updates",
            disable=not progress,
            leave=True,
            dynamic_ncols=True,
        ) as bar:
            for batch in data.to_batches(max_chunksize=20_000):
                cur.executemany(sql, list(_python_rows(batch)))
                bar.update(batch.num_rows)
        counts[t.name] = data.num_rows
    return counts


def delete_keys(db: SourceDatabase, con, table: str, keys: np.ndarray) -> int:
    t = schema.table(table)
    (pk,) = t.primary_key
    cur = con.cursor()
    keys = np.unique(np.asarray(keys, dtype=np.int64))
    for off in range(0, len(keys), 1000):
        chunk = keys[off : off + 1000].tolist()
        cur.execute(
            f"DELETE FROM {db.quote(table)} WHERE {db.quote(pk)} IN ({', '.join([db.placeholder()] * len(chunk))})",
            chunk,
        )
    return len(keys)


def select_keys(db: SourceDatabase, con, table: str, column: str, values: np.ndarray) -> np.ndarray:
    """Primary keys of the rows whose ``column`` is one of ``values``."""
    t = schema.table(table)
    (pk,) = t.primary_key
    cur = con.cursor()
    out = []
    values = np.unique(np.asarray(values, dtype=np.int64))
    for off in range(0, len(values), 1000):
        chunk = values[off : off + 1000].tolist()
        cur.execute(
            f"SELECT {db.quote(pk)} FROM {db.quote(table)} WHERE {db.quote(column)} IN "
            f"({', '.join([db.placeholder()] * len(chunk))})",
            chunk,
        )
        out.extend(r[0] for r in cur.fetchall())
    return np.array(sorted(out), dtype=np.int64)


def bulk_load(db: SourceDatabase, inserts: dict[str, list[pa.Table]], progress: bool) -> dict[str, int]:
    """Recreate the schema and insert everything: a bulk load is faster without the secondary
    indexes (SQLite), so they are dropped first and rebuilt at the end."""
    db.create_schema(drop_existing=True)
    con = connect(db, bulk=True)
    try:
        indexes = (
            [stmt for stmt in schema.sqlite_ddl() if stmt.startswith("CREATE INDEX")] if db.kind == "sqlite" else []
        )
        for stmt in indexes:
            con.execute("DROP INDEX IF EXISTS " + stmt.split("EXISTS", 1)[1].split(" ON ", 1)[0].strip())
        written = insert_all(db, con, inserts, progress, commit_each=True)
        for stmt in indexes:
            con.execute(stmt)
        con.commit()
    finally:
        con.close()
    return written


def delete_all(db: SourceDatabase, con, deleted: dict[str, np.ndarray]) -> dict[str, int]:
    """Delete rows by primary key, table by table in DELETE_ORDER; returns the rows deleted per table."""
    counts = {}
    for table in DELETE_ORDER:
        keys = deleted.get(table, np.zeros(0, np.int64))
        if len(keys):
            counts[table] = delete_keys(db, con, table, keys)
    return counts
