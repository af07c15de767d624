"""Extraction from a real MariaDB: MySQL's types round-trip exactly into Iceberg raw."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal

import pymysql
import pytest

from orchestration.contract import schema
from orchestration.contract.database import SourceDatabase, SourceUnavailable
from orchestration.defs.extract import extract_table as et
from orchestration.lakehouse.catalog import load_catalog
from orchestration.settings import Settings
from tests.conftest import MARIADB, scratch_mariadb

pytestmark = pytest.mark.mariadb

SERVER = MARIADB


@pytest.fixture
def mysql_source(shoplake_home, monkeypatch):
    with scratch_mariadb() as (name, url):
        monkeypatch.setenv("SHOPLAKE_SOURCE_URL", url)
        SourceDatabase(url).create_schema()
        yield Settings.from_env(), pymysql.connect(**SERVER, database=name, autocommit=True)


def test_mysql_realities_round_trip_exactly(mysql_source):
    settings, con = mysql_source
    cur = con.cursor()
    cur.execute("SET SESSION sql_mode = ''")  # legacy mode: zero dates allowed, as in old shops
    cur.execute(
        """INSERT INTO customers (customer_id, email, first_name, last_name, country, city, acquisition_channel,
               marketing_opt_in, birth_date, created_at, updated_at) VALUES
           (1, 'zoe@example.com', 'Zoë 😀', '王', 'DE', 'Köln', 'organic', 1, '0000-00-00',
            '2024-02-29 23:59:59.999', '2026-01-01 00:00:00.001'),
           (2, NULL, 'Ann', 'Lee', NULL, 'Oslo', 'email', 0, NULL,
            '2024-01-01 00:00:00.000', '2026-01-01 00:00:00.001'),
           (3, 'x@example.com', 'Bo', 'Ek', 'SE', 'Malmö', 'social', 0, '1990-05-17',
            '2024-01-01 00:00:00.000', '2026-01-01 00:00:00.002')"""
    )
    cur.execute(
        """INSERT INTO products (product_id, sku, name, category_id, list_price_usd, unit_cost_usd, is_active,
               attributes, created_at, updated_at) VALUES
           (1, 'SKU-1', 'Mug 🍵', 1, 99999999.99, 0.01, 1, '{"colour": "🟥", "size": null}',
            '2024-01-01 00:00:00.000', '2026-01-01 00:00:00.000')"""
    )
    assert et.extract_table(schema.table("customers"), settings, run_id="r1").inserted == 3
    assert et.extract_table(schema.table("products"), settings, run_id="r1").inserted == 1

    catalog = load_catalog(settings)
    customers = {r["customer_id"]: r for r in catalog.load_table("raw.customers").scan().to_arrow().to_pylist()}
    assert customers[1]["first_name"] == "Zoë 😀" and customers[1]["last_name"] == "王"
    assert customers[1]["birth_date"] is None  # the zero date means "unknown"
    assert customers[3]["birth_date"] == dt.date(1990, 5, 17)
    assert customers[1]["marketing_opt_in"] is True and customers[2]["marketing_opt_in"] is False
    assert customers[1]["created_at"] == dt.datetime(2024, 2, 29, 23, 59, 59, 999000)
    assert customers[2]["email"] is None and customers[2]["country"] is None
    product = catalog.load_table("raw.products").scan().to_arrow().to_pylist()[0]
    assert product["list_price_usd"] == Decimal("99999999.99") and product["unit_cost_usd"] == Decimal("0.01")
    assert product["attributes"] == '{"colour": "🟥", "size": null}'
    assert product["name"] == "Mug 🍵"


def test_changes_and_deletes_in_mysql_are_captured_once(mysql_source):
    settings, con = mysql_source
    cur = con.cursor()
    cur.executemany(
        "INSERT INTO categories (category_id, name, department, updated_at) VALUES (%s, %s, %s, %s)",
        [(i, f"c{i}", "d", "2026-01-01 10:00:00.500") for i in range(1, 101)],
    )
    assert et.extract_table(schema.table("categories"), settings, run_id="r1").inserted == 100
    # Same millisecond as the watermark (a late commit), a normal update, and deletes.
    cur.execute("INSERT INTO categories VALUES (101, 'late', 'd', '2026-01-01 10:00:00.500')")
    cur.execute("UPDATE categories SET name = 'renamed' WHERE category_id = 7")  # ON UPDATE moves updated_at
    cur.execute("DELETE FROM categories WHERE category_id IN (3, 4)")
    result = et.extract_table(schema.table("categories"), settings, run_id="r2")
    assert (result.inserted, result.updated, result.deleted) == (1, 1, 2)
    assert et.extract_table(schema.table("categories"), settings, run_id="r3").rows_written == 0


def test_retyped_column_names_table_column_and_change(mysql_source):
    settings, con = mysql_source
    con.cursor().execute("ALTER TABLE orders MODIFY total DECIMAL(14,3) NOT NULL")
    with pytest.raises(et.SchemaDrift) as err:
        et.extract_table(schema.table("orders"), settings, run_id="r1")
    assert "source table orders: column total changed type from DECIMAL(12,2) to DECIMAL(14,3)" in str(err.value)


def test_mysql_chunked_extraction_bounds_each_read(mysql_source):
    settings, con = mysql_source
    con.cursor().execute(
        "INSERT INTO categories (category_id, name, department, updated_at) "
        "SELECT seq, concat('c', seq), 'd', '2026-01-01 00:00:00.000' FROM seq_1_to_5000"
    )
    result = et.extract_table(schema.table("categories"), settings, run_id="r1", chunk_rows=700)
    assert (result.rows_read, result.inserted) == (5000, 5000)
    assert load_catalog(settings).load_table("raw.categories").scan().to_arrow().num_rows == 5000


def _digest(rows) -> tuple[str, list]:
    """A full-table checksum: md5 over every row, canonically typed and sorted by key."""
    canonical = sorted((int(r[0]), str(r[1]), str(r[2]), r[3].replace(tzinfo=None)) for r in rows)
    return hashlib.md5(repr(canonical).encode()).hexdigest(), canonical


@pytest.mark.slow  # two daily_refresh runs
def test_a_mysql_shop_run_changed_and_run_again_leaves_curated_equal_to_the_source(shoplake_home, monkeypatch):
    """Run the daily refresh on a MariaDB shop, then insert, update (rows sharing the watermark's exact
    millisecond) and hard-delete at the source, run again: curated equals the source by checksum
    and raw holds each change exactly once."""
    from demo_shop.generate import ShopConfig, generate_shop
    from orchestration.query import connect as query_connect
    from tests.conftest import run_job

    with scratch_mariadb() as (name, url):
        monkeypatch.setenv("SHOPLAKE_SOURCE_URL", url)
        settings = Settings.from_env()
        generate_shop(
            ShopConfig(customers=150, days=45, seed=11, dirty_rate=0.0), url, settings.truth_dir, progress=False
        )
        source = pymysql.connect(**SERVER, database=name, autocommit=True).cursor()
        # Categories no product uses yet, so deleting them later breaks no relationship.
        source.executemany(
            "INSERT INTO categories (category_id, name, department, updated_at) VALUES (%s, %s, 'spare', %s)",
            [(9001 + i, f"spare {i}", "2020-01-01 00:00:00.000") for i in range(3)],
        )
        first, _ = run_job("daily_refresh")
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        raw = load_catalog(settings).load_table("raw.categories")
        watermark = raw.current_snapshot().summary["shoplake.watermark"]
        assert watermark

        source.execute(
            "INSERT INTO categories (category_id, name, department, updated_at) VALUES (9004, 'new', 'spare', %s)",
            (watermark,),
        )
        # Three updates stamped with the watermark's exact millisecond: the inclusive bound re-reads them.
        source.execute(
            "UPDATE categories SET name = CONCAT(name, ' (renamed)'), updated_at = %s "
            "WHERE category_id IN (SELECT category_id FROM (SELECT category_id FROM categories "
            "WHERE category_id < 9000 AND updated_at < %s ORDER BY category_id LIMIT 3) AS t)",
            (watermark, watermark),
        )
        assert source.rowcount == 3
        source.execute("DELETE FROM categories WHERE category_id IN (9001, 9002)")
        second, _ = run_job("daily_refresh")
        assert second.success, [e.message for e in second.all_events if e.is_failure]

        source.execute("SELECT category_id, name, department, updated_at FROM categories")
        at_source = source.fetchall()
        curated = (
            query_connect(settings)
            .execute("SELECT category_id, name, department, updated_at FROM curated.categories")
            .fetchall()
        )
        (want, want_rows), (got, got_rows) = _digest(at_source), _digest(curated)
        assert got_rows == want_rows
        assert got == want
        assert len({r[0] for r in curated}) == len(curated)  # no duplicate key

        ops = (
            load_catalog(settings)
            .load_table("raw.categories")
            .scan()
            .to_arrow()
            .group_by("_op")
            .aggregate([("_op", "count")])
        )
        counts = dict(zip(ops.column("_op").to_pylist(), ops.column("_op_count").to_pylist()))
        first_load = len(at_source) - 1 + 2  # today's rows, minus 9004, plus the two deleted
        assert counts == {"insert": first_load + 1, "update": 3, "delete": 2}


def test_zero_and_partial_zero_dates_land_as_null_with_their_original_text(mysql_source):
    """Non-strict MySQL accepts dates no calendar has; the driver used to panic on them and stop the run."""
    settings, con = mysql_source
    cur = con.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    cur.execute(
        """INSERT INTO customers (customer_id, email, first_name, last_name, country, city, acquisition_channel,
               marketing_opt_in, birth_date, created_at, updated_at) VALUES
           (1, 'a@example.com', 'A', 'A', 'DE', 'Köln', 'organic', 1, '1985-00-00', '2020-05-00 10:00:00.250',
            '2026-01-01 00:00:00.001'),
           (2, 'b@example.com', 'B', 'B', 'DE', 'Köln', 'organic', 1, '0000-00-00', '2024-01-01 00:00:00.000',
            '2026-01-01 00:00:00.001'),
           (3, 'c@example.com', 'C', 'C', 'DE', 'Köln', 'organic', 1, '1990-05-17', '2024-01-01 00:00:00.000',
            '2026-01-01 00:00:00.001')"""
    )
    result = et.extract_table(schema.table("customers"), settings, run_id="r1")
    assert (result.inserted, result.rows_with_invalid_values) == (3, 2)
    rows = {
        r["customer_id"]: r for r in load_catalog(settings).load_table("raw.customers").scan().to_arrow().to_pylist()
    }
    assert (rows[1]["birth_date"], rows[1]["created_at"]) == (None, None)
    assert json.loads(rows[1]["_invalid_values"]) == {
        "birth_date": "1985-00-00",
        "created_at": "2020-05-00 10:00:00.250",
    }
    assert rows[2]["birth_date"] is None and json.loads(rows[2]["_invalid_values"]) == {"birth_date": "0000-00-00"}
    assert rows[3]["birth_date"] == dt.date(1990, 5, 17) and rows[3]["_invalid_values"] is None


def _source_now(con) -> dt.datetime:
    cur = con.cursor()
    cur.execute("SELECT NOW(3)")
    return cur.fetchone()[0]


def test_a_row_from_the_future_does_not_freeze_change_capture(mysql_source):
    settings, con = mysql_source
    cur = con.cursor()
    cur.executemany(
        "INSERT INTO categories (category_id, name, department, updated_at) VALUES (%s, %s, 'd', %s)",
        [(1, "a", "2026-01-01 00:00:00"), (2, "b", "2026-01-01 00:00:00"), (3, "typo", "2030-01-01 00:00:00")],
    )
    before = _source_now(con)
    first = et.extract_table(schema.table("categories"), settings, run_id="r1")
    after = _source_now(con)
    assert (first.inserted, first.rows_from_the_future) == (3, 1)
    # capped at the source's clock, read in the run: not 2030
    assert before <= dt.datetime.fromisoformat(first.watermark) <= after
    assert first.watermark == first.source_clock

    cur.execute("UPDATE categories SET name = 'renamed' WHERE category_id = 2")  # ON UPDATE stamps the source's now
    second = et.extract_table(schema.table("categories"), settings, run_id="r2")
    assert (second.inserted, second.updated, second.deleted, second.rows_from_the_future) == (0, 1, 0, 1)
    raw = load_catalog(settings).load_table("raw.categories").scan().to_arrow().to_pylist()
    assert sorted((r["category_id"], r["name"]) for r in raw) == [(1, "a"), (2, "b"), (2, "renamed"), (3, "typo")]


def test_a_watermark_already_in_the_future_heals_itself(mysql_source):
    """A lakehouse whose watermark an earlier version let run to 2030 picks up today's changes again."""
    settings, con = mysql_source
    cur = con.cursor()
    cur.execute("INSERT INTO categories (category_id, name, department, updated_at) VALUES (1, 'a', 'd', '2030-01-01')")
    et.extract_table(schema.table("categories"), settings, run_id="r1")
    raw = load_catalog(settings).load_table("raw.categories")
    raw.append(raw.scan(limit=0).to_arrow(), snapshot_properties={et.WATERMARK_PROPERTY: "2030-01-01T00:00:00.000"})
    cur.execute("INSERT INTO categories (category_id, name, department) VALUES (2, 'today', 'd')")
    assert et.extract_table(schema.table("categories"), settings, run_id="r2").inserted == 1


