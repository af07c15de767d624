"""Every ML asset and asset check, for orchestration.definitions to load.

Per family (churn, fraud, forecasting): ``ml/<family>_model`` backtests the candidates (baselines
included) and registers the best as challenger, or skips with its reason when the data cannot support
training; the blocking check ``<family>_challenger_beats_champion`` gates it (a loss is a WARN);
``ml/<family>_promotion`` moves ``@champion``; the scoring assets publish ``prod.*`` tables from
``@champion``. Each outcome lands in prod.compliance_report (ml_assets/registry.py). Customer segments
(``prod/customer_segments``) have no champion: K-means is refitted on every refresh and its segment
ids are matched to the previous run's (ml_assets/segments/train.py).
"""

from ml_assets.churn.assets import CHURN_ASSETS, CHURN_CHECKS
from ml_assets.forecasting.assets import FORECASTING_ASSETS, FORECASTING_CHECKS
from ml_assets.fraud.assets import FRAUD_ASSETS, FRAUD_CHECKS
from ml_assets.segments.assets import SEGMENT_ASSETS, SEGMENT_CHECKS

# What the model steps need beyond the code location (which leaves them out, so that loading it in
# the UI or in a step that never touches a model stays fast): the step-process server imports them
# once per run, so every forked model step starts with them loaded.
ML_RUNTIME_MODULES = [
    "ml_assets.churn.train",
    "ml_assets.fraud.train",
    "ml_assets.forecasting.train",
    "ml_assets.segments.train",
    "mlflow.sklearn",
]

ML_ASSETS = [*FORECASTING_ASSETS, *CHURN_ASSETS, *FRAUD_ASSETS, *SEGMENT_ASSETS]
ML_ASSET_CHECKS = [*FORECASTING_CHECKS, *CHURN_CHECKS, *FRAUD_CHECKS, *SEGMENT_CHECKS]
