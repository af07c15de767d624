"""The XGBoost settings of each family: the defaults of its training config in the Dagster UI.

They live apart from the training code so that loading the code location does not import
scikit-learn and XGBoost; the training modules import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChurnXGBoostParams:
    # Shallow, regularised trees: the demo shop has thousands of customers, not millions.
    n_estimators: int = 300
    max_depth: int = 3
    learning_rate: float = 0.03
    min_child_weight: float = 5.0
    reg_lambda: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8


@dataclass(frozen=True)
class FraudXGBoostParams:
    # Chargebacks are rare (about 1 in 100 payments) and fraud signals add up rather than interact:
    # stumps (depth 1) give an additive model in log-odds, which overfits the few positives least.
    n_estimators: int = 600
    max_depth: int = 1
    learning_rate: float = 0.03
    min_child_weight: float = 1.0
    reg_lambda: float = 2.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8


@dataclass(frozen=True)
class ForecastXGBoostParams:
    n_estimators: int = 200
    max_depth: int = 3
    learning_rate: float = 0.05


FORECAST_HORIZON_DAYS = 28
