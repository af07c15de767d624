"""Behaviour features of every customer with at least one order, for the K-means segments.

One row per buyer, as of the shop's last order date: recency, frequency, monetary value (total and
per order), tenure and the share of units returned. Cancelled orders and their lines are left out.
The clustering works on ``CLUSTER_FEATURES``: the skewed counts and amounts log-transformed
(``log1p``), then standardized; total revenue is left out of the distance (it is orders times the
average order value, so it would count those twice) but kept for the profiles and revenue shares.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

TABLES = ["prod.fct_orders", "prod.fct_order_items", "prod.dim_customers"]

CLUSTER_FEATURES = ["recency_days", "orders", "avg_order_value_usd", "tenure_days", "return_rate"]
LOG_FEATURES = frozenset({"recency_days", "orders", "avg_order_value_usd", "tenure_days"})
PROFILE_FEATURES = ["recency_days", "orders", "revenue_usd", "avg_order_value_usd", "tenure_days", "return_rate"]
DESCRIPTIONS = {
    "customer_id": "The customer (prod.dim_customers).",
    "segment_id": "K-means segment; ids are kept across runs by matching each new cluster to the previous "
    "run's nearest centroid.",
    "segment_name": "Business name derived from the segment centroid's z-scores.",
    "rfm_segment": "The rule-based RFM segment prod.dim_customers keeps, for comparison.",
    "recency_days": "Days from the customer's last order to the shop's last order date.",
    "orders": "Non-cancelled orders.",
    "revenue_usd": "Revenue of those orders in USD.",
    "avg_order_value_usd": "Revenue per order in USD.",
    "tenure_days": "Days from sign-up to the shop's last order date.",
    "return_rate": "Returned units over units bought.",
    "distance_to_centroid": "Euclidean distance to the segment centroid in standardized feature space.",
    "segments": "How many segments this run found.",
    "mlflow_run_id": "The MLflow run that fitted the segments.",
    "segmented_as_of": "The shop's last order date: the day the features describe.",
}


def buyer_features(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per customer with at least one non-cancelled order, ordered by customer id."""
    frame = con.execute(
        """
        WITH span AS (SELECT max(order_date)::DATE AS as_of FROM prod.fct_orders WHERE NOT is_cancelled),
        o AS (
            SELECT customer_id, count(*) AS orders, sum(total_usd)::DOUBLE AS revenue_usd,
                   max(order_date)::DATE AS last_date
            FROM prod.fct_orders WHERE NOT is_cancelled GROUP BY customer_id
        ),
        i AS (
            SELECT customer_id, sum(quantity)::DOUBLE AS units,
                   sum(coalesce(returned_units, 0))::DOUBLE AS returned
            FROM prod.fct_order_items WHERE NOT is_cancelled GROUP BY customer_id
        )
        SELECT o.customer_id::BIGINT AS customer_id,
               c.segment AS rfm_segment,
               date_diff('day', o.last_date, span.as_of)::DOUBLE AS recency_days,
               o.orders::DOUBLE AS orders,
               coalesce(o.revenue_usd, 0) AS revenue_usd,
               coalesce(o.revenue_usd, 0) / o.orders AS avg_order_value_usd,
               greatest(coalesce(date_diff('day', c.signed_up_at::DATE, span.as_of), 0), 0)::DOUBLE AS tenure_days,
               least(coalesce(i.returned / nullif(i.units, 0), 0), 1)::DOUBLE AS return_rate,
               span.as_of AS segmented_as_of
        FROM o JOIN prod.dim_customers c USING (customer_id)
        LEFT JOIN i USING (customer_id), span
        ORDER BY o.customer_id
        """
    ).df()
    for col in PROFILE_FEATURES:
        frame[col] = frame[col].astype("float64")
    return frame


def transformed(frame: pd.DataFrame) -> np.ndarray:
    """The clustering features before standardizing: log1p of the skewed ones, negatives clipped."""
    cols = []
    for col in CLUSTER_FEATURES:
        values = np.clip(frame[col].to_numpy("float64"), 0.0, None)
        cols.append(np.log1p(values) if col in LOG_FEATURES else values)
    return np.column_stack(cols)
