"""Forecast training, judged the way it will be used: forecasting days it has not seen.

The gate's windows are the last 28 days of history and the 28-day spans before them (up to
GATE_WINDOWS); for each, the forecaster is fitted on the history before it (its own rolling-origin
backtest inside that history picks a candidate per series and calibrates the intervals), each
baseline is that same fit restricted to one candidate, and every forecaster is scored on the window
with MAE, RMSE, sMAPE, MASE, bias and interval coverage. The gate metric is the mean over windows;
the forecasters registered are those fitted for the latest window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml_assets.errors import InsufficientData
from ml_assets.forecasting import features as F
from ml_assets.forecasting.model import MIN_HISTORY_DAYS, DemandForecaster, mase_scale
from ml_assets.hyperparameters import FORECAST_BACKTEST_STEP_DAYS, FORECAST_BACKTEST_WINDOWS, FORECAST_HORIZON_DAYS

HORIZON = FORECAST_HORIZON_DAYS
GATE_WINDOWS = 3
SELECTED = "selected_per_series"
# The simple forecasts any planner could make: the forecast must beat them to be worth its keep.
BASELINES = ("seasonal_naive", "window_mean", "ets")
NAIVE_REFERENCE = "seasonal_naive"
MIN_DAYS = MIN_HISTORY_DAYS + 2 * HORIZON  # one backtest window and one gate window


def series_metrics(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray) -> dict[str, float]:
    err = actual - forecast
    denom = np.abs(actual) + np.abs(forecast)
    smape = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
    scale = mase_scale(history)
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "smape": float(np.mean(smape)),
        "mase": float(np.mean(np.abs(err)) / scale) if scale > 0 else float("nan"),
        # total forecast over total actual, minus one: +0.18 is a forecast that runs 18% high
        "bias": float(forecast.sum() / actual.sum() - 1) if actual.sum() > 0 else float("nan"),
    }


@dataclass
class ForecastData:
    history: pd.DataFrame  # series_id, date, y, category_id over every day
    promotions: pd.DataFrame
    origin: pd.Timestamp  # last day of the latest training history; the latest holdout follows
    products: list[int]

    def origins(self) -> list[pd.Timestamp]:
        """The gate windows' origins, oldest first: each leaves its forecaster at least one backtest window."""
        first = self.history["date"].min()
        found = [self.origin - pd.Timedelta(days=HORIZON * k) for k in range(GATE_WINDOWS)]
        return sorted(o for o in found if (o - first).days + 1 >= MIN_HISTORY_DAYS + HORIZON)

    def train_input(self, origin: pd.Timestamp | None = None) -> pd.DataFrame:
        return F.model_input(self.history, self.promotions, self.origin if origin is None else origin, 0)

    def holdout_input(self, origin: pd.Timestamp | None = None) -> pd.DataFrame:
        return F.model_input(self.history, self.promotions, self.origin if origin is None else origin, HORIZON)

    def actuals(self, origin: pd.Timestamp | None = None) -> pd.DataFrame:
        o, h = self.origin if origin is None else origin, self.history
        return h[(h["date"] > o) & (h["date"] <= o + pd.Timedelta(days=HORIZON))]


@dataclass
class ForecastTraining:
    data: ForecastData
    forecasters: dict[str, DemandForecaster] = field(default_factory=dict)
    holdout: pd.DataFrame | None = None  # per window x series x day: actual, each forecaster's forecast + intervals
    per_series: pd.DataFrame | None = None  # per window x series x forecaster: metrics
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # forecaster -> aggregate metrics


def load_data(con) -> ForecastData:
    products = F.top_products(con)
    hist = F.history(con, products)
    if hist.empty:
        raise InsufficientData("forecasting: prod.daily_sales is empty: generate or extract a shop first")
    first, last = hist["date"].min(), hist["date"].max()
    days = (last - first).days + 1
    if days < MIN_DAYS:
        raise InsufficientData(
            f"forecasting needs at least {MIN_DAYS} days of sales history ({MIN_HISTORY_DAYS} to start from, a "
            f"{HORIZON}-day backtest window and a {HORIZON}-day holdout); prod.daily_sales covers {days}: "
            "load more days of history"
        )
    promos = F.promotion_calendar(con, first.date(), (last + pd.Timedelta(days=HORIZON)).date())
    return ForecastData(hist, promos, last - pd.Timedelta(days=HORIZON), products)


def histories(data: ForecastData, origin: pd.Timestamp) -> dict[str, np.ndarray]:
    return {sid: part["y"].to_numpy() for sid, part in data.train_input(origin).groupby("series_id")}


def forecaster(
    n_windows: int = FORECAST_BACKTEST_WINDOWS, step_days: int = FORECAST_BACKTEST_STEP_DAYS
) -> DemandForecaster:
    return DemandForecaster(horizon=HORIZON, n_windows=n_windows, step_days=step_days)


def evaluate(model: DemandForecaster, data: ForecastData, origin: pd.Timestamp | None = None) -> pd.DataFrame:
    """The model's forecasts of the window after ``origin`` (default: the latest holdout) joined to the
    actuals (one row per series and day). The model forecasts from the history up to the origin only."""
    X = data.holdout_input(origin)
    pred = model.predict(X)
    out = pd.concat([X[["series_id", "date"]], pred], axis=1).dropna(subset=["forecast"])
    return out.merge(data.actuals(origin)[["series_id", "date", "y"]], on=["series_id", "date"], how="left")


