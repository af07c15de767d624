"""The ground truth files (``truth_dir``): what the source never shows, for the models to be judged by.

``customers.parquet`` (rates, hazards, churn time, churn probability), ``payments.parquet`` (fraud
probability and label), ``demand.parquet`` (expected units and orders per category and day),
``dirty_rows.parquet`` (every planted data-quality violation and its rule) and ``generation.json``
(the configuration, the runs and the definitions). A simulate appends to them and drops what the
shop deleted, so they always describe the source as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from demo_shop.churn import CHURN_WINDOW_DAYS, churn_window, customer_truth
from demo_shop.clock import to_date
from demo_shop.dirty_rows import DIRTY_SCHEMA, dirty_table
from demo_shop.orders import BURST_MEAN, BURST_P, EXTRA_LINES_N, EXTRA_LINES_P, LINES_PER_ORDER, SAME_CATEGORY_P
from demo_shop.reference_data import MEAN_UNITS, C
from demo_shop.state import ENGINE_DIR, State

if TYPE_CHECKING:
    from demo_shop.engine import Output, Run

TRUTH_FILES = ("customers.parquet", "payments.parquet", "demand.parquet", "dirty_rows.parquet", "generation.json")
PAYMENT_TRUTH_SCHEMA = pa.schema(
    [("payment_id", pa.int64()), ("fraud_probability", pa.float64()), ("is_fraud", pa.bool_())]
)


def record_run(
    truth_dir: Path,
    state: State,
    out: Output,
    counts: dict[str, int],
    run_info: dict,
    deleted: dict[str, np.ndarray] | None = None,
) -> None:
    """After a run reached the source: the truth files, then the engine state the next run continues from."""
    _write_truth(truth_dir, state, out, counts, run_info, deleted)
    state.meta["counts"] = counts
    state.save(truth_dir / ENGINE_DIR)


def clear_truth(truth_dir: Path) -> None:
    """Remove a previous shop's truth and engine state (a new generate starts from nothing)."""
    for name in TRUTH_FILES:
        (truth_dir / name).unlink(missing_ok=True)
    engine = truth_dir / ENGINE_DIR
    if engine.exists():
        for p in engine.iterdir():
            p.unlink()


def expected_demand(run: Run) -> None:
    """Exact expected units and orders per category and day, given who is alive: the ceiling of the
    forecasting model, computed from the intensity the orders were drawn from."""
    cal = run.cal
    orders = run.expected_base_by_day * (1 + BURST_P * BURST_MEAN)
    p = cal.p
    units = orders[:, None] * LINES_PER_ORDER * p * MEAN_UNITS[None, :]
    # P(order has a line in c) = 1 - P(first line not c) * E[P(extra line not c) ^ K], K ~ Bin(n, q)
    contains = 1.0 - (1.0 - p) * (1.0 - EXTRA_LINES_P * (1 - SAME_CATEGORY_P) * p) ** EXTRA_LINES_N
    exp_orders = orders[:, None] * contains
    n = run.n
    run.out.demand = pa.table(
        {
            "date": pa.array(np.repeat(cal.days, C).astype(np.int32), pa.date32()),
            "category_id": pa.array(np.tile(np.arange(1, C + 1), n).astype(np.int32)),
            "expected_units": pa.array(units.ravel()),
            "expected_orders": pa.array(exp_orders.ravel()),
        }
    )


def _payments_truth_table(out: Output) -> pa.Table:
    parts = [pa.table({k: pa.array(v) for k, v in p.items()}, schema=PAYMENT_TRUTH_SCHEMA) for p in out.payments_truth]
    return pa.concat_tables(parts) if parts else PAYMENT_TRUTH_SCHEMA.empty_table()


def _read_or_empty(path: Path, schema_: pa.Schema) -> pa.Table:
    return pq.read_table(path).cast(schema_) if path.exists() else schema_.empty_table()


def _write_truth(
    truth_dir: Path,
    state: State,
    out: Output,
    counts: dict[str, int],
    run_info: dict,
    deleted: dict[str, np.ndarray] | None = None,
) -> None:
    """Append the run to the truth files and drop the rows of keys the shop deleted (by table)."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    deleted = deleted or {}
    # payments: append, drop erased
    pay = pa.concat_tables(
        [_read_or_empty(truth_dir / "payments.parquet", PAYMENT_TRUTH_SCHEMA), _payments_truth_table(out)]
    )
    if len(deleted.get("payments", ())):
        pay = pay.filter(pc.invert(pc.is_in(pay["payment_id"], pa.array(deleted["payments"]))))
    pq.write_table(pay, truth_dir / "payments.parquet")
    # dirty rows: append, drop deleted keys
    dirty = pa.concat_tables([_read_or_empty(truth_dir / "dirty_rows.parquet", DIRTY_SCHEMA), dirty_table(out)])
    for table, keys in deleted.items():
        if len(keys):
            gone = pc.and_(
                pc.equal(dirty["table"], table),
                pc.is_in(dirty["key"], pa.array(np.asarray(keys).astype(np.int64)).cast(pa.string())),
            )
            dirty = dirty.filter(pc.invert(gone))
    pq.write_table(dirty, truth_dir / "dirty_rows.parquet")
    # demand: append the new days
    demand_path = truth_dir / "demand.parquet"
    demand = out.demand
    if demand_path.exists() and demand is not None:
        demand = pa.concat_tables([pq.read_table(demand_path), demand])
    if demand is not None:
        pq.write_table(demand, demand_path)
    # customers: recomputed (the churn window moves with the shop's last day)
    pq.write_table(customer_truth(state), truth_dir / "customers.parquet")
    meta = state.meta
    cutoff, first, last = churn_window(meta["end_day"])
    info_path = truth_dir / "generation.json"
    runs = (
        json.loads(info_path.read_text()).get("runs", [])
        if info_path.exists() and run_info.get("kind") != "generate"
        else []
    )
    runs.append(run_info)
    info = {
        "config": meta["config"],
        "start_date": to_date(meta["origin_day"]).isoformat(),
        "end_date": to_date(meta["end_day"]).isoformat(),
        "counts": counts,
        "churn": {
            "cutoff_date": cutoff.isoformat(),
            "window_start": first.isoformat(),
            "window_end": last.isoformat(),
            "window_days": CHURN_WINDOW_DAYS,
            "definition": "churn_probability = P(no order placed in (cutoff_date, cutoff_date + window_days]) "
            "given the customer's state at the end of cutoff_date; NULL for customers who signed up later",
        },
        "demand": {
            "definition": "expected_units: units on order lines placed that day (UTC date of ordered_at, "
            "cancelled orders included, planted rows excluded); expected_orders: orders with at "
            "least one line in the category"
        },
        "fraud": {
            "definition": "fraud_probability is the true model probability from facts known at payment time; "
            "is_fraud is the drawn label, visible in the source only as status 'chargeback' 10-60 days later"
        },
        "runs": runs,
    }
    info_path.write_text(json.dumps(info, indent=2))
