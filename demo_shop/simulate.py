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

``stream_shop`` (``shoplake simulate --rate R``) runs the same engine live: one simulated day at a
time, written in small slices of the day's clock every few seconds of wall time, paced to R orders a
minute, for a source that changes continuously (issue 21's freshness mode).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo_shop import writer
from demo_shop.clock import to_date
from demo_shop.engine import Output, Run
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
    seed = int(state.meta["config"]["seed"] if seed is None else seed)
    _check_same_shop(db, state, truth_dir)

    con = writer.connect(db, bulk=False)
    try:
        day = _plan_period(db, con, state, int(days), seed, progress)
        # one transaction: deletes, inserts, updates
        deleted_counts = writer.delete_all(db, con, day.deleted)
        inserted = writer.insert_all(db, con, day.out.inserts, progress, commit_each=False)
        updated = writer.update_all(db, con, day.out.updates, progress)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.close()
    return _record_period(truth_dir, state, day, inserted, updated, deleted_counts, seed, started)


@dataclass
class _Period:
    """One engine run computed in memory: what the source must receive and the truth must record."""

    run: Run
    out: Output
    deleted: dict[str, np.ndarray]  # all deletes: the erasures and the carts expired from the source
    erased: dict[str, np.ndarray]  # at the start of the period
    expired: np.ndarray  # web events of expired carts, deleted at its end
    expired_new: np.ndarray  # expired within the period: never reach the source


def _plan_period(db: SourceDatabase, con, state: State, days: int, seed: int, progress: bool) -> _Period:
    run = Run(state, days, seed, float(state.meta["config"]["dirty_rate"]), progress=progress)
    erased = erase_customers(db, con, state, run, days)
    out = run.run()
    expired_old, expired_new = expire_abandoned_carts(state, out, run.now)
    deleted = dict(erased)
    deleted["web_events"] = np.concatenate([erased.get("web_events", np.zeros(0, np.int64)), expired_old])
    return _Period(run, out, deleted, erased, expired_old, expired_new)


def _record_period(
    truth_dir: Path,
    state: State,
    day: _Period,
    inserted: dict[str, int],
    updated: dict[str, int],
    deleted_counts: dict[str, int],
    seed: int,
    started: float,
) -> dict:
    """After the period reached the source: the truth files and the engine state, and its summary."""
    run = day.run
    # truth: dirty rows of keys that never reached the source are dropped like deleted ones
    truth_deleted = dict(day.deleted)
    truth_deleted["web_events"] = np.concatenate([day.deleted["web_events"], day.expired_new])
    previous = state.meta.get("counts", {})
    counts = {
        t.name: int(previous.get(t.name, 0)) + inserted.get(t.name, 0) - deleted_counts.get(t.name, 0)
        for t in schema.TABLES
    }
    result = {
        "start_date": to_date(run.first_day).isoformat(),
        "end_date": to_date(run.first_day + run.n - 1).isoformat(),
        "days": int(run.n),
        "seed": seed,
        "inserted": {t.name: int(inserted.get(t.name, 0)) for t in schema.TABLES},
        "updated": {t.name: int(updated.get(t.name, 0)) for t in schema.TABLES},
        "deleted": {t.name: int(deleted_counts.get(t.name, 0)) for t in schema.TABLES},
        "erased_customers": int(len(day.deleted.get("customers", ()))),
        "seconds": round(time.perf_counter() - started, 2),
    }
    record_run(truth_dir, state, day.out, counts, {"kind": "simulate", **result}, deleted=truth_deleted)
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


# -- a steady stream: `shoplake simulate --rate R` ----------------------------------------------------

DEFAULT_STEP_SECONDS = 5.0
MAX_RATE = 100_000.0  # orders per minute


class _Replay:
    """Writes one simulated day to the source in slices of its clock, oldest ``updated_at`` first.

    A real shop commits rows in the order of their ``updated_at``, which is what incremental
    extraction relies on; so a slice holds every insert and update stamped before the shop time it
    reaches. The day's erasures open it and its abandoned-cart retention job closes it.
    """

    def __init__(self, day: _Period):
        self.day = day
        self.pending: list[tuple[str, str, pa.Table, np.ndarray]] = []  # (kind, table, rows, stamps)
        for kind, frames_by_table in (("insert", day.out.inserts), ("update", day.out.updates)):
            for t in schema.TABLES:
                parts = frames_by_table.get(t.name)
                if not parts:
                    continue
                rows = pa.concat_tables(parts)
                stamps = pc.cast(rows["updated_at"], pa.int64()).fill_null(day.run.P0).to_numpy()
                order = np.argsort(stamps, kind="stable")
                self.pending.append((kind, t.name, rows.take(pa.array(order)), stamps[order]))
        self.positions = [0] * len(self.pending)
        self.started = False
        self.totals: dict[str, dict[str, int]] = {"inserted": {}, "updated": {}, "deleted": {}}

    @property
    def orders(self) -> int:
        return sum(t.num_rows for t in self.day.out.inserts.get("orders", []))

    def write_until(self, db: SourceDatabase, con, shop_ms: int) -> dict[str, dict[str, int]]:
        """Write (one transaction) what the shop did before ``shop_ms``; returns the rows by kind and table."""
        step: dict[str, dict[str, int]] = {"inserted": {}, "updated": {}, "deleted": {}}
        if not self.started:
            step["deleted"].update(writer.delete_all(db, con, self.day.erased))
            self.started = True
        day_over = shop_ms > self.day.run.now
        for i, (kind, table, rows, stamps) in enumerate(self.pending):
            # at the end of the day, every row left: a dirty stamp may lie outside the day
            start, end = self.positions[i], len(stamps) if day_over else int(np.searchsorted(stamps, shop_ms))
            if end <= start:
                continue
            part = {table: [rows.slice(start, end - start)]}
            if kind == "insert":
                step["inserted"].update(writer.insert_all(db, con, part, progress=False, commit_each=False))
            else:
                step["updated"].update(writer.update_all(db, con, part, progress=False))
            self.positions[i] = end
        if day_over and len(self.day.expired):
            n = writer.delete_keys(db, con, "web_events", self.day.expired)
            step["deleted"]["web_events"] = step["deleted"].get("web_events", 0) + n
        con.commit()
        for kind, by_table in step.items():
            for table, n in by_table.items():
                self.totals[kind][table] = self.totals[kind].get(table, 0) + n
        return step


def _describe(step: dict[str, dict[str, int]]) -> str:
    signs = {"inserted": "+", "updated": "~", "deleted": "-"}
    parts = [f"{signs[kind]}{n} {table}" for kind, by_table in step.items() for table, n in by_table.items() if n]
    return ", ".join(parts) or "nothing"


def stream_shop(
    rate: float,
    source_url: str,
    truth_dir: Path,
    minutes: float | None = None,
    step_seconds: float = DEFAULT_STEP_SECONDS,
    seed: int | None = None,
    echo: Callable[[str], None] = print,
    max_steps: int | None = None,
) -> dict:
    """Run the shop live: about ``rate`` orders per minute of wall time, with everything that follows them.

    The engine simulates one day at a time in memory; its rows reach the source every ``step_seconds``
    in slices of the day's clock, paced so the day's orders take ``orders / rate`` minutes (a day
    without orders takes one order's time). Stops after ``minutes`` or ``max_steps`` writes (None: until
    interrupted) and
    always at the end of a day: the rest of the current day is written at once, so the source and the
    engine state agree and ``simulate`` can continue. Returns what it wrote, as ``simulate_shop``.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= MAX_RATE:
        raise ValueError(
            f"rate must be a number of orders per minute above 0 and at most {MAX_RATE:,.0f}, got {rate!r}"
        )
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0):
        raise ValueError(f"minutes must be a positive number, got {minutes!r}")
    if isinstance(step_seconds, bool) or not isinstance(step_seconds, (int, float)) or not 0 < step_seconds <= 3600:
        raise ValueError(f"step seconds must be above 0 and at most 3600, got {step_seconds!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"steps must be a whole number of at least 1, got {max_steps!r}")
    started = time.perf_counter()
    truth_dir = Path(truth_dir)
    state = State.load(truth_dir / ENGINE_DIR)
    db = SourceDatabase(source_url)
    seed = int(state.meta["config"]["seed"] if seed is None else seed)
    _check_same_shop(db, state, truth_dir)
    deadline = started + minutes * 60 if minutes is not None else float("inf")
    totals: dict[str, dict[str, int]] = {"inserted": {}, "updated": {}, "deleted": {}}
    days: list[dict] = []
    steps = 0
    echo(f"streaming about {rate:g} orders a minute into {db.redacted_url}, a step every {step_seconds:g} s")

    stop = threading.Event()  # Ctrl-C or SIGTERM: finish the current day, then stop
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    con = writer.connect(db, bulk=False)
    replay: _Replay | None = None
    try:
        day_started = time.perf_counter()  # the wall time at which the current day's midnight is written
        next_step = day_started
        while True:
            stopping = (
                stop.is_set() or time.perf_counter() >= deadline or (max_steps is not None and steps >= max_steps)
            )
            if replay is None:
                if stopping and days:
                    break
                replay = _Replay(_plan_period(db, con, state, 1, seed, progress=False))
                day_seconds = max(replay.orders, 1) * 60.0 / rate
            if not stopping:
                stop.wait(max(0.0, min(next_step, deadline) - time.perf_counter()))
            now = time.perf_counter()
            stopping = stop.is_set() or now >= deadline or (max_steps is not None and steps >= max_steps)
            run = replay.day.run
            fraction = 1.0 if stopping else (now - day_started) / day_seconds
            shop_ms = run.P1 if fraction >= 1 else run.P0 + int(fraction * (run.P1 - run.P0))
            step = replay.write_until(db, con, shop_ms)
            steps += 1
            clock = (
                f"{to_date(run.first_day).isoformat()} (rest of the day)" if shop_ms >= run.P1 else _shop_time(shop_ms)
            )
            echo(f"{time.strftime('%H:%M:%S')} shop {clock}: {_describe(step)}")
            if shop_ms < run.P1:
                next_step += step_seconds
                continue
            # the day is written: record it, and start the next where it ended
            written = replay.totals
            summary = _record_period(
                truth_dir,
                state,
                replay.day,
                inserted=written["inserted"],
                updated=written["updated"],
                deleted_counts=written["deleted"],
                seed=seed,
                started=day_started,
            )
            days.append(summary)
            for kind in totals:
                for table, n in written[kind].items():
                    totals[kind][table] = totals[kind].get(table, 0) + n
            echo(f"  day {summary['start_date']} complete: {replay.orders} orders; {_describe(written)}")
            replay = None
            day_started += day_seconds
    except BaseException:
        con.rollback()
        raise
    finally:
        con.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return {
        "start_date": days[0]["start_date"],
        "end_date": days[-1]["end_date"],
        "days": len(days),
        "steps": steps,
        "seed": seed,
        "orders": sum(d["inserted"]["orders"] for d in days),
        "inserted": {t.name: totals["inserted"].get(t.name, 0) for t in schema.TABLES},
        "updated": {t.name: totals["updated"].get(t.name, 0) for t in schema.TABLES},
        "deleted": {t.name: totals["deleted"].get(t.name, 0) for t in schema.TABLES},
        "erased_customers": sum(d["erased_customers"] for d in days),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _shop_time(ms: int) -> str:
    return np.datetime64(int(ms), "ms").astype("datetime64[s]").astype(str).replace("T", " ")
