"""Benchmark: per-row SHAP explanations, XGBoost's pred_contribs against one evaluation per decision pattern.

The churn scores carry each customer's top drivers, from exact (path-dependent) TreeSHAP over every
customer every day. This trains XGBoost classifiers with the churn and fraud settings
(ml_assets/hyperparameters.py) on a synthetic frame of the churn model's width, then explains the
same rows both ways and prints, side by side, the seconds of each and the largest difference. The
last line printed is the JSON file with the figures.

    .venv/bin/python benchmarks/tree_shap.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from ml_assets.explain import tree_shap  # noqa: E402
from ml_assets.hyperparameters import CHURN_XGBOOST, FRAUD_XGBOOST  # noqa: E402

FEATURES = 26  # the churn model's columns after one-hot encoding


def frame(rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.gamma(2.0, 1.0, size=(rows, FEATURES)).astype(np.float32)
    X[:, 20:] = rng.random((rows, 6)) < 0.2  # one-hot columns
    X[rng.random(X.shape) < 0.05] = np.nan
    logit = 0.8 * np.nan_to_num(X[:, 0]) - 0.5 * np.nan_to_num(X[:, 1]) + np.nan_to_num(X[:, 2] * X[:, 20]) - 1.5
    return X, (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)


def main() -> int:
    import xgboost as xgb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    X, y = frame(args.rows)
    results = []
    for family, params in (("churn", CHURN_XGBOOST), ("fraud", FRAUD_XGBOOST)):
        model = xgb.XGBClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            learning_rate=params.learning_rate,
            min_child_weight=params.min_child_weight,
            reg_lambda=params.reg_lambda,
            n_jobs=os.cpu_count(),
        ).fit(X, y)
        booster = model.get_booster()
        started = time.perf_counter()
        expected = booster.predict(xgb.DMatrix(X), pred_contribs=True)
        xgboost_seconds = time.perf_counter() - started
        started = time.perf_counter()
        got = tree_shap(booster, X)
        pattern_seconds = time.perf_counter() - started
        results.append(
            {
                "family": family,
                "trees": params.n_estimators,
                "max_depth": params.max_depth,
                "rows": args.rows,
                "xgboost_pred_contribs_seconds": round(xgboost_seconds, 3),
                "per_pattern_seconds": round(pattern_seconds, 3),
                "speedup": round(xgboost_seconds / pattern_seconds, 1),
                "max_abs_difference": float(np.abs(got - expected).max()),
            }
        )

    print(
        f"{'model':<8}{'trees':>6}{'depth':>6}{'rows':>10}{'XGBoost s':>11}{'patterns s':>12}{'speed-up':>10}"
        f"{'max |diff|':>12}"
    )
    for r in results:
        print(
            f"{r['family']:<8}{r['trees']:>6}{r['max_depth']:>6}{r['rows']:>10,}{r['xgboost_pred_contribs_seconds']:>11.2f}"
            f"{r['per_pattern_seconds']:>12.2f}{r['speedup']:>9.1f}x{r['max_abs_difference']:>12.1e}"
        )
    out = PROJECT_ROOT / "benchmarks" / "results" / f"tree_shap_{args.rows}_{dt.date.today().isoformat()}.json"
    out.write_text(
        json.dumps({"date": dt.date.today().isoformat(), "cores": os.cpu_count(), "results": results}, indent=2) + "\n"
    )
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