EMPTY_AT_FIRST = ("returns", "support_tickets", "web_events")


def test_empty_source_tables_extract_and_give_typed_empty_raw_views(mysql_source):
    from orchestration.lakehouse import duckdb_extensions
    from orchestration.lakehouse.views import refresh_raw_views

    settings, con = mysql_source
    con.cursor().execute("INSERT INTO categories (category_id, name, department) VALUES (1, 'a', 'd')")
    results = {t.name: et.extract_table(t, settings, run_id="r1") for t in schema.TABLES}  # every other table empty too
    assert results["categories"].inserted == 1
    assert all(r.rows_written == 0 and r.watermark is None for n, r in results.items() if n != "categories")

    refresh_raw_views(settings)
    db = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
    try:
        for name in EMPTY_AT_FIRST:
            assert db.execute(f"SELECT count(*) FROM raw.{name}").fetchone() == (0,)
            types = dict(db.execute(f"SELECT column_name, column_type FROM (DESCRIBE raw.{name})").fetchall())
            assert set(types) == set(et.raw_schema(schema.table(name)).names)
            assert types["updated_at"].startswith("TIMESTAMP") and types["_op"] == "VARCHAR"
        assert db.execute("SELECT name FROM raw.categories").fetchall() == [("a",)]
    finally:
        db.close()

    # the first rows arriving later are an ordinary insert
    con.cursor().execute(
        "INSERT INTO support_tickets (ticket_id, customer_id, topic, body, status, created_at) "
        "VALUES (1, 1, 'delivery', 'where is it', 'open', '2026-01-01')"
    )
    assert et.extract_table(schema.table("support_tickets"), settings, run_id="r2").inserted == 1


