"""Churn as assets: backtest the candidates and register the best as challenger (``ml/churn_model``),
gate it (the blocking check ``churn_challenger_beats_champion``), promote it (``ml/churn_promotion``),
then score every customer with ``@champion`` (``prod/churn_scores``)."""

import time
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from ml_assets import lakehouse_data, registry, reporting, tracking
from ml_assets.churn import features as F
from ml_assets.errors import MalformedFrame
from ml_assets.hyperparameters import CHURN_XGBOOST, ClassifierXGBoostParams
from orchestration.lakehouse.catalog import iceberg_compatible, load_catalog
from orchestration.lakehouse.publish import write_table
from orchestration.policies import DATA_SCIENCE_OWNER, TRAINING, column_schema
from orchestration.resources import LakehouseResource
from orchestration.settings import Settings

if TYPE_CHECKING:
    from ml_assets.churn import train as T

# The training module (scikit-learn, XGBoost) is imported by the functions that train or score, as T:
# loading the code location stays light (ml_assets/definitions.py ML_RUNTIME_MODULES).

FAMILY = registry.Family(
    name="churn", model_name="shoplake_churn", metric="roc_auc", higher_is_better=True, margin=0.002
)
# Risk tiers by odds relative to the shop's base rate (the champion's holdout churn rate): high when
# a customer's odds of churning are at least TIER_ODDS_RATIO times the shop's, low at most 1/ratio.
TIER_ODDS_RATIO = 2.0
RISK_TIERS = ("high", "medium", "low")
DRIVERS_PER_CUSTOMER = 3


class ChurnTrainingConfig(dg.Config):
    seed: int = 7
    horizon_days: int | None = None  # None: derived from the data's inter-purchase times
    n_estimators: int = CHURN_XGBOOST.n_estimators
    max_depth: int = CHURN_XGBOOST.max_depth
    learning_rate: float = CHURN_XGBOOST.learning_rate

    def xgboost_params(self) -> ClassifierXGBoostParams:
        return replace(
            CHURN_XGBOOST, n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate
        )


def _champion_on_backtest(client, data: "T.ChurnData", log) -> tuple[str | None, float | None, np.ndarray | None]:
    """(version, mean ROC-AUC on the same windows, probabilities on the latest holdout) of ``@champion``."""
    from ml_assets.churn import train as T

    model, version = registry.load_champion(client, FAMILY)
    if model is None:
        return None, None, None
    try:
        aucs = T.backtest_model(model, data)
        p = T.predict_proba(model, data.holdout)
    except MalformedFrame as exc:  # the feature set changed since the champion was trained
        log.warning(f"champion v{version} cannot score this data ({exc}); comparing with the naive reference only")
        return version, None, None
    return version, float(np.mean(aucs)), p


