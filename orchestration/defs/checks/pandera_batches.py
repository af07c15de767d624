"""pandera validation of a table of any size in bounded memory.

pandera validates a DataFrame in memory; a 15M-row table read whole takes several GB. Tables larger
than one batch are validated batch by batch, which is exact for every check that looks at one row
at a time (dtypes, ranges, vocabularies, the rules between columns). Uniqueness is the one check
that needs the whole column: it is taken out of the per-batch schema and answered by DuckDB with a
GROUP BY over the table, and its failure cases are reported in pandera's own shape.

For the same reason a large table whose check passed on an earlier snapshot is validated row by row
only in the data files it gained since (orchestration/lakehouse/increments.py); uniqueness is still
answered over the whole table.

A failure case of a row carries the row's key (``key``: its unique columns, e.g. ``order_id=42``), so
the run says which rows failed in the terms users query by, not by a row number of a scan.
"""

from __future__ import annotations

import copy

import duckdb
import pandera.polars as pa
import polars as pl

from orchestration.lakehouse.increments import WHOLE_TABLE, Increment

BATCH_ROWS = 1_000_000


def failure_cases(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    schema: pa.DataFrameModel | pa.DataFrameSchema,
    batch_rows: int = BATCH_ROWS,
    increment: Increment | None = None,
) -> tuple[int, pl.DataFrame | None, str]:
    """(rows validated row by row, pandera's failure cases or None when valid, which rows: the scope).

    With ``increment``, a table larger than one batch is validated row by row in the increment's
    files only (row numbers in failure cases then count within them), and a table with no new file
    is not read at all."""
    if increment is not None and not increment.files:
        return 0, None, increment.describe()  # exactly the files of a snapshot where the check passed
    schema = schema if isinstance(schema, pa.DataFrameSchema) else schema.to_schema()
    key = _unique_groups(schema)[0][1] if _unique_groups(schema) else []
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    if rows <= batch_rows:
        frame = con.execute(f"SELECT * FROM {relation}").pl()
        return rows, _with_keys(_validate(schema, frame), frame, key), WHOLE_TABLE
    per_batch = _without_uniqueness(schema)
    found, offset = [], 0
    source, scope = relation, WHOLE_TABLE
    if increment is not None:
        source, rows, scope = increment.parquet_source(), increment.rows, increment.describe()
    reader = con.execute(f"SELECT * FROM {source}").fetch_record_batch(batch_rows)
    for batch in reader:
        frame = pl.from_arrow(batch)
        cases = _with_keys(_validate(per_batch, frame), frame, key)
        if cases is not None:
            found.append(cases.with_columns(pl.col("index") + offset))
        offset += frame.height
    if found:
        cases = pl.concat(found, how="diagonal_relaxed")
        # A failure of the table as a whole (a dtype, a missing column) shows once, not once per batch.
        found = [
            cases.filter(pl.col("index").is_not_null()),
            cases.filter(pl.col("index").is_null()).unique(maintain_order=True),
        ]
    found.extend(_duplicates(con, relation, schema))
    found = [f for f in found if f.height]
    return rows, (pl.concat(found, how="diagonal_relaxed") if found else None), scope


def _validate(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame | None:
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return errors.failure_cases
    return None


def _with_keys(cases: pl.DataFrame | None, frame: pl.DataFrame, key: list[str]) -> pl.DataFrame | None:
    """``cases`` with the key of each failing row (null for a failure of the table as a whole)."""
    if cases is None or not key or not set(key) <= set(frame.columns):
        return cases
    parts = [pl.format(f"{c}={{}}", pl.col(c)) for c in key]
    labels = frame.select(pl.concat_str(parts, separator=", ", ignore_nulls=True)).to_series().to_list()
    keys = [labels[i] if i is not None and 0 <= i < len(labels) else None for i in cases["index"].to_list()]
    return cases.with_columns(key=pl.Series(keys, dtype=pl.String))


def _unique_groups(schema: pa.DataFrameSchema) -> list[tuple[str, list[str]]]:
    groups = [(name, [name]) for name, column in schema.columns.items() if column.unique]
    if schema.unique:
        groups.append((schema.name or "table", list(schema.unique)))
    return groups


def _without_uniqueness(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    per_batch = schema.update_columns(
        {name: {"unique": False} for name, column in schema.columns.items() if column.unique}
    )
    per_batch = copy.copy(per_batch)
    per_batch.unique = None
    return per_batch


def _duplicates(con: duckdb.DuckDBPyConnection, relation: str, schema: pa.DataFrameSchema) -> list[pl.DataFrame]:
    """One failure case per row whose key (a unique column or the schema's unique columns) repeats."""
    out = []
    for label, columns in _unique_groups(schema):
        keys = ", ".join(f'"{c}"' for c in columns)
        value = (
            f'CAST("{columns[0]}" AS VARCHAR)'
            if len(columns) == 1
            else f"CAST(to_json(struct_pack({keys})) AS VARCHAR)"
        )
        repeated = con.execute(
            f"""
            SELECT {value} AS failure_case FROM (
                SELECT {keys}, count(*) AS n FROM {relation} WHERE {" AND ".join(f'"{c}" IS NOT NULL' for c in columns)}
                GROUP BY ALL HAVING count(*) > 1
            ), range(n)
            """
        ).pl()
        if repeated.height:
            single = len(columns) == 1
            out.append(
                repeated.with_columns(
                    schema_context=pl.lit("Column" if single else "DataFrameSchema"),
                    column=pl.lit(label),
                    check=pl.lit("field_uniqueness" if single else "multiple_fields_uniqueness"),
                    check_number=pl.lit(None, dtype=pl.Int32),
                    index=pl.lit(None, dtype=pl.Int32),
                    key=pl.format(f"{columns[0]}={{}}", pl.col("failure_case")) if single else pl.col("failure_case"),
                )
            )
    return out
