"""The engine's state between runs (truth_dir/engine/): what makes simulate a continuation.

The source database holds only what a shop would store; the latent parameters and the future of
every plan must survive between ``generate`` and each ``simulate``, so they are saved as Parquet
frames plus a JSON of counters, versioned so an old state fails loudly instead of silently drifting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from demo_shop import frames
from demo_shop.clock import to_day
from demo_shop.config import ShopConfig
from demo_shop.frames import empty, flen
from orchestration.contract import schema

ENGINE_DIR = "engine"
STATE_VERSION = 2  # 2: card keys instead of card numbers (demo_shop/cards.py)

CUSTOMER_COLUMNS = {
    "customer_id": np.int64,
    "lam": np.float64,
    "hazard": np.float64,
    "dissat": np.float64,
    "signup_ms": np.int64,
    "churn_ms": np.int64,
    "country": np.int64,
    "acq": np.int64,
    "opt_in": np.bool_,
    "device": np.int64,
    "method": np.int64,
    "card": object,
    "card_country": np.int64,
    "basket_sum": np.float64,
    "basket_n": np.int64,
    "extra": np.bool_,
}
PRODUCT_COLUMNS = {
    "product_id": np.int64,
    "category": np.int64,
    "price_cents": np.int64,
    "cost_cents": np.int64,
    "weight": np.float64,
    "active": np.bool_,
    "created_ms": np.int64,
}
INVENTORY_COLUMNS = {
    "product_id": np.int64,
    "qoh": np.int64,
    "reorder_point": np.int64,
    "restock_qty": np.int64,
    "restocked_ms": np.int64,
    "updated_ms": np.int64,
}
PLAN_COLUMNS = {
    "orders": {
        "order_id": np.int64,
        "customer_id": np.int64,
        "ordered_ms": np.int64,
        "paid_ms": np.int64,
        "shipped_ms": np.int64,
        "delivered_ms": np.int64,
        "cancel_ms": np.int64,
        "returned_ms": np.int64,
    },
    "payments": {
        "payment_id": np.int64,
        "order_id": np.int64,
        "customer_id": np.int64,
        "attempt": np.int64,
        "method": np.int64,
        "card": object,
        "card_country": np.int64,
        "ip_country": np.int64,
        "device": np.int64,
        "amount": np.int64,
        "currency": np.int64,
        "attempt_ms": np.int64,
        "failed": np.bool_,
        "refund_ms": np.int64,
        "cb_ms": np.int64,
        "fraud_p": np.float64,
        "is_fraud": np.bool_,
    },
    "shipments": {
        "shipment_id": np.int64,
        "order_id": np.int64,
        "customer_id": np.int64,
        "carrier": np.int64,
        "shipped_ms": np.int64,
        "promised_ms": np.int64,
        "delivered_ms": np.int64,
    },
    "returns": {
        "return_id": np.int64,
        "order_item_id": np.int64,
        "order_id": np.int64,
        "customer_id": np.int64,
        "qty": np.int64,
        "reason": np.int64,
        "refund": np.int64,
        "returned_ms": np.int64,
    },
    "support_tickets": {
        "ticket_id": np.int64,
        "customer_id": np.int64,
        "order_id": np.int64,
        "topic": np.int64,
        "body": object,
        "created_ms": np.int64,
        "resolved_ms": np.int64,
        "satisfaction": np.int64,
    },
}
PROMO_COLUMNS = {
    "promotion_id": np.int64,
    "code": object,
    "category": np.int64,
    "pct_bp": np.int64,
    "start_day": np.int64,
    "end_day": np.int64,
    "planned_ms": np.int64,
}
ABANDONED_COLUMNS = {"event_id": np.int64, "customer_id": np.int64, "last_ms": np.int64}


@dataclass
class State:
    """Everything a run continues from: the latent customers, the catalog, stock, promotions, the
    not-yet-visible part of every plan, the open abandoned carts, the fx level and the id counters."""

    meta: dict
    customers: dict = field(default_factory=lambda: empty(CUSTOMER_COLUMNS))
    products: dict = field(default_factory=lambda: empty(PRODUCT_COLUMNS))
    inventory: dict = field(default_factory=lambda: empty(INVENTORY_COLUMNS))
    promotions: dict = field(default_factory=lambda: empty(PROMO_COLUMNS))
    plans: dict = field(default_factory=lambda: {k: empty(v) for k, v in PLAN_COLUMNS.items()})
    abandoned: dict = field(default_factory=lambda: empty(ABANDONED_COLUMNS))
    fx_log: np.ndarray | None = None

    @classmethod
    def new(cls, config: ShopConfig) -> State:
        ids = {t.name: 1 for t in schema.TABLES if len(t.primary_key) == 1}
        meta = {
            "version": STATE_VERSION,
            "config": config.as_dict(),
            "origin_day": to_day(config.start_date),
            "end_day": to_day(config.start_date) - 1,
            "promo_horizon_day": to_day(config.start_date) - 1,
            "next_ids": ids,
            "signup_rate": None,
            "runs": 0,
        }
        return cls(meta=meta)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        meta["fx_log"] = None if self.fx_log is None else [float(x) for x in self.fx_log]
        for name in ("customers", "products", "inventory", "promotions", "abandoned"):
            frames.save(getattr(self, name), directory / f"{name}.parquet")
        for name, plan in self.plans.items():
            frames.save(plan, directory / f"plan_{name}.parquet")
        (directory / "state.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: Path) -> State:
        path = directory / "state.json"
        if not path.exists():
            raise FileNotFoundError(
                f"no generator state in {directory}: simulate continues a shop made by generate_shop "
                "(`shoplake generate`) with the same truth directory; generate one first"
            )
        meta = json.loads(path.read_text())
        if meta.get("version") != STATE_VERSION:
            raise ValueError(
                f"generator state in {directory} has version {meta.get('version')}, expected {STATE_VERSION}: "
                "regenerate the shop"
            )
        fx = meta.pop("fx_log")

        def load(name: str, columns: dict) -> dict:
            f = frames.load(directory / f"{name}.parquet")
            return (
                {k: (f[k].astype(t) if t is not object else f[k]) for k, t in columns.items()}
                if flen(f)
                else empty(columns)
            )

        return cls(
            meta=meta,
            customers=load("customers", CUSTOMER_COLUMNS),
            products=load("products", PRODUCT_COLUMNS),
            inventory=load("inventory", INVENTORY_COLUMNS),
            promotions=load("promotions", PROMO_COLUMNS),
            plans={k: load(f"plan_{k}", v) for k, v in PLAN_COLUMNS.items()},
            abandoned=load("abandoned", ABANDONED_COLUMNS),
            fx_log=None if fx is None else np.array(fx),
        )

    def take_ids(self, table: str, n: int) -> np.ndarray:
        """The next ``n`` ids of a table: ids are handed out as rows appear, like an auto-increment."""
        start = self.meta["next_ids"][table]
        self.meta["next_ids"][table] = start + int(n)
        return np.arange(start, start + n, dtype=np.int64)

    def remember_abandoned(self, carts: dict) -> None:
        """Add a run's abandoned carts (event_id, customer_id, last_ms) to the open ones."""
        if carts:
            self.abandoned = {
                k: np.concatenate([self.abandoned[k], carts[k]]).astype(t) for k, t in ABANDONED_COLUMNS.items()
            }
