"""Fraud as assets: train and register (``ml/fraud_model``), gate (``fraud_challenger_beats_champion``),
promote (``ml/fraud_promotion``), score every payment with ``@champion`` (``prod/fraud_scores``) and
list the captured payments still inside the chargeback window that score above the champion's 1%
false-positive-rate threshold (``prod/high_risk_transactions``)."""

from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration.schedules import PROD_FRESHNESS, TRAINING, table_pool
from ml_assets import explain, lakehouse_data, registry, reporting, tracking
from ml_assets.fraud import features as F
from ml_assets.errors import MalformedFrame
from ml_assets.hyperparameters import FRAUD_XGBOOST, ClassifierXGBoostParams
from orchestration.lakehouse.catalog import load_catalog, table_or_none
from orchestration.resources import LakehouseResource
from orchestration.settings import Settings
from orchestration.transform.publish import write_table

# The training module (scikit-learn, XGBoost) is imported by the functions that train or score, as T:
# loading the code location stays light (ml_assets/definitions.py ML_RUNTIME_MODULES).

FAMILY = registry.Family(name="fraud", model_name="shoplake_fraud", metric="pr_auc", higher_is_better=True, margin=0.002)
SIGNALS_PER_PAYMENT = 3
# What a later scoring can take over from prod.fraud_scores instead of recomputing.
REUSABLE = ("payment_id", "model_version", "features_hash", "fraud_probability", "top_signals")


class FraudTrainingConfig(dg.Config):
    seed: int = 7
    n_estimators: int = FRAUD_XGBOOST.n_estimators
    max_depth: int = FRAUD_XGBOOST.max_depth
    learning_rate: float = FRAUD_XGBOOST.learning_rate

    def xgboost_params(self) -> ClassifierXGBoostParams:
        return replace(FRAUD_XGBOOST, n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate)


