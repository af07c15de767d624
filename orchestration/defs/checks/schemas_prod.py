"""pandera schemas of the prod marts, as published to Iceberg.

Strict, with ranges, vocabularies, the grain of each mart as a uniqueness rule, and the arithmetic
that ties a mart's columns together (a line's revenue is quantity * unit_price - line_discount, a
USD amount is the local one at the row's rate to the cent, a funnel narrows step by step, a
retention rate is active customers over cohort size).
"""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

from orchestration.contract.vocabulary import (
    ACQUISITION_CHANNELS,
    DEVICES,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
    REGIONS,
    WEB_CHANNELS,
)
from orchestration.defs.checks.schemas_curated import (
    COUNTRY_CODE,
    CURRENCY_CODE,
    TOKEN,
    Money,
    Rate,
    Timestamp,
    _implies,
)

Money18 = Annotated[pl.Decimal, 18, 2]

MART_REGIONS = [*REGIONS, "unknown"]  # a country missing from the countries seed
SEGMENTS = ["champions", "loyal", "new", "promising", "at_risk", "hibernating", "prospect"]
CENT = 0.005  # half a cent: the largest honest rounding difference of an amount rounded to cents


def _to_cent(usd: str, local: str, rate: str = "usd_per_unit") -> pl.Expr:
    """`usd` is `local` converted at `rate`, rounded to the cent."""
    exact = pl.col(local).cast(pl.Float64) * pl.col(rate).cast(pl.Float64)
    return (pl.col(usd).cast(pl.Float64) - exact).abs() <= CENT + 1e-9


def _same_ratio(ratio: str, numerator: str, denominator: str) -> pl.Expr:
    """`ratio` = numerator / denominator, NULL exactly when the denominator is zero."""
    den = pl.col(denominator).cast(pl.Float64)
    expected = pl.col(numerator).cast(pl.Float64) / den
    return pl.when(den == 0).then(pl.col(ratio).is_null()).otherwise((pl.col(ratio) - expected).abs() <= 1e-9)


def _first_of_month(column: str) -> pl.Expr:
    return pl.col(column).dt.day() == 1


class _Mart(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class FctOrders(_Mart):
    order_id: pl.Int64 = pa.Field(unique=True, ge=1)
    customer_id: pl.Int64 = pa.Field(ge=1)
    ordered_at: Timestamp
    order_date: pl.Date
    status: pl.String = pa.Field(isin=ORDER_STATUSES)
    channel: pl.String = pa.Field(isin=ORDER_CHANNELS)
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)
    shipping_country: pl.String = pa.Field(str_matches=COUNTRY_CODE)
    region: pl.String = pa.Field(isin=MART_REGIONS)
    promo_code: pl.String = pa.Field(nullable=True)
    subtotal: Money = pa.Field(ge=0)
    discount: Money = pa.Field(ge=0)
    shipping_fee: Money = pa.Field(ge=0)
    total: Money = pa.Field(ge=0)
    usd_per_unit: Rate = pa.Field(gt=0)
    total_usd: Money18 = pa.Field(ge=0)
    item_count: pl.Int64 = pa.Field(ge=0)
    units: pl.Int64 = pa.Field(ge=0)
    is_cancelled: pl.Boolean
    extracted_at: Timestamp = pa.Field(alias="_extracted_at")

    @pa.dataframe_check
    def amounts_add_up(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("total") == pl.col("subtotal") - pl.col("discount") + pl.col("shipping_fee"))
            & _to_cent("total_usd", "total")
            & ((pl.col("currency") != "USD") | (pl.col("usd_per_unit") == 1))
        )

    @pa.dataframe_check
    def derived_flags_agree(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("order_date") == pl.col("ordered_at").dt.date())
            & (pl.col("is_cancelled") == (pl.col("status") == "cancelled"))
            & (pl.col("units") >= pl.col("item_count"))
            & _implies(pl.col("item_count") == 0, pl.col("subtotal") == 0)
        )


