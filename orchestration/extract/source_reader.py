"""Reading the source database into Arrow, typed by the source contract.

connectorx reads MySQL and SQLite straight into Arrow without Python objects per row. Whatever the
driver returns is then cast to the contract's Arrow schema, so a DECIMAL is exact to the cent and a
DATETIME(3) keeps its milliseconds whichever database it came from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import connectorx as cx
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.source.database import SourceDatabase, SourceUnavailable
from orchestration.source.schema import Column, Table


READ_PARALLELISM = 2


def _select_list(db: SourceDatabase, table: Table, columns: list[Column]) -> str:
    items = []
    for c in columns:
        q = db.quote(c.name)
        if db.kind == "mysql" and c.sql_type.upper() in ("DATE", "DATETIME(3)"):
            # Legacy MySQL rows may hold the zero date, which no date type can represent (and which
            # makes the driver panic): it means "unknown", so it is read as NULL.
            items.append(f"CASE WHEN {q} < '0001-01-01' THEN NULL ELSE {q} END AS {q}")
        else:
            items.append(q)
    return ", ".join(items)


def _format_ts(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="milliseconds")


def _read(db: SourceDatabase, sql: str | list[str]) -> pa.Table:
    # A list of queries is read in parallel, one connection each. (connectorx's own partition_on
    # would do the splitting too, but it holds the GIL while it connects: an unresponsive server
    # would then freeze the whole process, Dagster's heartbeats included.)
    try:
        result = cx.read_sql(db.connectorx_url, sql, return_type="arrow")
    except Exception as exc:  # connectorx raises plain RuntimeError/ValueError for every failure
        text = str(exc)
        if any(word in text.lower() for word in ("connect", "refused", "timed out", "access denied", "unable to open", "no such file")):
            raise SourceUnavailable(
                f"cannot read from the source database {db.redacted_url}: {text}. "
                "Check that it is running and reachable, then run again: nothing was committed."
            ) from exc
        raise
    return result if isinstance(result, pa.Table) else pa.Table.from_batches(result)


def cast_to_contract(data: pa.Table, table: Table, columns: list[Column] | None = None) -> pa.Table:
    columns = columns or list(table.columns)
    arrays = []
    for c in columns:
        arr = data.column(c.name)
        target = c.arrow_type
        if arr.type != target:
            arr = _cast(arr, target, table.name, c.name)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(c.name, c.arrow_type) for c in columns]))


def _cast(arr: pa.ChunkedArray, target: pa.DataType, table_name: str, column: str) -> pa.ChunkedArray:
    try:
        if pa.types.is_decimal(target) and pa.types.is_floating(arr.type):
            arr = pc.cast(arr, pa.string())
        if pa.types.is_boolean(target) and pa.types.is_integer(arr.type):
            return pc.not_equal(arr, 0)
        if pa.types.is_timestamp(target) and pa.types.is_string(arr.type):
            return pc.cast(arr, target)
        return pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TypeError(
            f"source column {table_name}.{column} has type {arr.type} that does not convert to {target}: {exc}. "
            "The source schema changed: update orchestration/source/schema.py or fix the source."
        ) from exc


def read_changed_rows(
    db: SourceDatabase, table: Table, since: dt.datetime | None, chunk_rows: int = 500_000
) -> Iterator[pa.Table]:
    """Every source row with ``updated_at >= since`` (all rows when ``since`` is None), in chunks
    of at most about ``chunk_rows`` rows, so memory stays bounded whatever the table size.

    Few changed rows are read in one query through the updated_at index; many are read in ranges
    of the (integer) primary key, each range one indexed query.
    """
    select = f"SELECT {_select_list(db, table, list(table.columns))} FROM {db.quote(table.name)}"
    where = f"{db.quote('updated_at')} >= '{_format_ts(since)}'" if since is not None else "1 = 1"
    pk = table.primary_key[0]
    integer_key = len(table.primary_key) == 1 and pa.types.is_integer(table.column(pk).arrow_type)
    if not integer_key:
        yield cast_to_contract(_read(db, f"{select} WHERE {where}"), table)
        return
    bounds = _read(db, f"SELECT count(*) AS n, coalesce(min({db.quote(pk)}), 0) AS lo, coalesce(max({db.quote(pk)}), 0) AS hi FROM {db.quote(table.name)} WHERE {where}")
    n, lo, hi = (bounds.column(c)[0].as_py() for c in ("n", "lo", "hi"))
    if not n:
        return
    if n <= chunk_rows:
        yield cast_to_contract(_read(db, f"{select} WHERE {where}"), table)
        return
    step = max(1, int((hi - lo + 1) * chunk_rows / n))
    # SQLite is one file: no gain from parallel reads. MySQL reads each chunk as parallel sub-ranges.
    parts = READ_PARALLELISM if db.kind == "mysql" and step >= READ_PARALLELISM else 1

    def chunk_queries(start: int) -> list[str]:
        sub = -(-step // parts)
        return [
            f"{select} WHERE {where} AND {db.quote(pk)} BETWEEN {a} AND {min(a + sub, start + step) - 1}"
            for a in range(start, start + step, sub)
        ]

    queries = [chunk_queries(start) for start in range(lo, hi + 1, step)]
    # Read the next chunk while the caller processes this one (connectorx releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        pending = prefetch.submit(_read, db, queries[0])
        for following in [*queries[1:], None]:
            chunk = pending.result()
            if following is not None:
                pending = prefetch.submit(_read, db, following)
            if chunk.num_rows:
                yield cast_to_contract(chunk, table)


def read_keys(db: SourceDatabase, table: Table) -> pa.Table:
    """Only the primary key of every source row: the cheap scan that finds hard deletes."""
    pk_cols = [table.column(k) for k in table.primary_key]
    sql = f"SELECT {_select_list(db, table, pk_cols)} FROM {db.quote(table.name)}"
    return cast_to_contract(_read(db, sql), table, pk_cols)
