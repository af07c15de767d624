"""The purchase intensity: how busy the shop is at each hour of a run, and by category.

Purchases (and browsing) are Poisson processes with a shared seasonal clock, sampled by inverse-CDF
of its cumulative integral, never by looping over customer-days.
The expected-demand and churn ground truths integrate the very same clock, so they are exact.

``S(t) = sum_c r_c(day) * hour_profile(hour)`` with
``r_c = share_c * season_c(day of year) * promotion_c(day) * weekly(weekday) * trend(day) * shock(day)``;
an order's first line is in category c with probability ``r_c / S``.

A shop's ``Shape`` (from its config) sets the shares (categories not sold get none), the amplitude of
the yearly and weekly cycles and the daily shock, a log-normal draw that is a pure function of
(seed, day), so every Intensity over the same days, in any run, sees the same shock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from demo_shop.clock import DAY_MS, HOUR_MS, day_of_year
from demo_shop.frames import flen
from demo_shop.reference_data import CATEGORIES, SHARES, C

if TYPE_CHECKING:
    from demo_shop.config import ShopConfig

WEEKLY = np.array([0.94, 0.91, 0.93, 0.96, 1.00, 1.13, 1.13])  # Monday .. Sunday: weekends +
WEEKLY = WEEKLY / WEEKLY.mean()
HOUR_PROFILE = np.array(
    [
        0.25,
        0.15,
        0.10,
        0.08,
        0.08,
        0.12,
        0.30,
        0.55,
        0.80,
        0.95,
        1.05,
        1.15,
        1.25,
        1.20,
        1.15,
        1.15,
        1.20,
        1.30,
        1.50,
        1.70,
        1.80,
        1.65,
        1.20,
        0.70,
    ]
)
HOUR_PROFILE = HOUR_PROFILE / HOUR_PROFILE.mean()
TREND_PER_YEAR = 0.15


def _season_matrix(scale: float = 1.0) -> np.ndarray:
    """(day of year, category): each category's Gaussian bumps (amplitudes x ``scale``), normalised to
    a yearly mean of 1."""
    doy = np.arange(1, 367)
    out = np.ones((366, C))
    for j, cat in enumerate(CATEGORIES):
        g = np.ones(366)
        for center, width, amp in cat.season:
            dist = np.abs(doy - center)
            dist = np.minimum(dist, 365.25 - dist)
            g += (amp if scale == 1.0 else amp * scale) * np.exp(-0.5 * (dist / width) ** 2)
        out[:, j] = g / g[:365].mean()
    return out


SEASON = _season_matrix()


class Shape(NamedTuple):
    """What a shop's config changes in the intensity: shares by category, the cycles, the daily shock."""

    shares: np.ndarray  # (category,), sums to 1
    season: np.ndarray  # (day of year, category)
    weekly: np.ndarray  # (weekday,), Monday first
    seed: int
    noise: float  # sigma of log(shock)


DEMO_SHAPE = Shape(SHARES, SEASON, WEEKLY, 0, 0.0)


def shape_of(config: ShopConfig | dict | None) -> Shape:
    """The intensity's shape for a shop config (or its dict, as the engine state keeps it)."""
    if config is None:
        return DEMO_SHAPE
    get = config.get if isinstance(config, dict) else lambda k, d: getattr(config, k, d)
    k, scale, noise = int(get("categories", C)), float(get("seasonality", 1.0)), float(get("demand_noise", 0.0))
    if k == C and scale == 1.0 and noise == 0.0:
        return DEMO_SHAPE
    shares = SHARES
    if k < C:
        shares = np.where(np.arange(C) < k, SHARES, 0.0)
        shares = shares / shares.sum()
    season = SEASON if scale == 1.0 else _season_matrix(scale)
    weekly = WEEKLY if scale == 1.0 else 1.0 + scale * (WEEKLY - 1.0)
    return Shape(shares, season, weekly / weekly.mean(), int(get("seed", 0)), noise)


def daily_shock(shape: Shape, days: np.ndarray) -> np.ndarray:
    """The shop-wide demand multiplier of each day: mean 1, log-normal with sigma ``shape.noise``;
    drawn from (seed, day) alone so that the churn truth's intensity and every run agree on it."""
    if shape.noise == 0.0:
        return np.ones(len(days))
    z = np.array([np.random.default_rng([shape.seed, int(d), 0x5EED]).standard_normal() for d in days])
    return np.exp(shape.noise * z - 0.5 * shape.noise**2)


def promo_multiplier(pct_bp: np.ndarray | float) -> np.ndarray:
    """Demand multiplier of a promotion from its discount: 10% -> x1.5, 20% -> x2.0, capped at x2.5."""
    return 1.0 + np.minimum(5.0 * np.asarray(pct_bp) / 10_000.0, 1.5)