class FctOrderItems(_Mart):
    order_item_id: pl.Int64 = pa.Field(unique=True, ge=1)
    order_id: pl.Int64 = pa.Field(ge=1)
    customer_id: pl.Int64 = pa.Field(ge=1)
    product_id: pl.Int64 = pa.Field(ge=1)
    category_id: pl.Int32 = pa.Field(ge=1)
    ordered_at: Timestamp
    order_date: pl.Date
    status: pl.String = pa.Field(isin=ORDER_STATUSES)
    is_cancelled: pl.Boolean
    channel: pl.String = pa.Field(isin=ORDER_CHANNELS)
    shipping_country: pl.String = pa.Field(str_matches=COUNTRY_CODE)
    region: pl.String = pa.Field(isin=MART_REGIONS)
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)
    quantity: pl.Int32 = pa.Field(ge=1)
    unit_price: Money = pa.Field(ge=0)  # 0.00 is a free item
    line_discount: Money = pa.Field(ge=0)
    line_revenue: Money18 = pa.Field(ge=0)
    usd_per_unit: Rate = pa.Field(gt=0)
    line_revenue_usd: Money18 = pa.Field(ge=0)
    returned_units: pl.Int64 = pa.Field(ge=0)
    refund_amount: Money18 = pa.Field(ge=0)
    refund_usd: Money18 = pa.Field(ge=0)
    extracted_at: Timestamp = pa.Field(alias="_extracted_at")

    @pa.dataframe_check
    def revenue_adds_up(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("line_revenue") == pl.col("quantity") * pl.col("unit_price") - pl.col("line_discount"))
            & _to_cent("line_revenue_usd", "line_revenue")
            & _to_cent("refund_usd", "refund_amount")
        )

    @pa.dataframe_check
    def returns_within_purchase(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("returned_units") <= pl.col("quantity"))
            & _implies(pl.col("returned_units") == 0, pl.col("refund_amount") == 0)
            & (pl.col("order_date") == pl.col("ordered_at").dt.date())
            & (pl.col("is_cancelled") == (pl.col("status") == "cancelled"))
        )


class FctPayments(_Mart):
    payment_id: pl.Int64 = pa.Field(unique=True, ge=1)
    order_id: pl.Int64 = pa.Field(ge=1)
    customer_id: pl.Int64 = pa.Field(nullable=True, ge=1)  # NULL when the order is quarantined
    method: pl.String = pa.Field(isin=PAYMENT_METHODS)
    card_bin: pl.String = pa.Field(nullable=True, str_matches=r"^\d{6,8}$")
    card_last4: pl.String = pa.Field(nullable=True, str_matches=r"^\d{4}$")
    card_token: pl.String = pa.Field(nullable=True, str_matches=TOKEN)
    card_country: pl.String = pa.Field(nullable=True, str_matches=COUNTRY_CODE)
    ip_country: pl.String = pa.Field(str_matches=COUNTRY_CODE)
    is_card_ip_country_mismatch: pl.Boolean
    device_type: pl.String = pa.Field(isin=DEVICES)
    amount: Money = pa.Field(ge=0)
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)
    usd_per_unit: Rate = pa.Field(gt=0)
    amount_usd: Money18 = pa.Field(ge=0)
    status: pl.String = pa.Field(isin=PAYMENT_STATUSES)
    is_chargeback: pl.Boolean
    paid_at: Timestamp
    paid_date: pl.Date
    chargeback_at: Timestamp = pa.Field(nullable=True)
    days_to_chargeback: pl.Int64 = pa.Field(nullable=True, ge=0)
    extracted_at: Timestamp = pa.Field(alias="_extracted_at")

    @pa.dataframe_check
    def card_details_only_for_cards(cls, data: pa.PolarsData) -> pl.LazyFrame:
        is_card = pl.col("method") == "card"
        present = [pl.col(c).is_not_null() for c in ("card_bin", "card_last4", "card_token", "card_country")]
        return data.lazyframe.select(pl.all_horizontal([p == is_card for p in present]))

    @pa.dataframe_check
    def derived_fields_agree(cls, data: pa.PolarsData) -> pl.LazyFrame:
        mismatch = pl.col("card_country").is_not_null() & (pl.col("card_country") != pl.col("ip_country"))
        return data.lazyframe.select(
            _to_cent("amount_usd", "amount")
            & (pl.col("paid_date") == pl.col("paid_at").dt.date())
            & (pl.col("is_chargeback") == (pl.col("status") == "chargeback"))
            & (pl.col("is_card_ip_country_mismatch") == mismatch.fill_null(False))
            & (pl.col("days_to_chargeback").is_null() == pl.col("chargeback_at").is_null())
        )


