"""Fraud candidates on one time-based holdout of labelled payments: an IsolationForest anomaly score
(the baseline, unsupervised) and XGBoost trained on the chargeback label with the anomaly score as
one more feature (the challenger)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from xgboost import XGBClassifier

from ml_assets import explain
from ml_assets.candidates import Candidate
from ml_assets.errors import InsufficientData
from ml_assets.hyperparameters import FRAUD_XGBOOST, ClassifierXGBoostParams as XGBoostParams
from ml_assets.fraud import features as F
from ml_assets.frames import validate_frame

BASELINE = "isolation_forest"
CHALLENGER = "xgboost"
HOLDOUT_FRACTION = 0.35  # the latest share of the labelled period, by payment date
MIN_CHARGEBACKS = {"training set": 10, "holdout": 5}
TARGET_FPR = 0.01
ANOMALY_FEATURE = "anomaly_score"




class AnomalyScore(TransformerMixin, BaseEstimator):
    """Appends an IsolationForest anomaly score (higher = more unusual) to the feature matrix."""

    def __init__(self, n_estimators: int = 200, random_state: int = 0):
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, X, y=None):
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state, n_jobs=1).fit(X)
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        return np.column_stack([X, -self.forest_.score_samples(X)])

    def get_feature_names_out(self, input_features=None):
        return np.array([*(input_features if input_features is not None else []), ANOMALY_FEATURE], dtype=object)


class AnomalyScorer(BaseEstimator):
    """The unsupervised baseline: ``predict`` gives the IsolationForest anomaly score."""

    def __init__(self, n_estimators: int = 200, random_state: int = 0):
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, X, y=None):
        self.scorer_ = AnomalyScore(self.n_estimators, self.random_state).fit(X)
        return self

    def predict(self, X):
        return self.scorer_.transform(X)[:, -1]


def _prep() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median", keep_empty_features=True), F.NUMERIC_FEATURES),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), F.CATEGORICAL_FEATURES),
        ],
        verbose_feature_names_out=False,
    )


def baseline_pipeline(seed: int) -> Pipeline:
    return Pipeline([("prep", _prep()), ("model", AnomalyScorer(random_state=seed))])


def xgboost_pipeline(seed: int, params: XGBoostParams = FRAUD_XGBOOST) -> Pipeline:
    model = XGBClassifier(**params.__dict__, random_state=seed, n_jobs=2, tree_method="hist", eval_metric="aucpr")
    return Pipeline([("prep", _prep()), ("anomaly", AnomalyScore(random_state=seed)), ("model", model)])


def evaluate(y_true, score) -> dict[str, float]:
    y = np.asarray(y_true).astype(int)
    s = np.asarray(score, dtype=float)
    negatives = np.sort(s[y == 0])
    threshold = float(negatives[int(np.ceil((1 - TARGET_FPR) * len(negatives))) - 1])
    k = precision_k(len(y))
    top = np.argsort(-s, kind="stable")[:k]
    return {
        "pr_auc": float(average_precision_score(y, s)),
        "roc_auc": float(roc_auc_score(y, s)),
        "recall_at_1pct_fpr": float((s[y == 1] > threshold).mean()),
        "threshold_at_1pct_fpr": threshold,
        "precision_at_k": float(y[top].mean()),
        "k": float(k),
        "chargeback_rate": float(y.mean()),
    }


def precision_k(n: int) -> int:
    """k for precision at k: the 1% of payments a review team would look at, at least 10."""
    return max(10, int(round(0.01 * n)))


@dataclass
class FraudData:
    label_delay_days: int
    labelled_until: dt.date
    holdout_from: dt.date
    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass
class FraudTraining:
    data: FraudData
    candidates: dict[str, Candidate] = field(default_factory=dict)


def load_data(con) -> FraudData:
    delay = F.label_delay_days(con)
    last = F.last_payment_date(con)
    if last is None:
        raise InsufficientData("fraud: prod.fct_payments is empty: generate or extract a shop first")
    payments = F.payment_features(con)
    labelled_until = last - dt.timedelta(days=delay)
    paid = payments["paid_at"].dt.date
    labelled = payments[(payments["status"] != "failed") & (paid <= labelled_until)]
    if labelled.empty:
        raise InsufficientData(
            f"fraud: no payment is older than the {delay}-day chargeback delay; load more than {delay} days of history"
        )
    first = labelled["paid_at"].dt.date.min()
    holdout_from = first + dt.timedelta(days=int(np.ceil((labelled_until - first).days * (1 - HOLDOUT_FRACTION))))
    in_holdout = labelled["paid_at"].dt.date >= holdout_from
    data = FraudData(delay, labelled_until, holdout_from, labelled[~in_holdout].reset_index(drop=True),
                     labelled[in_holdout].reset_index(drop=True))
    for name, frame in (("training set", data.train), ("holdout", data.holdout)):
        found = int(frame["is_chargeback"].sum())
        if found < MIN_CHARGEBACKS[name] or found == len(frame):
            raise InsufficientData(
                f"fraud {name} has {found} chargebacks among {len(frame)} labelled payments; it needs at least "
                f"{MIN_CHARGEBACKS[name]} (and some without): load more days of history (only payments older than "
                f"the {delay}-day chargeback delay have labels)"
            )
    return data


def fit_candidates(data: FraudData, seed: int, params: XGBoostParams = FRAUD_XGBOOST) -> FraudTraining:
    out = FraudTraining(data)
    X, y = data.train[F.FEATURES], data.train["is_chargeback"].astype(int)
    base = baseline_pipeline(seed).fit(X)
    s = predict_score(base, data.holdout)
    out.candidates[BASELINE] = Candidate(base, evaluate(data.holdout["is_chargeback"], s), s)
    xgb_pipe = xgboost_pipeline(seed, params).fit(X, y)
    p = predict_score(xgb_pipe, data.holdout)
    out.candidates[CHALLENGER] = Candidate(xgb_pipe, evaluate(data.holdout["is_chargeback"], p), p)
    return out


def predict_score(model, frame: pd.DataFrame) -> np.ndarray:
    """Fraud probability (XGBoost) or anomaly score (baseline) per payment; rejects a malformed frame."""
    X = validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "fraud model")
    return model.predict_proba(X)[:, 1] if hasattr(model, "predict_proba") else model.predict(X)


def contributions(pipe: Pipeline, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    X = validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "fraud model")
    names = [*F.FEATURES, ANOMALY_FEATURE]
    return names, explain.contributions(pipe, X, names, F.CATEGORICAL_FEATURES)
