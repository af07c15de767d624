"""Fraud features: only what is known when the payment is authorised.

Per payment: the amount against the customer's earlier orders, how many orders the customer placed
earlier the same day (velocity), card / IP / shipping country mismatches, the account's age, the
device, the hour and the payment method. Nothing that happens after ``paid_at`` is used; the label
(a chargeback) arrives 10-60 days later, so payments younger than the label delay have no label yet
and are neither trained nor evaluated on.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

NUMERIC_FEATURES = [
    "amount_usd",
    "amount_ratio",
    "prior_orders",
    "account_age_days",
    "is_new_account",
    "card_ip_country_mismatch",
    "ship_card_country_mismatch",
    "ship_ip_country_mismatch",
    "orders_same_day_before",
    "paid_hour",
    "is_night",
]
CATEGORICAL_FEATURES = ["method", "device_type"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
TABLES = ["prod.fct_payments", "prod.fct_orders", "prod.dim_customers"]
# The basket a customer without earlier orders is compared with (the shop's typical order, USD).
DEFAULT_BASKET_USD = 65.0
# Chargebacks are reported up to 60 days after the payment; a payment is labelled only after that.
MIN_LABEL_DELAY_DAYS = 60


def label_delay_days(con: duckdb.DuckDBPyConnection) -> int:
    """At least 60 days; longer if the data holds a chargeback that took longer to arrive."""
    longest = con.execute("SELECT max(days_to_chargeback) FROM prod.fct_payments").fetchone()[0]
    return max(MIN_LABEL_DELAY_DAYS, int(longest or 0) + 1)


def last_payment_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    return con.execute("SELECT max(paid_at)::DATE FROM prod.fct_payments").fetchone()[0]


def payment_features(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per payment whose order is in prod (the label columns alongside, never as features)."""
    frame = con.execute(
        f"""
        WITH o AS (
            SELECT order_id, customer_id, ordered_at, order_date, total_usd, shipping_country,
                   avg(total_usd) OVER earlier AS prior_mean_usd,
                   count(*) OVER earlier AS prior_orders,
                   count(*) OVER (PARTITION BY customer_id, order_date ORDER BY ordered_at, order_id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS orders_same_day_before
            FROM prod.fct_orders
            WINDOW earlier AS (PARTITION BY customer_id ORDER BY ordered_at, order_id
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        )
        SELECT p.payment_id, p.order_id, o.customer_id, p.paid_at, p.status, p.is_chargeback,
               p.amount_usd::DOUBLE AS amount_usd,
               (o.total_usd / coalesce(nullif(o.prior_mean_usd, 0), {DEFAULT_BASKET_USD}))::DOUBLE AS amount_ratio,
               o.prior_orders,
               date_diff('second', c.signed_up_at, p.paid_at) / 86400.0 AS account_age_days,
               (date_diff('second', c.signed_up_at, p.paid_at) < 14 * 86400)::INTEGER AS is_new_account,
               coalesce(p.is_card_ip_country_mismatch, false)::INTEGER AS card_ip_country_mismatch,
               (p.card_country IS NOT NULL AND o.shipping_country <> p.card_country)::INTEGER
                   AS ship_card_country_mismatch,
               (o.shipping_country <> p.ip_country)::INTEGER AS ship_ip_country_mismatch,
               o.orders_same_day_before,
               hour(p.paid_at) AS paid_hour,
               (hour(p.paid_at) < 6)::INTEGER AS is_night,
               coalesce(p.method, 'unknown') AS method,
               coalesce(p.device_type, 'unknown') AS device_type
        FROM prod.fct_payments p
        JOIN o USING (order_id)
        LEFT JOIN prod.dim_customers c ON c.customer_id = o.customer_id
        WHERE p.paid_at IS NOT NULL
        ORDER BY p.paid_at, p.payment_id
        """
    ).df()
    for col in NUMERIC_FEATURES:
        frame[col] = frame[col].astype("float64")
    frame["is_chargeback"] = frame["is_chargeback"].fillna(False).astype(bool)
    return frame
