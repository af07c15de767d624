"""The alert sensors: low stock, the high-risk queue, failed runs, failed blocking checks and refused challengers.

Each tick first sends again what its sensor raised and a destination did not take (``retry_pending``),
then looks for something new, cheaply: the table sensors compare the current Iceberg snapshot id of
the table they watch with the one in their cursor, and read the table only when it moved; the run
sensor asks the event log for runs finished since its cursor. Other assets are named by key and jobs
not at all: this stage imports no other stage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import dagster as dg
from pyiceberg.table import Table as IcebergTable

from orchestration.defs.alerts.destinations import asset_link, run_link
from orchestration.defs.alerts.table import Alert, raise_alerts, retry_pending
from orchestration.lakehouse.catalog import load_catalog, table_or_none
from orchestration.resources import LakehouseResource

INVENTORY = dg.AssetKey(["prod", "inventory_status"])
HIGH_RISK = dg.AssetKey(["prod", "high_risk_transactions"])
GATE_SUFFIX = "_challenger_beats_champion"  # the model families' gate checks (ml_assets/registry.py)
QUEUE_LISTED = 10  # payments named in a high-risk alert; the rest are counted
RUNS_PER_TICK = 100
ERROR_CHARS = 300  # of a failed step's error in an alert; the run's page has the rest
# A tick with nothing new reads two snapshot ids and an event-log cursor, so a minute costs nothing and
# an alert is never more than about a minute behind the table or run it is about.
ALERT_SENSOR_INTERVAL_S = 60

LOW_STOCK, HIGH_RISK_KIND = "low_stock", "high_risk"
RUN_FAILED, CHECK_FAILED, CHALLENGER_REFUSED = "run_failed", "check_failed", "challenger_refused"
# The run sensor also retries the failed-run alerts: the run failure sensor's body runs only for a new failure.
RUN_KINDS = (RUN_FAILED, CHECK_FAILED, CHALLENGER_REFUSED)


def _table(settings, key: dg.AssetKey) -> IcebergTable | None:
    return table_or_none(load_catalog(settings), ".".join(key.path))


def _cursor(text: str | None) -> dict:
    return json.loads(text) if text else {}


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def low_stock_alerts_for(rows: Sequence[dict], in_episode: set[int], snapshot_id: int) -> list[Alert]:
    """One alert per product that is low on stock now and was not in the previous snapshot: the start
    of an episode. A product that stays low raises nothing; one that recovers and falls again does."""
    alerts = []
    for row in sorted(rows, key=lambda r: r["product_id"]):
        if not row["low_stock"] or row["product_id"] in in_episode:
            continue
        cover = row["days_of_cover"]
        alerts.append(
            Alert(
                alert_id=f"{LOW_STOCK}:{row['product_id']}:{snapshot_id}",
                kind=LOW_STOCK,
                subject=f"{row['sku']} {row['name']} is low on stock",
                message=(
                    f"Product {row['product_id']} ({row['sku']}, {row['name']}): {row['quantity_on_hand']} on hand, "
                    f"reorder point {row['reorder_point']}, {row['units_sold_28d']} sold in the last 28 days, "
                    f"{'no sales to run out at' if cover is None else f'{cover:.1f} days of cover'} "
                    f"(as of {row['as_of_date']})."
                ),
                link=asset_link(INVENTORY.path),
            )
        )
    return alerts


@dg.sensor(
    name="low_stock_alerts",
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts once per product when it falls into low stock (prod.inventory_status.low_stock), not "
    "again while it stays low; again after it recovered and fell back. Cursor: the snapshot read and the "
    "products in a low-stock episode.",
)
def low_stock_alerts(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    retry_pending(settings, [LOW_STOCK], context.log)
    cursor = _cursor(context.cursor)
    table = _table(settings, INVENTORY)
    snapshot = table.current_snapshot() if table is not None else None
    if snapshot is None:
        return dg.SkipReason("prod.inventory_status is not published yet")
    if snapshot.snapshot_id == cursor.get("snapshot"):
        return dg.SkipReason(f"prod.inventory_status unchanged (snapshot {snapshot.snapshot_id})")
    fields = (
        "product_id",
        "sku",
        "name",
        "quantity_on_hand",
        "reorder_point",
        "units_sold_28d",
        "days_of_cover",
        "as_of_date",
        "low_stock",
    )
    rows = table.scan(selected_fields=fields, snapshot_id=snapshot.snapshot_id).to_arrow().to_pylist()
    in_episode = set(cursor.get("low", []))
    alerts = low_stock_alerts_for(rows, in_episode, snapshot.snapshot_id)
    raise_alerts(settings, alerts, context.log)
    low = sorted(r["product_id"] for r in rows if r["low_stock"])
    return dg.SensorResult(
        skip_reason=f"{len(alerts)} product(s) fell into low stock; {len(low)} low now",
        cursor=json.dumps({"snapshot": snapshot.snapshot_id, "low": low}),
    )


def high_risk_alert_for(rows: Sequence[dict], alerted: set[int], snapshot_id: int) -> Alert | None:
    """One alert for the payments in the review queue that no earlier alert named, the most likely
    fraud first."""
    new = sorted(
        (r for r in rows if r["payment_id"] not in alerted), key=lambda r: (-r["fraud_score"], r["payment_id"])
    )
    if not new:
        return None
    listed = "; ".join(
        f"payment {r['payment_id']} (order {r['order_id']}, customer {r['customer_id']}): "
        f"{_fmt(r['amount_usd'], 2)} USD, score {r['fraud_score']:.3f}"
        + (f", signals: {r['top_signals']}" if r.get("top_signals") else "")
        for r in new[:QUEUE_LISTED]
    )
    more = f"; and {len(new) - QUEUE_LISTED} more" if len(new) > QUEUE_LISTED else ""
    total = sum(r["amount_usd"] or 0 for r in new)
    return Alert(
        alert_id=f"{HIGH_RISK_KIND}:{snapshot_id}",
        kind=HIGH_RISK_KIND,
        subject=f"{len(new)} new payment(s) in the high-risk review queue ({_fmt(total, 2)} USD)",
        message=f"New in prod.high_risk_transactions: {listed}{more}.",
        link=asset_link(HIGH_RISK.path),
    )


@dg.sensor(
    name="high_risk_alerts",
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts when payments enter the high-risk review queue (prod.high_risk_transactions): one alert "
    "per new queue snapshot, naming the payments no earlier alert named. Cursor: the snapshot read and the "
    "queued payments already alerted.",
)
def high_risk_alerts(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    retry_pending(settings, [HIGH_RISK_KIND], context.log)
    cursor = _cursor(context.cursor)
    table = _table(settings, HIGH_RISK)
    snapshot = table.current_snapshot() if table is not None else None
    if snapshot is None:
        return dg.SkipReason("prod.high_risk_transactions is not published yet")
    if snapshot.snapshot_id == cursor.get("snapshot"):
        return dg.SkipReason(f"prod.high_risk_transactions unchanged (snapshot {snapshot.snapshot_id})")
    fields = ("payment_id", "order_id", "customer_id", "amount_usd", "fraud_score", "top_signals")
    rows = table.scan(selected_fields=fields, snapshot_id=snapshot.snapshot_id).to_arrow().to_pylist()
    alert = high_risk_alert_for(rows, set(cursor.get("alerted", [])), snapshot.snapshot_id)
    raise_alerts(settings, [alert] if alert else [], context.log)
    # Only what is still queued is remembered: the cursor stays as small as the queue.
    queued = sorted(r["payment_id"] for r in rows)
    return dg.SensorResult(
        skip_reason=alert.subject if alert else "no new payment in the review queue",
        cursor=json.dumps({"snapshot": snapshot.snapshot_id, "alerted": queued}),
    )


def check_alerts_for(run_id: str, job_name: str, evaluations: Sequence[dg.AssetCheckEvaluation]) -> list[Alert]:
    """Alerts for a finished run's check evaluations: a model family's refused challenger, and every
    other blocking check that failed (the latest evaluation of each check counts)."""
    latest = {(e.asset_key, e.check_name): e for e in evaluations}
    alerts = []
    for (key, name), evaluation in latest.items():
        if evaluation.passed:
            continue
        asset = "/".join(key.path)
        description = evaluation.description or ""
        if name.endswith(GATE_SUFFIX):
            family = name[: -len(GATE_SUFFIX)]
            meta = {k: getattr(v, "value", v) for k, v in (evaluation.metadata or {}).items()}
            challenger = meta.get("challenger_version")
            alerts.append(
                Alert(
                    alert_id=f"{CHALLENGER_REFUSED}:{run_id}:{name}",
                    kind=CHALLENGER_REFUSED,
                    subject=f"{family} challenger" + (f" v{challenger}" if challenger else "") + " refused by its gate",
                    message=f"Run {run_id} ({job_name}), check {name} on {asset}: {description or 'failed'}.",
                    link=run_link(run_id),
                )
            )
        elif evaluation.blocking:
            alerts.append(
                Alert(
                    alert_id=f"{CHECK_FAILED}:{run_id}:{asset}:{name}",
                    kind=CHECK_FAILED,
                    subject=f"blocking check {name} failed on {asset}",
                    message=f"Run {run_id} ({job_name}): {description or 'failed'}; "
                    f"severity {evaluation.severity.value}. "
                    + (
                        f"Assets downstream of {asset} were not updated."
                        if evaluation.severity == dg.AssetCheckSeverity.ERROR
                        else "A warning: assets downstream still ran."
                    ),
                    link=run_link(run_id),
                )
            )
    return alerts


def _run_check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return [e.dagster_event.event_specific_data for e in entries]


@dg.sensor(
    name="check_alerts",
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts for every run that finished (green or failed) since the last tick: each blocking check "
    "that failed and each model family's challenger refused by its gate. Starts from the runs finishing after "
    "it is first turned on. Cursor: the event log's position per run outcome.",
)
def check_alerts(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    retry_pending(settings, RUN_KINDS, context.log)
    instance = context.instance
    cursor = _cursor(context.cursor)
    outcomes = (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE)
    if not cursor:  # first tick: start after the latest finished run, never alert on history
        start = {o.value: instance.fetch_run_status_changes(o, limit=1).cursor for o in outcomes}
        return dg.SensorResult(skip_reason="watching runs from now on", cursor=json.dumps(start))
    alerts, finished = [], 0
    for outcome in outcomes:
        result = instance.fetch_run_status_changes(
            outcome, limit=RUNS_PER_TICK, cursor=cursor.get(outcome.value), ascending=True
        )
        for record in result.records:
            run = instance.get_run_by_id(record.run_id)
            job_name = _job_label(run) if run is not None else "unknown job"
            alerts.extend(check_alerts_for(record.run_id, job_name, _run_check_evaluations(instance, record.run_id)))
            finished += 1
        if result.records:
            cursor[outcome.value] = result.cursor
    raise_alerts(settings, alerts, context.log)
    return dg.SensorResult(
        skip_reason=f"{finished} finished run(s) read, {len(alerts)} alert(s)", cursor=json.dumps(cursor)
    )


def run_failed_alert(run_id: str, job_name: str, failure_message: str | None, step_errors: Sequence[str]) -> Alert:
    steps = "; ".join(step_errors)
    return Alert(
        alert_id=f"{RUN_FAILED}:{run_id}",
        kind=RUN_FAILED,
        subject=f"run of {job_name} failed",
        message=f"Run {run_id} of {job_name} failed: {failure_message or 'no message'}"
        + (f" Failed steps: {steps}" if steps else ""),
        link=run_link(run_id),
    )


def _root_error(error) -> str:
    """The innermost cause of a step's error, on one line: what went wrong, not Dagster's wrapper."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    text = " ".join(line.strip() for line in (error.message or "").splitlines() if line.strip())
    text = re.sub(r"^(?:\w+\.)+(\w+):", r"\1:", text)  # dagster._core.errors.XError: -> XError:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


def _job_label(run: dg.DagsterRun) -> str:
    """A job's name, or for an ad hoc run of assets (Dagster's hidden asset jobs) the assets it ran."""
    if not run.job_name.startswith("__") or not run.asset_selection:
        return run.job_name
    keys = sorted("/".join(k.path) for k in run.asset_selection)
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


@dg.run_failure_sensor(
    name="run_failure_alerts",
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts for every failed run of this code location, naming the failed steps and their errors. "
    "Its alerts that a destination did not take are sent again by check_alerts.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, lakehouse: LakehouseResource):
    step_errors = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        step_errors.append(f"{event.step_key}: {_root_error(error) if error else event.message}")
    run = context.dagster_run
    alert = run_failed_alert(run.run_id, _job_label(run), context.failure_event.message, step_errors)
    raise_alerts(lakehouse.settings(), [alert], context.log)


ALERT_SENSORS = [low_stock_alerts, high_risk_alerts, check_alerts, run_failure_alerts]