class Intensity:
    """The purchase intensity over a run of days, on an hourly grid, in 'expected orders per unit of
    purchase rate': a customer with rate lambda alive over [a, b) expects lambda*(L(b)-L(a)) orders."""

    def __init__(
        self,
        first_day: int,
        n_days: int,
        origin_day: int,
        promos: dict,
        active_from: int | None = None,
        shape: Shape = DEMO_SHAPE,
    ):
        self.first_day, self.n = first_day, n_days
        self.P0 = first_day * DAY_MS
        self.H = n_days * 24
        days = first_day + np.arange(n_days)
        self.days = days
        dow = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        trend = (1.0 + TREND_PER_YEAR) ** ((days - origin_day) / 365.25)
        mult = np.ones((n_days, C))
        self.site_promo = np.full(n_days, -1, dtype=np.int64)
        self.cat_promo = np.full((n_days, C), -1, dtype=np.int64)
        last = first_day + n_days - 1
        for i in range(flen(promos)):
            s, e = max(int(promos["start_day"][i]), first_day), min(int(promos["end_day"][i]), last)
            if s > e:
                continue
            m = float(promo_multiplier(promos["pct_bp"][i]))
            cat = int(promos["category"][i])
            if cat < 0:
                mult[s - first_day : e - first_day + 1, :] *= m
                self.site_promo[s - first_day : e - first_day + 1] = i
            else:
                mult[s - first_day : e - first_day + 1, cat] *= m
                self.cat_promo[s - first_day : e - first_day + 1, cat] = i
        r = shape.shares[None, :] * shape.season[day_of_year(days) - 1] * mult * (shape.weekly[dow] * trend)[:, None]
        if shape.noise:
            r *= daily_shock(shape, days)[:, None]
        if active_from is not None:
            r[days < active_from] = 0.0
        self.r = r
        self.S = r.sum(1)
        p = np.where(self.S[:, None] > 0, r / np.where(self.S > 0, self.S, 1.0)[:, None], shape.shares[None, :])
        self.p = p
        self.pcum = np.cumsum(p, 1)
        self.pcum[:, -1] = 1.0
        self.rate_h = (self.S[:, None] * HOUR_PROFILE[None, :] / 24.0).ravel()
        self.cum = np.concatenate([[0.0], np.cumsum(self.rate_h)])

    def L(self, ms: np.ndarray) -> np.ndarray:
        x = np.clip((np.asarray(ms, dtype=np.float64) - self.P0) / HOUR_MS, 0.0, float(self.H))
        k = np.minimum(x.astype(np.int64), self.H - 1)
        return self.cum[k] + self.rate_h[k] * (x - k)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        k = np.clip(np.searchsorted(self.cum, u, side="right") - 1, 0, self.H - 1)
        rate = self.rate_h[k]
        frac = np.where(rate > 0, (u - self.cum[k]) / np.where(rate > 0, rate, 1.0), 0.0)
        return self.P0 + np.floor((k + np.clip(frac, 0.0, 0.999999)) * HOUR_MS).astype(np.int64)

    def day_of(self, ms: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(ms) - self.P0) // DAY_MS, 0, self.n - 1).astype(np.int64)

    def exposure_by_day(self, lam: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """sum_i lam_i * (intensity over [a_i, b_i) falling on each day): expected orders per day."""
        ok = (b > a) & (lam > 0)
        lam, a, b = lam[ok], a[ok], b[ok]
        out = np.zeros(self.n)
        if not len(lam):
            return out
        da, db = self.day_of(a), self.day_of(np.maximum(b - 1, a))
        same = da == db
        np.add.at(out, da[same], lam[same] * (self.L(b[same]) - self.L(a[same])))
        d = ~same
        day_end = self.P0 + (da[d] + 1) * DAY_MS
        np.add.at(out, da[d], lam[d] * (self.L(day_end) - self.L(a[d])))
        np.add.at(out, db[d], lam[d] * (self.L(b[d]) - self.L(self.P0 + db[d] * DAY_MS)))
        full = np.zeros(self.n + 1)
        np.add.at(full, da[d] + 1, lam[d])
        np.add.at(full, db[d], -lam[d])
        out += np.cumsum(full)[: self.n] * self.S
        return out

    def exposure_by_day_with_dropout(self, lam: np.ndarray, a: np.ndarray, b: np.ndarray, drop: float) -> np.ndarray:
        """Expected orders per day when each order ends the customer with probability ``drop``.

        A customer alive over [a, b) still buys at s with probability E[(1 - drop)^N(a, s)] =
        exp(-drop * lam * (L(s) - L(a))) (N Poisson), so a day [lo, hi) expects
        (exp(-drop * lam * (L(lo) - L(a))) - exp(-drop * lam * (L(hi) - L(a)))) / drop orders.
        """
        ok = (b > a) & (lam > 0)
        lam, a, b = lam[ok], a[ok], b[ok]
        out = np.zeros(self.n)
        da, db = self.day_of(a), self.day_of(np.maximum(b - 1, a))
        La = self.L(a)
        for s in range(0, len(lam), 20_000):  # customers x days expanded, in slices to bound memory
            sl = slice(s, s + 20_000)
            width = db[sl] - da[sl] + 1
            i = np.repeat(np.arange(len(width)), width)
            d = da[sl][i] + (np.arange(len(i)) - np.repeat(np.cumsum(width) - width, width))
            lo = np.maximum(a[sl][i], self.P0 + d * DAY_MS)
            hi = np.minimum(b[sl][i], self.P0 + (d + 1) * DAY_MS)
            k = drop * lam[sl][i]
            base = La[sl][i]
            np.add.at(out, d, (np.exp(-k * (self.L(lo) - base)) - np.exp(-k * (self.L(hi) - base))) / drop)
        return out

    def arrivals(
        self, La: np.ndarray, Lb: np.ndarray, counts: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``counts[i]`` event times for each interval i, spread like the intensity between its
        integrals ``La[i]`` and ``Lb[i]``: (the interval of each event, its time in ms)."""
        rep = np.repeat(np.arange(len(counts)), counts)
        return rep, self.inverse(La[rep] + rng.random(len(rep)) * (Lb - La)[rep])
