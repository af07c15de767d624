"""The source contract: one definition, rendered as the MySQL DDL users read."""

from pathlib import Path

import pyarrow as pa

from orchestration.contract import schema

SCHEMA_SQL = Path(schema.__file__).with_name("schema.sql")


def test_schema_sql_is_the_rendered_contract():
    # schema.sql is what users review; regenerate it with
    # python -c "from orchestration.contract.schema import mysql_ddl; print(mysql_ddl())" \
    #     > orchestration/contract/schema.sql
    assert SCHEMA_SQL.read_text() == schema.mysql_ddl()


def test_every_table_has_a_primary_key_and_a_millisecond_cursor():
    expected = {
        "customers",
        "categories",
        "products",
        "inventory",
        "promotions",
        "orders",
        "order_items",
        "payments",
        "shipments",
        "returns",
        "support_tickets",
        "web_events",
        "fx_rates",
    }
    assert {t.name for t in schema.TABLES} == expected
    for t in schema.TABLES:
        assert t.primary_key and all(k in t.column_names for k in t.primary_key), t.name
        assert t.column("updated_at").arrow_type == pa.timestamp("ms"), t.name


def test_money_is_exact_and_booleans_are_booleans():
    assert schema.table("orders").column("total").arrow_type == pa.decimal128(12, 2)
    assert schema.table("fx_rates").column("usd_per_unit").arrow_type == pa.decimal128(18, 8)
    assert schema.table("customers").column("marketing_opt_in").arrow_type == pa.bool_()


def test_only_payments_carry_a_card_number_column():
    assert [(t.name, c.name) for t in schema.TABLES for c in t.columns if c.card_number] == [
        ("payments", "card_number")
    ]
