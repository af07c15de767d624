"""Extraction from a real MariaDB: MySQL's types round-trip exactly into Iceberg raw."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pymysql
import pytest

from orchestration.extract import extract_table as et
from orchestration.lakehouse.catalog import load_catalog
from orchestration.settings import Settings
from orchestration.source import schema
from orchestration.source.database import SourceDatabase

pytestmark = pytest.mark.mariadb

SERVER = dict(host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4")


@pytest.fixture
def mysql_source(shoplake_home, monkeypatch):
    name = f"shoplake_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(**SERVER, autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    url = f"mysql://root@127.0.0.1:3306/{name}"
    monkeypatch.setenv("SHOPLAKE_SOURCE_URL", url)
    SourceDatabase(url).create_schema()
    try:
        yield Settings.from_env(), pymysql.connect(**SERVER, database=name, autocommit=True)
    finally:
        admin.cursor().execute(f"DROP DATABASE `{name}`")
        admin.close()


def test_mysql_realities_round_trip_exactly(mysql_source):
    settings, con = mysql_source
    cur = con.cursor()
    cur.execute("SET SESSION sql_mode = ''")  # legacy mode: zero dates allowed, as in old shops
    cur.execute(
        """INSERT INTO customers (customer_id, email, first_name, last_name, country, city, acquisition_channel,
               marketing_opt_in, birth_date, created_at, updated_at) VALUES
           (1, 'zoe@example.com', 'Zoë 😀', '王', 'DE', 'Köln', 'organic', 1, '0000-00-00',
            '2024-02-29 23:59:59.999', '2026-01-01 00:00:00.001'),
           (2, NULL, 'Ann', 'Lee', NULL, 'Oslo', 'email', 0, NULL, '2024-01-01 00:00:00.000', '2026-01-01 00:00:00.001'),
           (3, 'x@example.com', 'Bo', 'Ek', 'SE', 'Malmö', 'social', 0, '1990-05-17', '2024-01-01 00:00:00.000', '2026-01-01 00:00:00.002')"""
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