def _extract_customers_in_dagster():
    import dagster as dg

    from orchestration.defs.extract.assets import extract_source_tables
    from orchestration.resources import LakehouseResource

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [extract_source_tables],
            selection=[dg.AssetKey(["raw", "customers"])],
            resources={"lakehouse": LakehouseResource()},
            instance=instance,
            raise_on_error=False,
        )
    return result


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("url:mysql://root:wrong@127.0.0.1:3306/{db}", "Access denied for user 'root'"),
        ("url:mysql://root@127.0.0.1:3306/{db}_gone", "Unknown database"),
        ("sql:DROP TABLE customers", "source table customers does not exist"),
        (
            "sql:ALTER TABLE customers DROP COLUMN city",
            "source table customers: column city (VARCHAR(100)) was dropped",
        ),
    ],
    ids=["wrong_password", "unknown_database", "missing_table", "dropped_column"],
)
def test_configuration_errors_fail_at_once_in_one_line(mysql_source, monkeypatch, breakage, message):
    settings, con = mysql_source
    kind, what = breakage.split(":", 1)
    if kind == "url":
        database = settings.source_url.rsplit("/", 1)[1]
        monkeypatch.setenv("SHOPLAKE_SOURCE_URL", what.format(db=database))
    else:
        con.cursor().execute(what)
    result = _extract_customers_in_dagster()
    assert not result.success
    # no retry: trying again cannot fix any of these
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    description = data.user_failure_data.description
    assert message in description and "\n" not in description and "wrong" not in description
    assert data.error.cause is None  # the one line, not a chain of driver exceptions


