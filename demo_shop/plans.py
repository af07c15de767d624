"""Plans projected onto the source: which planned rows are visible at the run's last moment, which
changed since the previous run, and the source rows they become.

A plan row gets its id when it becomes visible, in time order, so ids increase with time as a real
auto-increment's would; a plan row stays in the engine state until its last transition is past.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.cards import card_numbers
from demo_shop.clock import NEVER
from demo_shop.columns import decimals, ints, labels, source_columns, source_table, strings, timestamps
from demo_shop.dirty_rows import paste_card_numbers
from demo_shop.frames import concat, flen, take
from demo_shop.reference_data import (
    CARRIER_NAMES,
    COUNTRY_CODES,
    CURRENCY_CODES,
    DEVICES,
    METHODS,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    RETURN_REASONS,
    SHIPMENT_STATUSES,
    TICKET_STATUSES,
    TICKET_TOPICS,
    ZERO_DECIMAL,
)
from demo_shop.word_lists import CARD_NOTES, CARD_TICKETS, NOTES

if TYPE_CHECKING:
    from demo_shop.engine import Run

# plan -> (id column, column of the time it becomes visible, columns of later transitions)
PLAN_TIMES = {
    "orders": ("order_id", "ordered_ms", ("paid_ms", "shipped_ms", "delivered_ms", "cancel_ms", "returned_ms")),
    "payments": ("payment_id", "attempt_ms", ("refund_ms", "cb_ms")),
    "shipments": ("shipment_id", "shipped_ms", ("delivered_ms",)),
    "returns": ("return_id", "returned_ms", ()),
    "support_tickets": ("ticket_id", "created_ms", ("resolved_ms",)),
}


def settle_plans(run: Run) -> None:
    """Bring the source up to the run's last moment: insert what became visible, update what moved on."""
    _settle_orders(run)
    _settle_payments(run)
    _settle_shipments(run)
    _settle_returns(run)
    _settle_tickets(run)


