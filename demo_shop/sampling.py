"""Randomness: one named stream per component of a run, and the categorical draws they feed.

Named streams make the shop stable under change: a new draw in, say, the web sessions shifts only
the web sessions, never the orders or the customers of the same seed.
"""

from __future__ import annotations

import numpy as np

from demo_shop.reference_data import NCTRY

# The order is part of the seed: a stream's seed is the child of this position. Append, never reorder.
STREAMS = (
    "promotions",
    "fx",
    "signups",
    "customers",
    "orders",
    "lines",
    "payments",
    "lifecycle",
    "returns",
    "tickets",
    "sessions",
    "events",
    "dirty",
    "inventory",
    "extra",
    "catalog",
    "erasure",
    "options",
)


class RandomStreams:
    def __init__(self, seed: int, run: int):
        children = np.random.SeedSequence([int(seed), int(run)]).spawn(len(STREAMS))
        self._rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, children)}

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._rngs[name]


def choose(cum_table: np.ndarray, rows: np.ndarray | int, u: np.ndarray) -> np.ndarray:
    """Categorical draws: category k of row ``rows[i]`` of the cumulative-probability table
    (R, K) for uniform ``u[i]`` (the number of cumulative values below u), without (n, K) temporaries."""
    cum_table = np.atleast_2d(cum_table)
    R, K = cum_table.shape
    flat = (np.arange(R)[:, None] + cum_table).ravel()
    rows = np.broadcast_to(np.asarray(rows, dtype=np.int64), np.shape(u))
    j = np.searchsorted(flat, rows + u, side="left") - rows * K
    return np.clip(j, 0, K - 1)


def other_country(country: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly drawn country other than ``country`` (foreign cards, shipping abroad, travel)."""
    return (country + rng.integers(1, NCTRY, size=len(country))) % NCTRY
