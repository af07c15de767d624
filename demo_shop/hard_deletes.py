"""The shop's HARD DELETES, which only a simulate performs: GDPR erasure and abandoned-cart retention.

Rows that vanish from the source are what incremental extraction most easily gets wrong, so every
simulate of a real-sized shop deletes some: an erased customer takes all their rows with them, and
the retention job deletes every event of a cart abandoned more than 30 days ago.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo_shop.clock import DAY_MS
from demo_shop.frames import take
from demo_shop.writer import select_keys
from orchestration.contract.database import SourceDatabase

if TYPE_CHECKING:
    from demo_shop.engine import Output, Run
    from demo_shop.state import State

ERASURE_RATE_PER_CUSTOMER_DAY = 2e-5  # GDPR erasure requests (at least one per run once the shop has 100 customers)
ABANDONED_CART_DAYS = 30


def erase_customers(db: SourceDatabase, con, state: State, run: Run, days: int) -> dict[str, np.ndarray]:
    """Pick the customers who ask to be forgotten, find every row of theirs, forget them in the state.

    At the start of the period, so an erased customer does nothing more. Returns the keys to delete by table.
    """
    rng = run.rng["erasure"]
    cu = state.customers
    candidates = np.flatnonzero(cu["signup_ms"] < run.P0)
    if not len(candidates):
        return {}
    n = int(rng.poisson(ERASURE_RATE_PER_CUSTOMER_DAY * len(candidates) * days))
    if len(candidates) >= 100:
        n = max(n, 1)  # every run of a real-sized shop exercises hard deletes
    if not n:
        return {}
    erased = np.sort(rng.choice(candidates, size=min(n, len(candidates)), replace=False))
    ids = cu["customer_id"][erased]
    orders = select_keys(db, con, "orders", "customer_id", ids)
    items = select_keys(db, con, "order_items", "order_id", orders)
    deleted = {
        "customers": ids,
        "orders": orders,
        "order_items": items,
        "payments": select_keys(db, con, "payments", "order_id", orders),
        "shipments": select_keys(db, con, "shipments", "order_id", orders),
        "returns": select_keys(db, con, "returns", "order_item_id", items),
        "support_tickets": select_keys(db, con, "support_tickets", "customer_id", ids),
        "web_events": select_keys(db, con, "web_events", "customer_id", ids),
    }
    keep = np.ones(len(cu["customer_id"]), dtype=bool)
    keep[erased] = False
    state.customers = take(cu, keep)
    for name, plan in state.plans.items():
        state.plans[name] = take(plan, ~np.isin(plan["customer_id"], ids))
    state.abandoned = take(state.abandoned, ~np.isin(state.abandoned["customer_id"], ids))
    return deleted


def expire_abandoned_carts(state: State, out: Output, now: int) -> tuple[np.ndarray, np.ndarray]:
    """The retention job at the end of the period: (event ids to delete from the source, event ids
    of carts abandoned and expired within the period, which are dropped from the run's inserts and
    so never reach the source). The carts still open stay in the state."""
    threshold = now - ABANDONED_CART_DAYS * DAY_MS
    ab_old, ab_new = state.abandoned, out.abandoned_new
    expired_old = ab_old["event_id"][ab_old["last_ms"] < threshold]
    expired_new = ab_new["event_id"][ab_new["last_ms"] < threshold] if ab_new else np.zeros(0, np.int64)
    state.abandoned = take(ab_old, ab_old["last_ms"] >= threshold)
    state.remember_abandoned(take(ab_new, ab_new["last_ms"] >= threshold) if ab_new else {})
    if len(expired_new):
        gone = pa.array(expired_new)
        out.inserts["web_events"] = [
            t.filter(pc.invert(pc.is_in(t["event_id"], gone))) for t in out.inserts.get("web_events", [])
        ]
    return expired_old, expired_new
