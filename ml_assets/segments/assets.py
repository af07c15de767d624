"""K-means customer segments as an asset: ``prod/customer_segments``, next to the rule-based RFM
segments prod.dim_customers keeps (ml_assets/segments/train.py says how they are fitted, named and
kept stable). Refitted on every refresh, each fit an MLflow run of the ``segments`` experiment with
the silhouette of every k, the chosen k, the stability, the profiles and a plot."""

import json
import time

import dagster as dg
import pandas as pd
import pyarrow as pa

from ml_assets import lakehouse_data, reporting, tracking
from ml_assets.segments import features as F
from orchestration.lakehouse.catalog import iceberg_compatible, load_catalog, table_or_none
from orchestration.lakehouse.ledger import record_model_outcome
from orchestration.lakehouse.publish import write_table
from orchestration.policies import DATA_SCIENCE_OWNER, PROD_FRESHNESS, column_schema, table_pool
from orchestration.resources import LakehouseResource
from orchestration.settings import Settings

# The training module (scikit-learn, SciPy) is imported by the asset's body: loading the code location
# stays light (ml_assets/definitions.py ML_RUNTIME_MODULES).

FAMILY = "segments"
TABLE = "prod.customer_segments"
EXPERIMENT = "segments"
MIN_BUYERS = 50


class SegmentsConfig(dg.Config):
    seed: int = 7
    min_buyers: int = MIN_BUYERS


def previous_table(settings: Settings):
    """The segments published last time (features and ids), or None on the first run."""
    table = table_or_none(load_catalog(settings), TABLE)
    if table is None or table.current_snapshot() is None:
        return None
    return table.scan().to_pandas()


@dg.asset(
    key=["prod", "customer_segments"],
    output_required=False,
    # it writes only its own Iceberg table, never the DuckDB file: its own pool, beside the other scores
    pool=table_pool(TABLE),
    freshness_policy=PROD_FRESHNESS,
    group_name="ml",
    owners=[DATA_SCIENCE_OWNER],
    deps=[dg.AssetKey(t.split(".")) for t in F.TABLES],
    kinds={"iceberg", "mlflow", "scikitlearn"},
    description="K-means segments of every customer with at least one order, on standardized recency, frequency, "
    "average order value, tenure and return rate (skewed ones log-transformed). k (2-6) by silhouette, stability "
    "by the adjusted Rand index of two bootstrap refits; each segment named from its centroid; segment ids matched "
    "to the previous run's centroids so they do not shuffle. The RFM segment is kept alongside. Skips, with the "
    f"reason, below {MIN_BUYERS} buyers.",
)
def customer_segments(context: dg.AssetExecutionContext, config: SegmentsConfig, lakehouse: LakehouseResource):
    from ml_assets.segments import train as T

    settings = lakehouse.settings()
    con, lineage = lakehouse_data.open_tables(settings, F.TABLES)
    frame = F.buyer_features(con)
    if len(frame) < config.min_buyers:
        reason = f"{len(frame)} customers have ordered; segments need at least {config.min_buyers}"
        context.log.warning(f"customer segments not fitted: {reason}")
        record_model_outcome(settings, context.run.run_id, FAMILY, "training", TABLE, "skipped", reason)
        yield dg.AssetObservation(asset_key=context.asset_key, metadata={"skipped": reason})
        return

    started = time.perf_counter()
    previous = previous_table(settings)
    fit = T.fit_segments(frame, config.seed, previous)
    seconds = time.perf_counter() - started
    context.log.info(
        f"{fit.k} segments of {len(frame)} buyers in {seconds:.1f}s; silhouette by k {fit.silhouettes}; "
        f"bootstrap stability ARI {fit.stability_ari}"
        + (f"; {fit.reason}" if fit.reason else "")
        + ("; ids matched to the previous run" if fit.matched_to_previous else "; first run: ids by revenue share")
    )

    import mlflow

    tracking.configure(settings)
    experiment_id = tracking.experiment(settings, EXPERIMENT)
    profile_rows = fit.profiles.to_dict(orient="records")
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name="customer_segments",
        tags=lakehouse_data.lineage_tags(context.run.run_id, lineage),
    ) as run:
        mlflow.log_params(
            {
                "seed": config.seed,
                "k_range": f"{min(T.K_RANGE)}-{max(T.K_RANGE)}",
                "features": ",".join(F.CLUSTER_FEATURES),
                "log_features": ",".join(sorted(F.LOG_FEATURES)),
                "silhouette_sample": T.SILHOUETTE_SAMPLE,
                "buyers": len(frame),
                "matched_to_previous": fit.matched_to_previous,
                "single_segment_reason": fit.reason or "none",
            }
        )
        metrics = {f"silhouette_k{k}": s for k, s in fit.silhouettes.items()}
        metrics["chosen_k"] = fit.k
        metrics["fit_seconds"] = seconds
        if fit.silhouette is not None:
            metrics["silhouette"] = fit.silhouette
        if fit.stability_ari is not None:
            metrics["stability_ari"] = fit.stability_ari
        mlflow.log_metrics(metrics)
        mlflow.log_dict(
            {"segments": profile_rows, "silhouettes": {str(k): s for k, s in fit.silhouettes.items()}},
            "profiles.json",
        )
        mlflow.log_text(fit.profiles.to_csv(index=False), "profiles.csv")
        plot = reporting.log_figure(T.figure(frame, fit), "segments")

    out = frame[["customer_id"]].copy()
    out["segment_id"] = fit.segment_id.astype("int64")
    out["segment_name"] = [fit.names[int(s)] for s in fit.segment_id]
    out["rfm_segment"] = frame["rfm_segment"].astype(object)
    for col in F.PROFILE_FEATURES:
        out[col] = frame[col]
    out["distance_to_centroid"] = fit.distance.astype("float64")
    out["segments"] = fit.k
    out["mlflow_run_id"] = run.info.run_id
    out["segmented_as_of"] = pd.to_datetime(frame["segmented_as_of"]).dt.date
    data = pa.Table.from_pandas(out, preserve_index=False)
    published = write_table(load_catalog(settings), TABLE, data, context.run.run_id)
    summary = ", ".join(f"{r['segment_id']}: {r['segment_name']} ({r['customers']})" for r in profile_rows)
    record_model_outcome(
        settings, context.run.run_id, FAMILY, "scoring", TABLE, "scored", f"{fit.k} segments of {len(out)}: {summary}"
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(out),
            "dagster/column_schema": column_schema(iceberg_compatible(data.schema), F.DESCRIPTIONS),
            "segments": fit.k,
            "silhouette": round(fit.silhouette, 4) if fit.silhouette is not None else "n/a (one segment)",
            "stability_ari": round(fit.stability_ari, 4) if fit.stability_ari is not None else "n/a",
            "silhouette_by_k": json.dumps({str(k): round(s, 4) for k, s in fit.silhouettes.items()}),
            "matched_to_previous": fit.matched_to_previous,
            "profiles": dg.MetadataValue.md(reporting.md_table(profile_rows)),
            "mlflow_run_id": run.info.run_id,
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
            **({"single_segment_reason": fit.reason} if fit.reason else {}),
            **plot,
        }
    )


SEGMENT_ASSETS = [customer_segments]
SEGMENT_CHECKS: list[dg.AssetChecksDefinition] = []
