"""Alerts reach their destinations: a local webhook receiver and a local SMTP server on 127.0.0.1.

The sensors are evaluated as the daemon would (build_sensor_context, build_run_status_sensor_context)
against a lakehouse whose watched prod tables are written here with the publisher, and against real
Dagster runs on a temporary instance: a blocking check that fails, a challenger its gate refuses and
a run that fails. Each alert arrives once, with its content; with the webhook down, the alert waits
in prod.alerts (pending) and arrives, once, after the webhook is back.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pyarrow as pa
import pytest

from orchestration.defs.alerts import destinations
from orchestration.defs.alerts.sensors import (
    ALERT_SENSORS,
    check_alerts,
    high_risk_alerts,
    low_stock_alerts,
    run_failure_alerts,
)
from orchestration.defs.alerts.table import ALERTS_TABLE, PENDING_PROPERTY, alerts_table, pending_ids
from orchestration.lakehouse.catalog import load_catalog
from orchestration.lakehouse.publish import write_table
from orchestration.resources import LakehouseResource

DAGSTER_URL = "http://dagster.shop.example:3000"


# ---- the destinations: a webhook receiver and an SMTP server, both real sockets on 127.0.0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """Records the JSON bodies POSTed to it. Not listening until ``start()``: a webhook that is down."""

    def __init__(self):
        self.port = free_port()
        self.received: list[dict] = []
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts"

    def start(self):
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"path": self.path, "type": self.headers["Content-Type"], **json.loads(body)})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def texts(self) -> list[str]:
        return [r["text"] for r in self.received]


class SmtpServer(socketserver.ThreadingTCPServer):
    """Just enough SMTP for smtplib (EHLO, MAIL, RCPT, DATA, QUIT); records each message."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        self.messages: list[dict] = []
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str):
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self):
        self.reply("220 test SMTP")
        mail = {"rcpt": []}
        while line := self.rfile.readline().decode():
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 test")
            elif verb == "MAIL":
                mail["from"] = line.split(":", 1)[1].strip()
                self.reply("250 OK")
            elif verb == "RCPT":
                mail["rcpt"].append(line.split(":", 1)[1].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go on")
                data = []
                while (part := self.rfile.readline().decode()) not in (".\r\n", ""):
                    data.append(part)
                mail["data"] = "".join(data)
                self.server.messages.append(mail)
                mail = {"rcpt": []}
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def alert_env(shoplake_home, monkeypatch, webhook, smtp):
    """A lakehouse home with both destinations configured (the webhook not yet listening)."""
    monkeypatch.setenv("SHOPLAKE_DAGSTER_URL", DAGSTER_URL + "/")
    monkeypatch.setenv("SHOPLAKE_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("SHOPLAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SHOPLAKE_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("SHOPLAKE_SMTP_FROM", "shoplake@shop.example")
    monkeypatch.setenv("SHOPLAKE_SMTP_TO", "ops@shop.example, buyer@shop.example")
    return shoplake_home


# ---- the watched tables, written as the pipeline publishes them

INVENTORY_SCHEMA = pa.schema(
    [
        ("product_id", pa.int64()),
        ("sku", pa.string()),
        ("name", pa.string()),
        ("quantity_on_hand", pa.int64()),
        ("reorder_point", pa.int64()),
        ("units_sold_28d", pa.int64()),
        ("days_of_cover", pa.float64()),
        ("as_of_date", pa.date32()),
        ("low_stock", pa.bool_()),
    ]
)


def publish_inventory(settings, day: int, stock: dict[int, int]):
    """prod.inventory_status on day ``day``: each product sells 28 units in 28 days, reorder point 10."""
    rows = [
        {
            "product_id": pid,
            "sku": f"SKU-{pid:04d}",
            "name": f"Product {pid}",
            "quantity_on_hand": qoh,
            "reorder_point": 10,
            "units_sold_28d": 28,
            "days_of_cover": float(qoh),
            "as_of_date": dt.date(2026, 11, 1) + dt.timedelta(days=day),
            "low_stock": qoh < 10 or 2 * qoh < 28,
        }
        for pid, qoh in stock.items()
    ]
    write_table(load_catalog(settings), "prod.inventory_status", pa.Table.from_pylist(rows, INVENTORY_SCHEMA), "test")


QUEUE_SCHEMA = pa.schema(
    [
        ("payment_id", pa.int64()),
        ("order_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("amount_usd", pa.float64()),
        ("fraud_score", pa.float64()),
        ("top_signals", pa.string()),
        ("review_rank", pa.int64()),
    ]
)


def publish_queue(settings, payments: dict[int, float]):
    """prod.high_risk_transactions holding ``payments`` (payment id -> fraud score)."""
    rows = [
        {
            "payment_id": pid,
            "order_id": pid * 10,
            "customer_id": pid % 7,
            "amount_usd": 100.0 + pid,
            "fraud_score": score,
            "top_signals": "amount_vs_customer_median",
            "review_rank": rank,
        }
        for rank, (pid, score) in enumerate(sorted(payments.items(), key=lambda p: -p[1]), start=1)
    ]
    write_table(load_catalog(settings), "prod.high_risk_transactions", pa.Table.from_pylist(rows, QUEUE_SCHEMA), "test")


class Ticks:
    """Evaluates one plain sensor tick after tick, carrying its cursor as the daemon does."""

    def __init__(self, sensor, instance=None):
        self.sensor, self.instance, self.cursor = sensor, instance, None

    def __call__(self):
        context = dg.build_sensor_context(
            cursor=self.cursor, instance=self.instance, resources={"lakehouse": LakehouseResource()}
        )
        result = self.sensor(context)
        if isinstance(result, dg.SensorResult) and result.cursor is not None:
            self.cursor = result.cursor
        return result


def alert_rows(settings) -> list[dict]:
    table = alerts_table(settings)
    if table.current_snapshot() is None:
        return []
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: (r["alerted_at"], r["alert_id"]))


def subjects(smtp: SmtpServer) -> list[str]:
    return [
        next(line[9:].strip() for line in m["data"].splitlines() if line.startswith("Subject: ")) for m in smtp.messages
    ]


# ---- tests


def test_destinations_come_from_the_environment_only():
    assert destinations.configured({}) == []
    configured = destinations.configured(
        {
            "SHOPLAKE_ALERT_WEBHOOK_URL": "https://hooks.chat.example/services/T0/B0/secret-token",
            "SHOPLAKE_SMTP_HOST": "mail.shop.example",
            "SHOPLAKE_SMTP_USER": "alerts",
            "SHOPLAKE_SMTP_PASSWORD": "smtp-secret",
            "SHOPLAKE_SMTP_FROM": "shoplake@shop.example",
            "SHOPLAKE_SMTP_TO": "ops@shop.example,buyer@shop.example",
        }
    )
    assert [d.name for d in configured] == ["webhook", "email"]
    email = configured[1]
    assert (email.port, email.recipients) == (587, ("ops@shop.example", "buyer@shop.example"))
    # secrets never show in a repr (the sensor log prints objects on errors)
    assert "secret" not in repr(configured)
    with pytest.raises(destinations.DestinationMisconfigured, match="SHOPLAKE_SMTP_FROM"):
        destinations.configured({"SHOPLAKE_SMTP_HOST": "mail.shop.example"})
    with pytest.raises(destinations.DestinationMisconfigured, match="http"):
        destinations.configured({"SHOPLAKE_ALERT_WEBHOOK_URL": "hooks.chat.example/x"})
    assert destinations.run_link("abc", {}) == "http://127.0.0.1:3000/runs/abc"


def test_sensors_run_by_default_and_load_with_the_lakehouse_resource():
    assert {s.name for s in ALERT_SENSORS} == {
        "low_stock_alerts",
        "high_risk_alerts",
        "check_alerts",
        "run_failure_alerts",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in ALERT_SENSORS)
    assert all(s.minimum_interval_seconds == 60 for s in ALERT_SENSORS)
    dg.Definitions.validate_loadable(
        dg.Definitions(sensors=ALERT_SENSORS, resources={"lakehouse": LakehouseResource()})
    )


def test_low_stock_alerts_once_per_episode(alert_env, webhook, smtp):
    settings = alert_env
    webhook.start()
    tick = Ticks(low_stock_alerts)
    assert isinstance(tick(), dg.SkipReason)  # nothing published yet
    assert not load_catalog(settings).table_exists(ALERTS_TABLE)  # created by the first alert, not by a tick

    publish_inventory(settings, 0, {1: 5, 2: 40, 3: 30})  # product 1 falls into low stock
    tick()
    publish_inventory(settings, 1, {1: 3, 2: 40, 3: 30})  # still low the next day: the same episode
    tick()
    assert "unchanged" in tick().skip_message  # no new snapshot: nothing read
    publish_inventory(settings, 2, {1: 60, 2: 40, 3: 30})  # restocked: the episode ends
    tick()
    publish_inventory(settings, 3, {1: 8, 2: 12, 3: 30})  # product 1 falls again, product 2 for the first time
    tick()
    tick()

    assert len(webhook.received) == 3
    first = webhook.texts()[0]
    assert first.startswith("[Shoplake low_stock] SKU-0001 Product 1 is low on stock\n")
    assert "5 on hand, reorder point 10, 28 sold in the last 28 days, 5.0 days of cover (as of 2026-11-01)" in first
    assert first.endswith(f"\n{DAGSTER_URL}/assets/prod/inventory_status")
    assert webhook.received[0]["path"] == "/hooks/alerts" and webhook.received[0]["type"] == "application/json"
    assert "8 on hand" in webhook.texts()[1] and "(as of 2026-11-04)" in webhook.texts()[1]
    assert webhook.texts()[2].startswith("[Shoplake low_stock] SKU-0002 Product 2 is low on stock")

    assert subjects(smtp) == [
        "[Shoplake low_stock] SKU-0001 Product 1 is low on stock",
        "[Shoplake low_stock] SKU-0001 Product 1 is low on stock",
        "[Shoplake low_stock] SKU-0002 Product 2 is low on stock",
    ]
    assert smtp.messages[0]["rcpt"] == ["<ops@shop.example>", "<buyer@shop.example>"]
    assert smtp.messages[0]["from"] == "<shoplake@shop.example>"

    rows = alert_rows(settings)
    assert [(r["kind"], r["subject"], r["delivery_status"], r["delivered_to"]) for r in rows] == [
        ("low_stock", "SKU-0001 Product 1 is low on stock", "delivered", "webhook,email"),
        ("low_stock", "SKU-0001 Product 1 is low on stock", "delivered", "webhook,email"),
        ("low_stock", "SKU-0002 Product 2 is low on stock", "delivered", "webhook,email"),
    ]
    assert {r["link"] for r in rows} == {f"{DAGSTER_URL}/assets/prod/inventory_status"}


def test_high_risk_alerts_name_only_new_payments(alert_env, webhook, smtp):
    settings = alert_env
    webhook.start()
    tick = Ticks(high_risk_alerts)
    publish_queue(settings, {101: 0.91, 102: 0.97})
    tick()
    publish_queue(settings, {102: 0.97, 103: 0.88})  # 101 left the queue, 103 is new
    tick()
    publish_queue(settings, {102: 0.97, 103: 0.88})  # a new snapshot with nothing new in it
    tick()
    tick()

    texts = webhook.texts()
    assert len(texts) == 2
    assert texts[0].startswith("[Shoplake high_risk] 2 new payment(s) in the high-risk review queue (403.00 USD)\n")
    # the most likely fraud first, with its order, customer, amount, score and signals
    assert (
        "payment 102 (order 1020, customer 4): 202.00 USD, score 0.970, signals: amount_vs_customer_median; "
        "payment 101 (order 1010, customer 3): 201.00 USD, score 0.910" in texts[0]
    )
    assert texts[1].startswith("[Shoplake high_risk] 1 new payment(s) in the high-risk review queue (203.00 USD)\n")
    assert "payment 103 " in texts[1] and "payment 102 " not in texts[1]
    assert texts[1].endswith(f"\n{DAGSTER_URL}/assets/prod/high_risk_transactions")
    assert len(smtp.messages) == 2


def test_a_webhook_that_is_down_gets_the_alert_once_it_is_back(alert_env, webhook, smtp):
    settings = alert_env
    tick = Ticks(low_stock_alerts)
    publish_inventory(settings, 0, {1: 2})
    result = tick()  # the webhook refuses connections: the tick still succeeds
    assert isinstance(result, dg.SensorResult)

    (row,) = alert_rows(settings)
    assert (row["delivery_status"], row["delivered_to"], row["attempts"]) == ("pending", "email", 1)
    assert "webhook unreachable" in row["last_error"] and webhook.url not in row["last_error"]
    assert pending_ids(alerts_table(settings)) == [row["alert_id"]]

    tick()  # still down: tried again, e-mail not sent twice
    (row,) = alert_rows(settings)
    assert (row["delivery_status"], row["attempts"]) == ("pending", 2)
    assert len(smtp.messages) == 1

    webhook.start()
    tick()
    tick()
    assert len(webhook.received) == 1
    assert webhook.texts()[0].startswith("[Shoplake low_stock] SKU-0001 Product 1 is low on stock\n")
    assert len(smtp.messages) == 1
    (row,) = alert_rows(settings)
    assert (row["delivery_status"], row["delivered_to"], row["attempts"], row["last_error"]) == (
        "delivered",
        "email,webhook",
        3,
        None,
    )
    assert pending_ids(alerts_table(settings)) == []
    assert alerts_table(settings).current_snapshot().summary[PENDING_PROPERTY] == "[]"


def test_without_destinations_alerts_land_in_the_table_and_the_log(shoplake_home, capfd):
    settings = shoplake_home
    tick = Ticks(low_stock_alerts)
    publish_inventory(settings, 0, {7: 1})
    capfd.readouterr()
    tick()
    logged = capfd.readouterr().err  # the sensor's log (the daemon keeps it with the tick)
    (row,) = alert_rows(settings)
    assert (row["kind"], row["delivery_status"], row["delivered_to"], row["attempts"]) == ("low_stock", "logged", "", 0)
    assert row["link"] == "http://127.0.0.1:3000/assets/prod/inventory_status"
    assert "WARNING - ALERT low_stock: SKU-0007 Product 7 is low on stock: Product 7 (SKU-0007" in logged
    assert load_catalog(settings).load_table(ALERTS_TABLE).schema().as_arrow().names[:8] == [
        "alert_id",
        "alerted_at",
        "kind",
        "subject",
        "message",
        "link",
        "delivered_to",
        "delivery_status",
    ]


# ---- runs: a failing blocking check, a refused challenger, a failed run


@dg.asset(key=["prod", "stock_levels"])
def stock_levels():
    return 1


@dg.asset_check(asset=stock_levels, name="no_negative_stock", blocking=True)
def no_negative_stock():
    return dg.AssetCheckResult(passed=False, description="3 products have negative stock")


@dg.asset(key=["ml", "fraud_model"])
def fraud_model():
    return 1


@dg.asset_check(asset=fraud_model, name="fraud_challenger_beats_champion", blocking=True)
def fraud_gate():
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description="AUC-PR 0.412 vs champion 0.430 (needs +0.01); v3 stays champion",
        metadata={"challenger_version": "4"},
    )


@dg.asset(key=["prod", "daily_sales"])
def daily_sales():
    raise RuntimeError("source table orders is missing")


RUN_DEFS = dg.Definitions(assets=[stock_levels, fraud_model, daily_sales], asset_checks=[no_negative_stock, fraud_gate])


def launch(instance, asset: dg.AssetsDefinition) -> dg.ExecuteInProcessResult:
    """A run of one asset and its checks, as the UI launches it (Dagster's asset job, that asset selected)."""
    job = RUN_DEFS.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, asset_selection=[asset.key], raise_on_error=False)