class DimCustomers(_Mart):
    customer_id: pl.Int64 = pa.Field(unique=True, ge=1)
    country: pl.String = pa.Field(nullable=True, str_matches=COUNTRY_CODE)
    region: pl.String = pa.Field(isin=MART_REGIONS)
    acquisition_channel: pl.String = pa.Field(isin=ACQUISITION_CHANNELS)
    marketing_opt_in: pl.Boolean
    signed_up_at: Timestamp
    first_order_at: Timestamp = pa.Field(nullable=True)
    last_order_at: Timestamp = pa.Field(nullable=True)
    orders: pl.Int64 = pa.Field(ge=0)
    revenue_usd: Money18 = pa.Field(ge=0)
    avg_order_value_usd: Money18 = pa.Field(nullable=True, ge=0)
    days_since_last_order: pl.Int32 = pa.Field(nullable=True, ge=0)
    recency_score: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 5})
    frequency_score: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 5})
    monetary_score: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 5})
    segment: pl.String = pa.Field(isin=SEGMENTS)
    historical_clv_usd: Money18

    @pa.dataframe_check
    def prospects_have_no_history(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """orders = 0 <=> prospect <=> no first order, no scores; buyers have all of them."""
        prospect = pl.col("orders") == 0
        history = [
            "first_order_at",
            "last_order_at",
            "avg_order_value_usd",
            "days_since_last_order",
            "recency_score",
            "frequency_score",
            "monetary_score",
        ]
        return data.lazyframe.select(
            ((pl.col("segment") == "prospect") == prospect)
            & pl.all_horizontal([pl.col(c).is_null() == prospect for c in history])
            & _implies(prospect, pl.col("revenue_usd") == 0)
        )

    @pa.dataframe_check
    def history_is_consistent(cls, data: pa.PolarsData) -> pl.LazyFrame:
        aov = pl.col("revenue_usd").cast(pl.Float64) / pl.col("orders")  # exact; the mart rounds to the cent
        return data.lazyframe.select(
            _implies(pl.col("orders") > 0, pl.col("first_order_at") <= pl.col("last_order_at"))
            & _implies(
                pl.col("orders") > 0, (pl.col("avg_order_value_usd").cast(pl.Float64) - aov).abs() <= CENT + 1e-9
            )
            & (pl.col("historical_clv_usd") <= pl.col("revenue_usd"))
        )


class DimProducts(_Mart):
    product_id: pl.Int64 = pa.Field(unique=True, ge=1)
    sku: pl.String = pa.Field(str_length={"min_value": 1})  # the key is product_id (curated.products)
    name: pl.String = pa.Field(str_length={"min_value": 1})
    category_id: pl.Int32 = pa.Field(ge=1)
    category_name: pl.String = pa.Field(str_length={"min_value": 1})
    department: pl.String = pa.Field(str_length={"min_value": 1})
    list_price_usd: Money = pa.Field(gt=0)
    unit_cost_usd: Money = pa.Field(ge=0)
    is_active: pl.Boolean
    attributes: pl.String = pa.Field(nullable=True)
    created_at: Timestamp
    orders: pl.Int64 = pa.Field(ge=0)
    units_sold: pl.Int64 = pa.Field(ge=0)
    revenue_usd: Money18 = pa.Field(ge=0)
    returned_units: pl.Int64 = pa.Field(ge=0)
    refunds_usd: Money18 = pa.Field(ge=0)
    return_rate: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})

    @pa.dataframe_check
    def sales_are_consistent(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("units_sold") >= pl.col("orders"))
            & (pl.col("returned_units") <= pl.col("units_sold"))
            & _same_ratio("return_rate", "returned_units", "units_sold")
        )


