"""Support tickets: what shoppers write in about, when, and how satisfied they end up.

Tickets follow from the order lifecycles (late deliveries, refunds, failed payments, products) and
from the customer's latent dissatisfaction, so ticket volume and satisfaction carry real signal
about churn and delivery performance; account questions come at any time while a customer is alive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from demo_shop.clock import DAY_MS, HOUR_MS, MINUTE_MS, NEVER, to_date
from demo_shop.reference_data import CARRIER_NAMES, TICKET_TOPICS
from demo_shop.word_lists import TICKET_BODIES

if TYPE_CHECKING:
    from demo_shop.engine import Run
    from demo_shop.lifecycle import Lifecycle


def plan_tickets(run: Run, lc: Lifecycle) -> None:
    """Shoppers write in about late deliveries, refunds, payment trouble and products, more often
    the more dissatisfied they are; and with account questions at any time while alive."""
    cu, o, rt = run.state.customers, run.o, run.rng["tickets"]
    N = len(o["t"])
    dissat, a1, fail1, total_fail, carrier, has_ship, promised, delivered, late, first_ret = lc
    md = np.exp(0.6 * dissat)
    topic_ix = {k: i for i, k in enumerate(TICKET_TOPICS)}
    parts = []

    def add(mask: np.ndarray, created: np.ndarray, topic: str) -> None:
        i = np.flatnonzero(mask)
        parts.append((i, created[i], np.full(len(i), topic_ix[topic])))

    add(
        late & (rt.random(N) < np.clip(0.35 * md, 0, 0.9)),
        promised + (rt.uniform(0.2, 3.0, N) * DAY_MS).astype(np.int64),
        "delivery",
    )
    add(
        (first_ret < NEVER) & (rt.random(N) < np.clip(0.2 * md, 0, 0.9)),
        np.where(first_ret < NEVER, first_ret, 0) + (rt.uniform(1, 10, N) * DAY_MS).astype(np.int64),
        "refund",
    )
    add(
        (fail1 | total_fail) & (rt.random(N) < np.clip(0.15 * md, 0, 0.9)),
        a1 + rt.integers(5 * MINUTE_MS, 2 * HOUR_MS, size=N),
        "payment",
    )
    add(
        has_ship & (rt.random(N) < np.clip(0.02 * md, 0, 0.9)),
        np.where(has_ship, delivered, 0) + (rt.uniform(0.5, 7, N) * DAY_MS).astype(np.int64),
        "product",
    )
    oi = np.concatenate([p[0] for p in parts])
    created = np.concatenate([p[1] for p in parts])
    topic = np.concatenate([p[2] for p in parts])
    t_cust = o["cust"][oi]
    t_order = o["id"][oi]
    bodies = []
    for j in range(len(oi)):
        templates = TICKET_BODIES[TICKET_TOPICS[topic[j]]]
        i = oi[j]
        bodies.append(
            templates[rt.integers(len(templates))].format(
                o=o["id"][i],
                d=to_date(promised[i] // DAY_MS).isoformat() if promised[i] < NEVER else "",
                c=CARRIER_NAMES[carrier[i]],
            )
        )
    # account questions, not about an order, while the customer is alive
    ai, aa, ab = run.alive.idx, run.alive.a, run.alive.b
    n_acc = rt.poisson(0.0012 * np.exp(0.4 * cu["dissat"][ai]) * (ab - aa) / DAY_MS)
    acc_c = np.repeat(ai, n_acc)
    acc_t = np.repeat(aa, n_acc) + (rt.random(len(acc_c)) * np.repeat(ab - aa, n_acc)).astype(np.int64)
    acc_bodies = [TICKET_BODIES["account"][rt.integers(len(TICKET_BODIES["account"]))] for _ in range(len(acc_c))]
    t_cust = np.concatenate([t_cust, acc_c])
    t_order = np.concatenate([t_order, np.full(len(acc_c), -1)])
    created = np.concatenate([created, acc_t])
    topic = np.concatenate([topic, np.full(len(acc_c), topic_ix["account"])])
    bodies = np.array(bodies + acc_bodies, dtype=object)
    nt = len(t_cust)
    res_h = np.exp(np.log(18.0) + 1.1 * rt.standard_normal(nt))
    resolved = created + (res_h * HOUR_MS).astype(np.int64)
    d = cu["dissat"][t_cust]
    y = (
        4.3
        - 0.7 * d
        - 0.9 * (topic == topic_ix["delivery"])
        - 0.3 * (topic == topic_ix["refund"])
        - 0.5 * (res_h > 72)
        + 0.7 * rt.standard_normal(nt)
    )  # satisfaction: dissatisfied and late -> low
    sat = np.where(rt.random(nt) < 0.2, 0, np.clip(np.round(y), 1, 5)).astype(np.int64)
    run.new_plans["support_tickets"] = {
        "ticket_id": np.zeros(nt, np.int64),
        "customer_id": cu["customer_id"][t_cust],
        "order_id": t_order,
        "topic": topic,
        "body": bodies,
        "created_ms": created.astype(np.int64),
        "resolved_ms": resolved.astype(np.int64),
        "satisfaction": sat,
    }
