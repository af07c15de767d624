"""Measure each model family against the demo shop's ground truth.

The generator writes what no model can see (``<SHOPLAKE_HOME>/source/truth``): each customer's true
probability of not ordering in the last 90 days, each payment's true fraud probability, and the
expected units per category and day. This script trains every family with the same code the assets
run, on the published prod tables, and compares it with that truth on the same holdout:

* churn: ROC-AUC of the model >= 0.95 x ROC-AUC of the true churn probability (label window and
  cutoff exactly the truth's: the last 90 days);
* fraud: PR-AUC of the model >= 0.9 x PR-AUC of the true fraud probability (the fraud holdout);
* forecasting: category-level MASE (units) on the 28 days after the training history <= 0.8 x the
  seasonal naive's and at or below the best of seasonal naive and the 28-day mean, and the 80%/95%
  intervals cover within 5 points of nominal (every series' days of that holdout).

Usage (after ``shoplake generate`` and a run of the ``shoplake_all`` job)::

    SHOPLAKE_HOME=... python benchmarks/evaluate_models.py [--markdown results.md]

Prints a Markdown table; exits 1 when a target is missed.

Hard shops (``--shops``): builds each named shop (the demo shop, the real-like one with every hard
option, one hard option at a time, a 45-day shop) from nothing in a home of its own under
``--work``, runs shoplake_all, and per shop names each family's winning candidate and the gate's
decision, or why the family skipped, with the truth measures and issue 19's must-shows as checks
(the demo shop's targets above; on every shop: green, every prod mart published, the churn champion
at least the best baseline on the holdout, 80%/95% coverage within 5 points, unsupervised fraud
scores without chargebacks, a skipped family's reason). On the demo shop it also times each family's
training (``--repeats`` runs, wall and CPU) and the training assets as a run materializes them. The
result goes to ``benchmarks/results/evaluate_models_<date>.json``, and with ``--markdown`` to a page;
``--render`` rewrites the page from a result file::

    python benchmarks/evaluate_models.py --shops demo real-like one-time-buyers weak-seasonality \
        no-chargebacks 45-days --work /tmp/shops --markdown docs/models.md
    python benchmarks/evaluate_models.py --render benchmarks/results/evaluate_models_<date>.json

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from demo_shop.config import REAL_LIKE
from demo_shop.generate import ShopConfig, generate_shop
from ml_assets import lakehouse_data, tracking
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
    """Every churn candidate refit on the gate's rolling origins with the truth's label window (its
    last 90 days); the backtest's best, the best baseline and recency alone judged on the truth's holdout."""
    info = json.loads((truth_dir / "generation.json").read_text())["churn"]
    cutoff = dt.date.fromisoformat(info["cutoff_date"])
    window = int(info["window_days"])
    first, _ = churn_features.data_span(con)
    origins = churn_features.backtest_windows(
        first, cutoff + dt.timedelta(days=window), window, churn_train.BACKTEST_WINDOWS
    )
    assert origins and origins[0][1] == cutoff, (origins[:1], cutoff)
    frames: dict[dt.date, pd.DataFrame] = {}

    def at(c: dt.date) -> pd.DataFrame:
        if c not in frames:
            frames[c] = churn_features.customer_features(con, c, window)
        return frames[c]

    data = churn_train.ChurnData(
        window,
        [churn_train.Window(tc, hc, pd.concat([at(c) for c in tc], ignore_index=True), at(hc)) for tc, hc in origins],
    )
    result = churn_train.fit_candidates(data, SEED)
    winner = result.best
    truth = pd.read_parquet(truth_dir / "customers.parquet", columns=["customer_id", "churn_probability"])
    scores = {f"score_{name}": c.holdout_scores for name, c in result.candidates.items()}
    holdout = data.holdout.assign(**scores).merge(truth, on="customer_id").dropna(subset=["churn_probability"])
    y = holdout["churned"].astype(int)
    auc = {name: float(roc_auc_score(y, holdout[f"score_{name}"])) for name in result.candidates}
    truth_auc = float(roc_auc_score(y, holdout["churn_probability"]))
    best_baseline = max(churn_train.BASELINES, key=lambda n: auc[n])
    return {
        "customers": len(holdout),
        "base_rate": float(y.mean()),
        "cutoff": str(cutoff),
        "window_days": window,
        "winner": winner,
        "backtest": {n: result.score(n) for n in result.candidates},
        "model_roc_auc": auc[winner],
        "baseline": best_baseline,
        "baseline_roc_auc": auc[best_baseline],
        "recency_roc_auc": auc[churn_train.RECENCY],
        "truth_roc_auc": truth_auc,
        "ratio": auc[winner] / truth_auc,
    }


def evaluate_fraud(con, truth_dir) -> dict:
    """The fraud candidates as the asset fits them. With chargebacks: the backtest's best on the latest
    window, against the true probability there. Without (the unsupervised detector alone): its scores
    on every payment against the true fraud label, which such a shop never shows."""
    data = fraud_train.load_data(con)
    result = fraud_train.fit_candidates(data, SEED)
    winner = result.best
    truth = pd.read_parquet(truth_dir / "payments.parquet", columns=["payment_id", "fraud_probability", "is_fraud"])
    supervised = data.mode == fraud_train.SUPERVISED
    frame = (
        (data.holdout if supervised else data.train)
        .assign(
            model=result.candidates[winner].holdout_scores,
            baseline=result.candidates[fraud_train.BASELINE].holdout_scores,
        )
        .merge(truth, on="payment_id")
    )
    y = frame["is_chargeback"] if supervised else frame["is_fraud"]
    m = {k: fraud_train.evaluate(y, frame[k]) for k in ("model", "baseline", "fraud_probability")}
    return {
        "payments": len(frame),
        "chargebacks": int(y.sum()),
        "holdout_from": str(data.holdout_from),
        "mode": data.mode,
        "label": "chargebacks" if supervised else "true frauds (no chargebacks to learn from)",
        "winner": winner,
        "model_pr_auc": m["model"]["pr_auc"],
        "baseline_pr_auc": m["baseline"]["pr_auc"],
        "truth_pr_auc": m["fraud_probability"]["pr_auc"],
        "model_recall_at_1pct_fpr": m["model"]["recall_at_1pct_fpr"],
        "truth_recall_at_1pct_fpr": m["fraud_probability"]["recall_at_1pct_fpr"],
        "ratio": m["model"]["pr_auc"] / m["fraud_probability"]["pr_auc"],
    }


def evaluate_forecast(con, truth_dir) -> dict:
    """Category units on the 28 days after the training history (the holdout no fit saw), and on
    every gate window; the selection against seasonal naive, the 28-day mean and ETS, and the truth."""
    data = forecast_train.load_data(con)
    started, cpu = time.perf_counter(), _cpu()
    result = forecast_train.fit_candidates(data)
    seconds, cpu_seconds = time.perf_counter() - started, _cpu() - cpu
    per = result.per_series[result.per_series["level"] == "category"]
    latest = forecast_train.latest(per)
    mase = latest.groupby(["forecaster", "measure"])["mase"].mean()
    windows_mase = per.groupby(["forecaster", "measure"])["mase"].mean()
    shipped = result.metrics[forecast_train.best(result)]
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
    oracle = np.mean(
        [
            forecast_train.series_metrics(p["y"].to_numpy(), kept * p["expected_units"].to_numpy(), histories[sid])[
                "mase"
            ]
            for sid, p in actual.groupby("series_id")
        ]
    )

    def covered(h, nominal):
        return float(((h["y"] >= h[f"lo{nominal}"]) & (h["y"] <= h[f"hi{nominal}"])).mean())

    sel, naive, flat = forecast_train.best(result), "seasonal_naive", "window_mean"
    hold = forecast_train.latest(result.holdout[result.holdout["forecaster"] == sel])
    units_hold = hold[hold["series_id"].str.match(r"category:\d+:units")]
    chosen = forecast_train.latest(result.per_series[result.per_series["forecaster"] == sel])["model"]
    return {
        "series": int(data.history["series_id"].nunique()),
        "holdout_origin": str(data.origin.date()),
        "gate_windows": len(data.origins()),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "shipped": sel,
        "models_chosen": ", ".join(f"{k} x{v}" for k, v in chosen.value_counts().items()),
        "per_series_selection_units_mase": float(mase[(forecast_train.SELECTED, "units")]),
        "every_series_coverage_80": covered(hold, 80),
        "every_series_coverage_95": covered(hold, 95),
        "units_coverage_80": covered(units_hold, 80),
        "units_coverage_95": covered(units_hold, 95),
        "selected_units_mase": float(mase[(sel, "units")]),
        "naive_units_mase": float(mase[(naive, "units")]),
        "window_mean_units_mase": float(mase[(flat, "units")]),
        "ets_units_mase": float(mase[("ets", "units")]),
        "truth_units_mase": float(oracle),
        "windows_selected_units_mase": float(windows_mase[(sel, "units")]),
        "windows_naive_units_mase": float(windows_mase[(naive, "units")]),
        "windows_window_mean_units_mase": float(windows_mase[(flat, "units")]),
        "selected_revenue_mase": float(mase[(sel, "revenue_usd")]),
        "naive_revenue_mase": float(mase[(naive, "revenue_usd")]),
        "ratio": float(mase[(sel, "units")] / mase[(naive, "units")]),
        "best_baseline_units_mase": float(min(mase[(naive, "units")], mase[(flat, "units")])),
        "revenue_ratio": float(mase[(sel, "revenue_usd")] / mase[(naive, "revenue_usd")]),
        "bias": float(latest[(latest["forecaster"] == sel) & (latest["measure"] == "units")]["bias"].mean()),
        "coverage_80": shipped["latest_category_coverage_80"],
        "coverage_95": shipped["latest_category_coverage_95"],
        "windows_coverage_80": shipped["category_coverage_80"],
        "windows_coverage_95": shipped["category_coverage_95"],
    }


def report(config: dict, churn: dict, fraud: dict, forecast: dict, seconds: float) -> tuple[str, bool]:
    checks = [
        (
            "churn ROC-AUC vs truth",
            f"{churn['winner']} {churn['model_roc_auc']:.3f} vs {churn['truth_roc_auc']:.3f} "
            f"(best baseline {churn['baseline']} {churn['baseline_roc_auc']:.3f})",
            f"ratio {churn['ratio']:.3f}",
            f">= {CHURN_RATIO}",
            churn["ratio"] >= CHURN_RATIO,
        ),
        (
            "churn ROC-AUC vs recency alone",
            f"{churn['model_roc_auc']:.3f} vs {churn['recency_roc_auc']:.3f}",
            f"{churn['model_roc_auc'] - churn['recency_roc_auc']:+.3f}",
            ">= +0.02",
            churn["model_roc_auc"] >= churn["recency_roc_auc"] + 0.02,
        ),
        (
            "churn champion vs best baseline, holdout",
            f"{churn['model_roc_auc']:.3f} vs {churn['baseline_roc_auc']:.3f}",
            f"{churn['model_roc_auc'] - churn['baseline_roc_auc']:+.3f}",
            ">= 0",
            churn["model_roc_auc"] >= churn["baseline_roc_auc"],
        ),
        (
            "fraud PR-AUC vs truth",
            f"{fraud['winner']} ({fraud['mode']}) {fraud['model_pr_auc']:.3f} vs "
            f"{fraud['truth_pr_auc']:.3f} on {fraud['label']} (baseline {fraud['baseline_pr_auc']:.3f})",
            f"ratio {fraud['ratio']:.3f}",
            f">= {FRAUD_RATIO}",
            fraud["ratio"] >= FRAUD_RATIO,
        ),
        (
            "forecast MASE, category units",
            f"{forecast['selected_units_mase']:.3f} vs seasonal naive "
            f"{forecast['naive_units_mase']:.3f} (truth {forecast['truth_units_mase']:.3f})",
            f"ratio {forecast['ratio']:.3f}",
            f"<= {MASE_RATIO}",
            forecast["ratio"] <= MASE_RATIO,
        ),
        (
            "forecast MASE vs best of seasonal naive and 28-day mean",
            f"{forecast['selected_units_mase']:.3f} vs "
            f"{forecast['best_baseline_units_mase']:.3f} (28-day mean {forecast['window_mean_units_mase']:.3f}, "
            f"ETS {forecast['ets_units_mase']:.3f}; over {forecast['gate_windows']} gate windows "
            f"{forecast['windows_selected_units_mase']:.3f} vs naive {forecast['windows_naive_units_mase']:.3f}, "
            f"mean {forecast['windows_window_mean_units_mase']:.3f})",
            f"bias {100 * forecast['bias']:+.1f}%",
            "at or below",
            forecast["selected_units_mase"] <= forecast["best_baseline_units_mase"] + 1e-12,
        ),
        (
            "forecast MASE, category revenue",
            f"{forecast['selected_revenue_mase']:.3f} vs seasonal naive {forecast['naive_revenue_mase']:.3f}",
            f"ratio {forecast['revenue_ratio']:.3f}",
            "(reported)",
            True,
        ),
        (
            "80% interval coverage, holdout",
            f"{forecast['every_series_coverage_80']:.3f} of every series' days "
            f"(categories {forecast['coverage_80']:.3f}, their units {forecast['units_coverage_80']:.3f}; "
            "categories on "
            f"{forecast['gate_windows']} gate windows {forecast['windows_coverage_80']:.3f})",
            f"{100 * (forecast['every_series_coverage_80'] - 0.8):+.1f} points",
            "within 5 points",
            abs(forecast["every_series_coverage_80"] - 0.8) <= COVERAGE_TOLERANCE,
        ),
        (
            "95% interval coverage, holdout",
            f"{forecast['every_series_coverage_95']:.3f} of every series' days "
            f"(categories {forecast['coverage_95']:.3f}, their units {forecast['units_coverage_95']:.3f}; "
            "categories on "
            f"{forecast['gate_windows']} gate windows {forecast['windows_coverage_95']:.3f})",
            f"{100 * (forecast['every_series_coverage_95'] - 0.95):+.1f} points",
            "within 5 points",
            abs(forecast["every_series_coverage_95"] - 0.95) <= COVERAGE_TOLERANCE,
        ),
    ]
    lines = [
        f"Demo shop: {config.get('customers')} customers, {config.get('days')} days, seed {config.get('seed')}; "
        f"model seed {SEED}; {seconds:.0f} s.",
        f"Churn holdout: {churn['customers']} customers at cutoff {churn['cutoff']}, "
        f"{churn['window_days']}-day window, "
        f"churn rate {churn['base_rate']:.2f}. Fraud holdout: {fraud['payments']} payments from "
        f"{fraud['holdout_from']}, "
        f"{fraud['chargebacks']} {fraud['label']}. Forecast holdout: the 28 days after {forecast['holdout_origin']}, "
        f"{forecast['series']} series; ships {forecast['shipped']} (models {forecast['models_chosen']}); "
        "forecasting fit "
        f"{forecast['seconds']:.1f} s wall, {forecast['cpu_seconds']:.1f} s CPU.",
        "",
        "| measure | model vs reference | figure | target | met |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {'yes' if ok else 'NO'} |" for a, b, c, d, ok in checks]
    return "\n".join(lines), all(ok for *_, ok in checks)


# ---------------------------------------------------------------------------------------------
# Hard shops: the demo shop and shops with little of its signal, each generated into a home of its
# own and run through shoplake_all from nothing; per shop, each family's winning candidate (or why it
# skipped), the truth measures above where the family trained, and issue 19's must-shows as checks.
# The tables go to benchmarks/results/evaluate_models_<date>.json and docs/models.md.
# ---------------------------------------------------------------------------------------------

SHOPS: dict[str, dict] = {
    "demo": {},
    "real-like": REAL_LIKE,
    "one-time-buyers": {"repeat_rate": REAL_LIKE["repeat_rate"]},
    "weak-seasonality": {"seasonality": REAL_LIKE["seasonality"], "demand_noise": REAL_LIKE["demand_noise"]},
    "no-chargebacks": {"payment_method": "bank_transfer", "chargebacks": False},
    "45-days": {"days": 45},
}
MODEL_NAMES = {"churn": "shoplake_churn", "fraud": "shoplake_fraud", "forecasting": "shoplake_demand_forecast"}
HOME_VARIABLES = (
    "SHOPLAKE_HOME",
    "SHOPLAKE_SOURCE_URL",
    "SHOPLAKE_CATALOG_URI",
    "SHOPLAKE_WAREHOUSE",
    "SHOPLAKE_DUCKDB_PATH",
    "MLFLOW_TRACKING_URI",
    "SHOPLAKE_MLFLOW_ARTIFACTS",
)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "models.md"
# Issue 19: training all families on the demo shop takes at most this much wall time in total.
TRAINING_BUDGET_SECONDS = 60.0
TRAINING_STEPS = {family: f"ml__{family}_model" for family in MODEL_NAMES}


def build_shop(home: Path, config: ShopConfig) -> tuple[Settings, str, bool, dict[str, float]]:
    """Generate ``config`` into a fresh SHOPLAKE_HOME and run shoplake_all on it in-process:
    (settings, run id, success, wall seconds of each step). Every location follows from the home."""
    import dagster as dg

    from orchestration.definitions import defs

    for var in HOME_VARIABLES:
        os.environ.pop(var, None)
    os.environ["SHOPLAKE_HOME"] = str(home)
    settings = Settings.from_env()
    generate_shop(config, settings.source_url, settings.truth_dir, progress=False)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("shoplake_all").execute_in_process(instance=instance, raise_on_error=False)
        steps = step_seconds(instance, result.run_id)
    return settings, result.run_id, result.success, steps


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall seconds of each step of a run, from its STEP_START and STEP_SUCCESS/STEP_FAILURE events."""
    started, ended = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type_value == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            ended[entry.step_key] = entry.timestamp
    return {key: ended[key] - started[key] for key in started if key in ended}


