"""The demand forecaster: simple, well-understood candidates per series, the best one chosen per series
by a rolling-origin backtest over several windows, with conformal prediction intervals calibrated on
that backtest's errors.

Candidates (each looks only at the series' own history):

* ``seasonal_naive``: the last observed week, repeated;
* ``window_mean``: the mean of the last 28 days, flat (what a planner would pencil in);
* ``seasonal_window_mean``: the mean of the last four same weekdays;
* ``ets``: additive level + weekly season (Holt-Winters without trend), its two smoothing weights
  chosen per series by one-step-ahead squared error.

A global XGBoost model on calendar, promotion and lag features was a candidate before: on the demo
shop it was chosen for 8 of 32 series, made the selection's holdout MASE worse (0.865 against 0.855
without it) and took 30 of the step's 32 seconds, so it was dropped.

``fit(X)`` takes every series' history (the frame ``features.model_input`` builds) and backtests every
candidate inside it: ``n_windows`` forecasts of ``horizon`` days, from origins ``step_days`` apart
ending at the history's last day, each scored with MASE. One window flatters whoever got lucky in it
(a single window scored 0.355 where the next 28 days gave 0.77 on a real shop); several windows do
not. Each series gets the candidate with the lowest mean MASE over its group (same level and
measure) unless another one is clearly (10%) better on that series: on short, noisy series a
per-series winner is mostly luck.

Intervals are split-conformal: the 80%/95% bounds are empirical quantiles of the chosen candidate's
backtest errors (every window and horizon day), divided by the square root of the series' recent
level when they were made and multiplied by it at the forecast origin, since the spread of counts
grows with their level. Errors made on days the model had not seen are what makes coverage hold on
the days after the data; in-sample residuals are too small. The errors are pooled over the series'
group (same level and measure): one series' 168 errors come from overlapping windows over 98 days,
too few for a 97.5% quantile (95% intervals covered 91.6% of the demo shop's gate windows per series,
95.4% pooled). A shop with one category has groups of one series, and per-series bounds.

``predict(X)`` refits the chosen candidate on the history given in X and forecasts every row with
y = NaN after it, so the same registered model keeps forecasting as new days arrive. The fitted
model holds only plain numbers and names, which is what MLflow's skops format stores safely.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ml_assets.errors import MalformedFrame
from ml_assets.forecasting import features as F
from ml_assets.hyperparameters import FORECAST_BACKTEST_STEP_DAYS, FORECAST_BACKTEST_WINDOWS

CANDIDATES = ("seasonal_naive", "window_mean", "seasonal_window_mean", "ets")
SEASON = 7
WINDOW_DAYS = 28
SEASONAL_WINDOW_WEEKS = 4
MIN_HISTORY_DAYS = 28
N_WINDOWS = FORECAST_BACKTEST_WINDOWS
STEP_DAYS = FORECAST_BACKTEST_STEP_DAYS
SELECTION_MARGIN = 0.10
# Bounds of the 80% and 95% intervals: (lower, upper) quantile levels of the backtest errors.
LEVELS = {"95": (0.025, 0.975), "80": (0.1, 0.9)}
INTERVAL_COLUMNS = ["lo95", "lo80", "hi80", "hi95"]
OUTPUT_COLUMNS = ["forecast", "lo80", "hi80", "lo95", "hi95"]
ETS_ALPHAS = np.array([0.02, 0.05, 0.1, 0.2, 0.4])
ETS_GAMMAS = np.array([0.01, 0.05, 0.15])

Log = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# The local candidates
# ---------------------------------------------------------------------------------------------


def seasonal_naive(y: np.ndarray, horizon: int) -> np.ndarray:
    last_week = y[-SEASON:]
    return np.array([last_week[h % SEASON] for h in range(horizon)], dtype=float)


def window_mean(y: np.ndarray, horizon: int) -> np.ndarray:
    return np.full(horizon, float(np.mean(y[-WINDOW_DAYS:])))


def seasonal_window_mean(y: np.ndarray, horizon: int) -> np.ndarray:
    """Day h ahead: the mean of the last four days on the same weekday."""
    weeks = min(SEASONAL_WINDOW_WEEKS, len(y) // SEASON)
    profile = y[len(y) - weeks * SEASON :].reshape(weeks, SEASON).mean(axis=0)
    return np.array([profile[h % SEASON] for h in range(horizon)], dtype=float)


def _ets_filter(y: np.ndarray, alpha: np.ndarray, gamma: np.ndarray):
    """Run additive level + weekly-season smoothing for every (alpha, gamma) pair at once."""
    k = len(alpha)
    level = np.full(k, y[:SEASON].mean())
    season = np.tile(y[:SEASON] - y[:SEASON].mean(), (k, 1))
    sse = np.zeros(k)
    for t in range(SEASON, len(y)):
        s = season[:, t % SEASON]
        err = y[t] - (level + s)
        sse += err * err
        new_level = level + alpha * err
        season[:, t % SEASON] = s + gamma * (y[t] - new_level - s)
        level = new_level
    return level, season, sse


def ets_params(y: np.ndarray) -> tuple[float, float]:
    a, g = np.meshgrid(ETS_ALPHAS, ETS_GAMMAS, indexing="ij")
    _, _, sse = _ets_filter(y, a.ravel(), g.ravel())
    best = int(np.argmin(sse))
    return float(a.ravel()[best]), float(g.ravel()[best])


def ets_forecast(y: np.ndarray, alpha: float, gamma: float, horizon: int) -> np.ndarray:
    level, season, _ = _ets_filter(y, np.array([alpha]), np.array([gamma]))
    n = len(y)
    return np.maximum(level[0] + np.array([season[0, (n + h) % SEASON] for h in range(horizon)]), 0.0)


LOCAL_FORECASTS = {
    "seasonal_naive": seasonal_naive,
    "window_mean": window_mean,
    "seasonal_window_mean": seasonal_window_mean,
}


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------


class Series:
    """One series' arrays: history (known y) followed by the days to forecast (if any)."""

    def __init__(self, sid: str, frame: pd.DataFrame):
        self.sid = sid
        self.level, _, self.measure = F.parse_series_id(sid)
        known = frame["y"].notna().to_numpy()
        if not known.any():
            raise MalformedFrame(f"series {sid} has no history (every y is NaN)")
        self.n = int(np.flatnonzero(known)[-1]) + 1  # days of history
        if not known[: self.n].all():
            raise MalformedFrame(
                f"series {sid} has gaps in its history: y must be known for every day up to the last one"
            )
        dates = pd.DatetimeIndex(frame["date"])
        if len(dates) > 1 and not (np.diff(dates.values).astype("timedelta64[D]") == np.timedelta64(1, "D")).all():
            raise MalformedFrame(f"series {sid}: dates must be consecutive days")
        self.index = frame.index.to_numpy()
        self.dates = dates
        self.y = frame["y"].to_numpy(dtype=float)
        self.promo = frame["promo_pct"].to_numpy(dtype=float)
        self.site = frame["site_promo"].to_numpy(dtype=float)
        self.future = len(frame) - self.n

    @property
    def group(self) -> str:
        return f"{self.level}:{self.measure}"


