"""Arrow columns and tables in the source contract's types (orchestration/contract/schema.py).

Rows are built column-wise from numpy without a Python loop: money is exact DECIMAL from integer
minor units, enumerations stay dictionary-encoded until the database write decodes them, and
NULL is a mask, so the engine never needs None inside a numeric array.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from orchestration.contract import schema


def timestamps(ms: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    ms = np.asarray(ms, dtype=np.int64)
    if valid is not None and not valid.all():
        return pa.array(np.where(valid, ms, 0), type=pa.timestamp("ms"), mask=~valid)
    return pa.array(ms, type=pa.timestamp("ms"))


def decimals(unscaled: np.ndarray, precision: int = 12, scale: int = 2) -> pa.Array:
    """Exact DECIMAL from integer minor units (cents, or 1e-8 for rates): no float rounding."""
    v = np.asarray(unscaled, dtype=np.int64)
    buf = np.empty(2 * len(v), dtype=np.int64)
    buf[0::2] = v
    buf[1::2] = np.where(v < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(v), [None, pa.py_buffer(buf.tobytes())])


def ints(values: np.ndarray, type_: pa.DataType = pa.int64(), null: int | None = None) -> pa.Array:
    """Integers, with ``null`` (a value no real row has, like -1) as NULL."""
    values = np.asarray(values)
    if null is not None:
        mask = values == null
        if mask.any():
            return pa.array(np.where(mask, 0, values), type=type_, mask=mask)
    return pa.array(values, type=type_)


def labels(codes: np.ndarray, names: tuple[str, ...] | list[str], null: int | None = None) -> pa.Array:
    """Strings from small integer codes, dictionary-encoded (decoded row by row only when written)."""
    codes = np.asarray(codes, dtype=np.int32)
    mask = None
    if null is not None and (codes == null).any():
        mask = codes == null
        codes = np.where(mask, 0, codes)
    return pa.DictionaryArray.from_arrays(
        pa.array(codes, type=pa.int32(), mask=mask), pa.array(list(names), type=pa.string())
    )


def strings(values, type_: pa.DataType = pa.string()) -> pa.Array:
    return pa.array(values if not isinstance(values, np.ndarray) else values.tolist(), type=type_)


def source_table(name: str, columns: dict) -> pa.Table:
    """An Arrow table with exactly the source table's columns and contract types."""
    return source_columns(name, {c: columns[c] for c in schema.table(name).column_names})


def source_columns(name: str, columns: dict) -> pa.Table:
    """Some of a source table's columns (an UPDATE's), cast to the contract's types;
    dictionary-encoded text stays encoded (same values)."""
    t = schema.table(name)
    fields, arrays = [], []
    for c, a in columns.items():
        target = t.column(c).arrow_type
        if pa.types.is_dictionary(a.type) and a.type.value_type == target:
            fields.append(pa.field(c, a.type))
        else:
            a = a.cast(target) if a.type != target else a
            fields.append(pa.field(c, target))
        arrays.append(a)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
