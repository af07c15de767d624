"""MLflow set-up shared by every model family: tracking store, experiments, lineage tags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestration.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# MLflow is imported where it is used: loading the code location (the UI, a run's first process, a
# step that never touches a model) need not pay for it.

CHAMPION = "champion"
CHALLENGER = "challenger"


def configure(settings: Settings) -> MlflowClient:
    import mlflow

    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    # mlflow.set_*_uri also export MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI to the environment, which
    # every process started later would inherit, pointing it at this store whatever its own
    # SHOPLAKE_HOME says. The environment is put back: the settings stay the one source of truth.
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return _client_with_store(settings)


_stores_ready: set[str] = set()


def _client_with_store(settings: Settings) -> MlflowClient:
    """MLflow creates (and migrates) its database the first time a process opens it. Steps of one run
    that open a new store side by side (the scoring ops on a fresh install) would both run the
    migrations and all but one would fail; the first opening in each process holds a lock file in
    SHOPLAKE_HOME, so one process creates the store and the others find it ready."""
    import fcntl

    from mlflow.tracking import MlflowClient

    uri = settings.mlflow_tracking_uri
    if uri in _stores_ready:
        return MlflowClient(uri, uri)
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / ".mlflow-store.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        client = MlflowClient(uri, uri)
        client.search_experiments(max_results=1)  # opens the tracking store: creates its tables
        client.search_registered_models(max_results=1)  # and the registry's
    _stores_ready.add(uri)
    return client


def experiment(settings: Settings, name: str) -> str:
    """The experiment's id, created with its artifacts under the configured artifact root."""
    client = configure(settings)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=f"{settings.mlflow_artifact_root}/{name}")


def alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version number behind an alias, as a string (MLflow returns an int here, a string elsewhere)."""
    import mlflow

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def log_sklearn_model(model, input_example, predictions):
    """Log a scikit-learn compatible model in MLflow's safe skops format.

    skops refuses to load types it was not told to trust; the types trusted are exactly those of
    the object Shoplake itself built and saved, which is what makes trusting them safe.
    """
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(input_example, predictions),
        input_example=input_example,
        skops_trusted_types=trusted,
        pip_requirements=model_requirements(),
    )


# What a Shoplake model needs to load. Named here because MLflow otherwise infers them by loading
# the model again in a new Python process, which took most of a candidate's logging time (tens of
# seconds per candidate on a busy machine).
MODEL_PACKAGES = ("scikit-learn", "xgboost", "skops", "numpy", "pandas", "scipy")


def model_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in MODEL_PACKAGES:
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return out


def log_candidate(
    experiment_id: str,
    run_name: str,
    tags: dict[str, str],
    params: dict,
    metrics: dict[str, float],
    model,
    input_example,
    predictions,
    figures: dict | None = None,
) -> LoggedRun:
    """One MLflow run for one candidate: parameters, metrics, the model (signature + input example),
    plots and lineage tags."""
    import mlflow

    from ml_assets import reporting

    plot_metadata: dict = {}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        info = log_sklearn_model(model, input_example, predictions)
        for name, fig in (figures or {}).items():
            plot_metadata.update(reporting.log_figure(fig, name))
    return LoggedRun(run.info.run_id, info.model_uri, plot_metadata)


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    model_uri: str
    plot_metadata: dict