class DailySales(_Mart):
    order_date: pl.Date
    category_id: pl.Int32 = pa.Field(ge=1)
    category_name: pl.String = pa.Field(str_length={"min_value": 1})
    region: pl.String = pa.Field(isin=MART_REGIONS)
    channel: pl.String = pa.Field(isin=ORDER_CHANNELS)
    orders: pl.Int64 = pa.Field(ge=1)
    units: pl.Int64 = pa.Field(ge=1)
    revenue_usd: Money18 = pa.Field(ge=0)
    avg_order_value_usd: Money18 = pa.Field(ge=0)

    class Config:
        unique = ["order_date", "category_id", "region", "channel"]

    @pa.dataframe_check
    def averages_add_up(cls, data: pa.PolarsData) -> pl.LazyFrame:
        aov = pl.col("revenue_usd").cast(pl.Float64) / pl.col("orders")  # exact; the mart rounds to the cent
        return data.lazyframe.select(
            (pl.col("units") >= pl.col("orders"))
            & ((pl.col("avg_order_value_usd").cast(pl.Float64) - aov).abs() <= CENT + 1e-9)
        )


class CustomerCohorts(_Mart):
    cohort_month: pl.Date
    months_since_acquisition: pl.Int32 = pa.Field(ge=0)
    activity_month: pl.Date
    cohort_size: pl.Int64 = pa.Field(ge=1)
    active_customers: pl.Int64 = pa.Field(ge=0)
    retention_rate: pl.Float64 = pa.Field(in_range={"min_value": 0, "max_value": 1})
    orders: pl.Int64 = pa.Field(ge=0)
    revenue_usd: Money18 = pa.Field(ge=0)
    cumulative_revenue_usd: Money18 = pa.Field(ge=0)

    class Config:
        unique = ["cohort_month", "months_since_acquisition"]

    @pa.dataframe_check
    def cohort_arithmetic(cls, data: pa.PolarsData) -> pl.LazyFrame:
        months = (pl.col("activity_month").dt.year() - pl.col("cohort_month").dt.year()) * 12 + (
            pl.col("activity_month").dt.month().cast(pl.Int32) - pl.col("cohort_month").dt.month().cast(pl.Int32)
        )
        return data.lazyframe.select(
            _first_of_month("cohort_month")
            & _first_of_month("activity_month")
            & (months == pl.col("months_since_acquisition"))
            & (pl.col("active_customers") <= pl.col("cohort_size"))
            & (pl.col("orders") >= pl.col("active_customers"))
            & _same_ratio("retention_rate", "active_customers", "cohort_size")
            & (pl.col("cumulative_revenue_usd") >= pl.col("revenue_usd"))
        )


class ConversionFunnel(_Mart):
    session_date: pl.Date
    channel: pl.String = pa.Field(isin=WEB_CHANNELS)
    sessions: pl.Int64 = pa.Field(ge=1)
    product_view_sessions: pl.Int64 = pa.Field(ge=0)
    add_to_cart_sessions: pl.Int64 = pa.Field(ge=0)
    checkout_sessions: pl.Int64 = pa.Field(ge=0)
    purchase_sessions: pl.Int64 = pa.Field(ge=0)
    product_view_rate: pl.Float64 = pa.Field(in_range={"min_value": 0, "max_value": 1})
    add_to_cart_rate: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})
    checkout_rate: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})
    purchase_rate: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})
    conversion_rate: pl.Float64 = pa.Field(in_range={"min_value": 0, "max_value": 1})
    extracted_at: Timestamp = pa.Field(alias="_extracted_at")

    class Config:
        unique = ["session_date", "channel"]

    @pa.dataframe_check
    def funnel_narrows(cls, data: pa.PolarsData) -> pl.LazyFrame:
        steps = ["sessions", "product_view_sessions", "add_to_cart_sessions", "checkout_sessions", "purchase_sessions"]
        return data.lazyframe.select(
            pl.all_horizontal([pl.col(a) >= pl.col(b) for a, b in zip(steps, steps[1:])])
            & _same_ratio("product_view_rate", "product_view_sessions", "sessions")
            & _same_ratio("add_to_cart_rate", "add_to_cart_sessions", "product_view_sessions")
            & _same_ratio("checkout_rate", "checkout_sessions", "add_to_cart_sessions")
            & _same_ratio("purchase_rate", "purchase_sessions", "checkout_sessions")
            & _same_ratio("conversion_rate", "purchase_sessions", "sessions")
        )