def dagster_instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    return dg.instance_for_test(temp_dir=str(tmp_path / "dagster"))


def run_failure_tick(instance, run_id: str):
    run = instance.get_run_by_id(run_id)
    (failure,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=failure.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"lakehouse": LakehouseResource()},
    ).for_run_failure()
    run_failure_alerts(context)


def test_failed_checks_refused_challengers_and_failed_runs(alert_env, webhook, smtp, tmp_path):
    settings = alert_env
    with dagster_instance(tmp_path) as instance:
        checks = Ticks(check_alerts, instance)
        assert "from now on" in checks().skip_reason.skip_message  # earlier runs are history, never alerted

        checked = launch(instance, stock_levels)
        gated = launch(instance, fraud_model)
        failed = launch(instance, daily_sales)
        assert not checked.success and gated.success and not failed.success

        webhook.start()
        checks()
        checks()
        run_failure_tick(instance, checked.run_id)
        run_failure_tick(instance, failed.run_id)
        run_failure_tick(instance, failed.run_id)  # evaluated again (a tick that died): no second alert

    assert sorted((r["kind"], r["subject"]) for r in alert_rows(settings)) == [
        ("challenger_refused", "fraud challenger v4 refused by its gate"),
        ("check_failed", "blocking check no_negative_stock failed on prod/stock_levels"),
        ("run_failed", "run of prod/daily_sales failed"),
        ("run_failed", "run of prod/stock_levels failed"),
    ]
    texts = webhook.texts()
    assert len(texts) == 4 and len(smtp.messages) == 4

    (check_text,) = [t for t in texts if t.startswith("[Shoplake check_failed]")]
    assert (
        f"Run {checked.run_id} (prod/stock_levels): 3 products have negative stock; severity ERROR. "
        "Assets downstream of prod/stock_levels were not updated.\n" in check_text
    )
    assert check_text.endswith(f"\n{DAGSTER_URL}/runs/{checked.run_id}")

    (gate_text,) = [t for t in texts if t.startswith("[Shoplake challenger_refused]")]
    assert gate_text.startswith("[Shoplake challenger_refused] fraud challenger v4 refused by its gate\n")
    assert "AUC-PR 0.412 vs champion 0.430 (needs +0.01); v3 stays champion" in gate_text
    assert gate_text.endswith(f"\n{DAGSTER_URL}/runs/{gated.run_id}")

    run_texts = [t for t in texts if t.startswith("[Shoplake run_failed]")]
    assert len(run_texts) == 2
    (failed_text,) = [t for t in run_texts if failed.run_id in t]
    assert failed_text.startswith("[Shoplake run_failed] run of prod/daily_sales failed\n")
    assert "Failed steps: prod__daily_sales: RuntimeError: source table orders is missing\n" in failed_text
    (check_run_text,) = [t for t in run_texts if checked.run_id in t]
    assert (
        "Failed steps: prod__stock_levels_no_negative_stock: DagsterAssetCheckFailedError: 1 blocking asset "
        "check failed with ERROR severity: prod/stock_levels: no_negative_stock\n" in check_run_text
    )
    assert failed_text.endswith(f"\n{DAGSTER_URL}/runs/{failed.run_id}")
    assert {r["delivery_status"] for r in alert_rows(settings)} == {"delivered"}


