"""Card data protection applied to every batch before it is written anywhere.

The card-number column is replaced by BIN, last four digits and a keyed token; card numbers typed
into any text column are masked (orchestration/lakehouse/pii.py says how they are recognised). A
cheap vectorised pre-filter keeps the per-value Python work to the few strings holding 13 digits
close together.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from orchestration.contract.schema import Table
from orchestration.lakehouse.pii import (
    CANDIDATE_PREFILTER,
    CANDIDATE_PREFILTER_UNICODE,
    MIN_CARD_CHARS,
    NEEDS_UNICODE_PREFILTER,
    keyed_token,
    mask_card_numbers,
)

_MASK = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shoplake-mask")

CARD_COLUMNS = (
    pa.field("card_bin", pa.string()),
    pa.field("card_last4", pa.string()),
    pa.field("card_token", pa.string()),
)


def protected_schema(table: Table) -> pa.Schema:
    """The Arrow schema of a source table once protected: card columns swapped for safe ones."""
    fields = []
    for col in table.columns:
        if col.card_number:
            fields.extend(CARD_COLUMNS)
        else:
            fields.append(pa.field(col.name, col.arrow_type))
    return pa.schema(fields)


def protect(table: Table, data: pa.Table, key: str) -> tuple[pa.Table, int]:
    """Returns the protected batch and how many card numbers were masked in free text."""
    masked = 0
    columns, fields = [], []
    for col in table.columns:
        values = data.column(col.name)
        if col.card_number:
            digits = [None if v is None else "".join(ch for ch in v if ch.isdigit()) for v in values.to_pylist()]
            columns += [
                pa.array([d[:6] if d else None for d in digits], pa.string()),
                pa.array([d[-4:] if d else None for d in digits], pa.string()),
                pa.array([keyed_token(d, key) if d else None for d in digits], pa.string()),
            ]
            fields.extend(CARD_COLUMNS)
            continue
        columns.append(_MASK.submit(_mask_text_column, values) if col.is_text and data.num_rows else values)
        fields.append(pa.field(col.name, col.arrow_type))
    # Text columns are scanned in parallel (Arrow's regex kernels release the GIL).
    resolved = []
    for c in columns:
        if isinstance(c, Future):
            c, n = c.result()
            masked += n
        resolved.append(c)
    return pa.Table.from_arrays(resolved, schema=pa.schema(fields)), masked


def _mask_text_column(values: pa.ChunkedArray) -> tuple[pa.ChunkedArray, int]:
    longest = pc.max(pc.utf8_length(values)).as_py()
    if longest is None or longest < MIN_CARD_CHARS:  # codes, enums, countries: too short to hold a card number
        return values, 0
    rows = candidate_rows(values)
    if not rows:
        return values, 0
    python_values = values.to_pylist()
    total = 0
    for i in rows:
        python_values[i], n = mask_card_numbers(python_values[i])
        total += n
    return pa.chunked_array([pa.array(python_values, pa.string())]), total


def candidate_rows(values: pa.ChunkedArray) -> list[int]:
    """Positions of the values the pre-filters pass: the ASCII pattern over every value, the
    13-numeric-characters one only over values with a character NFKC may turn into a digit."""
    ascii_hits = pc.fill_null(pc.match_substring_regex(values, CANDIDATE_PREFILTER), False)
    rows = set(pc.indices_nonzero(ascii_hits).to_pylist()) if pc.any(ascii_hits).as_py() else set()
    non_ascii = pc.indices_nonzero(pc.fill_null(pc.invert(pc.string_is_ascii(values)), False))
    if len(non_ascii):
        subset = pc.take(values, non_ascii)
        unusual = pc.fill_null(pc.match_substring_regex(subset, NEEDS_UNICODE_PREFILTER), False)
        unicode_hits = pc.and_(
            unusual, pc.fill_null(pc.match_substring_regex(subset, CANDIDATE_PREFILTER_UNICODE), False)
        )
        rows.update(pc.filter(non_ascii, unicode_hits).to_pylist())
    return sorted(rows)