class InventoryStatus(_Mart):
    product_id: pl.Int64 = pa.Field(unique=True, ge=1)
    sku: pl.String = pa.Field(nullable=True)  # NULL only for stock of a product missing from curated
    name: pl.String = pa.Field(nullable=True)
    category_id: pl.Int32 = pa.Field(nullable=True, ge=1)
    is_active: pl.Boolean = pa.Field(nullable=True)
    quantity_on_hand: pl.Int32 = pa.Field(ge=0)
    reorder_point: pl.Int32 = pa.Field(ge=0)
    last_restocked_at: Timestamp = pa.Field(nullable=True)
    as_of_date: pl.Date
    units_sold_28d: pl.Int64 = pa.Field(ge=0)
    avg_daily_units_28d: pl.Float64 = pa.Field(ge=0)
    days_of_cover: pl.Float64 = pa.Field(nullable=True, ge=0)
    low_stock: pl.Boolean

    @pa.dataframe_check
    def cover_and_flag_agree(cls, data: pa.PolarsData) -> pl.LazyFrame:
        rate = pl.col("units_sold_28d").cast(pl.Float64) / 28
        cover = pl.col("quantity_on_hand").cast(pl.Float64) / rate
        # under 14 days of cover, in integers (2 * qoh < units): exact at the boundary, unlike cover < 14
        low = (pl.col("quantity_on_hand") < pl.col("reorder_point")) | (
            2 * pl.col("quantity_on_hand").cast(pl.Int64) < pl.col("units_sold_28d")
        )
        return data.lazyframe.select(
            ((pl.col("avg_daily_units_28d") - rate).abs() <= 1e-9)
            & pl.when(rate > 0)
            .then((pl.col("days_of_cover") - cover).abs() <= 1e-6)
            .otherwise(pl.col("days_of_cover").is_null())
            & (pl.col("low_stock") == low)
        )


class RegionalPrices(_Mart):
    product_id: pl.Int64 = pa.Field(ge=1)
    sku: pl.String = pa.Field(str_length={"min_value": 1})
    name: pl.String = pa.Field(str_length={"min_value": 1})
    category_id: pl.Int32 = pa.Field(ge=1)
    country: pl.String = pa.Field(str_matches=COUNTRY_CODE)
    region: pl.String = pa.Field(isin=MART_REGIONS)
    currency: pl.String = pa.Field(str_matches=CURRENCY_CODE)
    orders: pl.Int64 = pa.Field(ge=1)
    units: pl.Int64 = pa.Field(ge=1)
    avg_unit_price_local: Money18 = pa.Field(nullable=True, ge=0)  # free items sell at 0.00
    avg_unit_price_usd: Money18 = pa.Field(ge=0)
    list_price_usd: Money = pa.Field(gt=0)
    price_index: pl.Float64 = pa.Field(ge=0)

    class Config:
        unique = ["product_id", "country"]

    @pa.dataframe_check
    def index_matches_prices(cls, data: pa.PolarsData) -> pl.LazyFrame:
        # price_index uses the unrounded average; the published average is rounded to the cent
        implied = pl.col("list_price_usd").cast(pl.Float64) * pl.col("price_index") / 100
        return data.lazyframe.select(
            (pl.col("units") >= pl.col("orders"))
            & ((pl.col("avg_unit_price_usd").cast(pl.Float64) - implied).abs() <= CENT + 1e-6)
        )


