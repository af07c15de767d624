"""The demand forecaster: three candidates per series, the best one chosen per series by a
rolling-origin backtest, with prediction intervals from the backtest's own errors.

Candidates:

* ``seasonal_naive``: the last observed week, repeated;
* ``ets``: additive exponential smoothing with a weekly season (Holt-Winters without trend), its two
  smoothing weights chosen per series by one-step-ahead squared error;
* ``xgboost``: one global model per measure over all series, on calendar, promotion and lag features
  known at the forecast origin (a direct multi-horizon model: the horizon is a feature);
* ``ets_xgboost_mean``: the mean of the two, whose errors are far from perfectly correlated.

``fit(X)`` takes every series' history (the frame ``features.model_input`` builds) and runs the
backtest inside that history: forecasts from origins 28, 56 and 84 days before its end, scored with
MASE per series. Each series gets the candidate with the lowest mean MASE over its group (same level
and measure) unless another one is clearly (5%) better on that series, and its 80%/95% intervals
come from the empirical quantiles of those backtest errors (scaled by sqrt of the forecast, since the
spread of counts grows with their level). ``predict(X)`` forecasts every row with y = NaN after each
series' last known day, from the history given in X, so the same registered model keeps forecasting
as new days arrive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from xgboost import XGBRegressor

from ml_assets.errors import MalformedFrame
from ml_assets.forecasting import features as F

CANDIDATES = ("seasonal_naive", "ets", "xgboost", "ets_xgboost_mean")
SEASON = 7
MIN_HISTORY_DAYS = 28
MAX_VALIDATION_FOLDS = 3
SELECTION_MARGIN = 0.05
TRAIN_ORIGIN_STEP = 3
QUANTILES = (0.025, 0.1, 0.9, 0.975)
INTERVAL_COLUMNS = ["lo95", "lo80", "hi80", "hi95"]
OUTPUT_COLUMNS = ["forecast", "lo80", "hi80", "lo95", "hi95"]
ETS_ALPHAS = np.array([0.02, 0.05, 0.1, 0.2, 0.4])
ETS_GAMMAS = np.array([0.01, 0.05, 0.15])
XGB_FEATURES = ["h", "dow", "dom", "month", "doy_sin", "doy_cos", "promo_pct", "site_promo", "promo_days_28",
                "level_7", "level_28", "same_weekday_4w", "last_year", "log_scale", "is_product"]


# ---------------------------------------------------------------------------------------------
# The local candidates
# ---------------------------------------------------------------------------------------------


def seasonal_naive(y: np.ndarray, horizon: int) -> np.ndarray:
    last_week = y[-SEASON:]
    return np.array([last_week[h % SEASON] for h in range(horizon)], dtype=float)


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


# ---------------------------------------------------------------------------------------------
# The global XGBoost candidate
# ---------------------------------------------------------------------------------------------


def _window_mean(cum: np.ndarray, end: np.ndarray, days: int) -> np.ndarray:
    """Mean of y over the ``days`` days ending at index ``end`` (fewer at the start of the series)."""
    start = np.maximum(end + 1 - days, 0)
    return (cum[end + 1] - cum[start]) / (end + 1 - start)


def design(y: np.ndarray, promo: np.ndarray, site: np.ndarray, dates: pd.DatetimeIndex, origins: np.ndarray,
           horizons: np.ndarray, is_product: bool) -> tuple[np.ndarray, np.ndarray]:
    """XGBoost features of target day ``origin + h`` using only y up to ``origin``; promotions of the
    target day itself (they are planned in advance)."""
    cum = np.concatenate([[0.0], np.cumsum(y)])
    promo_any = np.concatenate([[0.0], np.cumsum((promo + site) > 0)])
    t = origins + horizons
    scale = np.maximum(_window_mean(cum, origins, 91), 0.05)
    weeks_back = np.ceil(horizons / SEASON).astype(int)
    same_wd = np.zeros(len(t))
    count = np.zeros(len(t))
    for j in range(4):
        idx = t - SEASON * (weeks_back + j)
        ok = idx >= 0
        same_wd[ok] += y[idx[ok]]
        count += ok
    ly = t - 364
    ok_ly = ly - 3 >= 0
    last_year = np.full(len(t), np.nan)
    last_year[ok_ly] = (cum[ly[ok_ly] + 4] - cum[ly[ok_ly] - 3]) / 7.0
    target_dates = dates[0] + pd.to_timedelta(t, unit="D")
    doy = target_dates.dayofyear.to_numpy()
    return np.column_stack([
        horizons,
        target_dates.dayofweek.to_numpy(),
        target_dates.day.to_numpy(),
        target_dates.month.to_numpy(),
        np.sin(2 * np.pi * doy / 365.25),
        np.cos(2 * np.pi * doy / 365.25),
        promo[t],
        site[t],
        _window_mean(promo_any, origins, 28),
        _window_mean(cum, origins, 7) / scale,
        _window_mean(cum, origins, 28) / scale,
        same_wd / np.maximum(count, 1) / scale,
        last_year / scale,
        np.log(scale),
        np.full(len(t), float(is_product)),
    ]).astype(float), scale


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
            raise MalformedFrame(f"series {sid} has gaps in its history: y must be known for every day up to the last one")
        dates = pd.DatetimeIndex(frame["date"])
        if len(dates) > 1 and not (np.diff(dates.values).astype("timedelta64[D]") == np.timedelta64(1, "D")).all():
            raise MalformedFrame(f"series {sid}: dates must be consecutive days")
        self.index = frame.index.to_numpy()
        self.dates = dates
        self.y = frame["y"].to_numpy(dtype=float)
        self.promo = frame["promo_pct"].to_numpy(dtype=float)
        self.site = frame["site_promo"].to_numpy(dtype=float)
        self.future = len(frame) - self.n


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


def dispersion(y: np.ndarray) -> float:
    """How much the series varies per unit of level (about 1 for Poisson counts)."""
    d = y[SEASON:] - y[:-SEASON]
    return float(max(np.var(d) / (2 * max(y.mean(), 1e-9)), 1e-3)) if len(d) > 1 else 1.0


class DemandForecaster(BaseEstimator):
    def __init__(self, horizon: int = 28, seed: int = 7, only: str | None = None, n_estimators: int = 300,
                 max_depth: int = 4, learning_rate: float = 0.05):
        self.horizon = horizon
        self.seed = seed
        self.only = only
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate

    # -- candidates ---------------------------------------------------------------------------
    def _candidates(self) -> tuple[str, ...]:
        return (self.only,) if self.only else CANDIDATES

    def _needs_xgboost(self) -> bool:
        return any("xgboost" in c for c in self._candidates())

    def _xgb(self) -> XGBRegressor:
        return XGBRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                            min_child_weight=20.0, subsample=0.8, colsample_bytree=0.8, reg_lambda=10.0,
                            random_state=self.seed, n_jobs=2, tree_method="hist")

    def _fit_xgb(self, series: list[Series], end: int) -> dict[str, XGBRegressor]:
        """One model per measure on rows whose target day is at most ``end`` days into each history."""
        models = {}
        for measure in F.MEASURES:
            Xs, ys = [], []
            for s in series:
                if s.measure != measure:
                    continue
                last = min(end, s.n - 1)
                origins = np.arange(MIN_HISTORY_DAYS - 1, last, TRAIN_ORIGIN_STEP)
                o = np.repeat(origins, self.horizon)
                h = np.tile(np.arange(1, self.horizon + 1), len(origins))
                keep = o + h <= last
                if not keep.any():
                    continue
                X, scale = design(s.y, s.promo, s.site, s.dates, o[keep], h[keep], s.level == "product")
                Xs.append(X)
                ys.append(s.y[(o + h)[keep]] / scale)
            if Xs:
                models[measure] = self._xgb().fit(np.vstack(Xs), np.concatenate(ys))
        return models

    def _forecast(self, s: Series, origin: int, horizon: int, models: dict, ets: tuple[float, float]) -> dict[str, np.ndarray]:
        """Every candidate's forecast of days origin+1 .. origin+horizon from y[:origin+1]."""
        hist = s.y[: origin + 1]
        wanted = set(self._candidates())
        out = {}
        if "seasonal_naive" in wanted:
            out["seasonal_naive"] = seasonal_naive(hist, horizon)
        if wanted & {"ets", "ets_xgboost_mean"}:
            out["ets"] = ets_forecast(hist, *ets, horizon)
        if self._needs_xgboost() and s.measure in models:
            h = np.arange(1, horizon + 1)
            X, scale = design(s.y, s.promo, s.site, s.dates, np.full(horizon, origin), h, s.level == "product")
            out["xgboost"] = np.maximum(models[s.measure].predict(X) * scale, 0.0)
            if "ets_xgboost_mean" in wanted:
                out["ets_xgboost_mean"] = (out["ets"] + out["xgboost"]) / 2
        return {k: v for k, v in out.items() if k in wanted}

    # -- fit: backtest inside the history, select, calibrate, refit -------------------------------
    def fit(self, X: pd.DataFrame, y=None):
        series = split_series(X)
        n = min(s.n for s in series)
        folds = [n - 1 - self.horizon * k for k in range(1, MAX_VALIDATION_FOLDS + 1)]
        folds = [o for o in folds if o + 1 >= MIN_HISTORY_DAYS]
        if not folds:
            raise MalformedFrame(
                f"the forecaster needs at least {MIN_HISTORY_DAYS + self.horizon} days of history to validate; got {n}"
            )
        errors = {(s.sid, c): [] for s in series for c in self._candidates()}
        residuals = {}  # (series, candidate) -> normalised residuals
        for origin in folds:
            models = self._fit_xgb(series, origin) if self._needs_xgboost() else {}
            for s in series:
                hist = s.y[: origin + 1]
                actual = s.y[origin + 1: origin + 1 + self.horizon]
                scale = mase_scale(hist)
                disp = dispersion(hist)
                for name, f in self._forecast(s, origin, self.horizon, models, ets_params(hist)).items():
                    if scale > 0:
                        errors[(s.sid, name)].append(np.mean(np.abs(actual - f)) / scale)
                    residuals.setdefault((s.sid, name), []).append((actual - f) / np.sqrt(disp * np.maximum(f, 0.1 * max(hist.mean(), 1e-9))))
        self.validation_mase_ = {f"{sid}|{c}": float(np.mean(v)) for (sid, c), v in errors.items() if v}
        self.selection_ = self._select(series)
        pooled: dict[str, list] = {}
        for s in series:
            key = f"{s.level}:{s.measure}"
            pooled.setdefault(key, []).extend(residuals.get((s.sid, self.selection_[s.sid]), []))
        self.interval_quantiles_ = {k: [float(q) for q in np.quantile(np.concatenate(v), QUANTILES)]
                                    for k, v in pooled.items() if v}
        self.ets_params_ = {s.sid: list(ets_params(s.y[: s.n])) for s in series}
        self.models_ = self._fit_xgb(series, n - 1) if self._needs_xgboost() else {}
        self.validation_folds_ = len(folds)
        return self

    def _select(self, series: list[Series]) -> dict[str, str]:
        """Per series: the candidate best on average over its group (same level and measure), unless
        another candidate beats that one on this series by SELECTION_MARGIN: on short, noisy series a
        per-series winner is mostly luck, and shrinking towards the group's choice keeps that luck out."""
        def mase(sid, c):
            return self.validation_mase_.get(f"{sid}|{c}", np.inf)

        selection = {}
        for group in sorted({(s.level, s.measure) for s in series}):
            members = [s.sid for s in series if (s.level, s.measure) == group]
            means = [(np.mean([mase(sid, c) for sid in members]), i, c) for i, c in enumerate(self._candidates())]
            default = min(means)[2]
            for sid in members:
                best = min((mase(sid, c), i, c) for i, c in enumerate(self._candidates()))
                selection[sid] = best[2] if best[0] < mase(sid, default) * (1 - SELECTION_MARGIN) else default
        return selection

    # -- predict ------------------------------------------------------------------------------
    def predict_candidates(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        """Every candidate's point forecast for the rows to forecast (NaN on history rows)."""
        out = {c: pd.Series(np.nan, index=X.index) for c in self._candidates()}
        for s in split_series(X):
            if s.future:
                ets = tuple(self.ets_params_.get(s.sid) or ets_params(s.y[: s.n]))
                for name, f in self._forecast(s, s.n - 1, s.future, self.models_, ets).items():
                    out[name].loc[s.index[s.n:]] = f
        return out

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """forecast, lo80, hi80, lo95, hi95 for every row with y = NaN after its series' history."""
        out = pd.DataFrame(np.nan, index=X.index, columns=OUTPUT_COLUMNS)
        for s in split_series(X):
            if not s.future:
                continue
            name = self.selection_.get(s.sid) or self._default_candidate()
            ets = tuple(self.ets_params_.get(s.sid) or ets_params(s.y[: s.n]))
            f = self._forecast(s, s.n - 1, s.future, self.models_, ets)[name]
            hist = s.y[: s.n]
            q = self.interval_quantiles_.get(f"{s.level}:{s.measure}")
            if q is None:
                raise MalformedFrame(f"series {s.sid}: the model has no interval calibration for {s.level} {s.measure}")
            spread = np.sqrt(dispersion(hist) * np.maximum(f, 0.1 * max(hist.mean(), 1e-9)))
            rows = s.index[s.n:]
            out.loc[rows, "forecast"] = f
            for col, qv in zip(INTERVAL_COLUMNS, q):
                out.loc[rows, col] = np.maximum(f + qv * spread, 0.0)
        return out

    def _default_candidate(self) -> str:
        """For a series unseen in training: the candidate chosen most often."""
        names = list(self.selection_.values())
        return max(self._candidates(), key=lambda c: (names.count(c), -self._candidates().index(c)))
