"""Advance an existing demo shop in place, day by simulated day.

``simulate_shop`` continues the shop that ``generate_shop`` built, with the same activity engine
(shop/engine.py): new customers and orders with everything that follows them, UPDATES of existing
rows when their plan says so (orders placed -> paid -> shipped -> delivered, shipments delivered,
stock on every sale and restock, chargebacks on older payments), and the shop's HARD DELETES
(shop/hard_deletes.py):

* GDPR erasure requests, at the start of the period: the customer row and all their orders, order
  lines, payments, shipments, returns, tickets and web events;
* the abandoned-cart retention job, at the end: every event of a session with an add_to_cart but
  no purchase whose last event is more than 30 days old.

Every row it inserts or updates gets an updated_at inside the simulated period (millisecond
precision, later than anything already in the source), as a real OLTP database would. Dirty rows
are planted in the new data at the configured rate; the truth files are kept consistent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from demo_shop import writer
from demo_shop.clock import to_date
from demo_shop.engine import Run
from demo_shop.hard_deletes import ERASURE_RATE_PER_CUSTOMER_DAY, erase_customers, expire_abandoned_carts
from demo_shop.state import ENGINE_DIR, State
from demo_shop.truth import record_run
from orchestration.contract import schema
from orchestration.contract.database import SourceDatabase

__all__ = ["simulate_shop", "ERASURE_RATE_PER_CUSTOMER_DAY"]


def simulate_shop(days: int, source_url: str, truth_dir: Path, seed: int | None = None, progress: bool = True) -> dict:
    """Advance the shop by ``days`` days after its current last day, in place.

    Returns {"start_date", "end_date", "days", "seed", "inserted": {table: n}, "updated": {...},
    "deleted": {...}, "erased_customers": n, "seconds"}. Deterministic for a given shop and seed
    (seed None: derived from the generation seed and the number of runs so far).
    """
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or not 1 <= days <= 3650:
        raise ValueError(f"days must be an integer between 1 and 3650, got {days!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    started = time.perf_counter()
    truth_dir = Path(truth_dir)
    state = State.load(truth_dir / ENGINE_DIR)
    db = SourceDatabase(source_url)
    meta = state.meta
    seed = int(meta["config"]["seed"] if seed is None else seed)
    _check_same_shop(db, state, truth_dir)
    run = Run(state, int(days), seed, float(meta["config"]["dirty_rate"]), progress=progress)

    con = writer.connect(db, bulk=False)
    try:
        deleted = erase_customers(db, con, state, run, days)
        out = run.run()
        expired_old, expired_new = expire_abandoned_carts(state, out, run.now)
        deleted["web_events"] = np.concatenate([deleted.get("web_events", np.zeros(0, np.int64)), expired_old])
        # one transaction: deletes, inserts, updates
        deleted_counts = writer.delete_all(db, con, deleted)
        inserted = writer.insert_all(db, con, out.inserts, progress, commit_each=False)
        updated = writer.update_all(db, con, out.updates, progress)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.close()

    # truth: dirty rows of keys that never reached the source are dropped like deleted ones
    truth_deleted = dict(deleted)
    truth_deleted["web_events"] = np.concatenate([deleted["web_events"], expired_new])
    previous = meta.get("counts", {})
    counts = {
        t.name: int(previous.get(t.name, 0)) + inserted.get(t.name, 0) - deleted_counts.get(t.name, 0)
        for t in schema.TABLES
    }
    seconds = round(time.perf_counter() - started, 2)
    result = {
        "start_date": to_date(run.first_day).isoformat(),
        "end_date": to_date(run.first_day + run.n - 1).isoformat(),
        "days": int(days),
        "seed": seed,
        "inserted": {t.name: int(inserted.get(t.name, 0)) for t in schema.TABLES},
        "updated": {t.name: int(updated.get(t.name, 0)) for t in schema.TABLES},
        "deleted": {t.name: int(deleted_counts.get(t.name, 0)) for t in schema.TABLES},
        "erased_customers": int(len(deleted.get("customers", ()))),
        "seconds": seconds,
    }
    record_run(truth_dir, state, out, counts, {"kind": "simulate", **result}, deleted=truth_deleted)
    return result


def _check_same_shop(db: SourceDatabase, state: State, truth_dir: Path) -> None:
    """The source must be the shop whose state is in truth_dir, at the same last day."""
    con = db.connect()
    try:
        cur = con.cursor()
        cur.execute(f"SELECT MAX({db.quote('rate_date')}) FROM {db.quote('fx_rates')}")
        (last,) = cur.fetchone()
    finally:
        con.close()
    expected = to_date(state.meta["end_day"]).isoformat()
    if last is None or str(last)[:10] != expected:
        raise ValueError(
            f"the source {db.redacted_url} ends on {last} but the generator state in {truth_dir} ends on {expected}: "
            "they belong to different shops (or one of them was changed by hand). Regenerate the shop, or point "
            "the truth directory at the one generate_shop wrote for this source."
        )
