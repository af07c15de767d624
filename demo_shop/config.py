"""What a shop is generated from: size, length, seed, last day, how dirty it is, and what kind of shop.

The last group (repeat buying, seasonality, categories, currencies, payment methods, chargebacks,
web events, free items) makes *hard* shops on demand: shops with little of the signal the demo shop
is rich in, like real ones. Their defaults are the demo shop, which stays byte-identical for a seed.
``PROFILES`` names ready-made sets of them (``real-like``: all of them at once).

Validated before anything touches the database, so a bad configuration fails with one message
naming every problem instead of half a shop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta

import numpy as np

from demo_shop.reference_data import CATEGORIES, METHODS

# A shop like the one the demo shop's signal hid: most customers buy once, weak noisy seasonality,
# one category, USD only, bank transfers (no cards, so no chargebacks), no web events, a few free items.
REAL_LIKE = {
    "repeat_rate": 0.45,
    "seasonality": 0.25,
    "demand_noise": 0.35,
    "categories": 1,
    "one_currency": True,
    "payment_method": "bank_transfer",
    "chargebacks": False,
    "web_events": False,
    "free_item_rate": 0.002,
}
PROFILES: dict[str, dict] = {"demo": {}, "real-like": REAL_LIKE}


@dataclass
class ShopConfig:
    customers: int
    days: int
    seed: int
    end_date: date = date(2026, 10, 31)
    dirty_rate: float = 0.005
    # ---- the kind of shop (defaults: the demo shop)
    repeat_rate: float = 1.0  # probability a customer can still buy again after each order (1: always; 0: one order)
    seasonality: float = 1.0  # amplitude of the yearly and weekly cycles (1: the demo shop's; 0: none)
    demand_noise: float = 0.0  # sigma of a daily log-normal shock on the whole shop's demand
    categories: int = len(CATEGORIES)  # the first N categories of reference_data.CATEGORIES are sold
    one_currency: bool = False  # every price and payment in USD at the list price (else the shopper's currency)
    payment_method: str | None = None  # every payment by this method (else each country's mix)
    chargebacks: bool = True  # fraud surfaces as chargebacks (False: it happens, but is never charged back)
    web_events: bool = True  # the clickstream is tracked
    free_item_rate: float = 0.0  # fraction of order lines given away at a unit price of 0.00

    @classmethod
    def with_profile(cls, profile: str, **kwargs) -> ShopConfig:
        """A config from a named profile (``PROFILES``); explicit keyword arguments win over it."""
        if profile not in PROFILES:
            raise ValueError(f"unknown shop profile {profile!r}: choose one of {', '.join(PROFILES)}")
        return cls(**(PROFILES[profile] | kwargs))

    @classmethod
    def from_dict(cls, d: dict) -> ShopConfig:
        """The config a shop was generated with (engine state, generation.json); older ones lack the options."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("end_date"), str):
            d["end_date"] = date.fromisoformat(d["end_date"])
        return cls(**d)

    def validate(self) -> ShopConfig:
        problems = []

        def _int(name: str, value, lo: int, hi: int) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                problems.append(f"{name} must be an integer, got {value!r}")
            elif not lo <= value <= hi:
                problems.append(f"{name} must be between {lo:,} and {hi:,}, got {value:,}")

        def _number(name: str, value, lo: float, hi: float, meaning: str) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                problems.append(f"{name} must be a number, got {value!r}")
            elif not lo <= value <= hi:
                problems.append(f"{name} must be between {lo:g} and {hi:g} ({meaning}), got {value}")

        def _bool(name: str, value) -> None:
            if not isinstance(value, (bool, np.bool_)):
                problems.append(f"{name} must be true or false, got {value!r}")

        _int("customers", self.customers, 1, 50_000_000)
        _int("days", self.days, 1, 3650)
        _int("seed", self.seed, 0, 2**63 - 1)
        if isinstance(self.end_date, datetime) or not isinstance(self.end_date, date):
            problems.append(f"end_date must be a datetime.date, got {self.end_date!r}")
        elif self.end_date.year < 1980 or self.end_date.year > 2200:
            problems.append(f"end_date must be between 1980 and 2200, got {self.end_date}")
        _number("dirty_rate", self.dirty_rate, 0.0, 0.5, "a fraction per kind of dirty row")
        _number("repeat_rate", self.repeat_rate, 0.0, 1.0, "the chance of buying again after an order")
        _number("seasonality", self.seasonality, 0.0, 2.0, "1 is the demo shop's cycles, 0 none")
        _number("demand_noise", self.demand_noise, 0.0, 1.0, "the sigma of a daily log-normal shock")
        _int("categories", self.categories, 1, len(CATEGORIES))
        _bool("one_currency", self.one_currency)
        if self.payment_method is not None and self.payment_method not in METHODS:
            problems.append(
                f"payment_method must be one of {', '.join(METHODS)} (or None for each country's mix), "
                f"got {self.payment_method!r}"
            )
        _bool("chargebacks", self.chargebacks)
        _bool("web_events", self.web_events)
        _number("free_item_rate", self.free_item_rate, 0.0, 0.5, "a fraction of order lines")
        if problems:
            raise ValueError("invalid shop configuration: " + "; ".join(problems))
        return self

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["end_date"] = self.end_date.isoformat()
        return d