def test_a_refused_connection_is_worth_a_retry_a_wrong_password_is_not(mysql_source):
    settings, _ = mysql_source
    with pytest.raises(SourceUnavailable) as refused:
        SourceDatabase("mysql://root@127.0.0.1:1/shop").connect()
    with pytest.raises(SourceUnavailable) as denied:
        SourceDatabase(settings.source_url.replace("root@", "root:wrong@")).connect()
    assert (refused.value.transient, denied.value.transient) == (True, False)


def _edge_values(column: schema.Column, high: bool) -> tuple[str, object]:
    """(SQL literal, value raw must hold) for a value MySQL accepts at one end of a column's type."""
    t = column.sql_type.upper()
    integers = {"BIGINT": 63, "INT": 31, "SMALLINT": 15}
    if t in integers:
        n = 2 ** integers[t] - 1 if high else -(2 ** integers[t])
        return str(n), n
    if t == "TINYINT(1)":
        return ("127", True) if high else ("-128", True)
    if m := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", t):
        digits = "9" * (int(m[1]) - int(m[2])) + "." + "9" * int(m[2])
        return (digits, Decimal(digits)) if high else (f"-{digits}", Decimal(f"-{digits}"))
    if t == "JSON":
        return ('\'{"k": "😀"}\'', '{"k": "😀"}') if high else ("'[]'", "[]")
    if t == "DATE":
        return ("'9999-12-31'", dt.date(9999, 12, 31)) if high else ("'1985-00-00'", None)
    if t == "DATETIME(3)":
        return (
            ("'9999-12-31 23:59:59.999'", dt.datetime(9999, 12, 31, 23, 59, 59, 999000))
            if high
            else ("'2020-05-00 10:00:00.000'", None)
        )
    length = int(m[1]) if (m := re.fullmatch(r"(?:VAR)?CHAR\((\d+)\)", t)) else 1000
    return (f"'{'😀' * length}'", "😀" * length) if high else ("''", "")


