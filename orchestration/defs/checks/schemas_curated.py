"""pandera schemas of the curated and quarantine tables, as published to Iceberg.

Strict (every column, no other, exact dtypes) and with the checks that make a table trustworthy:
value ranges, the vocabularies of orchestration/contract/vocabulary.py, uniqueness of keys, and the rules
between columns that dbt tests do not state (a card payment carries BIN, last four and token, and
only a card payment does; a delivered shipment has a delivery time, not before it shipped; an
order's total is subtotal - discount + shipping_fee, to the cent).
"""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

from orchestration.contract.quality_rules import QUARANTINE, RULES
from orchestration.contract.vocabulary import (
    ACQUISITION_CHANNELS,
    COUNTRY_CODE_PATTERN,
    CURRENCY_CODE_PATTERN,
    DEVICES,
    EVENT_TYPES,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
    REGIONS,
    RETURN_REASONS,
    SHIPMENT_STATUSES,
    TICKET_STATUSES,
    TICKET_TOPICS,
    TRAFFIC_SOURCES,
    WEB_CHANNELS,
)

# Published types: DECIMAL(12,2) money, DECIMAL(18,8) exchange rates, TIMESTAMP in microseconds.
Money = Annotated[pl.Decimal, 12, 2]
Rate = Annotated[pl.Decimal, 18, 8]
Timestamp = Annotated[pl.Datetime, "us", None]

COUNTRY_CODE = COUNTRY_CODE_PATTERN  # ISO 3166-1 alpha-2
CURRENCY_CODE = CURRENCY_CODE_PATTERN  # ISO 4217
TOKEN = r"^[a-z2-7]{52}$"  # keyed HMAC-SHA256, base32 (orchestration/lakehouse/pii.py)


def _implies(condition: pl.Expr, consequence: pl.Expr) -> pl.Expr:
    """Row-wise "condition -> consequence", NULL-safe (a NULL condition implies nothing)."""
    return ~condition.fill_null(False) | consequence.fill_null(False)


class _Versioned(pa.DataFrameModel):
    updated_at: Timestamp
    extracted_at: Timestamp = pa.Field(alias="_extracted_at")

    class Config:
        strict = True
        coerce = False


class Categories(_Versioned):
    category_id: pl.Int32 = pa.Field(unique=True, ge=1)
    name: pl.String = pa.Field(str_length={"min_value": 1})  # the key is category_id; MySQL allows twins
    department: pl.String = pa.Field(str_length={"min_value": 1})


class Countries(pa.DataFrameModel):
    country: pl.String = pa.Field(unique=True, str_matches=COUNTRY_CODE)
    country_name: pl.String = pa.Field(str_length={"min_value": 1})
    region: pl.String = pa.Field(isin=REGIONS)
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)

    class Config:
        strict = True
        coerce = False


class Customers(_Versioned):
    customer_id: pl.Int64 = pa.Field(unique=True, ge=1)
    email_hash: pl.String = pa.Field(str_matches=TOKEN)
    country: pl.String = pa.Field(nullable=True, str_matches=COUNTRY_CODE)
    city: pl.String
    acquisition_channel: pl.String = pa.Field(isin=ACQUISITION_CHANNELS)
    marketing_opt_in: pl.Boolean
    birth_year: pl.Int32 = pa.Field(nullable=True, ge=1900)
    created_at: Timestamp

    @pa.dataframe_check
    def born_before_signing_up(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("birth_year").is_null() | (pl.col("birth_year") <= pl.col("created_at").dt.year())
        )

    @pa.dataframe_check
    def updated_after_created(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("updated_at") >= pl.col("created_at"))


class Products(_Versioned):
    product_id: pl.Int64 = pa.Field(unique=True, ge=1)
    # the key is product_id: a SKU listed twice is a catalogue slip, not a reason to lose its sales
    sku: pl.String = pa.Field(str_length={"min_value": 1})
    name: pl.String = pa.Field(str_length={"min_value": 1})
    category_id: pl.Int32 = pa.Field(ge=1)
    list_price_usd: Money = pa.Field(gt=0)
    unit_cost_usd: Money = pa.Field(ge=0)  # may exceed the list price: loss leaders are legal
    is_active: pl.Boolean
    attributes: pl.String = pa.Field(nullable=True)
    created_at: Timestamp


class Inventory(_Versioned):
    product_id: pl.Int64 = pa.Field(unique=True, ge=1)
    quantity_on_hand: pl.Int32 = pa.Field(ge=0)
    reorder_point: pl.Int32 = pa.Field(ge=0)
    last_restocked_at: Timestamp = pa.Field(nullable=True)


class Promotions(_Versioned):
    promotion_id: pl.Int32 = pa.Field(unique=True, ge=1)
    promo_code: pl.String = pa.Field(str_length={"min_value": 1})  # the key is promotion_id
    category_id: pl.Int32 = pa.Field(nullable=True, ge=1)
    discount_pct: Annotated[pl.Decimal, 5, 2] = pa.Field(gt=0, lt=100)
    starts_on: pl.Date
    ends_on: pl.Date

    @pa.dataframe_check
    def ends_after_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("ends_on") >= pl.col("starts_on"))


