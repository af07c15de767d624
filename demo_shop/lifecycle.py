"""Order lifecycles: everything that will happen to an order, planned when it is placed.

Planning ahead (rather than stepping each order day by day) is what lets a run be vectorised:
payment, cancellation, shipment, delivery, returns, refunds and chargebacks get their times now,
and the source shows the projection of those plans at the shop's current time (plans.py), so a row
changes, and its updated_at advances, exactly when its plan says so, in this run or a later one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from demo_shop.clock import DAY_MS, HOUR_MS, MINUTE_MS, NEVER
from demo_shop.fraud import fraud_logit
from demo_shop.reference_data import (
    CARRIER_CUM,
    CARRIER_NAMES,
    CARRIERS,
    CATEGORIES,
    RETURN_RATE,
    RETURN_REASONS,
    round_local,
)
from demo_shop.sampling import choose

if TYPE_CHECKING:
    from demo_shop.engine import Run


class Lifecycle(NamedTuple):
    """What support tickets are about, by order (times in ms, NEVER if it does not happen)."""

    dissat: np.ndarray  # the customer's dissatisfaction
    a1: np.ndarray  # first payment attempt
    fail1: np.ndarray  # the first attempt failed
    total_fail: np.ndarray  # never paid
    carrier: np.ndarray
    has_ship: np.ndarray
    promised: np.ndarray
    delivered: np.ndarray
    late: np.ndarray
    first_ret: np.ndarray  # first return of one of its lines


def plan_lifecycles(run: Run) -> Lifecycle:
    """Plan, at the moment each order is placed, everything that will happen to it: payment
    attempts, cancellation, shipment, delivery, returns, refunds and chargebacks."""
    st, o, ln = run.state, run.o, run.lines
    rp, rl, rr = run.rng["payments"], run.rng["lifecycle"], run.rng["returns"]
    cu = st.customers
    t, method, N = o["t"], o["method"], len(o["t"])
    dissat = cu["dissat"][o["cust"]]
    # ---- payments
    a1 = t + rp.integers(1_000, 40_000, size=N)
    fail1 = (method != 2) & (rp.random(N) < np.where(method == 0, 0.05, 0.03))
    retry_ok = rp.random(N) < 0.75
    bank_paid = t + (rp.uniform(0.3, 3.5, N) * DAY_MS).astype(np.int64)
    retry = a1 + rp.integers(20_000, 480_000, size=N)
    paid = np.where(method == 2, bank_paid, np.where(~fail1, a1, np.where(retry_ok, retry, NEVER)))
    total_fail = paid == NEVER
    fi, ci = np.flatnonzero(fail1), np.flatnonzero(~total_fail)
    p_rows = np.concatenate([fi, ci])
    p_failed = np.concatenate([np.ones(len(fi), bool), np.zeros(len(ci), bool)])
    p_time = np.where(p_failed, a1[p_rows], paid[p_rows])
    f = o["fraud"]
    z = fraud_logit(
        f["ratio"][p_rows],
        (p_time - cu["signup_ms"][o["cust"][p_rows]]) / DAY_MS,
        f["card_ip"][p_rows],
        f["ship_card"][p_rows],
        o["device"][p_rows],
        (p_time % DAY_MS) // HOUR_MS,
        f["velocity"][p_rows],
        method[p_rows],
    )
    p_prob = 1.0 / (1.0 + np.exp(-z))
    p_fraud = rp.random(len(p_rows)) < p_prob
    fraud_o = np.zeros(N, dtype=bool)
    fraud_o[ci] = p_fraud[len(fi) :]
    # ---- cancellation, shipment, delivery
    cust_cancel = ~total_fail & ~fraud_o & (rl.random(N) < 0.03)
    processing = np.maximum(HOUR_MS, np.exp(np.log(20 * HOUR_MS) + 0.6 * rl.standard_normal(N))).astype(np.int64)
    shipped = np.where(~total_fail & ~cust_cancel, paid + processing, NEVER)
    cancel = np.where(
        total_fail,
        a1 + rl.integers(20 * MINUTE_MS, 3 * HOUR_MS, size=N),
        np.where(
            cust_cancel,
            paid + np.maximum(5 * MINUTE_MS, (rl.uniform(0.05, 0.9, N) * processing).astype(np.int64)),
            NEVER,
        ),
    )
    carrier = choose(CARRIER_CUM, o["ship_c"], rl.random(N))
    spec = np.array([CARRIERS[c] for c in CARRIER_NAMES])
    promise, zc, sig = spec[carrier, 0], spec[carrier, 1], spec[carrier, 2]
    transit = promise * np.exp(-zc * sig) * np.exp(sig * rl.standard_normal(N))
    has_ship = shipped < NEVER
    delivered = np.where(has_ship, shipped + (transit * DAY_MS).astype(np.int64), NEVER)
    promised = np.where(has_ship, shipped + (promise * DAY_MS).astype(np.int64), NEVER)
    late = has_ship & (delivered > promised)
    # ---- returns, per clean line of delivered, non-fraud orders
    lo = ln["order"]
    nl = len(lo)
    p_ret = np.clip(RETURN_RATE[ln["cat"]] * np.exp(0.5 * dissat[lo]) * np.where(late[lo], 1.6, 1.0), 0, 0.95)
    ret = has_ship[lo] & ~fraud_o[lo] & (rr.random(nl) < p_ret)
    q = ln["qty"]
    rq = np.where((q == 1) | (rr.random(nl) < 0.6), q, 1 + (rr.random(nl) * np.maximum(q - 1, 1)).astype(np.int64))
    rq = np.minimum(rq, q)
    r_ms = delivered[lo] + ((2 + 26 * rr.random(nl)) * DAY_MS).astype(np.int64)
    sized = np.isin(ln["cat"], [i for i, c in enumerate(CATEGORIES) if c.code in ("APP", "SHO")])
    reason = np.where(
        sized,
        choose(np.cumsum([0.1, 0.5, 0.2, 0.2, 0.0]), 0, rr.random(nl)),
        choose(np.cumsum([0.3, 0.0, 0.3, 0.4, 0.0]), 0, rr.random(nl)),
    )
    reason = np.where(late[lo] & (rr.random(nl) < 0.35), RETURN_REASONS.index("late_delivery"), reason)
    refund = round_local(rq * ln["net"] / q, o["cur"][lo])
    full = ret & (rq == q)
    n_full = np.bincount(lo[full], minlength=N)
    returned_all = np.full(N, NEVER, dtype=np.int64)
    all_back = (n_full == o["L"]) & (o["L"] > 0)
    last_ret = np.full(N, -1, dtype=np.int64)
    np.maximum.at(last_ret, lo[ret], r_ms[ret])
    returned_all[all_back] = last_ret[all_back]
    first_ret = np.full(N, NEVER, dtype=np.int64)
    np.minimum.at(first_ret, lo[ret], r_ms[ret])
    # ---- refunds and chargebacks on the captured payment
    refund_ms = np.where(
        cust_cancel,
        cancel + rp.integers(HOUR_MS, DAY_MS, size=N),
        np.where(returned_all < NEVER, returned_all + rp.integers(HOUR_MS, 2 * DAY_MS, size=N), NEVER),
    )
    cb_ms = np.where(fraud_o, paid + rp.integers(10 * DAY_MS, 60 * DAY_MS, size=N), NEVER)
    if not run.config.chargebacks:  # the fraud still happens (truth), it is just never charged back
        cb_ms = np.full(N, NEVER, dtype=np.int64)
    np_ = len(p_rows)
    run.new_plans = {}
    run.new_plans["payments"] = {
        "payment_id": np.zeros(np_, np.int64),
        "order_id": o["id"][p_rows],
        "customer_id": o["cust_id"][p_rows],
        "attempt": (~p_failed).astype(np.int64),
        "method": method[p_rows],
        "card": o["card_no"][p_rows],
        "card_country": o["card_c"][p_rows],
        "ip_country": o["ip_c"][p_rows],
        "device": o["device"][p_rows],
        "amount": o["total"][p_rows],
        "currency": o["cur"][p_rows],
        "attempt_ms": p_time,
        "failed": p_failed,
        "refund_ms": np.where(p_failed, NEVER, refund_ms[p_rows]),
        "cb_ms": np.where(p_failed, NEVER, cb_ms[p_rows]),
        "fraud_p": p_prob,
        "is_fraud": p_fraud,
    }
    run.new_plans["orders"] = {
        "order_id": o["id"],
        "customer_id": o["cust_id"],
        "ordered_ms": t,
        "paid_ms": paid,
        "shipped_ms": shipped,
        "delivered_ms": delivered,
        "cancel_ms": cancel,
        "returned_ms": returned_all,
    }
    si = np.flatnonzero(has_ship)
    run.new_plans["shipments"] = {
        "shipment_id": np.zeros(len(si), np.int64),
        "order_id": o["id"][si],
        "customer_id": o["cust_id"][si],
        "carrier": carrier[si],
        "shipped_ms": shipped[si],
        "promised_ms": promised[si],
        "delivered_ms": delivered[si],
    }
    ri = np.flatnonzero(ret)
    run.new_plans["returns"] = {
        "return_id": np.zeros(len(ri), np.int64),
        "order_item_id": ln["id"][ri],
        "order_id": o["id"][lo[ri]],
        "customer_id": o["cust_id"][lo[ri]],
        "qty": rq[ri],
        "reason": reason[ri],
        "refund": refund[ri],
        "returned_ms": r_ms[ri],
    }
    return Lifecycle(dissat, a1, fail1, total_fail, carrier, has_ship, promised, delivered, late, first_ret)
