"""Fraud candidates, with or without labels.

With enough chargebacks, two candidates compete on a rolling-origin backtest over the latest labelled
payments: an IsolationForest anomaly score (unsupervised: it never sees a label) and XGBoost trained on
the chargeback label with the anomaly score as one more feature. With too few chargebacks (a shop
paid by bank transfer has none), the IsolationForest alone scores every payment: it needs no label,
and its risk tiers come from the quantiles of its own scores."""

from __future__ import annotations

import datetime as dt
import time
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
from ml_assets.frames import validate_frame
from ml_assets.fraud import features as F
from ml_assets.hyperparameters import FRAUD_XGBOOST
from ml_assets.hyperparameters import ClassifierXGBoostParams as XGBoostParams

BASELINE = "isolation_forest"
CHALLENGER = "xgboost"
SUPERVISED, UNSUPERVISED = "supervised", "unsupervised"
NO_SKILL = "no_skill"  # the naive reference: a score that knows nothing has PR-AUC = the chargeback rate
HOLDOUT_FRACTION = 0.35  # the latest share of the labelled period, by payment date, split into the windows
BACKTEST_WINDOWS = 3
MIN_CHARGEBACKS = {"training set": 10, "holdout": 5}
MIN_PAYMENTS = 50  # fewer than this and even an anomaly score has nothing to learn what is usual from
TARGET_FPR = 0.01
# One thread: on a busy two-core machine, two OpenMP threads spin-wait for each other and a fit of
# a few thousand rows took 21 s instead of 0.9 s; the steps of a run already use both cores.
XGBOOST_THREADS = 1
MEDIUM_FPR = 0.05  # the medium risk tier: the next 4% of legitimate payments
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
    """The unsupervised candidate: ``predict`` gives the IsolationForest anomaly score (0-1, higher is
    more unusual). It keeps the median and spread of what it was fitted on, to say which inputs of a
    payment are unusual (``unusual_inputs``)."""

    def __init__(self, n_estimators: int = 200, random_state: int = 0):
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.scorer_ = AnomalyScore(self.n_estimators, self.random_state).fit(X)
        self.center_ = np.median(X, axis=0)
        spread = np.quantile(X, 0.75, axis=0) - np.quantile(X, 0.25, axis=0)
        self.scale_ = np.where(spread > 0, spread, np.maximum(X.std(axis=0), 1.0))
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
    model = XGBClassifier(
        **params.__dict__, random_state=seed, n_jobs=XGBOOST_THREADS, tree_method="hist", eval_metric="aucpr"
    )
    return Pipeline([("prep", _prep()), ("anomaly", AnomalyScore(random_state=seed)), ("model", model)])


def _threshold(negatives: np.ndarray, fpr: float) -> float:
    negatives = np.sort(negatives)
    return float(negatives[max(int(np.ceil((1 - fpr) * len(negatives))) - 1, 0)])


def evaluate(y_true, score) -> dict[str, float]:
    y = np.asarray(y_true).astype(int)
    s = np.asarray(score, dtype=float)
    threshold = _threshold(s[y == 0], TARGET_FPR)
    k = precision_k(len(y))
    top = np.argsort(-s, kind="stable")[:k]
    return {
        "pr_auc": float(average_precision_score(y, s)),
        "roc_auc": float(roc_auc_score(y, s)),
        "recall_at_1pct_fpr": float((s[y == 1] > threshold).mean()),
        "threshold_at_1pct_fpr": threshold,
        "threshold_at_5pct_fpr": _threshold(s[y == 0], MEDIUM_FPR),
        "precision_at_k": float(y[top].mean()),
        "k": float(k),
        "chargeback_rate": float(y.mean()),
    }


def unlabelled_metrics(score: np.ndarray) -> dict[str, float]:
    """Without labels every payment counts as legitimate: the thresholds flag 1% and 5% of them."""
    s = np.asarray(score, dtype=float)
    return {
        "threshold_at_1pct_fpr": _threshold(s, TARGET_FPR),
        "threshold_at_5pct_fpr": _threshold(s, MEDIUM_FPR),
        "payments": float(len(s)),
    }


