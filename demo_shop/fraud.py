"""The true fraud model: which payments are fraudulent, from facts known at payment time.

The fraud model in ml_assets/ is trained to recover this one. Every input is visible in the source
(or computable from it at payment time), so a perfect model is possible in principle and the truth
file's probabilities are the ceiling its metrics are judged against.
"""

from __future__ import annotations

import numpy as np

from demo_shop.frames import group_starts, rank_in_group

FRAUD_INTERCEPT = -5.35
METHOD_FRAUD = np.array([0.0, -0.8, -2.0])  # card, paypal, bank_transfer
DEFAULT_BASKET_USD_CENTS = 6500.0  # the usual basket of a customer without orders


def fraud_logit(ratio, age_days, card_ip_mismatch, ship_card_mismatch, device, hour, velocity, method) -> np.ndarray:
    """The true fraud model: only facts known at payment time and visible in the source.

    ratio: order total (USD) / the customer's mean order total (USD) before this order (65 USD
    without history); age_days: paid_at - customers.created_at; card_ip_mismatch: card_country !=
    ip_country (cards); ship_card_mismatch: orders.shipping_country != card_country (cards);
    device: payments.device_type; hour: hour of paid_at; velocity: the customer's earlier orders
    the same (UTC) day; method: payments.method.
    """
    return (
        FRAUD_INTERCEPT
        + 0.75 * np.clip(np.log(np.maximum(ratio, 1e-6)), -1.5, 3.0)  # amount vs the customer's usual basket
        + 1.3 * (age_days < 1)
        + 0.6 * (age_days < 14)  # new accounts
        + 1.4 * card_ip_mismatch
        + 1.0 * ship_card_mismatch
        + np.array([0.0, 0.25, -0.1])[device]
        + 0.9 * (hour < 6)  # night
        + 0.8 * np.minimum(velocity, 3)  # earlier orders by the same customer the same day
        + METHOD_FRAUD[method]
    )


def order_features(
    customers: dict,
    t: np.ndarray,
    cust: np.ndarray,
    day: np.ndarray,
    total_usd: np.ndarray,
    card: np.ndarray,
    card_c: np.ndarray,
    ip_c: np.ndarray,
    ship_c: np.ndarray,
) -> dict:
    """The per-order inputs of ``fraud_logit`` that depend on the customer's history: the amount
    against their usual basket before this order, and their earlier orders the same day. Adds the
    orders to each customer's running basket (``basket_sum``, ``basket_n``), so the next run's
    "usual basket" includes them."""
    cu, N = customers, len(t)
    oc = np.lexsort((t, cust))
    cs = cust[oc]
    starts = group_starts(cs)
    gstart = np.maximum.accumulate(np.where(starts, np.arange(N), 0))
    csum = np.cumsum(total_usd[oc])
    before = csum - total_usd[oc] - (csum[gstart] - total_usd[oc][gstart])
    prior_sum = cu["basket_sum"][cs] + before
    prior_n = cu["basket_n"][cs] + (np.arange(N) - gstart)
    usual = np.where(prior_n > 0, prior_sum / np.maximum(prior_n, 1), DEFAULT_BASKET_USD_CENTS)
    ratio = np.empty(N)
    ratio[oc] = total_usd[oc] / usual
    velocity = np.empty(N, dtype=np.int64)
    velocity[oc] = rank_in_group(cs * 100_000 + day[oc])
    np.add.at(cu["basket_sum"], cust, total_usd)
    np.add.at(cu["basket_n"], cust, 1)
    return dict(ratio=ratio, card_ip=card & (card_c != ip_c), ship_card=card & (ship_c != card_c), velocity=velocity)
