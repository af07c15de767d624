"""Churn as assets: train and register a challenger (``ml/churn_model``), gate it (the blocking check
``churn_challenger_beats_champion``), promote it (``ml/churn_promotion``), then score every customer
with ``@champion`` (``prod/churn_scores``)."""


from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration.schedules import TRAINING
from ml_assets import lakehouse_data, registry, reporting, tracking
from ml_assets.churn import features as F
from ml_assets.errors import MalformedFrame
from ml_assets.hyperparameters import CHURN_XGBOOST, ClassifierXGBoostParams
from orchestration.lakehouse.catalog import load_catalog
from orchestration.resources import LakehouseResource
from orchestration.settings import Settings
from orchestration.transform.publish import write_table

# The training module (scikit-learn, XGBoost) is imported by the functions that train or score, as T:
# loading the code location stays light (ml_assets/definitions.py ML_RUNTIME_MODULES).

FAMILY = registry.Family(name="churn", model_name="shoplake_churn", metric="roc_auc", higher_is_better=True, margin=0.002)
# Probability thresholds of the risk tiers, highest first.
RISK_TIERS = ((0.8, "high"), (0.5, "medium"), (0.0, "low"))
DRIVERS_PER_CUSTOMER = 3


class ChurnTrainingConfig(dg.Config):
    seed: int = 7
    horizon_days: int | None = None  # None: derived from the data's inter-purchase times
    n_estimators: int = CHURN_XGBOOST.n_estimators
    max_depth: int = CHURN_XGBOOST.max_depth
    learning_rate: float = CHURN_XGBOOST.learning_rate

    def xgboost_params(self) -> ClassifierXGBoostParams:
        return replace(CHURN_XGBOOST, n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate)


def _champion_on_holdout(client, data: "T.ChurnData", log) -> tuple[str | None, float | None, np.ndarray | None]:
    from ml_assets.churn import train as T

    model, version = registry.load_champion(client, FAMILY)
    if model is None:
        return None, None, None
    try:
        p = T.predict_proba(model, data.holdout)
    except MalformedFrame as exc:  # the feature set changed since the champion was trained
        log.warning(f"champion v{version} cannot score this holdout ({exc}); comparing with the baselines only")
        return version, None, None
    return version, T.evaluate(data.holdout["churned"], p)[FAMILY.metric], p


