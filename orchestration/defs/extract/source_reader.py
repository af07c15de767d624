"""Reading the source database into Arrow, typed by the source contract.

connectorx reads MySQL and SQLite straight into Arrow without Python objects per row. Whatever the
driver returns is then cast to the contract's Arrow schema, so a DECIMAL is exact to the cent and a
DATETIME(3) keeps its milliseconds whichever database it came from.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import connectorx as cx
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.contract.database import SourceDatabase, SourceUnavailable
from orchestration.contract.schema import INVALID_VALUES, Column, Table
from orchestration.defs.extract.schema_drift import SchemaDrift

READ_PARALLELISM = 2
_DATE_TYPES = ("DATE", "DATETIME(3)")


def _invalid_date(q: str) -> str:
    # Non-strict MySQL stores '0000-00-00', '1985-00-00' and '2020-05-00 10:00:00': no calendar
    # date, and the driver panics on them. Month or day 0 (or a year-0 date) means "unknown".
    return f"({q} < '0001-01-01' OR MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0)"


def _select_list(db: SourceDatabase, table: Table, columns: list[Column], invalid_values: bool = False) -> str:
    items, originals = [], []
    for c in columns:
        q = db.quote(c.name)
        if db.kind == "mysql" and c.sql_type.upper() in _DATE_TYPES:
            items.append(f"CASE WHEN {_invalid_date(q)} THEN NULL ELSE {q} END AS {q}")
            original = f"CONCAT('\"{c.name}\": \"', CAST({q} AS CHAR), '\"')"
            originals.append(f"CASE WHEN {_invalid_date(q)} THEN {original} END")
        else:
            items.append(q)
    if invalid_values and originals:
        # CONCAT_WS skips NULLs: '{}' when the row is clean, then NULL.
        items.append(f"NULLIF(CONCAT('{{', CONCAT_WS(', ', {', '.join(originals)}), '}}'), '{{}}') AS {INVALID_VALUES}")
    return ", ".join(items)


def _format_ts(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="milliseconds")


def _read(db: SourceDatabase, sql: str | list[str]) -> pa.Table:
    """One read (a list of queries: in parallel, one connection each), bounded by ``db.read_timeout``.

    connectorx has no read timeout of its own: a server that accepts the connection and then stops
    sending would block it for ever. It releases the GIL while it waits, so the read runs on a
    daemon thread and this one gives up at the deadline; the stuck thread holds nothing the run
    needs and ends with the process (or when the dead connection finally errors).
    (connectorx's own partition_on would split reads too, but it holds the GIL while it connects: an
    unresponsive server would then freeze the whole process, Dagster's heartbeats included.)
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = cx.read_sql(db.connectorx_url, sql, return_type="arrow")
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    reader = threading.Thread(target=run, name="shoplake-source-read", daemon=True)
    reader.start()
    reader.join(db.read_timeout)
    if reader.is_alive():
        raise SourceUnavailable(
            f"the source database {db.redacted_url} stopped answering: a read took longer than "
            f"{db.read_timeout:g} s (SHOPLAKE_SOURCE_READ_TIMEOUT). Check the server and the network "
            "(or raise the timeout for very slow reads), then run again: nothing was committed for this table."
        )
    if "error" in outcome:
        raise _read_error(db, outcome["error"]) from outcome["error"]
    result = outcome["result"]
    return result if isinstance(result, pa.Table) else pa.Table.from_batches(result)


TRANSIENT_READ_ERRORS = ("connect", "refused", "timed out", "unable to open", "no such file", "io error", "ioerror")


def _read_error(db: SourceDatabase, exc: BaseException) -> BaseException:
    """connectorx raises plain RuntimeError/ValueError (or a panic) for every failure: sort them."""
    text = str(exc)
    lower = text.lower()
    if any(word in lower for word in ("access denied", "unknown database")):
        return SourceUnavailable(
            f"cannot read from the source database {db.redacted_url}: {text}. "
            "Check the user, password and database name in SHOPLAKE_SOURCE_URL.",
            transient=False,
        )
    if any(word in lower for word in TRANSIENT_READ_ERRORS):
        return SourceUnavailable(
            f"cannot read from the source database {db.redacted_url}: {text}. "
            "Check that it is running and reachable, then run again: nothing was committed."
        )
    return exc


def cast_to_contract(
    data: pa.Table, table: Table, columns: list[Column] | None = None, invalid_values: bool = False
) -> pa.Table:
    """The contract's columns, typed by it; with ``invalid_values``, the INVALID_VALUES column last
    (NULL when the source could not produce it: SQLite, or a table without date columns)."""
    columns = columns or list(table.columns)
    arrays = []
    for c in columns:
        arr = data.column(c.name)
        target = c.arrow_type
        if arr.type != target:
            arr = _cast(arr, target, table.name, c.name)
        arrays.append(arr)
    fields = [pa.field(c.name, c.arrow_type) for c in columns]
    if invalid_values:
        if INVALID_VALUES in data.column_names:
            arrays.append(pc.cast(data.column(INVALID_VALUES), pa.string()))
        else:
            arrays.append(pa.nulls(data.num_rows, pa.string()))
        fields.append(pa.field(INVALID_VALUES, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


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
        raise SchemaDrift(
            f"source column {table_name}.{column} has type {arr.type} that does not convert to {target}: {exc}. "
            "The source schema changed: update orchestration/contract/schema.py or fix the source."
        ) from exc


def read_changed_rows(
    db: SourceDatabase, table: Table, since: dt.datetime | None, chunk_rows: int = 500_000
) -> Iterator[pa.Table]:
    """Every source row with ``updated_at >= since`` (all rows when ``since`` is None), in chunks
    of at most about ``chunk_rows`` rows, so memory stays bounded whatever the table size.

    Few changed rows are read in one query through the updated_at index; many are read in ranges
    of the (integer) primary key, each range one indexed query.
    """
    select = f"SELECT {_select_list(db, table, list(table.columns), invalid_values=True)} FROM {db.quote(table.name)}"
    where = f"{db.quote('updated_at')} >= '{_format_ts(since)}'" if since is not None else "1 = 1"
    pk = table.primary_key[0]
    integer_key = len(table.primary_key) == 1 and pa.types.is_integer(table.column(pk).arrow_type)
    if not integer_key:
        yield cast_to_contract(_read(db, f"{select} WHERE {where}"), table, invalid_values=True)
        return
    bounds = _read(
        db,
        f"SELECT count(*) AS n, coalesce(min({db.quote(pk)}), 0) AS lo, coalesce(max({db.quote(pk)}), 0) AS "
        f"hi FROM {db.quote(table.name)} WHERE {where}",
    )
    n, lo, hi = (bounds.column(c)[0].as_py() for c in ("n", "lo", "hi"))
    if not n:
        return
    if n <= chunk_rows:
        yield cast_to_contract(_read(db, f"{select} WHERE {where}"), table, invalid_values=True)
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
                yield cast_to_contract(chunk, table, invalid_values=True)


def read_keys(db: SourceDatabase, table: Table) -> pa.Table:
    """Only the primary key of every source row: the cheap scan that finds hard deletes."""
    pk_cols = [table.column(k) for k in table.primary_key]
    sql = f"SELECT {_select_list(db, table, pk_cols)} FROM {db.quote(table.name)}"
    return cast_to_contract(_read(db, sql), table, pk_cols)