def split_series(X: pd.DataFrame) -> list[Series]:
    missing = [c for c in F.INPUT_COLUMNS if c not in X.columns]
    if missing:
        raise MalformedFrame(f"the forecaster input is missing column(s) {missing}; it needs {F.INPUT_COLUMNS}")
    if X.empty:
        raise MalformedFrame("the forecaster input has no rows")
    X = X.assign(date=pd.to_datetime(X["date"]))
    for col in ("y", "promo_pct", "site_promo"):
        if not pd.api.types.is_numeric_dtype(X[col]):
            raise MalformedFrame(f"the forecaster input column `{col}` must be numeric")
    X = X.sort_values(["series_id", "date"], kind="stable")
    return [Series(str(sid), part) for sid, part in X.groupby("series_id", sort=True)]


def mase_scale(y: np.ndarray) -> float:
    """In-sample MAE of the seasonal naive forecast: the denominator of MASE."""
    return float(np.mean(np.abs(y[SEASON:] - y[:-SEASON]))) if len(y) > SEASON else float("nan")


def spread_scale(y: np.ndarray) -> float:
    """How wide errors are expected to be at the series' recent level: the square root of its mean
    over the last 28 days (counts spread like that), with a floor so that a quiet spell does not make
    every interval collapse to the forecast."""
    recent = float(np.mean(y[-WINDOW_DAYS:]))
    return math.sqrt(max(recent, 0.05 * max(float(np.mean(y)), 1e-9), 1e-6))


