"""Forecast training: the holdout is the last 28 days; every forecaster is fitted on the history
before it (its own rolling-origin backtest picks a candidate per series inside that history), then
scored on the holdout with MAE, RMSE, sMAPE, MASE and the coverage of its intervals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml_assets.errors import InsufficientData
from ml_assets.hyperparameters import FORECAST_HORIZON_DAYS, ForecastXGBoostParams as XGBoostParams
from ml_assets.forecasting import features as F
from ml_assets.forecasting.model import MIN_HISTORY_DAYS, DemandForecaster, mase_scale

HORIZON = FORECAST_HORIZON_DAYS
SELECTED = "selected_per_series"
BASELINES = ("seasonal_naive", "ets")
XGBOOST_ONLY = "xgboost"  # reported for comparison; not a baseline of the gate
MIN_DAYS = MIN_HISTORY_DAYS + 2 * HORIZON  # one validation fold and the holdout




def series_metrics(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray) -> dict[str, float]:
    err = actual - forecast
    denom = np.abs(actual) + np.abs(forecast)
    smape = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
    scale = mase_scale(history)
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "smape": float(np.mean(smape)),
        "mase": float(np.mean(np.abs(err)) / scale) if scale > 0 else float("nan"),
    }


@dataclass
class ForecastData:
    history: pd.DataFrame  # series_id, date, y, category_id over every day
    promotions: pd.DataFrame
    origin: pd.Timestamp  # last day of the training history; the holdout follows
    products: list[int]

    def train_input(self) -> pd.DataFrame:
        return F.model_input(self.history, self.promotions, self.origin, 0)

    def holdout_input(self) -> pd.DataFrame:
        return F.model_input(self.history, self.promotions, self.origin, HORIZON)

    def actuals(self) -> pd.DataFrame:
        h = self.history
        return h[(h["date"] > self.origin) & (h["date"] <= self.origin + pd.Timedelta(days=HORIZON))]


@dataclass
class ForecastTraining:
    data: ForecastData
    forecasters: dict[str, DemandForecaster] = field(default_factory=dict)
    holdout: pd.DataFrame | None = None  # per series x day: actual and every candidate's forecast + intervals
    per_series: pd.DataFrame | None = None  # per series x forecaster: metrics
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
            f"{HORIZON}-day validation window and a {HORIZON}-day holdout); prod.daily_sales covers {days}: "
            "load more days of history"
        )
    promos = F.promotion_calendar(con, first.date(), (last + pd.Timedelta(days=HORIZON)).date())
    return ForecastData(hist, promos, last - pd.Timedelta(days=HORIZON), products)


def forecaster(name: str, seed: int, params: XGBoostParams) -> DemandForecaster:
    only = None if name == SELECTED else name
    return DemandForecaster(horizon=HORIZON, seed=seed, only=only, **params.__dict__)


def evaluate(model: DemandForecaster, data: ForecastData) -> pd.DataFrame:
    """The model's holdout forecasts joined to the actuals (one row per series and day)."""
    X = data.holdout_input()
    pred = model.predict(X)
    out = pd.concat([X[["series_id", "date"]], pred], axis=1).dropna(subset=["forecast"])
    return out.merge(data.actuals()[["series_id", "date", "y"]], on=["series_id", "date"], how="left")


def aggregate(per_series: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, float]:
    """Mean metrics by level and measure (``category_units_mase`` ...), interval coverage, and the
    gate metric ``mase_category``: mean MASE over every category series."""
    out = {}
    for (level, measure), part in per_series.groupby(["level", "measure"]):
        for m in ("mae", "rmse", "smape", "mase"):
            out[f"{level}_{measure}_{m}"] = float(part[m].mean())
    cat = per_series[per_series["level"] == "category"]
    out["mase_category"] = float(cat["mase"].mean())
    for level in ("category", "product"):
        h = holdout[holdout["series_id"].str.startswith(level)]
        for nominal, lo, hi in ((80, "lo80", "hi80"), (95, "lo95", "hi95")):
            out[f"{level}_coverage_{nominal}"] = float(((h["y"] >= h[lo]) & (h["y"] <= h[hi])).mean())
    return out


def fit_candidates(data: ForecastData, seed: int, params: XGBoostParams = XGBoostParams()) -> ForecastTraining:
    result = ForecastTraining(data)
    train_input = data.train_input()
    history = {sid: part["y"].to_numpy() for sid, part in train_input.groupby("series_id")}
    holdouts, rows = [], []
    for name in (SELECTED, *BASELINES, XGBOOST_ONLY):
        model = forecaster(name, seed, params).fit(train_input)
        result.forecasters[name] = model
        h = evaluate(model, data)
        holdouts.append(h.assign(forecaster=name))
        for sid, part in h.groupby("series_id"):
            level, key, measure = F.parse_series_id(sid)
            rows.append({"forecaster": name, "series_id": sid, "level": level, "key": key, "measure": measure,
                         "model": model.selection_[sid],
                         **series_metrics(part["y"].to_numpy(), part["forecast"].to_numpy(), history[sid])})
    result.holdout = pd.concat(holdouts, ignore_index=True)
    result.per_series = pd.DataFrame(rows)
    for name in result.forecasters:
        result.metrics[name] = aggregate(result.per_series[result.per_series["forecaster"] == name],
                                         result.holdout[result.holdout["forecaster"] == name])
    return result
