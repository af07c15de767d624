"""The activity engine: one Run advances the shop by n days.

Generating D days is simulating D days from an empty shop, so ``generate_shop`` and
``simulate_shop`` share this one engine and differ only in what they do around it (a bulk load of a
new database, or deletes and a transaction on an existing one). A run's steps live in their own
modules and talk through the Run: each reads what earlier steps left on it. The Run collects what
the source must receive (inserts, updates) and what the truth files must record; it writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from demo_shop import (
    catalog,
    customers,
    fx_rates,
    lifecycle,
    orders,
    plans,
    promotions,
    tickets,
    truth,
    web_events,
    web_sessions,
)
from demo_shop.clock import DAY_MS
from demo_shop.config import ShopConfig
from demo_shop.frames import flen
from demo_shop.intensity import Intensity, shape_of
from demo_shop.sampling import RandomStreams
from demo_shop.state import State


@dataclass
class Output:
    """What one run produced, for the writer and the truth files."""

    inserts: dict[str, list[pa.Table]] = field(default_factory=dict)
    updates: dict[str, list[pa.Table]] = field(default_factory=dict)
    dirty: list[dict] = field(default_factory=list)  # frames: table, key, rule, column
    payments_truth: list[dict] = field(default_factory=list)
    demand: pa.Table | None = None
    abandoned_new: dict = field(default_factory=dict)

    def insert(self, name: str, table: pa.Table) -> None:
        if table.num_rows:
            self.inserts.setdefault(name, []).append(table)

    def update(self, name: str, table: pa.Table) -> None:
        if table.num_rows:
            self.updates.setdefault(name, []).append(table)

    def plant(self, table: str, keys: np.ndarray, rule: str, column: str | None) -> None:
        """Record planted dirty rows (their primary keys) and the rule they break."""
        if len(keys):
            self.dirty.append({"table": table, "key": np.asarray(keys), "rule": rule, "column": column})


class Run:
    """One pass of the engine over the ``n_days`` after the state's last day.

    Seeded by (seed, number of runs so far): the same shop and seed always give the same run.
    Times: ``P0`` is the first millisecond of the run, ``P1`` the first after it, ``now`` its last.
    """

    def __init__(self, state: State, n_days: int, seed: int, dirty_rate: float, progress: bool = False):
        self.progress = progress
        self.state = state
        self.config = ShopConfig.from_dict(state.meta["config"])  # the kind of shop (its options)
        self.shape = shape_of(self.config)
        self.rng = RandomStreams(seed, state.meta["runs"])
        self.dirty_rate = dirty_rate
        self.first_day = state.meta["end_day"] + 1
        self.n = n_days
        self.P0 = self.first_day * DAY_MS
        self.P1 = self.P0 + n_days * DAY_MS
        self.now = self.P1 - 1
        self.old_now = self.P0 - 1  # the previous run's now: what changed after it is an UPDATE
        self.out = Output()
        # Filled in by the steps, in order:
        self.cal: Intensity  # promotions and fx: the purchase intensity of the run's days
        self.fx: np.ndarray  # fx_rates: USD per unit x 1e8, by (day, currency)
        self.pick: Callable[[np.ndarray, np.ndarray], np.ndarray]  # orders: product by category
        self.alive: orders.Alive  # orders: the customers alive during the run
        self.expected_base_by_day: np.ndarray  # orders: expected orders per day, before bursts
        self.o: dict  # orders: the new orders, by order
        self.lines: dict  # orders: their lines
        self.extra_orders: dict  # orders: the planted extra orders
        self.new_plans: dict[str, dict]  # lifecycle, tickets: the new orders' plans, by plan

    def run(self, n_signups: int | None = None, n_legacy: int = 0) -> Output:
        """Run every step; ``n_signups`` None (simulate) keeps the first run's signup rate."""
        st = self.state
        steps = [
            ("promotions and fx", self._calendar),
            ("catalog", lambda: None if flen(st.products) else catalog.create_catalog(self)),
            ("customers", lambda: customers.sign_up(self, n_signups, n_legacy)),
            ("orders", lambda: orders.place_orders(self)),
            ("order lifecycles", lambda: tickets.plan_tickets(self, lifecycle.plan_lifecycles(self))),
            ("payments, shipments, returns, tickets", lambda: plans.settle_plans(self)),
            ("web sessions", self._web),
            ("inventory", lambda: catalog.update_inventory(self)),
            ("expected demand", lambda: truth.expected_demand(self)),
        ]
        with tqdm(
            total=len(steps),
            desc=f"simulating {self.n} days",
            unit=" steps",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        ) as bar:
            for label, step in steps:
                bar.set_postfix_str(label)
                step()
                bar.update(1)
        st.meta["end_day"] = self.first_day + self.n - 1
        st.meta["runs"] += 1
        return self.out

    def _calendar(self) -> None:
        """Promotions first: the intensity of the run's days depends on them, and pricing on the fx rates."""
        promotions.add_promotions(self)
        self.cal = Intensity(
            self.first_day, self.n, self.state.meta["origin_day"], self.state.promotions, shape=self.shape
        )
        fx_rates.add_fx_rates(self)

    def _web(self) -> None:
        if not self.config.web_events:  # a shop that does not track its clickstream
            return
        sessions = web_sessions.plan_sessions(self)
        if flen(sessions):
            web_events.add_web_events(self, sessions)
