"""The demand forecaster on synthetic daily series: the candidates' arithmetic, the conformal
bounds, input checks, and what users rely on: on days the model never saw, the forecast beats the
simple baselines and its 80%/95% intervals cover close to 80%/95% of the days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_assets.errors import InsufficientData, MalformedFrame
from ml_assets.forecasting import features as FF
from ml_assets.forecasting import train as FT
from ml_assets.forecasting.model import (
    CANDIDATES,
    DemandForecaster,
    conformal_quantiles,
    seasonal_naive,
    seasonal_window_mean,
    window_mean,
)

COVERAGE_TOLERANCE = 0.05


def test_the_simple_candidates():
    y = np.arange(1, 36, dtype=float)  # five weeks: 1..35
    assert seasonal_naive(y, 9).tolist() == [29, 30, 31, 32, 33, 34, 35, 29, 30]
    assert window_mean(y, 3).tolist() == [21.5] * 3  # mean of 8..35
    # the mean of the last four same weekdays: day 1 ahead is like 8, 15, 22, 29 -> 18.5
    assert seasonal_window_mean(y, 8).tolist() == [18.5, 19.5, 20.5, 21.5, 22.5, 23.5, 24.5, 18.5]


def test_conformal_bounds_take_the_split_conformal_ranks_and_never_exclude_the_forecast():
    centred = np.arange(-49, 50, dtype=float)  # 99 errors: ranks ceil(100 p) from the top, floor(100 p) from below
    assert conformal_quantiles(centred) == [-48.0, -40.0, 40.0, 48.0]  # lo95, lo80, hi80, hi95
    # a candidate that always under-forecasts: the upper bounds follow its errors, the lower ones stay at 0
    assert conformal_quantiles(np.arange(1, 100, dtype=float)) == [0.0, 0.0, 90.0, 98.0]


def _history(series: dict[str, np.ndarray], start: str = "2025-01-01") -> pd.DataFrame:
    frames = []
    for i, (sid, y) in enumerate(series.items()):
        dates = pd.date_range(start, periods=len(y), freq="D")
        frames.append(pd.DataFrame({"series_id": sid, "date": dates, "y": y.astype(float), "category_id": i}))
    return pd.concat(frames, ignore_index=True)


def _shop(n_series: int, days: int, weekly: float, seed: int) -> FT.ForecastData:
    """Category unit series: Poisson counts around a level that drifts slowly, times a weekly
    pattern of relative size ``weekly`` with day-to-day noise on top (a shop's many small causes)."""
    rng = np.random.default_rng(seed)
    series = {}
    for i in range(n_series):
        level = rng.uniform(4, 40) * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        pattern = 1 + weekly * np.sin(2 * np.pi * (np.arange(days) + i) / 7)
        noise = rng.gamma(8.0, 1 / 8.0, days)
        series[FF.series_id("category", i, "units")] = rng.poisson(level * pattern * noise)
    history = _history(series)
    promos = pd.DataFrame(
        {"date": pd.date_range("2025-01-01", periods=days + FT.HORIZON), "promo_pct": 0.0, "site_promo": 0.0}
    ).merge(pd.DataFrame({"category_id": range(n_series)}), how="cross")
    return FT.ForecastData(history, promos, history["date"].max() - pd.Timedelta(days=FT.HORIZON), [])


@pytest.mark.parametrize("weekly", [0.1, 0.5], ids=["weak-noisy-seasonality", "strong-weekly-seasonality"])
def test_on_unseen_days_the_forecast_beats_the_baselines_and_its_intervals_hold(weekly):
    data = _shop(n_series=24, days=300, weekly=weekly, seed=11)
    lines = []
    result = FT.fit_candidates(data, log=lines.append)
    m = {name: result.metrics[name] for name in result.forecasters}
    selected = m[FT.SELECTED]
    # every series' choice is logged with each candidate's backtest MASE
    assert sum("-> " in line for line in lines) == 24 and sum(line.startswith("window ") for line in lines) == 6
    assert selected["mase_category"] <= min(m["seasonal_naive"]["mase_category"], m["window_mean"]["mase_category"])
    assert selected["mase_category"] <= 0.8 * m["seasonal_naive"]["mase_category"]
    assert abs(selected["category_coverage_80"] - 0.80) <= COVERAGE_TOLERANCE
    assert abs(selected["category_coverage_95"] - 0.95) <= COVERAGE_TOLERANCE
    chosen = result.per_series[result.per_series["forecaster"] == FT.SELECTED]["model"]
    if weekly >= 0.5:  # a flat mean cannot follow a strong week: the weekly candidates win, clearly
        assert not (chosen == "window_mean").any()
        assert selected["mase_category"] < 0.9 * m["window_mean"]["mase_category"]


def test_too_short_a_history_says_how_much_is_needed():
    with pytest.raises(InsufficientData, match="at least 84 days of sales history .* covers 80: load more days"):
        FT.fit_candidates(_shop(n_series=2, days=80, weekly=0.3, seed=1))


def _synthetic_input(days: int = 150, horizon: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=days + horizon, freq="D")
    frames = []
    for cat, level in ((1, 3.0), (2, 8.0)):
        for measure in FF.MEASURES:
            mean = level * (1 + 0.5 * (dates.dayofweek >= 5)) * (30 if measure == "revenue_usd" else 1)
            y = rng.poisson(mean).astype(float)
            y[days:] = np.nan
            frames.append(
                pd.DataFrame(
                    {
                        "series_id": FF.series_id("category", cat, measure),
                        "date": dates,
                        "y": y,
                        "promo_pct": 0.0,
                        "site_promo": 0.0,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_forecaster_is_deterministic_and_forecasts_only_the_future_rows():
    train = _synthetic_input(150)
    a = DemandForecaster(horizon=14).fit(train)
    b = DemandForecaster(horizon=14).fit(train)
    X = _synthetic_input(150, horizon=14, seed=1)
    pa, pb = a.predict(X), b.predict(X)
    pd.testing.assert_frame_equal(pa, pb)
    future = X["y"].isna()
    assert pa.loc[future, "forecast"].notna().all() and pa.loc[~future].isna().all().all()
    assert (pa.loc[future, "lo95"] <= pa.loc[future, "lo80"]).all()
    assert (pa.loc[future, "lo80"] <= pa.loc[future, "forecast"]).all()
    assert (pa.loc[future, "forecast"] <= pa.loc[future, "hi80"]).all()
    assert (pa.loc[future, "hi80"] <= pa.loc[future, "hi95"]).all()
    assert set(a.selection_.values()) <= set(CANDIDATES)
    assert a.validation_windows_ == 6  # 150 days hold six 14-day windows 14 days apart


def test_a_baseline_is_the_same_fit_restricted_to_one_candidate():
    train = _synthetic_input(150)
    X = _synthetic_input(150, horizon=14, seed=1)
    model = DemandForecaster(horizon=14).fit(train)
    naive = model.restricted_to("seasonal_naive")
    assert set(naive.selection_.values()) == {"seasonal_naive"}
    pd.testing.assert_series_equal(
        naive.predict(X)["forecast"], model.predict_candidates(X)["seasonal_naive"], check_names=False
    )
    with pytest.raises(ValueError, match="'xgboost' is not a candidate"):
        model.restricted_to("xgboost")


def test_forecaster_rejects_malformed_input():
    model = DemandForecaster(horizon=14, only="seasonal_naive").fit(_synthetic_input(60))
    X = _synthetic_input(60, horizon=14)
    with pytest.raises(MalformedFrame, match=r"missing column\(s\) \['promo_pct'\]"):
        model.predict(X.drop(columns=["promo_pct"]))
    gap = X.copy()
    gap.loc[5, "y"] = np.nan
    with pytest.raises(MalformedFrame, match="gaps in its history"):
        model.predict(gap)
    with pytest.raises(MalformedFrame, match="needs at least 42 days"):
        DemandForecaster(horizon=14).fit(_synthetic_input(30))
