"""The card-number leak scanner: every string column of an Iceberg table, free text included.

DuckDB's RE2 pre-filter finds the few values with a long digit run; only those go through the
Luhn and issuer-range test in Python, so a scan of millions of rows takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from pyiceberg.table import Table as IcebergTable

from orchestration.lakehouse.increments import WHOLE_TABLE, Increment, files_since
from orchestration.lakehouse.pii import CANDIDATE_PREFILTER, MIN_CARD_CHARS, TEST_CARD_NUMBERS, find_card_numbers

MAX_SAMPLES = 20


@dataclass
class ScanResult:
    table: str
    rows: int = 0
    string_columns: list[str] = field(default_factory=list)
    candidates: int = 0
    leaks: int = 0
    samples: list[str] = field(default_factory=list)  # "column: 453914******6467", never the full number
    scope: str = WHOLE_TABLE

    @property
    def passed(self) -> bool:
        return self.leaks == 0

    def as_metadata(self) -> dict:
        return {
            "rows_scanned": self.rows,
            "string_columns_scanned": len(self.string_columns),
            "digit_runs_inspected": self.candidates,
            "card_numbers_found": self.leaks,
            "samples": ", ".join(self.samples) or "none",
            "scope": self.scope,
        }


def scan_iceberg_table(con: duckdb.DuckDBPyConnection, name: str, table: IcebergTable, since: int | None = None) -> ScanResult:
    """Scan the table's current snapshot; only the files added since snapshot ``since`` when the
    scan passed there (orchestration/lakehouse/increments.py)."""
    if table.current_snapshot() is None:
        return ScanResult(table=name)
    arrow_schema = table.schema().as_arrow()
    string_columns = [f.name for f in arrow_schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return scan_relation(con, name, f"iceberg_scan('{table.metadata_location}')", string_columns, files_since(table, since))


def scan_published_table(con: duckdb.DuckDBPyConnection, name: str, increment: Increment | None = None) -> ScanResult:
    """Scan a table of a query session (orchestration.query.connect), e.g. ``prod.fct_orders``;
    only ``increment``'s files when given."""
    schema, table = name.split(".", 1)
    string_columns = [
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? AND data_type = 'VARCHAR' ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    ]
    return scan_relation(con, name, f'"{schema}"."{table}"', string_columns, increment)


def scan_relation(
    con: duckdb.DuckDBPyConnection, name: str, source: str, string_columns: list[str], increment: Increment | None = None
) -> ScanResult:
    """Every value of ``string_columns`` of the relation ``source`` (or of ``increment``'s files)
    with a long digit run, Luhn-tested."""
    result = ScanResult(table=name, string_columns=list(string_columns))
    if increment is not None:
        result.scope = increment.describe()
        if not increment.files:
            return result
        source = increment.parquet_source()
    result.rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    if not result.string_columns:
        return result
    union = " UNION ALL ".join(
        f"SELECT '{c}' AS col, \"{c}\" AS val FROM {source} "
        f"WHERE length(\"{c}\") >= {MIN_CARD_CHARS} AND regexp_matches(\"{c}\", '{CANDIDATE_PREFILTER}')"
        for c in result.string_columns
    )
    for column, value in con.execute(union).fetchall():
        result.candidates += 1
        for digits in find_card_numbers(value, allowlist=TEST_CARD_NUMBERS):
            result.leaks += 1
            if len(result.samples) < MAX_SAMPLES:
                result.samples.append(f"{column}: {digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}")
    return result
