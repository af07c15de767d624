"""Measure each model family against the demo shop's ground truth.

The generator writes what no model can see (``<SHOPLAKE_HOME>/source/truth``): each customer's true
probability of not ordering in the last 90 days, each payment's true fraud probability, and the
expected units per category and day. This script trains every family with the same code the assets
run, on the published prod tables, and compares it with that truth on the same holdout:

* churn: ROC-AUC of the model >= 0.95 x ROC-AUC of the true churn probability (label window and
  cutoff exactly the truth's: the last 90 days);
* fraud: PR-AUC of the model >= 0.9 x PR-AUC of the true fraud probability (the fraud holdout);
* forecasting: category-level MASE (units) <= 0.8 x the seasonal naive's, and the 80%/95% intervals
  cover within 5 points of nominal.

Usage (after ``shoplake generate`` and a run of the ``shoplake_all`` job)::

    SHOPLAKE_HOME=... python benchmarks/evaluate_models.py [--markdown results.md]

Prints a Markdown table; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ml_assets import lakehouse_data
from ml_assets.churn import features as churn_features
from ml_assets.churn import train as churn_train
from ml_assets.forecasting import features as forecast_features
from ml_assets.forecasting import train as forecast_train
from ml_assets.fraud import features as fraud_features
from ml_assets.fraud import train as fraud_train
from orchestration.settings import Settings

SEED = 7
CHURN_RATIO = 0.95
FRAUD_RATIO = 0.90
MASE_RATIO = 0.80
COVERAGE_TOLERANCE = 0.05


def evaluate_churn(con, truth_dir) -> dict:
    info = json.loads((truth_dir / "generation.json").read_text())["churn"]
    cutoff = dt.date.fromisoformat(info["cutoff_date"])
    window = int(info["window_days"])
    first, _ = churn_features.data_span(con)
    train_cutoffs, holdout_cutoff = churn_features.cutoffs(first, cutoff + dt.timedelta(days=window), window)
    assert holdout_cutoff == cutoff
    data = churn_train.ChurnData(window, train_cutoffs, cutoff,
                                 churn_features.training_frame(con, train_cutoffs, window),
                                 churn_features.customer_features(con, cutoff, window))
    result = churn_train.fit_candidates(data, SEED)
    truth = pd.read_parquet(truth_dir / "customers.parquet", columns=["customer_id", "churn_probability"])
    holdout = data.holdout.assign(
        model=result.candidates[churn_train.CHALLENGER].holdout_scores,
        baseline=result.candidates[churn_train.BASELINE].holdout_scores,
    ).merge(truth, on="customer_id").dropna(subset=["churn_probability"])
    y = holdout["churned"].astype(int)
    auc = {k: float(roc_auc_score(y, holdout[k])) for k in ("model", "baseline", "churn_probability")}
    return {
        "customers": len(holdout), "base_rate": float(y.mean()), "cutoff": str(cutoff), "window_days": window,
        "model_roc_auc": auc["model"], "baseline_roc_auc": auc["baseline"], "truth_roc_auc": auc["churn_probability"],
        "ratio": auc["model"] / auc["churn_probability"],
    }


def evaluate_fraud(con, truth_dir) -> dict:
    data = fraud_train.load_data(con)
    result = fraud_train.fit_candidates(data, SEED)
    truth = pd.read_parquet(truth_dir / "payments.parquet", columns=["payment_id", "fraud_probability"])
    holdout = data.holdout.assign(model=result.candidates[fraud_train.CHALLENGER].holdout_scores,
                                  baseline=result.candidates[fraud_train.BASELINE].holdout_scores)
    holdout = holdout.merge(truth, on="payment_id")
    y = holdout["is_chargeback"]
    m = {k: fraud_train.evaluate(y, holdout[k]) for k in ("model", "baseline", "fraud_probability")}
    return {
        "payments": len(holdout), "chargebacks": int(y.sum()), "holdout_from": str(data.holdout_from),
        "model_pr_auc": m["model"]["pr_auc"], "baseline_pr_auc": m["baseline"]["pr_auc"],
        "truth_pr_auc": m["fraud_probability"]["pr_auc"],
        "model_recall_at_1pct_fpr": m["model"]["recall_at_1pct_fpr"],
        "truth_recall_at_1pct_fpr": m["fraud_probability"]["recall_at_1pct_fpr"],
        "ratio": m["model"]["pr_auc"] / m["fraud_probability"]["pr_auc"],
    }


def evaluate_forecast(con, truth_dir) -> dict:
    data = forecast_train.load_data(con)
    result = forecast_train.fit_candidates(data, SEED)
    per = result.per_series[result.per_series["level"] == "category"]
    mase = per.groupby(["forecaster", "measure"])["mase"].mean()
    selected = result.metrics[forecast_train.SELECTED]
    # The truth as a forecast: the expected units of each category and day (cancelled orders
    # included, so scaled by the share of units that were not cancelled over the history).
    truth = pd.read_parquet(truth_dir / "demand.parquet")
    truth["date"] = pd.to_datetime(truth["date"])
    hist = data.history[data.history["series_id"].str.match(r"category:\d+:units")]
    train_part = hist[hist["date"] <= data.origin].merge(truth, on=["date", "category_id"])
    kept = train_part["y"].sum() / train_part["expected_units"].sum()
    actual = data.actuals()
    actual = actual[actual["series_id"].str.match(r"category:\d+:units")].merge(truth, on=["date", "category_id"])
    histories = {sid: part["y"].to_numpy() for sid, part in data.train_input().groupby("series_id")}
    oracle = np.mean([forecast_train.series_metrics(p["y"].to_numpy(), kept * p["expected_units"].to_numpy(), histories[sid])["mase"]
                      for sid, p in actual.groupby("series_id")])
    cat_hold = result.holdout[(result.holdout["forecaster"] == forecast_train.SELECTED)
                              & result.holdout["series_id"].str.startswith("category")]
    units_hold = cat_hold[cat_hold["series_id"].str.endswith(":units")]
    return {
        "series": int(data.history["series_id"].nunique()), "holdout_origin": str(data.origin.date()),
        "selected_units_mase": float(mase[(forecast_train.SELECTED, "units")]),
        "naive_units_mase": float(mase[("seasonal_naive", "units")]),
        "ets_units_mase": float(mase[("ets", "units")]),
        "xgboost_units_mase": float(mase[("xgboost", "units")]),
        "truth_units_mase": float(oracle),
        "selected_revenue_mase": float(mase[(forecast_train.SELECTED, "revenue_usd")]),
        "naive_revenue_mase": float(mase[("seasonal_naive", "revenue_usd")]),
        "ratio": float(mase[(forecast_train.SELECTED, "units")] / mase[("seasonal_naive", "units")]),
        "revenue_ratio": float(mase[(forecast_train.SELECTED, "revenue_usd")] / mase[("seasonal_naive", "revenue_usd")]),
        "coverage_80": selected["category_coverage_80"], "coverage_95": selected["category_coverage_95"],
        "units_coverage_80": float(((units_hold["y"] >= units_hold["lo80"]) & (units_hold["y"] <= units_hold["hi80"])).mean()),
        "units_coverage_95": float(((units_hold["y"] >= units_hold["lo95"]) & (units_hold["y"] <= units_hold["hi95"])).mean()),
    }


def report(config: dict, churn: dict, fraud: dict, forecast: dict, seconds: float) -> tuple[str, bool]:
    checks = [
        ("churn ROC-AUC vs truth", f"{churn['model_roc_auc']:.3f} vs {churn['truth_roc_auc']:.3f} "
         f"(baseline {churn['baseline_roc_auc']:.3f})", f"ratio {churn['ratio']:.3f}", f">= {CHURN_RATIO}",
         churn["ratio"] >= CHURN_RATIO),
        ("fraud PR-AUC vs truth", f"{fraud['model_pr_auc']:.3f} vs {fraud['truth_pr_auc']:.3f} "
         f"(baseline {fraud['baseline_pr_auc']:.3f})", f"ratio {fraud['ratio']:.3f}", f">= {FRAUD_RATIO}",
         fraud["ratio"] >= FRAUD_RATIO),
        ("forecast MASE, category units", f"{forecast['selected_units_mase']:.3f} vs seasonal naive "
         f"{forecast['naive_units_mase']:.3f} (truth {forecast['truth_units_mase']:.3f})",
         f"ratio {forecast['ratio']:.3f}", f"<= {MASE_RATIO}", forecast["ratio"] <= MASE_RATIO),
        ("forecast MASE, category revenue", f"{forecast['selected_revenue_mase']:.3f} vs seasonal naive "
         f"{forecast['naive_revenue_mase']:.3f}", f"ratio {forecast['revenue_ratio']:.3f}", "(reported)", True),
        ("80% interval coverage, categories", f"{forecast['coverage_80']:.3f} (units only {forecast['units_coverage_80']:.3f})",
         f"{100 * (forecast['coverage_80'] - 0.8):+.1f} points", "within 5 points",
         abs(forecast["coverage_80"] - 0.8) <= COVERAGE_TOLERANCE),
        ("95% interval coverage, categories", f"{forecast['coverage_95']:.3f} (units only {forecast['units_coverage_95']:.3f})",
         f"{100 * (forecast['coverage_95'] - 0.95):+.1f} points", "within 5 points",
         abs(forecast["coverage_95"] - 0.95) <= COVERAGE_TOLERANCE),
    ]
    lines = [
        f"Demo shop: {config.get('customers')} customers, {config.get('days')} days, seed {config.get('seed')}; "
        f"model seed {SEED}; {seconds:.0f} s.",
        f"Churn holdout: {churn['customers']} customers at cutoff {churn['cutoff']}, {churn['window_days']}-day window, "
        f"churn rate {churn['base_rate']:.2f}. Fraud holdout: {fraud['payments']} payments from {fraud['holdout_from']}, "
        f"{fraud['chargebacks']} chargebacks. Forecast holdout: the 28 days after {forecast['holdout_origin']}, "
        f"{forecast['series']} series.",
        "",
        "| measure | model vs reference | figure | target | met |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {'yes' if ok else 'NO'} |" for a, b, c, d, ok in checks]
    return "\n".join(lines), all(ok for *_, ok in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not (settings.truth_dir / "generation.json").exists():
        print(f"no ground truth in {settings.truth_dir}: run `shoplake generate` and the shoplake_all job first", file=sys.stderr)
        return 2
    started = time.perf_counter()
    tables = sorted({*churn_features.TABLES, *fraud_features.TABLES, *forecast_features.TABLES})
    con, _ = lakehouse_data.open_tables(settings, tables)
    churn = evaluate_churn(con, settings.truth_dir)
    fraud = evaluate_fraud(con, settings.truth_dir)
    forecast = evaluate_forecast(con, settings.truth_dir)
    config = json.loads((settings.truth_dir / "generation.json").read_text())["config"]
    text, ok = report(config, churn, fraud, forecast, time.perf_counter() - started)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
