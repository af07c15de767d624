"""Fraud as assets: train and register the best candidate (``ml/fraud_model``), gate it
(``fraud_challenger_beats_champion``), promote it (``ml/fraud_promotion``), score every payment with
``@champion`` (``prod/fraud_scores``) and list the captured payments still inside the chargeback
window that score above the champion's 1% threshold (``prod/high_risk_transactions``).

With chargeback labels the supervised and the unsupervised candidate compete; without them the
unsupervised detector scores alone. ``prod.fraud_scores.scoring_mode`` says which kind of model
scored each payment."""

import time
from dataclasses import replace
from typing import NamedTuple

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from ml_assets import explain, lakehouse_data, registry, reporting, tracking
from ml_assets.errors import MalformedFrame
from ml_assets.fraud import features as F
from ml_assets.hyperparameters import FRAUD_XGBOOST, ClassifierXGBoostParams
from orchestration.lakehouse.catalog import iceberg_compatible, load_catalog, table_or_none
from orchestration.lakehouse.publish import write_table
from orchestration.policies import DATA_SCIENCE_OWNER, PROD_FRESHNESS, TRAINING, column_schema, table_pool
from orchestration.resources import LakehouseResource
from orchestration.settings import Settings

# The training module (scikit-learn, XGBoost) is imported by the functions that train or score, as T:
# loading the code location stays light (ml_assets/definitions.py ML_RUNTIME_MODULES).

FAMILY = registry.Family(
    name="fraud", model_name="shoplake_fraud", metric="pr_auc", higher_is_better=True, margin=0.002
)
SIGNALS_PER_PAYMENT = 3
# What a later scoring can take over from prod.fraud_scores instead of recomputing.
REUSABLE = ("payment_id", "model_version", "features_hash", "fraud_score", "top_signals")
RISK_TIERS = ("high", "medium", "low")
# prod.fraud_scores' columns, for the asset's table schema in the UI.
COLUMNS = {
    "payment_id": "the payment (prod.fct_payments)",
    "order_id": "its order",
    "customer_id": "its customer",
    "paid_at": "authorisation time",
    "status": "captured | failed | refunded | chargeback",
    "method": "payment method",
    "amount_usd": "amount in USD",
    "fraud_score": "what the champion scored: a probability (supervised) or an anomaly score in 0-1 (unsupervised)",
    "fraud_probability": "the chance of a chargeback; NULL when an unsupervised model scored (it has no probability)",
    "risk_tier": "high (top 1% of legitimate payments' scores and above) | medium (next 4%) | low",
    "above_threshold": "fraud_score at or above the champion's 1% threshold (the review queue's bar)",
    "scoring_mode": "supervised (trained on chargebacks) | unsupervised (anomaly score, no labels needed)",
    "top_signals": "the inputs pushing the score up the most",
    "label_pending": "still inside the chargeback window: a chargeback may yet arrive",
    "is_chargeback": "charged back so far",
    "model_version": "the champion version that scored it",
    "features_hash": "hash of the model inputs (a later scoring takes over unchanged payments)",
}


class FraudTrainingConfig(dg.Config):
    seed: int = 7
    n_estimators: int = FRAUD_XGBOOST.n_estimators
    max_depth: int = FRAUD_XGBOOST.max_depth
    learning_rate: float = FRAUD_XGBOOST.learning_rate

    def xgboost_params(self) -> ClassifierXGBoostParams:
        return replace(
            FRAUD_XGBOOST, n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate
        )


