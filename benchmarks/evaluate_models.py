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
``--work``, runs shoplake_all, and prints one table per shop naming each family's winning
candidate and the gate's decision, or why the family skipped, with the truth measures::

    python benchmarks/evaluate_models.py --shops demo real-like 45-days --customers 2000 --days 450
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
    started, cpu = time.perf_counter(), time.process_time()
    result = forecast_train.fit_candidates(data)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
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
# own and run through shoplake_all from nothing; one table per shop naming the winning candidate of
# every family (or why it skipped), and the truth measures above where the family trained.
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


def build_shop(home: Path, config: ShopConfig) -> tuple[Settings, str, bool]:
    """Generate ``config`` into a fresh SHOPLAKE_HOME and run shoplake_all on it in-process:
    (settings, run id, success). Every location follows from the home, as for a user."""
    import dagster as dg

    from orchestration.definitions import defs

    for var in HOME_VARIABLES:
        os.environ.pop(var, None)
    os.environ["SHOPLAKE_HOME"] = str(home)
    settings = Settings.from_env()
    generate_shop(config, settings.source_url, settings.truth_dir, progress=False)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("shoplake_all").execute_in_process(instance=instance, raise_on_error=False)
    return settings, result.run_id, result.success


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
            item.removeprefix(f"{family}_"): (status, detail)
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
    if both.empty or not both["is_fraud"].any():
        return None
    return {
        "payments": len(both),
        "frauds": int(both["is_fraud"].sum()),
        "modes": ", ".join(sorted(both["scoring_mode"].astype(str).unique())),
        "scores_pr_auc": float(average_precision_score(both["is_fraud"], both["fraud_score"])),
        "truth_pr_auc": float(average_precision_score(both["is_fraud"], both["fraud_probability"])),
        "base_rate": float(both["is_fraud"].mean()),
    }


def truth_measures(settings: Settings, outcomes: dict[str, dict]) -> dict[str, str]:
    """One line per family measured against the generator's truth, for the families that trained."""
    tables = sorted({*churn_features.TABLES, *fraud_features.TABLES, *forecast_features.TABLES})
    con, _ = lakehouse_data.open_tables(settings, tables)
    trained = {f for f, o in outcomes.items() if o["stages"].get("training", ("",))[0] != "skipped"}
    out = {}
    if "churn" in trained:
        c = evaluate_churn(con, settings.truth_dir)
        out["churn"] = (
            f"holdout ROC-AUC {c['model_roc_auc']:.3f} vs truth {c['truth_roc_auc']:.3f} "
            f"(RFM baseline {c['baseline_roc_auc']:.3f}; churn rate {c['base_rate']:.2f})"
        )
    f = fraud_scores_vs_truth(settings)
    if f is not None:
        seen = " (in-sample: it trained on most of them)" if "supervised" in f["modes"].split(", ") else ""
        out["fraud"] = (
            f"published scores ({f['modes']}{seen}) PR-AUC {f['scores_pr_auc']:.3f} on the true label "
            "vs truth "
            f"{f['truth_pr_auc']:.3f} (fraud rate {f['base_rate']:.4f}, {f['frauds']} of {f['payments']})"
        )
    if "forecasting" in trained:
        m = evaluate_forecast(con, settings.truth_dir)
        out["forecasting"] = (
            f"holdout MASE {m['selected_units_mase']:.3f} vs seasonal naive "
            f"{m['naive_units_mase']:.3f}; "
            f"80%/95% coverage {m['coverage_80']:.2f}/{m['coverage_95']:.2f}; chosen: "
            f"{m.get('models_chosen', '')}"
        )
    return out


def shop_table(
    name: str, config: ShopConfig, success: bool, outcomes: dict[str, dict], truth: dict[str, str], seconds: float
) -> str:
    options = {k: v for k, v in config.as_dict().items() if k not in ("end_date", "dirty_rate")}
    lines = [
        f"### {name}",
        "",
        f"{json.dumps(options)}; shoplake_all {'green' if success else 'FAILED'} in {seconds:.0f} s.",
        "",
        "| family | outcome | winning candidate | gate decision | against the truth |",
        "|---|---|---|---|---|",
    ]
    for family, o in outcomes.items():
        stages = o["stages"]
        skipped = stages.get("training", ("", ""))
        outcome = (
            "skipped: " + skipped[1]
            if skipped[0] == "skipped"
            else ", ".join(f"{stage} {status}" for stage, (status, _) in stages.items()) or "no outcome recorded"
        )
        winner = f"{o['candidate']} (v{o['version']})" if o["candidate"] else "none"
        cells = [family, outcome, winner, o["decision"], truth.get(family, "")]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def evaluate_shops(names: list[str], customers: int, days: int, seed: int, work: Path) -> str:
    """Build each named shop (``SHOPS``) at this size under ``work``, run it, and tabulate it."""
    sections = []
    for name in names:
        options = dict(SHOPS[name])
        config = ShopConfig(**({"customers": customers, "days": days, "seed": seed} | options)).validate()
        home = work / name
        if home.exists():
            shutil.rmtree(home)
        started = time.perf_counter()
        print(
            f"{name}: generating {config.customers} customers x {config.days} days and running shoplake_all",
            file=sys.stderr,
            flush=True,
        )
        settings, run_id, success = build_shop(home, config)
        seconds = time.perf_counter() - started
        outcomes = (
            family_outcomes(settings, run_id)
            if success
            else {f: {"stages": {}, "candidate": None, "version": None, "decision": ""} for f in MODEL_NAMES}
        )
        truth = truth_measures(settings, outcomes) if success else {}
        sections.append(shop_table(name, config, success, outcomes, truth, seconds))
        print(sections[-1] + "\n", flush=True)
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table to this file")
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
    args = parser.parse_args(argv)
    if args.shops:
        text = evaluate_shops(args.shops, args.customers, args.days, args.seed, args.work)
        if args.markdown:
            Path(args.markdown).write_text(text + "\n")
        return 0
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
