"""The shop's clock: times are integer milliseconds since 1970-01-01 UTC, days are whole days since then.

Integers rather than datetimes because every timestamp is computed in bulk with numpy and written
with millisecond precision, like the source database stores it.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
NEVER = np.int64(np.iinfo(np.int64).max)  # the time of a step a plan never reaches
EPOCH = date(1970, 1, 1)


def to_day(d: date) -> int:
    return (d - EPOCH).days


def to_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


def day_of_year(days: np.ndarray) -> np.ndarray:
    d = np.asarray(days).astype("datetime64[D]")
    return (d - d.astype("datetime64[Y]")).astype(np.int64) + 1
