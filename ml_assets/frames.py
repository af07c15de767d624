"""Input-frame validation shared by every model: reject a malformed frame with a message that
names the problem, instead of a deep traceback from inside a pipeline (or, worse, silent garbage)."""

from __future__ import annotations

import pandas as pd

from ml_assets.errors import MalformedFrame


def validate_frame(frame, numeric: list[str], categorical: list[str] = (), what: str = "model") -> pd.DataFrame:
    """The frame's model columns, numeric ones as float64, in training order."""
    if not isinstance(frame, pd.DataFrame):
        raise MalformedFrame(f"the {what} scores a pandas DataFrame, got {type(frame).__name__}")
    expected = [*numeric, *categorical]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise MalformedFrame(f"the {what} input is missing column(s) {missing}; it needs {expected}")
    if frame.empty:
        raise MalformedFrame(f"the {what} input has no rows")
    out = frame[expected].copy()
    for col in numeric:
        if pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].astype("float64")
        elif not pd.api.types.is_numeric_dtype(out[col]):
            converted = pd.to_numeric(out[col], errors="coerce")
            bad = out[col][converted.isna() & out[col].notna()]
            if len(bad):
                raise MalformedFrame(f"the {what} input column `{col}` must be numeric; found {bad.iloc[0]!r}")
            out[col] = converted
        out[col] = out[col].astype("float64")
    for col in categorical:
        if (
            pd.api.types.is_numeric_dtype(out[col])
            and not pd.api.types.is_bool_dtype(out[col])
            and out[col].notna().any()
        ):
            raise MalformedFrame(f"the {what} input column `{col}` must hold text categories, found numbers")
        out[col] = out[col].astype(object)
    return out
