"""``prod.alerts``: every alert raised, whether and where it was delivered; delivery with retries.

An alert has an id its sensor derives from what it is about (a run and check, a product's episode,
a queue snapshot), so raising the same alert twice (a tick that died after its delivery) adds no row.
New alerts are logged, sent to every configured destination and appended in one commit. One that a
destination did not take stays ``pending`` with the destinations that did take it in ``delivered_to``;
the sensor that raised it sends it again, to the others only, on its next tick.

Which alerts are pending is kept in the property ``shoplake.alerts_pending`` of the table's current
snapshot (a JSON list of ids), so a tick with nothing pending reads the table's metadata, not its
files. Each sensor retries only the kinds it raises (``retry_pending(kinds=...)``): two sensors never
send the same alert.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.expressions import In
from pyiceberg.table import Table as IcebergTable

from orchestration.defs.alerts.destinations import DeliveryFailed, Destination, configured
from orchestration.lakehouse.catalog import (
    commit_with_retry,
    load_catalog,
    load_or_create,
    snapshot_property,
    table_or_none,
)
from orchestration.settings import Settings

ALERTS_TABLE = "prod.alerts"
PENDING_PROPERTY = "shoplake.alerts_pending"
WRITER_PROPERTY = "shoplake.dagster_run_id"  # as publish.PUBLISHED_BY_PROPERTY: who wrote the snapshot

DELIVERED, PENDING, LOGGED = "delivered", "pending", "logged"  # logged: no destination configured

SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("alerted_at", pa.timestamp("us")),
        ("kind", pa.string()),  # low_stock | high_risk | run_failed | check_failed | challenger_refused
        ("subject", pa.string()),
        ("message", pa.string()),
        ("link", pa.string()),  # the run or asset in the Dagster UI
        ("delivered_to", pa.string()),  # comma-separated destinations that took it: webhook, email
        ("delivery_status", pa.string()),  # delivered | pending | logged
        ("attempts", pa.int64()),
        ("last_error", pa.string()),
    ]
)


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    subject: str
    message: str
    link: str
    alerted_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))

    def __post_init__(self):
        if not self.alert_id.startswith(f"{self.kind}:"):  # retry_pending finds a sensor's alerts by this prefix
            raise ValueError(f"alert id {self.alert_id!r} must start with its kind, {self.kind!r}, and a colon")


def alerts_table(settings: Settings) -> IcebergTable:
    return load_or_create(load_catalog(settings), ALERTS_TABLE, SCHEMA)


def pending_ids(table: IcebergTable) -> list[str]:
    return json.loads(snapshot_property(table, PENDING_PROPERTY) or "[]")


def _deliver(row: dict, destinations: Sequence[Destination], down: dict[str, str], log) -> dict:
    """Send ``row`` to the destinations that have not taken it yet; returns the updated row. A
    destination that failed once in this tick (``down``) is not tried again in it."""
    delivered = [d for d in (row["delivered_to"] or "").split(",") if d]
    errors = []
    alert = Alert(row["alert_id"], row["kind"], row["subject"], row["message"], row["link"])
    for destination in destinations:
        if destination.name in delivered:
            continue
        if destination.name in down:
            errors.append(down[destination.name])
            continue
        try:
            destination.send(alert)
            delivered.append(destination.name)
        except DeliveryFailed as error:
            down[destination.name] = str(error)
            errors.append(str(error))
            log.warning(f"Alert {row['alert_id']} not delivered to {destination.name} (retried next tick): {error}")
    names = {d.name for d in destinations}
    missing = names - set(delivered)
    status = PENDING if missing else (DELIVERED if delivered else LOGGED)
    return {
        **row,
        "delivered_to": ",".join(delivered),
        "delivery_status": status,
        "attempts": (row["attempts"] or 0) + (1 if names else 0),
        "last_error": "; ".join(errors) or None,
    }


def _commit(table: IcebergTable, rows: list[dict], replaced: Iterable[str] = ()) -> IcebergTable:
    """Write ``rows`` (replacing the rows of ``replaced`` ids) and the pending list in one commit per
    attempt; the pending list is recomputed from the table's state at each attempt."""
    data = pa.Table.from_pylist(rows, schema=SCHEMA)
    replaced = sorted(set(replaced))
    now_pending = {r["alert_id"] for r in rows if r["delivery_status"] == PENDING}
    touched = {r["alert_id"] for r in rows}

    def write(t: IcebergTable) -> None:
        pending = sorted((set(pending_ids(t)) - touched) | now_pending)
        properties = {PENDING_PROPERTY: json.dumps(pending), WRITER_PROPERTY: "alerts"}
        if replaced:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                t.overwrite(data, overwrite_filter=In("alert_id", replaced), snapshot_properties=properties)
        else:
            t.append(data, snapshot_properties=properties)

    return commit_with_retry(table, write)


def existing_ids(table: IcebergTable, ids: Sequence[str]) -> set[str]:
    if not ids or table.current_snapshot() is None:
        return set()
    found = table.scan(row_filter=In("alert_id", list(ids)), selected_fields=("alert_id",)).to_arrow()
    return set(found.column("alert_id").to_pylist())


def raise_alerts(
    settings: Settings, alerts: Sequence[Alert], log, destinations: Sequence[Destination] | None = None
) -> list[dict]:
    """Log, deliver and record the alerts not raised before (by id); returns their rows as recorded."""
    if not alerts:
        return []
    destinations = configured() if destinations is None else destinations
    table = alerts_table(settings)
    known = existing_ids(table, [a.alert_id for a in alerts])
    fresh, seen = [], set(known)
    for alert in alerts:
        if alert.alert_id not in seen:
            seen.add(alert.alert_id)
            fresh.append(alert)
    down: dict[str, str] = {}
    rows = []
    for alert in fresh:
        log.warning(f"ALERT {alert.kind}: {alert.subject}: {alert.message} ({alert.link})")
        row = {
            "alert_id": alert.alert_id,
            "alerted_at": alert.alerted_at,
            "kind": alert.kind,
            "subject": alert.subject,
            "message": alert.message,
            "link": alert.link,
            "delivered_to": "",
            "delivery_status": PENDING,
            "attempts": 0,
            "last_error": None,
        }
        rows.append(_deliver(row, destinations, down, log))
    if rows:
        _commit(table, rows)
    return rows


def retry_pending(
    settings: Settings, kinds: Iterable[str], log, destinations: Sequence[Destination] | None = None
) -> list[dict]:
    """Send the pending alerts of ``kinds`` again, to the destinations that have not taken them;
    returns their rows as recorded now. Reads only the table's metadata when none is pending."""
    kinds = tuple(kinds)
    table = table_or_none(load_catalog(settings), ALERTS_TABLE)  # no table yet: nothing was ever raised
    ids = [i for i in pending_ids(table) if i.split(":", 1)[0] in kinds] if table is not None else []
    if not ids:
        return []
    destinations = configured() if destinations is None else destinations
    rows = table.scan(row_filter=In("alert_id", ids)).to_arrow().select(SCHEMA.names).cast(SCHEMA).to_pylist()
    down: dict[str, str] = {}
    retried = [_deliver(row, destinations, down, log) for row in rows if row["delivery_status"] == PENDING]
    delivered = [r for r in retried if r["delivery_status"] != PENDING]
    if delivered:
        log.info(f"{len(delivered)} pending alert(s) delivered: {', '.join(r['alert_id'] for r in delivered)}")
    if retried:
        _commit(table, retried, replaced=[r["alert_id"] for r in retried])
    return retried
