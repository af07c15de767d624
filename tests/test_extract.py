"""Change capture into Iceberg raw: exactly once, deletes as markers, cards never in clear."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from orchestration.contract import schema
from orchestration.contract.database import SourceDatabase, SourceUnavailable
from orchestration.defs.extract import extract_table as et
from orchestration.defs.extract import key_state
from orchestration.defs.extract.key_state import KeyState
from orchestration.lakehouse.catalog import load_catalog, snapshot_property
from orchestration.lakehouse.pii import keyed_token

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000)
PAYMENTS = schema.table("payments")
TICKETS = schema.table("support_tickets")


def payment(
    pid: int, updated_at: dt.datetime, status: str = "captured", card: str | None = "4539 1488 0343 6467"
) -> dict:
    return {
        "payment_id": pid,
        "order_id": pid,
        "method": "card" if card else "paypal",
        "card_number": card,
        "card_country": "US" if card else None,
        "ip_country": "US",
        "device_type": "mobile",
        "amount": Decimal("1234.56"),
        "currency": "USD",
        "status": status,
        "paid_at": T0,
        "chargeback_at": None,
        "updated_at": updated_at,
    }


def insert(settings, table: schema.Table, rows: list[dict]) -> None:
    db = SourceDatabase(settings.source_url)
    con = db.connect(create=True)
    db.insert(con, table.name, pa.Table.from_pylist(rows, schema=table.arrow_schema()))
    con.commit()
    con.close()


def execute(settings, sql: str) -> None:
    db = SourceDatabase(settings.source_url)
    con = db.connect()
    con.execute(sql)
    con.commit()
    con.close()


def raw_rows(settings, name: str) -> list[dict]:
    rows = load_catalog(settings).load_table(f"raw.{name}").scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda r: (r["_extracted_at"], r["payment_id"] if "payment_id" in r else 0))


@pytest.fixture
def source(shoplake_home):
    SourceDatabase(shoplake_home.source_url).create_schema(drop_existing=True)
    return shoplake_home


def test_first_run_captures_everything_and_tokenizes_cards(source):
    insert(source, PAYMENTS, [payment(1, T0), payment(2, T0, card=None)])
    result = et.extract_table(PAYMENTS, source, run_id="run-1")
    assert (result.inserted, result.updated, result.deleted) == (2, 0, 0)
    rows = raw_rows(source, "payments")
    assert "card_number" not in rows[0]
    assert (rows[0]["card_bin"], rows[0]["card_last4"]) == ("453914", "6467")
    assert rows[0]["card_token"] == keyed_token("4539148803436467", source.pii_key)
    assert rows[1]["card_token"] is None
    assert rows[0]["amount"] == Decimal("1234.56")
    assert rows[0]["updated_at"] == T0  # milliseconds survive
    ice = load_catalog(source).load_table("raw.payments")
    assert snapshot_property(ice, et.WATERMARK_PROPERTY) == "2026-03-01T12:00:00.250"
    assert snapshot_property(ice, et.RUN_ID_PROPERTY) == "run-1"


def test_rerun_without_changes_commits_nothing(source):
    insert(source, PAYMENTS, [payment(1, T0)])
    first = et.extract_table(PAYMENTS, source, run_id="run-1")
    again = et.extract_table(PAYMENTS, source, run_id="run-2")
    assert again.rows_written == 0 and again.snapshot_id is None
    assert len(raw_rows(source, "payments")) == 1
    assert again.watermark == first.watermark


def test_rows_sharing_the_watermark_millisecond_are_not_lost(source):
    insert(source, PAYMENTS, [payment(1, T0), payment(2, T0)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    # Committed late with the very same millisecond as the watermark, plus an update to that millisecond.
    insert(source, PAYMENTS, [payment(3, T0)])
    execute(
        source, "UPDATE payments SET status = 'refunded', updated_at = '2026-03-01 12:00:00.250' WHERE payment_id = 2"
    )
    execute(
        source, "UPDATE payments SET status = 'chargeback', updated_at = '2026-03-02 08:00:00.001' WHERE payment_id = 1"
    )
    result = et.extract_table(PAYMENTS, source, run_id="run-2")
    # payment 2's updated_at did not move, so that change is indistinguishable from no change: a source
    # must advance updated_at on update (ON UPDATE CURRENT_TIMESTAMP(3) in the DDL does).
    assert (result.inserted, result.updated, result.deleted) == (1, 1, 0)
    latest = {r["payment_id"]: r["status"] for r in raw_rows(source, "payments")}
    assert latest[1] == "chargeback" and latest[3] == "captured"
    assert len(raw_rows(source, "payments")) == 4


def test_hard_deletes_become_delete_markers(source):
    insert(source, PAYMENTS, [payment(1, T0), payment(2, T0)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    execute(source, "DELETE FROM payments WHERE payment_id = 2")
    result = et.extract_table(PAYMENTS, source, run_id="run-2")
    assert (result.inserted, result.updated, result.deleted) == (0, 0, 1)
    marker = [r for r in raw_rows(source, "payments") if r["_op"] == "delete"]
    assert len(marker) == 1 and marker[0]["payment_id"] == 2 and marker[0]["status"] is None
    # A second run does not delete it again, and a re-inserted key comes back as an insert.
    assert et.extract_table(PAYMENTS, source, run_id="run-3").rows_written == 0
    insert(source, PAYMENTS, [payment(2, T0 + dt.timedelta(days=1))])
    assert et.extract_table(PAYMENTS, source, run_id="run-4").inserted == 1


def test_full_refresh_adds_no_duplicates(source):
    insert(source, PAYMENTS, [payment(i, T0) for i in range(1, 51)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    result = et.extract_table(PAYMENTS, source, run_id="run-2", full_refresh=True)
    assert result.rows_read == 50 and result.rows_written == 0


def test_card_numbers_in_free_text_are_masked_before_disk(source):
    ticket = {
        "ticket_id": 1,
        "customer_id": 1,
        "order_id": None,
        "topic": "payment",
        "body": "my card 4539-1488-0343-6467 was charged twice",
        "status": "open",
        "satisfaction": None,
        "created_at": T0,
        "resolved_at": None,
        "updated_at": T0,
    }
    insert(source, TICKETS, [ticket])
    result = et.extract_table(TICKETS, source, run_id="run-1")
    assert result.card_numbers_masked == 1
    body = load_catalog(source).load_table("raw.support_tickets").scan().to_arrow().column("body")[0].as_py()
    assert body == "my card [card ****6467] was charged twice"


def test_crash_before_commit_leaves_raw_as_it_was(source, monkeypatch):
    insert(source, PAYMENTS, [payment(1, T0)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    insert(source, PAYMENTS, [payment(2, T0 + dt.timedelta(hours=1))])

    def crash(*args, **kwargs):
        raise RuntimeError("killed between read and commit")

    # Data files of the new rows are already written when delete detection runs: the crash must
    # still leave the table as it was, because only the final commit makes them part of it.
    monkeypatch.setattr(et, "_delete_markers", crash)
    with pytest.raises(RuntimeError):
        et.extract_table(PAYMENTS, source, run_id="run-2")
    assert len(raw_rows(source, "payments")) == 1
    monkeypatch.undo()
    result = et.extract_table(PAYMENTS, source, run_id="run-3")
    assert result.inserted == 1 and len(raw_rows(source, "payments")) == 2


def test_missing_demo_shop_is_a_clear_error(shoplake_home):
    with pytest.raises(SourceUnavailable, match="shoplake generate"):
        et.extract_table(PAYMENTS, shoplake_home, run_id="run-1")


@pytest.mark.mariadb
def test_unreachable_mysql_is_a_clear_error(shoplake_home):
    settings = shoplake_home.__class__.from_env(
        {"SHOPLAKE_HOME": str(shoplake_home.home), "SHOPLAKE_SOURCE_URL": "mysql://shop:secret@127.0.0.1:1/shop"}
    )
    with pytest.raises(SourceUnavailable) as err:
        et.extract_table(PAYMENTS, settings, run_id="run-1")
    assert "127.0.0.1" in str(err.value) and "secret" not in str(err.value)


def test_chunked_reads_commit_once_and_equal_a_single_read(source):
    insert(source, PAYMENTS, [payment(i, T0 + dt.timedelta(seconds=i)) for i in range(1, 1001)])
    result = et.extract_table(PAYMENTS, source, run_id="run-1", chunk_rows=64)
    assert (result.rows_read, result.inserted) == (1000, 1000)
    ice = load_catalog(source).load_table("raw.payments")
    # Many chunks, many data files, one metadata commit: readers saw nothing until it was complete.
    assert len(ice.inspect.files()) > 10
    assert ice.metadata_location.split("/")[-1].startswith("00001-")
    assert sorted(r["payment_id"] for r in raw_rows(source, "payments")) == list(range(1, 1001))
    assert snapshot_property(ice, et.WATERMARK_PROPERTY) == (T0 + dt.timedelta(seconds=1000)).isoformat(
        timespec="milliseconds"
    )


def test_new_source_column_evolves_raw(source):
    insert(source, PAYMENTS, [payment(1, T0)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    execute(source, "ALTER TABLE payments ADD COLUMN risk_note TEXT")
    execute(source, "UPDATE payments SET risk_note = 'manual review', updated_at = '2026-03-02 00:00:00.000'")
    result = et.extract_table(PAYMENTS, source, run_id="run-2")
    assert result.updated == 1
    rows = raw_rows(source, "payments")
    assert [r["risk_note"] for r in rows] == [None, "manual review"]


def test_dropped_contract_column_stops_that_table_and_commits_nothing(source):
    insert(source, PAYMENTS, [payment(1, T0)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    before = load_catalog(source).load_table("raw.payments").metadata_location
    execute(source, "ALTER TABLE payments DROP COLUMN device_type")
    with pytest.raises(
        et.SchemaDrift, match=r"source table payments: column device_type \(VARCHAR\(20\)\) was dropped"
    ):
        et.extract_table(PAYMENTS, source, run_id="run-2")
    assert load_catalog(source).load_table("raw.payments").metadata_location == before


def _state_files(settings) -> list:
    location = load_catalog(settings).load_table("raw.payments").location().removeprefix("file://")
    return sorted((Path(location) / "key_state").glob("*.arrow"))


def test_key_state_committed_with_each_snapshot_equals_raw_rebuilt(source):
    insert(source, PAYMENTS, [payment(i, T0) for i in range(1, 6)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    execute(
        source, "UPDATE payments SET status = 'refunded', updated_at = '2026-03-02 00:00:00.000' WHERE payment_id = 3"
    )
    execute(source, "DELETE FROM payments WHERE payment_id IN (1, 4)")
    et.extract_table(PAYMENTS, source, run_id="run-2")
    insert(source, PAYMENTS, [payment(4, T0 + dt.timedelta(days=2)), payment(9, T0 + dt.timedelta(days=2))])
    et.extract_table(PAYMENTS, source, run_id="run-3")

    ice = load_catalog(source).load_table("raw.payments")
    stored = KeyState.load(PAYMENTS, ice, source)
    rebuilt = KeyState.load(PAYMENTS, ice, source, rebuild=True)
    assert (stored.origin, rebuilt.origin) == ("stored", "rebuilt from raw")
    live = {2: T0, 3: dt.datetime(2026, 3, 2), 4: T0 + dt.timedelta(days=2), 5: T0, 9: T0 + dt.timedelta(days=2)}
    for state in (stored, rebuilt):
        assert dict(sorted(zip(*state.live.sort_by("payment_id").to_pydict().values()))) == live
    # Only the state the current snapshot names is kept; superseded ones are removed.
    assert [p.as_posix() for p in _state_files(source)] == [
        snapshot_property(ice, key_state.STATE_PROPERTY).removeprefix("file://")
    ]


def test_lost_key_state_is_rebuilt_from_raw_and_counts_stay_exact(source):
    insert(source, PAYMENTS, [payment(i, T0) for i in range(1, 4)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    for path in _state_files(source):
        path.unlink()
    execute(source, "DELETE FROM payments WHERE payment_id = 2")
    execute(
        source, "UPDATE payments SET status = 'refunded', updated_at = '2026-03-02 00:00:00.000' WHERE payment_id = 3"
    )
    result = et.extract_table(PAYMENTS, source, run_id="run-2")
    assert (result.inserted, result.updated, result.deleted) == (0, 1, 1)
    assert len(_state_files(source)) == 1


def test_a_failed_commit_leaves_no_key_state_behind(source, monkeypatch):
    insert(source, PAYMENTS, [payment(1, T0)])
    et.extract_table(PAYMENTS, source, run_id="run-1")
    before = _state_files(source)
    insert(source, PAYMENTS, [payment(2, T0 + dt.timedelta(hours=1))])

    def crash(self):
        raise RuntimeError("catalog unreachable at commit")

    monkeypatch.setattr("pyiceberg.table.Transaction.commit_transaction", crash)
    with pytest.raises(RuntimeError, match="catalog unreachable"):
        et.extract_table(PAYMENTS, source, run_id="run-2")
    assert _state_files(source) == before
    monkeypatch.undo()
    assert et.extract_table(PAYMENTS, source, run_id="run-3").inserted == 1


def test_key_membership_is_the_same_for_dense_sparse_and_composite_keys():
    dense = KeyState(PAYMENTS, pa.table({"payment_id": [1, 2, 3, 5], "updated_at": [T0] * 4}), "test")
    assert dense.gone(pa.table({"payment_id": [2, 3, 4]})).column("payment_id").to_pylist() == [1, 5]
    # a key this run read (deleted and re-inserted while the key scan ran) is not gone
    assert dense.gone(pa.table({"payment_id": [2, 3]}), [pa.table({"payment_id": [5]})]).column(
        "payment_id"
    ).to_pylist() == [1]
    sparse = KeyState(PAYMENTS, pa.table({"payment_id": [1, 10**15, 7], "updated_at": [T0] * 3}), "test")
    assert sparse.gone(pa.table({"payment_id": [10**15]})).column("payment_id").to_pylist() == [1, 7]
    fx = schema.table("fx_rates")
    rates = KeyState(
        fx,
        pa.table(
            {
                "rate_date": [dt.date(2026, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 1, 2)],
                "currency": ["EUR", "GBP", "EUR"],
                "updated_at": [T0] * 3,
            }
        ),
        "test",
    )
    gone = rates.gone(pa.table({"rate_date": [dt.date(2026, 1, 1)], "currency": ["GBP"]}))
    assert gone.to_pylist() == [
        {"rate_date": dt.date(2026, 1, 1), "currency": "EUR"},
        {"rate_date": dt.date(2026, 1, 2), "currency": "EUR"},
    ]


def test_raw_card_scan_reads_only_what_raw_gained_since_it_last_passed(source):
    import dagster as dg

    from orchestration.defs.extract.assets import extract_source_tables
    from orchestration.resources import LakehouseResource

    def extract():
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                [extract_source_tables],
                selection=[dg.AssetKey(["raw", "payments"])],
                resources={"lakehouse": LakehouseResource()},
                instance=instance,
                raise_on_error=False,
            )
        [scan] = result.get_asset_check_evaluations()
        return scan.passed, scan.metadata["rows_scanned"].value, scan.metadata["scope"].value

    insert(source, PAYMENTS, [payment(1, T0), payment(2, T0)])
    assert extract() == (True, 2, "whole table")
    insert(source, PAYMENTS, [payment(3, T0 + dt.timedelta(seconds=1))])
    passed, rows, scope = extract()
    assert (passed, rows) == (True, 1) and scope.startswith("1 of 2 files (1 of 3 rows) added since snapshot")

    # A card number that reached raw some other way: found in the files added since the last pass,
    # and found again on the next run although raw gained nothing, since a failure is never a base.
    raw = load_catalog(source).load_table("raw.payments")
    leaked = raw.scan(limit=1).to_arrow()
    leaked = leaked.set_column(
        leaked.schema.get_field_index("_dagster_run_id"), "_dagster_run_id", pa.array(["4539148803436467"])
    )
    raw.append(leaked)
    assert extract()[:2] == (False, 1)
    assert extract()[:2] == (False, 1)


EMPTIED = ("returns", "support_tickets", "web_events")


@pytest.mark.slow
def test_a_shop_with_no_returns_tickets_or_web_events_builds_every_prod_table(shoplake_home):
    """A young shop: nothing returned, no ticket, no clickstream yet. Extraction used to take the max of
    no rows, and dbt then found no raw view to read."""
    from demo_shop.generate import ShopConfig, generate_shop
    from orchestration.query import connect, published_tables
    from orchestration.settings import DBT_PROJECT_DIR
    from tests.conftest import run_job

    generate_shop(
        ShopConfig(customers=100, days=30, seed=3), shoplake_home.source_url, shoplake_home.truth_dir, progress=False
    )
    for name in EMPTIED:
        execute(shoplake_home, f"DELETE FROM {name}")
    result, _ = run_job("daily_refresh")
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    con = connect(shoplake_home)
    prod_models = {f"prod.{p.stem}" for p in (DBT_PROJECT_DIR / "models" / "prod").glob("*.sql")}
    assert prod_models <= set(published_tables(con))
    for name in EMPTIED:
        assert con.execute(f"SELECT count(*) FROM curated.{name}").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM prod.conversion_funnel").fetchone() == (0,)  # built from web events
    orders = con.execute("SELECT count(*) FROM curated.orders").fetchone()[0]
    assert orders > 0 and con.execute("SELECT count(*) FROM prod.fct_orders").fetchone() == (orders,)


def test_an_unreachable_source_is_retried_then_fails_in_one_line(shoplake_home, monkeypatch):
    """A refused connection may clear up: the step is retried (3 times, 5, 15 and 35 s after it
    failed), then fails once."""
    import dagster as dg

    from orchestration.defs.extract.assets import EXTRACT_RETRY, extract_source_tables
    from orchestration.resources import LakehouseResource

    assert EXTRACT_RETRY == dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL)
    assert [EXTRACT_RETRY.calculate_delay(n) for n in (1, 2, 3)] == [5, 15, 35]
    # The run below retries with the same policy 100 times faster: Dagster keeps the op's policy in
    # the op definition, and no public API overrides a policy an op declares.
    fast = EXTRACT_RETRY._replace(delay=EXTRACT_RETRY.delay / 100)
    monkeypatch.setattr(extract_source_tables.op, "_retry_policy", fast)
    monkeypatch.setenv("SHOPLAKE_SOURCE_URL", "mysql://shop:secret@127.0.0.1:1/shop")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [extract_source_tables],
            selection=[dg.AssetKey(["raw", "payments"])],
            resources={"lakehouse": LakehouseResource()},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == EXTRACT_RETRY.max_retries == 3
    assert [e.event_specific_data.seconds_to_wait for e in retries] == pytest.approx([0.05, 0.15, 0.35])
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("cannot connect to the source database mysql://shop:***@127.0.0.1:1/shop: ")
    assert "\n" not in description and "secret" not in description


def test_a_row_written_while_the_read_runs_is_not_taken_for_one_from_the_future(source, monkeypatch):
    real_clock = SourceDatabase.clock
    readings = []

    def clock(db):
        now = real_clock(db)
        readings.append(now)
        # the first reading (before the rows) as if taken ten minutes before a write the read then saw
        return now - dt.timedelta(minutes=10) if len(readings) == 1 else now

    just_written = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=5)
    just_written = just_written.replace(microsecond=just_written.microsecond // 1000 * 1000)
    insert(source, PAYMENTS, [payment(1, T0), payment(2, just_written)])
    monkeypatch.setattr(SourceDatabase, "clock", clock)
    result = et.extract_table(PAYMENTS, source, run_id="run-1")
    assert len(readings) == 2  # read again after the rows, since one was past the first reading
    assert (result.inserted, result.rows_from_the_future) == (2, 0)
    assert result.watermark == just_written.isoformat(timespec="milliseconds")