@dg.asset(
    key=FAMILY.model_key,
    tags=TRAINING,
    group_name="ml",
    deps=[dg.AssetKey(t.split(".")) for t in F.TABLES],
    kinds={"mlflow", "xgboost", "scikitlearn"},
    output_required=False,
    description="Backtests three churn candidates on rolling origins - logistic regression on recency alone, on RFM, "
    "and calibrated XGBoost on every feature - logs each to MLflow and registers the best as "
    f"`{FAMILY.model_name}@challenger`. Skips, with the reason, when the history is too short to backtest.",
)
def churn_model(context: dg.AssetExecutionContext, config: ChurnTrainingConfig, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    yield from registry.train_or_skip(context, FAMILY, settings, lambda: _train(context, config, settings))


def _train(context: dg.AssetExecutionContext, config: ChurnTrainingConfig, settings: Settings) -> dg.MaterializeResult:
    from ml_assets.churn import train as T

    con, lineage = lakehouse_data.open_tables(settings, F.TABLES)
    data = T.load_data(con, config.horizon_days)
    context.log.info(
        f"churn horizon {data.horizon_days} days; {len(data.windows)} backtest windows at "
        f"{[str(w.holdout_cutoff) for w in data.windows]}; latest: training cutoffs "
        f"{[str(c) for c in data.train_cutoffs]} ({len(data.train)} rows), {len(data.holdout)} customers"
    )
    result = T.fit_candidates(data, config.seed, config.xgboost_params(), log=context.log)
    client = tracking.configure(settings)
    experiment_id = tracking.experiment(settings, FAMILY.experiment)
    champion_at, champion_score, champion_p = _champion_on_backtest(client, data, context.log)

    y = data.holdout["churned"].astype(int).to_numpy()
    scores = {name: c.holdout_scores for name, c in result.candidates.items()}
    if champion_p is not None:
        scores[f"champion v{champion_at}"] = champion_p
    tags = lakehouse_data.lineage_tags(context.run.run_id, lineage)
    params = {
        "horizon_days": data.horizon_days,
        "train_cutoffs": ",".join(map(str, data.train_cutoffs)),
        "holdout_cutoff": str(data.holdout_cutoff),
        "train_rows": len(data.train),
        "holdout_rows": len(data.holdout),
        "seed": config.seed,
        "backtest_cutoffs": ",".join(str(w.holdout_cutoff) for w in data.windows),
    }
    example = data.holdout[F.FEATURES].head(5)
    runs = {}
    for name, cand in result.candidates.items():
        figures = {
            "roc_pr": reporting.roc_pr_figure(y, scores, "churn"),
            "calibration": reporting.calibration_figure(y, scores, "churn"),
        }
        cand_params = {**params, "candidate": name}
        if name == T.CHALLENGER:
            names, contrib = T.contributions(cand.pipeline, data.holdout)
            figures["feature_importance"] = reporting.importance_figure(names, np.abs(contrib).mean(0), "churn XGBoost")
            cand_params.update(config.xgboost_params().__dict__)
        started = time.perf_counter()
        runs[name] = tracking.log_candidate(
            experiment_id,
            f"churn_{name}",
            {**tags, "candidate": name},
            cand_params,
            cand.metrics,
            cand.pipeline,
            example,
            cand.pipeline.predict_proba(example)[:, 1],
            figures,
        )
        context.log.info(f"logged churn candidate {name} to MLflow in {time.perf_counter() - started:.1f}s")
    best = result.best
    others = {T.NO_SKILL: T.NO_SKILL_AUC, **{n: result.score(n) for n in result.candidates if n != best}}
    version = registry.register_challenger(
        client,
        FAMILY,
        runs[best].model_uri,
        result.score(best),
        others,
        champion_score,
        champion_at,
        tags,
        candidate=best,
        reference=T.NO_SKILL,
        windows=len(data.windows),
    )
    decision = registry.decide(
        FAMILY,
        result.score(best),
        others,
        champion_score,
        champion_at,
        reference=T.NO_SKILL,
        candidate=best,
        windows=len(data.windows),
    )
    rows = [
        {
            "model": n,
            "backtest_roc_auc": result.score(n),
            **{f"window_{i}": a for i, a in enumerate(result.backtest[n])},
            **c.metrics,
            "seconds": result.seconds[n],
        }
        for n, c in result.candidates.items()
    ]
    if champion_score is not None:
        rows.append({"model": f"champion v{champion_at}", "backtest_roc_auc": champion_score})
    context.log.info(f"registered `{FAMILY.model_name}` v{version.version} ({best}) as challenger: {decision.reason}")
    return dg.MaterializeResult(
        metadata={
            "challenger_version": version.version,
            "candidate": best,
            "gate_preview": decision.reason,
            "backtest_windows": len(data.windows),
            "horizon_days": data.horizon_days,
            "holdout_cutoff": str(data.holdout_cutoff),
            "holdout_customers": len(data.holdout),
            **{f"{best}_{k}": v for k, v in result.candidates[best].metrics.items()},
            "metrics": dg.MetadataValue.md(reporting.md_table(rows)),
            "mlflow_run_id": runs[best].run_id,
            **runs[best].plot_metadata,
        }
    )


churn_gate = registry.gate_check(FAMILY)
churn_promotion = registry.promotion_asset(FAMILY)


def tier_bounds(base_rate: float) -> tuple[float, float]:
    """(low below, high from): the probabilities whose odds are 1/ratio and ratio times the base rate's."""
    base = min(max(base_rate, 1e-6), 1 - 1e-6)
    odds = base / (1 - base)

    def prob(o: float) -> float:
        return o / (1 + o)

    return prob(odds / TIER_ODDS_RATIO), prob(odds * TIER_ODDS_RATIO)


def risk_tiers(p: np.ndarray, base_rate: float) -> np.ndarray:
    low, high = tier_bounds(base_rate)
    return np.where(p >= high, "high", np.where(p <= low, "low", "medium")).astype(object)


class CustomerScores(NamedTuple):
    """What a scoring of every customer gives: the scores, the champion version that made them, the
    lineage of the tables read, and the shop's churn base rate the risk tiers are set from."""

    scores: pd.DataFrame
    version: str
    lineage: dict[str, str]
    base_rate: float


def score_customers(settings: Settings) -> CustomerScores:
    """Every customer's churn probability, risk tier and top drivers from ``@champion``."""
    from ml_assets.churn import train as T

    client = tracking.configure(settings)
    model, version = registry.require_champion(client, FAMILY)
    run = client.get_run(client.get_model_version(FAMILY.model_name, version).run_id)
    con, lineage = lakehouse_data.open_tables(settings, F.TABLES)
    as_of = F.data_span(con)[1]
    frame = F.customer_features(con, as_of)
    p = T.predict_proba(model, frame)
    base_rate = float(run.data.metrics.get("base_rate", float(np.mean(p))))
    scores = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("int64"),
            "churn_probability": p.astype("float64"),
            "risk_tier": risk_tiers(p, base_rate),
            "top_drivers": T.top_drivers(model, frame, DRIVERS_PER_CUSTOMER),
            "horizon_days": int(run.data.params["horizon_days"]),
            "model_version": str(version),
            "scored_as_of": as_of,
        }
    )
    return CustomerScores(scores, str(version), lineage, base_rate)