class Orders(_Versioned):
    order_id: pl.Int64 = pa.Field(unique=True, ge=1)
    customer_id: pl.Int64 = pa.Field(ge=1)
    ordered_at: Timestamp
    status: pl.String = pa.Field(isin=ORDER_STATUSES)
    channel: pl.String = pa.Field(isin=ORDER_CHANNELS)
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)
    shipping_country: pl.String = pa.Field(str_matches=COUNTRY_CODE)
    promo_code: pl.String = pa.Field(nullable=True)
    subtotal: Money = pa.Field(ge=0)
    discount: Money = pa.Field(ge=0)
    shipping_fee: Money = pa.Field(ge=0)
    total: Money = pa.Field(ge=0)
    notes: pl.String = pa.Field(nullable=True)

    @pa.dataframe_check
    def total_adds_up(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The order_total_mismatch rule, enforced again on what curated publishes."""
        return data.lazyframe.select(
            pl.col("total") == pl.col("subtotal") - pl.col("discount") + pl.col("shipping_fee")
        )

    @pa.dataframe_check
    def discount_within_subtotal(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("discount") <= pl.col("subtotal"))


class OrderItems(_Versioned):
    order_item_id: pl.Int64 = pa.Field(unique=True, ge=1)
    order_id: pl.Int64 = pa.Field(ge=1)
    product_id: pl.Int64 = pa.Field(ge=1)
    quantity: pl.Int32 = pa.Field(ge=1)
    unit_price: Money = pa.Field(ge=0)  # 0.00 is a free item; a negative price is quarantined
    line_discount: Money = pa.Field(ge=0)

    @pa.dataframe_check
    def discount_within_line(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("line_discount") <= pl.col("quantity") * pl.col("unit_price"))


class Payments(_Versioned):
    payment_id: pl.Int64 = pa.Field(unique=True, ge=1)
    order_id: pl.Int64 = pa.Field(ge=1)
    method: pl.String = pa.Field(isin=PAYMENT_METHODS)
    card_bin: pl.String = pa.Field(nullable=True, str_matches=r"^\d{6,8}$")
    card_last4: pl.String = pa.Field(nullable=True, str_matches=r"^\d{4}$")
    card_token: pl.String = pa.Field(nullable=True, str_matches=TOKEN)
    card_country: pl.String = pa.Field(nullable=True, str_matches=COUNTRY_CODE)
    ip_country: pl.String = pa.Field(str_matches=COUNTRY_CODE)
    device_type: pl.String = pa.Field(isin=DEVICES)
    amount: Money = pa.Field(ge=0)
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)
    status: pl.String = pa.Field(isin=PAYMENT_STATUSES)
    paid_at: Timestamp
    chargeback_at: Timestamp = pa.Field(nullable=True)

    @pa.dataframe_check
    def card_details_only_for_cards(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A card payment keeps BIN, last four and token (never the number); other methods keep none."""
        is_card = pl.col("method") == "card"
        present = [pl.col(c).is_not_null() for c in ("card_bin", "card_last4", "card_token", "card_country")]
        return data.lazyframe.select(pl.all_horizontal([p == is_card for p in present]))

    @pa.dataframe_check
    def chargeback_after_payment(cls, data: pa.PolarsData) -> pl.LazyFrame:
        is_chargeback = pl.col("status") == "chargeback"
        return data.lazyframe.select(
            (pl.col("chargeback_at").is_not_null() == is_chargeback)
            & _implies(is_chargeback, pl.col("chargeback_at") >= pl.col("paid_at"))
        )


class Shipments(_Versioned):
    shipment_id: pl.Int64 = pa.Field(unique=True, ge=1)
    order_id: pl.Int64 = pa.Field(ge=1)  # usually one shipment per order; a split delivery is legal
    carrier: pl.String = pa.Field(str_length={"min_value": 1})
    shipped_at: Timestamp
    promised_at: Timestamp
    delivered_at: Timestamp = pa.Field(nullable=True)
    status: pl.String = pa.Field(isin=SHIPMENT_STATUSES)

    @pa.dataframe_check
    def delivered_after_shipping(cls, data: pa.PolarsData) -> pl.LazyFrame:
        delivered = pl.col("status") == "delivered"
        return data.lazyframe.select(
            (pl.col("delivered_at").is_not_null() == delivered)
            & _implies(delivered, pl.col("delivered_at") >= pl.col("shipped_at"))
            & (pl.col("promised_at") >= pl.col("shipped_at"))
        )


class Returns(_Versioned):
    return_id: pl.Int64 = pa.Field(unique=True, ge=1)
    order_item_id: pl.Int64 = pa.Field(ge=1)
    quantity: pl.Int32 = pa.Field(ge=1)
    reason: pl.String = pa.Field(isin=RETURN_REASONS)
    refund_amount: Money = pa.Field(ge=0)
    returned_at: Timestamp


class SupportTickets(_Versioned):
    ticket_id: pl.Int64 = pa.Field(unique=True, ge=1)
    customer_id: pl.Int64 = pa.Field(ge=1)
    order_id: pl.Int64 = pa.Field(nullable=True, ge=1)
    topic: pl.String = pa.Field(isin=TICKET_TOPICS)
    body: pl.String
    status: pl.String = pa.Field(isin=TICKET_STATUSES)
    satisfaction: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 5})
    created_at: Timestamp
    resolved_at: Timestamp = pa.Field(nullable=True)

    @pa.dataframe_check
    def resolved_after_opening(cls, data: pa.PolarsData) -> pl.LazyFrame:
        resolved = pl.col("status") == "resolved"
        return data.lazyframe.select(
            (pl.col("resolved_at").is_not_null() == resolved)
            & _implies(resolved, pl.col("resolved_at") >= pl.col("created_at"))
            & _implies(~resolved, pl.col("satisfaction").is_null())  # rated only once resolved
        )


