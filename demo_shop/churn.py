"""The churn ground truth: each customer's exact probability of not ordering in the last 90 days.

The churn model in ml_assets/ predicts "no order in the 90 days after the cutoff" from what the
source shows up to the cutoff. The engine knows each customer's latent rate and hazard, so the true
probability can be integrated exactly on the same intensity clock the orders were drawn from; it is
the ceiling the model's metrics are judged against.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.clock import DAY_MS, to_date
from demo_shop.columns import timestamps
from demo_shop.intensity import Intensity, shape_of

if TYPE_CHECKING:
    from demo_shop.state import State

CHURN_WINDOW_DAYS = 90


def churn_window(end_day: int) -> tuple[date, date, date]:
    """(cutoff date, first day, last day) of the churn label window: the last 90 days."""
    cutoff = end_day - CHURN_WINDOW_DAYS
    return to_date(cutoff), to_date(cutoff + 1), to_date(end_day)


def customer_truth(state: State) -> pa.Table:
    """Latent parameters, churn time and the exact probability of no purchase in the window
    (cutoff, cutoff + 90 days] given what the model knows at the cutoff."""
    cu, meta = state.customers, state.meta
    end_day = meta["end_day"]
    now = (end_day + 1) * DAY_MS - 1
    cutoff_day = end_day - CHURN_WINDOW_DAYS
    cutoff_ms = (cutoff_day + 1) * DAY_MS  # the end of the cutoff date
    lam, haz, signup, churn = cu["lam"], cu["hazard"], cu["signup_ms"], cu["churn_ms"]
    n = len(lam)
    prob = np.full(n, np.nan)
    eligible = signup < cutoff_ms
    alive = eligible & (churn > cutoff_ms)
    prob[eligible & ~alive] = 1.0
    prob[alive & (lam <= 0)] = 1.0
    idx = np.flatnonzero(alive & (lam > 0))
    if len(idx):
        # Activity only exists from the first simulated day: no intensity before it.
        cal = Intensity(
            cutoff_day + 1,
            CHURN_WINDOW_DAYS,
            meta["origin_day"],
            state.promotions,
            active_from=meta["origin_day"],
            shape=shape_of(meta["config"]),
        )
        rho = cal.rate_h * 24.0  # per-day intensity on each hour
        Lk, tk, dt = cal.cum[:-1], np.arange(cal.H) / 24.0, 1.0 / 24.0
        for s in range(0, len(idx), 4000):
            j = idx[s : s + 4000]
            h, lm = haz[j][:, None], lam[j][:, None]
            a = h + lm * rho[None, :]
            # churn at tau ~ Exp(h) (memoryless) inside hour k, with no purchase before it, ...
            inside = (h * np.exp(-h * tk[None, :] - lm * Lk[None, :]) * -np.expm1(-a * dt) / a).sum(1)
            # ... or alive through the whole window with no purchase
            prob[j] = inside + np.exp(-haz[j] * CHURN_WINDOW_DAYS - lam[j] * cal.cum[-1])
    churned = churn <= now
    return pa.table(
        {
            "customer_id": pa.array(cu["customer_id"]),
            "purchase_rate_per_day": pa.array(lam),
            "churn_hazard_per_day": pa.array(haz),
            "churned_at": timestamps(np.where(churned, churn, 0), churned),
            "churn_probability": pa.array(prob, mask=np.isnan(prob)),
            "signed_up_at": timestamps(signup),
            "dissatisfaction": pa.array(cu["dissat"]),
        }
    )
