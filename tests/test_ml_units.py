"""Unit tests of the ML pieces that need no lakehouse: the registry gate's rule, input validation,
the forecast's history check, the fraud metrics and the reorder arithmetic (the forecaster itself:
test_forecasting.py)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_assets.errors import InsufficientData, MalformedFrame
from ml_assets.forecasting import train as FT
from ml_assets.forecasting.assets import reorder_table
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


def test_forecasting_needs_enough_history_and_says_how_much():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA prod; CREATE SCHEMA curated")
    con.execute("""CREATE TABLE prod.daily_sales AS SELECT DATE '2025-01-01' + i::INTEGER AS order_date,
                   1 AS category_id,
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
    forecast = pd.concat(
        [
            pd.DataFrame(
                {
                    "level": "category",
                    "category_id": 1,
                    "product_id": pd.NA,
                    "forecast_date": days,
                    "units": 10.0,
                    "units_hi95": 13.0,
                }
            ),
            pd.DataFrame(
                {
                    "level": "product",
                    "category_id": 1,
                    "product_id": 2,
                    "forecast_date": days,
                    "units": 1.0,
                    "units_hi95": 2.0,
                }
            ),
        ]
    )
    inventory = pd.DataFrame(
        {
            "product_id": [1, 2],
            "sku": ["A", "B"],
            "name": ["a", "b"],
            "category_id": [1, 1],
            "quantity_on_hand": [100, 5],
            "reorder_point": [5, 5],
            "days_of_cover": [30.0, 5.0],
            "as_of_date": ["2026-01-01"] * 2,
        }
    )
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
            on_edge[int(feature)] += [
                threshold,
                np.nextafter(threshold, np.float32(-np.inf)),
                np.nextafter(threshold, np.float32(np.inf)),
            ]
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


# ---- the gate with a naive reference: the best candidate ships


def test_first_champion_is_the_best_candidate_when_it_beats_the_naive_reference():
    others = {"no_skill": 0.5, "logistic_recency": 0.80, "xgboost": 0.805}
    first = decide(AUC, 0.806, others, None, reference="no_skill", candidate="logistic_rfm", windows=3)
    # within the margin of the runner-up is no obstacle for the first champion: it is the best there is
    assert first.passed
    assert first.reason == (
        "logistic_rfm (roc_auc 0.8060 on 3 backtest windows) beats the runner-up xgboost by "
        "+0.0010, the naive reference no_skill by +0.3060: first champion"
    )
    assert [r["required"] for r in first.comparisons] == [True, False, False]
    none = decide(AUC, 0.49, {"no_skill": 0.5, "logistic_rfm": 0.48}, None, reference="no_skill", candidate="xgboost")
    assert not none.passed and none.reason.startswith(
        "no candidate beats the naive reference no_skill (roc_auc 0.5000)"
    )


def test_a_later_challenger_must_beat_the_champion_by_the_margin():
    others = {"no_skill": 0.5, "logistic_rfm": 0.80}
    lost = decide(AUC, 0.905, others, 0.90, "4", reference="no_skill", candidate="xgboost")
    assert not lost.passed and "does not beat champion v4 (0.9000) by the margin 0.01: lead +0.0050" in lost.reason
    won = decide(AUC, 0.915, others, 0.90, "4", reference="no_skill", candidate="xgboost")
    assert won.passed and won.reason.endswith("and champion v4 by +0.0150 (margin 0.01)")
    # a champion that cannot score today's data (its features changed) is replaced by the best candidate
    assert decide(AUC, 0.81, others, None, "4", reference="no_skill", candidate="xgboost").passed
    # lower is better, the same rule
    assert decide(MASE, 0.70, {"seasonal_naive": 1.0}, 0.72, "2", reference="seasonal_naive", candidate="ets").passed
    assert not decide(
        MASE, 0.715, {"seasonal_naive": 1.0}, 0.72, "2", reference="seasonal_naive", candidate="ets"
    ).passed


def test_an_unevaluated_candidate_ships_only_where_no_evaluated_champion_exists():
    nan = float("nan")
    assert decide(AUC, nan, {}, None, None, candidate="isolation_forest", evaluated=False).passed
    assert decide(AUC, nan, {}, None, "2", candidate="isolation_forest", evaluated=False).passed
    kept = decide(AUC, nan, {}, 0.3, "2", candidate="isolation_forest", evaluated=False)
    assert not kept.passed and "champion v2 was (roc_auc 0.3000)" in kept.reason


def test_churn_risk_tiers_follow_the_shops_base_rate():
    from ml_assets.churn.assets import risk_tiers, tier_bounds

    low, high = tier_bounds(0.2)  # odds 1:4; half of them 1:8, twice 1:2
    assert (round(low, 6), round(high, 6)) == (round(1 / 9, 6), round(1 / 3, 6))
    assert tier_bounds(0.5) == pytest.approx((1 / 3, 2 / 3))
    assert risk_tiers(np.array([0.05, 0.2, 0.34, 0.9]), 0.2).tolist() == ["low", "medium", "high", "high"]
    # the same probability is high risk in a shop where few churn and low risk where most do
    assert risk_tiers(np.array([0.4]), 0.1).tolist() == ["high"] and risk_tiers(np.array([0.4]), 0.8).tolist() == [
        "low"
    ]


def test_expected_purchases_closed_form():
    from ml_assets.churn.features import expected_purchases

    frame = pd.DataFrame({"orders": [0.0, 3.0], "observed_days": [100.0, 100.0], "recency_days": [100.0, 10.0]})
    p_alive, expected = expected_purchases(frame, 30)
    # shop rate 3 orders / 200 days; prior: 1 order in 200/3 days
    rate = np.array([1 / (100 + 200 / 3), 4 / (100 + 200 / 3)])
    silent = np.array([100.0, 10.0])
    alive = np.exp(-rate * silent) / (np.exp(-rate * silent) + 1)  # a dropout prior of one half
    np.testing.assert_allclose(p_alive, alive)
    np.testing.assert_allclose(expected, rate * 30 * alive)
    assert expected[1] > expected[0]  # a recent repeat buyer is expected to buy more


def test_linear_drivers_are_coefficient_times_standardised_value():
    from ml_assets.churn import features as F
    from ml_assets.churn import train as CT

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.normal(size=200) for c in F.NUMERIC_FEATURES})
    frame["acquisition_channel"], frame["region"] = "web", "eu"
    y = (frame["recency_days"] + rng.normal(size=200) > 0).astype(int)
    pipe = CT.baseline_pipeline(0).fit(frame[F.FEATURES], y)
    names, contrib = CT.contributions(pipe, frame)
    scaler, model = pipe[0].named_transformers_["num"][-1], pipe[-1]
    expected = (frame[F.RFM_FEATURES].to_numpy() - scaler.mean_) / scaler.scale_ * model.coef_[0]
    np.testing.assert_allclose(contrib[:, [names.index(c) for c in F.RFM_FEATURES]], expected)
    assert not contrib[:, [names.index("tickets")]].any()  # a feature the model does not use drives nothing
    # the contributions add up to the model's log-odds less its intercept
    np.testing.assert_allclose(contrib.sum(1), pipe.decision_function(frame[F.FEATURES]) - model.intercept_[0])


def test_fraud_thresholds_without_labels_flag_the_top_scores():
    m = fraud_train.unlabelled_metrics(np.arange(1, 101) / 100)
    assert (m["threshold_at_1pct_fpr"], m["threshold_at_5pct_fpr"], m["payments"]) == (0.99, 0.95, 100.0)
