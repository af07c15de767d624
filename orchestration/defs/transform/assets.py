"""dbt assets: curated, quarantine and prod models built in DuckDB, then published to Iceberg.

dbt tests become Dagster asset checks (blocking when their severity is error), so a failing test
stops everything downstream in the same run, the ML assets included. When dbt fails, this step is
the last one of the run to evaluate checks, so it writes them to the check ledger before failing
(orchestration/lakehouse/ledger.py); otherwise the quality-check step does.

Every table dbt publishes has blocking quality checks (pandera, card scan), so it is published
write-audit-publish (``AUDITED_NAMESPACES``): its new snapshot is staged on the table's audit branch
and becomes current only when the quality-check step has passed it.
"""

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.lakehouse.home_scan import scan_and_record
from orchestration.lakehouse.ledger import record_run_checks
from orchestration.lakehouse.publish import publish_keys, publish_tables
from orchestration.lakehouse.views import refresh_raw_views
from orchestration.policies import AUDITED_NAMESPACES, DATA_PLATFORM_OWNER, PROD_FRESHNESS, WRITER_POOL
from orchestration.resources import LakehouseResource, shoplake_dbt_project

# The DuckDB schemas dbt builds in are the layers; quarantine sits with curated in the UI.
LAYER_GROUPS = {"curated": "curated", "quarantine": "curated", "prod": "prod"}
PUBLISHED_SCHEMAS = frozenset(LAYER_GROUPS)


class ShoplakeTranslator(DagsterDbtTranslator):
    """Asset key = [schema, table name], the names users query (prod/fct_orders, curated/orders)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            name = dbt_resource_props.get("alias") or dbt_resource_props["name"]
            return dg.AssetKey([dbt_resource_props["schema"], name])
        return super().get_asset_key(dbt_resource_props)

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if spec.key.path[0] == "prod":
            spec = spec.replace_attributes(freshness_policy=PROD_FRESHNESS)
        return spec

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        """The model's own owners (meta.dagster.owners, its group's owner), else the data platform team."""
        return super().get_owners(dbt_resource_props) or [DATA_PLATFORM_OWNER]

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return LAYER_GROUPS.get(dbt_resource_props["schema"], "curated")
        return super().get_group_name(dbt_resource_props)


TRANSLATOR = ShoplakeTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild the incremental marts from scratch (`dbt build --full-refresh`): needed after their
    columns change."""


@dbt_assets(
    manifest=shoplake_dbt_project.manifest_path,
    project=shoplake_dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_curated_and_prod",
    pool=WRITER_POOL,
)
def dbt_curated_and_prod(
    context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, lakehouse: LakehouseResource
):
    settings = lakehouse.settings()
    settings.warn_if_development_key(context.log)
    raw_snapshots = refresh_raw_views(settings)
    context.log.info(f"dbt reads raw snapshots {raw_snapshots}")
    os.environ["SHOPLAKE_DUCKDB_PATH"] = str(settings.duckdb_path)  # dbt runs in its own process

    # Let dbt finish before touching its database file (DuckDB allows a single writer), then publish.
    args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
    started = time.perf_counter()
    invocation = dbt.cli(args, context=context, raise_on_error=False)
    events = list(invocation.stream())
    dbt_build_seconds = round(time.perf_counter() - started, 3)
    built = [
        e for e in events if isinstance(e, dg.Output | dg.AssetMaterialization) and _asset_key(context, e) is not None
    ]
    relations = []
    for event in built:
        key = _asset_key(context, event)
        if key.path[0] in PUBLISHED_SCHEMAS:
            relations.append((key.path[0], key.path[-1]))
    keys = publish_keys(shoplake_dbt_project.manifest_path)
    audited = {relation for relation in relations if relation[0] in AUDITED_NAMESPACES}
    published = publish_tables(settings, relations, context.run.run_id, keys, audited=audited)
    publish_seconds = round(sum(p.seconds for p in published.values()), 3)
    modes = Counter(p.mode for p in published.values())
    staged = sum(p.staged for p in published.values())
    context.log.info(
        f"dbt build took {dbt_build_seconds:.1f}s; published {len(published)} tables to Iceberg in "
        f"{publish_seconds:.1f}s "
        f"({', '.join(f'{n} {mode}' for mode, n in sorted(modes.items()))}); {staged} new snapshots staged on branch "
        "audit, current once their checks pass"
    )

    for event in events:
        key = _asset_key(context, event)
        if key is not None and (key.path[0], key.path[-1]) in published:
            p = published[(key.path[0], key.path[-1])]
            event = event.with_metadata(
                {
                    **(event.metadata or {}),
                    "dagster/row_count": p.rows,
                    "iceberg_table": p.identifier,
                    "iceberg_snapshot_id": str(p.snapshot_id),
                    "raw_snapshot_ids": str(raw_snapshots),
                    "publish_seconds": p.seconds,  # this table's copy to Iceberg
                    # where it went: hashing the rows, finding what changed, the Iceberg commit, the state
                    "publish_phases": ", ".join(f"{k} {v:.2f}s" for k, v in p.phases.items()),
                    "publish_mode": p.mode,  # replaced | changed rows | unchanged (snapshot kept)
                    # staged: readers see it once the quality checks pass it (write-audit-publish)
                    "published_as": "staged on branch audit" if p.staged else "current",
                    "publish_rows_written": p.rows_written,
                    "dbt_build_seconds": dbt_build_seconds,  # the whole `dbt build` of this step
                }
            )
        yield event

    if not invocation.is_successful():
        if staged:  # the quality checks will not run: readers keep the last good snapshots
            context.log.warning(f"{staged} staged snapshots are not made current: dbt failed before their checks")
        # Nothing downstream runs now, the report neither: keep this run's checks (raw scans, dbt tests)
        # in the ledger here; the next report build reports them.
        written = record_run_checks(context.instance, settings, context.run.run_id)
        context.log.info(f"recorded {written} check results of run {context.run.run_id} in the check ledger")
        scan_and_record(settings, context.run.run_id)
        raise dg.Failure(
            description=(
                "dbt build failed: see the failing models and tests above (their downstream models were skipped)."
            ),
            metadata={"dbt_log": str(invocation.get_error())},
        )


def _asset_key(context: dg.AssetExecutionContext, event) -> dg.AssetKey | None:
    if isinstance(event, dg.AssetMaterialization):
        return event.asset_key
    if isinstance(event, dg.Output):
        return context.asset_key_for_output(event.output_name)
    return None