def _cpu() -> float:
    """CPU seconds of this process and of the child processes it has waited for (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_training(settings: Settings, repeats: int) -> dict:
    """Each family's training as its asset runs it (read the features, backtest and fit every
    candidate), timed directly in this one process ``repeats`` times: wall and CPU seconds, and the
    median of each. MLflow logging is not included here; the run's own training steps include it."""
    tables = sorted({*churn_features.TABLES, *fraud_features.TABLES, *forecast_features.TABLES})
    con, _ = lakehouse_data.open_tables(settings, tables)
    steps = {
        "churn": (lambda: churn_train.load_data(con), lambda d: churn_train.fit_candidates(d, SEED)),
        "fraud": (lambda: fraud_train.load_data(con), lambda d: fraud_train.fit_candidates(d, SEED)),
        "forecasting": (lambda: forecast_train.load_data(con), forecast_train.fit_candidates),
    }
    out: dict = {"repeats": repeats, "families": {}}
    for family, (load, fit) in steps.items():
        runs = []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), _cpu()
            data = load()
            loaded, loaded_cpu = time.perf_counter(), _cpu()
            fit(data)
            runs.append(
                {
                    "load_seconds": loaded - wall,
                    "load_cpu_seconds": loaded_cpu - cpu,
                    "fit_seconds": time.perf_counter() - loaded,
                    "fit_cpu_seconds": _cpu() - loaded_cpu,
                }
            )
        total = [r["load_seconds"] + r["fit_seconds"] for r in runs]
        total_cpu = [r["load_cpu_seconds"] + r["fit_cpu_seconds"] for r in runs]
        out["families"][family] = {
            "runs": runs,
            "median_seconds": float(np.median(total)),
            "median_cpu_seconds": float(np.median(total_cpu)),
        }
        print(
            f"  training {family}: median {np.median(total):.1f} s wall, {np.median(total_cpu):.1f} s CPU "
            f"over {repeats} runs",
            file=sys.stderr,
            flush=True,
        )
    out["total_median_seconds"] = sum(f["median_seconds"] for f in out["families"].values())
    out["total_median_cpu_seconds"] = sum(f["median_cpu_seconds"] for f in out["families"].values())
    out["steps"] = time_training_steps()
    return out


