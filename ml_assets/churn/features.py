"""Churn features and labels at a cutoff date, strictly from what was known before the cutoff.

A cutoff is a date: features use everything that happened up to the end of that day, the label
looks at the ``horizon_days`` that follow. Label: the customer places no (non-cancelled) order in
(cutoff, cutoff + horizon_days]. The horizon comes from the data (``churn_horizon_days``).

Training stacks several cutoffs, 28 days apart, all of whose label windows end on or before the
holdout's cutoff, so no training label looks into the holdout's future.
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

TABLES = ["prod.fct_orders", "prod.fct_order_items", "prod.dim_customers", "curated.support_tickets",
          "curated.returns", "curated.web_events"]
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
                   date_diff('day', lag(order_date) OVER (PARTITION BY customer_id ORDER BY ordered_at), order_date) AS gap
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


def required_days(horizon: int) -> int:
    return 2 * horizon + MIN_HISTORY_DAYS


def customer_features(con: duckdb.DuckDBPyConnection, cutoff: dt.date, horizon_days: int | None = None) -> pd.DataFrame:
    """One row per customer signed up by ``cutoff``; with ``horizon_days`` also the label ``churned``."""
    label = "(f.customer_id IS NULL) AS churned" if horizon_days is not None else "NULL::BOOLEAN AS churned"
    frame = con.execute(
        f"""
        WITH span AS (SELECT min(order_date)::DATE AS first_day FROM prod.fct_orders),
        o AS (
            SELECT customer_id, order_date::DATE AS d, total_usd FROM prod.fct_orders
            WHERE NOT is_cancelled AND order_date::DATE <= $cutoff
        ),
        hist AS (
            SELECT customer_id, count(*) AS orders, sum(total_usd) AS revenue_usd,
                   min(d) AS first_date, max(d) AS last_date,
                   count(*) FILTER (WHERE d > $cutoff - 30) AS orders_last_30d,
                   count(*) FILTER (WHERE d > $cutoff - 90) AS orders_last_90d
            FROM o GROUP BY customer_id
        ),
        fut AS (
            SELECT DISTINCT customer_id FROM prod.fct_orders
            WHERE NOT is_cancelled AND order_date::DATE > $cutoff AND order_date::DATE <= $cutoff + {int(horizon_days or 0)}
        ),
        t AS (
            SELECT customer_id, count(*) AS tickets,
                   count(*) FILTER (WHERE satisfaction <= 2 AND resolved_at::DATE <= $cutoff) AS low_satisfaction_tickets,
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
               coalesce(date_diff('day', h.last_date, $cutoff), date_diff('day', c.observed_from, $cutoff) + 1) AS recency_days,
               coalesce(h.orders_last_30d, 0) AS orders_last_30d,
               coalesce(h.orders_last_90d, 0) AS orders_last_90d,
               30.0 * coalesce(h.orders, 0) / (date_diff('day', c.observed_from, $cutoff) + 1) AS orders_per_30d,
               CASE WHEN h.orders > 1 THEN date_diff('day', h.first_date, h.last_date) / (h.orders - 1) END
                   ::DOUBLE AS mean_days_between_orders,
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
    return frame


def training_frame(con: duckdb.DuckDBPyConnection, train_cutoffs: list[dt.date], horizon: int) -> pd.DataFrame:
    return pd.concat([customer_features(con, c, horizon) for c in train_cutoffs], ignore_index=True)
