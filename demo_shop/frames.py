"""Frames: a dict of equally long numpy arrays, the engine's table type.

Plain dicts rather than a dataframe library because the engine only ever slices, concatenates and
indexes whole columns, and numpy does that with no conversion cost; Parquet is how they persist.
Also the two sorted-key helpers the engine's group-by-without-a-loop code is built on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def empty(columns: dict) -> dict:
    """A frame with no rows, from {column: numpy dtype}."""
    return {k: np.zeros(0, dtype=t) for k, t in columns.items()}


def flen(f: dict) -> int:
    return len(next(iter(f.values()))) if f else 0


def take(f: dict, idx) -> dict:
    return {k: v[idx] for k, v in f.items()}


def concat(*frames: dict) -> dict:
    frames = [f for f in frames if f]
    if not frames:
        return {}
    return {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}


def save(f: dict, path: Path) -> None:
    arrays, names = [], []
    for k, v in f.items():
        names.append(k)
        arrays.append(pa.array(v.tolist(), type=pa.string()) if v.dtype == object else pa.array(v))
    pq.write_table(pa.table(arrays, names=names) if names else pa.table({}), path)


def load(path: Path) -> dict:
    t = pq.read_table(path)
    out = {}
    for name, col in zip(t.column_names, t.columns):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out[name] = np.array(col.to_pylist(), dtype=object)
        else:
            out[name] = col.to_numpy()
    return out


def group_starts(keys: np.ndarray) -> np.ndarray:
    """For sorted keys: True at the first row of each run of equal keys."""
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return first


def rank_in_group(keys: np.ndarray) -> np.ndarray:
    """For sorted keys: 0, 1, 2 ... within each run of equal keys."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(group_starts(keys))
    lengths = np.diff(np.append(starts, n))
    return np.arange(n) - np.repeat(starts, lengths)