def precision_k(n: int) -> int:
    """k for precision at k: the 1% of payments a review team would look at, at least 10."""
    return max(10, int(round(0.01 * n)))


@dataclass
class FraudData:
    mode: str  # supervised | unsupervised
    label_delay_days: int
    labelled_until: dt.date | None
    holdout_from: dt.date | None  # supervised: where the backtest windows start
    train: pd.DataFrame  # supervised: before the latest window; unsupervised: every payment
    holdout: pd.DataFrame  # supervised: the latest window; unsupervised: empty
    windows: list[tuple[pd.DataFrame, pd.DataFrame]] = field(default_factory=list)  # (train, test), latest first
    why_unsupervised: str = ""


@dataclass
class FraudTraining:
    data: FraudData
    candidates: dict[str, Candidate] = field(default_factory=dict)
    backtest: dict[str, float] = field(default_factory=dict)  # candidate -> PR-AUC over the pooled windows
    seconds: dict[str, float] = field(default_factory=dict)
    chargeback_rate: float = float("nan")  # in the pooled windows: the no-skill PR-AUC

    @property
    def best(self) -> str:
        return max(self.candidates, key=lambda n: self.backtest.get(n, float("-inf")))


def load_data(con) -> FraudData:
    """Supervised windows when the labels allow them, every payment for the anomaly score otherwise."""
    delay = F.label_delay_days(con)
    last = F.last_payment_date(con)
    if last is None:
        raise InsufficientData("fraud: prod.fct_payments is empty: generate or extract a shop first")
    payments = F.payment_features(con)
    usable = payments[payments["status"] != "failed"].reset_index(drop=True)
    if len(usable) < MIN_PAYMENTS:
        raise InsufficientData(
            f"fraud needs at least {MIN_PAYMENTS} authorised payments to learn what is usual; "
            f"prod.fct_payments has {len(usable)}: load more days of history"
        )
    labelled_until = last - dt.timedelta(days=delay)
    labelled = usable[usable["paid_at"].dt.date <= labelled_until]

    def unsupervised(why: str) -> FraudData:
        return FraudData(
            UNSUPERVISED,
            delay,
            labelled_until if len(labelled) else None,
            None,
            usable,
            usable.head(0),
            why_unsupervised=why,
        )

    if labelled.empty:
        return unsupervised(f"no payment is older than the {delay}-day chargeback delay, so none has a label yet")
    first = labelled["paid_at"].dt.date.min()
    span = (labelled_until - first).days
    holdout_from = first + dt.timedelta(days=int(np.ceil(span * (1 - HOLDOUT_FRACTION))))
    edges = [
        holdout_from + dt.timedelta(days=int(round((labelled_until - holdout_from).days * i / BACKTEST_WINDOWS)))
        for i in range(BACKTEST_WINDOWS)
    ] + [labelled_until + dt.timedelta(days=1)]
    paid = labelled["paid_at"].dt.date
    windows = [
        (
            labelled[paid < edges[i]].reset_index(drop=True),
            labelled[(paid >= edges[i]) & (paid < edges[i + 1])].reset_index(drop=True),
        )
        for i in reversed(range(BACKTEST_WINDOWS))
    ]
    found = {
        "training set": int(windows[-1][0]["is_chargeback"].sum()),
        "holdout": int(sum(test["is_chargeback"].sum() for _, test in windows)),
    }
    sizes = {"training set": len(windows[-1][0]), "holdout": sum(len(test) for _, test in windows)}
    for name, n in found.items():
        if n < MIN_CHARGEBACKS[name] or n == sizes[name]:
            return unsupervised(
                f"the {name} has {n} chargebacks among {sizes[name]} labelled payments; a supervised model needs at "
                f"least {MIN_CHARGEBACKS[name]} (and some without), so the anomaly score alone scores the payments"
            )
    latest_train, latest_test = windows[0]
    return FraudData(SUPERVISED, delay, labelled_until, holdout_from, latest_train, latest_test, windows)


