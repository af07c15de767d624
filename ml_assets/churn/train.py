"""Churn candidates judged on a rolling-origin backtest: two baselines that count (logistic regression
on recency alone, and on recency, frequency and monetary value) and calibrated XGBoost on every
feature. All three are real models that can be registered; the best on the backtest is the family's
challenger. Per-customer drivers explain whichever one serves."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
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
from ml_assets.frames import validate_frame
from ml_assets.hyperparameters import CHURN_XGBOOST
from ml_assets.hyperparameters import ClassifierXGBoostParams as XGBoostParams

RECENCY = "logistic_recency"
BASELINE = "logistic_rfm"
CHALLENGER = "xgboost"
BASELINES = (RECENCY, BASELINE)
# The naive reference every first champion must beat: a score that knows nothing ranks at AUC 0.5.
NO_SKILL = "no_skill"
NO_SKILL_AUC = 0.5
BACKTEST_WINDOWS = 3
MIN_HOLDOUT_CUSTOMERS = 50
# One thread: on a busy two-core machine, two OpenMP threads spin-wait for each other and a fit of
# a few thousand rows took 21 s instead of 0.9 s; the steps of a run already use both cores.
XGBOOST_THREADS = 1
MIN_CLASS_COUNT = 5
CALIBRATION_BINS = 10
CALIBRATION_FOLDS = 3


def _linear(features: list[str], seed: int) -> Pipeline:
    prep = ColumnTransformer(
        [
            (
                "num",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                features,
            )
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000, random_state=seed))])


def recency_pipeline(seed: int) -> Pipeline:
    return _linear(F.RECENCY_FEATURES, seed)


def baseline_pipeline(seed: int) -> Pipeline:
    return _linear(F.RFM_FEATURES, seed)


def xgboost_pipeline(seed: int, params: XGBoostParams = CHURN_XGBOOST) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", "passthrough", F.NUMERIC_FEATURES),  # XGBoost handles missing values itself
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), F.CATEGORICAL_FEATURES),
        ],
        verbose_feature_names_out=False,
    )
    model = XGBClassifier(
        **params.__dict__,
        random_state=seed,
        n_jobs=XGBOOST_THREADS,
        tree_method="hist",
        eval_metric="logloss",
    )
    return Pipeline([("prep", prep), ("model", model)])


def calibrated(pipe: Pipeline) -> CalibratedClassifierCV:
    """Isotonic calibration fitted on cross-validated predictions, over one model fitted on all the
    data (``ensemble=False``). On the demo shop's holdout it cut XGBoost's calibration error from
    0.028 to 0.021 at the same Brier score; Platt scaling made it worse (0.057)."""
    return CalibratedClassifierCV(pipe, method="isotonic", cv=CALIBRATION_FOLDS, ensemble=False)


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
class Window:
    """One origin of the backtest: train on the cutoffs before it, judge on the customers at it."""

    train_cutoffs: list[dt.date]
    holdout_cutoff: dt.date
    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass
class ChurnData:
    horizon_days: int
    windows: list[Window]  # latest first; the latest one's model is the one registered

    @property
    def latest(self) -> Window:
        return self.windows[0]

    @property
    def train_cutoffs(self) -> list[dt.date]:
        return self.latest.train_cutoffs

    @property
    def holdout_cutoff(self) -> dt.date:
        return self.latest.holdout_cutoff

    @property
    def train(self) -> pd.DataFrame:
        return self.latest.train

    @property
    def holdout(self) -> pd.DataFrame:
        return self.latest.holdout


@dataclass
class ChurnTraining:
    data: ChurnData
    candidates: dict[str, Candidate] = field(default_factory=dict)
    backtest: dict[str, list[float]] = field(default_factory=dict)  # candidate -> ROC-AUC per window
    seconds: dict[str, float] = field(default_factory=dict)

    def score(self, name: str) -> float:
        """The candidate's backtest score: mean ROC-AUC over the windows."""
        return float(np.mean(self.backtest[name]))

    @property
    def best(self) -> str:
        return max(self.candidates, key=self.score)


