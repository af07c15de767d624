"""Churn features and labels at a cutoff date, strictly from what was known before the cutoff.

A cutoff is a date: features use everything that happened up to the end of that day, the label
looks at the ``horizon_days`` that follow. Label: the customer places no (non-cancelled) order in
(cutoff, cutoff + horizon_days]. The horizon comes from the data (``churn_horizon_days``).

Training stacks several cutoffs, 28 days apart, all of whose label windows end on or before the
holdout's cutoff, so no training label looks into the holdout's future. The backtest repeats that
split at several origins, 28 days apart (rolling origin): every candidate is judged on the same
windows.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

NUMERIC_FEATURES = [
    "tenure_days",
    "observed_days",
    "orders",
    "revenue_usd",
    "avg_order_value_usd",
    "recency_days",
    "orders_last_30d",
    "orders_last_90d",
    "orders_per_30d",
    "mean_days_between_orders",
    # the rhythm of a customer's orders, which real shops have even without tickets or web events
    "last_gap_days",  # days between the last two orders
    "gap_trend",  # last gap / mean gap: > 1 when the customer is slowing down
    "gap_regularity",  # coefficient of variation of the gaps: 0 for clockwork buyers
    "recency_over_gap",  # days since the last order / mean gap: overdue when well above 1
    "monetary_trend",  # last order value / mean of the earlier ones
    "p_alive",  # BTYD-style probability the customer is still buying (expected_purchases below)
    "expected_purchases_30d",
    "returned_lines",
    "tickets",
    "low_satisfaction_tickets",
    "avg_satisfaction",
    "sessions_last_30d",
    "marketing_opt_in",
]
CATEGORICAL_FEATURES = ["acquisition_channel", "region"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
RFM_FEATURES = ["recency_days", "orders", "revenue_usd"]  # the baseline's R, F and M
RECENCY_FEATURES = ["recency_days"]  # the simplest baseline: counting days since the last order
# The BTYD-style estimate: a customer buys at a rate lambda (gamma-Poisson: shop-wide prior of
# PRIOR_ORDERS orders in PRIOR_ORDERS / shop rate days, updated by the customer's own orders and days
# observed) until they drop out, which they do after an order with probability DROPOUT_PRIOR. Having
# bought nothing for R days, they are still alive with probability
#   (1 - d) e^(-lambda R) / ((1 - d) e^(-lambda R) + d)
# and buy lambda * 30 * P(alive) times in the next 30 days. A closed form, no fitting: the models
# learn how much to trust it.
PRIOR_ORDERS = 1.0
DROPOUT_PRIOR = 0.5

TABLES = [
    "prod.fct_orders",
    "prod.fct_order_items",
    "prod.dim_customers",
    "curated.support_tickets",
    "curated.returns",
    "curated.web_events",
]
HORIZON_QUANTILE = 0.8
HORIZON_BOUNDS = (28, 120)
CUTOFF_STEP_DAYS = 28
MAX_TRAINING_CUTOFFS = 4
MIN_HISTORY_DAYS = 28  # a cutoff needs this much activity before it


def data_span(con: duckdb.DuckDBPyConnection) -> tuple[dt.date, dt.date]:
    """First and last order date: the period the shop's activity covers."""
    first, last = con.execute("SELECT min(order_date)::DATE, max(order_date)::DATE FROM prod.fct_orders").fetchone()
    return first, last


def churn_horizon_days(con: duckdb.DuckDBPyConnection) -> int:
    """The 80th percentile of the days between a customer's consecutive orders, rounded up to whole
    weeks and kept within 28-120 days: most active customers order again within that time, so not
    ordering within it is a meaningful signal."""
    gap = con.execute(
        """
        WITH o AS (
            SELECT customer_id, order_date,
                   date_diff('day', lag(order_date) OVER (PARTITION BY customer_id ORDER BY ordered_at), order_date)
                       AS gap
            FROM prod.fct_orders WHERE NOT is_cancelled
        )
        SELECT quantile_cont(gap, ?) FROM o WHERE gap > 0
        """,
        [HORIZON_QUANTILE],
    ).fetchone()[0]
    if gap is None:
        return HORIZON_BOUNDS[0]
    weeks = int(np.ceil(float(gap) / 7.0))
    return int(min(max(weeks * 7, HORIZON_BOUNDS[0]), HORIZON_BOUNDS[1]))


