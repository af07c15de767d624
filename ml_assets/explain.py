"""Per-row explanations of an XGBoost pipeline: SHAP contributions (log-odds) of each input feature."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def contributions(pipe: Pipeline, X, features: list[str], categorical: list[str]) -> np.ndarray:
    """One column per input feature (one-hot columns summed back into their feature); the pipeline's
    last step is the XGBoost model, the steps before it its preprocessing."""
    import xgboost as xgb

    prep, model = pipe[:-1], pipe[-1]
    Xt = np.asarray(prep.transform(X), dtype=float)
    names = list(prep.get_feature_names_out())
    contrib = model.get_booster().predict(xgb.DMatrix(Xt), pred_contribs=True)[:, :-1]
    out = np.zeros((len(Xt), len(features)))
    for j, name in enumerate(names):
        owner = name if name in features else next(c for c in categorical if name.startswith(c + "_"))
        out[:, features.index(owner)] += contrib[:, j]
    return out


def top_k(features: list[str], contrib: np.ndarray, k: int = 3) -> list[str]:
    """The k features pushing each row's score up the most, as 'feature (+0.42), ...'."""
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    return [
        ", ".join(f"{features[j]} ({contrib[i, j]:+.2f})" for j in row if contrib[i, j] > 0) or "none"
        for i, row in enumerate(order)
    ]
