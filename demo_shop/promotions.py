"""Promotions: the calendar's site-wide sales and the category flash sales between them.

Planned PROMO_HORIZON_DAYS ahead, as a real shop does, so each promotion row reaches the source
weeks before it starts and every run's purchase intensity already knows the promotions of its days.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.clock import DAY_MS, HOUR_MS, day_of_year, to_date, to_day
from demo_shop.columns import decimals, ints, source_table, strings, timestamps
from demo_shop.frames import concat, flen
from demo_shop.intensity import DEMO_SHAPE, Shape
from demo_shop.reference_data import CATEGORIES, C

if TYPE_CHECKING:
    from demo_shop.engine import Run

PROMO_HORIZON_DAYS = 45  # promotions are planned (inserted) this long before they start


def add_promotions(run: Run) -> None:
    """Plan the promotions that start up to PROMO_HORIZON_DAYS after the run's last day."""
    st, rng = run.state, run.rng["promotions"]
    lo = st.meta["promo_horizon_day"] + 1
    hi = run.first_day + run.n - 1 + PROMO_HORIZON_DAYS
    new = plan_promotions(st.promotions, lo, hi, rng, run.shape)
    st.meta["promo_horizon_day"] = hi
    k = flen(new)
    if not k:
        return
    new["promotion_id"] = st.take_ids("promotions", k)
    st.promotions = concat(st.promotions, new)
    run.out.insert(
        "promotions",
        source_table(
            "promotions",
            {
                "promotion_id": ints(new["promotion_id"], pa.int32()),
                "promo_code": strings(new["code"]),
                "category_id": ints(new["category"] + 1, pa.int32(), null=0),
                "discount_pct": decimals(new["pct_bp"], 5, 2),
                "starts_on": pa.array(new["start_day"].astype(np.int32), pa.date32()),
                "ends_on": pa.array(new["end_day"].astype(np.int32), pa.date32()),
                "updated_at": timestamps(new["planned_ms"]),
            },
        ),
    )


def _site_events(year: int) -> list[tuple[str, date, int, int]]:
    nov1 = date(year, 11, 1)
    thanksgiving = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    yy = year % 100
    return [
        (f"NEWYEAR{yy:02d}", date(year, 1, 2), 5, 1000),
        (f"SPRING{yy:02d}", date(year, 3, 20), 4, 1200),
        (f"SUMMER{yy:02d}", date(year, 7, 8), 7, 1500),
        (f"BLACKFRIDAY{yy:02d}", thanksgiving + timedelta(days=1), 4, 2500),  # Black Friday to Cyber Monday
    ]


def plan_promotions(
    existing: dict, lo_day: int, hi_day: int, rng: np.random.Generator, shape: Shape = DEMO_SHAPE
) -> dict:
    """New promotions starting in [lo_day, hi_day]: the calendar's site-wide events plus category
    flash sales every week or two (of the categories the shop sells), never overlapping a
    site-wide event or each other."""
    rows = []
    site_days: set[int] = set()
    for year in range(to_date(lo_day).year - 1, to_date(hi_day).year + 2):
        for code, start, length, pct in _site_events(year):
            s = to_day(start)
            site_days.update(range(s, s + length))
            if lo_day <= s <= hi_day:
                rows.append((code, -1, pct, s, s + length - 1))
    flash = existing["category"] >= 0 if flen(existing) else np.zeros(0, dtype=bool)
    cursor = int(existing["end_day"][flash].max()) + 1 if flash.any() else lo_day
    cursor = max(cursor, lo_day)
    while True:
        start = cursor + int(rng.integers(5, 15))
        length = int(rng.integers(2, 5))
        while any(d in site_days for d in range(start - 1, start + length + 1)):
            start += 1
        if start > hi_day:
            break
        w = shape.shares * shape.season[day_of_year(np.array([start]))[0] - 1]
        cat = int(rng.choice(C, p=w / w.sum()))
        pct = int(rng.choice([1000, 1500, 2000, 2500, 3000], p=[0.25, 0.3, 0.25, 0.12, 0.08]))
        d = to_date(start)
        rows.append((f"FLASH-{CATEGORIES[cat].code}-{d:%m%d}-{d.year % 100:02d}", cat, pct, start, start + length - 1))
        cursor = start + length - 1
    rows.sort(key=lambda r: (r[3], r[1]))
    n = len(rows)
    start = np.array([r[3] for r in rows], dtype=np.int64)
    planned = (start - PROMO_HORIZON_DAYS) * DAY_MS + 9 * HOUR_MS + rng.integers(0, HOUR_MS, size=n)
    return {
        "promotion_id": np.zeros(n, dtype=np.int64),
        "code": np.array([r[0] for r in rows], dtype=object),
        "category": np.array([r[1] for r in rows], dtype=np.int64),
        "pct_bp": np.array([r[2] for r in rows], dtype=np.int64),
        "start_day": start,
        "end_day": np.array([r[4] for r in rows], dtype=np.int64),
        "planned_ms": planned.astype(np.int64),
    }
