"""Freshness mode (issue 21): `shoplake simulate --rate` and the source-change sensor.

The sensor is evaluated as the daemon would (build_sensor_context with the real definitions and a
temporary instance) against a small demo shop: an unchanged source launches nothing, a change to one
table launches exactly that table's extraction and what is downstream of it (training excluded), and
a deleted row is a change.
"""

import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.contract.database import SourceDatabase
from orchestration.defs.freshness.markers import changed_tables, read_markers
from orchestration.policies import FRESHNESS_TAG, TRAINING_TAG, WRITER_TAG
from orchestration.resources import LakehouseResource
from tests.conftest import clean_environ

SHOPLAKE = str(Path(sys.executable).parent / "shoplake")


@pytest.fixture
def small_shop(shoplake_home):
    subprocess.run(
        [SHOPLAKE, "generate", "--customers", "150", "--days", "60", "--quiet"],
        env=clean_environ(shoplake_home.home),
        check=True,
        capture_output=True,
    )
    return shoplake_home


def copy_row(path: Path, table: str) -> int:
    """Insert a copy of the table's first row under a new key, stamped now; returns the new key."""
    con = sqlite3.connect(path)
    try:
        columns = [row[1] for row in con.execute(f'PRAGMA table_info("{table}")')]
        pk = columns[0]
        (key,) = con.execute(f'SELECT MAX("{pk}") + 1 FROM "{table}"').fetchone()
        values = [
            "?" if c == pk else "strftime('%Y-%m-%d %H:%M:%f', 'now')" if c == "updated_at" else f'"{c}"'
            for c in columns
        ]
        con.execute(
            f'INSERT INTO "{table}" ({", ".join(columns)}) SELECT {", ".join(values)} FROM "{table}" LIMIT 1', [key]
        )
        con.commit()
        return key
    finally:
        con.close()


class Ticks:
    """Evaluates the source-change sensor tick after tick, keeping its cursor as the daemon does."""

    def __init__(self, instance):
        from orchestration.definitions import defs

        self.repository, self.instance, self.cursor = defs.get_repository_def(), instance, None
        self.sensor = self.repository.get_sensor_def("source_changes")

    def __call__(self):
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            repository_def=self.repository,
            sensor_name="source_changes",
            resources={"lakehouse": LakehouseResource()},
        )
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor or self.cursor
        return data

    def expected(self, table: str) -> set[dg.AssetKey]:
        graph = self.repository.asset_graph
        training = dg.AssetSelection.tag(TRAINING_TAG, "training")
        return (dg.AssetSelection.assets(dg.AssetKey(["raw", table])).downstream() - training).resolve(graph)


@pytest.fixture
def ticks(small_shop):
    with dg.instance_for_test() as instance:
        yield Ticks(instance)


def test_sensor_is_off_by_default_and_targets_the_daily_job():
    from orchestration.definitions import defs

    sensor = defs.get_repository_def().get_sensor_def("source_changes")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == "daily_refresh"
    assert sensor.minimum_interval_seconds == 60


def test_unchanged_source_launches_nothing(ticks):
    first = ticks()
    assert not first.run_requests
    assert first.skip_message.startswith("first look: markers of 13 tables recorded")
    for _ in range(2):
        again = ticks()
        assert not again.run_requests
        assert again.skip_message.startswith("no source table changed")


def test_one_changed_table_launches_it_and_its_downstream_only(ticks, small_shop):
    ticks()
    copy_row(SourceDatabase(small_shop.source_url).sqlite_path, "payments")
    data = ticks()
    assert len(data.run_requests) == 1
    request = data.run_requests[0]
    assert set(request.asset_selection) == ticks.expected("payments")
    assert {k.to_user_string() for k in request.asset_selection} == {
        "raw/payments",
        "quarantine/payments",
        "curated/payments",
        "prod/fct_payments",
        "prod/fraud_scores",
        "prod/high_risk_transactions",
        "prod/compliance_report",
    }
    assert request.tags == {
        **WRITER_TAG,  # queues behind any other writer
        **FRESHNESS_TAG,
        "shoplake/changed_tables": "payments",
        "dagster/sensor_name": "source_changes",  # how a tick finds its own runs still waiting
    }
    # the launched change is in the cursor: the next tick is quiet again
    assert not ticks().run_requests


def test_a_deleted_row_is_a_change(ticks, small_shop):
    path = SourceDatabase(small_shop.source_url).sqlite_path
    ticks()
    con = sqlite3.connect(path)
    # the oldest event: the greatest updated_at stays, only the count tells
    con.execute("DELETE FROM web_events WHERE event_id = (SELECT event_id FROM web_events ORDER BY updated_at LIMIT 1)")
    con.commit()
    con.close()
    data = ticks()
    assert len(data.run_requests) == 1
    assert set(data.run_requests[0].asset_selection) == ticks.expected("web_events")
    assert data.run_requests[0].tags["shoplake/changed_tables"] == "web_events"


def test_markers_of_a_missing_table_are_none_and_never_a_change(shoplake_home):
    db = SourceDatabase(shoplake_home.source_url)
    con = db.connect(create=True)
    con.execute('CREATE TABLE "orders" (order_id INTEGER PRIMARY KEY, updated_at TEXT)')
    con.execute("INSERT INTO orders VALUES (1, '2026-01-01 00:00:00.000')")
    con.commit()
    con.close()
    markers = read_markers(db, ["orders", "payments"])
    assert markers == {"orders": ("2026-01-01 00:00:00.000", 1), "payments": None}
    assert changed_tables({}, markers) == ["orders"]
    assert changed_tables({"orders": ["2026-01-01 00:00:00.000", 1]}, markers) == []


def test_simulate_rate_streams_consistent_activity(small_shop):
    from demo_shop.simulate import simulate_shop, stream_shop

    path = SourceDatabase(small_shop.source_url).sqlite_path

    def count(table):
        con = sqlite3.connect(path)
        try:
            return con.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        finally:
            con.close()

    before = {t: count(t) for t in ("orders", "order_items", "payments")}
    lines = []
    summary = stream_shop(
        600, small_shop.source_url, small_shop.truth_dir, step_seconds=0.2, echo=lines.append, max_steps=4
    )
    assert summary["days"] >= 1 and summary["steps"] >= 4
    assert summary["orders"] > 0
    for table in before:  # what it says it wrote is what arrived
        assert count(table) == before[table] + summary["inserted"][table] - summary["deleted"][table]
    assert lines[0].startswith("streaming about 600 orders a minute")
    assert sum("complete:" in line for line in lines) == summary["days"]
    con = sqlite3.connect(path)
    try:
        orphans = con.execute(
            "SELECT (SELECT COUNT(*) FROM order_items i LEFT JOIN orders o ON o.order_id = i.order_id"
            "        WHERE o.order_id IS NULL),"
            "       (SELECT COUNT(*) FROM payments p LEFT JOIN orders o ON o.order_id = p.order_id"
            "        WHERE o.order_id IS NULL),"
            "       (SELECT COUNT(*) FROM orders o WHERE NOT EXISTS"
            "        (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id))"
        ).fetchone()
    finally:
        con.close()
    assert orphans == (0, 0, 0)
    # it stopped at the end of a day: the shop continues from where the stream left it
    assert simulate_shop(1, small_shop.source_url, small_shop.truth_dir, progress=False)["days"] == 1
