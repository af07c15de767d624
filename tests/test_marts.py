"""Every prod mart recomputed independently on the demo lakehouse: polars over the published
curated tables, exact integer cents for money (round half up, as the marts do), compared with the
published mart to the cent, every row. None of the marts' SQL is reused; where a mart's rule is
stated in its YAML description (RFM quintiles, segments, days of cover), it is implemented again
here from that description.
"""

import datetime as dt

import polars as pl
import pytest

from orchestration import query
from orchestration.contract.schema import TABLES

pytestmark = pytest.mark.slow

RATE_SCALE = 100_000_000  # exchange rates carry 8 decimals


@pytest.fixture(scope="module")
def lake(demo_lakehouse):
    """The session's demo lakehouse (only read here), through its published snapshots."""
    settings, _, _ = demo_lakehouse
    con = query.connect(settings)
    yield lambda name: con.execute(f"SELECT * FROM {name}").pl()
    con.close()


# --- money in exact integers ----------------------------------------------------------------------


def cents(column: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Float64) * 100).round(0).cast(pl.Int64)


def rate_units(column: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Float64) * RATE_SCALE).round(0).cast(pl.Int64)


def usd_cents(amount_cents: pl.Expr, units: pl.Expr) -> pl.Expr:
    """amount * rate, rounded half up to the cent (amounts are never negative)."""
    return (amount_cents * units + RATE_SCALE // 2) // RATE_SCALE


def rates(lake) -> pl.DataFrame:
    """USD per unit of each currency on each day: USD is worth 1 whether or not fx_rates lists it."""
    return lake("curated.fx_rates").select(
        "currency", pl.col("rate_date").alias("day"), rate_units("usd_per_unit").alias("rate")
    )


def with_rate(frame: pl.DataFrame, lake, day: str) -> pl.DataFrame:
    out = frame.with_columns(pl.col(day).cast(pl.Date).alias("day")).join(
        rates(lake), on=["currency", "day"], how="left"
    )
    out = out.with_columns(
        pl.when(pl.col("currency") == "USD").then(RATE_SCALE).otherwise(pl.col("rate")).alias("rate")
    )
    assert out["rate"].null_count() == 0  # the missing_fx_rate rule keeps every used day priced
    return out.drop("day")


def assert_same(expected: pl.DataFrame, published: pl.DataFrame, keys: list[str]):
    published = published.select(expected.columns)
    assert expected.height == published.height
    diff = expected.sort(keys).select(keys + [c for c in expected.columns if c not in keys])
    got = published.sort(keys).select(diff.columns)
    for column in diff.columns:
        mismatch = (diff[column] != got[column]) | (diff[column].is_null() != got[column].is_null())
        mismatch = mismatch.fill_null(False)
        assert not mismatch.any(), (
            column,
            diff.filter(mismatch).head(3).to_dicts(),
            got.filter(mismatch).head(3).to_dicts(),
        )


# --- the independent recomputations ----------------------------------------------------------------


def orders_usd(lake) -> pl.DataFrame:
    countries = lake("curated.countries").select(pl.col("country").alias("shipping_country"), "region")
    orders = with_rate(lake("curated.orders"), lake, "ordered_at").join(countries, on="shipping_country", how="left")
    lines = (
        lake("curated.order_items")
        .group_by("order_id")
        .agg(item_count=pl.len(), units=pl.col("quantity").sum().cast(pl.Int64))
    )
    return orders.join(lines, on="order_id", how="left").with_columns(
        total_usd_cents=usd_cents(cents("total"), pl.col("rate")),
        region=pl.col("region").fill_null("unknown"),
        item_count=pl.col("item_count").fill_null(0).cast(pl.Int64),
        units=pl.col("units").fill_null(0),
        order_date=pl.col("ordered_at").dt.date(),
        is_cancelled=pl.col("status") == "cancelled",
    )


def lines_usd(lake) -> pl.DataFrame:
    orders = orders_usd(lake).select(
        "order_id",
        "customer_id",
        "order_date",
        "region",
        "channel",
        "is_cancelled",
        "rate",
        "shipping_country",
        "currency",
    )
    products = lake("curated.products").select("product_id", "category_id")
    returns = (
        lake("curated.returns")
        .group_by("order_item_id")
        .agg(returned_units=pl.col("quantity").sum().cast(pl.Int64), refund_cents=cents("refund_amount").sum())
    )
    return (
        lake("curated.order_items")
        .join(orders, on="order_id", how="inner")
        .join(products, on="product_id", how="inner")
        .join(returns, on="order_item_id", how="left")
        .with_columns(
            line_cents=pl.col("quantity").cast(pl.Int64) * cents("unit_price") - cents("line_discount"),
            returned_units=pl.col("returned_units").fill_null(0),
            refund_cents=pl.col("refund_cents").fill_null(0),
        )
        .with_columns(
            line_usd_cents=usd_cents(pl.col("line_cents"), pl.col("rate")),
            refund_usd_cents=usd_cents(pl.col("refund_cents"), pl.col("rate")),
        )
    )


def test_fct_orders(lake):
    expected = orders_usd(lake).select(
        "order_id",
        "customer_id",
        "order_date",
        "region",
        "item_count",
        "units",
        "is_cancelled",
        pl.col("rate").alias("usd_per_unit_units"),
        pl.col("total_usd_cents").alias("total_usd"),
    )
    published = lake("prod.fct_orders").with_columns(
        usd_per_unit_units=rate_units("usd_per_unit"), total_usd=cents("total_usd")
    )
    assert_same(expected, published, ["order_id"])


def test_fct_order_items(lake):
    expected = lines_usd(lake).select(
        "order_item_id",
        "order_id",
        "customer_id",
        "category_id",
        "region",
        "is_cancelled",
        pl.col("line_cents").alias("line_revenue"),
        pl.col("line_usd_cents").alias("line_revenue_usd"),
        "returned_units",
        pl.col("refund_cents").alias("refund_amount"),
        pl.col("refund_usd_cents").alias("refund_usd"),
    )
    published = lake("prod.fct_order_items").with_columns(
        line_revenue=cents("line_revenue"),
        line_revenue_usd=cents("line_revenue_usd"),
        refund_amount=cents("refund_amount"),
        refund_usd=cents("refund_usd"),
    )
    assert_same(expected, published, ["order_item_id"])


def test_fct_payments(lake):
    orders = lake("curated.orders").select("order_id", "customer_id")
    payments = with_rate(lake("curated.payments"), lake, "paid_at").join(orders, on="order_id", how="left")
    expected = payments.select(
        "payment_id",
        "customer_id",
        usd_cents(cents("amount"), pl.col("rate")).alias("amount_usd"),
        (pl.col("card_country").is_not_null() & (pl.col("card_country") != pl.col("ip_country")))
        .fill_null(False)
        .alias("is_card_ip_country_mismatch"),
        (pl.col("chargeback_at").cast(pl.Date) - pl.col("paid_at").cast(pl.Date))
        .dt.total_days()
        .alias("days_to_chargeback"),
    )
    assert_same(expected, lake("prod.fct_payments").with_columns(amount_usd=cents("amount_usd")), ["payment_id"])


def rfm_score(frame: pl.DataFrame, column: str, best_is_smallest: bool = False) -> pl.Series:
    """The mart's tie-aware score: 1 + floor(5 * (average rank - 1) / rows), ranked worst first."""
    ranks = [frame[column].rank(how, descending=best_is_smallest).cast(pl.Int64) for how in ("min", "max")]
    return (1 + (5 * (ranks[0] + ranks[1] - 2)) // (2 * frame.height)).cast(pl.Int32)


def test_dim_customers(lake):
    orders = orders_usd(lake)
    as_of = orders["order_date"].max()
    bought = orders.filter(~pl.col("is_cancelled"))
    # each refund converted at its order's rate on its own (not summed per line first)
    refunds = (
        lake("curated.returns")
        .join(lake("curated.order_items").select("order_item_id", "order_id"), on="order_item_id")
        .join(bought.select("order_id", "customer_id", "rate"), on="order_id")
        .group_by("customer_id")
        .agg(refunds=usd_cents(cents("refund_amount"), pl.col("rate")).sum())
    )
    buyers = (
        bought.group_by("customer_id")
        .agg(orders=pl.len().cast(pl.Int64), revenue=pl.col("total_usd_cents").sum(), last=pl.col("ordered_at").max())
        .with_columns(days_since_last_order=(pl.lit(as_of) - pl.col("last").dt.date()).dt.total_days().cast(pl.Int32))
        .sort("customer_id")
    )
    buyers = buyers.with_columns(
        recency_score=rfm_score(buyers, "days_since_last_order", best_is_smallest=True),
        frequency_score=rfm_score(buyers, "orders"),
        monetary_score=rfm_score(buyers, "revenue"),
    )
    r, f, m = pl.col("recency_score"), pl.col("frequency_score"), pl.col("monetary_score")
    expected = (
        lake("curated.customers")
        .select("customer_id")
        .join(buyers, on="customer_id", how="left")
        .join(refunds, on="customer_id", how="left")
        .with_columns(
            orders=pl.col("orders").fill_null(0),
            revenue_usd=pl.col("revenue").fill_null(0),
            historical_clv_usd=pl.col("revenue").fill_null(0) - pl.col("refunds").fill_null(0),
            avg_order_value_usd=average_cents("revenue", "orders"),
            segment=pl.when(pl.col("orders").is_null())
            .then(pl.lit("prospect"))
            .when((r >= 4) & (f >= 4) & (m >= 4))
            .then(pl.lit("champions"))
            .when((r >= 3) & (f >= 3))
            .then(pl.lit("loyal"))
            .when((r >= 4) & (pl.col("orders") == 1))
            .then(pl.lit("new"))
            .when(r >= 3)
            .then(pl.lit("promising"))
            .when(f >= 3)
            .then(pl.lit("at_risk"))
            .otherwise(pl.lit("hibernating")),
        )
        .select(
            "customer_id",
            "orders",
            "revenue_usd",
            "historical_clv_usd",
            "avg_order_value_usd",
            "days_since_last_order",
            "recency_score",
            "frequency_score",
            "monetary_score",
            "segment",
        )
    )
    published = lake("prod.dim_customers").with_columns(
        revenue_usd=cents("revenue_usd"),
        historical_clv_usd=cents("historical_clv_usd"),
        avg_order_value_usd=cents("avg_order_value_usd"),
    )
    assert set(expected["segment"]) >= {"prospect", "champions", "hibernating"}
    assert_same(expected, published, ["customer_id"])
    # ties: customers with equal recency, frequency and monetary value always share one segment
    groups = published.filter(pl.col("orders") > 0).group_by("days_since_last_order", "orders", "revenue_usd")
    assert groups.agg(pl.col("segment").n_unique().alias("segments"))["segments"].max() == 1
    one_order = published.filter(pl.col("orders") == 1)
    assert one_order["frequency_score"].n_unique() == 1


def test_dim_products(lake):
    sold = (
        lines_usd(lake)
        .filter(~pl.col("is_cancelled"))
        .group_by("product_id")
        .agg(
            orders=pl.col("order_id").n_unique().cast(pl.Int64),
            units_sold=pl.col("quantity").sum().cast(pl.Int64),
            revenue_usd=pl.col("line_usd_cents").sum(),
            returned_units=pl.col("returned_units").sum(),
            refunds_usd=pl.col("refund_usd_cents").sum(),
        )
    )
    expected = lake("curated.products").select("product_id").join(sold, on="product_id", how="left").fill_null(0)
    published = lake("prod.dim_products").with_columns(
        revenue_usd=cents("revenue_usd"), refunds_usd=cents("refunds_usd")
    )
    assert_same(expected, published, ["product_id"])


def test_daily_sales(lake):
    lines = lines_usd(lake).filter(~pl.col("is_cancelled"))
    keys = ["order_date", "category_id", "region", "channel"]
    expected = (
        lines.group_by(keys)
        .agg(
            orders=pl.col("order_id").n_unique().cast(pl.Int64),
            units=pl.col("quantity").sum().cast(pl.Int64),
            revenue_usd=pl.col("line_usd_cents").sum(),
        )
        .with_columns(avg_order_value_usd=average_cents("revenue_usd", "orders"))
    )
    published = lake("prod.daily_sales").with_columns(
        revenue_usd=cents("revenue_usd"), avg_order_value_usd=cents("avg_order_value_usd")
    )
    assert_same(expected, published, keys)


def average_cents(total: str, count: str) -> pl.Expr:
    """total / count rounded half up to the cent (both integers, total in cents)."""
    return pl.when(pl.col(count) > 0).then((2 * pl.col(total) + pl.col(count)) // (2 * pl.col(count)))


def month(column: str) -> pl.Expr:
    return pl.col(column).dt.truncate("1mo").cast(pl.Date)


def months_between(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def test_customer_cohorts(lake):
    customers = lake("curated.customers").select("customer_id", month("created_at").alias("cohort_month"))
    bought = (
        orders_usd(lake)
        .filter(~pl.col("is_cancelled"))
        .select("customer_id", month("ordered_at").alias("activity_month"), "total_usd_cents")
    )
    last = max(bought["activity_month"].max(), customers["cohort_month"].max())
    active = (
        bought.join(customers, on="customer_id")
        .group_by("cohort_month", "activity_month")
        .agg(
            active_customers=pl.col("customer_id").n_unique().cast(pl.Int64),
            orders=pl.len().cast(pl.Int64),
            revenue_usd=pl.col("total_usd_cents").sum(),
        )
    )
    sizes = customers.group_by("cohort_month").agg(cohort_size=pl.len().cast(pl.Int64))
    published = lake("prod.customer_cohorts")
    assert published.height == sum(months_between(c, last) + 1 for c in sizes["cohort_month"])
    expected = active.join(sizes, on="cohort_month")
    got = published.filter(pl.col("active_customers") > 0).with_columns(revenue_usd=cents("revenue_usd"))
    assert_same(expected, got, ["cohort_month", "activity_month"])
    assert (published.filter(pl.col("active_customers") == 0)["revenue_usd"] == 0).all()


def test_conversion_funnel(lake):
    events = lake("curated.web_events")
    step = pl.col("event_type")
    sessions = events.group_by("session_id").agg(
        session_date=pl.col("occurred_at").min().dt.date(),
        channel=pl.col("channel").sort_by("occurred_at", "event_id").first(),
        viewed=step.is_in(["product_view", "add_to_cart", "checkout", "purchase"]).any(),
        carted=step.is_in(["add_to_cart", "checkout", "purchase"]).any(),
        checked_out=step.is_in(["checkout", "purchase"]).any(),
        purchased=(step == "purchase").any(),
    )
    expected = sessions.group_by("session_date", "channel").agg(
        sessions=pl.len().cast(pl.Int64),
        product_view_sessions=pl.col("viewed").sum().cast(pl.Int64),
        add_to_cart_sessions=pl.col("carted").sum().cast(pl.Int64),
        checkout_sessions=pl.col("checked_out").sum().cast(pl.Int64),
        purchase_sessions=pl.col("purchased").sum().cast(pl.Int64),
    )
    assert_same(expected, lake("prod.conversion_funnel"), ["session_date", "channel"])


def test_inventory_status(lake):
    as_of = lake("prod.fct_orders")["order_date"].max()
    sold = (
        lines_usd(lake)
        .filter(
            ~pl.col("is_cancelled")
            & (pl.col("order_date") > as_of - dt.timedelta(days=28))
            & (pl.col("order_date") <= as_of)
        )
        .group_by("product_id")
        .agg(units_sold_28d=pl.col("quantity").sum().cast(pl.Int64))
    )
    stock = (
        lake("curated.inventory")
        .join(sold, on="product_id", how="left")
        .with_columns(pl.col("units_sold_28d").fill_null(0))
    )
    daily = pl.col("units_sold_28d") / 28
    expected = stock.select(
        "product_id",
        "units_sold_28d",
        pl.when(daily > 0).then((pl.col("quantity_on_hand") / daily * 1000).round(0)).alias("days_of_cover_milli"),
        (
            (pl.col("quantity_on_hand") < pl.col("reorder_point"))
            | (pl.col("quantity_on_hand") * 28 < 14 * pl.col("units_sold_28d"))
        ).alias("low_stock"),
    )
    published = lake("prod.inventory_status").with_columns(
        days_of_cover_milli=(pl.col("days_of_cover") * 1000).round(0)
    )
    assert_same(expected, published, ["product_id"])
    assert published["low_stock"].any()


def test_regional_prices(lake):
    countries = lake("curated.countries").select(
        pl.col("country").alias("shipping_country"), pl.col("currency").alias("country_currency")
    )
    lines = lines_usd(lake).filter(~pl.col("is_cancelled")).join(countries, on="shipping_country", how="left")
    q = pl.col("quantity").cast(pl.Int64)
    exact = cents("unit_price") * pl.col("rate") * q  # unit USD price x units, in 1e-10 USD
    agg = lines.group_by("product_id", pl.col("shipping_country").alias("country")).agg(
        orders=pl.col("order_id").n_unique().cast(pl.Int64), units=q.sum(), usd_numerator=exact.sum()
    )
    # average unit price in USD, rounded half up to the cent: numerator / (units * 1e8) cents
    expected = agg.with_columns(
        avg_unit_price_usd=(pl.col("usd_numerator") * 2 + pl.col("units") * RATE_SCALE)
        // (2 * pl.col("units") * RATE_SCALE)
    ).drop("usd_numerator")
    published = lake("prod.regional_prices").with_columns(avg_unit_price_usd=cents("avg_unit_price_usd"))
    assert_same(expected, published, ["product_id", "country"])


def test_market_trends(lake):
    bought = orders_usd(lake).filter(~pl.col("is_cancelled")).with_columns(month_start=month("ordered_at"))
    monthly = bought.group_by("region", "month_start").agg(
        orders=pl.len().cast(pl.Int64),
        customers=pl.col("customer_id").n_unique().cast(pl.Int64),
        revenue_usd=pl.col("total_usd_cents").sum(),
    )
    first, last = bought["month_start"].min(), bought["month_start"].max()
    months = pl.date_range(first, last, "1mo", eager=True).alias("month_start").to_frame()
    dense = (
        bought.select("region")
        .unique()
        .join(months, how="cross")
        .join(monthly, on=["region", "month_start"], how="left")
        .with_columns(pl.col("orders", "customers", "revenue_usd").fill_null(0))
        .sort("region", "month_start")
        .with_columns(
            previous_month_revenue_usd=pl.col("revenue_usd").shift(1).over("region"),
            avg_order_value_usd=average_cents("revenue_usd", "orders"),
        )
    )
    published = lake("prod.market_trends").with_columns(
        revenue_usd=cents("revenue_usd"),
        previous_month_revenue_usd=cents("previous_month_revenue_usd"),
        avg_order_value_usd=cents("avg_order_value_usd"),
    )
    assert_same(dense, published, ["region", "month_start"])
    growth = (
        published.filter(pl.col("previous_month_revenue_usd") > 0)
        .select(
            (
                pl.col("revenue_growth_mom")
                - (pl.col("revenue_usd") - pl.col("previous_month_revenue_usd")) / pl.col("previous_month_revenue_usd")
            )
            .abs()
            .max()
        )
        .item()
    )
    assert growth < 1e-9
    # Seasonality and the opportunity score, recomputed from the published monthly figures.
    n = pl.len().over("month_start")

    def percent_rank(col: pl.Expr) -> pl.Expr:
        return pl.when(n > 1).then((col.rank("min").over("month_start") - 1) / (n - 1)).otherwise(0.0)

    revenue = pl.col("revenue_usd").cast(pl.Float64)
    expected = published.with_columns(
        seasonality=revenue.mean().over("region", pl.col("month_start").dt.month()) / revenue.mean().over("region"),
        score=100
        * (
            0.5 * percent_rank(pl.coalesce("revenue_growth_yoy", "revenue_growth_mom", pl.lit(0.0)))
            + 0.3 * percent_rank(pl.col("revenue_usd"))
            + 0.2 * percent_rank(pl.col("avg_order_value_usd").fill_null(0))
        ),
    )
    assert expected.select((pl.col("seasonality") - pl.col("seasonality_index")).abs().max()).item() < 1e-9
    assert expected.select((pl.col("score") - pl.col("opportunity_score")).abs().max()).item() < 1e-9
    assert expected["opportunity_score"].max() > 50  # the ranking spreads the regions


def test_compliance_report(lake):
    report = lake("prod.compliance_report")
    measured = report.filter(pl.col("section") == "quarantine")
    latest = measured.sort("reported_at")["run_id"][-1]  # the run that built today's quarantine tables
    got = measured.filter(pl.col("run_id") == latest).select("table_name", "item", "value")
    tables = [t.name for t in TABLES]
    expected = pl.concat(
        [
            lake(f"quarantine.{t}")
            .group_by("rule")
            .agg(value=pl.len().cast(pl.Int64))
            .select(pl.lit(f"quarantine.{t}").alias("table_name"), pl.col("rule").alias("item"), "value")
            for t in tables
        ]
    )
    assert_same(expected, got, ["table_name", "item"])
    masked = lake("curated.payments")["card_token"].is_not_null().sum()
    masking = report.filter(
        (pl.col("run_id") == latest) & (pl.col("section") == "masking") & (pl.col("table_name") == "curated.payments")
    )
    assert masking["value"].to_list() == [masked]