def cutoffs(first: dt.date, last: dt.date, horizon: int) -> tuple[list[dt.date], dt.date]:
    """(training cutoffs, holdout cutoff). The holdout cutoff leaves one full label window after it;
    each training cutoff's label window ends on or before the holdout cutoff."""
    holdout = last - dt.timedelta(days=horizon)
    latest_train = holdout - dt.timedelta(days=horizon)
    train = [latest_train - dt.timedelta(days=CUTOFF_STEP_DAYS * k) for k in range(MAX_TRAINING_CUTOFFS)]
    train = [c for c in train if (c - first).days >= MIN_HISTORY_DAYS]
    return sorted(train), holdout


def backtest_windows(first: dt.date, last: dt.date, horizon: int, windows: int) -> list[tuple[list[dt.date], dt.date]]:
    """Rolling origins, latest first: each window's (training cutoffs, holdout cutoff) as ``cutoffs``
    gives them for data ending CUTOFF_STEP_DAYS earlier than the window before. Windows too early to
    have a training cutoff are left out."""
    out = []
    for k in range(windows):
        train, holdout = cutoffs(first, last - dt.timedelta(days=CUTOFF_STEP_DAYS * k), horizon)
        if train:
            out.append((train, holdout))
    return out


def required_days(horizon: int) -> int:
    return 2 * horizon + MIN_HISTORY_DAYS