@registry.scoring_asset(
    FAMILY,
    "churn_scores",
    F.TABLES,
    f"Churn probability, risk tier and top drivers for every customer, scored by `{FAMILY.model_name}@champion`. "
    f"Tiers compare a customer's odds of churning with the shop's: high at {TIER_ODDS_RATIO:g} times or more, "
    f"low at 1/{TIER_ODDS_RATIO:g} or less.",
)
def churn_scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    if not registry.champion_ready(settings, FAMILY, context.log, context.run.run_id):
        return
    scores, version, _, base_rate = score_customers(settings)
    data = pa.Table.from_pandas(scores, preserve_index=False)
    published = write_table(load_catalog(settings), "prod.churn_scores", data, context.run.run_id)
    tiers = scores["risk_tier"].value_counts().reindex(list(RISK_TIERS), fill_value=0)
    low, high = tier_bounds(base_rate)
    registry.record_scoring(
        settings,
        context.run.run_id,
        FAMILY,
        version,
        f"{len(scores)} customers, {int(tiers['high'])} high risk (probability >= {high:.3f})",
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "dagster/column_schema": column_schema(iceberg_compatible(data.schema)),
            "model_version": version,
            "risk_tiers": dg.MetadataValue.md(
                reporting.md_table([{"tier": t, "customers": int(n)} for t, n in tiers.items()])
            ),
            "tier_bounds": (f"low <= {low:.3f} < medium < {high:.3f} <= high (shop base rate {base_rate:.3f})"),
            "mean_churn_probability": round(float(scores["churn_probability"].mean()), 4),
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
        }
    )


# Every ML asset answers to data science in the asset catalog.
CHURN_ASSETS = dg.map_asset_specs(
    lambda spec: spec.replace_attributes(owners=[DATA_SCIENCE_OWNER]), [churn_model, churn_promotion, churn_scores]
)
CHURN_CHECKS = [churn_gate]