def time_training_steps() -> dict:
    """The three training assets as a run materializes them (features, backtest, every candidate logged
    to MLflow with its plots, the challenger registered), in this process on the shop built last: the
    run's wall and CPU seconds and each step's wall seconds. Registers one more challenger per family."""
    import dagster as dg

    from orchestration.definitions import defs

    keys = [dg.AssetKey(["ml", f"{family}_model"]) for family in MODEL_NAMES]
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        wall, cpu = time.perf_counter(), _cpu()
        result = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        steps = step_seconds(instance, result.run_id)
    out = {
        "success": result.success,
        "seconds": wall,
        "cpu_seconds": cpu,
        "steps": {family: steps.get(key) for family, key in TRAINING_STEPS.items()},
    }
    print(
        f"  training steps of all families: {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({'green' if result.success else 'failed'})",
        file=sys.stderr,
        flush=True,
    )
    return out


def family_outcomes(settings: Settings, run_id: str) -> dict[str, dict]:
    """Per family: what the run did (prod.compliance_report's model section) and the champion's
    candidate with the gate's decision (the MLflow version's tag and description)."""
    from mlflow.exceptions import MlflowException

    from orchestration import query

    con = query.connect(settings)
    rows = query.run_query(
        con, f"SELECT item, status, detail FROM prod.compliance_report WHERE section = 'models' AND run_id = '{run_id}'"
    ).fetchall()
    client = tracking.configure(settings)
    out = {}
    for family, model_name in MODEL_NAMES.items():
        stages = {
            item.removeprefix(f"{family}_"): [status, detail]
            for item, status, detail in rows
            if item.startswith(f"{family}_")
        }
        entry = {"stages": stages, "candidate": None, "version": None, "decision": ""}
        try:
            version = client.get_model_version_by_alias(model_name, tracking.CHAMPION)
        except MlflowException:  # no such model or alias: the family has no champion
            version = None
        if version is not None:
            entry |= {
                "candidate": version.tags.get("shoplake.candidate"),
                "version": version.version,
                "decision": version.description or "",
            }
        out[family] = entry
    return out


