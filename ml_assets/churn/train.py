"""Churn candidates on one time-based holdout: logistic regression on RFM features (the baseline)
and XGBoost on every feature (the challenger), plus per-customer drivers for the scores."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from ml_assets import explain
from ml_assets.candidates import Candidate
from ml_assets.churn import features as F
from ml_assets.errors import InsufficientData
from ml_assets.hyperparameters import CHURN_XGBOOST, ClassifierXGBoostParams as XGBoostParams
from ml_assets.frames import validate_frame

BASELINE = "logistic_rfm"
CHALLENGER = "xgboost"
MIN_HOLDOUT_CUSTOMERS = 50
MIN_CLASS_COUNT = 5
CALIBRATION_BINS = 10




def baseline_pipeline(seed: int) -> Pipeline:
    prep = ColumnTransformer(
        [("rfm", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), F.RFM_FEATURES)]
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000, random_state=seed))])


def xgboost_pipeline(seed: int, params: XGBoostParams = CHURN_XGBOOST) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", "passthrough", F.NUMERIC_FEATURES),  # XGBoost handles missing values itself
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), F.CATEGORICAL_FEATURES),
        ],
        verbose_feature_names_out=False,
    )
    model = XGBClassifier(
        **params.__dict__, random_state=seed, n_jobs=2, tree_method="hist", eval_metric="logloss",
    )
    return Pipeline([("prep", prep), ("model", model)])


def evaluate(y_true, p) -> dict[str, float]:
    y = np.asarray(y_true).astype(int)
    p = np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, len(order) // 10)]
    edges = np.quantile(p, np.linspace(0, 1, CALIBRATION_BINS + 1))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, CALIBRATION_BINS - 1)
    ece = sum(abs(y[bins == b].mean() - p[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins))
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "top_decile_lift": float(y[top].mean() / y.mean()),
        "brier": float(brier_score_loss(y, p)),
        "calibration_error": float(ece),
        "base_rate": float(y.mean()),
    }


@dataclass
class ChurnData:
    horizon_days: int
    train_cutoffs: list[dt.date]
    holdout_cutoff: dt.date
    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass
class ChurnTraining:
    data: ChurnData
    candidates: dict[str, Candidate] = field(default_factory=dict)


def load_data(con, horizon_days: int | None = None) -> ChurnData:
    """Training and holdout frames; fails clearly when the history cannot support the split."""
    horizon = horizon_days or F.churn_horizon_days(con)
    first, last = F.data_span(con)
    if first is None:
        raise InsufficientData("churn: prod.fct_orders is empty: generate or extract a shop first")
    train_cutoffs, holdout_cutoff = F.cutoffs(first, last, horizon)
    have = (last - first).days + 1
    if not train_cutoffs:
        raise InsufficientData(
            f"churn needs at least {F.required_days(horizon)} days of order history for a {horizon}-day label "
            f"window (a training window, a holdout window and {F.MIN_HISTORY_DAYS} days before them); "
            f"prod.fct_orders covers {have}: load more days of history"
        )
    data = ChurnData(horizon, train_cutoffs, holdout_cutoff, F.training_frame(con, train_cutoffs, horizon),
                     F.customer_features(con, holdout_cutoff, horizon))
    for name, frame in (("holdout", data.holdout), ("training set", data.train)):
        y = frame["churned"].astype(bool)
        if len(frame) < MIN_HOLDOUT_CUSTOMERS or min(y.sum(), (~y).sum()) < MIN_CLASS_COUNT:
            raise InsufficientData(
                f"churn {name} has {len(frame)} customers, {int(y.sum())} churned and {int((~y).sum())} active; "
                f"it needs {MIN_HOLDOUT_CUSTOMERS} customers and {MIN_CLASS_COUNT} of each: load more customers or "
                "more days of history"
            )
    return data


def fit_candidates(data: ChurnData, seed: int, params: XGBoostParams = CHURN_XGBOOST) -> ChurnTraining:
    makers = {BASELINE: lambda: baseline_pipeline(seed), CHALLENGER: lambda: xgboost_pipeline(seed, params)}
    out = ChurnTraining(data)
    y_train = data.train["churned"].astype(int)
    for name, make in makers.items():
        pipe = make()
        pipe.fit(data.train[F.FEATURES], y_train)
        p = predict_proba(pipe, data.holdout)
        out.candidates[name] = Candidate(pipe, evaluate(data.holdout["churned"], p), p)
    return out


def predict_proba(model, frame: pd.DataFrame) -> np.ndarray:
    """Churn probabilities for a frame with the model's feature columns (rejects a malformed one)."""
    return model.predict_proba(validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "churn model"))[:, 1]


def contributions(pipe: Pipeline, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Per-customer SHAP contributions (log-odds) of each feature."""
    X = validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "churn model")
    return F.FEATURES, explain.contributions(pipe, X, F.FEATURES, F.CATEGORICAL_FEATURES)


def top_drivers(pipe: Pipeline, frame: pd.DataFrame, k: int = 3) -> list[str]:
    """The k features pushing each customer's churn risk up the most, as 'feature (+0.42)' text."""
    names, contrib = contributions(pipe, frame)
    return explain.top_k(names, contrib, k)