@dg.asset(
    key=FAMILY.model_key,
    tags=TRAINING,
    group_name="ml",
    deps=[dg.AssetKey(t.split(".")) for t in F.TABLES],
    kinds={"mlflow", "xgboost", "scikitlearn"},
    description="Trains an IsolationForest anomaly score (baseline) and XGBoost on the chargeback label (with the anomaly "
    "score as a feature) on payments old enough to be labelled, evaluates both on the latest labelled payments and "
    f"registers XGBoost as `{FAMILY.model_name}@challenger`.",
)
def fraud_model(context: dg.AssetExecutionContext, config: FraudTrainingConfig, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    from ml_assets.fraud import train as T

    settings = lakehouse.settings()
    con, lineage = lakehouse_data.open_tables(settings, F.TABLES)
    data = T.load_data(con)
    context.log.info(
        f"labels up to {data.labelled_until} ({data.label_delay_days}-day chargeback delay); training "
        f"{len(data.train)} payments ({int(data.train['is_chargeback'].sum())} chargebacks), holdout from "
        f"{data.holdout_from}: {len(data.holdout)} ({int(data.holdout['is_chargeback'].sum())} chargebacks)"
    )
    result = T.fit_candidates(data, config.seed, config.xgboost_params())
    client = tracking.configure(settings)
    champion, champion_at = registry.load_champion(client, FAMILY)
    champion_score, champion_p = None, None
    if champion is not None:
        try:
            champion_p = T.predict_score(champion, data.holdout)
            champion_score = T.evaluate(data.holdout["is_chargeback"], champion_p)[FAMILY.metric]
        except MalformedFrame as exc:
            context.log.warning(f"champion v{champion_at} cannot score this holdout ({exc}); comparing with the baseline only")

    y = data.holdout["is_chargeback"].astype(int).to_numpy()
    scores = {name: c.holdout_scores for name, c in result.candidates.items()}
    if champion_p is not None:
        scores[f"champion v{champion_at}"] = champion_p
    xgb_pipe = result.candidates[T.CHALLENGER].pipeline
    names, contrib = T.contributions(xgb_pipe, data.holdout)
    experiment_id = tracking.experiment(settings, FAMILY.experiment)
    tags = lakehouse_data.lineage_tags(context.run.run_id, lineage)
    params = {"label_delay_days": data.label_delay_days, "labelled_until": str(data.labelled_until),
              "holdout_from": str(data.holdout_from), "train_rows": len(data.train), "holdout_rows": len(data.holdout),
              "train_chargebacks": int(data.train["is_chargeback"].sum()),
              "holdout_chargebacks": int(y.sum()), "seed": config.seed}
    example = data.holdout[F.FEATURES].head(5)
    runs = {}
    for name, cand in result.candidates.items():
        figures = {"roc_pr": reporting.roc_pr_figure(y, scores, "fraud")}
        cand_params = {**params, "candidate": name}
        if name == T.CHALLENGER:
            figures["calibration"] = reporting.calibration_figure(
                y, {n: p for n, p in scores.items() if n != T.BASELINE}, "fraud", bins=5)
            figures["feature_importance"] = reporting.importance_figure(names, np.abs(contrib).mean(0), "fraud XGBoost")
            cand_params.update(config.xgboost_params().__dict__)
        runs[name] = tracking.log_candidate(
            experiment_id, f"fraud_{name}", {**tags, "candidate": name}, cand_params, cand.metrics,
            cand.pipeline, example, T.predict_score(cand.pipeline, example), figures,
        )
    challenger = result.candidates[T.CHALLENGER].metrics[FAMILY.metric]
    baselines = {T.BASELINE: result.candidates[T.BASELINE].metrics[FAMILY.metric]}
    version = registry.register_challenger(client, FAMILY, runs[T.CHALLENGER].model_uri, challenger, baselines,
                                           champion_score, champion_at, tags)
    rows = [{"model": n, **c.metrics} for n, c in result.candidates.items()]
    if champion_score is not None:
        rows.append({"model": f"champion v{champion_at}", FAMILY.metric: champion_score})
    context.log.info(f"registered `{FAMILY.model_name}` v{version.version} as challenger: {FAMILY.metric} {challenger:.4f}")
    return dg.MaterializeResult(metadata={
        "challenger_version": version.version,
        "holdout_from": str(data.holdout_from),
        "holdout_payments": len(data.holdout),
        "holdout_chargebacks": int(y.sum()),
        **{f"xgboost_{k}": v for k, v in result.candidates[T.CHALLENGER].metrics.items()},
        "metrics": dg.MetadataValue.md(reporting.md_table(rows)),
        "mlflow_run_id": runs[T.CHALLENGER].run_id,
        **runs[T.CHALLENGER].plot_metadata,
    })


fraud_gate = registry.gate_check(FAMILY)
fraud_promotion = registry.promotion_asset(FAMILY)


def features_hash(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each payment's model inputs (stable across processes and runs)."""
    return pd.util.hash_pandas_object(frame[F.FEATURES], index=False).to_numpy().view("int64")


def previous_scores(settings: Settings) -> pd.DataFrame | None:
    """What the last scoring published, if it recorded the inputs behind each score."""
    table = table_or_none(load_catalog(settings), "prod.fraud_scores")
    if table is None or table.current_snapshot() is None or "features_hash" not in table.schema().column_names:
        return None
    return table.scan(selected_fields=REUSABLE).to_pandas()


def score_payments(settings: Settings, reuse: bool = True) -> tuple[pd.DataFrame, str, float]:
    """Every payment's fraud probability and strongest signals from ``@champion``, and the champion's
    score threshold at a 1% false-positive rate on its holdout.

    A payment's features are fixed when it is authorised, so the daily refresh re-scores only what
    is new: a payment keeps its published probability and signals when the same champion version
    scored the very same inputs (``features_hash``); anything else is scored again. The result is
    the same as scoring every payment (test_ml_models)."""
    from ml_assets.fraud import train as T

    client = tracking.configure(settings)
    model, version = registry.require_champion(client, FAMILY)
    run = client.get_run(client.get_model_version(FAMILY.model_name, version).run_id)
    threshold = float(run.data.metrics["threshold_at_1pct_fpr"])
    delay = int(run.data.params["label_delay_days"])
    con, _ = lakehouse_data.open_tables(settings, F.TABLES)
    frame = F.payment_features(con)
    hashes = features_hash(frame)
    p = np.empty(len(frame), dtype="float64")
    signals = np.empty(len(frame), dtype=object)
    kept = np.zeros(len(frame), dtype=bool)
    previous = previous_scores(settings) if reuse else None
    if previous is not None:
        same = previous[previous["model_version"] == str(version)].drop_duplicates("payment_id").set_index("payment_id")
        at = same.index.get_indexer(frame["payment_id"].astype("int64"))
        found = at >= 0
        kept[found] = same["features_hash"].to_numpy()[at[found]] == hashes[found]
        p[kept] = same["fraud_probability"].to_numpy()[at[kept]]
        signals[kept] = same["top_signals"].to_numpy()[at[kept]]
    fresh = frame[~kept]
    if len(fresh):
        p[~kept] = T.predict_score(model, fresh)
        names, contrib = T.contributions(model, fresh)
        signals[~kept] = explain.top_k(names, contrib, SIGNALS_PER_PAYMENT)
    last = frame["paid_at"].max()
    scores = pd.DataFrame({
        "payment_id": frame["payment_id"].astype("int64"),
        "order_id": frame["order_id"].astype("int64"),
        "customer_id": frame["customer_id"].astype("Int64"),
        "paid_at": frame["paid_at"],
        "status": frame["status"],
        "method": frame["method"],
        "amount_usd": frame["amount_usd"],
        "fraud_probability": p,
        "above_threshold": p >= threshold,
        "top_signals": signals,
        "label_pending": (last - frame["paid_at"]).dt.days < delay,
        "is_chargeback": frame["is_chargeback"],
        "model_version": str(version),
        "features_hash": hashes,
    })
    scores.attrs["reused"] = int(kept.sum())
    return scores, str(version), threshold


def high_risk(scores: pd.DataFrame) -> pd.DataFrame:
    """Captured payments still inside the chargeback window, scored above the threshold: the review queue."""
    queue = scores[scores["above_threshold"] & scores["label_pending"] & (scores["status"] == "captured")]
    queue = queue.sort_values(["fraud_probability", "payment_id"], ascending=[False, True]).reset_index(drop=True)
    return queue.assign(review_rank=np.arange(1, len(queue) + 1, dtype="int64")).drop(
        columns=["above_threshold", "features_hash"], errors="ignore")


@registry.scoring_asset(
    FAMILY,
    "fraud_scores",
    F.TABLES,
    f"Fraud probability and strongest signals for every payment, scored by `{FAMILY.model_name}@champion`.",
)
def fraud_scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    if not registry.champion_ready(settings, FAMILY, context.log):
        return
    scores, version, threshold = score_payments(settings)
    catalog = load_catalog(settings)
    published = write_table(catalog, "prod.fraud_scores", pa.Table.from_pandas(scores, preserve_index=False), context.run.run_id)
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": len(scores),
        "model_version": version,
        "threshold_at_1pct_fpr": threshold,
        "payments_above_threshold": int(scores["above_threshold"].sum()),
        "payments_scored": len(scores) - scores.attrs["reused"],
        "scores_reused": scores.attrs["reused"],  # same champion, same inputs as last time
        "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
    })


