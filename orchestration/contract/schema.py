"""The shop's OLTP schema: the source contract Shoplake extracts from.

One definition serves three readers: the MySQL DDL users review (``schema.sql``, rendered from this
module and kept identical by a test), the SQLite DDL of the demo shop, and the Arrow schema the
extractor casts every batch to, so typing never depends on what a database driver guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    # MySQL spelling: BIGINT, INT, TINYINT(1), DECIMAL(12,2), VARCHAR(n), CHAR(n), TEXT, JSON, DATE, DATETIME(3)
    sql_type: str
    nullable: bool = False
    doc: str = ""
    # A payment card number: never leaves extraction in clear (see orchestration/defs/extract/card_tokens.py).
    card_number: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        t = self.sql_type.upper()
        if t == "BIGINT":
            return pa.int64()
        if t in ("INT", "SMALLINT"):
            return pa.int32()
        if t == "TINYINT(1)":
            return pa.bool_()
        if m := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", t):
            return pa.decimal128(int(m[1]), int(m[2]))
        if t == "DATETIME(3)":
            return pa.timestamp("ms")
        if t == "DATE":
            return pa.date32()
        if t == "DOUBLE":
            return pa.float64()
        if t.startswith(("VARCHAR", "CHAR")) or t in ("TEXT", "JSON"):
            return pa.string()
        raise ValueError(f"no Arrow type for SQL type {self.sql_type!r} of column {self.name!r}")

    @property
    def is_text(self) -> bool:
        return pa.types.is_string(self.arrow_type)


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    foreign_keys: tuple[tuple[str, str, str], ...] = field(default=())  # (column, ref table, ref column)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=True) for c in self.columns])


def _c(name, sql_type, doc="", nullable=False, **kw) -> Column:
    return Column(name=name, sql_type=sql_type, nullable=nullable, doc=doc, **kw)


UPDATED_AT = _c("updated_at", "DATETIME(3)", "last change of the row, millisecond precision; the extraction cursor")

# Raw column beside the contract's: a JSON object of column -> original source text, for values a row held
# that no Arrow type can represent (MySQL's zero and partial-zero dates), which land as NULL. Extraction
# writes it; the quarantine rules show the text.
INVALID_VALUES = "_invalid_values"

TABLES: tuple[Table, ...] = (
    Table(
        "customers",
        "Registered shoppers. Erased on request (GDPR): the row and all their activity are hard deleted.",
        ("customer_id",),
        (
            _c("customer_id", "BIGINT", "surrogate key"),
            _c("email", "VARCHAR(255)", "login e-mail (PII)", nullable=True),
            _c("first_name", "VARCHAR(100)", "given name (PII), utf8mb4"),
            _c("last_name", "VARCHAR(100)", "family name (PII), utf8mb4"),
            _c("country", "CHAR(2)", "ISO 3166-1 alpha-2 country of residence", nullable=True),
            _c("city", "VARCHAR(100)", "city of residence"),
            _c("acquisition_channel", "VARCHAR(20)", "organic | paid_search | social | email | referral | marketplace"),
            _c("marketing_opt_in", "TINYINT(1)", "consented to marketing e-mail"),
            _c("birth_date", "DATE", "date of birth; legacy rows may hold the zero date", nullable=True),
            _c("created_at", "DATETIME(3)", "sign-up time"),
            UPDATED_AT,
        ),
    ),
    Table(
        "categories",
        "Product categories, each with its own price level, seasonality and return rate.",
        ("category_id",),
        (
            _c("category_id", "INT", "surrogate key"),
            _c("name", "VARCHAR(100)", "category name"),
            _c("department", "VARCHAR(100)", "top-level department"),
            UPDATED_AT,
        ),
    ),
    Table(
        "products",
        "The catalogue. Prices are list prices in USD; orders carry the local price actually charged.",
        ("product_id",),
        (
            _c("product_id", "BIGINT", "surrogate key"),
            _c("sku", "VARCHAR(32)", "stock keeping unit"),
            _c("name", "VARCHAR(255)", "product name"),
            _c("category_id", "INT", "categories.category_id"),
            _c("list_price_usd", "DECIMAL(12,2)", "list price in USD"),
            _c("unit_cost_usd", "DECIMAL(12,2)", "landed unit cost in USD"),
            _c("is_active", "TINYINT(1)", "currently sold"),
            _c("attributes", "JSON", "free-form attributes (colour, size, brand)", nullable=True),
            _c("created_at", "DATETIME(3)", "when the product was listed"),
            UPDATED_AT,
        ),
        (("category_id", "categories", "category_id"),),
    ),
    Table(
        "inventory",
        "Stock on hand per product (one warehouse). Updated in place on every sale and restock.",
        ("product_id",),
        (
            _c("product_id", "BIGINT", "products.product_id"),
            _c("quantity_on_hand", "INT", "units in stock"),
            _c("reorder_point", "INT", "stock level that should trigger a reorder"),
            _c("last_restocked_at", "DATETIME(3)", "last restock", nullable=True),
            UPDATED_AT,
        ),
        (("product_id", "products", "product_id"),),
    ),
    Table(
        "promotions",
        "Planned promotions: site-wide or for one category. Known in advance, so forecasts may use them.",
        ("promotion_id",),
        (
            _c("promotion_id", "INT", "surrogate key"),
            _c("promo_code", "VARCHAR(32)", "code customers enter"),
            _c("category_id", "INT", "category on promotion; NULL for site-wide", nullable=True),
            _c("discount_pct", "DECIMAL(5,2)", "discount in percent"),
            _c("starts_on", "DATE", "first day"),
            _c("ends_on", "DATE", "last day (inclusive)"),
            UPDATED_AT,
        ),
    ),
    Table(
        "orders",
        "Orders in the shopper's local currency. Status moves placed -> paid -> shipped -> delivered "
        "(or cancelled / returned) after insert.",
        ("order_id",),
        (
            _c("order_id", "BIGINT", "surrogate key"),
            _c("customer_id", "BIGINT", "customers.customer_id", nullable=True),
            _c("ordered_at", "DATETIME(3)", "when the order was placed", nullable=True),
            _c("status", "VARCHAR(20)", "placed | paid | shipped | delivered | cancelled | returned"),
            _c("channel", "VARCHAR(20)", "web | mobile_app | marketplace"),
            _c("currency", "CHAR(3)", "ISO 4217 currency of all amounts"),
            _c("shipping_country", "CHAR(2)", "destination country"),
            _c("promo_code", "VARCHAR(32)", "promotions.promo_code applied", nullable=True),
            _c("subtotal", "DECIMAL(12,2)", "sum of item lines after line discounts"),
            _c("discount", "DECIMAL(12,2)", "order-level discount"),
            _c("shipping_fee", "DECIMAL(12,2)", "shipping charged"),
            _c("total", "DECIMAL(12,2)", "subtotal - discount + shipping_fee"),
            _c("notes", "TEXT", "free text typed by the shopper at checkout", nullable=True),
            UPDATED_AT,
        ),
        (("customer_id", "customers", "customer_id"),),
    ),
    Table(
        "order_items",
        "Order lines. unit_price is the local price charged per unit before the line discount.",
        ("order_item_id",),
        (
            _c("order_item_id", "BIGINT", "surrogate key"),
            _c("order_id", "BIGINT", "orders.order_id"),
            _c("product_id", "BIGINT", "products.product_id", nullable=True),
            _c("quantity", "INT", "units ordered"),
            _c("unit_price", "DECIMAL(12,2)", "local price per unit"),
            _c("line_discount", "DECIMAL(12,2)", "discount on the line"),
            UPDATED_AT,
        ),
        (("order_id", "orders", "order_id"), ("product_id", "products", "product_id")),
    ),
    Table(
        "payments",
        "Payment attempts. card_number holds the full PAN at the source: the PCI risk Shoplake contains. "
        "Fraud surfaces weeks later as status chargeback.",
        ("payment_id",),
        (
            _c("payment_id", "BIGINT", "surrogate key"),
            _c("order_id", "BIGINT", "orders.order_id"),
            _c("method", "VARCHAR(20)", "card | paypal | bank_transfer"),
            _c(
                "card_number",
                "VARCHAR(19)",
                "full card number (PAN); tokenized in flight",
                nullable=True,
                card_number=True,
            ),
            _c("card_country", "CHAR(2)", "issuing country of the card", nullable=True),
            _c("ip_country", "CHAR(2)", "country of the shopper's IP address"),
            _c("device_type", "VARCHAR(20)", "desktop | mobile | tablet"),
            _c("amount", "DECIMAL(12,2)", "amount in the order currency"),
            _c("currency", "CHAR(3)", "ISO 4217"),
            _c("status", "VARCHAR(20)", "captured | failed | refunded | chargeback"),
            _c("paid_at", "DATETIME(3)", "authorisation time"),
            _c("chargeback_at", "DATETIME(3)", "when the issuer reported a chargeback", nullable=True),
            UPDATED_AT,
        ),
        (("order_id", "orders", "order_id"),),
    ),
    Table(
        "shipments",
        "One shipment per shipped order.",
        ("shipment_id",),
        (
            _c("shipment_id", "BIGINT", "surrogate key"),
            _c("order_id", "BIGINT", "orders.order_id"),
            _c("carrier", "VARCHAR(40)", "carrier name"),
            _c("shipped_at", "DATETIME(3)", "handed to the carrier"),
            _c("promised_at", "DATETIME(3)", "delivery promised to the shopper"),
            _c("delivered_at", "DATETIME(3)", "delivered; NULL while in transit", nullable=True),
            _c("status", "VARCHAR(20)", "in_transit | delivered"),
            UPDATED_AT,
        ),
        (("order_id", "orders", "order_id"),),
    ),
    Table(
        "returns",
        "Returned units of an order line, with the refund in the order currency.",
        ("return_id",),
        (
            _c("return_id", "BIGINT", "surrogate key"),
            _c("order_item_id", "BIGINT", "order_items.order_item_id"),
            _c("quantity", "INT", "units returned"),
            _c("reason", "VARCHAR(40)", "damaged | wrong_size | not_as_described | changed_mind | late_delivery"),
            _c("refund_amount", "DECIMAL(12,2)", "refund in the order currency"),
            _c("returned_at", "DATETIME(3)", "when the return was received"),
            UPDATED_AT,
        ),
        (("order_item_id", "order_items", "order_item_id"),),
    ),
    Table(
        "support_tickets",
        "Customer service tickets. body is free text: shoppers sometimes paste card numbers into it.",
        ("ticket_id",),
        (
            _c("ticket_id", "BIGINT", "surrogate key"),
            _c("customer_id", "BIGINT", "customers.customer_id"),
            _c("order_id", "BIGINT", "orders.order_id the ticket is about", nullable=True),
            _c("topic", "VARCHAR(40)", "delivery | refund | product | payment | account"),
            _c("body", "TEXT", "the shopper's message"),
            _c("status", "VARCHAR(20)", "open | resolved"),
            _c("satisfaction", "SMALLINT", "1-5 rating after resolution", nullable=True),
            _c("created_at", "DATETIME(3)", "opened"),
            _c("resolved_at", "DATETIME(3)", "resolved", nullable=True),
            UPDATED_AT,
        ),
        (("customer_id", "customers", "customer_id"),),
    ),
    Table(
        "web_events",
        "Clickstream: session_start, product_view, add_to_cart, checkout, purchase. Abandoned carts are "
        "hard deleted after 30 days.",
        ("event_id",),
        (
            _c("event_id", "BIGINT", "surrogate key"),
            _c("session_id", "VARCHAR(36)", "visit identifier"),
            _c("customer_id", "BIGINT", "logged-in customer", nullable=True),
            _c("event_type", "VARCHAR(20)", "session_start | product_view | add_to_cart | checkout | purchase"),
            _c("product_id", "BIGINT", "product viewed or added", nullable=True),
            _c("order_id", "BIGINT", "order placed (purchase events)", nullable=True),
            _c("channel", "VARCHAR(20)", "web | mobile_app"),
            _c("traffic_source", "VARCHAR(20)", "organic | paid_search | social | email | referral | direct"),
            _c("device_type", "VARCHAR(20)", "desktop | mobile | tablet"),
            _c("country", "CHAR(2)", "country of the visitor"),
            _c("occurred_at", "DATETIME(3)", "event time"),
            _c("properties", "JSON", "event payload", nullable=True),
            UPDATED_AT,
        ),
    ),
    Table(
        "fx_rates",
        "Daily exchange rates: units of USD per one unit of currency.",
        ("rate_date", "currency"),
        (
            _c("rate_date", "DATE", "day the rate applies to"),
            _c("currency", "CHAR(3)", "ISO 4217"),
            _c("usd_per_unit", "DECIMAL(18,8)", "USD for one unit of the currency"),
            UPDATED_AT,
        ),
    ),
)

TABLES_BY_NAME = {t.name: t for t in TABLES}


def table(name: str) -> Table:
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown source table {name!r}; known: {', '.join(TABLES_BY_NAME)}") from None


def mysql_create_statements() -> list[str]:
    """One CREATE TABLE statement per source table, in MySQL syntax."""
    statements = []
    for t in TABLES:
        lines = []
        for c in t.columns:
            default = ""
            if c.name == "updated_at":
                default = " DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)"
            null = "NULL" if c.nullable else "NOT NULL"
            lines.append(f"  `{c.name}` {c.sql_type} {null}{default} COMMENT '{_sql_text(c.doc)}'")
        lines.append(f"  PRIMARY KEY ({', '.join(f'`{k}`' for k in t.primary_key)})")
        lines.append("  KEY `ix_updated_at` (`updated_at`)")
        statements.append(
            f"-- {t.doc}\nCREATE TABLE IF NOT EXISTS `{t.name}` (\n"
            + ",\n".join(lines)
            + f"\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='{_sql_text(t.doc)}'"
        )
    return statements


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def mysql_ddl() -> str:
    """The source schema as MySQL DDL (what ``schema.sql`` holds)."""
    header = (
        "-- The shop's OLTP schema (MySQL 8 / MariaDB 10.6+). Rendered from orchestration/contract/schema.py.\n"
        "-- Every table has a primary key and updated_at DATETIME(3), the extraction cursor.\n\n"
    )
    return header + "".join(f"{stmt};\n\n" for stmt in mysql_create_statements())


def sqlite_type(column: Column) -> str:
    """SQLite declared type for a MySQL type. DECIMAL is stored as exact text ('12.30'), never REAL;
    the plain type names are the ones connectorx maps without guessing from the values."""
    t = column.sql_type.upper()
    if t in ("BIGINT", "INT", "SMALLINT"):
        return "INTEGER"
    if t == "TINYINT(1)":
        return "BOOLEAN"
    if t == "DATETIME(3)":
        return "DATETIME"
    if t == "DATE":
        return "DATE"
    return "TEXT"


def sqlite_ddl() -> list[str]:
    """The same tables for the embedded SQLite demo shop (the MySQL type kept as a comment)."""
    statements = []
    for t in TABLES:
        cols = [f'"{c.name}" {sqlite_type(c)}{"" if c.nullable else " NOT NULL"} /* {c.sql_type} */' for c in t.columns]
        cols.append(f"PRIMARY KEY ({', '.join(t.primary_key)})")
        statements.append(f'CREATE TABLE IF NOT EXISTS "{t.name}" (\n  ' + ",\n  ".join(cols) + "\n)")
        statements.append(f'CREATE INDEX IF NOT EXISTS "ix_{t.name}_updated_at" ON "{t.name}" (updated_at)')
    return statements
