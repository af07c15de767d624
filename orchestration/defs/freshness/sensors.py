"""The source-change sensor: a micro-batch when the source changed, nothing when it did not.

Every SHOPLAKE_FRESHNESS_INTERVAL seconds (default 60) it reads each source table's change marker
(markers.py) and compares them with the markers in its cursor. Unchanged: a SkipReason, no run. Some
tables changed: one run of their ``raw`` assets and everything downstream of them that the daily
refresh builds (training stays weekly), with the writer tag so it queues behind any other writer.
While a run it launched still waits in the queue, it launches no other: the changes add up and the
next tick after that run starts takes them all. The first tick only records the markers.

Assets are named by key and the job by name: this stage imports no other stage.
"""

from __future__ import annotations

import json
import time

import dagster as dg

from orchestration.contract.database import SourceDatabase, SourceUnavailable
from orchestration.defs.freshness.markers import changed_tables, read_markers
from orchestration.lakehouse.digests import letters_digest
from orchestration.policies import FRESHNESS_INTERVAL_S, FRESHNESS_JOB, FRESHNESS_TAG, WRITER_TAG
from orchestration.resources import LakehouseResource

SENSOR_NAME = "source_changes"
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


def micro_batch_selection(repository_def: dg.RepositoryDefinition, tables: list[str]) -> list[dg.AssetKey]:
    """The changed tables' raw assets and what is downstream of them, within the freshness job's assets."""
    job_keys = set(repository_def.get_job(FRESHNESS_JOB).asset_layer.executable_asset_keys)
    downstream = dg.AssetSelection.assets(*(raw_key(t) for t in tables)).downstream()
    return sorted(downstream.resolve(repository_def.asset_graph) & job_keys, key=lambda k: k.path)


def _waiting_runs(context: dg.SensorEvaluationContext) -> int:
    return context.instance.get_runs_count(
        dg.RunsFilter(statuses=WAITING, tags={"dagster/sensor_name": context.sensor_name or SENSOR_NAME})
    )


@dg.sensor(
    name=SENSOR_NAME,
    job_name=FRESHNESS_JOB,
    minimum_interval_seconds=FRESHNESS_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Freshness mode: every SHOPLAKE_FRESHNESS_INTERVAL seconds (default 60), reads each source "
    "table's greatest updated_at and row count; when some changed, runs their extraction and only what is "
    "downstream of them (no training). No change, no run. Cursor: the markers last seen.",
)
def source_changes(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    db = SourceDatabase(
        settings.source_url, connect_timeout=settings.source_connect_timeout, read_timeout=settings.source_read_timeout
    )
    started = time.perf_counter()
    try:
        markers = read_markers(db)
    except SourceUnavailable as exc:
        return dg.SkipReason(f"source not readable, markers kept: {exc}")
    seconds = time.perf_counter() - started
    if context.cursor is None:
        context.update_cursor(json.dumps(markers, sort_keys=True))
        return dg.SkipReason(f"first look: markers of {len(markers)} tables recorded ({seconds * 1000:.0f} ms)")
    previous = json.loads(context.cursor)
    changed = changed_tables(previous, markers)
    if not changed:
        return dg.SkipReason(f"no source table changed ({len(markers)} markers read in {seconds * 1000:.0f} ms)")
    waiting = _waiting_runs(context)
    if waiting:
        return dg.SkipReason(f"{', '.join(changed)} changed; a micro-batch still waits to start, the changes add up")
    if context.repository_def is None:
        raise dg.DagsterInvariantViolationError("the source-change sensor needs its code location's definitions")
    selection = micro_batch_selection(context.repository_def, changed)
    context.update_cursor(json.dumps(markers, sort_keys=True))
    context.log.info(
        f"source tables changed: {', '.join(changed)}; {len(selection)} assets to build "
        f"(markers read in {seconds * 1000:.0f} ms)"
    )
    run_key = letters_digest(json.dumps(markers, sort_keys=True))
    return dg.RunRequest(
        run_key=f"source-changes-{run_key}",
        asset_selection=selection,
        tags={**WRITER_TAG, **FRESHNESS_TAG, "shoplake/changed_tables": ",".join(changed)},
    )


FRESHNESS_SENSORS = [source_changes]