def fit_candidates(data: FraudData, seed: int, params: XGBoostParams = FRAUD_XGBOOST, log=None) -> FraudTraining:
    out = FraudTraining(data)
    if data.mode == UNSUPERVISED:
        started = time.perf_counter()
        base = baseline_pipeline(seed).fit(data.train[F.FEATURES])
        s = predict_score(base, data.train)
        out.candidates[BASELINE] = Candidate(base, unlabelled_metrics(s), s)
        out.seconds[BASELINE] = round(time.perf_counter() - started, 2)
        if log is not None:
            log.info(
                f"fraud candidate {BASELINE} (unsupervised, no labels to judge it on) fitted on "
                f"{len(data.train)} payments in {out.seconds[BASELINE]:.1f}s"
            )
        return out
    makers = {BASELINE: lambda: baseline_pipeline(seed), CHALLENGER: lambda: xgboost_pipeline(seed, params)}
    y_pooled = np.concatenate([test["is_chargeback"].astype(int).to_numpy() for _, test in data.windows])
    out.chargeback_rate = float(y_pooled.mean())
    for name, make in makers.items():
        started = time.perf_counter()
        pooled = []
        for i, (train, test) in enumerate(data.windows):
            model = make().fit(train[F.FEATURES], train["is_chargeback"].astype(int))
            s = predict_score(model, test)
            pooled.append(s)
            if i == 0:
                out.candidates[name] = Candidate(model, evaluate(test["is_chargeback"], s), s)
        out.backtest[name] = float(average_precision_score(y_pooled, np.concatenate(pooled)))
        out.candidates[name].metrics["backtest_pr_auc"] = out.backtest[name]
        out.seconds[name] = round(time.perf_counter() - started, 2)
        if log is not None:
            log.info(
                f"fraud candidate {name}: PR-AUC {out.backtest[name]:.4f} over {len(data.windows)} pooled windows "
                f"(chargeback rate {out.chargeback_rate:.4f}) in {out.seconds[name]:.1f}s"
            )
    return out


def backtest_model(model, data: FraudData) -> float:
    """An already fitted model (the champion) on the same pooled windows."""
    y = np.concatenate([test["is_chargeback"].astype(int).to_numpy() for _, test in data.windows])
    return float(average_precision_score(y, np.concatenate([predict_score(model, test) for _, test in data.windows])))


def is_supervised(model) -> bool:
    return hasattr(model, "predict_proba")


def predict_score(model, frame: pd.DataFrame) -> np.ndarray:
    """Fraud probability (XGBoost) or anomaly score (IsolationForest) per payment; rejects a malformed frame."""
    X = validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "fraud model")
    return model.predict_proba(X)[:, 1] if is_supervised(model) else model.predict(X)


def contributions(pipe: Pipeline, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Per payment, how much each input pushes its score up: TreeSHAP (log-odds) for XGBoost; for the
    anomaly score, how many interquartile ranges each input lies from what is usual."""
    X = validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "fraud model")
    if not is_supervised(pipe):
        return F.FEATURES, unusual_inputs(pipe, X)
    names = [*F.FEATURES, ANOMALY_FEATURE]
    return names, explain.contributions(pipe, X, names, F.CATEGORICAL_FEATURES)


def unusual_inputs(pipe: Pipeline, X: pd.DataFrame) -> np.ndarray:
    prep, scorer = pipe[:-1], pipe[-1]
    Xt = np.asarray(prep.transform(X), dtype=float)
    deviation = np.abs(Xt - scorer.center_) / scorer.scale_
    out = np.zeros((len(Xt), len(F.FEATURES)))
    for j, name in enumerate(prep.get_feature_names_out()):
        owner = name if name in F.FEATURES else next(c for c in F.CATEGORICAL_FEATURES if name.startswith(c + "_"))
        out[:, F.FEATURES.index(owner)] += deviation[:, j]
    return out
