"""Unit tests of the ML pieces that need no lakehouse: the registry gate's rule, input validation,
the forecaster on synthetic series, the fraud metrics and the reorder arithmetic."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_assets.errors import InsufficientData, MalformedFrame
from ml_assets.forecasting import features as FF
from ml_assets.forecasting import train as FT
from ml_assets.forecasting.assets import reorder_table
from ml_assets.forecasting.model import DemandForecaster, seasonal_naive
from ml_assets.frames import validate_frame
from ml_assets.fraud import train as fraud_train
from ml_assets.registry import Family, decide

AUC = Family("churn", "m", "roc_auc", higher_is_better=True, margin=0.01)
MASE = Family("forecasting", "f", "mase", higher_is_better=False, margin=0.01)


def test_gate_needs_a_win_by_the_margin_over_every_baseline_and_the_champion():
    assert decide(AUC, 0.90, {"logistic": 0.85}, None).passed
    assert decide(AUC, 0.90, {"logistic": 0.85}, 0.88, "3").passed
    lost = decide(AUC, 0.90, {"logistic": 0.85}, 0.895, "3")
    assert not lost.passed and "champion v3" in lost.reason
    assert not decide(AUC, 0.86, {"logistic": 0.855}, None).passed  # within the margin of the baseline
    assert [r["beaten"] for r in lost.comparisons] == [True, False]


def test_gate_identical_metrics_are_not_a_win():
    assert not decide(AUC, 0.9, {"b": 0.5}, 0.9, "1").passed
    assert not decide(Family("x", "x", "m", True, 0.0), 0.9, {"b": 0.5}, 0.9, "1").passed


def test_gate_lower_is_better():
    assert decide(MASE, 0.80, {"naive": 1.0, "ets": 0.85}, 0.82, "2").passed
    assert not decide(MASE, 0.80, {"naive": 1.0, "ets": 0.805}, None).passed
    assert not decide(MASE, float("nan"), {"naive": 1.0}, None).passed


def test_validate_frame_names_the_problem():
    ok = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "extra": [0, 0]})
    out = validate_frame(ok, ["a"], ["b"])
    assert list(out.columns) == ["a", "b"] and out["a"].dtype == "float64"
    with pytest.raises(MalformedFrame, match=r"missing column\(s\) \['a'\]"):
        validate_frame(ok.drop(columns=["a"]), ["a"], ["b"])
    with pytest.raises(MalformedFrame, match="column `a` must be numeric; found 'lots'"):
        validate_frame(ok.assign(a=["1", "lots"]), ["a"], ["b"])
    with pytest.raises(MalformedFrame, match="no rows"):
        validate_frame(ok.head(0), ["a"], ["b"])
    with pytest.raises(MalformedFrame, match="pandas DataFrame, got list"):
        validate_frame([1, 2], ["a"])


def test_seasonal_naive_repeats_the_last_week():
    y = np.arange(1, 15, dtype=float)  # the last week is 8..14
    assert seasonal_naive(y, 9).tolist() == [8, 9, 10, 11, 12, 13, 14, 8, 9]


def _synthetic_input(days: int = 150, horizon: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=days + horizon, freq="D")
    frames = []
    for cat, level in ((1, 3.0), (2, 8.0)):
        for measure in FF.MEASURES:
            promo = np.where((np.arange(len(dates)) % 30) < 3, 20.0, 0.0)
            mean = level * (1 + 0.5 * (dates.dayofweek >= 5)) * (1 + promo / 20) * (30 if measure == "revenue_usd" else 1)
            y = rng.poisson(mean).astype(float)
            y[days:] = np.nan
            frames.append(pd.DataFrame({"series_id": FF.series_id("category", cat, measure), "date": dates, "y": y,
                                        "promo_pct": promo, "site_promo": 0.0}))
    return pd.concat(frames, ignore_index=True)


def test_forecaster_is_deterministic_and_forecasts_only_the_future_rows():
    train = _synthetic_input(150)
    a = DemandForecaster(horizon=14, seed=3, n_estimators=30).fit(train)
    b = DemandForecaster(horizon=14, seed=3, n_estimators=30).fit(train)
    X = _synthetic_input(150, horizon=14, seed=1)
    pa, pb = a.predict(X), b.predict(X)
    pd.testing.assert_frame_equal(pa, pb)
    future = X["y"].isna()
    assert pa.loc[future, "forecast"].notna().all() and pa.loc[~future].isna().all().all()
    assert (pa.loc[future, "lo95"] <= pa.loc[future, "lo80"]).all()
    assert (pa.loc[future, "lo80"] <= pa.loc[future, "forecast"]).all()
    assert (pa.loc[future, "hi80"] <= pa.loc[future, "hi95"]).all()
    assert set(a.selection_.values()) <= {"seasonal_naive", "ets", "xgboost", "ets_xgboost_mean"}
    assert a.validation_folds_ == 3


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


def test_forecasting_needs_enough_history_and_says_how_much():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA prod; CREATE SCHEMA curated")
    con.execute("""CREATE TABLE prod.daily_sales AS SELECT DATE '2025-01-01' + i::INTEGER AS order_date, 1 AS category_id,
                   2 AS units, 20.0 AS revenue_usd FROM range(60) t(i)""")
    con.execute("""CREATE TABLE prod.fct_order_items AS SELECT order_date, 7 AS product_id, 1 AS category_id,
                   2 AS quantity, 20.0 AS line_revenue_usd, false AS is_cancelled FROM prod.daily_sales""")
    con.execute("CREATE TABLE prod.dim_products AS SELECT 7 AS product_id, 1 AS category_id, 'Books' AS category_name")
    with pytest.raises(InsufficientData, match="at least 84 days of sales history.*covers 60: load more days"):
        FT.load_data(con)


def test_fraud_metrics_on_a_known_ranking():
    y = np.array([1, 0, 1] + [0] * 197)
    s = np.concatenate([[0.9, 0.8, 0.1], np.linspace(0.0, 0.5, 197)])
    m = fraud_train.evaluate(y, s)
    # 1% of 198 negatives: the threshold is the 2nd-highest negative score (0.5); only 0.9 is above it
    assert m["threshold_at_1pct_fpr"] == 0.5
    assert m["recall_at_1pct_fpr"] == 0.5
    assert m["k"] == 10 and m["precision_at_k"] == 0.1


def test_reorder_suggestion_arithmetic():
    days = pd.date_range("2026-01-01", periods=28, freq="D")
    forecast = pd.concat([
        pd.DataFrame({"level": "category", "category_id": 1, "product_id": pd.NA, "forecast_date": days,
                      "units": 10.0, "units_hi95": 13.0}),
        pd.DataFrame({"level": "product", "category_id": 1, "product_id": 2, "forecast_date": days,
                      "units": 1.0, "units_hi95": 2.0}),
    ])
    inventory = pd.DataFrame({"product_id": [1, 2], "sku": ["A", "B"], "name": ["a", "b"], "category_id": [1, 1],
                              "quantity_on_hand": [100, 5], "reorder_point": [5, 5], "days_of_cover": [30.0, 5.0],
                              "as_of_date": ["2026-01-01"] * 2})
    shares = pd.DataFrame({"product_id": [1, 2], "category_id": [1, 1], "share": [0.5, 0.5]})
    out = reorder_table(inventory, forecast, shares).set_index("product_id")
    # product 1: half of the category, 5/day; 100 on hand lasts 20 days; lead time 7 days: 35 + sqrt(7)*1.5
    assert out.loc[1, "forecast_source"] == "category share"
    assert out.loc[1, "forecast_units_28d"] == 140.0
    assert out.loc[1, "forecast_days_of_cover"] == 20.0
    assert out.loc[1, "reorder_point_units"] == int(np.ceil(35 + np.sqrt(7) * 1.5))
    assert not out.loc[1, "reorder_now"] and out.loc[1, "suggested_order_units"] == 0
    # product 2: its own forecast, 1/day; 5 on hand runs out on day 5; reorder point 7 + sqrt(7)
    assert out.loc[2, "forecast_source"] == "product forecast"
    assert out.loc[2, "forecast_days_of_cover"] == 5.0
    assert out.loc[2, "reorder_now"]
    assert out.loc[2, "suggested_order_units"] == int(np.ceil(21 + np.sqrt(7) - 5))


def _shap_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take each split's default side
    X[:, 3] = np.round(X[:, 3] * 2)  # few distinct values: many rows sit exactly on a threshold
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.clip(X[:, 3], -1, 1) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_tree_shap_equals_xgboost_pred_contribs(depth):
    import xgboost as xgb

    from ml_assets.explain import tree_shap

    X, y = _shap_data(4_000, depth)
    booster = xgb.XGBClassifier(n_estimators=60, max_depth=depth, n_jobs=1).fit(X, y).get_booster()
    expected = booster.predict(xgb.DMatrix(X), pred_contribs=True)
    got = tree_shap(booster, X)
    assert got.shape == expected.shape == (4_000, 7)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert tree_shap(booster, X[:0]).shape == (0, 7)  # nothing to explain (no new payment today)
    # every row's contributions add up to its margin, as XGBoost's do
    np.testing.assert_allclose(got.sum(1), booster.predict(xgb.DMatrix(X), output_margin=True), atol=1e-4)


def test_tree_shap_rows_exactly_on_and_beside_every_threshold():
    """A threshold read one float32 step off would send these rows the wrong way."""
    import xgboost as xgb

    from ml_assets.explain import _numeric_splits, tree_shap

    X, y = _shap_data(3_000, 11)
    booster = xgb.XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1).fit(X, y).get_booster()
    on_edge: dict[int, list[np.float32]] = {f: [np.float32(0)] for f in range(X.shape[1])}
    for splits in _numeric_splits(booster):
        for feature, threshold in zip(splits.feature, splits.threshold, strict=True):
            on_edge[int(feature)] += [threshold, np.nextafter(threshold, np.float32(-np.inf)), np.nextafter(threshold, np.float32(np.inf))]
    rng = np.random.default_rng(0)
    Z = np.stack([rng.choice(np.asarray(on_edge[f], dtype=np.float32), 5_000) for f in range(X.shape[1])], axis=1)
    np.testing.assert_allclose(tree_shap(booster, Z), booster.predict(xgb.DMatrix(Z), pred_contribs=True), atol=1e-5)


def test_tree_shap_hands_other_models_to_xgboost():
    """Several trees per round (a forest) have no pattern per round: XGBoost computes them whole."""
    import xgboost as xgb

    from ml_assets.explain import _numeric_splits, tree_shap

    X, y = _shap_data(2_000, 5)
    forest = xgb.XGBClassifier(n_estimators=5, num_parallel_tree=3, max_depth=3, n_jobs=1).fit(X, y).get_booster()
    assert _numeric_splits(forest) is None
    np.testing.assert_allclose(tree_shap(forest, X), forest.predict(xgb.DMatrix(X), pred_contribs=True), atol=1e-6)