def skipped(outcome: dict) -> str | None:
    """Why the family's training skipped in the run, or None when it trained."""
    status, detail = outcome["stages"].get("training", ["", ""])
    return detail if status == "skipped" else None


def published_marts(settings: Settings) -> dict[str, list[str]]:
    """The prod marts dbt builds (one model file each) and those of them published to the lakehouse."""
    from orchestration import query

    marts = sorted(f"prod.{p.stem}" for p in (ROOT / "dbt_project" / "models" / "prod").glob("*.sql"))
    tables = set(query.published_tables(query.connect(settings)))
    return {"marts": marts, "published": [m for m in marts if m in tables]}


def fraud_scores_vs_truth(settings: Settings) -> dict | None:
    """The published fraud scores against the true fraud label, which a shop without chargebacks never
    shows: how much of the hidden fraud the (unsupervised) scores find, next to the true probability's."""
    from sklearn.metrics import average_precision_score

    from orchestration import query

    con = query.connect(settings)
    if "prod.fraud_scores" not in query.published_tables(con):  # the family skipped: nothing to measure
        return None
    scores = query.run_query(con, "SELECT payment_id, fraud_score, scoring_mode FROM prod.fraud_scores").df()
    truth = pd.read_parquet(
        settings.truth_dir / "payments.parquet", columns=["payment_id", "fraud_probability", "is_fraud"]
    )
    both = scores.merge(truth, on="payment_id")
    modes = sorted(both["scoring_mode"].astype(str).unique())
    out = {"payments": len(both), "frauds": int(both["is_fraud"].sum()), "modes": modes}
    if both["is_fraud"].any():
        out |= {
            "scores_pr_auc": float(average_precision_score(both["is_fraud"], both["fraud_score"])),
            "truth_pr_auc": float(average_precision_score(both["is_fraud"], both["fraud_probability"])),
            "base_rate": float(both["is_fraud"].mean()),
        }
    return out