def load_data(con, horizon_days: int | None = None, windows: int = BACKTEST_WINDOWS) -> ChurnData:
    """The backtest windows' training and holdout frames; fails clearly when the history cannot support one."""
    horizon = horizon_days or F.churn_horizon_days(con)
    first, last = F.data_span(con)
    if first is None:
        raise InsufficientData("churn: prod.fct_orders is empty: generate or extract a shop first")
    origins = F.backtest_windows(first, last, horizon, windows)
    have = (last - first).days + 1
    if not origins:
        raise InsufficientData(
            f"churn needs at least {F.required_days(horizon)} days of order history for a {horizon}-day label "
            f"window (a training window, a holdout window and {F.MIN_HISTORY_DAYS} days before them); "
            f"prod.fct_orders covers {have}: load more days of history"
        )
    frames: dict[dt.date, pd.DataFrame] = {}  # windows share most cutoffs: each is computed once

    def at(cutoff: dt.date) -> pd.DataFrame:
        if cutoff not in frames:
            frames[cutoff] = F.customer_features(con, cutoff, horizon)
        return frames[cutoff]

    out = []
    for i, (train_cutoffs, holdout_cutoff) in enumerate(origins):
        window = Window(
            train_cutoffs,
            holdout_cutoff,
            pd.concat([at(c) for c in train_cutoffs], ignore_index=True),
            at(holdout_cutoff),
        )
        problem = _too_small(window)
        if problem and i == 0:
            raise InsufficientData(problem)
        if problem:
            break  # an earlier origin with too little data: the backtest uses the later ones
        out.append(window)
    return ChurnData(horizon, out)


def _too_small(window: Window) -> str | None:
    for name, frame in (("holdout", window.holdout), ("training set", window.train)):
        y = frame["churned"].astype(bool)
        if len(frame) < MIN_HOLDOUT_CUSTOMERS or min(y.sum(), (~y).sum()) < MIN_CLASS_COUNT:
            return (
                f"churn {name} at {window.holdout_cutoff} has {len(frame)} customers, {int(y.sum())} churned and "
                f"{int((~y).sum())} active; it needs {MIN_HOLDOUT_CUSTOMERS} customers and {MIN_CLASS_COUNT} of each: "
                "load more customers or more days of history"
            )
    return None


def candidate_makers(seed: int, params: XGBoostParams = CHURN_XGBOOST) -> dict:
    """name -> (pipeline maker, calibrate it?). The regressions are calibrated by their loss already."""
    return {
        RECENCY: (lambda: recency_pipeline(seed), False),
        BASELINE: (lambda: baseline_pipeline(seed), False),
        CHALLENGER: (lambda: xgboost_pipeline(seed, params), True),
    }


def fit_candidates(data: ChurnData, seed: int, params: XGBoostParams = CHURN_XGBOOST, log=None) -> ChurnTraining:
    """Every candidate on every window, calibrated where it needs it in every window (the scores
    compared are those of the model that would ship); the latest window's fit is the one kept."""
    out = ChurnTraining(data)
    for name, (make, calibrate) in candidate_makers(seed, params).items():
        started = time.perf_counter()
        aucs = []
        for i, window in enumerate(data.windows):
            model = calibrated(make()) if calibrate else make()
            model.fit(window.train[F.FEATURES], window.train["churned"].astype(int))
            p = predict_proba(model, window.holdout)
            aucs.append(float(roc_auc_score(window.holdout["churned"].astype(int), p)))
            if i == 0:
                out.candidates[name] = Candidate(model, evaluate(window.holdout["churned"], p), p)
        out.backtest[name] = aucs
        out.candidates[name].metrics["backtest_roc_auc"] = float(np.mean(aucs))
        out.seconds[name] = round(time.perf_counter() - started, 2)
        if log is not None:
            log.info(
                f"churn candidate {name}: ROC-AUC {np.mean(aucs):.4f} over {len(aucs)} windows "
                f"({', '.join(f'{a:.4f}' for a in aucs)}) in {out.seconds[name]:.1f}s"
            )
    return out


def backtest_model(model, data: ChurnData) -> list[float]:
    """An already fitted model (the champion) on the same windows."""
    return [
        float(roc_auc_score(w.holdout["churned"].astype(int), predict_proba(model, w.holdout))) for w in data.windows
    ]


def predict_proba(model, frame: pd.DataFrame) -> np.ndarray:
    """Churn probabilities for a frame with the model's feature columns (rejects a malformed one)."""
    return model.predict_proba(validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "churn model"))[:, 1]


def _inner(model):
    """The pipeline behind a calibrated model (its drivers are the pipeline's)."""
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator
    return model


def contributions(model, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Per-customer contributions (log-odds) of each feature: TreeSHAP for XGBoost, coefficient times
    standardised value for a logistic regression."""
    X = validate_frame(frame, F.NUMERIC_FEATURES, F.CATEGORICAL_FEATURES, "churn model")
    pipe = _inner(model)
    if isinstance(pipe[-1], LogisticRegression):
        return F.FEATURES, explain.linear_contributions(pipe, X, F.FEATURES)
    return F.FEATURES, explain.contributions(pipe, X, F.FEATURES, F.CATEGORICAL_FEATURES)


def top_drivers(model, frame: pd.DataFrame, k: int = 3) -> list[str]:
    """The k features pushing each customer's churn risk up the most, as 'feature (+0.42)' text."""
    names, contrib = contributions(model, frame)
    return explain.top_k(names, contrib, k)