def conformal_quantiles(residuals: np.ndarray) -> list[float]:
    """Lower/upper bounds of the 95% and 80% intervals from scaled backtest errors, in INTERVAL_COLUMNS
    order. The split-conformal rank (ceil((n + 1) p) of n) keeps coverage at or above nominal for a
    finite sample; the bounds never exclude the point forecast (a biased candidate widens, not shifts)."""
    r = np.sort(np.asarray(residuals, dtype=float))
    n = len(r)

    def upper(p: float) -> float:
        return float(r[min(n - 1, math.ceil((n + 1) * p) - 1)])

    def lower(p: float) -> float:
        return float(r[max(0, math.floor((n + 1) * p) - 1)])

    lo95, hi95 = lower(LEVELS["95"][0]), upper(LEVELS["95"][1])
    lo80, hi80 = lower(LEVELS["80"][0]), upper(LEVELS["80"][1])
    return [min(lo95, lo80, 0.0), min(lo80, 0.0), max(hi80, 0.0), max(hi95, hi80, 0.0)]


# ---------------------------------------------------------------------------------------------
# The forecaster
# ---------------------------------------------------------------------------------------------


class DemandForecaster(BaseEstimator):
    def __init__(
        self, horizon: int = 28, only: str | None = None, n_windows: int = N_WINDOWS, step_days: int = STEP_DAYS
    ):
        self.horizon = horizon
        self.only = only
        self.n_windows = n_windows
        self.step_days = step_days

    # -- candidates ---------------------------------------------------------------------------
    def candidates(self) -> tuple[str, ...]:
        return (self.only,) if self.only else CANDIDATES

    def _forecast(
        self, s: Series, origin: int, horizon: int, ets: tuple[float, float] | None, wanted: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """The wanted candidates' forecasts of days origin+1 .. origin+horizon from y[:origin+1]."""
        hist = s.y[: origin + 1]
        out = {}
        for name in wanted:
            if name in LOCAL_FORECASTS:
                out[name] = LOCAL_FORECASTS[name](hist, horizon)
            elif name == "ets":
                out[name] = ets_forecast(hist, *(ets or ets_params(hist)), horizon)
            else:
                raise ValueError(f"unknown forecasting candidate {name!r}; known: {CANDIDATES}")
        return out

    def window_origins(self, n: int) -> list[int]:
        """Backtest origins (index of each window's last known day), oldest first: the last window
        ends on the history's last day; each earlier one starts ``step_days`` before the next."""
        origins = [n - 1 - self.horizon - self.step_days * k for k in range(self.n_windows)]
        return sorted(o for o in origins if o + 1 >= MIN_HISTORY_DAYS)

    # -- fit: backtest inside the history, select, calibrate -------------------------------------
    def fit(self, X: pd.DataFrame, y=None, log: Log | None = None):
        say = log or (lambda message: None)
        series = split_series(X)
        n = min(s.n for s in series)
        origins = self.window_origins(n)
        if not origins:
            raise MalformedFrame(
                f"the forecaster needs at least {MIN_HISTORY_DAYS + self.horizon} days of history to backtest; got {n}"
            )
        candidates = self.candidates()
        say(
            f"backtest: {len(series)} series x {len(candidates)} candidates ({', '.join(candidates)}), "
            f"{len(origins)} windows of {self.horizon} days, origins {self.step_days} days apart"
        )
        mase: dict[tuple[str, str], list[float]] = {(s.sid, c): [] for s in series for c in candidates}
        residuals: dict[tuple[str, str], list[np.ndarray]] = {(s.sid, c): [] for s in series for c in candidates}
        for k, origin in enumerate(origins, 1):
            for s in series:
                hist = s.y[: origin + 1]
                actual = s.y[origin + 1 : origin + 1 + self.horizon]
                scale, spread = mase_scale(hist), spread_scale(hist)
                for name, f in self._forecast(s, origin, self.horizon, None, candidates).items():
                    if scale > 0:
                        mase[(s.sid, name)].append(float(np.mean(np.abs(actual - f)) / scale))
                    residuals[(s.sid, name)].append((actual - f) / spread)
            say(
                f"window {k}/{len(origins)}: origin {series[0].dates[origin].date()}, forecasting the "
                f"{self.horizon} days after it, done"
            )
        self.validation_mase_ = {f"{sid}|{c}": float(np.mean(v)) for (sid, c), v in mase.items() if v}
        self.validation_windows_ = len(origins)
        self.selection_ = self._select(series)
        pooled: dict[str, list[np.ndarray]] = {}
        for s in series:
            for c in candidates:
                pooled.setdefault(f"{s.group}|{c}", []).extend(residuals[(s.sid, c)])
        self.group_quantiles_ = {k: conformal_quantiles(np.concatenate(v)) for k, v in pooled.items() if v}
        self.ets_params_ = {s.sid: list(ets_params(s.y[: s.n])) for s in series} if "ets" in candidates else {}
        for s in series:
            scores = ", ".join(f"{c} {self.validation_mase_.get(f'{s.sid}|{c}', float('nan')):.3f}" for c in candidates)
            say(f"{s.sid}: backtest MASE {scores} -> {self.selection_[s.sid]}")
        return self

    def _select(self, series: list[Series]) -> dict[str, str]:
        """Per series: the candidate best on average over its group (same level and measure), unless
        another candidate beats that one on this series by SELECTION_MARGIN."""
        candidates = self.candidates()

        def score(sid, c):
            return self.validation_mase_.get(f"{sid}|{c}", np.inf)

        selection = {}
        for group in sorted({s.group for s in series}):
            members = [s.sid for s in series if s.group == group]
            means = [(np.mean([score(sid, c) for sid in members]), i, c) for i, c in enumerate(candidates)]
            default = min(means)[2]
            for sid in members:
                best = min((score(sid, c), i, c) for i, c in enumerate(candidates))
                selection[sid] = best[2] if best[0] < score(sid, default) * (1 - SELECTION_MARGIN) else default
        return selection

    def restricted_to(self, candidate: str) -> DemandForecaster:
        """This fitted forecaster with one candidate for every series: the baselines as registrable
        models, scored on the very backtest that selected among them."""
        if candidate not in self.candidates():
            raise ValueError(f"{candidate!r} is not a candidate of this forecaster: {self.candidates()}")
        out = DemandForecaster(**{**self.get_params(), "only": candidate})
        out.validation_mase_ = {k: v for k, v in self.validation_mase_.items() if k.endswith(f"|{candidate}")}
        out.validation_windows_ = self.validation_windows_
        out.selection_ = {sid: candidate for sid in self.selection_}
        out.group_quantiles_ = {k: v for k, v in self.group_quantiles_.items() if k.endswith(f"|{candidate}")}
        out.ets_params_ = self.ets_params_ if candidate == "ets" else {}
        return out

    # -- predict ------------------------------------------------------------------------------
    def _chosen(self, s: Series) -> str:
        return self.selection_.get(s.sid) or self._default_candidate(s.group)

    def _quantiles(self, s: Series, name: str) -> list[float]:
        q = self.group_quantiles_.get(f"{s.group}|{name}")
        if q is None:  # a new kind of series: the widest bounds of that candidate over every group
            pooled = [v for k, v in self.group_quantiles_.items() if k.endswith(f"|{name}")]
            if not pooled:
                raise MalformedFrame(f"series {s.sid}: the model has no interval calibration for {name}")
            widest = np.array(pooled)
            q = [*(float(v) for v in widest[:, :2].min(axis=0)), *(float(v) for v in widest[:, 2:].max(axis=0))]
        return q

    def predict_candidates(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        """Every candidate's point forecast for the rows to forecast (NaN on history rows)."""
        out = {c: pd.Series(np.nan, index=X.index) for c in self.candidates()}
        for s in split_series(X):
            if s.future:
                ets = self.ets_params_.get(s.sid)
                for name, f in self._forecast(s, s.n - 1, s.future, ets, self.candidates()).items():
                    out[name].loc[s.index[s.n :]] = f
        return out

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """forecast, lo80, hi80, lo95, hi95 for every row with y = NaN after its series' history."""
        out = pd.DataFrame(np.nan, index=X.index, columns=OUTPUT_COLUMNS)
        for s in split_series(X):
            if not s.future:
                continue
            name = self._chosen(s)
            f = self._forecast(s, s.n - 1, s.future, self.ets_params_.get(s.sid), (name,))[name]
            spread = spread_scale(s.y[: s.n])
            rows = s.index[s.n :]
            out.loc[rows, "forecast"] = f
            for col, qv in zip(INTERVAL_COLUMNS, self._quantiles(s, name)):
                out.loc[rows, col] = np.maximum(f + qv * spread, 0.0)
        return out

    def _default_candidate(self, group: str | None = None) -> str:
        """For a series unseen in training: the candidate chosen most often in its group (or overall)."""

        def group_of(sid: str) -> str:
            level, _, measure = F.parse_series_id(sid)
            return f"{level}:{measure}"

        names = [c for sid, c in self.selection_.items() if group is None or group_of(sid) == group]
        names = names or list(self.selection_.values())
        order = self.candidates()
        return max(order, key=lambda c: (names.count(c), -order.index(c)))