def customer_features(con: duckdb.DuckDBPyConnection, cutoff: dt.date, horizon_days: int | None = None) -> pd.DataFrame:
    """One row per customer signed up by ``cutoff``; with ``horizon_days`` also the label ``churned``."""
    label = "(f.customer_id IS NULL) AS churned" if horizon_days is not None else "NULL::BOOLEAN AS churned"
    frame = con.execute(
        f"""
        WITH span AS (SELECT min(order_date)::DATE AS first_day FROM prod.fct_orders),
        o AS (
            SELECT customer_id, order_date::DATE AS d, total_usd,
                   date_diff('day', lag(order_date::DATE) OVER w, order_date::DATE) AS gap,
                   row_number() OVER (PARTITION BY customer_id ORDER BY ordered_at DESC, order_id DESC) AS latest
            FROM prod.fct_orders
            WHERE NOT is_cancelled AND order_date::DATE <= $cutoff
            WINDOW w AS (PARTITION BY customer_id ORDER BY ordered_at, order_id)
        ),
        hist AS (
            SELECT customer_id, count(*) AS orders, sum(total_usd) AS revenue_usd,
                   min(d) AS first_date, max(d) AS last_date,
                   count(*) FILTER (WHERE d > $cutoff - 30) AS orders_last_30d,
                   count(*) FILTER (WHERE d > $cutoff - 90) AS orders_last_90d,
                   max(gap) FILTER (WHERE latest = 1) AS last_gap,
                   avg(gap) AS mean_gap, stddev_pop(gap) AS std_gap, count(gap) AS gaps,
                   max(total_usd) FILTER (WHERE latest = 1) AS last_order_usd,
                   avg(total_usd) FILTER (WHERE latest > 1) AS earlier_order_usd
            FROM o GROUP BY customer_id
        ),
        fut AS (
            SELECT DISTINCT customer_id FROM prod.fct_orders
            WHERE NOT is_cancelled AND order_date::DATE > $cutoff
              AND order_date::DATE <= $cutoff + {int(horizon_days or 0)}
        ),
        t AS (
            SELECT customer_id, count(*) AS tickets,
                   count(*) FILTER (WHERE satisfaction <= 2 AND resolved_at::DATE <= $cutoff)
                       AS low_satisfaction_tickets,
                   avg(satisfaction) FILTER (WHERE resolved_at::DATE <= $cutoff) AS avg_satisfaction
            FROM curated.support_tickets WHERE created_at::DATE <= $cutoff GROUP BY customer_id
        ),
        r AS (
            SELECT i.customer_id, count(DISTINCT r.order_item_id) AS returned_lines
            FROM curated.returns r JOIN prod.fct_order_items i USING (order_item_id)
            WHERE r.returned_at::DATE <= $cutoff GROUP BY i.customer_id
        ),
        w AS (
            SELECT customer_id, count(DISTINCT session_id) AS sessions_last_30d
            FROM curated.web_events
            WHERE customer_id IS NOT NULL AND occurred_at::DATE <= $cutoff AND occurred_at::DATE > $cutoff - 30
            GROUP BY customer_id
        ),
        base AS (
            SELECT c.*, greatest(c.signed_up_at::DATE, span.first_day) AS observed_from
            FROM prod.dim_customers c, span
            WHERE c.signed_up_at::DATE <= $cutoff
        )
        SELECT c.customer_id,
               date_diff('day', c.signed_up_at::DATE, $cutoff) AS tenure_days,
               date_diff('day', c.observed_from, $cutoff) + 1 AS observed_days,
               coalesce(h.orders, 0) AS orders,
               coalesce(h.revenue_usd, 0)::DOUBLE AS revenue_usd,
               coalesce(h.revenue_usd / nullif(h.orders, 0), 0)::DOUBLE AS avg_order_value_usd,
               coalesce(date_diff('day', h.last_date, $cutoff), date_diff('day', c.observed_from, $cutoff) + 1)
                   AS recency_days,
               coalesce(h.orders_last_30d, 0) AS orders_last_30d,
               coalesce(h.orders_last_90d, 0) AS orders_last_90d,
               30.0 * coalesce(h.orders, 0) / (date_diff('day', c.observed_from, $cutoff) + 1) AS orders_per_30d,
               CASE WHEN h.orders > 1 THEN date_diff('day', h.first_date, h.last_date) / (h.orders - 1) END
                   ::DOUBLE AS mean_days_between_orders,
               h.last_gap::DOUBLE AS last_gap_days,
               CASE WHEN h.gaps >= 2 AND h.mean_gap > 0 THEN h.last_gap / h.mean_gap END::DOUBLE AS gap_trend,
               CASE WHEN h.gaps >= 2 AND h.mean_gap > 0 THEN h.std_gap / h.mean_gap END::DOUBLE AS gap_regularity,
               CASE WHEN h.gaps >= 1 THEN date_diff('day', h.last_date, $cutoff) / greatest(h.mean_gap, 1) END
                   ::DOUBLE AS recency_over_gap,
               CASE WHEN h.orders > 1 AND h.earlier_order_usd > 0 THEN h.last_order_usd / h.earlier_order_usd END
                   ::DOUBLE AS monetary_trend,
               NULL::DOUBLE AS p_alive,
               NULL::DOUBLE AS expected_purchases_30d,
               coalesce(r.returned_lines, 0) AS returned_lines,
               coalesce(t.tickets, 0) AS tickets,
               coalesce(t.low_satisfaction_tickets, 0) AS low_satisfaction_tickets,
               t.avg_satisfaction::DOUBLE AS avg_satisfaction,
               coalesce(w.sessions_last_30d, 0) AS sessions_last_30d,
               coalesce(c.marketing_opt_in, false)::INTEGER AS marketing_opt_in,
               coalesce(c.acquisition_channel, 'unknown') AS acquisition_channel,
               coalesce(c.region, 'unknown') AS region,
               $cutoff AS cutoff,
               {label}
        FROM base c
        LEFT JOIN hist h USING (customer_id)
        LEFT JOIN fut f USING (customer_id)
        LEFT JOIN t USING (customer_id)
        LEFT JOIN r USING (customer_id)
        LEFT JOIN w USING (customer_id)
        ORDER BY c.customer_id
        """,
        {"cutoff": cutoff},
    ).df()
    for col in NUMERIC_FEATURES:
        frame[col] = frame[col].astype("float64")
    frame["p_alive"], frame["expected_purchases_30d"] = expected_purchases(frame, 30)
    return frame


def expected_purchases(frame: pd.DataFrame, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(alive), expected orders in the next ``days``) per customer; see PRIOR_ORDERS above."""
    orders = frame["orders"].to_numpy(float)
    observed = np.maximum(frame["observed_days"].to_numpy(float), 1.0)
    shop_rate = max(orders.sum() / observed.sum(), 1e-6) if len(frame) else 1e-6
    rate = (orders + PRIOR_ORDERS) / (observed + PRIOR_ORDERS / shop_rate)
    silent = np.where(orders > 0, frame["recency_days"].to_numpy(float), observed)
    stays = (1 - DROPOUT_PRIOR) * np.exp(-np.minimum(rate * silent, 700.0))
    p_alive = stays / (stays + DROPOUT_PRIOR)
    return p_alive, rate * days * p_alive


def training_frame(con: duckdb.DuckDBPyConnection, train_cutoffs: list[dt.date], horizon: int) -> pd.DataFrame:
    return pd.concat([customer_features(con, c, horizon) for c in train_cutoffs], ignore_index=True)
