"""Exchange rates: one USD rate per currency and day, a mean-reverting random walk.

Prices are set in USD and charged in the shopper's currency at the day's rate, so the lakehouse's
currency conversion has real daily movement to get right; the walk's level carries over between runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.clock import DAY_MS, HOUR_MS
from demo_shop.columns import decimals, labels, source_table, timestamps
from demo_shop.reference_data import CURRENCIES, CURRENCY_CODES

if TYPE_CHECKING:
    from demo_shop.engine import Run


def add_fx_rates(run: Run) -> None:
    """The run's daily rates, kept on ``run.fx`` (USD per unit x 1e8, by day and currency) for pricing."""
    st, rng = run.state, run.rng["fx"]
    if st.fx_log is None:
        mu = np.log([v[0] for v in CURRENCIES.values()])
        st.fx_log = mu + rng.normal(0.0, 0.03, len(mu))
    path = fx_path(st.fx_log, run.n, rng)
    st.fx_log = path[-1].copy()
    run.fx = np.round(np.exp(path) * 1e8).astype(np.int64)  # USD per unit, 8 decimals
    ncur = len(CURRENCY_CODES)
    days = np.repeat(run.cal.days, ncur)
    rows = source_table(
        "fx_rates",
        {
            "rate_date": pa.array(days.astype(np.int32), pa.date32()),
            "currency": labels(np.tile(np.arange(ncur), run.n), CURRENCY_CODES),
            "usd_per_unit": decimals(run.fx.ravel(), 18, 8),
            "updated_at": timestamps(days * DAY_MS + 16 * HOUR_MS + rng.integers(0, 60_000, size=len(days))),
        },
    )
    if run.config.one_currency:  # a USD-only shop keeps only its own currency's (constant) rate
        rows = rows.filter(pa.array(np.tile(np.arange(ncur) == CURRENCY_CODES.index("USD"), run.n)))
    run.out.insert("fx_rates", rows)


def fx_path(x0: np.ndarray, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """log(USD per unit) per day and currency: a mean-reverting random walk around the level."""
    mu = np.log([v[0] for v in CURRENCIES.values()])
    vol = np.array([v[1] for v in CURRENCIES.values()])
    eps = rng.standard_normal((n_days, len(mu)))
    out = np.empty((n_days, len(mu)))
    x = x0.copy()
    for d in range(n_days):
        x = x + 0.02 * (mu - x) + vol * eps[d]
        out[d] = x
    out[:, CURRENCY_CODES.index("USD")] = 0.0
    return out