def settle(run: Run, name: str, new_plan: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """Merge the new plans with the pending ones and project them at `now`: ids for rows that
    became visible (in time order), the rows that changed since the last run, and what stays pending."""
    st = run.state
    idc, visc, trans = PLAN_TIMES[name]
    n_old = flen(st.plans[name])
    plan = concat(st.plans[name], new_plan) if flen(new_plan) else st.plans[name]
    if not flen(plan):
        return plan, np.zeros(0, np.int64), np.zeros(0, np.int64)
    vis = plan[visc] <= run.now
    new = vis & (plan[idc] == 0)
    changed = np.zeros(len(vis), dtype=bool)
    final = vis.copy()
    for c in trans:
        changed |= (plan[c] > run.old_now) & (plan[c] <= run.now)
        final &= (plan[c] <= run.now) | (plan[c] == NEVER)
    upd = np.flatnonzero(vis & ~new & changed & (np.arange(len(vis)) < n_old))
    idx_new = np.flatnonzero(new)
    idx_new = idx_new[np.lexsort((idx_new, plan[visc][idx_new]))]
    plan[idc][idx_new] = st.take_ids(name, len(idx_new))
    st.plans[name] = take(plan, ~final)
    return plan, idx_new, upd


def _settle_orders(run: Run) -> None:
    """The new orders are inserted now, with the planted extras; pending ones may move on."""
    now, out, st = run.now, run.out, run.state
    plan, _, upd = settle(run, "orders", run.new_plans["orders"])
    n_new = len(run.o["t"])
    new_idx = np.arange(flen(plan) - n_new, flen(plan))
    status, upd_ms = order_status(plan, now)
    o, e = run.o, run.extra_orders
    notes = np.where(
        run.rng["orders"].random(n_new) < 0.04,
        np.array(NOTES, dtype=object)[run.rng["orders"].integers(0, len(NOTES), size=n_new)],
        None,
    )
    pick = paste_card_numbers(run, notes, o["cust_id"], CARD_NOTES)
    out.plant("orders", o["id"][pick], "card_number_in_text", "notes")
    E = len(e["id"])
    efee = np.where(ZERO_DECIMAL[e["cur"]], 800, 599)
    promo_codes = st.promotions["code"]
    rows = {
        "order_id": np.concatenate([o["id"], e["id"]]),
        "customer_id": np.concatenate(
            [o["cust_id"], np.where(e["kind"] == 0, e["orphan"], np.where(e["kind"] == 1, -1, e["cust_id"]))]
        ),
        "ordered_ms": np.concatenate([o["t"], e["t"]]),
        "ordered_valid": np.concatenate([np.ones(n_new, bool), e["kind"] != 2]),
        "status": np.concatenate([status[new_idx], np.zeros(E, np.int64)]),
        "channel": np.concatenate([o["channel"], np.zeros(E, np.int64)]),
        "currency": np.concatenate([o["cur"], e["cur"]]),
        "ship": np.concatenate([o["ship_c"], e["country"]]),
        "promo": np.concatenate([o["promo"], np.full(E, -1)]),
        "subtotal": np.concatenate([o["subtotal"], e["sub"]]),
        "discount": np.concatenate([o["discount"], np.zeros(E, np.int64)]),
        "fee": np.concatenate([o["fee"], efee]),
        "total": np.concatenate([o["total"], e["sub"] + efee]),
        "notes": np.concatenate([notes, np.full(E, None, dtype=object)]),
        "updated_ms": np.concatenate([upd_ms[new_idx], e["t"]]),
    }
    order = np.argsort(rows["order_id"], kind="stable")
    rows = take(rows, order)
    out.insert(
        "orders",
        source_table(
            "orders",
            {
                "order_id": ints(rows["order_id"]),
                "customer_id": ints(rows["customer_id"], null=-1),
                "ordered_at": timestamps(rows["ordered_ms"], rows["ordered_valid"]),
                "status": labels(rows["status"], ORDER_STATUSES),
                "channel": labels(rows["channel"], ORDER_CHANNELS),
                "currency": labels(rows["currency"], CURRENCY_CODES),
                "shipping_country": labels(rows["ship"], COUNTRY_CODES),
                "promo_code": strings([None if p < 0 else promo_codes[p] for p in rows["promo"]]),
                "subtotal": decimals(rows["subtotal"]),
                "discount": decimals(rows["discount"]),
                "shipping_fee": decimals(rows["fee"]),
                "total": decimals(rows["total"]),
                "notes": strings(rows["notes"]),
                "updated_at": timestamps(rows["updated_ms"]),
            },
        ),
    )
    out.update(
        "orders",
        source_columns(
            "orders",
            {
                "order_id": ints(plan["order_id"][upd]),
                "status": labels(status[upd], ORDER_STATUSES),
                "updated_at": timestamps(upd_ms[upd]),
            },
        ),
    )


def _settle_payments(run: Run) -> None:
    now, out = run.now, run.out
    plan, new, upd = settle(run, "payments", run.new_plans["payments"])
    if len(new):
        out.insert("payments", payment_rows(plan, new, now))
        out.payments_truth.append(
            {
                "payment_id": plan["payment_id"][new],
                "fraud_probability": plan["fraud_p"][new],
                "is_fraud": plan["is_fraud"][new],
            }
        )
    if len(upd):
        full = payment_rows(plan, upd, now)
        out.update("payments", full.select(["payment_id", "status", "chargeback_at", "updated_at"]))


def _settle_shipments(run: Run) -> None:
    now, out = run.now, run.out
    plan, new, upd = settle(run, "shipments", run.new_plans["shipments"])
    if len(new):
        out.insert("shipments", shipment_rows(plan, new, now))
    if len(upd):
        out.update(
            "shipments", shipment_rows(plan, upd, now).select(["shipment_id", "status", "delivered_at", "updated_at"])
        )


def _settle_returns(run: Run) -> None:
    """Returns are immutable once visible: inserts only."""
    out = run.out
    plan, new, _ = settle(run, "returns", run.new_plans["returns"])
    if len(new):
        out.insert(
            "returns",
            source_table(
                "returns",
                {
                    "return_id": ints(plan["return_id"][new]),
                    "order_item_id": ints(plan["order_item_id"][new]),
                    "quantity": ints(plan["qty"][new], pa.int32()),
                    "reason": labels(plan["reason"][new], RETURN_REASONS),
                    "refund_amount": decimals(plan["refund"][new]),
                    "returned_at": timestamps(plan["returned_ms"][new]),
                    "updated_at": timestamps(plan["returned_ms"][new]),
                },
            ),
        )


def _settle_tickets(run: Run) -> None:
    """Some shoppers paste their card number into the message: planted as they become visible."""
    now, out = run.now, run.out
    plan, new, upd = settle(run, "support_tickets", run.new_plans["support_tickets"])
    if len(new):
        bodies = plan["body"][new].copy()
        pick = paste_card_numbers(run, bodies, plan["customer_id"][new], CARD_TICKETS)
        out.insert("support_tickets", ticket_rows(plan, new, now, bodies))
        out.plant("support_tickets", plan["ticket_id"][new[pick]], "card_number_in_text", "body")
    if len(upd):
        out.update(
            "support_tickets",
            ticket_rows(plan, upd, now, plan["body"][upd]).select(
                ["ticket_id", "status", "satisfaction", "resolved_at", "updated_at"]
            ),
        )


def order_status(plan: dict, now: int) -> tuple[np.ndarray, np.ndarray]:
    """Each order's status at ``now`` and when it got it (its updated_at)."""
    status = np.zeros(flen(plan), dtype=np.int64)
    upd = plan["ordered_ms"].copy()
    for code, col in ((1, "paid_ms"), (2, "shipped_ms"), (3, "delivered_ms"), (4, "cancel_ms"), (5, "returned_ms")):
        hit = plan[col] <= now
        status = np.where(hit, code, status)
        upd = np.where(hit, plan[col], upd)
    return status, upd


def payment_rows(plan: dict, idx: np.ndarray, now: int) -> pa.Table:
    failed, refund, cb = plan["failed"][idx], plan["refund_ms"][idx], plan["cb_ms"][idx]
    status = np.where(failed, 1, np.where(cb <= now, 3, np.where(refund <= now, 2, 0)))
    upd = plan["attempt_ms"][idx]
    upd = np.where(refund <= now, np.maximum(upd, refund), upd)
    upd = np.where(cb <= now, np.maximum(upd, cb), upd)
    return source_table(
        "payments",
        {
            "payment_id": ints(plan["payment_id"][idx]),
            "order_id": ints(plan["order_id"][idx]),
            "method": labels(plan["method"][idx], METHODS),
            "card_number": strings(card_numbers(plan["card"][idx])),
            "card_country": labels(plan["card_country"][idx], COUNTRY_CODES, null=-1),
            "ip_country": labels(plan["ip_country"][idx], COUNTRY_CODES),
            "device_type": labels(plan["device"][idx], DEVICES),
            "amount": decimals(plan["amount"][idx]),
            "currency": labels(plan["currency"][idx], CURRENCY_CODES),
            "status": labels(status, PAYMENT_STATUSES),
            "paid_at": timestamps(plan["attempt_ms"][idx]),
            "chargeback_at": timestamps(cb, cb <= now),
            "updated_at": timestamps(upd),
        },
    )


def shipment_rows(plan: dict, idx: np.ndarray, now: int) -> pa.Table:
    delivered = plan["delivered_ms"][idx]
    done = delivered <= now
    return source_table(
        "shipments",
        {
            "shipment_id": ints(plan["shipment_id"][idx]),
            "order_id": ints(plan["order_id"][idx]),
            "carrier": labels(plan["carrier"][idx], CARRIER_NAMES),
            "shipped_at": timestamps(plan["shipped_ms"][idx]),
            "promised_at": timestamps(plan["promised_ms"][idx]),
            "delivered_at": timestamps(delivered, done),
            "status": labels(done.astype(np.int64), SHIPMENT_STATUSES),
            "updated_at": timestamps(np.where(done, delivered, plan["shipped_ms"][idx])),
        },
    )


def ticket_rows(plan: dict, idx: np.ndarray, now: int, bodies: np.ndarray) -> pa.Table:
    resolved = plan["resolved_ms"][idx]
    done = resolved <= now
    sat = plan["satisfaction"][idx]
    return source_table(
        "support_tickets",
        {
            "ticket_id": ints(plan["ticket_id"][idx]),
            "customer_id": ints(plan["customer_id"][idx]),
            "order_id": ints(plan["order_id"][idx], null=-1),
            "topic": labels(plan["topic"][idx], TICKET_TOPICS),
            "body": strings(bodies),
            "status": labels(done.astype(np.int64), TICKET_STATUSES),
            "satisfaction": ints(np.where(done, sat, 0), pa.int32(), null=0),
            "created_at": timestamps(plan["created_ms"][idx]),
            "resolved_at": timestamps(resolved, done),
            "updated_at": timestamps(np.where(done, resolved, plan["created_ms"][idx])),
        },
    )