@dg.asset(
    key=FAMILY.model_key,
    tags=TRAINING,
    group_name="ml",
    deps=[dg.AssetKey(t.split(".")) for t in F.TABLES],
    kinds={"mlflow", "xgboost", "scikitlearn"},
    output_required=False,
    description="With enough chargebacks: backtests an IsolationForest anomaly score and XGBoost on the chargeback "
    "label over rolling windows of labelled payments and registers the better as "
    f"`{FAMILY.model_name}@challenger`. With too few: registers the IsolationForest, which needs no label.",
)
def fraud_model(context: dg.AssetExecutionContext, config: FraudTrainingConfig, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    yield from registry.train_or_skip(context, FAMILY, settings, lambda: _train(context, config, settings))


def _train(context: dg.AssetExecutionContext, config: FraudTrainingConfig, settings: Settings) -> dg.MaterializeResult:
    from ml_assets.fraud import train as T

    con, lineage = lakehouse_data.open_tables(settings, F.TABLES)
    data = T.load_data(con)
    if data.mode == T.SUPERVISED:
        context.log.info(
            f"labels up to {data.labelled_until} ({data.label_delay_days}-day chargeback delay); "
            f"{len(data.windows)} backtest windows from {data.holdout_from}; latest: training "
            f"{len(data.train)} payments "
            f"({int(data.train['is_chargeback'].sum())} chargebacks), holdout {len(data.holdout)} "
            f"({int(data.holdout['is_chargeback'].sum())} chargebacks)"
        )
    else:
        context.log.info(
            f"unsupervised: {data.why_unsupervised}; the anomaly score is fitted on {len(data.train)} payments"
        )
    result = T.fit_candidates(data, config.seed, config.xgboost_params(), log=context.log)
    client = tracking.configure(settings)
    champion, champion_at = registry.load_champion(client, FAMILY)
    champion_score, champion_p = None, None
    if champion is not None and data.mode == T.SUPERVISED:
        try:
            champion_score = T.backtest_model(champion, data)
            champion_p = T.predict_score(champion, data.holdout)
        except MalformedFrame as exc:
            context.log.warning(
                f"champion v{champion_at} cannot score this data ({exc}); comparing with the naive reference only"
            )

    experiment_id = tracking.experiment(settings, FAMILY.experiment)
    tags = lakehouse_data.lineage_tags(context.run.run_id, lineage)
    params = {
        "mode": data.mode,
        "label_delay_days": data.label_delay_days,
        "labelled_until": str(data.labelled_until),
        "holdout_from": str(data.holdout_from),
        "train_rows": len(data.train),
        "holdout_rows": len(data.holdout),
        "train_chargebacks": int(data.train["is_chargeback"].sum()),
        "holdout_chargebacks": int(data.holdout["is_chargeback"].sum()),
        "seed": config.seed,
    }
    example = data.train[F.FEATURES].head(5)
    runs = {}
    for name, cand in result.candidates.items():
        figures = {}
        if data.mode == T.SUPERVISED:
            y = data.holdout["is_chargeback"].astype(int).to_numpy()
            scores = {n: c.holdout_scores for n, c in result.candidates.items()}
            if champion_p is not None:
                scores[f"champion v{champion_at}"] = champion_p
            figures["roc_pr"] = reporting.roc_pr_figure(y, scores, "fraud")
            if name == T.CHALLENGER:
                figures["calibration"] = reporting.calibration_figure(
                    y, {n: p for n, p in scores.items() if n != T.BASELINE}, "fraud", bins=5
                )
        if name == T.CHALLENGER:
            names, contrib = T.contributions(cand.pipeline, data.holdout)
            figures["feature_importance"] = reporting.importance_figure(names, np.abs(contrib).mean(0), "fraud XGBoost")
        else:
            figures["score_distribution"] = reporting.bar_figure(
                [f"{q:.0%}" for q in (0.5, 0.9, 0.95, 0.99)],
                {"anomaly score": [float(np.quantile(cand.holdout_scores, q)) for q in (0.5, 0.9, 0.95, 0.99)]},
                "fraud anomaly score quantiles",
                "score",
            )
        cand_params = {**params, "candidate": name}
        if name == T.CHALLENGER:
            cand_params.update(config.xgboost_params().__dict__)
        started = time.perf_counter()
        runs[name] = tracking.log_candidate(
            experiment_id,
            f"fraud_{name}",
            {**tags, "candidate": name},
            cand_params,
            cand.metrics,
            cand.pipeline,
            example,
            T.predict_score(cand.pipeline, example),
            figures,
        )
        context.log.info(f"logged fraud candidate {name} to MLflow in {time.perf_counter() - started:.1f}s")
    if data.mode == T.SUPERVISED:
        best = result.best
        others = {T.NO_SKILL: result.chargeback_rate, **{n: result.backtest[n] for n in result.candidates if n != best}}
        gate = dict(
            challenger=result.backtest[best],
            baselines=others,
            champion=champion_score,
            champion_at=champion_at,
            reference=T.NO_SKILL,
            candidate=best,
            windows=len(data.windows),
            evaluated=True,
        )
    else:
        best = T.BASELINE
        # An earlier supervised champion cannot be judged without labels either: the detector replaces it.
        gate = dict(
            challenger=float("nan"),
            baselines={},
            champion=None,
            champion_at=champion_at,
            reference=None,
            candidate=best,
            windows=None,
            evaluated=False,
        )
    version = registry.register_challenger(
        client,
        FAMILY,
        runs[best].model_uri,
        gate["challenger"],
        gate["baselines"],
        gate["champion"],
        gate["champion_at"],
        {**tags, "scoring_mode": data.mode},
        candidate=best,
        reference=gate["reference"],
        windows=gate["windows"],
        evaluated=gate["evaluated"],
    )
    decision = registry.decide(
        FAMILY,
        gate["challenger"],
        gate["baselines"],
        gate["champion"],
        gate["champion_at"],
        reference=gate["reference"],
        candidate=best,
        evaluated=gate["evaluated"],
        windows=gate["windows"],
    )
    rows = [
        {"model": n, "backtest_pr_auc": result.backtest.get(n), **c.metrics, "seconds": result.seconds[n]}
        for n, c in result.candidates.items()
    ]
    if champion_score is not None:
        rows.append({"model": f"champion v{champion_at}", "backtest_pr_auc": champion_score})
    context.log.info(
        f"registered `{FAMILY.model_name}` v{version.version} ({best}, {data.mode}) as challenger: {decision.reason}"
    )
    return dg.MaterializeResult(
        metadata={
            "challenger_version": version.version,
            "candidate": best,
            "scoring_mode": data.mode,
            "gate_preview": decision.reason,
            **({"why_unsupervised": data.why_unsupervised} if data.why_unsupervised else {}),
            "holdout_from": str(data.holdout_from),
            "holdout_payments": len(data.holdout),
            "holdout_chargebacks": int(data.holdout["is_chargeback"].sum()),
            "metrics": dg.MetadataValue.md(reporting.md_table(rows)),
            "mlflow_run_id": runs[best].run_id,
            **runs[best].plot_metadata,
        }
    )


fraud_gate = registry.gate_check(FAMILY)
fraud_promotion = registry.promotion_asset(FAMILY)


def features_hash(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each payment's model inputs (stable across processes and runs)."""
    return pd.util.hash_pandas_object(frame[F.FEATURES], index=False).to_numpy().view("int64")


def previous_scores(settings: Settings) -> pd.DataFrame | None:
    """What the last scoring published, if it recorded the inputs behind each score."""
    table = table_or_none(load_catalog(settings), "prod.fraud_scores")
    if table is None or table.current_snapshot() is None or not set(REUSABLE) <= set(table.schema().column_names):
        return None
    return table.scan(selected_fields=REUSABLE).to_pandas()


class PaymentScores(NamedTuple):
    """What a scoring of every payment gives: the scores, the champion version that made them, its
    threshold at a 1% false-positive rate, and how many payments kept their published score."""

    scores: pd.DataFrame
    version: str
    threshold: float
    reused: int


def score_payments(settings: Settings, reuse: bool = True) -> PaymentScores:
    """Every payment's fraud score, risk tier and strongest signals from ``@champion``, and the
    champion's threshold at a 1% false-positive rate (on its holdout; without labels, the score
    above which 1% of the payments it was fitted on lie).

    A payment's features are fixed when it is authorised, so the daily refresh re-scores only what
    is new: a payment keeps its published probability and signals when the same champion version
    scored the very same inputs (``features_hash``); anything else is scored again. The result is
    the same as scoring every payment (test_ml_models)."""
    from ml_assets.fraud import train as T

    client = tracking.configure(settings)
    model, version = registry.require_champion(client, FAMILY)
    run = client.get_run(client.get_model_version(FAMILY.model_name, version).run_id)
    threshold = float(run.data.metrics["threshold_at_1pct_fpr"])
    medium = float(run.data.metrics.get("threshold_at_5pct_fpr", threshold))
    mode = T.SUPERVISED if T.is_supervised(model) else T.UNSUPERVISED
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
        p[kept] = same["fraud_score"].to_numpy()[at[kept]]
        signals[kept] = same["top_signals"].to_numpy()[at[kept]]
    fresh = frame[~kept]
    if len(fresh):
        p[~kept] = T.predict_score(model, fresh)
        names, contrib = T.contributions(model, fresh)
        signals[~kept] = explain.top_k(names, contrib, SIGNALS_PER_PAYMENT)
    last = frame["paid_at"].max()
    scores = pd.DataFrame(
        {
            "payment_id": frame["payment_id"].astype("int64"),
            "order_id": frame["order_id"].astype("int64"),
            "customer_id": frame["customer_id"].astype("Int64"),
            "paid_at": frame["paid_at"],
            "status": frame["status"],
            "method": frame["method"],
            "amount_usd": frame["amount_usd"],
            "fraud_score": p,
            "fraud_probability": p if mode == T.SUPERVISED else np.full(len(p), np.nan),
            "risk_tier": np.where(p >= threshold, "high", np.where(p >= medium, "medium", "low")).astype(object),
            "above_threshold": p >= threshold,
            "scoring_mode": mode,
            "top_signals": signals,
            "label_pending": (last - frame["paid_at"]).dt.days < delay,
            "is_chargeback": frame["is_chargeback"],
            "model_version": str(version),
            "features_hash": hashes,
        }
    )
    return PaymentScores(scores, str(version), threshold, int(kept.sum()))


def high_risk(scores: pd.DataFrame) -> pd.DataFrame:
    """Captured payments still inside the chargeback window, scored above the threshold: the review queue."""
    queue = scores[scores["above_threshold"] & scores["label_pending"] & (scores["status"] == "captured")]
    queue = queue.sort_values(["fraud_score", "payment_id"], ascending=[False, True]).reset_index(drop=True)
    return queue.assign(review_rank=np.arange(1, len(queue) + 1, dtype="int64")).drop(
        columns=["above_threshold", "features_hash"], errors="ignore"
    )


@registry.scoring_asset(
    FAMILY,
    "fraud_scores",
    F.TABLES,
    f"Fraud score, risk tier and strongest signals for every payment, scored by `{FAMILY.model_name}@champion`; "
    "`scoring_mode` says whether a supervised model (a probability) or the unsupervised detector scored it.",
    column_schema=dg.TableSchema(columns=[dg.TableColumn(name, description=text) for name, text in COLUMNS.items()]),
)
def fraud_scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    if not registry.champion_ready(settings, FAMILY, context.log, context.run.run_id):
        return
    scores, version, threshold, reused = score_payments(settings)
    mode = str(scores["scoring_mode"].iloc[0]) if len(scores) else "none"
    tiers = scores["risk_tier"].value_counts().reindex(list(RISK_TIERS), fill_value=0)
    catalog = load_catalog(settings)
    data = pa.Table.from_pandas(scores, preserve_index=False)
    published = write_table(catalog, "prod.fraud_scores", data, context.run.run_id)
    registry.record_scoring(
        settings,
        context.run.run_id,
        FAMILY,
        version,
        f"{len(scores)} payments ({mode}), {int(tiers['high'])} high risk (score >= {threshold:.4f})",
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "dagster/column_schema": column_schema(iceberg_compatible(data.schema), COLUMNS),
            "model_version": version,
            "threshold_at_1pct_fpr": threshold,
            "payments_above_threshold": int(scores["above_threshold"].sum()),
            "scoring_mode": mode,
            "risk_tiers": dg.MetadataValue.md(
                reporting.md_table([{"tier": t, "payments": int(n)} for t, n in tiers.items()])
            ),
            "payments_scored": len(scores) - reused,
            "scores_reused": reused,  # same champion, same inputs as last time
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
        }
    )


@dg.asset(
    key=["prod", "high_risk_transactions"],
    pool=table_pool("prod.high_risk_transactions"),
    freshness_policy=PROD_FRESHNESS,
    group_name="ml",
    deps=[dg.AssetKey(["prod", "fraud_scores"])],
    kinds={"iceberg"},
    description="The review queue: captured payments still inside the chargeback window whose fraud probability is "
    "above the champion's 1% threshold (1% of legitimate payments score above it), most likely fraud first.",
)
def high_risk_transactions(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    settings = lakehouse.settings()
    con, lineage = lakehouse_data.open_tables(settings, ["prod.fraud_scores"])
    scores = con.execute("SELECT * FROM prod.fraud_scores").df()
    queue = high_risk(scores)
    data = pa.Table.from_pandas(queue, preserve_index=False)
    published = write_table(load_catalog(settings), "prod.high_risk_transactions", data, context.run.run_id)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(queue),
            "dagster/column_schema": column_schema(iceberg_compatible(data.schema), COLUMNS),
            "amount_usd_at_risk": round(float(queue["amount_usd"].sum()), 2),
            "top": dg.MetadataValue.md(
                reporting.md_table(
                    queue.head(10)[["payment_id", "amount_usd", "fraud_score", "scoring_mode", "top_signals"]].to_dict(
                        "records"
                    )
                )
            ),
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
            "scores_snapshot_id": lineage["prod.fraud_scores"],
        }
    )


# Every ML asset answers to data science in the asset catalog.
FRAUD_ASSETS = dg.map_asset_specs(
    lambda spec: spec.replace_attributes(owners=[DATA_SCIENCE_OWNER]),
    [fraud_model, fraud_promotion, fraud_scores, high_risk_transactions],
)
FRAUD_CHECKS = [fraud_gate]
