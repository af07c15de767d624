"""What a shop is generated from: size, length, seed, last day and how dirty it is.

Validated before anything touches the database, so a bad configuration fails with one message
naming every problem instead of half a shop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import numpy as np


@dataclass
class ShopConfig:
    customers: int
    days: int
    seed: int
    end_date: date = date(2026, 10, 31)
    dirty_rate: float = 0.005

    def validate(self) -> ShopConfig:
        problems = []

        def _int(name: str, value, lo: int, hi: int) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                problems.append(f"{name} must be an integer, got {value!r}")
            elif not lo <= value <= hi:
                problems.append(f"{name} must be between {lo:,} and {hi:,}, got {value:,}")

        _int("customers", self.customers, 1, 50_000_000)
        _int("days", self.days, 1, 3650)
        _int("seed", self.seed, 0, 2**63 - 1)
        if isinstance(self.end_date, datetime) or not isinstance(self.end_date, date):
            problems.append(f"end_date must be a datetime.date, got {self.end_date!r}")
        elif self.end_date.year < 1980 or self.end_date.year > 2200:
            problems.append(f"end_date must be between 1980 and 2200, got {self.end_date}")
        if isinstance(self.dirty_rate, bool) or not isinstance(self.dirty_rate, (int, float)) or math.isnan(self.dirty_rate):
            problems.append(f"dirty_rate must be a number, got {self.dirty_rate!r}")
        elif not 0.0 <= self.dirty_rate <= 0.5:
            problems.append(f"dirty_rate must be between 0 and 0.5 (a fraction per kind of dirty row), got {self.dirty_rate}")
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