class MarketTrends(_Mart):
    region: pl.String = pa.Field(isin=MART_REGIONS)
    month_start: pl.Date
    orders: pl.Int64 = pa.Field(ge=0)
    customers: pl.Int64 = pa.Field(ge=0)
    revenue_usd: Money18 = pa.Field(ge=0)
    avg_order_value_usd: Money18 = pa.Field(nullable=True, ge=0)
    previous_month_revenue_usd: Money18 = pa.Field(nullable=True, ge=0)
    revenue_growth_mom: pl.Float64 = pa.Field(nullable=True, ge=-1)
    same_month_last_year_revenue_usd: Money18 = pa.Field(nullable=True, ge=0)
    revenue_growth_yoy: pl.Float64 = pa.Field(nullable=True, ge=-1)
    seasonality_index: pl.Float64 = pa.Field(nullable=True, ge=0)
    opportunity_score: pl.Float64 = pa.Field(ge=0, le=100)

    class Config:
        unique = ["region", "month_start"]

    @pa.dataframe_check
    def month_totals_agree(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            _first_of_month("month_start")
            & (pl.col("customers") <= pl.col("orders"))
            & ((pl.col("orders") == 0) == pl.col("avg_order_value_usd").is_null())
            & _implies(pl.col("orders") == 0, pl.col("revenue_usd") == 0)
        )


COMPLIANCE_STATUSES = {
    "checks": ["passed", "failed"],
    "card_scan": ["passed", "failed"],
    "quarantine": ["quarantined"],
    "masking": ["masked"],
    "fraud": ["scored", "not_scored_yet"],
    # what each model family did in the run (orchestration/defs/checks/compliance.py MODEL_OUTCOME_STATUSES)
    "models": ["promoted", "champion_kept", "no_champion", "skipped", "scored", "not_scored"],
    "summary": ["total"],
}


class ComplianceReport(_Mart):
    run_id: pl.String = pa.Field(str_length={"min_value": 1})
    reported_at: Timestamp
    section: pl.String = pa.Field(isin=list(COMPLIANCE_STATUSES))
    table_name: pl.String = pa.Field(str_matches=r"^(all|(raw|curated|quarantine|prod)\.\w+)$")
    item: pl.String = pa.Field(str_length={"min_value": 1})
    status: pl.String = pa.Field(isin=sorted({s for v in COMPLIANCE_STATUSES.values() for s in v}))
    value: pl.Int64 = pa.Field(nullable=True, ge=0)
    detail: pl.String = pa.Field(nullable=True)

    class Config:
        unique = ["run_id", "section", "table_name", "item", "status"]

    @pa.dataframe_check
    def status_fits_section(cls, data: pa.PolarsData) -> pl.LazyFrame:
        ok = pl.lit(False)
        for section, statuses in COMPLIANCE_STATUSES.items():
            ok = ok | ((pl.col("section") == section) & pl.col("status").is_in(statuses))
        # a figure is missing only while the fraud model has not scored, or where a model family has no champion
        missing_ok = (pl.col("item") == "high_risk_transactions") | (pl.col("section") == "models")
        return data.lazyframe.select(ok & (pl.col("value").is_not_null() | missing_ok))


PROD_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "fct_orders": FctOrders,
    "fct_order_items": FctOrderItems,
    "fct_payments": FctPayments,
    "dim_customers": DimCustomers,
    "dim_products": DimProducts,
    "daily_sales": DailySales,
    "customer_cohorts": CustomerCohorts,
    "conversion_funnel": ConversionFunnel,
    "inventory_status": InventoryStatus,
    "regional_prices": RegionalPrices,
    "market_trends": MarketTrends,
    "compliance_report": ComplianceReport,
}