def test_with_the_webhook_down_every_kind_of_alert_arrives_once_it_is_back(alert_env, webhook, smtp, tmp_path):
    settings = alert_env
    with dagster_instance(tmp_path) as instance:
        stock, queue, checks = Ticks(low_stock_alerts), Ticks(high_risk_alerts), Ticks(check_alerts, instance)
        checks()
        publish_inventory(settings, 0, {1: 4, 2: 50})
        publish_queue(settings, {201: 0.99})
        checked = launch(instance, stock_levels)
        failed = launch(instance, daily_sales)
        stock(), queue(), checks()
        run_failure_tick(instance, checked.run_id)  # the webhook is down: no sensor fails
        run_failure_tick(instance, failed.run_id)
        assert {(r["kind"], r["delivery_status"], r["delivered_to"]) for r in alert_rows(settings)} == {
            (kind, "pending", "email") for kind in ("low_stock", "high_risk", "check_failed", "run_failed")
        }
        assert len(alert_rows(settings)) == 5 and len(smtp.messages) == 5 and webhook.received == []

        webhook.start()
        for _ in range(2):  # the next tick of each sensor sends what waited; the one after, nothing
            stock(), queue(), checks()
    texts = sorted(t.split("\n", 1)[0] for t in webhook.texts())
    assert texts == [
        "[Shoplake check_failed] blocking check no_negative_stock failed on prod/stock_levels",
        "[Shoplake high_risk] 1 new payment(s) in the high-risk review queue (301.00 USD)",
        "[Shoplake low_stock] SKU-0001 Product 1 is low on stock",
        "[Shoplake run_failed] run of prod/daily_sales failed",
        "[Shoplake run_failed] run of prod/stock_levels failed",
    ]
    assert len(smtp.messages) == 5
    assert {(r["delivery_status"], r["delivered_to"]) for r in alert_rows(settings)} == {("delivered", "email,webhook")}
    assert pending_ids(alerts_table(settings)) == []