@dg.asset(
    key=FAMILY.model_key,
    tags=TRAINING,
    group_name="ml",
    deps=[dg.AssetKey(t.split(".")) for t in F.TABLES],
    kinds={"mlflow", "xgboost", "scikitlearn"},
    description="Trains the churn baseline (logistic regression on RFM) and XGBoost on a time-based holdout, logs "
    f"both to MLflow and registers the XGBoost model as `{FAMILY.model_name}@challenger`.",
)
def churn_model(context: dg.AssetExecutionContext, config: ChurnTrainingConfig, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    from ml_assets.churn import train as T

    settings = lakehouse.settings()
    con, lineage = lakehouse_data.open_tables(settings, F.TABLES)
    data = T.load_data(con, config.horizon_days)
    context.log.info(
        f"churn horizon {data.horizon_days} days; training cutoffs {[str(c) for c in data.train_cutoffs]} "
        f"({len(data.train)} rows), holdout cutoff {data.holdout_cutoff} ({len(data.holdout)} customers)"
    )
    result = T.fit_candidates(data, config.seed, config.xgboost_params())
    client = tracking.configure(settings)
    experiment_id = tracking.experiment(settings, FAMILY.experiment)
    champion_at, champion_score, champion_p = _champion_on_holdout(client, data, context.log)

    y = data.holdout["churned"].astype(int).to_numpy()
    scores = {name: c.holdout_scores for name, c in result.candidates.items()}
    if champion_p is not None:
        scores[f"champion v{champion_at}"] = champion_p
    xgb_pipe = result.candidates[T.CHALLENGER].pipeline
    names, contrib = T.contributions(xgb_pipe, data.holdout)
    tags = lakehouse_data.lineage_tags(context.run.run_id, lineage)
    params = {"horizon_days": data.horizon_days, "train_cutoffs": ",".join(map(str, data.train_cutoffs)),
              "holdout_cutoff": str(data.holdout_cutoff), "train_rows": len(data.train),
              "holdout_rows": len(data.holdout), "seed": config.seed}
    example = data.holdout[F.FEATURES].head(5)
    runs = {}
    for name, cand in result.candidates.items():
        figures = {
            "roc_pr": reporting.roc_pr_figure(y, scores, "churn"),
            "calibration": reporting.calibration_figure(y, scores, "churn"),
        }
        cand_params = {**params, "candidate": name}
        if name == T.CHALLENGER:
            figures["feature_importance"] = reporting.importance_figure(names, np.abs(contrib).mean(0), "churn XGBoost")
            cand_params.update(config.xgboost_params().__dict__)
        runs[name] = tracking.log_candidate(
            experiment_id, f"churn_{name}", {**tags, "candidate": name}, cand_params, cand.metrics,
            cand.pipeline, example, cand.pipeline.predict_proba(example)[:, 1], figures,
        )
    challenger = result.candidates[T.CHALLENGER].metrics[FAMILY.metric]
    baselines = {T.BASELINE: result.candidates[T.BASELINE].metrics[FAMILY.metric]}
    version = registry.register_challenger(client, FAMILY, runs[T.CHALLENGER].model_uri, challenger, baselines,
                                           champion_score, champion_at, tags)
    rows = [{"model": n, **c.metrics} for n, c in result.candidates.items()]
    if champion_score is not None:
        rows.append({"model": f"champion v{champion_at}", FAMILY.metric: champion_score})
    context.log.info(f"registered `{FAMILY.model_name}` v{version.version} as challenger: {FAMILY.metric} {challenger:.4f}")
    return dg.MaterializeResult(
        metadata={
            "challenger_version": version.version,
            "horizon_days": data.horizon_days,
            "holdout_cutoff": str(data.holdout_cutoff),
            "holdout_customers": len(data.holdout),
            **{f"xgboost_{k}": v for k, v in result.candidates[T.CHALLENGER].metrics.items()},
            "metrics": dg.MetadataValue.md(reporting.md_table(rows)),
            "mlflow_run_id": runs[T.CHALLENGER].run_id,
            **runs[T.CHALLENGER].plot_metadata,
        }
    )


churn_gate = registry.gate_check(FAMILY)
churn_promotion = registry.promotion_asset(FAMILY)


def risk_tier(p: float) -> str:
    return next(tier for low, tier in RISK_TIERS if p >= low)


def score_customers(settings: Settings) -> tuple[pd.DataFrame, str, dict[str, str]]:
    """Every customer's churn probability, risk tier and top drivers from ``@champion``."""
    from ml_assets.churn import train as T

    client = tracking.configure(settings)
    model, version = registry.require_champion(client, FAMILY)
    con, lineage = lakehouse_data.open_tables(settings, F.TABLES)
    as_of = F.data_span(con)[1]
    frame = F.customer_features(con, as_of)
    p = T.predict_proba(model, frame)
    scores = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("int64"),
            "churn_probability": p.astype("float64"),
            "risk_tier": [risk_tier(v) for v in p],
            "top_drivers": T.top_drivers(model, frame, DRIVERS_PER_CUSTOMER),
            "horizon_days": int(client.get_run(client.get_model_version(FAMILY.model_name, version).run_id)
                                .data.params["horizon_days"]),
            "model_version": str(version),
            "scored_as_of": as_of,
        }
    )
    return scores, str(version), lineage


@registry.scoring_asset(
    FAMILY,
    "churn_scores",
    F.TABLES,
    f"Churn probability, risk tier and top drivers for every customer, scored by `{FAMILY.model_name}@champion`.",
)
def churn_scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    if not registry.champion_ready(settings, FAMILY, context.log):
        return
    scores, version, _ = score_customers(settings)
    published = write_table(load_catalog(settings), "prod.churn_scores", pa.Table.from_pandas(scores, preserve_index=False), context.run.run_id)
    tiers = scores["risk_tier"].value_counts().reindex([t for _, t in RISK_TIERS], fill_value=0)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "model_version": version,
            "risk_tiers": dg.MetadataValue.md(reporting.md_table([{"tier": t, "customers": int(n)} for t, n in tiers.items()])),
            "mean_churn_probability": round(float(scores["churn_probability"].mean()), 4),
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
        }
    )


CHURN_ASSETS = [churn_model, churn_promotion, churn_scores]
CHURN_CHECKS = [churn_gate]