@dg.asset(
    key=["prod", "high_risk_transactions"],
    pool=table_pool("prod.high_risk_transactions"),
    freshness_policy=PROD_FRESHNESS,
    group_name="ml",
    deps=[dg.AssetKey(["prod", "fraud_scores"])],
    kinds={"iceberg"},
    description="The review queue: captured payments still inside the chargeback window whose fraud probability is "
    "above the champion's 1%-false-positive-rate threshold, most likely fraud first.",
)
def high_risk_transactions(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    settings = lakehouse.settings()
    con, lineage = lakehouse_data.open_tables(settings, ["prod.fraud_scores"])
    scores = con.execute("SELECT * FROM prod.fraud_scores").df()
    queue = high_risk(scores)
    published = write_table(load_catalog(settings), "prod.high_risk_transactions",
                            pa.Table.from_pandas(queue, preserve_index=False), context.run.run_id)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(queue),
        "amount_usd_at_risk": round(float(queue["amount_usd"].sum()), 2),
        "top": dg.MetadataValue.md(reporting.md_table(
            queue.head(10)[["payment_id", "amount_usd", "fraud_probability", "top_signals"]].to_dict("records"))),
        "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
        "scores_snapshot_id": lineage["prod.fraud_scores"],
    })


FRAUD_ASSETS = [fraud_model, fraud_promotion, fraud_scores, high_risk_transactions]
FRAUD_CHECKS = [fraud_gate]