def score_on_windows(model: DemandForecaster, data: ForecastData) -> float:
    """The gate metric of an already fitted model (the champion) on the gate's windows."""
    scores = []
    for origin in data.origins():
        hist = histories(data, origin)
        scores += [
            series_metrics(p["y"].to_numpy(), p["forecast"].to_numpy(), hist[sid])["mase"]
            for sid, p in evaluate(model, data, origin).groupby("series_id")
            if sid.startswith("category:")
        ]
    return float(np.mean(scores))


def aggregate(per_series: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, float]:
    """Mean metrics by level and measure over every window (``category_units_mase`` ...), interval
    coverage, the gate metric ``mase_category`` (mean MASE over every category series and window) and
    the same for the latest window alone (``latest_...``)."""
    out = {}
    for (level, measure), part in per_series.groupby(["level", "measure"]):
        for m in ("mae", "rmse", "smape", "mase", "bias"):
            out[f"{level}_{measure}_{m}"] = float(part[m].mean())
    latest = per_series["window"].max()
    for prefix, rows, days in (
        ("", per_series, holdout),
        ("latest_", per_series[per_series["window"] == latest], holdout[holdout["window"] == latest]),
    ):
        out[f"{prefix}mase_category"] = float(rows[rows["level"] == "category"]["mase"].mean())
        for level in ("category", "product"):
            h = days[days["series_id"].str.startswith(level)]
            for nominal, lo, hi in ((80, "lo80", "hi80"), (95, "lo95", "hi95")):
                out[f"{prefix}{level}_coverage_{nominal}"] = float(((h["y"] >= h[lo]) & (h["y"] <= h[hi])).mean())
    out["gate_windows"] = float(per_series["window"].nunique())
    return out


def fit_candidates(
    data: ForecastData,
    n_windows: int = FORECAST_BACKTEST_WINDOWS,
    step_days: int = FORECAST_BACKTEST_STEP_DAYS,
    log: Callable[[str], None] | None = None,
) -> ForecastTraining:
    """For each gate window: one backtest of every candidate on the history before it; the per-series
    selection and each baseline alone, scored on the window. The latest window's fits are registered."""
    say = log or (lambda message: None)
    result = ForecastTraining(data)
    holdouts, rows = [], []
    origins = data.origins()
    if not origins:
        days = (data.history["date"].max() - data.history["date"].min()).days + 1
        raise InsufficientData(
            f"forecasting needs at least {MIN_DAYS} days of sales history to backtest and hold "
            f"out {HORIZON} days; the data covers {days}: load more days of history"
        )
    for k, origin in enumerate(origins, 1):
        latest = origin == origins[-1]
        say(
            f"gate window {k}/{len(origins)}: fitting on the history to {origin.date()}, "
            f"forecasting the {HORIZON} days after it"
        )
        selected = forecaster(n_windows, step_days).fit(data.train_input(origin), log=say if latest else None)
        forecasters = {SELECTED: selected, **{b: selected.restricted_to(b) for b in BASELINES}}
        if latest:
            result.forecasters = forecasters
        history = histories(data, origin)
        for name, model in forecasters.items():
            h = evaluate(model, data, origin).assign(forecaster=name, window=k)
            holdouts.append(h)
            for sid, part in h.groupby("series_id"):
                level, key, measure = F.parse_series_id(sid)
                chosen = model.selection_[sid]
                rows.append(
                    {
                        "window": k,
                        "origin": origin,
                        "forecaster": name,
                        "series_id": sid,
                        "level": level,
                        "key": key,
                        "measure": measure,
                        "model": chosen,
                        "backtest_mase": model.validation_mase_.get(f"{sid}|{chosen}", float("nan")),
                        **series_metrics(part["y"].to_numpy(), part["forecast"].to_numpy(), history[sid]),
                    }
                )
        window = pd.DataFrame(rows[-len(forecasters) * len(history) :])
        scores = window[window["level"] == "category"].groupby("forecaster")["mase"].mean()
        say(f"gate window {k}/{len(origins)}: category MASE " + ", ".join(f"{n} {scores[n]:.3f}" for n in forecasters))
    result.holdout = pd.concat(holdouts, ignore_index=True)
    result.per_series = pd.DataFrame(rows)
    for name in result.forecasters:
        mine = result.per_series["forecaster"] == name
        result.metrics[name] = aggregate(result.per_series[mine], result.holdout[result.holdout["forecaster"] == name])
        latest = result.per_series[mine & (result.per_series["window"] == len(origins))]
        result.metrics[name]["backtest_mase_category"] = float(
            latest[latest["level"] == "category"]["backtest_mase"].mean()
        )
    return result


def best(result: ForecastTraining, metric: str = "mase_category") -> str:
    """The forecaster that ships: the lowest mean MASE over the gate windows; a tie goes to the
    per-series selection (on the demo shop it chooses the 28-day mean for every series)."""
    scores = {n: m[metric] for n, m in result.metrics.items()}
    return min(scores, key=lambda n: (scores[n], n != SELECTED))


def latest(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the latest gate window (the forecasters that are registered)."""
    return frame[frame["window"] == frame["window"].max()]