class WebEvents(_Versioned):
    event_id: pl.Int64 = pa.Field(unique=True, ge=1)
    session_id: pl.String = pa.Field(str_length={"min_value": 1})
    customer_id: pl.Int64 = pa.Field(nullable=True, ge=1)
    event_type: pl.String = pa.Field(isin=EVENT_TYPES)
    product_id: pl.Int64 = pa.Field(nullable=True, ge=1)
    order_id: pl.Int64 = pa.Field(nullable=True, ge=1)
    channel: pl.String = pa.Field(isin=WEB_CHANNELS)
    traffic_source: pl.String = pa.Field(isin=TRAFFIC_SOURCES)
    device_type: pl.String = pa.Field(isin=DEVICES)
    country: pl.String = pa.Field(str_matches=COUNTRY_CODE)
    occurred_at: Timestamp
    properties: pl.String = pa.Field(nullable=True)

    @pa.dataframe_check
    def payload_matches_event(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Product events name a product; a purchase, and only a purchase, names its order."""
        event = pl.col("event_type")
        return data.lazyframe.select(
            _implies(event.is_in(["product_view", "add_to_cart"]), pl.col("product_id").is_not_null())
            & ((event == "purchase") == pl.col("order_id").is_not_null())
        )


class FxRates(_Versioned):
    rate_date: pl.Date
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)
    usd_per_unit: Rate = pa.Field(gt=0)

    class Config:
        unique = ["rate_date", "currency"]


CURATED_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "categories": Categories,
    "countries": Countries,
    "customers": Customers,
    "products": Products,
    "inventory": Inventory,
    "promotions": Promotions,
    "orders": Orders,
    "order_items": OrderItems,
    "payments": Payments,
    "shipments": Shipments,
    "returns": Returns,
    "support_tickets": SupportTickets,
    "web_events": WebEvents,
    "fx_rates": FxRates,
}


# --- quarantine: one row per key and rule broken -----------------------------------------------

# The primary key columns of each source table with their published dtypes.
_QUARANTINE_KEYS: dict[str, dict[str, type]] = {
    "customers": {"customer_id": pl.Int64},
    "categories": {"category_id": pl.Int32},
    "products": {"product_id": pl.Int64},
    "inventory": {"product_id": pl.Int64},
    "promotions": {"promotion_id": pl.Int32},
    "orders": {"order_id": pl.Int64},
    "order_items": {"order_item_id": pl.Int64},
    "payments": {"payment_id": pl.Int64},
    "shipments": {"shipment_id": pl.Int64},
    "returns": {"return_id": pl.Int64},
    "support_tickets": {"ticket_id": pl.Int64},
    "web_events": {"event_id": pl.Int64},
    "fx_rates": {"rate_date": pl.Date, "currency": pl.String},
}


def rules_of(table: str) -> list[str]:
    """The quarantine rules of quality_rules.RULES that apply to `table`."""
    return [rule for rule, (tables, action, _) in RULES.items() if action == QUARANTINE and table in tables]


def quarantine_schema(table: str) -> pa.DataFrameSchema:
    """quarantine.<table>: its key, a rule of that table, what broke it, and when. A key is never NULL,
    except a date key: a zero date arrives as NULL and the row is quarantined under it."""
    keys = _QUARANTINE_KEYS[table]
    columns = {name: pa.Column(dtype, nullable=dtype is pl.Date) for name, dtype in keys.items()}
    columns.update(
        rule=pa.Column(
            pl.String, pa.Check.isin(rules_of(table)) if rules_of(table) else pa.Check.isin([]), nullable=False
        ),
        offending_values=pa.Column(pl.String, pa.Check.str_length(min_value=1), nullable=False),
        _extracted_at=pa.Column(pl.Datetime("us"), nullable=False),
    )
    return pa.DataFrameSchema(columns, strict=True, unique=[*keys, "rule"], name=f"quarantine.{table}")


QUARANTINE_TABLES = tuple(_QUARANTINE_KEYS)