def measure_shop(settings: Settings, outcomes: dict[str, dict]) -> dict:
    """The truth measures of every family that trained in the run (None for one that skipped)."""
    tables = sorted({*churn_features.TABLES, *fraud_features.TABLES, *forecast_features.TABLES})
    con, _ = lakehouse_data.open_tables(settings, tables)
    return {
        "churn": None if skipped(outcomes["churn"]) else evaluate_churn(con, settings.truth_dir),
        "fraud": None if skipped(outcomes["fraud"]) else evaluate_fraud(con, settings.truth_dir),
        "fraud_published": fraud_scores_vs_truth(settings),
        "forecast": None if skipped(outcomes["forecasting"]) else evaluate_forecast(con, settings.truth_dir),
        **published_marts(settings),
    }


def shop_checks(name: str, options: dict, shop: dict) -> list[dict]:
    """Issue 19's must-shows that apply to this shop, each with its figure, target and whether it holds.
    Figures that no must-show targets on this shop are reported with the target "(reported)"."""
    checks: list[dict] = []

    def add(measure: str, detail: str, figure: str, target: str, met: bool | None) -> None:
        checks.append({"measure": measure, "detail": detail, "figure": figure, "target": target, "met": met})

    add("shoplake_all", f"{shop['seconds']:.0f} s", "green" if shop["success"] else "failed", "green", shop["success"])
    if not shop["success"]:
        return checks
    demo = name == "demo"
    outcomes = shop["families"]
    add(
        "prod marts published",
        ", ".join(sorted(set(shop["marts"]) - set(shop["published"]))) or "every one",
        f"{len(shop['published'])} of {len(shop['marts'])}",
        "all",
        shop["published"] == shop["marts"],
    )
    for family, o in outcomes.items():
        why = skipped(o)
        if why is not None:
            add(f"{family} skipped with its reason", why, "skipped", "a reason", bool(why.strip()))
    c = shop["churn"]
    if c is not None:
        add(
            "churn champion vs best baseline, holdout ROC-AUC",
            f"{c['winner']} {c['model_roc_auc']:.3f} vs {c['baseline']} {c['baseline_roc_auc']:.3f}",
            f"{c['model_roc_auc'] - c['baseline_roc_auc']:+.3f}",
            ">= 0",
            c["model_roc_auc"] >= c["baseline_roc_auc"],
        )
        add(
            "churn ROC-AUC vs recency alone",
            f"{c['model_roc_auc']:.3f} vs {c['recency_roc_auc']:.3f}",
            f"{c['model_roc_auc'] - c['recency_roc_auc']:+.3f}",
            ">= +0.02" if demo else "(reported)",
            c["model_roc_auc"] >= c["recency_roc_auc"] + 0.02 if demo else None,
        )
        add(
            "churn ROC-AUC vs the true churn probability",
            f"{c['model_roc_auc']:.3f} vs {c['truth_roc_auc']:.3f}",
            f"ratio {c['ratio']:.3f}",
            f">= {CHURN_RATIO}" if demo else "(reported)",
            c["ratio"] >= CHURN_RATIO if demo else None,
        )
    f, published = shop["fraud"], shop["fraud_published"]
    if published is not None and not options.get("chargebacks", True):
        add(
            "fraud scoring_mode without chargebacks",
            ", ".join(published["modes"]),
            ", ".join(published["modes"]),
            "unsupervised",
            published["modes"] == [fraud_train.UNSUPERVISED],
        )
    if f is not None:
        add(
            "fraud PR-AUC vs the true fraud probability",
            f"{f['winner']} ({f['mode']}) {f['model_pr_auc']:.3f} vs {f['truth_pr_auc']:.3f} on {f['label']}",
            f"ratio {f['ratio']:.3f}",
            f">= {FRAUD_RATIO}" if demo else "(reported)",
            f["ratio"] >= FRAUD_RATIO if demo else None,
        )
    m = shop["forecast"]
    if m is not None:
        add(
            "forecast MASE vs the best of seasonal naive and 28-day mean, holdout",
            f"{m['shipped']} {m['selected_units_mase']:.3f} vs {m['best_baseline_units_mase']:.3f} (seasonal naive "
            f"{m['naive_units_mase']:.3f}, 28-day mean {m['window_mean_units_mase']:.3f}, "
            f"ETS {m['ets_units_mase']:.3f})",
            f"{m['selected_units_mase'] - m['best_baseline_units_mase']:+.3f}",
            "<= 0" if demo else "(reported)",
            m["selected_units_mase"] <= m["best_baseline_units_mase"] + 1e-12 if demo else None,
        )
        add(
            "forecast MASE vs seasonal naive, holdout",
            f"{m['selected_units_mase']:.3f} vs {m['naive_units_mase']:.3f}",
            f"ratio {m['ratio']:.3f}",
            f"<= {MASE_RATIO}" if demo else "(reported)",
            m["ratio"] <= MASE_RATIO if demo else None,
        )
        for nominal in (80, 95):
            cover = m[f"every_series_coverage_{nominal}"]
            add(
                f"{nominal}% interval coverage, holdout",
                f"{cover:.3f} of every series' days (category units {m[f'units_coverage_{nominal}']:.3f})",
                f"{100 * (cover - nominal / 100):+.1f} points",
                "within 5 points",
                abs(cover - nominal / 100) <= COVERAGE_TOLERANCE,
            )
    return checks