def test_every_column_at_the_ends_of_its_type_extracts_without_a_crash(mysql_source):
    """What a non-strict MySQL accepts in every column of every table: the largest and smallest numbers,
    4-byte UTF-8 filling a column, empty strings, partial-zero dates. Extraction reads all of it."""
    settings, con = mysql_source
    cur = con.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    expected = {}
    for t in schema.TABLES:
        for high in (True, False):
            literals, values = zip(*(_edge_values(c, high) for c in t.columns))
            names = ", ".join(f"`{c.name}`" for c in t.columns)
            cur.execute(f"INSERT INTO `{t.name}` ({names}) VALUES ({', '.join(literals)})")
            expected[(t.name, high)] = dict(zip(t.column_names, values))
    for t in schema.TABLES:
        result = et.extract_table(t, settings, run_id="r1")
        assert (result.rows_read, result.inserted, result.rows_with_invalid_values) == (
            2,
            2,
            1 if any(c.sql_type in ("DATE", "DATETIME(3)") for c in t.columns) else 0,
        )
        raw = load_catalog(settings).load_table(f"raw.{t.name}").scan().to_arrow().to_pylist()
        key = t.primary_key[0]
        for row in raw:
            high = row[key] == expected[(t.name, True)][key]
            for c in t.columns:
                if not c.card_number:
                    assert row[c.name] == expected[(t.name, high)][c.name], (t.name, c.name, high)


def test_a_zero_updated_at_is_one_version_however_often_it_is_read(mysql_source):
    settings, con = mysql_source
    cur = con.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    cur.execute("INSERT INTO categories (category_id, name, department, updated_at) VALUES (1, 'a', 'd', '0000-00-00')")
    assert et.extract_table(schema.table("categories"), settings, run_id="r1").inserted == 1
    again = et.extract_table(schema.table("categories"), settings, run_id="r2", full_refresh=True)
    assert (again.rows_read, again.rows_written) == (1, 0)