def _cell(text) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def _yes(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def family_rows(shop: dict) -> list[list[str]]:
    """One row per family: outcome in the run, the candidate that ships, the gate's decision, the truth."""
    rows = []
    for family, o in shop["families"].items():
        why = skipped(o)
        outcome = (
            f"skipped: {why}"
            if why is not None
            else ", ".join(f"{stage} {status}" for stage, (status, _) in o["stages"].items()) or "no outcome recorded"
        )
        winner = f"{o['candidate']} (v{o['version']})" if o["candidate"] else "none"
        truth = ""
        if family == "churn" and shop.get("churn"):
            c = shop["churn"]
            truth = (
                f"holdout ROC-AUC {c['model_roc_auc']:.3f} ({c['winner']}) vs truth {c['truth_roc_auc']:.3f}, "
                f"best baseline {c['baseline']} {c['baseline_roc_auc']:.3f}, recency {c['recency_roc_auc']:.3f}; "
                f"churn rate {c['base_rate']:.2f}"
            )
        elif family == "fraud" and shop.get("fraud_published"):
            p = shop["fraud_published"]
            modes = ", ".join(p["modes"])
            truth = f"published scores {modes}"
            if "scores_pr_auc" in p:
                seen = " (in-sample: it trained on most of them)" if fraud_train.SUPERVISED in p["modes"] else ""
                truth += (
                    f"{seen}: PR-AUC {p['scores_pr_auc']:.3f} on the true label vs truth {p['truth_pr_auc']:.3f} "
                    f"(fraud rate {p['base_rate']:.4f}, {p['frauds']} of {p['payments']})"
                )
        elif family == "forecasting" and shop.get("forecast"):
            m = shop["forecast"]
            truth = (
                f"holdout MASE {m['selected_units_mase']:.3f} vs seasonal naive {m['naive_units_mase']:.3f}, "
                f"28-day mean {m['window_mean_units_mase']:.3f}; 80%/95% coverage "
                f"{m['every_series_coverage_80']:.2f}/{m['every_series_coverage_95']:.2f}; per series: "
                f"{m['models_chosen']}"
            )
        rows.append([family, outcome, winner, o["decision"], truth])
    return rows


def shop_section(shop: dict) -> str:
    lines = [
        f"### {shop['name']}",
        "",
        f"{json.dumps(shop['options'])}; shoplake_all {'green' if shop['success'] else 'FAILED'} in "
        f"{shop['seconds']:.0f} s.",
        "",
        "| family | outcome | winning candidate | gate decision | against the truth |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in family_rows(shop)]
    lines += ["", "| must-show | detail | figure | target | met |", "|---|---|---|---|---|"]
    lines += [
        "| " + " | ".join(_cell(c[k]) for k in ("measure", "detail", "figure", "target")) + f" | {_yes(c['met'])} |"
        for c in shop["checks"]
    ]
    return "\n".join(lines)


def training_section(result: dict) -> list[str]:
    timing, first = result.get("training_time"), result.get("training_steps") or {}
    if not timing:
        return []
    alone = timing.get("steps") or {}
    load = result.get("load_average")

    def s(value) -> str:
        return "" if value is None else f"{value:.1f} s"

    lines = [
        "## Training time on the demo shop",
        "",
        "Three measures of training every family, in one process: each family's training proper (read its "
        f"features, backtest and fit every candidate), timed directly, {timing['repeats']} runs each "
        "(medians); the three training assets materialized on their own, which also log every candidate "
        "with its plots to MLflow and register the challenger; and the same steps in the shop's first "
        "`shoplake_all` run (which also creates the MLflow database). CPU seconds count this process and "
        "its children: on a quiet 2-core machine the wall time is about the CPU time, on a busy one it is "
        f"not (load average {'?' if load is None else f'{load:.1f}'} on {result['machine']['cores']} cores "
        f"when timed). Issue 19's budget: {TRAINING_BUDGET_SECONDS:.0f} s of wall time for all families on a "
        "quiet machine.",
        "",
        "| family | training proper: wall | CPU | training asset alone: wall | step in the first run: wall |",
        "|---|---|---|---|---|",
    ]
    for family, t in timing["families"].items():
        lines.append(
            f"| {family} | {s(t['median_seconds'])} | {s(t['median_cpu_seconds'])} | "
            f"{s((alone.get('steps') or {}).get(family))} | {s(first.get(family))} |"
        )
    lines.append(
        f"| all | {s(timing['total_median_seconds'])} | {s(timing['total_median_cpu_seconds'])} | "
        f"{s(alone.get('seconds'))} ({s(alone.get('cpu_seconds'))} CPU) | {s(sum(first.values()) if first else None)} |"
    )
    return lines


def render(result: dict, source: Path) -> str:
    """docs/models.md from one result file."""
    checks = [(s["name"], c) for s in result["shops"] for c in s["checks"] if c["met"] is not None]
    missed = [f"{name}: {c['measure']}" for name, c in checks if not c["met"]]
    lines = [
        "# Models against the truth",
        "",
        "Generated by `benchmarks/evaluate_models.py --shops ...` from "
        f"`{source.relative_to(ROOT) if source.is_relative_to(ROOT) else source}` ({result['date']}, code "
        f"{result['code_version']}, {result['machine']['cores']} cores). Do not edit by hand.",
        "",
        "Each shop is generated from nothing at "
        f"{result['customers']:,} customers x {result['days']} days (seed {result['seed']}) and run through "
        "`shoplake_all`. Every family backtests its candidates, its simple baselines included, on rolling "
        "origins; the best one ships if it beats the naive reference (see docs/design.md). The generator's "
        "hidden truth (each customer's churn probability, each payment's fraud probability and label, the "
        "expected units per category and day) measures the result on a holdout no model saw: for churn the "
        "truth's own label window, for forecasting the 28 days after the training history, for fraud the "
        "latest payments (or, with no chargebacks, the true fraud label that such a shop never shows).",
        "",
        f"Must-shows met: {sum(c['met'] for _, c in checks)} of {len(checks)}"
        + (f"; missed: {'; '.join(missed)}." if missed else "."),
        "",
        "| shop | churn | fraud | forecasting | checks met |",
        "|---|---|---|---|---|",
    ]
    for shop in result["shops"]:
        cells = []
        for family in MODEL_NAMES:
            o = shop["families"][family]
            why = skipped(o)
            cells.append("skipped" if why is not None else (o["candidate"] or "none"))
        mine = [c for c in shop["checks"] if c["met"] is not None]
        cells.append(f"{sum(c['met'] for c in mine)} of {len(mine)}")
        lines.append(f"| {shop['name']} | " + " | ".join(cells) + " |")
    lines += ["", *training_section(result), "", "## Per shop", ""]
    lines += [shop_section(s) + "\n" for s in result["shops"]]
    return "\n".join(lines).rstrip() + "\n"


def code_version() -> str:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    if not head:  # not a git checkout (an exported tree): its version is written beside it
        marker = ROOT / ".code_version"
        return marker.read_text().strip() if marker.exists() else "unknown"
    return head + ("+uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def evaluate_shops(
    names: list[str], customers: int, days: int, seed: int, work: Path, repeats: int, reuse: bool = False
) -> dict:
    """Build each named shop (``SHOPS``) at this size under ``work``, run it, measure it, check it;
    time each family's training on the demo shop. With ``reuse``, a shop already built there with the
    same config (its ``<name>.run.json`` record) is measured again instead of being built anew."""
    result: dict = {
        "kind": "evaluate_models",
        "date": dt.date.today().isoformat(),
        "code_version": code_version(),
        "machine": {"cores": os.cpu_count()},
        "customers": customers,
        "days": days,
        "seed": seed,
        "model_seed": SEED,
        "shops": [],
    }
    for name in names:
        options = dict(SHOPS[name])
        config = ShopConfig(**({"customers": customers, "days": days, "seed": seed} | options)).validate()
        home, record = work / name, work / f"{name}.run.json"
        built = json.loads(record.read_text()) if reuse and record.exists() else None
        if built is not None and built["config"] == config.as_dict():  # measure the home built before
            print(f"{name}: measuring the shop built before in {home}", file=sys.stderr, flush=True)
            for var in HOME_VARIABLES:
                os.environ.pop(var, None)
            os.environ["SHOPLAKE_HOME"] = str(home)
            settings = Settings.from_env()
        else:
            if home.exists():
                shutil.rmtree(home)
            started = time.perf_counter()
            print(
                f"{name}: generating {config.customers} customers x {config.days} days and running shoplake_all",
                file=sys.stderr,
                flush=True,
            )
            settings, run_id, success, steps = build_shop(home, config)
            built = {
                "config": config.as_dict(),
                "run_id": run_id,
                "success": success,
                "seconds": time.perf_counter() - started,
                "steps": steps,
            }
            record.write_text(json.dumps(built, indent=1, default=str) + "\n")
        run_id, success, steps = built["run_id"], built["success"], built["steps"]
        shop = {
            "name": name,
            "options": {k: v for k, v in config.as_dict().items() if k not in ("end_date", "dirty_rate")},
            "success": success,
            "seconds": built["seconds"],
            "run_id": run_id,
            "training_steps": {f: steps[key] for f, key in TRAINING_STEPS.items() if key in steps},
            "families": {},
            "churn": None,
            "fraud": None,
            "fraud_published": None,
            "forecast": None,
            "marts": [],
            "published": [],
        }
        if success:
            shop["families"] = family_outcomes(settings, run_id)
            shop |= measure_shop(settings, shop["families"])
        else:
            shop["families"] = {
                f: {"stages": {}, "candidate": None, "version": None, "decision": ""} for f in MODEL_NAMES
            }
        shop["checks"] = shop_checks(name, options, shop)
        if name == "demo" and success and repeats:
            result["load_average"] = os.getloadavg()[0]
            result["training_time"] = time_training(settings, repeats)
            result["training_steps"] = shop["training_steps"]
        result["shops"].append(shop)
        print(shop_section(shop) + "\n", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table to this file (with --shops: the page)")
    parser.add_argument(
        "--shops",
        nargs="+",
        choices=tuple(SHOPS),
        help="build these shops from nothing, each in its own home under --work, and tabulate each",
    )
    parser.add_argument("--customers", type=int, default=3000, help="size of the --shops (default 3000)")
    parser.add_argument("--days", type=int, default=540, help="history of the --shops (default 540)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("data/bench/hard_shops"), help="where the --shops' homes go")
    parser.add_argument(
        "--repeats", type=int, default=3, help="with --shops: time each family's training on the demo shop this often"
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="with --shops: the result file (default benchmarks/results/evaluate_models_<date>.json)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --shops: measure shops already built under --work with the same config",
    )
    parser.add_argument("--render", type=Path, help="write --markdown (default docs/models.md) from this result file")
    args = parser.parse_args(argv)
    if args.render:
        result = json.loads(args.render.read_text())
        Path(args.markdown or PAGE).write_text(render(result, args.render.resolve()))
        return 0
    if args.shops:
        result = evaluate_shops(args.shops, args.customers, args.days, args.seed, args.work, args.repeats, args.reuse)
        path = args.json or RESULTS / f"evaluate_models_{result['date']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"wrote {path}", file=sys.stderr)
        if args.markdown:
            Path(args.markdown).write_text(render(result, path.resolve()))
        checks = [c["met"] for s in result["shops"] for c in s["checks"] if c["met"] is not None]
        return 0 if all(checks) else 1
    settings = Settings.from_env()
    if not (settings.truth_dir / "generation.json").exists():
        print(
            f"no ground truth in {settings.truth_dir}: run `shoplake generate` and the shoplake_all job first",
            file=sys.stderr,
        )
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
